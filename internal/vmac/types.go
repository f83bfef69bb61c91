package vmac

import (
	"crypto"
	"errors"
	"fmt"
)

// Protocol version implemented by this package. A version 1.0 applet
// reports it in the INFO response.
const (
	ProtocolMajor = 1
	ProtocolMinor = 0
)

// Top-level tags. A response tag is its command tag plus 0x10.
const (
	tagRegister = 0xA1
	tagSign     = 0xA2
	tagDisplay  = 0xA3
	tagInfo     = 0xA4
	tagReset    = 0xA5

	tagGenericResponse  = 0xB0
	tagRegisterResponse = 0xB1
	tagSignResponse     = 0xB2
	tagDisplayResponse  = 0xB3
	tagInfoResponse     = 0xB4
	tagResetResponse    = 0xB5
)

// Field tags. Command fields use 80–8F, response fields 90–9F and C0–CF,
// key entries A8/A9 reuse 81–84 inside their own scope.
const (
	tagTxRef     = 0x80
	tagAlgs      = 0x81 // REGISTER
	tagParams    = 0x81 // SIGN
	tagChallenge = 0x82
	tagDigest    = 0x83
	tagData      = 0x84
	tagTextGSM   = 0x85
	tagTextUCS2  = 0x86
	tagRPGSM     = 0x87
	tagRPUCS2    = 0x88
	tagVerCode   = 0x89
	tagFlags     = 0x8A
	tagScope     = 0x8B

	tagStatus     = 0x90
	tagTriesLeft  = 0x91
	tagAttestSig  = 0x9A
	tagAttestCert = 0x9B
	tagICCID      = 0x9C
	tagSignature  = 0x9E
	tagAuthKey    = 0xA8
	tagSignKey    = 0xA9
	tagVersion    = 0xC0
	tagState      = 0xC1
	tagPIN1Tries  = 0xC2
	tagPIN2Tries  = 0xC3
	tagPUKTries   = 0xC4

	tagKeyRef  = 0x81 // inside A8/A9
	tagKeyAlg  = 0x82
	tagKeySPKI = 0x83
	tagKeyPoP  = 0x84
)

// ErrUnsupported is wrapped by parse errors caused by a well-formed value
// that this protocol version does not define, such as an unknown algorithm
// or a reserved command tag. A card answers such a command with
// StatusUnsupported and every other parse error with StatusBadRequest:
//
//	status := vmac.StatusBadRequest
//	if errors.Is(err, vmac.ErrUnsupported) {
//		status = vmac.StatusUnsupported
//	}
var ErrUnsupported = errors.New("unsupported in VMAC 1.0")

// KeyRef names one of the two user keys on the card.
type KeyRef byte

// The user keys. Their values appear on the wire in SIGN parameters, in key
// entries and inside proof-of-possession statements.
const (
	KeyAuth KeyRef = 1 // authentication key, protected by PIN1
	KeySign KeyRef = 2 // signing key, protected by PIN2
)

// String returns "authentication", "signing" or KeyRef(n).
func (k KeyRef) String() string {
	switch k {
	case KeyAuth:
		return "authentication"
	case KeySign:
		return "signing"
	}
	return fmt.Sprintf("KeyRef(%d)", byte(k))
}

func (k KeyRef) valid() bool { return k == KeyAuth || k == KeySign }

// KeyAlg is the algorithm of a user key.
type KeyAlg byte

// Key algorithms. The zero value means "no key" where a key is optional.
const (
	AlgECDSAP256 KeyAlg = 1 // ECDSA on NIST P-256, signatures as raw r‖s
	AlgRSA2048   KeyAlg = 2 // RSA with a 2048-bit modulus, PKCS #1 v1.5
)

// String returns "ECDSA P-256", "RSA-2048" or KeyAlg(n).
func (a KeyAlg) String() string {
	switch a {
	case AlgECDSAP256:
		return "ECDSA P-256"
	case AlgRSA2048:
		return "RSA-2048"
	}
	return fmt.Sprintf("KeyAlg(%d)", byte(a))
}

func (a KeyAlg) valid() bool { return a == AlgECDSAP256 || a == AlgRSA2048 }

// sigSize is the fixed signature length of the algorithm, 0 if unknown.
func (a KeyAlg) sigSize() int {
	switch a {
	case AlgECDSAP256:
		return 64
	case AlgRSA2048:
		return 256
	}
	return 0
}

// HashAlg is the hash a SIGN command asks for.
type HashAlg byte

// Hash algorithms of SIGN.
const (
	HashSHA256 HashAlg = 1
	HashSHA384 HashAlg = 2
	HashSHA512 HashAlg = 3
)

// Hash returns the corresponding crypto.Hash, or 0 for an unknown value.
func (h HashAlg) Hash() crypto.Hash {
	switch h {
	case HashSHA256:
		return crypto.SHA256
	case HashSHA384:
		return crypto.SHA384
	case HashSHA512:
		return crypto.SHA512
	}
	return 0
}

// Size returns the digest length in bytes, or 0 for an unknown value.
func (h HashAlg) Size() int {
	switch h {
	case HashSHA256:
		return 32
	case HashSHA384:
		return 48
	case HashSHA512:
		return 64
	}
	return 0
}

// String returns "SHA-256", "SHA-384", "SHA-512" or HashAlg(n).
func (h HashAlg) String() string {
	switch h {
	case HashSHA256:
		return "SHA-256"
	case HashSHA384:
		return "SHA-384"
	case HashSHA512:
		return "SHA-512"
	}
	return fmt.Sprintf("HashAlg(%d)", byte(h))
}

// Status is the result code every response carries in tag 90.
type Status byte

// Status codes. Values not listed here still parse, so that an MSSP can log
// what a newer card said.
const (
	StatusOK                Status = 0x00
	StatusUserCancel        Status = 0x01 // the user declined
	StatusPINBlocked        Status = 0x02 // the key's PIN has no tries left
	StatusCardBlocked       Status = 0x03 // the PUK is blocked; keys are unusable
	StatusNoKey             Status = 0x04 // not registered, or the key is absent
	StatusTimeout           Status = 0x05 // the user did not answer in time
	StatusBadRequest        Status = 0x06 // the command is malformed or inconsistent
	StatusUnsupported       Status = 0x07 // a value is not supported, e.g. an algorithm
	StatusAlreadyRegistered Status = 0x08 // REGISTER on a registered card
	StatusInternalError     Status = 0x09
	StatusBusy              Status = 0x0A // another command is still being processed
)

// String returns the status name used in the specification, or
// STATUS_0xNN for values it does not define.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusUserCancel:
		return "USER_CANCEL"
	case StatusPINBlocked:
		return "PIN_BLOCKED"
	case StatusCardBlocked:
		return "CARD_BLOCKED"
	case StatusNoKey:
		return "NO_KEY"
	case StatusTimeout:
		return "TIMEOUT"
	case StatusBadRequest:
		return "BAD_REQUEST"
	case StatusUnsupported:
		return "UNSUPPORTED"
	case StatusAlreadyRegistered:
		return "ALREADY_REGISTERED"
	case StatusInternalError:
		return "INTERNAL_ERROR"
	case StatusBusy:
		return "BUSY"
	}
	return fmt.Sprintf("STATUS_0x%02X", byte(s))
}

// CardState is the applet life-cycle state reported by INFO.
type CardState byte

// Applet states.
const (
	StatePersonalised CardState = 1 // personalised, not registered
	StateRegistered   CardState = 2 // keys generated and PINs set
	StateBlocked      CardState = 3 // PUK blocked; only RESET helps
)

// String returns "PERSONALISED", "REGISTERED", "BLOCKED" or CardState(n).
func (s CardState) String() string {
	switch s {
	case StatePersonalised:
		return "PERSONALISED"
	case StateRegistered:
		return "REGISTERED"
	case StateBlocked:
		return "BLOCKED"
	}
	return fmt.Sprintf("CardState(%d)", byte(s))
}

func (s CardState) valid() bool { return s >= StatePersonalised && s <= StateBlocked }

// ResetScope says what RESET erases.
type ResetScope byte

// Reset scopes. Version 1.0 defines only one; others are reserved and
// rejected as unsupported, so that a future scope is never mistaken for a
// full reset.
const (
	ResetKeysAndPINs ResetScope = 1 // erase both keys and PINs so that REGISTER works again
)
