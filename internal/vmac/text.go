package vmac

import (
	"bytes"
	"fmt"
	"unicode/utf8"

	"mobileid/internal/sms"
)

// Text limits in septets; the UCS-2 limit is half of each, which is never
// tighter for text the GSM alphabet can carry because every GSM character
// takes at most two septets.
const (
	maxDisplaySeptets = 200
	maxRPNameSeptets  = 32
)

// textField describes where a string goes: its GSM 7-bit tag, its UCS-2
// tag, its limit and a name for errors.
type textField struct {
	gsmTag, ucsTag byte
	maxSeptets     int
	name           string
}

// displayTextField is the text shown to the user by REGISTER, SIGN and
// DISPLAY.
func displayTextField() textField {
	return textField{tagTextGSM, tagTextUCS2, maxDisplaySeptets, "display text"}
}

// rpNameField is the name of the relying party shown by SIGN.
func rpNameField() textField {
	return textField{tagRPGSM, tagRPUCS2, maxRPNameSeptets, "RP name"}
}

// appendText encodes s as the GSM 7-bit tag if the default alphabet can
// carry it and as the UCS-2 tag otherwise. The card forwards either form to
// the handset unchanged, so the choice is made here, once, in favour of the
// shorter coding. An empty string encodes as nothing.
func appendText(dst []byte, s string, tf textField) ([]byte, error) {
	if s == "" {
		return dst, nil
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("vmac: %s is not valid UTF-8", tf.name)
	}
	if n, ok := sms.GSM7Len(s); ok {
		if n > tf.maxSeptets {
			return nil, fmt.Errorf("vmac: %s needs %d GSM 7-bit septets, limit is %d", tf.name, n, tf.maxSeptets)
		}
		septets, err := sms.EncodeGSM7(s)
		if err != nil {
			return nil, fmt.Errorf("vmac: %s: %w", tf.name, err)
		}
		v := append([]byte{byte(len(septets))}, sms.Pack7(septets, 0)...)
		return appendTLV(dst, tf.gsmTag, v), nil
	}
	for _, r := range s {
		if r > 0xFFFF {
			return nil, fmt.Errorf("vmac: %s: character %q is outside the Basic Multilingual Plane and has no UCS-2 code", tf.name, r)
		}
	}
	v, err := sms.EncodeUCS2(s)
	if err != nil {
		return nil, fmt.Errorf("vmac: %s: %w", tf.name, err)
	}
	if n := len(v) / 2; n > tf.maxSeptets/2 {
		return nil, fmt.Errorf("vmac: %s needs %d UCS-2 characters, limit is %d", tf.name, n, tf.maxSeptets/2)
	}
	return appendTLV(dst, tf.ucsTag, v), nil
}

// parseText decodes the text field tf from f, returning "" if neither of its
// tags is present. Besides the limits it insists on the one encoding
// appendText would produce: zero spare bits, no escape sequences that
// decode to something else, and UCS-2 only for text GSM 7-bit cannot carry.
func parseText(f *fields, tf textField) (string, error) {
	g, hasG := f.get(tf.gsmTag)
	u, hasU := f.get(tf.ucsTag)
	switch {
	case hasG && hasU:
		return "", fmt.Errorf("vmac: tags %02X and %02X (%s) are mutually exclusive", tf.gsmTag, tf.ucsTag, tf.name)
	case hasG:
		return parseGSMText(g, tf)
	case hasU:
		return parseUCS2Text(u, tf)
	}
	return "", nil
}

func parseGSMText(v []byte, tf textField) (string, error) {
	if len(v) < 2 {
		return "", fmt.Errorf("vmac: tag %02X %s length %d, want a septet count and at least one octet", tf.gsmTag, tf.name, len(v))
	}
	count := int(v[0])
	if count > tf.maxSeptets {
		return "", fmt.Errorf("vmac: tag %02X %s has %d septets, limit is %d", tf.gsmTag, tf.name, count, tf.maxSeptets)
	}
	packed := v[1:]
	if want := (7*count + 7) / 8; len(packed) != want {
		return "", fmt.Errorf("vmac: tag %02X %s: %d septets pack into %d octets, got %d", tf.gsmTag, tf.name, count, want, len(packed))
	}
	septets, err := sms.Unpack7(packed, 0, count)
	if err != nil {
		return "", fmt.Errorf("vmac: tag %02X %s: %w", tf.gsmTag, tf.name, err)
	}
	if !bytes.Equal(sms.Pack7(septets, 0), packed) {
		return "", fmt.Errorf("vmac: tag %02X %s: spare bits after the last septet are not zero", tf.gsmTag, tf.name)
	}
	s, err := sms.DecodeGSM7(septets)
	if err != nil {
		return "", fmt.Errorf("vmac: tag %02X %s: %w", tf.gsmTag, tf.name, err)
	}
	if again, err := sms.EncodeGSM7(s); err != nil || !bytes.Equal(again, septets) {
		return "", fmt.Errorf("vmac: tag %02X %s: escape sequence without an extension character", tf.gsmTag, tf.name)
	}
	return s, nil
}

func parseUCS2Text(v []byte, tf textField) (string, error) {
	if len(v) == 0 || len(v)%2 != 0 {
		return "", fmt.Errorf("vmac: tag %02X %s length %d, want a non-zero even length", tf.ucsTag, tf.name, len(v))
	}
	if n := len(v) / 2; n > tf.maxSeptets/2 {
		return "", fmt.Errorf("vmac: tag %02X %s has %d UCS-2 characters, limit is %d", tf.ucsTag, tf.name, n, tf.maxSeptets/2)
	}
	for i := 0; i < len(v); i += 2 {
		if v[i] >= 0xD8 && v[i] <= 0xDF {
			return "", fmt.Errorf("vmac: tag %02X %s: surrogate %02X%02X at offset %d is not UCS-2", tf.ucsTag, tf.name, v[i], v[i+1], i)
		}
	}
	s, err := sms.DecodeUCS2(v)
	if err != nil {
		return "", fmt.Errorf("vmac: tag %02X %s: %w", tf.ucsTag, tf.name, err)
	}
	if _, ok := sms.GSM7Len(s); ok {
		return "", fmt.Errorf("vmac: tag %02X %s is representable in GSM 7-bit and must use tag %02X", tf.ucsTag, tf.name, tf.gsmTag)
	}
	return s, nil
}

// encodeICCID packs an ICCID digit string the way EF_ICCID stores it: two
// digits per byte, the first digit in the low nibble, padded with F.
func encodeICCID(s string) ([]byte, error) {
	if len(s) == 0 || len(s) > 20 {
		return nil, fmt.Errorf("vmac: ICCID %q has %d digits, want 1–20", s, len(s))
	}
	out := bytes.Repeat([]byte{0xFF}, 10)
	for i := 0; i < len(s); i++ {
		d := s[i] - '0'
		if d > 9 {
			return nil, fmt.Errorf("vmac: ICCID %q contains a non-digit", s)
		}
		if i%2 == 0 {
			out[i/2] = out[i/2]&0xF0 | d
		} else {
			out[i/2] = out[i/2]&0x0F | d<<4
		}
	}
	return out, nil
}

// decodeICCID is the inverse of encodeICCID. Padding is only allowed after
// the last digit, so that each ICCID has one encoding.
func decodeICCID(b []byte) (string, error) {
	if len(b) != 10 {
		return "", fmt.Errorf("vmac: tag %02X ICCID length %d, want 10", tagICCID, len(b))
	}
	digits := make([]byte, 0, 20)
	padded := false
	for i := 0; i < 20; i++ {
		n := b[i/2] >> (4 * (i % 2)) & 0x0F
		switch {
		case n == 0x0F:
			padded = true
		case padded || n > 9:
			return "", fmt.Errorf("vmac: tag %02X ICCID % X is not F-padded BCD", tagICCID, b)
		default:
			digits = append(digits, '0'+n)
		}
	}
	if len(digits) == 0 {
		return "", fmt.Errorf("vmac: tag %02X ICCID has no digits", tagICCID)
	}
	return string(digits), nil
}

// encodeVerificationCode packs four decimal digits into two BCD bytes, first
// digit in the high nibble, as they are read.
func encodeVerificationCode(s string) ([]byte, error) {
	if len(s) != 4 {
		return nil, fmt.Errorf("vmac: verification code %q has %d characters, want 4 digits", s, len(s))
	}
	var out [2]byte
	for i := 0; i < 4; i++ {
		d := s[i] - '0'
		if d > 9 {
			return nil, fmt.Errorf("vmac: verification code %q contains a non-digit", s)
		}
		out[i/2] |= d << (4 * (1 - i%2))
	}
	return out[:], nil
}

func decodeVerificationCode(b []byte) (string, error) {
	if len(b) != 2 {
		return "", fmt.Errorf("vmac: tag %02X verification code length %d, want 2", tagVerCode, len(b))
	}
	digits := make([]byte, 4)
	for i := range digits {
		n := b[i/2] >> (4 * (1 - i%2)) & 0x0F
		if n > 9 {
			return "", fmt.Errorf("vmac: tag %02X verification code % X is not BCD", tagVerCode, b)
		}
		digits[i] = '0' + n
	}
	return string(digits), nil
}
