package sms

import (
	"fmt"
	"unicode/utf16"
)

// maxSegments is the most parts a concatenation IE can number.
const maxSegments = 255

// SplitCommandPacket returns the TP-UD (header and data) of each short
// message needed to carry a secured command packet, given from CPL onward
// (TS 31.115 §4). A packet of up to 137 octets travels in one message with
// the header 02 70 00. A longer one is concatenated: every message carries
// a concatenation IE (IEI 00 with an 8-bit ref, or 08 when use16bit is
// set) and the first also carries IEI 70, placed before the concatenation
// IE (UDH 07 70 00 00 03 ref total 01), which is the order TS 31.115 shows.
// Every message except the last is filled to 140 octets.
func SplitCommandPacket(packet []byte, ref uint16, use16bit bool) ([][]byte, error) {
	return splitSecured(packet, IECommandPacket, ref, use16bit)
}

// SplitResponsePacket is SplitCommandPacket for a response packet, given
// from RPL onward; its first message carries IEI 71 instead of 70.
func SplitResponsePacket(packet []byte, ref uint16, use16bit bool) ([][]byte, error) {
	return splitSecured(packet, IEResponsePacket, ref, use16bit)
}

func splitSecured(packet []byte, iei byte, ref uint16, use16bit bool) ([][]byte, error) {
	sec := IE{ID: iei}
	if len(packet) <= maxUDOctets-3 {
		return [][]byte{append(MarshalUDH([]IE{sec}), packet...)}, nil
	}
	concat, err := concatIE(ref, use16bit, 1, 1)
	if err != nil {
		return nil, err
	}
	// Header sizes include UDHL; the first header adds the 2 octets of IEI 70/71.
	rest := maxUDOctets - (3 + len(concat.Data))
	first := rest - 2
	total := 1 + (len(packet)-first+rest-1)/rest
	if total > maxSegments {
		return nil, fmt.Errorf("sms: packet of %d octets needs %d messages, more than %d", len(packet), total, maxSegments)
	}
	segs := make([][]byte, 0, total)
	for seq := 1; seq <= total; seq++ {
		ies, room := []IE{sec}, first
		if seq > 1 {
			ies, room = nil, rest
		}
		c, _ := concatIE(ref, use16bit, total, seq)
		n := min(room, len(packet))
		segs = append(segs, append(MarshalUDH(append(ies, c)), packet[:n]...))
		packet = packet[n:]
	}
	return segs, nil
}

// concatIE builds a concatenation IE; an 8-bit IE cannot hold ref > 255.
func concatIE(ref uint16, use16bit bool, total, seq int) (IE, error) {
	if use16bit {
		return IE{ID: IEConcat16, Data: []byte{byte(ref >> 8), byte(ref), byte(total), byte(seq)}}, nil
	}
	if ref > 0xFF {
		return IE{}, fmt.Errorf("sms: reference %d does not fit an 8-bit concatenation IE", ref)
	}
	return IE{ID: IEConcat8, Data: []byte{byte(ref), byte(total), byte(seq)}}, nil
}

// TextPart is one message of a split text, ready for the UDH and Data
// fields of a Deliver or Submit with the DCS that SplitText returns.
type TextPart struct {
	UDH  []IE   // nil for a single message, else the concatenation IE
	Data []byte // unpacked GSM 7-bit septets or UCS-2 octets
}

// Text capacities (TS 23.040 §9.2.3.24.1): a message holds 160 septets or
// 70 UCS-2 units, less the 6-octet header of the concatenation IE.
const (
	gsm7Single = 160
	gsm7Part   = 153
	ucs2Single = 70
	ucs2Part   = 67
)

// SplitText splits s into as few messages as possible, using the GSM 7-bit
// default alphabet (DCS 0x00) when s is representable in it and UCS-2
// (DCS 0x08) otherwise. Concatenated parts carry an 8-bit-reference IE, so
// ref must not exceed 255. An escape pair or a surrogate pair is never
// split across parts.
func SplitText(s string, ref uint16) (parts []TextPart, dcs byte, err error) {
	units, alphabet, err := textUnits(s)
	if err != nil {
		return nil, 0, err
	}
	bounds := textBounds(units, alphabet)
	if len(bounds) == 1 {
		return []TextPart{{Data: encodeUnits(units, alphabet)}}, dcsFor(alphabet), nil
	}
	if len(bounds) > maxSegments {
		return nil, 0, fmt.Errorf("sms: text needs %d messages, more than %d", len(bounds), maxSegments)
	}
	start := 0
	for i, end := range bounds {
		c, err := concatIE(ref, false, len(bounds), i+1)
		if err != nil {
			return nil, 0, err
		}
		parts = append(parts, TextPart{UDH: []IE{c}, Data: encodeUnits(units[start:end], alphabet)})
		start = end
	}
	return parts, dcsFor(alphabet), nil
}

// CountText reports how SplitText would send s: the number of messages,
// the number of septets or UTF-16 units, and the alphabet chosen. The
// count is exact, including parts shortened to keep pairs together.
func CountText(s string) (segments int, units int, alphabet Alphabet) {
	u, alphabet, err := textUnits(s)
	if err != nil {
		// SplitText rejects invalid UTF-8; counting each bad byte as
		// U+FFFD still gives the caller a usable estimate.
		u, alphabet = utf16.Encode([]rune(s)), AlphabetUCS2
	}
	return len(textBounds(u, alphabet)), len(u), alphabet
}

func dcsFor(a Alphabet) byte {
	if a == AlphabetUCS2 {
		return 0x08
	}
	return 0x00
}

// textUnits returns s as septets or UTF-16 units, one per element.
func textUnits(s string) ([]uint16, Alphabet, error) {
	if septets, err := EncodeGSM7(s); err == nil {
		u := make([]uint16, len(septets))
		for i, c := range septets {
			u[i] = uint16(c)
		}
		return u, AlphabetGSM7, nil
	}
	if _, err := EncodeUCS2(s); err != nil {
		return nil, 0, err
	}
	return utf16.Encode([]rune(s)), AlphabetUCS2, nil
}

func encodeUnits(u []uint16, a Alphabet) []byte {
	var b []byte
	for _, v := range u {
		if a == AlphabetGSM7 {
			b = append(b, byte(v))
		} else {
			b = append(b, byte(v>>8), byte(v))
		}
	}
	return b
}

// textBounds returns the end index of each part. A part never ends after
// an escape septet or a high surrogate, as the pair would be torn apart.
func textBounds(u []uint16, a Alphabet) []int {
	single, part := gsm7Single, gsm7Part
	if a == AlphabetUCS2 {
		single, part = ucs2Single, ucs2Part
	}
	if len(u) <= single {
		return []int{len(u)}
	}
	var bounds []int
	for start := 0; start < len(u); {
		end := min(start+part, len(u))
		if end < len(u) && opensPair(u[end-1], a) {
			end--
		}
		bounds = append(bounds, end)
		start = end
	}
	return bounds
}

func opensPair(v uint16, a Alphabet) bool {
	if a == AlphabetGSM7 {
		return v == gsm7Esc
	}
	return v >= 0xD800 && v < 0xDC00
}
