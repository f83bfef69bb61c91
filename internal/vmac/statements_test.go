package vmac

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestPoPMessage(t *testing.T) {
	got := PoPMessage([]byte{0xC0, 0xC1}, KeySign, []byte{0x30, 0x00})
	want := append([]byte("VMAC-POP-1"), 0xC0, 0xC1, 0x02, 0x30, 0x00)
	if !bytes.Equal(got, want) {
		t.Errorf("PoPMessage = %x, want %x", got, want)
	}
}

func TestAttestationMessage(t *testing.T) {
	got, err := AttestationMessage([]byte{0xC0}, "8937201234567890123", []byte{0xA1, 0xA2, 0xA3}, []byte{0xB1})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]byte("VMAC-ATTEST-1"), mustHex(t, "C0 9873022143658709 21F3 0003 A1A2A3 0001 B1")...)
	if !bytes.Equal(got, want) {
		t.Errorf("AttestationMessage = %x, want %x", got, want)
	}
	if _, err := AttestationMessage(nil, "12x", nil, nil); err == nil {
		t.Error("AttestationMessage with a bad ICCID succeeded")
	}
}

func TestVerifyRegistration(t *testing.T) {
	vendor := newTestPKI(t, "Verify Vendor")
	rogue := newTestPKI(t, "Rogue Vendor")
	challenge := seq(24, 0x40)
	ecAuth, ecSign, other := fixedECKey(t, "auth"), fixedECKey(t, "sign"), fixedECKey(t, "other")
	rsaSign := newRSAKey(t)
	const iccid = "8937201234567890123"

	good := func() *RegisterResponse { return vendor.register(t, 1, challenge, iccid, ecAuth, ecSign) }

	tests := []struct {
		name      string
		resp      func() *RegisterResponse
		challenge []byte
		pool      *x509.CertPool
		now       time.Time
		want      string // "" for success
	}{
		{"ok ecdsa", good, challenge, vendor.pool, verifyTime, ""},
		{"ok rsa signing key", func() *RegisterResponse {
			return vendor.register(t, 1, challenge, iccid, ecAuth, rsaSign)
		}, challenge, vendor.pool, verifyTime, ""},
		{"zero now uses the clock", good, challenge, vendor.pool, time.Time{}, ""},
		{"wrong challenge", good, seq(24, 0x41), vendor.pool, verifyTime, "authentication key proof of possession"},
		{"short challenge", good, seq(8, 0), vendor.pool, verifyTime, "challenge length 8"},
		{"status not ok", func() *RegisterResponse {
			return &RegisterResponse{Result: StatusUserCancel}
		}, challenge, vendor.pool, verifyTime, "status USER_CANCEL"},
		{"nil response", func() *RegisterResponse { return nil }, challenge, vendor.pool, verifyTime, "no REGISTER response"},
		{"nil pool", good, challenge, nil, verifyTime, "no trusted vendor roots"},
		{"pop by another key", func() *RegisterResponse {
			r := good()
			r.AuthKey.PoP = cardSign(t, other, crypto.SHA256, sha256Of(PoPMessage(challenge, KeyAuth, r.AuthKey.SPKI)))
			vendor.attest(t, r, challenge)
			return r
		}, challenge, vendor.pool, verifyTime, "authentication key proof of possession"},
		{"pop of the other key slot", func() *RegisterResponse {
			r := good()
			r.SignKey.PoP = cardSign(t, ecSign, crypto.SHA256, sha256Of(PoPMessage(challenge, KeyAuth, r.SignKey.SPKI)))
			return r
		}, challenge, vendor.pool, verifyTime, "signing key proof of possession"},
		{"swapped keys", func() *RegisterResponse {
			r := good()
			r.AuthKey, r.SignKey = r.SignKey, r.AuthKey
			vendor.attest(t, r, challenge)
			return r
		}, challenge, vendor.pool, verifyTime, "proof of possession"},
		{"same key twice", func() *RegisterResponse {
			return vendor.register(t, 1, challenge, iccid, ecAuth, ecAuth)
		}, challenge, vendor.pool, verifyTime, "same key"},
		{"attestation by untrusted CA", func() *RegisterResponse {
			return rogue.register(t, 1, challenge, iccid, ecAuth, ecSign)
		}, challenge, vendor.pool, verifyTime, "attestation certificate: x509: certificate signed by unknown authority"},
		{"attestation cert from vendor, signature by rogue", func() *RegisterResponse {
			r := rogue.register(t, 1, challenge, iccid, ecAuth, ecSign)
			r.AttestationCert = vendor.attCert
			return r
		}, challenge, vendor.pool, verifyTime, "attestation signature"},
		{"tampered ICCID", func() *RegisterResponse {
			r := good()
			r.ICCID = "8937201234567890124"
			return r
		}, challenge, vendor.pool, verifyTime, "attestation signature"},
		{"tampered key after attestation", func() *RegisterResponse {
			r := good()
			o := vendor.register(t, 1, challenge, iccid, other, ecSign)
			r.AuthKey = o.AuthKey
			return r
		}, challenge, vendor.pool, verifyTime, "attestation signature"},
		{"alg mismatch ecdsa declared rsa", func() *RegisterResponse {
			r := good()
			r.AuthKey.Alg = AlgRSA2048
			r.AuthKey.PoP = seq(256, 1) // as the wire requires for RSA
			return r
		}, challenge, vendor.pool, verifyTime, "declared RSA-2048 but the SubjectPublicKeyInfo holds ECDSA P-256"},
		{"alg mismatch rsa declared ecdsa", func() *RegisterResponse {
			r := vendor.register(t, 1, challenge, iccid, ecAuth, rsaSign)
			r.SignKey.Alg = AlgECDSAP256
			r.SignKey.PoP = r.SignKey.PoP[:64]
			return r
		}, challenge, vendor.pool, verifyTime, "declared ECDSA P-256 but the SubjectPublicKeyInfo holds RSA-2048"},
		{"wrong curve", func() *RegisterResponse {
			p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			r := good()
			r.SignKey.SPKI = spkiOf(t, p384.Public())
			return r
		}, challenge, vendor.pool, verifyTime, "holds ECDSA P-384"},
		{"bad spki", func() *RegisterResponse {
			r := good()
			r.AuthKey.SPKI = []byte{0x30, 0x00}
			return r
		}, challenge, vendor.pool, verifyTime, "authentication key"},
		{"expired attestation certificate", good, challenge, vendor.pool, pkiNotAfter.Add(time.Hour), "expired"},
		{"bad certificate", func() *RegisterResponse {
			r := good()
			r.AttestationCert = []byte{0x30, 0x00}
			return r
		}, challenge, vendor.pool, verifyTime, "attestation certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.resp()
			err := VerifyRegistration(r, tc.challenge, tc.pool, tc.now)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("VerifyRegistration() = %v, want nil", err)
			case tc.want != "" && err == nil:
				t.Errorf("VerifyRegistration() = nil, want error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("VerifyRegistration() = %v, want error containing %q", err, tc.want)
			}
			if r != nil && r.Result == StatusOK {
				// Everything VerifyRegistration sees must survive the wire.
				b, err := MarshalResponse(r)
				if err != nil {
					t.Fatalf("MarshalResponse: %v", err)
				}
				if _, err := ParseResponse(b); err != nil {
					t.Fatalf("ParseResponse(%x): %v", b, err)
				}
			}
		})
	}
}

func TestVerifyDigest(t *testing.T) {
	ec := fixedECKey(t, "digest")
	rk := newRSAKey(t)
	d256 := sha256Of([]byte("m"))
	d512 := sha512.Sum512([]byte("m"))
	ecSig := cardSign(t, ec, crypto.SHA256, d256)
	ecSig512 := cardSign(t, ec, crypto.SHA512, d512[:])
	rsaSig := cardSign(t, rk, crypto.SHA256, d256)
	flip := func(b []byte) []byte {
		c := bytes.Clone(b)
		c[len(c)-1] ^= 1
		return c
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name        string
		pub         crypto.PublicKey
		hash        crypto.Hash
		digest, sig []byte
		want        string
		unsupported bool
	}{
		{"ecdsa ok", ec.Public(), crypto.SHA256, d256, ecSig, "", false},
		{"ecdsa sha512 ok", ec.Public(), crypto.SHA512, d512[:], ecSig512, "", false},
		{"ecdsa bad", ec.Public(), crypto.SHA256, d256, flip(ecSig), "does not verify", false},
		{"ecdsa other digest", ec.Public(), crypto.SHA256, flip(d256), ecSig, "does not verify", false},
		{"ecdsa der rejected", ec.Public(), crypto.SHA256, d256, mustDER(t, ecSig), "ECDSA signature length", false},
		{"ecdsa zero r", ec.Public(), crypto.SHA256, d256, make([]byte, 64), "zero component", false},
		{"rsa ok", rk.Public(), crypto.SHA256, d256, rsaSig, "", false},
		{"rsa bad", rk.Public(), crypto.SHA256, d256, flip(rsaSig), "does not verify", false},
		{"rsa wrong hash", rk.Public(), crypto.SHA384, bytes.Repeat(d256, 2)[:48], rsaSig, "does not verify", false},
		{"digest length", ec.Public(), crypto.SHA256, d256[:31], ecSig, "digest length 31", false},
		{"unsupported hash", ec.Public(), crypto.SHA1, d256[:20], ecSig, "", true},
		{"unsupported key", edPub, crypto.SHA256, d256, ecSig, "ed25519", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifyDigest(tc.pub, tc.hash, tc.digest, tc.sig)
			switch {
			case tc.want == "" && !tc.unsupported && err != nil:
				t.Errorf("VerifyDigest() = %v, want nil", err)
			case (tc.want != "" || tc.unsupported) && err == nil:
				t.Errorf("VerifyDigest() = nil, want error containing %q", tc.want)
			case err != nil && !strings.Contains(err.Error(), tc.want):
				t.Errorf("VerifyDigest() = %v, want error containing %q", err, tc.want)
			case err != nil && errors.Is(err, ErrUnsupported) != tc.unsupported:
				t.Errorf("VerifyDigest() = %v: errors.Is(ErrUnsupported) = %v, want %v", err, !tc.unsupported, tc.unsupported)
			}
		})
	}
}

func mustDER(t *testing.T, raw []byte) []byte {
	t.Helper()
	der, err := SignatureToASN1(AlgECDSAP256, raw)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSignatureASN1(t *testing.T) {
	rsaSig := seq(256, 1)
	tests := []struct {
		name string
		raw  []byte
		der  string
	}{
		{"small", append(append(make([]byte, 31), 1), append(make([]byte, 31), 2)...), "30 06 02 01 01 02 01 02"},
		{"high bit", append(bytes.Repeat([]byte{0x80}, 32), bytes.Repeat([]byte{0x7F}, 32)...),
			"30 45 02 21 00" + strings.Repeat("80", 32) + "02 20" + strings.Repeat("7F", 32)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := SignatureToASN1(AlgECDSAP256, tc.raw)
			if want := mustHex(t, tc.der); err != nil || !bytes.Equal(der, want) {
				t.Fatalf("SignatureToASN1(%x) = %x, %v, want %x", tc.raw, der, err, want)
			}
			raw, err := SignatureFromASN1(AlgECDSAP256, der)
			if err != nil || !bytes.Equal(raw, tc.raw) {
				t.Errorf("SignatureFromASN1(%x) = %x, %v, want %x", der, raw, err, tc.raw)
			}
		})
	}
	if got, err := SignatureToASN1(AlgRSA2048, rsaSig); err != nil || !bytes.Equal(got, rsaSig) {
		t.Errorf("SignatureToASN1(RSA) = %x, %v, want the input", got, err)
	}
	big33, _ := asn1.Marshal(ecdsaSig{new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)})
	neg, _ := asn1.Marshal(ecdsaSig{big.NewInt(-1), big.NewInt(1)})
	for _, tc := range []struct {
		name string
		fn   func() ([]byte, error)
		want string
	}{
		{"to: short", func() ([]byte, error) { return SignatureToASN1(AlgECDSAP256, seq(63, 1)) }, "length 63"},
		{"to: rsa short", func() ([]byte, error) { return SignatureToASN1(AlgRSA2048, seq(64, 1)) }, "length 64"},
		{"to: zero s", func() ([]byte, error) { return SignatureToASN1(AlgECDSAP256, append(seq(32, 1), make([]byte, 32)...)) }, "zero"},
		{"to: unknown alg", func() ([]byte, error) { return SignatureToASN1(3, seq(64, 1)) }, "unsupported"},
		{"from: too large", func() ([]byte, error) { return SignatureFromASN1(AlgECDSAP256, big33) }, "out of range"},
		{"from: negative", func() ([]byte, error) { return SignatureFromASN1(AlgECDSAP256, neg) }, "out of range"},
		{"from: trailing", func() ([]byte, error) { return SignatureFromASN1(AlgECDSAP256, append(mustDER(t, seq(64, 1)), 0)) }, "trailing"},
		{"from: garbage", func() ([]byte, error) { return SignatureFromASN1(AlgECDSAP256, []byte{1, 2}) }, "ECDSA signature"},
		{"from: rsa length", func() ([]byte, error) { return SignatureFromASN1(AlgRSA2048, seq(64, 1)) }, "length 64"},
		{"from: unknown alg", func() ([]byte, error) { return SignatureFromASN1(0, seq(64, 1)) }, "unsupported"},
	} {
		if got, err := tc.fn(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %x, %v, want error containing %q", tc.name, got, err, tc.want)
		}
	}
}
