package vmac

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// mustHex decodes hex that may contain spaces, for readable test tables.
func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// parseHexFile decodes the commented hex format of testdata/*.hex and of
// the spec's examples: '#' starts a comment, whitespace is ignored.
func parseHexFile(text string) ([]byte, error) {
	var sb strings.Builder
	for line := range strings.Lines(text) {
		line, _, _ = strings.Cut(line, "#")
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(sb.String())
}

// fixedECKey derives a P-256 key from label so that examples and golden
// files are reproducible; ECDSA signing with a nil random source is
// deterministic (RFC 6979).
func fixedECKey(t testing.TB, label string) *ecdsa.PrivateKey {
	t.Helper()
	d := sha256.Sum256([]byte(label))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatalf("fixed key %q: %v", label, err)
	}
	return k
}

func spkiOf(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// cardSign signs a digest the way the card does and returns the wire
// format: raw r‖s for ECDSA (deterministic), PKCS #1 v1.5 for RSA.
func cardSign(t testing.TB, key crypto.Signer, hash crypto.Hash, digest []byte) []byte {
	t.Helper()
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := k.Sign(nil, digest, hash)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := SignatureFromASN1(AlgECDSAP256, der)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(nil, k, hash, digest)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("cardSign: key type %T", key)
	return nil
}

func sha256Of(b []byte) []byte {
	d := sha256.Sum256(b)
	return d[:]
}

// testPKI is a card vendor: a root CA and one card attestation key
// certified by it, all deterministic for a given name.
type testPKI struct {
	rootCert *x509.Certificate
	pool     *x509.CertPool
	attKey   *ecdsa.PrivateKey
	attCert  []byte
}

var (
	pkiNotBefore = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	pkiNotAfter  = time.Date(2045, 1, 1, 0, 0, 0, 0, time.UTC)
	verifyTime   = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
)

func newTestPKI(t testing.TB, name string) *testPKI {
	t.Helper()
	rootKey := fixedECKey(t, name+" root")
	root := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " Root"},
		NotBefore:             pkiNotBefore,
		NotAfter:              pkiNotAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(nil, root, root, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	rootCert, err := x509.ParseCertificate(rootDER)
	if err != nil {
		t.Fatal(err)
	}
	attKey := fixedECKey(t, name+" attestation")
	att := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: name + " Card Attestation"},
		NotBefore:    pkiNotBefore,
		NotAfter:     pkiNotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	attDER, err := x509.CreateCertificate(nil, att, rootCert, attKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(rootCert)
	return &testPKI{rootCert: rootCert, pool: pool, attKey: attKey, attCert: attDER}
}

// register plays the card's part of REGISTER: it builds a response with
// proofs of possession and the attestation for the given keys.
func (p *testPKI) register(t testing.TB, ref uint32, challenge []byte, iccid string, auth, sign crypto.Signer) *RegisterResponse {
	t.Helper()
	entry := func(key crypto.Signer, kr KeyRef) KeyEntry {
		alg := AlgECDSAP256
		if _, ok := key.(*rsa.PrivateKey); ok {
			alg = AlgRSA2048
		}
		spki := spkiOf(t, key.Public())
		return KeyEntry{Alg: alg, SPKI: spki, PoP: cardSign(t, key, crypto.SHA256, sha256Of(PoPMessage(challenge, kr, spki)))}
	}
	r := &RegisterResponse{
		Ref:             ref,
		Result:          StatusOK,
		AuthKey:         entry(auth, KeyAuth),
		SignKey:         entry(sign, KeySign),
		ICCID:           iccid,
		AttestationCert: p.attCert,
	}
	p.attest(t, r, challenge)
	return r
}

// attest (re)computes the attestation signature of r.
func (p *testPKI) attest(t testing.TB, r *RegisterResponse, challenge []byte) {
	t.Helper()
	msg, err := AttestationMessage(challenge, r.ICCID, r.AuthKey.SPKI, r.SignKey.SPKI)
	if err != nil {
		t.Fatal(err)
	}
	r.AttestationSignature = cardSign(t, p.attKey, crypto.SHA256, sha256Of(msg))
}

func newRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ptr[T any](v T) *T { return &v }

// dumpMessage renders an encoded message in the commented hex format, one
// TLV header per line and nested values indented, so that the golden
// files and the spec's examples can be read without a decoder.
func dumpMessage(title string, b []byte) string {
	var sb strings.Builder
	for line := range strings.Lines(title) {
		sb.WriteString("# " + strings.TrimRight(line, "\n") + "\n")
	}
	dumpTLVs(&sb, b, 0, 0)
	return sb.String()
}

func dumpTLVs(sb *strings.Builder, b []byte, parent byte, depth int) {
	const perLine = 16
	indent := strings.Repeat("   ", depth)
	line := func(code, comment string) {
		if comment == "" {
			fmt.Fprintf(sb, "%s\n", code)
			return
		}
		fmt.Fprintf(sb, "%-54s # %s\n", code, comment)
	}
	for len(b) > 0 {
		tag, v, rest, err := readTLV(b)
		if err != nil {
			panic(err) // only valid messages are dumped
		}
		hdr := b[:len(b)-len(rest)-len(v)]
		name := tagName(parent, tag)
		switch {
		case tag&constructed != 0:
			line(indent+hexSpaced(hdr), name)
			dumpTLVs(sb, v, tag, depth+1)
		case len(v) <= 8:
			line(indent+hexSpaced(append(hdr[:len(hdr):len(hdr)], v...)), name)
		default:
			line(indent+hexSpaced(hdr), name)
			for len(v) > 0 {
				n := min(perLine, len(v))
				line(indent+"   "+hexSpaced(v[:n]), "")
				v = v[n:]
			}
		}
		b = rest
	}
}

func hexSpaced(b []byte) string {
	s := make([]string, len(b))
	for i, x := range b {
		s[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(s, " ")
}

// tagName names a tag in the context of its parent for the dumps.
func tagName(parent, tag byte) string {
	switch tag {
	case tagRegister:
		return "REGISTER"
	case tagSign:
		return "SIGN"
	case tagDisplay:
		return "DISPLAY"
	case tagInfo:
		return "INFO"
	case tagReset:
		return "RESET"
	case tagGenericResponse:
		return "generic response"
	case tagRegisterResponse:
		return "REGISTER response"
	case tagSignResponse:
		return "SIGN response"
	case tagDisplayResponse:
		return "DISPLAY response"
	case tagInfoResponse:
		return "INFO response"
	case tagResetResponse:
		return "RESET response"
	case tagTxRef:
		return "TxRef"
	}
	if parent == tagAuthKey || parent == tagSignKey {
		switch tag {
		case tagKeyRef:
			return "key reference"
		case tagKeyAlg:
			return "key algorithm"
		case tagKeySPKI:
			return "SubjectPublicKeyInfo"
		case tagKeyPoP:
			return "proof of possession"
		}
	}
	switch tag {
	case 0x81:
		if parent == tagRegister {
			return "algorithms (auth << 4 | sign)"
		}
		return "parameters (key << 4 | hash)"
	case tagChallenge:
		return "challenge"
	case tagDigest:
		return "digest"
	case tagData:
		return "data"
	case tagTextGSM:
		return "display text, GSM 7-bit (septet count, packed)"
	case tagTextUCS2:
		return "display text, UCS-2"
	case tagRPGSM:
		return "RP name, GSM 7-bit (septet count, packed)"
	case tagRPUCS2:
		return "RP name, UCS-2"
	case tagVerCode:
		return "verification code (BCD)"
	case tagFlags:
		return "flags"
	case tagScope:
		return "scope"
	case tagStatus:
		return "status"
	case tagTriesLeft:
		return "tries left"
	case tagAttestSig:
		return "attestation signature"
	case tagAttestCert:
		return "attestation certificate"
	case tagICCID:
		return "ICCID"
	case tagSignature:
		return "signature"
	case tagAuthKey:
		return "authentication key"
	case tagSignKey:
		return "signing key"
	case tagVersion:
		return "applet version"
	case tagState:
		return "state"
	case tagPIN1Tries:
		return "PIN1 tries left"
	case tagPIN2Tries:
		return "PIN2 tries left"
	case tagPUKTries:
		return "PUK tries left"
	}
	return "?"
}
