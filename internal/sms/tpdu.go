package sms

import (
	"errors"
	"fmt"
	"time"
)

// Alphabet is the character set of the user data, which also decides
// whether TP-UDL counts septets or octets.
type Alphabet int

// The alphabets of TS 23.038 §4.
const (
	AlphabetGSM7 Alphabet = iota // GSM 7-bit default alphabet, packed
	Alphabet8Bit                 // 8-bit data, e.g. secured packets
	AlphabetUCS2                 // UCS-2 (UTF-16BE in practice)
)

// String returns the alphabet's name.
func (a Alphabet) String() string {
	switch a {
	case AlphabetGSM7:
		return "GSM7"
	case Alphabet8Bit:
		return "8bit"
	case AlphabetUCS2:
		return "UCS2"
	}
	return fmt.Sprintf("Alphabet(%d)", int(a))
}

// DCS is a TP-Data-Coding-Scheme octet (TS 23.038 §4).
type DCS byte

// Alphabet returns the character set d selects. Compressed data counts
// octets, so it is reported as Alphabet8Bit; reserved codings count as
// the default alphabet, as TS 23.038 tells receivers to assume.
func (d DCS) Alphabet() Alphabet {
	switch {
	case d < 0x80: // general data coding and automatic deletion groups
		if d&0x20 != 0 {
			return Alphabet8Bit
		}
		switch d >> 2 & 3 {
		case 1:
			return Alphabet8Bit
		case 2:
			return AlphabetUCS2
		}
	case d >= 0xE0 && d < 0xF0: // message waiting, store message, UCS-2
		return AlphabetUCS2
	case d >= 0xF0: // data coding / message class group
		if d&0x04 != 0 {
			return Alphabet8Bit
		}
	}
	return AlphabetGSM7
}

// Class returns the message class (0..3) for the general data coding,
// automatic deletion and F0–FF groups; ok is false when d has none.
// Class 2 is the one that routes data download to the SIM.
func (d DCS) Class() (class int, ok bool) {
	if (d < 0x80 && d&0x10 != 0) || d >= 0xF0 {
		return int(d & 3), true
	}
	return 0, false
}

// VPFormat is the TP-Validity-Period-Format of an SMS-SUBMIT.
type VPFormat byte

// The validity period formats of TS 23.040 §9.2.3.3.
const (
	VPNone     VPFormat = 0
	VPEnhanced VPFormat = 1
	VPRelative VPFormat = 2
	VPAbsolute VPFormat = 3
)

// ValidityPeriod is a TP-VP in one of the formats. Only the relative
// format is interpreted; the enhanced and absolute forms are kept as the
// raw 7 octets.
type ValidityPeriod struct {
	Format   VPFormat
	Relative byte    // the TP-VP octet when Format is VPRelative
	Raw      [7]byte // the TP-VP octets when Format is VPEnhanced or VPAbsolute
}

// RelativeValidity returns the shortest relative validity period of at
// least d (TS 23.040 §9.2.3.12.1), capped at 63 weeks.
func RelativeValidity(d time.Duration) ValidityPeriod {
	for v := 0; v < 255; v++ {
		vp := ValidityPeriod{Format: VPRelative, Relative: byte(v)}
		if got, _ := vp.Duration(); got >= d {
			return vp
		}
	}
	return ValidityPeriod{Format: VPRelative, Relative: 255}
}

// Duration returns the length of a relative validity period; ok is false
// for the other formats.
func (v ValidityPeriod) Duration() (d time.Duration, ok bool) {
	if v.Format != VPRelative {
		return 0, false
	}
	r := time.Duration(v.Relative)
	switch {
	case r <= 143:
		return (r + 1) * 5 * time.Minute, true
	case r <= 167:
		return 12*time.Hour + (r-143)*30*time.Minute, true
	case r <= 196:
		return (r - 166) * 24 * time.Hour, true
	}
	return (r - 192) * 7 * 24 * time.Hour, true
}

// Maximum user data sizes (TS 23.040 §9.2.3.16).
const (
	maxUDOctets  = 140
	maxUDSeptets = 160
)

// First-octet bits shared by SMS-DELIVER and SMS-SUBMIT.
const (
	foMTIMask = 0x03
	foMMSorRD = 0x04
	foSRIorSR = 0x20
	foUDHI    = 0x40
	foRP      = 0x80
)

// Deliver is an SMS-DELIVER TPDU (TS 23.040 §9.2.2.1), sent by the
// service centre to the mobile; it carries OTA command packets to the SIM.
//
// UDH holds the user data header, and the UDHI bit is set exactly when UDH
// is non-empty. For the GSM 7-bit alphabet Data holds unpacked septets (one
// per byte, see DecodeGSM7); otherwise it holds the octets after the header.
type Deliver struct {
	// MoreMessagesToSend is true when TP-MMS is 0: the bit is inverted on
	// the air, 1 meaning that no more messages are waiting.
	MoreMessagesToSend     bool
	StatusReportIndication bool
	ReplyPath              bool
	OA                     Address
	PID                    byte
	DCS                    DCS
	SCTS                   time.Time // see SCTSTime; encoded in its own zone
	UDH                    []IE
	Data                   []byte
}

// MarshalBinary encodes d as TPDU octets.
func (d *Deliver) MarshalBinary() ([]byte, error) {
	fo := byte(0x00)
	if !d.MoreMessagesToSend {
		fo |= foMMSorRD
	}
	fo |= flags(d.StatusReportIndication, d.ReplyPath, d.UDH)
	b, err := d.OA.append([]byte{fo})
	if err != nil {
		return nil, err
	}
	b = append(b, d.PID, byte(d.DCS))
	if b, err = appendSCTS(b, d.SCTS); err != nil {
		return nil, err
	}
	return appendUD(b, d.DCS, d.UDH, d.Data)
}

// ParseDeliver decodes an SMS-DELIVER TPDU. The result does not share
// memory with b.
func ParseDeliver(b []byte) (*Deliver, error) {
	if len(b) == 0 {
		return nil, errors.New("sms: empty TPDU")
	}
	fo := b[0]
	if fo&foMTIMask != 0 {
		return nil, fmt.Errorf("sms: message type %d is not SMS-DELIVER", fo&foMTIMask)
	}
	d := &Deliver{
		MoreMessagesToSend:     fo&foMMSorRD == 0,
		StatusReportIndication: fo&foSRIorSR != 0,
		ReplyPath:              fo&foRP != 0,
	}
	oa, n, err := parseAddress(b[1:])
	if err != nil {
		return nil, err
	}
	d.OA = oa
	rest := b[1+n:]
	if len(rest) < 2+7+1 {
		return nil, errors.New("sms: SMS-DELIVER truncated after address")
	}
	d.PID, d.DCS = rest[0], DCS(rest[1])
	if d.SCTS, err = parseSCTS(rest[2:9]); err != nil {
		return nil, err
	}
	if d.UDH, d.Data, err = parseUD(d.DCS, fo&foUDHI != 0, rest[9], rest[10:]); err != nil {
		return nil, err
	}
	return d, nil
}

// Submit is an SMS-SUBMIT TPDU (TS 23.040 §9.2.2.2), sent by the mobile;
// the SIM uses it for response packets and its own messages. UDH and Data
// follow the same rules as in Deliver.
type Submit struct {
	RejectDuplicates    bool
	StatusReportRequest bool
	ReplyPath           bool
	MR                  byte // TP-Message-Reference
	DA                  Address
	PID                 byte
	DCS                 DCS
	VP                  ValidityPeriod
	UDH                 []IE
	Data                []byte
}

// MarshalBinary encodes s as TPDU octets.
func (s *Submit) MarshalBinary() ([]byte, error) {
	if s.VP.Format > VPAbsolute {
		return nil, fmt.Errorf("sms: invalid validity period format %d", s.VP.Format)
	}
	fo := byte(0x01) | byte(s.VP.Format)<<3
	if s.RejectDuplicates {
		fo |= foMMSorRD
	}
	fo |= flags(s.StatusReportRequest, s.ReplyPath, s.UDH)
	b, err := s.DA.append([]byte{fo, s.MR})
	if err != nil {
		return nil, err
	}
	b = append(b, s.PID, byte(s.DCS))
	switch s.VP.Format {
	case VPRelative:
		b = append(b, s.VP.Relative)
	case VPEnhanced, VPAbsolute:
		b = append(b, s.VP.Raw[:]...)
	}
	return appendUD(b, s.DCS, s.UDH, s.Data)
}

// ParseSubmit decodes an SMS-SUBMIT TPDU. The result does not share
// memory with b.
func ParseSubmit(b []byte) (*Submit, error) {
	if len(b) < 2 {
		return nil, errors.New("sms: truncated SMS-SUBMIT")
	}
	fo := b[0]
	if fo&foMTIMask != 1 {
		return nil, fmt.Errorf("sms: message type %d is not SMS-SUBMIT", fo&foMTIMask)
	}
	s := &Submit{
		RejectDuplicates:    fo&foMMSorRD != 0,
		StatusReportRequest: fo&foSRIorSR != 0,
		ReplyPath:           fo&foRP != 0,
		MR:                  b[1],
		VP:                  ValidityPeriod{Format: VPFormat(fo >> 3 & 3)},
	}
	da, n, err := parseAddress(b[2:])
	if err != nil {
		return nil, err
	}
	s.DA = da
	rest := b[2+n:]
	vpLen := 0
	switch s.VP.Format {
	case VPRelative:
		vpLen = 1
	case VPEnhanced, VPAbsolute:
		vpLen = 7
	}
	if len(rest) < 2+vpLen+1 {
		return nil, errors.New("sms: SMS-SUBMIT truncated after address")
	}
	s.PID, s.DCS = rest[0], DCS(rest[1])
	if vpLen == 1 {
		s.VP.Relative = rest[2]
	} else {
		copy(s.VP.Raw[:], rest[2:2+vpLen])
	}
	rest = rest[2+vpLen:]
	if s.UDH, s.Data, err = parseUD(s.DCS, fo&foUDHI != 0, rest[0], rest[1:]); err != nil {
		return nil, err
	}
	return s, nil
}

// flags returns the first-octet bits common to both TPDU types.
func flags(sr, rp bool, udh []IE) byte {
	var fo byte
	if sr {
		fo |= foSRIorSR
	}
	if rp {
		fo |= foRP
	}
	if len(udh) > 0 {
		fo |= foUDHI
	}
	return fo
}

// headerSeptets returns how many septets a header of hdrOctets octets
// (UDHL included) occupies in 7-bit user data and the fill bits that
// align the text after it.
func headerSeptets(hdrOctets int) (septets, fill int) {
	septets = (hdrOctets*8 + 6) / 7
	return septets, septets*7 - hdrOctets*8
}

// appendUD appends TP-UDL and TP-UD.
func appendUD(b []byte, dcs DCS, udh []IE, data []byte) ([]byte, error) {
	hdr, err := marshalUDH(udh)
	if err != nil {
		return nil, err
	}
	if dcs.Alphabet() != AlphabetGSM7 {
		udl := len(hdr) + len(data)
		if udl > maxUDOctets {
			return nil, fmt.Errorf("sms: user data length %d exceeds %d octets", udl, maxUDOctets)
		}
		b = append(b, byte(udl))
		b = append(b, hdr...)
		return append(b, data...), nil
	}
	for i, c := range data {
		if c > 127 {
			return nil, fmt.Errorf("sms: septet 0x%02x at offset %d exceeds 127", c, i)
		}
	}
	hs, fill := headerSeptets(len(hdr))
	udl := hs + len(data)
	if udl > maxUDSeptets {
		return nil, fmt.Errorf("sms: user data length %d exceeds %d septets", udl, maxUDSeptets)
	}
	b = append(b, byte(udl))
	b = append(b, hdr...)
	return append(b, Pack7(data, fill)...), nil
}

// parseUD decodes TP-UD of length udl from ud, which must hold exactly the
// user data octets.
func parseUD(dcs DCS, udhi bool, udl byte, ud []byte) (udh []IE, data []byte, err error) {
	septets := dcs.Alphabet() == AlphabetGSM7
	octets := int(udl)
	if septets {
		if udl > maxUDSeptets {
			return nil, nil, fmt.Errorf("sms: user data length %d exceeds %d septets", udl, maxUDSeptets)
		}
		octets = (int(udl)*7 + 7) / 8
	} else if udl > maxUDOctets {
		return nil, nil, fmt.Errorf("sms: user data length %d exceeds %d octets", udl, maxUDOctets)
	}
	if len(ud) < octets {
		return nil, nil, fmt.Errorf("sms: user data length %d needs %d octets, have %d", udl, octets, len(ud))
	}
	if len(ud) > octets {
		return nil, nil, fmt.Errorf("sms: %d octets after the user data", len(ud)-octets)
	}
	text := ud
	if udhi {
		if udh, text, err = ParseUDH(ud); err != nil {
			return nil, nil, err
		}
	}
	if !septets {
		data = append([]byte(nil), text...)
	} else {
		// The text starts at the first septet boundary after the header.
		hs, fill := headerSeptets(len(ud) - len(text))
		if hs > int(udl) {
			return nil, nil, fmt.Errorf("sms: user data header of %d septets exceeds user data length %d", hs, udl)
		}
		if data, err = Unpack7(text, fill, int(udl)-hs); err != nil {
			return nil, nil, err
		}
	}
	if len(data) == 0 {
		data = nil
	}
	return udh, data, nil
}
