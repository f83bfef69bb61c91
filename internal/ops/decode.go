package ops

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode"

	"mobileid/internal/ota"
	"mobileid/internal/sms"
)

// Direction says which way a message crossed the SMSC's SMPP side.
type Direction string

// Directions of SMS traffic.
const (
	// MT is a submit_sm from an ESME toward a phone.
	MT Direction = "MT"
	// MO is a deliver_sm carrying a phone's message to an ESME.
	MO Direction = "MO"
	// Receipt is a deliver_sm carrying a delivery receipt to an ESME.
	Receipt Direction = "receipt"
)

// Traffic is one SMS segment as the SMSC's tap saw it, before decoding.
type Traffic struct {
	Direction Direction
	// Time is when the SMSC answered the submit_sm, or sent the
	// deliver_sm that its ESME answered.
	Time time.Time
	// Taken is when the SMSC took the message in: the submit_sm, the
	// phone's SMS-SUBMIT, or the outcome a receipt reports.
	Taken time.Time
	// Account is the ESME's system_id.
	Account string
	// MSISDN is the phone's number; Service is the ESME's address.
	MSISDN, Service string
	// MessageID is the SMSC's id of an MT, or of the MT a receipt is
	// about.
	MessageID string
	// Status is the command_status of the answer (submit_sm_resp or
	// deliver_sm_resp), StatusName its SMPP name.
	Status     uint32
	StatusName string
	ESMClass   byte
	PID        byte
	DCS        byte
	// UserData is short_message (or message_payload). The recorder keeps
	// it only to decode it, and never shows the secured data it holds.
	UserData []byte
	// ReceiptState is a receipt's stat (DELIVRD, EXPIRED, UNDELIV…) and
	// NetworkError its GSM error code, 0 when none.
	ReceiptState string
	NetworkError uint16
}

// Octet is a protocol octet, shown and encoded in JSON as two hex digits.
type Octet byte

// String returns the octet as two lowercase hex digits.
func (o Octet) String() string { return fmt.Sprintf("%02x", byte(o)) }

// MarshalText encodes the octet as two lowercase hex digits.
func (o Octet) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Kinds of SMS segment, as Decode classifies them.
const (
	KindCommand      = "command packet"
	KindResponse     = "response packet"
	KindContinuation = "continuation"
	KindText         = "text"
	KindReceipt      = "receipt"
	KindBinary       = "binary"
)

// SMS is one decoded SMS segment.
type SMS struct {
	// Seq numbers the segments in the order the recorder took them.
	Seq          uint64    `json:"seq"`
	Direction    Direction `json:"direction"`
	Time         time.Time `json:"time"`
	Taken        time.Time `json:"taken"`
	Account      string    `json:"account"`
	MSISDN       string    `json:"msisdn"`
	Service      string    `json:"service"`
	MessageID    string    `json:"message_id,omitempty"`
	Status       uint32    `json:"command_status"`
	StatusName   string    `json:"command_status_name"`
	ESMClass     Octet     `json:"esm_class"`
	PID          Octet     `json:"pid"`
	DCS          Octet     `json:"dcs"`
	Length       int       `json:"user_data_length"`
	Kind         string    `json:"kind"`
	UDH          []IE      `json:"udh,omitempty"`
	Concat       *Concat   `json:"concat,omitempty"`
	Packet       *Packet   `json:"packet,omitempty"`
	DataLength   int       `json:"data_length"`
	Text         string    `json:"text,omitempty"`
	ReceiptState string    `json:"receipt_state,omitempty"`
	NetworkError uint16    `json:"network_error,omitempty"`
	ReceiptText  string    `json:"receipt_text,omitempty"`
	// Problem says what could not be decoded, if anything.
	Problem string `json:"problem,omitempty"`
}

// IE is one information element of a user data header.
type IE struct {
	IEI  Octet  `json:"iei"`
	Name string `json:"name"`
	Data string `json:"data,omitempty"` // hex
}

// Concat is a segment's place in a concatenated series.
type Concat struct {
	Ref   int `json:"ref"`
	Total int `json:"total"`
	Seq   int `json:"seq"`
	// Bits is the size of the reference, 8 or 16.
	Bits int `json:"ref_bits"`
}

// Protections of the part of a secured packet from the counter onward.
const (
	ProtectionCiphered = "ciphered"
	ProtectionClear    = "clear"
	ProtectionUnknown  = "unknown"
)

const unknownCmdNote = "the command it answers was not seen, so whether the rest is ciphered is not known"

// Packet is what can be read of an OTA secured packet (TS 102 225) without
// its keys, from the segment that carries its header.
type Packet struct {
	// Type is "command" or "response".
	Type string `json:"type"`
	// Length is CPL or RPL, HeaderLength CHL or RHL.
	Length       int `json:"length"`
	HeaderLength int `json:"header_length"`
	// SPI is the command's SPI in four hex digits; a response carries
	// none, so for it SPI is its command's when that was seen
	// (SPIFromCommand).
	SPI            string   `json:"spi,omitempty"`
	SPIFromCommand bool     `json:"spi_from_command,omitempty"`
	SPIWords       []string `json:"spi_decoded,omitempty"`
	KIc            *KeyRef  `json:"kic,omitempty"`
	KID            *KeyRef  `json:"kid,omitempty"`
	TAR            string   `json:"tar"`
	// CheckLength is the length of the RC, CC or DS.
	CheckLength int `json:"check_length"`
	// Protection of the part from CNTR onward: ciphered, clear or
	// unknown. SecuredLength is that part's length according to CPL or
	// RPL.
	Protection    string `json:"protection"`
	SecuredLength int    `json:"secured_length"`
	// Unsecured marks a response without the security its command asked
	// for: a card's report of a security failure.
	Unsecured bool `json:"unsecured,omitempty"`
	// Counter, PCNTR and Status are set when they travel in clear.
	Counter *uint64    `json:"counter,omitempty"`
	PCNTR   *int       `json:"pcntr,omitempty"`
	Status  *PoRStatus `json:"status,omitempty"`
	// InSegment is how many octets of the packet this segment carries.
	InSegment int    `json:"in_segment"`
	Note      string `json:"note,omitempty"`
}

// KeyRef is a KIc or KID octet: which algorithm and key version, never a
// key.
type KeyRef struct {
	Value      Octet  `json:"value"`
	Algorithm  string `json:"algorithm"`
	KeyVersion int    `json:"key_version"`
}

// PoRStatus is a response's status code with its name.
type PoRStatus struct {
	Code Octet  `json:"code"`
	Name string `json:"name"`
}

// CommandSPI finds the SPI of the latest command sent to msisdn for the
// application tar, for decoding a response; nil when none is known.
type CommandSPI func(msisdn string, tar ota.TAR) *ota.SPI

// Decode decodes one segment. cmd, which may be nil, gives a response
// the SPI of the command it answers. Nothing in the result holds the data
// of a secured packet or a key: only headers, lengths and, for text
// messages, the text.
func Decode(t Traffic, cmd CommandSPI) SMS {
	s := SMS{
		Direction: t.Direction, Time: t.Time, Taken: t.Taken, Account: t.Account,
		MSISDN: t.MSISDN, Service: t.Service, MessageID: t.MessageID, Status: t.Status, StatusName: t.StatusName,
		ESMClass: Octet(t.ESMClass), PID: Octet(t.PID), DCS: Octet(t.DCS), Length: len(t.UserData), Kind: KindBinary,
	}
	if t.Direction == Receipt || t.ESMClass&0x3C == 0x04 {
		s.Kind, s.ReceiptState, s.NetworkError = KindReceipt, t.ReceiptState, t.NetworkError
		s.ReceiptText = printable(t.UserData, 200)
		return s
	}
	data := t.UserData
	var ies []sms.IE
	if t.ESMClass&0x40 != 0 {
		var err error
		ies, data, err = sms.ParseUDH(t.UserData)
		if err != nil {
			s.Problem = err.Error()
			s.DataLength = len(t.UserData)
			return s
		}
		for _, ie := range ies {
			s.UDH = append(s.UDH, IE{IEI: Octet(ie.ID), Name: ieName(ie.ID), Data: hex.EncodeToString(ie.Data)})
			switch ie.ID {
			case sms.IEConcat8:
				s.Concat = &Concat{Ref: int(ie.Data[0]), Total: int(ie.Data[1]), Seq: int(ie.Data[2]), Bits: 8}
			case sms.IEConcat16:
				s.Concat = &Concat{Ref: int(ie.Data[0])<<8 | int(ie.Data[1]), Total: int(ie.Data[2]), Seq: int(ie.Data[3]), Bits: 16}
			}
		}
	}
	s.DataLength = len(data)
	switch {
	case hasIE(ies, sms.IECommandPacket):
		s.Kind = KindCommand
		s.Packet, s.Problem = decodeCommand(data)
	case hasIE(ies, sms.IEResponsePacket):
		s.Kind = KindResponse
		s.Packet, s.Problem = decodeResponse(data, t.MSISDN, cmd)
	case s.Concat != nil && s.Concat.Seq > 1 && t.PID == 0x7F:
		s.Kind = KindContinuation
	default:
		switch sms.DCS(t.DCS).Alphabet() {
		case sms.AlphabetGSM7:
			s.Kind = KindText
			text, err := sms.DecodeGSM7(data)
			if err != nil {
				s.Problem = err.Error()
			}
			s.Text = text
		case sms.AlphabetUCS2:
			s.Kind = KindText
			text, err := sms.DecodeUCS2(data)
			if err != nil {
				s.Problem = err.Error()
			}
			s.Text = text
		}
	}
	return s
}

func hasIE(ies []sms.IE, id byte) bool {
	for _, ie := range ies {
		if ie.ID == id {
			return true
		}
	}
	return false
}

// ieName names the information elements an operator meets on this
// platform (TS 23.040 §9.2.3.24, TS 31.115 §4).
func ieName(id byte) string {
	switch id {
	case sms.IEConcat8:
		return "concatenation, 8-bit reference"
	case sms.IEConcat16:
		return "concatenation, 16-bit reference"
	case sms.IECommandPacket:
		return "command packet identifier"
	case sms.IEResponsePacket:
		return "response packet identifier"
	}
	if id >= 0x72 && id <= 0x7D {
		return "reserved for (U)SIM toolkit security headers"
	}
	return "other"
}

// decodeCommand reads a command packet's clear header.
func decodeCommand(b []byte) (*Packet, string) {
	h, err := ota.ParseCommandHeader(b)
	if err != nil {
		return nil, err.Error()
	}
	p := &Packet{
		Type: "command", Length: h.CPL, HeaderLength: h.CHL, SPI: fmt.Sprintf("%02x%02x", h.SPIBytes[0], h.SPIBytes[1]),
		SPIWords: spiWords(h.SPI), TAR: h.TAR.String(), CheckLength: h.CheckLen, SecuredLength: h.SecuredLen,
		InSegment: len(b), KIc: kicRef(h.KIc, h.SPI), KID: kidRef(h.KID, h.SPI.Integrity), Protection: ProtectionCiphered,
	}
	if !h.SPI.Ciphered {
		p.Protection = ProtectionClear
	}
	if h.Clear {
		p.Counter, p.PCNTR = &h.Counter, &h.PCNTR
	}
	return p, ""
}

// decodeResponse reads a response packet's clear header, with its
// command's SPI when cmd finds it.
func decodeResponse(b []byte, msisdn string, cmd CommandSPI) (*Packet, string) {
	h, err := ota.ParseResponseHeader(b, nil)
	if err != nil {
		return nil, err.Error()
	}
	var spi *ota.SPI
	if cmd != nil {
		spi = cmd(msisdn, h.TAR)
	}
	if spi != nil {
		if h, err = ota.ParseResponseHeader(b, spi); err != nil {
			return nil, err.Error()
		}
	}
	p := &Packet{
		Type: "response", Length: h.RPL, HeaderLength: h.RHL, TAR: h.TAR.String(), CheckLength: h.CheckLen,
		SecuredLength: h.SecuredLen, InSegment: len(b), Protection: ProtectionUnknown, Unsecured: h.Unsecured,
	}
	if spi == nil {
		p.Note = unknownCmdNote
		return p, ""
	}
	p.SPI, p.SPIFromCommand, p.SPIWords = spi.String(), true, spiWords(*spi)
	switch {
	case h.Unsecured:
		p.Protection = ProtectionClear
		p.Note = "unsecured: the card reports a failure of the command's security, which it cannot answer securely"
	case spi.PoRCiphered:
		p.Protection = ProtectionCiphered
	default:
		p.Protection = ProtectionClear
	}
	if h.Clear {
		p.Counter, p.PCNTR = &h.Counter, &h.PCNTR
		p.Status = &PoRStatus{Code: Octet(h.Status), Name: h.Status.String()}
	}
	return p, ""
}

// spiWords spells out an SPI (TS 102 225 §5.1.1, TS 31.115 for the PoR's
// transport).
func spiWords(s ota.SPI) []string {
	var w []string
	switch s.Integrity {
	case ota.NoIntegrity:
		w = append(w, "no RC, CC or DS")
	case ota.RC:
		w = append(w, "redundancy check (RC)")
	case ota.CC:
		w = append(w, "cryptographic checksum (CC)")
	case ota.DS:
		w = append(w, "digital signature (DS)")
	}
	if s.Ciphered {
		w = append(w, "ciphered")
	} else {
		w = append(w, "not ciphered")
	}
	w = append(w, s.Counter.String())
	switch s.PoR {
	case ota.NoPoR:
		w = append(w, "no PoR")
		return w
	case ota.PoRAlways:
		w = append(w, "PoR required")
	case ota.PoROnError:
		w = append(w, "PoR on error only")
	}
	switch s.PoRIntegrity {
	case ota.NoIntegrity:
		w = append(w, "PoR without RC, CC or DS")
	default:
		w = append(w, "PoR with "+s.PoRIntegrity.String())
	}
	if s.PoRCiphered {
		w = append(w, "PoR ciphered")
	} else {
		w = append(w, "PoR not ciphered")
	}
	if s.PoRSubmit {
		w = append(w, "PoR by SMS-SUBMIT")
	} else {
		w = append(w, "PoR in SMS-DELIVER-REPORT")
	}
	return w
}

// kicRef describes a KIc octet: its algorithm when the SPI asks for
// ciphering, and its key version.
func kicRef(kic byte, spi ota.SPI) *KeyRef {
	r := &KeyRef{Value: Octet(kic), KeyVersion: ota.KeyIndex(kic), Algorithm: "not used (no ciphering)"}
	if spi.Ciphered || spi.PoRCiphered {
		if alg, err := ota.CipherAlgorithm(kic); err != nil {
			r.Algorithm = strings.TrimPrefix(err.Error(), "ota: ")
		} else if alg == ota.AlgAES {
			r.Algorithm = "AES-CBC"
		} else {
			r.Algorithm = alg.String()
		}
	}
	return r
}

// kidRef describes a KID octet for the command's integrity.
func kidRef(kid byte, i ota.Integrity) *KeyRef {
	r := &KeyRef{Value: Octet(kid), KeyVersion: ota.KeyIndex(kid), Algorithm: "not used (no RC, CC or DS)"}
	if i != ota.NoIntegrity {
		if alg, err := ota.IntegrityAlgorithm(kid, i); err != nil {
			r.Algorithm = strings.TrimPrefix(err.Error(), "ota: ")
		} else if alg == ota.AlgAES {
			r.Algorithm = "AES-CMAC"
		} else {
			r.Algorithm = alg.String()
		}
	}
	return r
}

// printable returns at most n characters of b with everything but
// printable ASCII replaced, for receipt texts.
func printable(b []byte, n int) string {
	var sb strings.Builder
	for i, c := range b {
		if i == n {
			sb.WriteString("…")
			break
		}
		if c < 0x80 && unicode.IsPrint(rune(c)) {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('.')
		}
	}
	return sb.String()
}

// Summary is a one-line description of a segment for the traffic list.
func (s *SMS) Summary() string {
	var b strings.Builder
	if c := s.Concat; c != nil {
		fmt.Fprintf(&b, "part %d of %d (ref %d) · ", c.Seq, c.Total, c.Ref)
	}
	switch s.Kind {
	case KindCommand, KindResponse:
		b.WriteString(s.Kind)
		if p := s.Packet; p != nil {
			if p.SPI != "" {
				fmt.Fprintf(&b, " · SPI %s", p.SPI)
			}
			if p.KIc != nil {
				fmt.Fprintf(&b, " · KIc %s · KID %s", p.KIc.Value, p.KID.Value)
			}
			fmt.Fprintf(&b, " · TAR %s", p.TAR)
			if p.Counter != nil {
				fmt.Fprintf(&b, " · CNTR %d", *p.Counter)
			}
			if p.Status != nil {
				fmt.Fprintf(&b, " · status %s %s", p.Status.Code, p.Status.Name)
			}
			fmt.Fprintf(&b, " · %d octets %s", p.SecuredLength, p.Protection)
		}
	case KindReceipt:
		fmt.Fprintf(&b, "receipt for %s: %s", s.MessageID, s.ReceiptState)
		if s.NetworkError != 0 {
			fmt.Fprintf(&b, " (GSM error 0x%04x)", s.NetworkError)
		}
	case KindText:
		fmt.Fprintf(&b, "text: %q", s.Text)
	case KindContinuation:
		fmt.Fprintf(&b, "continuation of a secured packet · %d octets", s.DataLength)
	default:
		fmt.Fprintf(&b, "binary · %d octets", s.DataLength)
	}
	if s.Problem != "" {
		b.WriteString(" · cannot decode: " + s.Problem)
	}
	return b.String()
}
