package sms

import (
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// gsm7Esc is the escape septet that selects the extension table.
const gsm7Esc = 0x1B

// gsm7Basic is the GSM 7-bit default alphabet, TS 23.038 §6.2.1. The
// entry at 0x1B is the escape code and is never produced from text.
var gsm7Basic = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', gsm7Esc, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsm7Ext is the default alphabet extension table, TS 23.038 §6.2.1.1;
// zero marks codes that have no extension character.
var gsm7Ext = [128]rune{
	0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\',
	0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€',
}

// gsm7Lookup returns the septets for r: one for the basic table, two
// (escape + code) for the extension table, none if r is not representable.
func gsm7Lookup(r rune) (code byte, ext, ok bool) {
	if r == 0 || r == gsm7Esc {
		return 0, false, false
	}
	for i, c := range gsm7Basic {
		if c == r {
			return byte(i), false, true
		}
	}
	for i, c := range gsm7Ext {
		if c == r {
			return byte(i), true, true
		}
	}
	return 0, false, false
}

// EncodeGSM7 converts s to unpacked GSM 03.38 septets (one byte per septet,
// values 0..127); characters of the extension table become two septets, 0x1B
// followed by the code. It returns an error naming the first character that
// has no GSM 7-bit representation.
func EncodeGSM7(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i, r := range s {
		code, ext, ok := gsm7Lookup(r)
		if !ok {
			return nil, fmt.Errorf("sms: character %q at offset %d has no GSM 7-bit representation", r, i)
		}
		if ext {
			out = append(out, gsm7Esc)
		}
		out = append(out, code)
	}
	return out, nil
}

// DecodeGSM7 converts unpacked septets back to a string. 0x1B followed by a
// code selects the extension table; an escape with no extension character
// decodes as the basic-table character, as TS 23.038 asks receivers to do,
// and 0x1B 0x1B (reserved for a further table) decodes as a space. A
// trailing lone 0x1B and values above 127 are errors.
func DecodeGSM7(septets []byte) (string, error) {
	out := make([]rune, 0, len(septets))
	for i := 0; i < len(septets); i++ {
		c := septets[i]
		if c > 127 {
			return "", fmt.Errorf("sms: septet 0x%02x at offset %d exceeds 127", c, i)
		}
		if c != gsm7Esc {
			out = append(out, gsm7Basic[c])
			continue
		}
		if i+1 == len(septets) {
			return "", errors.New("sms: GSM 7-bit text ends with a lone escape")
		}
		i++
		c = septets[i]
		switch {
		case c > 127:
			return "", fmt.Errorf("sms: septet 0x%02x at offset %d exceeds 127", c, i)
		case gsm7Ext[c] != 0:
			out = append(out, gsm7Ext[c])
		case c == gsm7Esc:
			out = append(out, ' ')
		default:
			out = append(out, gsm7Basic[c])
		}
	}
	return string(out), nil
}

// GSM7Len returns the number of septets s needs and whether it is
// representable in the GSM 7-bit default alphabet at all.
func GSM7Len(s string) (n int, ok bool) {
	for _, r := range s {
		_, ext, ok := gsm7Lookup(r)
		if !ok {
			return 0, false
		}
		n++
		if ext {
			n++
		}
	}
	return n, true
}

// Pack7 packs septets into octets, LSB first, per TS 23.038 §6.1.2.1.1,
// after fillBits zero bits (0..6) that align the text to a septet boundary
// when a user data header precedes it. Only the low 7 bits of each septet
// are used. A negative fillBits panics, as it is a programming error.
func Pack7(septets []byte, fillBits int) []byte {
	if fillBits < 0 {
		panic("sms: Pack7 with negative fill bits")
	}
	out := make([]byte, (fillBits+7*len(septets)+7)/8)
	for i, s := range septets {
		s &= 0x7F
		pos := fillBits + 7*i
		shift := pos % 8
		out[pos/8] |= s << shift
		if shift > 1 {
			out[pos/8+1] |= s >> (8 - shift)
		}
	}
	return out
}

// Unpack7 is the inverse of Pack7: it extracts count septets that follow
// fillBits bits of packed. It returns an error if packed is too short.
func Unpack7(packed []byte, fillBits, count int) ([]byte, error) {
	if fillBits < 0 || fillBits > 7 || count < 0 {
		return nil, fmt.Errorf("sms: invalid septet layout (fill bits %d, count %d)", fillBits, count)
	}
	if count > (8*len(packed)-fillBits)/7 {
		return nil, fmt.Errorf("sms: %d septets after %d fill bits need more than %d octets", count, fillBits, len(packed))
	}
	out := make([]byte, count)
	for i := range out {
		pos := fillBits + 7*i
		shift := pos % 8
		v := packed[pos/8] >> shift
		if shift > 1 {
			v |= packed[pos/8+1] << (8 - shift)
		}
		out[i] = v & 0x7F
	}
	return out, nil
}

// EncodeUCS2 encodes s as big-endian UCS-2. Characters outside the Basic
// Multilingual Plane are written as UTF-16 surrogate pairs, so they take
// two 16-bit units. It returns an error if s is not valid UTF-8.
func EncodeUCS2(s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("sms: text is not valid UTF-8")
	}
	units := utf16.Encode([]rune(s))
	out := make([]byte, 2*len(units))
	for i, u := range units {
		out[2*i], out[2*i+1] = byte(u>>8), byte(u)
	}
	return out, nil
}

// DecodeUCS2 decodes big-endian UCS-2 (accepting UTF-16 surrogate pairs).
// An odd length or an unpaired surrogate is an error.
func DecodeUCS2(b []byte) (string, error) {
	if len(b)%2 != 0 {
		return "", fmt.Errorf("sms: UCS-2 data has odd length %d", len(b))
	}
	out := make([]rune, 0, len(b)/2)
	for i := 0; i < len(b); i += 2 {
		u := rune(b[i])<<8 | rune(b[i+1])
		switch {
		case u >= 0xD800 && u < 0xDC00:
			if i+3 >= len(b) {
				return "", fmt.Errorf("sms: unpaired surrogate 0x%04x at offset %d", u, i)
			}
			lo := rune(b[i+2])<<8 | rune(b[i+3])
			if lo < 0xDC00 || lo > 0xDFFF {
				return "", fmt.Errorf("sms: unpaired surrogate 0x%04x at offset %d", u, i)
			}
			out = append(out, utf16.DecodeRune(u, lo))
			i += 2
		case u >= 0xDC00 && u <= 0xDFFF:
			return "", fmt.Errorf("sms: unpaired surrogate 0x%04x at offset %d", u, i)
		default:
			out = append(out, u)
		}
	}
	return string(out), nil
}
