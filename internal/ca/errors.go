package ca

import "errors"

// Errors returned, wrapped, by the CA. Refusals of an issuance request are
// *RefusalError values, which wrap ErrRefused.
var (
	// ErrRefused is wrapped by every *RefusalError, so callers that only
	// need to tell "the request was bad" from "the CA failed" can use
	// errors.Is.
	ErrRefused = errors.New("ca: request refused")
	// ErrNotFound means no certificate with that serial number was issued
	// by this CA.
	ErrNotFound = errors.New("ca: certificate not found")
	// ErrAlreadyRevoked means the certificate is already revoked for good;
	// a revocation cannot be changed or undone.
	ErrAlreadyRevoked = errors.New("ca: certificate already revoked")
	// ErrAlreadyOnHold means the certificate is already suspended.
	ErrAlreadyOnHold = errors.New("ca: certificate already on hold")
	// ErrNotOnHold means Release was called for a certificate that is not
	// suspended (good, or revoked for good).
	ErrNotOnHold = errors.New("ca: certificate is not on hold")
	// ErrBadReason means a revocation reason code this CA does not use.
	ErrBadReason = errors.New("ca: unsupported revocation reason")
	// ErrFutureRevocation means a revocation time later than now.
	ErrFutureRevocation = errors.New("ca: revocation time is in the future")
	// ErrCeremonyExists means Init found files of an earlier key ceremony;
	// it never overwrites them, because that would orphan every
	// certificate issued under the old keys.
	ErrCeremonyExists = errors.New("ca: a key ceremony already exists in this directory")
	// ErrBadKEK means the key-encryption key is not 32 bytes (64 hex digits).
	ErrBadKEK = errors.New("ca: key-encryption key must be 32 bytes (64 hex digits)")
	// ErrWrongKEK means a key file does not decrypt: the key-encryption key
	// is not the one used at the ceremony, or the file was damaged or
	// renamed (the role is authenticated with the key).
	ErrWrongKEK = errors.New("ca: key file does not decrypt with this key-encryption key")
)

// RefusalCode classifies why an issuance request was refused. The values
// are stable: they go into the HTTP API's error body.
type RefusalCode string

// Refusal codes.
const (
	RefusedProfile             RefusalCode = "bad_profile"
	RefusedSubject             RefusalCode = "bad_subject"
	RefusedKey                 RefusalCode = "bad_key"
	RefusedChallenge           RefusalCode = "bad_challenge"
	RefusedKeyRef              RefusalCode = "bad_key_ref"
	RefusedProofOfPossession   RefusalCode = "bad_proof_of_possession"
	RefusedAttestation         RefusalCode = "bad_attestation"
	RefusedAttestationRequired RefusalCode = "attestation_required"
)

// RefusalError is an issuance request the CA will not sign. Nothing was
// signed and nothing was stored. The HTTP API answers it with 422 and the
// reason, since the request was well-formed but its content is not
// acceptable; a retry with the same content gets the same answer.
type RefusalError struct {
	Code   RefusalCode
	Reason string // for people: what is wrong, without key material
}

func (e *RefusalError) Error() string { return "ca: request refused: " + e.Reason }

// Unwrap lets errors.Is(err, ErrRefused) recognise every refusal.
func (e *RefusalError) Unwrap() error { return ErrRefused }

func refuse(code RefusalCode, reason string) *RefusalError {
	return &RefusalError{Code: code, Reason: reason}
}
