package smsc

import (
	"context"
	"fmt"

	"mobileid/internal/smpp"
	"mobileid/internal/sms"
)

// SubmitMO takes an SMS-SUBMIT TPDU that the phone with MSISDN from
// originated. A nil error is the network's acknowledgement (RP-ACK): the
// SMSC holds the message until an ESME of the account serving its TP-DA
// accepts it. Errors: a TPDU that does not parse, ErrUnreachable or
// ErrLost from the fault model (the phone should retry after ErrLost),
// ErrNoRoute, ErrQueueFull, ErrBadMSISDN and ErrClosed.
func (s *SMSC) SubmitMO(ctx context.Context, from string, tpdu []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return ErrClosed
	}
	msisdn, ok := normaliseMSISDN(from)
	if !ok {
		return fmt.Errorf("submit MO from %q: %w", from, ErrBadMSISDN)
	}
	sub, err := sms.ParseSubmit(tpdu)
	if err != nil {
		return fmt.Errorf("parse SMS-SUBMIT: %w", err)
	}
	f := s.faultsFor(msisdn)
	if !f.reachable() {
		return ErrUnreachable
	}
	if s.chance(f.LossPercent) {
		s.st.lost.Add(1)
		s.log.Debug("mo lost", "from", msisdn, "to", sub.DA.Digits)
		return ErrLost
	}
	a := s.routes[trimPlus(sub.DA.Digits)]
	if a == nil {
		return fmt.Errorf("route MO to %s: %w", sub.DA.Digits, ErrNoRoute)
	}
	now := s.clock.Now()
	expires := now.Add(s.cfg.DefaultValidity)
	if d, ok := sub.VP.Duration(); ok {
		expires = now.Add(min(d, MaxValidity))
	}
	udhi := tpdu[0]&0x40 != 0
	var esm byte
	if udhi {
		esm |= smpp.ESMClassUDHI
	}
	if sub.ReplyPath {
		esm |= 0x80
	}
	it := &outItem{
		pdu: smpp.PDU{
			ID:           smpp.DeliverSM,
			Source:       smpp.Address{TON: smpp.TONInternational, NPI: smpp.NPIISDN, Addr: msisdn},
			Dest:         smpp.Address{TON: sub.DA.TON, NPI: sub.DA.NPI, Addr: sub.DA.Digits},
			ESMClass:     esm,
			ProtocolID:   sub.PID,
			DataCoding:   byte(sub.DCS),
			ShortMessage: moUserData(udhi, sub),
		},
		expires: expires,
		taken:   now,
	}
	if !s.reserve() {
		return ErrQueueFull
	}
	s.st.mo.Add(1)
	s.m.mo.Inc()
	s.log.Debug("mo accepted", "from", msisdn, "to", sub.DA.Digits, "account", a.cfg.SystemID, "len", len(it.pdu.ShortMessage))
	s.afterLeg(f, func() { a.enqueue(it) })
	if s.chance(f.DuplicatePercent) && s.reserve() {
		s.st.duplicated.Add(1)
		dup := *it
		s.afterLeg(f, func() { a.enqueue(&dup) })
	}
	return nil
}

// moUserData is the short_message of an MO deliver_sm: the TP-UD as the
// phone sent it, header included. GSM 7-bit text is given unpacked, one
// septet per octet, as submit_sm expects it.
func moUserData(udhi bool, sub *sms.Submit) []byte {
	var sm []byte
	if udhi {
		// ParseUDH validated the elements, so re-encoding them gives the
		// phone's header octets back; an empty header (UDHL 0) is kept.
		sm = sms.MarshalUDH(sub.UDH)
		if len(sm) == 0 {
			sm = []byte{0}
		}
	}
	return append(sm, sub.Data...)
}

// afterLeg runs f once the radio leg's delay under faults f has passed.
func (s *SMSC) afterLeg(f Faults, fn func()) {
	if d := s.legDelay(f); d > 0 {
		s.clock.AfterFunc(d, fn)
		return
	}
	fn()
}
