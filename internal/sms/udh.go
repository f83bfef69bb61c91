package sms

import (
	"errors"
	"fmt"
)

// Information element identifiers this package interprets (TS 23.040
// §9.2.3.24 and TS 31.115 §4).
const (
	IEConcat8        = 0x00 // concatenated short messages, 8-bit reference
	IEConcat16       = 0x08 // concatenated short messages, 16-bit reference
	IECommandPacket  = 0x70 // (U)SIM toolkit security header: command packet identifier
	IEResponsePacket = 0x71 // (U)SIM toolkit security header: response packet identifier
)

// IE is one information element of a user data header. Elements this
// package does not know are carried unchanged.
type IE struct {
	ID   byte
	Data []byte
}

// MarshalUDH encodes ies as a user data header, starting with the UDHL
// octet; no elements give no header at all. It panics if the header cannot
// be represented (an element or the header longer than 255 octets) or
// breaks the rules ParseUDH checks, so that it never produces a header the
// receiver rejects. The TPDU encoders return an error instead.
func MarshalUDH(ies []IE) []byte {
	b, err := marshalUDH(ies)
	if err != nil {
		panic(err)
	}
	return b
}

// marshalUDH encodes and validates ies; it returns nil for no elements, as
// a message without a header carries no UDHL either.
func marshalUDH(ies []IE) ([]byte, error) {
	if len(ies) == 0 {
		return nil, nil
	}
	b := []byte{0}
	for _, ie := range ies {
		if len(ie.Data) > 255 {
			return nil, fmt.Errorf("sms: IE 0x%02x data length %d exceeds 255", ie.ID, len(ie.Data))
		}
		if err := checkIE(ie); err != nil {
			return nil, err
		}
		b = append(b, ie.ID, byte(len(ie.Data)))
		b = append(b, ie.Data...)
	}
	if len(b)-1 > 255 {
		return nil, fmt.Errorf("sms: user data header length %d exceeds 255", len(b)-1)
	}
	b[0] = byte(len(b) - 1)
	return b, nil
}

// ParseUDH splits user data that starts with a header into its information
// elements and the data that follows the header. Known elements are
// validated; an empty header (UDHL 0) yields no elements.
func ParseUDH(ud []byte) (ies []IE, rest []byte, err error) {
	if len(ud) == 0 {
		return nil, nil, errors.New("sms: user data header missing")
	}
	udhl := int(ud[0])
	if udhl > len(ud)-1 {
		return nil, nil, fmt.Errorf("sms: UDHL %d exceeds user data length %d", udhl, len(ud)-1)
	}
	h := ud[1 : 1+udhl]
	for len(h) > 0 {
		if len(h) < 2 {
			return nil, nil, errors.New("sms: truncated information element in user data header")
		}
		n := int(h[1])
		if n > len(h)-2 {
			return nil, nil, fmt.Errorf("sms: IE 0x%02x length %d exceeds remaining header length %d", h[0], n, len(h)-2)
		}
		ie := IE{ID: h[0]}
		if n > 0 {
			ie.Data = append([]byte(nil), h[2:2+n]...)
		}
		if err := checkIE(ie); err != nil {
			return nil, nil, err
		}
		ies = append(ies, ie)
		h = h[2+n:]
	}
	return ies, ud[1+udhl:], nil
}

// checkIE validates the elements whose layout is fixed by the standards.
func checkIE(ie IE) error {
	want := -1
	switch ie.ID {
	case IEConcat8:
		want = 3
	case IEConcat16:
		want = 4
	case IECommandPacket, IEResponsePacket:
		want = 0
	}
	if want < 0 {
		return nil
	}
	if len(ie.Data) != want {
		return fmt.Errorf("sms: IE 0x%02x has length %d, want %d", ie.ID, len(ie.Data), want)
	}
	if ie.ID == IEConcat8 || ie.ID == IEConcat16 {
		total, seq := ie.Data[want-2], ie.Data[want-1]
		if total == 0 || seq == 0 || seq > total {
			return fmt.Errorf("sms: concatenation IE with sequence %d of %d", seq, total)
		}
	}
	return nil
}

// concatInfo describes a message's place in a concatenated series.
type concatInfo struct {
	ref        uint16
	wide       bool // 16-bit reference
	total, seq int
}

// findConcat returns the first concatenation element of ies, which must
// already be validated.
func findConcat(ies []IE) (concatInfo, bool) {
	for _, ie := range ies {
		switch ie.ID {
		case IEConcat8:
			return concatInfo{ref: uint16(ie.Data[0]), total: int(ie.Data[1]), seq: int(ie.Data[2])}, true
		case IEConcat16:
			return concatInfo{ref: uint16(ie.Data[0])<<8 | uint16(ie.Data[1]), wide: true, total: int(ie.Data[2]), seq: int(ie.Data[3])}, true
		}
	}
	return concatInfo{}, false
}
