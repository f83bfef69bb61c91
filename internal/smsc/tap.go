package smsc

import (
	"strings"
	"time"

	"mobileid/internal/smpp"
)

// Direction says which way a tapped message crossed the SMSC's SMPP side.
type Direction uint8

// Directions of tapped traffic.
const (
	// MT is a submit_sm from an ESME, for a phone.
	MT Direction = iota + 1
	// MO is a deliver_sm carrying a phone's message to an ESME.
	MO
	// Receipt is a deliver_sm carrying a delivery receipt to an ESME.
	Receipt
)

// String names the direction.
func (d Direction) String() string {
	switch d {
	case MT:
		return "MT"
	case MO:
		return "MO"
	case Receipt:
		return "receipt"
	}
	return "unknown"
}

// Traffic is one message, one segment of a concatenated series, as it
// crossed the SMSC's SMPP side: what Config.Tap receives.
type Traffic struct {
	Direction Direction
	// Time is when the SMSC answered the submit_sm, or when it sent the
	// deliver_sm that its ESME has now answered.
	Time time.Time
	// Taken is when the SMSC took the message in: the submit_sm (Time),
	// the phone's SMS-SUBMIT, or the outcome that a receipt reports.
	Taken time.Time
	// SystemID is the ESME's account.
	SystemID string
	// MSISDN is the phone: the destination of an MT, the originator of an
	// MO, the subscriber a receipt is about; digits without '+' for a
	// valid number, else as the ESME wrote it.
	MSISDN string
	// Service is the ESME's address: an MT's source_addr, the destination
	// of an MO or a receipt.
	Service string
	// MessageID is the message_id given to an accepted MT (empty when
	// refused), or the receipted_message_id of a receipt.
	MessageID string
	// Status is the submit_sm_resp's command_status for an MT, the ESME's
	// deliver_sm_resp's for an MO or a receipt.
	Status                           smpp.Status
	ESMClass, ProtocolID, DataCoding byte
	// UserData is short_message, or message_payload when the ESME used
	// it. It shares the PDU's memory: the tap must not modify it.
	UserData []byte
	// State and NetworkError are a receipt's message_state and GSM
	// network error code (0 when none).
	State        smpp.MessageState
	NetworkError uint16
}

// tapSubmit reports a submit_sm and its answer to the tap.
func (s *SMSC) tapSubmit(a *account, p *smpp.PDU, m *mtMessage, st smpp.Status, now time.Time) {
	t := Traffic{
		Direction: MT, Time: now, Taken: now, SystemID: a.cfg.SystemID, MSISDN: p.Dest.Addr, Service: p.Source.Addr,
		Status: st, ESMClass: p.ESMClass, ProtocolID: p.ProtocolID, DataCoding: p.DataCoding, UserData: p.ShortMessage,
	}
	if v, ok := normaliseMSISDN(p.Dest.Addr); ok {
		t.MSISDN = v
	}
	if payload, ok := p.TLV(smpp.TagMessagePayload); ok && len(p.ShortMessage) == 0 {
		t.UserData = payload
	}
	if m != nil {
		t.MessageID = m.id
	}
	s.cfg.Tap(t)
}

// deliverTraffic describes a deliver_sm its ESME answered with st. The
// caller holds the account's lock, since a retry may send it again.
func deliverTraffic(a *account, it *outItem, st smpp.Status) Traffic {
	p := &it.pdu
	t := Traffic{
		Direction: MO, Time: it.sentAt, Taken: it.taken, SystemID: a.cfg.SystemID, MSISDN: trimPlus(p.Source.Addr),
		Service: p.Dest.Addr, Status: st, ESMClass: p.ESMClass, ProtocolID: p.ProtocolID, DataCoding: p.DataCoding,
		UserData: p.ShortMessage,
	}
	if it.receipt {
		t.Direction = Receipt
		if v, ok := p.TLV(smpp.TagReceiptedMessageID); ok {
			t.MessageID = strings.TrimRight(string(v), "\x00") // a C-octet string
		}
		if v, ok := p.TLV(smpp.TagMessageState); ok && len(v) == 1 {
			t.State = smpp.MessageState(v[0])
		}
		if v, ok := p.TLV(smpp.TagNetworkErrorCode); ok && len(v) == 3 {
			t.NetworkError = uint16(v[1])<<8 | uint16(v[2])
		}
	}
	return t
}
