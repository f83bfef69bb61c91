package vmac

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Domain separation labels. They make a proof of possession useless as an
// attestation and vice versa, and neither can pass for a SIGN digest of
// the same key because the label is part of the hashed message.
const (
	popLabel         = "VMAC-POP-1"
	attestationLabel = "VMAC-ATTEST-1"
)

// PoPMessage returns the message a new user key signs to prove that the
// card holds it: "VMAC-POP-1" ‖ challenge ‖ keyRef ‖ spki. The signer hashes
// it with SHA-256. Including the SPKI and key reference stops a card from
// presenting one key's proof for another key.
func PoPMessage(challenge []byte, keyRef KeyRef, spki []byte) []byte {
	m := make([]byte, 0, len(popLabel)+len(challenge)+1+len(spki))
	m = append(m, popLabel...)
	m = append(m, challenge...)
	m = append(m, byte(keyRef))
	return append(m, spki...)
}

// AttestationMessage returns the message the card attestation key signs
// in a REGISTER response: "VMAC-ATTEST-1" ‖ challenge ‖ ICCID (10 bytes as
// in EF_ICCID) ‖ len(authSPKI) ‖ authSPKI ‖ len(signSPKI) ‖ signSPKI, with
// the lengths as big-endian uint16. The signer hashes it with SHA-256. The
// lengths keep the boundary between the two keys unambiguous.
func AttestationMessage(challenge []byte, iccid string, authSPKI, signSPKI []byte) ([]byte, error) {
	id, err := encodeICCID(iccid)
	if err != nil {
		return nil, err
	}
	if len(authSPKI) > 0xFFFF || len(signSPKI) > 0xFFFF {
		return nil, errors.New("vmac: SubjectPublicKeyInfo longer than 65535 bytes")
	}
	m := make([]byte, 0, len(attestationLabel)+len(challenge)+len(id)+4+len(authSPKI)+len(signSPKI))
	m = append(m, attestationLabel...)
	m = append(m, challenge...)
	m = append(m, id...)
	m = binary.BigEndian.AppendUint16(m, uint16(len(authSPKI)))
	m = append(m, authSPKI...)
	m = binary.BigEndian.AppendUint16(m, uint16(len(signSPKI)))
	return append(m, signSPKI...), nil
}

// VerifyRegistration checks a successful REGISTER response against the
// challenge the MSSP sent: each key's algorithm matches its SPKI, each
// proof of possession verifies under its own key, the attestation
// certificate chains to trustedVendorRoots at time now (any extended key
// usage is accepted, since vendors mark attestation keys differently), the
// certified key is ECDSA P-256 and the attestation signature verifies under
// it. A zero now means the current time. The MSSP must not issue
// certificates for the keys unless this returns nil.
func VerifyRegistration(resp *RegisterResponse, challenge []byte, trustedVendorRoots *x509.CertPool, now time.Time) error {
	switch {
	case resp == nil:
		return errors.New("vmac: no REGISTER response")
	case resp.Result != StatusOK:
		return fmt.Errorf("vmac: REGISTER response status %v", resp.Result)
	case len(challenge) < minChallenge || len(challenge) > maxChallenge:
		return fmt.Errorf("vmac: challenge length %d, want %d–%d", len(challenge), minChallenge, maxChallenge)
	case trustedVendorRoots == nil:
		// x509 would fall back to the system roots, which never vouch
		// for SIM vendors.
		return errors.New("vmac: no trusted vendor roots")
	case bytes.Equal(resp.AuthKey.SPKI, resp.SignKey.SPKI):
		return errors.New("vmac: authentication and signing keys are the same key")
	}
	if err := verifyKeyEntry(&resp.AuthKey, KeyAuth, challenge); err != nil {
		return err
	}
	if err := verifyKeyEntry(&resp.SignKey, KeySign, challenge); err != nil {
		return err
	}

	cert, err := x509.ParseCertificate(resp.AttestationCert)
	if err != nil {
		return fmt.Errorf("vmac: attestation certificate: %w", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       trustedVendorRoots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("vmac: attestation certificate: %w", err)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return errors.New("vmac: attestation certificate does not allow digital signatures")
	}
	attKey, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || attKey.Curve != elliptic.P256() {
		return fmt.Errorf("vmac: attestation key is %T, want ECDSA P-256", cert.PublicKey)
	}
	msg, err := AttestationMessage(challenge, resp.ICCID, resp.AuthKey.SPKI, resp.SignKey.SPKI)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(msg)
	if err := VerifyDigest(attKey, crypto.SHA256, digest[:], resp.AttestationSignature); err != nil {
		return fmt.Errorf("vmac: attestation signature: %w", err)
	}
	return nil
}

// verifyKeyEntry checks that k's SPKI has the declared algorithm and that
// its proof of possession verifies.
func verifyKeyEntry(k *KeyEntry, ref KeyRef, challenge []byte) error {
	pub, err := x509.ParsePKIXPublicKey(k.SPKI)
	if err != nil {
		return fmt.Errorf("vmac: %v key: %w", ref, err)
	}
	if err := checkKeyAlg(pub, k.Alg); err != nil {
		return fmt.Errorf("vmac: %v key: %w", ref, err)
	}
	digest := sha256.Sum256(PoPMessage(challenge, ref, k.SPKI))
	if err := VerifyDigest(pub, crypto.SHA256, digest[:], k.PoP); err != nil {
		return fmt.Errorf("vmac: %v key proof of possession: %w", ref, err)
	}
	return nil
}

// checkKeyAlg reports whether pub is a key of algorithm alg.
func checkKeyAlg(pub crypto.PublicKey, alg KeyAlg) error {
	switch alg {
	case AlgECDSAP256:
		if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
			return nil
		}
	case AlgRSA2048:
		if k, ok := pub.(*rsa.PublicKey); ok && k.N.BitLen() == 2048 {
			return nil
		}
	default:
		return fmt.Errorf("algorithm %v: %w", alg, ErrUnsupported)
	}
	return fmt.Errorf("declared %v but the SubjectPublicKeyInfo holds %s", alg, describeKey(pub))
}

func describeKey(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// VerifyDigest verifies a signature in the card's format over a digest
// computed with hash: raw r‖s for an *ecdsa.PublicKey, PKCS #1 v1.5 for an
// *rsa.PublicKey. It is what the MSSP uses for SIGN responses, whose
// signatures X.509 and CMS code would not accept in raw ECDSA form.
func VerifyDigest(pub crypto.PublicKey, hash crypto.Hash, digest, sig []byte) error {
	switch hash {
	case crypto.SHA256, crypto.SHA384, crypto.SHA512:
	default:
		return fmt.Errorf("vmac: hash %v: %w", hash, ErrUnsupported)
	}
	if len(digest) != hash.Size() {
		return fmt.Errorf("vmac: digest length %d, want %d for %v", len(digest), hash.Size(), hash)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return fmt.Errorf("vmac: ECDSA signature length %d, want %d", len(sig), 2*size)
		}
		der, err := rawToASN1(sig)
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(k, digest, der) {
			return errors.New("vmac: ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		if err := rsa.VerifyPKCS1v15(k, hash, digest, sig); err != nil {
			return fmt.Errorf("vmac: RSA signature does not verify: %w", err)
		}
		return nil
	}
	return fmt.Errorf("vmac: public key type %T: %w", pub, ErrUnsupported)
}

// ecdsaSig is the ASN.1 ECDSA-Sig-Value of RFC 3279.
type ecdsaSig struct {
	R, S *big.Int
}

// SignatureToASN1 converts a signature from the card's format to the one
// X.509 and CMS expect: raw ECDSA r‖s becomes a DER ECDSA-Sig-Value, and an
// RSA PKCS #1 v1.5 signature, already in that form, is returned as a copy.
func SignatureToASN1(alg KeyAlg, raw []byte) ([]byte, error) {
	if n := alg.sigSize(); n == 0 {
		return nil, fmt.Errorf("vmac: algorithm %v: %w", alg, ErrUnsupported)
	} else if len(raw) != n {
		return nil, fmt.Errorf("vmac: %v signature length %d, want %d", alg, len(raw), n)
	}
	if alg == AlgRSA2048 {
		return bytes.Clone(raw), nil
	}
	return rawToASN1(raw)
}

// rawToASN1 converts r‖s with equal halves to DER. Zero components are
// rejected because no valid signature has them and DER would hide it.
func rawToASN1(raw []byte) ([]byte, error) {
	half := len(raw) / 2
	r := new(big.Int).SetBytes(raw[:half])
	s := new(big.Int).SetBytes(raw[half:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, errors.New("vmac: ECDSA signature has a zero component")
	}
	return asn1.Marshal(ecdsaSig{r, s})
}

// SignatureFromASN1 is the inverse of SignatureToASN1. It lets Go code that
// stands in for the card, such as a simulator, produce the wire format
// from crypto.Signer output: a DER ECDSA-Sig-Value becomes r‖s with each
// half left-padded to 32 bytes.
func SignatureFromASN1(alg KeyAlg, der []byte) ([]byte, error) {
	switch alg {
	case AlgRSA2048:
		if len(der) != alg.sigSize() {
			return nil, fmt.Errorf("vmac: %v signature length %d, want %d", alg, len(der), alg.sigSize())
		}
		return bytes.Clone(der), nil
	case AlgECDSAP256:
	default:
		return nil, fmt.Errorf("vmac: algorithm %v: %w", alg, ErrUnsupported)
	}
	var sig ecdsaSig
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil {
		return nil, fmt.Errorf("vmac: ECDSA signature: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("vmac: trailing data after ECDSA signature")
	}
	const size = 32
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.BitLen() > 8*size || sig.S.BitLen() > 8*size {
		return nil, errors.New("vmac: ECDSA signature component out of range for P-256")
	}
	raw := make([]byte, 2*size)
	sig.R.FillBytes(raw[:size])
	sig.S.FillBytes(raw[size:])
	return raw, nil
}
