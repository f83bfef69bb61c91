package idserver

import "fmt"

// VerificationCode returns the four-digit code that the phone and the
// relying party both show, computed from the hash to be signed as MID
// does: the top 6 bits of the first byte followed by the low 7 bits of
// the last, as a decimal number 0000–8191. A hash shorter than 20 bytes
// gives "0000", as in SK's client library; the API never accepts one.
func VerificationCode(hash []byte) string {
	if len(hash) < 20 {
		return "0000"
	}
	code := (int(hash[0])&0xFC)<<5 | int(hash[len(hash)-1])&0x7F
	return fmt.Sprintf("%04d", code)
}
