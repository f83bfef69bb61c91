package smsc

import (
	"errors"
	"strconv"
	"time"

	"mobileid/internal/smpp"
	"mobileid/internal/sms"
)

// mtMessage is a stored mobile-terminated message. The delivery fields
// (attempts, lastErr, timer) belong to whoever holds the message: a worker,
// or the handset's sleeping list under mtMu.
type mtMessage struct {
	id        string
	acct      *account     // receives the receipt
	src, dst  smpp.Address // as submitted, for the receipt
	msisdn    string
	tpdu      []byte
	submitted time.Time
	expires   time.Time
	receipt   byte // registered_delivery bits 0-1
	once      bool // datagram or forward mode: one attempt, no storage
	attempts  int
	timer     Timer
}

// handset is the delivery state of one phone: messages waiting their turn
// and the number being attempted (at most one unless Reorder).
type handset struct {
	queue    []*mtMessage
	active   int
	sleeping []*mtMessage // active messages waiting for a retry timer
}

type jobKind uint8

const (
	jobAttempt   jobKind = iota // start an attempt: faults, then transmit or wait
	jobTransmit                 // the radio leg's delay is over: call the Radio
	jobDuplicate                // send the fault model's second copy
)

// job is one unit of work for the delivery workers.
type job struct {
	m    *mtMessage
	kind jobKind
	lost bool
}

// Receipt selections of registered_delivery bits 0-1.
const (
	receiptNone      = 0
	receiptFinal     = 1
	receiptOnFailure = 2
	receiptOnSuccess = 3 // SMPP 5.0; reserved in 3.4
)

// acceptSubmit validates a submit_sm and turns it into a stored message.
// It reserves a queue slot; the caller enqueues the message.
func (s *SMSC) acceptSubmit(a *account, p *smpp.PDU, now time.Time) (*mtMessage, smpp.Status) {
	msisdn, ok := destination(p.Dest)
	if !ok {
		return nil, smpp.StatusInvalidDestAddress
	}
	// Message type bits 2-5: default, ESME delivery acknowledgement and
	// manual/user acknowledgement are what an ESME may submit.
	if t := p.ESMClass & 0x3C; t != 0 && t != 0x08 && t != 0x10 {
		return nil, smpp.StatusInvalidESMClass
	}
	ud := p.ShortMessage
	if payload, ok := p.TLV(smpp.TagMessagePayload); ok {
		if len(ud) > 0 {
			return nil, smpp.StatusInvalidMessageLength
		}
		ud = payload
	}
	expires := now.Add(s.cfg.DefaultValidity)
	if p.ValidityPeriod != "" {
		t, err := smpp.ParseTime(p.ValidityPeriod, now)
		if err != nil || !t.After(now) {
			return nil, smpp.StatusInvalidExpiry
		}
		expires = t
	}
	if limit := now.Add(MaxValidity); expires.After(limit) {
		expires = limit
	}
	tpdu, st := buildDeliver(p, ud, now)
	if st != smpp.StatusOK {
		return nil, st
	}
	if !s.reserve() {
		return nil, smpp.StatusMessageQueueFull
	}
	mode := p.ESMClass & 0x03
	return &mtMessage{
		id:        strconv.FormatUint(s.nextID.Add(1), 16),
		acct:      a,
		src:       p.Source,
		dst:       p.Dest,
		msisdn:    msisdn,
		tpdu:      tpdu,
		submitted: now,
		expires:   expires,
		receipt:   p.RegisteredDelivery & 0x03,
		once:      mode == 0x01 || mode == 0x02,
	}, smpp.StatusOK
}

// destination checks that an MT destination is an international number.
func destination(a smpp.Address) (string, bool) {
	if a.TON != smpp.TONInternational && a.TON != smpp.TONUnknown {
		return "", false
	}
	return normaliseMSISDN(a.Addr)
}

// tpDCS maps data_coding to TP-DCS. They coincide for the codings the
// platform uses (0x00, 0x04, 0x08, 0xF0-0xFF); SMPP's 0x02 means 8-bit
// binary, which TS 23.038 writes 0x04 — copied as is, it would declare the
// data 7-bit text.
func tpDCS(dataCoding byte) sms.DCS {
	if dataCoding == 0x02 {
		return 0x04
	}
	return sms.DCS(dataCoding)
}

// buildDeliver encodes the SMS-DELIVER for a submit_sm with user data ud.
// The sms package encodes the fixed part (first octet, TP-OA, TP-PID,
// TP-DCS, TP-SCTS); the user data is appended here so that the ESME's
// header reaches the phone byte for byte, without being parsed and
// re-encoded.
func buildDeliver(p *smpp.PDU, ud []byte, now time.Time) ([]byte, smpp.Status) {
	oa, ok := originator(p.Source)
	if !ok {
		return nil, smpp.StatusInvalidSourceAddress
	}
	dcs := tpDCS(p.DataCoding)
	d := sms.Deliver{
		StatusReportIndication: p.RegisteredDelivery&0x03 != receiptNone,
		ReplyPath:              p.ESMClass&0x80 != 0,
		OA:                     oa,
		PID:                    p.ProtocolID,
		DCS:                    dcs,
		SCTS:                   now.UTC(),
	}
	b, err := d.MarshalBinary()
	if err != nil {
		return nil, smpp.StatusInvalidSourceAddress
	}
	b = b[:len(b)-1] // the empty TP-UDL; TP-UDL and TP-UD follow below
	hdr := 0
	if p.ESMClass&smpp.ESMClassUDHI != 0 {
		if len(ud) == 0 || int(ud[0])+1 > len(ud) {
			return nil, smpp.StatusInvalidMessageLength
		}
		hdr = 1 + int(ud[0])
		b[0] |= 0x40 // TP-UDHI
	}
	if dcs.Alphabet() != sms.AlphabetGSM7 {
		if len(ud) > 140 {
			return nil, smpp.StatusInvalidMessageLength
		}
		b = append(b, byte(len(ud)))
		return append(b, ud...), smpp.StatusOK
	}
	// GSM 7-bit: the header is followed by fill bits up to the next
	// septet boundary, then the packed septets; TP-UDL counts septets.
	text := ud[hdr:]
	hs := (hdr*8 + 6) / 7
	fill := hs*7 - hdr*8
	if hs+len(text) > 160 {
		return nil, smpp.StatusInvalidMessageLength
	}
	for _, c := range text {
		if c > 0x7F {
			return nil, smpp.StatusSubmitFailed
		}
	}
	b = append(b, byte(hs+len(text)))
	b = append(b, ud[:hdr]...)
	return append(b, sms.Pack7(text, fill)...), smpp.StatusOK
}

// originator turns source_addr into TP-OA: digits for numeric types,
// GSM 7-bit text for TON 5.
func originator(a smpp.Address) (sms.Address, bool) {
	if a.TON > 7 || a.NPI > 15 || a.Addr == "" {
		return sms.Address{}, false
	}
	v := a.Addr
	if a.TON != smpp.TONAlphanumeric {
		if a.TON == smpp.TONInternational {
			v = trimPlus(v)
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; !(c >= '0' && c <= '9' || c == '*' || c == '#') {
				return sms.Address{}, false
			}
		}
		if v == "" {
			return sms.Address{}, false
		}
	}
	return sms.Address{TON: a.TON, NPI: a.NPI, Digits: v}, true
}

func trimPlus(v string) string {
	if len(v) > 0 && v[0] == '+' {
		return v[1:]
	}
	return v
}

// enqueueMT stores m behind the handset's earlier messages.
func (s *SMSC) enqueueMT(m *mtMessage) {
	reorder := s.faultsFor(m.msisdn).Reorder
	s.mtMu.Lock()
	h := s.handsets[m.msisdn]
	if h == nil {
		h = &handset{}
		s.handsets[m.msisdn] = h
	}
	if len(h.queue) == 0 && (h.active == 0 || reorder) {
		h.active++
		s.pushLocked(job{m: m})
	} else {
		h.queue = append(h.queue, m)
	}
	s.mtMu.Unlock()
}

// push hands a job to the workers.
func (s *SMSC) push(j job) {
	s.mtMu.Lock()
	s.pushLocked(j)
	s.mtMu.Unlock()
}

func (s *SMSC) pushLocked(j job) {
	if s.mtClosed {
		return
	}
	if len(s.runq) == cap(s.runq) && s.runHead > 0 {
		n := copy(s.runq, s.runq[s.runHead:])
		clear(s.runq[n:])
		s.runq = s.runq[:n]
		s.runHead = 0
	}
	s.runq = append(s.runq, j)
	s.mtCond.Signal()
}

func (s *SMSC) popJob() (job, bool) {
	s.mtMu.Lock()
	defer s.mtMu.Unlock()
	for s.runHead == len(s.runq) && !s.mtClosed {
		s.mtCond.Wait()
	}
	if s.mtClosed {
		return job{}, false
	}
	j := s.runq[s.runHead]
	s.runq[s.runHead] = job{}
	s.runHead++
	if s.runHead == len(s.runq) {
		s.runq, s.runHead = s.runq[:0], 0
	}
	return j, true
}

// worker runs delivery jobs. A fixed pool keeps the number of goroutines
// independent of the traffic; waits (latency, back-off) are timers, not
// sleeping workers.
func (s *SMSC) worker() {
	defer s.wg.Done()
	for {
		j, ok := s.popJob()
		if !ok {
			return
		}
		switch j.kind {
		case jobAttempt:
			s.attempt(j.m)
		case jobTransmit:
			s.transmit(j.m, j.lost)
		case jobDuplicate:
			// The copy's fate does not matter: the message is delivered.
			_ = s.radio.DeliverSMS(s.ctx, j.m.msisdn, j.m.tpdu)
		}
	}
}

// attempt starts one delivery attempt of an active message.
func (s *SMSC) attempt(m *mtMessage) {
	now := s.clock.Now()
	if m.attempts > 0 {
		// Messages queued behind a phone that keeps failing would
		// otherwise only learn of their expiry when their turn comes.
		s.expireQueued(m.msisdn, now)
	}
	if !now.Before(m.expires) {
		s.finish(m, smpp.StateExpired, netErrAbsentSubscriber, now)
		return
	}
	f := s.faultsFor(m.msisdn)
	if m.attempts > 0 {
		s.st.retried.Add(1)
	}
	m.attempts++
	s.st.attempts.Add(1)
	if !f.reachable() {
		s.st.absent.Add(1)
		s.m.attempts[resultAbsent].Inc()
		s.log.Debug("mt phone unreachable", "id", m.id, "msisdn", m.msisdn, "attempt", m.attempts)
		s.failed(m, now)
		return
	}
	lost := s.chance(f.LossPercent)
	if d := s.legDelay(f); d > 0 {
		s.clock.AfterFunc(d, func() { s.push(job{m: m, kind: jobTransmit, lost: lost}) })
		return
	}
	s.transmit(m, lost)
}

// transmit ends the radio leg of an attempt.
func (s *SMSC) transmit(m *mtMessage, lost bool) {
	if lost {
		s.st.lost.Add(1)
		s.m.attempts[resultLost].Inc()
		s.log.Debug("mt attempt lost", "id", m.id, "msisdn", m.msisdn, "attempt", m.attempts)
		s.failed(m, s.clock.Now())
		return
	}
	err := s.radio.DeliverSMS(s.ctx, m.msisdn, m.tpdu)
	now := s.clock.Now()
	if err == nil {
		s.st.delivered.Add(1)
		s.m.attempts[resultDelivered].Inc()
		s.log.Debug("mt delivered", "id", m.id, "msisdn", m.msisdn, "len", len(m.tpdu), "attempt", m.attempts)
		if f := s.faultsFor(m.msisdn); s.chance(f.DuplicatePercent) {
			s.st.duplicated.Add(1)
			if d := s.legDelay(f); d > 0 {
				s.clock.AfterFunc(d, func() { s.push(job{m: m, kind: jobDuplicate}) })
			} else {
				s.push(job{m: m, kind: jobDuplicate})
			}
		}
		s.finish(m, smpp.StateDelivered, 0, now)
		return
	}
	if s.ctx.Err() != nil {
		return // closing: the Radio was interrupted, not the phone
	}
	var a interface{ Absent() bool }
	if errors.As(err, &a) && a.Absent() {
		s.st.absent.Add(1)
		s.m.attempts[resultAbsent].Inc()
		s.log.Debug("mt phone absent", "id", m.id, "msisdn", m.msisdn, "attempt", m.attempts, "err", err)
		s.failed(m, now)
		return
	}
	code := netErrUnknownSubscriber
	var c interface{ NetworkErrorCode() uint16 }
	if errors.As(err, &c) {
		code = c.NetworkErrorCode()
	}
	s.m.attempts[resultFailed].Inc()
	s.log.Debug("mt undeliverable", "id", m.id, "msisdn", m.msisdn, "err", err)
	s.finish(m, smpp.StateUndeliverable, code, now)
}

// failed handles an attempt that found the phone absent or was not
// acknowledged: the message sleeps until its next attempt, holding its
// handset's turn so later messages do not overtake it.
func (s *SMSC) failed(m *mtMessage, now time.Time) {
	if m.once {
		s.finish(m, smpp.StateUndeliverable, netErrAbsentSubscriber, now)
		return
	}
	d := s.backoff(m.attempts)
	if left := m.expires.Sub(now); d > left {
		d = left // wake at expiry to report it
	}
	s.mtMu.Lock()
	defer s.mtMu.Unlock()
	if s.mtClosed {
		return
	}
	h := s.handsets[m.msisdn]
	h.sleeping = append(h.sleeping, m)
	m.timer = s.clock.AfterFunc(d, func() { s.wake(m) })
}

// wake starts the next attempt of a sleeping message unless alert did.
func (s *SMSC) wake(m *mtMessage) {
	s.mtMu.Lock()
	defer s.mtMu.Unlock()
	h := s.handsets[m.msisdn]
	if h == nil {
		return
	}
	for i, x := range h.sleeping {
		if x == m {
			h.sleeping = append(h.sleeping[:i], h.sleeping[i+1:]...)
			m.timer = nil
			s.pushLocked(job{m: m})
			return
		}
	}
}

// alert retries at once the sleeping messages of the handsets match
// selects, as an HLR tells the SMSC that a phone has attached again.
func (s *SMSC) alert(match func(msisdn string) bool) {
	s.mtMu.Lock()
	defer s.mtMu.Unlock()
	for msisdn, h := range s.handsets {
		if len(h.sleeping) == 0 || !match(msisdn) {
			continue
		}
		for _, m := range h.sleeping {
			m.timer.Stop()
			m.timer = nil
			s.pushLocked(job{m: m})
		}
		h.sleeping = h.sleeping[:0]
	}
}

// expireQueued ends the waiting messages of a handset whose validity has
// passed.
func (s *SMSC) expireQueued(msisdn string, now time.Time) {
	var expired []*mtMessage
	s.mtMu.Lock()
	if h := s.handsets[msisdn]; h != nil {
		keep := h.queue[:0]
		for _, m := range h.queue {
			if now.Before(m.expires) {
				keep = append(keep, m)
			} else {
				expired = append(expired, m)
			}
		}
		clear(h.queue[len(keep):])
		h.queue = keep
	}
	s.mtMu.Unlock()
	for _, m := range expired {
		s.complete(m, smpp.StateExpired, netErrAbsentSubscriber, now)
	}
}

// finish records the final outcome of an active message and gives the
// handset's turn to the next one.
func (s *SMSC) finish(m *mtMessage, state smpp.MessageState, code uint16, now time.Time) {
	s.complete(m, state, code, now)
	reorder := s.faultsFor(m.msisdn).Reorder
	s.mtMu.Lock()
	defer s.mtMu.Unlock()
	h := s.handsets[m.msisdn]
	if h == nil {
		return
	}
	h.active--
	for len(h.queue) > 0 && (h.active == 0 || reorder) {
		next := h.queue[0]
		h.queue[0] = nil
		h.queue = h.queue[1:]
		h.active++
		s.pushLocked(job{m: next})
	}
	if h.active == 0 && len(h.queue) == 0 {
		delete(s.handsets, m.msisdn)
	}
}

// complete counts a final outcome and queues the receipt the ESME asked
// for; the message's queue slot passes to the receipt or is released.
func (s *SMSC) complete(m *mtMessage, state smpp.MessageState, code uint16, now time.Time) {
	switch state {
	case smpp.StateExpired:
		s.st.expired.Add(1)
		s.log.Debug("mt expired", "id", m.id, "msisdn", m.msisdn, "attempts", m.attempts)
	case smpp.StateUndeliverable:
		s.st.undeliverable.Add(1)
	}
	var want bool
	switch m.receipt {
	case receiptFinal:
		want = true
	case receiptOnFailure:
		want = state != smpp.StateDelivered
	case receiptOnSuccess:
		want = state == smpp.StateDelivered
	}
	if !want {
		s.unreserve()
		return
	}
	s.st.receipts.Add(1)
	s.m.receipts[state.Stat()].Inc()
	m.acct.enqueue(receiptItem(m, state, code, now))
}

// receiptItem builds the deliver_sm of a delivery receipt.
func receiptItem(m *mtMessage, state smpp.MessageState, code uint16, now time.Time) *outItem {
	r := smpp.Receipt{
		ID:         m.id,
		Submitted:  1,
		SubmitDate: m.submitted,
		DoneDate:   now,
		State:      state,
		Err:        int(code),
	}
	if state == smpp.StateDelivered {
		r.Delivered = 1
	}
	tlvs := []smpp.TLV{
		{Tag: smpp.TagReceiptedMessageID, Value: append([]byte(m.id), 0)},
		{Tag: smpp.TagMessageState, Value: []byte{byte(state)}},
	}
	if state != smpp.StateDelivered {
		tlvs = append(tlvs, smpp.TLV{Tag: smpp.TagNetworkErrorCode, Value: []byte{netErrTypeGSM, byte(code >> 8), byte(code)}})
	}
	return &outItem{
		pdu: smpp.PDU{
			ID:           smpp.DeliverSM,
			Source:       m.dst,
			Dest:         m.src,
			ESMClass:     smpp.ESMClassReceipt,
			ShortMessage: []byte(r.Format()),
			TLVs:         tlvs,
		},
		expires: now.Add(m.acct.s.cfg.DefaultValidity),
		taken:   now,
		receipt: true,
	}
}
