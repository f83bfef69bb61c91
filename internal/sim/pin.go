package sim

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// PIN rules of the VMAC applet.
const (
	PIN1MinLen = 4
	PIN1MaxLen = 8
	PIN2MinLen = 5
	PIN2MaxLen = 8
	PUKLen     = 8
	PINTries   = 3
	PUKTries   = 10
)

// PINRef names a PIN of the applet.
type PINRef int

// The applet's PINs: PIN1 guards the authentication key, PIN2 the signing
// key.
const (
	PIN1 PINRef = 1
	PIN2 PINRef = 2
)

// String returns "PIN1" or "PIN2".
func (p PINRef) String() string { return fmt.Sprintf("PIN%d", int(p)) }

func (p PINRef) lengths() (int, int) {
	if p == PIN2 {
		return PIN2MinLen, PIN2MaxLen
	}
	return PIN1MinLen, PIN1MaxLen
}

// Errors of the PIN functions. They never contain a PIN.
var (
	ErrWrongPIN      = errors.New("sim: wrong PIN")
	ErrPINBlocked    = errors.New("sim: PIN blocked")
	ErrWrongPUK      = errors.New("sim: wrong PUK")
	ErrCardBlocked   = errors.New("sim: PUK blocked, the keys are unusable")
	ErrNotRegistered = errors.New("sim: Mobile ID not registered")
	ErrPINFormat     = errors.New("sim: PIN has the wrong length or is not all digits")
)

// secret is a PIN or PUK as the card keeps it: salted and hashed, with its
// try counter. The hash is not there for strength (the image is sealed)
// but so that the value is not held in clear longer than needed.
type secret struct {
	Salt  []byte `json:"salt"`
	Hash  []byte `json:"hash"`
	Tries int    `json:"tries"`
	Max   int    `json:"max"`
}

func newSecret(rand io.Reader, value string, max int) (*secret, error) {
	s := &secret{Salt: make([]byte, 16), Tries: max, Max: max}
	if _, err := io.ReadFull(rand, s.Salt); err != nil {
		return nil, fmt.Errorf("generate salt: %w", err)
	}
	s.Hash = s.digest(value)
	return s, nil
}

func (s *secret) digest(value string) []byte {
	h := sha256.New()
	h.Write(s.Salt)
	io.WriteString(h, value)
	return h.Sum(nil)
}

// verify checks value, counting a wrong try; a correct value restores the
// tries. blocked reports a secret with no tries left, which is not even
// compared.
func (s *secret) verify(value string) (ok, blocked bool) {
	if s.Tries <= 0 {
		return false, true
	}
	if subtle.ConstantTimeCompare(s.digest(value), s.Hash) == 1 {
		s.Tries = s.Max
		return true, false
	}
	s.Tries--
	return false, s.Tries <= 0
}

// validPIN checks the format of a PIN.
func validPIN(p string, min, max int) bool {
	if len(p) < min || len(p) > max {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}
