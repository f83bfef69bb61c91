package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"mobileid/internal/vmac"
)

// testPKI is a root → issuing CA → user hierarchy with an EC and an RSA user.
type testPKI struct {
	root, issuing *x509.Certificate
	roots         *x509.CertPool
	ecUser        *x509.Certificate
	ecKey         *ecdsa.PrivateKey
	rsaUser       *x509.Certificate
	rsaKey        *rsa.PrivateKey
}

var (
	pkiOnce sync.Once
	pki     *testPKI
	pkiErr  error
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() { pki, pkiErr = newPKI(true) })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pki
}

// newPKI builds the test PKI; withRSA false leaves out the RSA user, whose
// key generation is very slow under fuzzing instrumentation.
func newPKI(withRSA bool) (*testPKI, error) {
	now := time.Now()
	serial := int64(1)
	issue := func(cn string, ca bool, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, error) {
		serial++
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn, Organization: []string{"Mobile ID Test"}},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
		}
		if ca {
			tmpl.IsCA = true
			tmpl.BasicConstraintsValid = true
			tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
		} else {
			tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	issKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	p := &testPKI{}
	if p.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if p.root, err = issue("Test Root CA", true, &rootKey.PublicKey, nil, rootKey); err != nil {
		return nil, err
	}
	if p.issuing, err = issue("Test Issuing CA", true, &issKey.PublicKey, p.root, rootKey); err != nil {
		return nil, err
	}
	if p.ecUser, err = issue("EC User", false, &p.ecKey.PublicKey, p.issuing, issKey); err != nil {
		return nil, err
	}
	if withRSA {
		if p.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, err
		}
		if p.rsaUser, err = issue("RSA User", false, &p.rsaKey.PublicKey, p.issuing, issKey); err != nil {
			return nil, err
		}
	}
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root)
	return p, nil
}

// simSign signs the pending digest as the SIM would: ECDSA as raw r‖s,
// converted to DER with vmac.SignatureToASN1; RSA as PKCS #1 v1.5.
func simSign(t testing.TB, p *testPKI, rsaUser bool, pend *Pending) []byte {
	t.Helper()
	if rsaUser {
		raw, err := rsa.SignPKCS1v15(rand.Reader, p.rsaKey, pend.Hash(), pend.Digest())
		if err != nil {
			t.Fatal(err)
		}
		sig, err := vmac.SignatureToASN1(vmac.AlgRSA2048, raw)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	der, err := ecdsa.SignASN1(rand.Reader, p.ecKey, pend.Digest())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := vmac.SignatureFromASN1(vmac.AlgECDSAP256, der)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := vmac.SignatureToASN1(vmac.AlgECDSAP256, raw)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

const testText = "I confirm the transfer of 100 EUR to account 12345.\nReference: ABC\n"

type signCase struct {
	name     string
	rsa      bool
	mode     string // "attached", "detached", "sha256", "sha384", "sha512"
	wantHash crypto.Hash
}

func signCases() []signCase {
	var cs []signCase
	for _, key := range []string{"ec", "rsa"} {
		for _, m := range []struct {
			mode string
			h    crypto.Hash
		}{{"attached", crypto.SHA256}, {"detached", crypto.SHA256}, {"sha256", crypto.SHA256}, {"sha384", crypto.SHA384}, {"sha512", crypto.SHA512}} {
			cs = append(cs, signCase{name: key + "/" + m.mode, rsa: key == "rsa", mode: m.mode, wantHash: m.h})
		}
	}
	return cs
}

func (c signCase) request(p *testPKI, content []byte) *Request {
	req := &Request{Signer: p.ecUser, Chain: []*x509.Certificate{p.issuing}, SigningTime: time.Now()}
	if c.rsa {
		req.Signer = p.rsaUser
	}
	switch c.mode {
	case "attached":
		req.Content = content
	case "detached":
		req.Content, req.Detached = content, true
	case "sha256":
		d := sha256.Sum256(content)
		req.Digest, req.Detached = d[:], true
	case "sha384":
		d := sha512.Sum384(content)
		req.Digest, req.Detached = d[:], true
	case "sha512":
		d := sha512.Sum512(content)
		req.Digest, req.Detached = d[:], true
	}
	return req
}

func sign(t testing.TB, p *testPKI, c signCase, content []byte) []byte {
	t.Helper()
	pend, err := Prepare(c.request(p, content))
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	der, err := pend.Finish(simSign(t, p, c.rsa, pend))
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return der
}

func TestSignVerify(t *testing.T) {
	p := getPKI(t)
	for _, c := range signCases() {
		t.Run(c.name, func(t *testing.T) {
			pend, err := Prepare(c.request(p, []byte(testText)))
			if err != nil {
				t.Fatal(err)
			}
			if pend.Hash() != c.wantHash || len(pend.Digest()) != c.wantHash.Size() {
				t.Fatalf("Hash() = %v, len(Digest()) = %d; want %v", pend.Hash(), len(pend.Digest()), c.wantHash)
			}
			h := c.wantHash.New()
			h.Write(pend.SignedAttributes())
			if got := h.Sum(nil); string(got) != string(pend.Digest()) {
				t.Fatal("Digest() is not the hash of SignedAttributes()")
			}
			der, err := pend.Finish(simSign(t, p, c.rsa, pend))
			if err != nil {
				t.Fatal(err)
			}
			var content []byte
			if c.mode != "attached" {
				content = []byte(testText)
			}
			signer, err := Verify(der, content, p.roots)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := p.ecUser
			if c.rsa {
				want = p.rsaUser
			}
			if !signer.Equal(want) {
				t.Errorf("Verify returned %v, want %v", signer.Subject, want.Subject)
			}
			if c.mode == "attached" {
				if _, err := Verify(der, []byte(testText), p.roots); err != nil {
					t.Errorf("Verify with matching content: %v", err)
				}
			}
		})
	}
}

func TestStructure(t *testing.T) {
	p := getPKI(t)
	der := sign(t, p, signCase{mode: "detached"}, []byte(testText))
	sd, err := parseSignedData(der)
	if err != nil {
		t.Fatal(err)
	}
	if sd.Version != 1 || sd.SignerInfos[0].Version != 1 {
		t.Errorf("versions %d/%d, want 1/1", sd.Version, sd.SignerInfos[0].Version)
	}
	if !sd.SignerInfos[0].SignatureAlgorithm.Algorithm.Equal(oidECDSAWithSHA256) {
		t.Errorf("signature algorithm %v", sd.SignerInfos[0].SignatureAlgorithm.Algorithm)
	}
	var eci encapContentInfo
	if err := unmarshalDER(sd.EncapContentInfo.FullBytes, &eci, "eci"); err != nil {
		t.Fatal(err)
	}
	if eci.EContent != nil {
		t.Error("detached signature has eContent")
	}
	attrs, err := parseAttributes(sd.SignerInfos[0].SignedAttrs.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range attrs {
		got = append(got, a.Type.String())
	}
	// DER orders the SET OF by encoding: signing-time sorts before
	// message-digest because its encoding is shorter.
	want := "1.2.840.113549.1.9.3 1.2.840.113549.1.9.5 1.2.840.113549.1.9.4 1.2.840.113549.1.9.16.2.47"
	if strings.Join(got, " ") != want {
		t.Errorf("signed attributes %v, want %v", got, want)
	}
	certs, err := parseCertificates(sd.Certificates)
	if err != nil || len(certs) != 2 {
		t.Errorf("certificates: %d, %v; want 2", len(certs), err)
	}
}

func TestSigningTime(t *testing.T) {
	p := getPKI(t)
	st := time.Date(2031, 5, 6, 7, 8, 9, 123, time.FixedZone("X", 3600))
	pend, err := Prepare(&Request{Content: []byte("x"), Signer: p.ecUser, SigningTime: st})
	if err != nil {
		t.Fatal(err)
	}
	var set asn1.RawValue
	if err := unmarshalDER(pend.SignedAttributes(), &set, "set"); err != nil {
		t.Fatal(err)
	}
	attrs, err := parseAttributes(set.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	v, err := singleValue(attrs, oidAttrSigningTime)
	if err != nil {
		t.Fatal(err)
	}
	if v[0] != asn1.TagUTCTime || string(v[2:]) != "310506060809Z" {
		t.Errorf("signing time encoded as %x", v)
	}
}

func TestPrepareErrors(t *testing.T) {
	p := getPKI(t)
	for name, req := range map[string]*Request{
		"nil signer":        {Content: []byte("x")},
		"no content":        {Signer: p.ecUser},
		"both":              {Signer: p.ecUser, Content: []byte("x"), Digest: make([]byte, 32), Detached: true},
		"digest attached":   {Signer: p.ecUser, Digest: make([]byte, 32)},
		"bad digest length": {Signer: p.ecUser, Digest: make([]byte, 20), Detached: true},
	} {
		if _, err := Prepare(req); err == nil || !strings.HasPrefix(err.Error(), "cms: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestFinishRejectsBadSignature(t *testing.T) {
	p := getPKI(t)
	for _, c := range []signCase{{name: "ec", mode: "detached"}, {name: "rsa", rsa: true, mode: "detached"}} {
		pend, err := Prepare(c.request(p, []byte(testText)))
		if err != nil {
			t.Fatal(err)
		}
		other, err := Prepare(c.request(p, []byte("other")))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pend.Finish(simSign(t, p, c.rsa, other)); err == nil {
			t.Errorf("%s: Finish accepted a signature over other attributes", c.name)
		}
		if _, err := pend.Finish([]byte{1, 2, 3}); err == nil {
			t.Errorf("%s: Finish accepted garbage", c.name)
		}
	}
}

func TestVerifyTampered(t *testing.T) {
	p := getPKI(t)
	text := []byte(testText)
	attached := sign(t, p, signCase{mode: "attached"}, text)
	detached := sign(t, p, signCase{mode: "detached", rsa: true}, text)

	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(p.issuing) // not a root of the chain's top

	flip := func(b []byte, i int) []byte {
		b = append([]byte(nil), b...)
		b[i] ^= 1
		return b
	}
	idx := strings.Index(string(attached), testText)
	if idx < 0 {
		t.Fatal("content not embedded")
	}
	cases := map[string]func() error{
		"detached other content": func() error { _, err := Verify(detached, []byte("I confirm nothing"), p.roots); return err },
		"detached no content":    func() error { _, err := Verify(detached, nil, p.roots); return err },
		"attached other content": func() error { _, err := Verify(attached, []byte("x"), p.roots); return err },
		"attached content flip":  func() error { _, err := Verify(flip(attached, idx+3), nil, p.roots); return err },
		"signature flip":         func() error { _, err := Verify(flip(detached, len(detached)-5), text, p.roots); return err },
		"untrusted":              func() error { _, err := Verify(attached, nil, x509.NewCertPool()); return err },
		"nil roots":              func() error { _, err := Verify(attached, nil, nil); return err },
		"truncated":              func() error { _, err := Verify(attached[:len(attached)-1], nil, p.roots); return err },
	}
	// Flipping any byte of the signed attributes must break the signature.
	sd, err := parseSignedData(attached)
	if err != nil {
		t.Fatal(err)
	}
	sa := sd.SignerInfos[0].SignedAttrs.FullBytes
	saIdx := strings.Index(string(attached), string(sa))
	cases["signed attrs flip"] = func() error { _, err := Verify(flip(attached, saIdx+len(sa)-3), nil, p.roots); return err }
	_ = otherRoots
	for name, f := range cases {
		err := f()
		if err == nil {
			t.Errorf("%s: Verify succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "cms: ") {
			t.Errorf("%s: error %q lacks the cms: prefix", name, err)
		}
	}
}

// fakeTimestampToken builds a ContentInfo(SignedData) holding a TSTInfo
// whose imprint is SHA-256 of sig. It is not signed: AddTimestamp only
// checks the imprint.
func fakeTimestampToken(t testing.TB, sig []byte) []byte {
	t.Helper()
	sum := sha256.Sum256(sig)
	info, err := asn1.Marshal(tstInfo{
		Version: 1,
		Policy:  asn1.ObjectIdentifier{1, 2, 3, 4},
		MessageImprint: messageImprint{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA256},
			HashedMessage: sum[:],
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Append serialNumber and genTime so the TSTInfo is well formed.
	rest, err := asn1.Marshal(struct {
		Serial  *big.Int
		GenTime time.Time `asn1:"generalized"`
	}{big.NewInt(7), time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(info, &seq); err != nil {
		t.Fatal(err)
	}
	var inner asn1.RawValue
	if _, err := asn1.Unmarshal(rest, &inner); err != nil {
		t.Fatal(err)
	}
	info = tlv(asn1.ClassUniversal, asn1.TagSequence, append(seq.Bytes, inner.Bytes...))
	eci, err := asn1.Marshal(encapContentInfo{EContentType: oidTSTInfo, EContent: info})
	if err != nil {
		t.Fatal(err)
	}
	da, _ := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: oidSHA256})
	sid, _ := asn1.Marshal(issuerAndSerial{Issuer: asn1.RawValue{FullBytes: tlv(asn1.ClassUniversal, asn1.TagSequence, nil)}, Serial: big.NewInt(1)})
	tok, err := marshalSignedData(&signedData{
		Version:          3,
		DigestAlgorithms: asn1.RawValue{FullBytes: tlv(asn1.ClassUniversal, asn1.TagSet, da)},
		EncapContentInfo: asn1.RawValue{FullBytes: eci},
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                asn1.RawValue{FullBytes: sid},
			DigestAlgorithm:    pkix.AlgorithmIdentifier{Algorithm: oidSHA256},
			SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256},
			Signature:          []byte{0},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestAddTimestamp(t *testing.T) {
	p := getPKI(t)
	der := sign(t, p, signCase{mode: "attached"}, []byte(testText))
	sd, err := parseSignedData(der)
	if err != nil {
		t.Fatal(err)
	}
	sig := sd.SignerInfos[0].Signature
	tok := fakeTimestampToken(t, sig)

	stamped, err := AddTimestamp(der, tok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(stamped, nil, p.roots); err != nil {
		t.Fatalf("Verify after AddTimestamp: %v", err)
	}
	sd2, err := parseSignedData(stamped)
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := parseAttributes(sd2.SignerInfos[0].UnsignedAttrs.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	v, err := singleValue(attrs, oidAttrTimeStampToken)
	if err != nil || string(v) != string(tok) {
		t.Fatalf("time-stamp attribute = %x, %v", v, err)
	}
	// Everything but the unsigned attributes is unchanged.
	sd2.SignerInfos[0].UnsignedAttrs = asn1.RawValue{}
	again, err := marshalSignedData(sd2)
	if err != nil || string(again) != string(der) {
		t.Error("AddTimestamp changed more than the unsigned attributes")
	}

	if _, err := AddTimestamp(der, fakeTimestampToken(t, []byte("other"))); err == nil {
		t.Error("AddTimestamp accepted a token over another signature")
	}
	if _, err := AddTimestamp(der, []byte{0x30, 0}); err == nil {
		t.Error("AddTimestamp accepted garbage")
	}
}

func FuzzVerify(f *testing.F) {
	p, err := newPKI(false)
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []signCase{{mode: "attached"}, {mode: "detached"}} {
		f.Add(sign(f, p, c, []byte(testText)))
	}
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80, 0, 0})
	f.Fuzz(func(t *testing.T, der []byte) {
		if _, err := Verify(der, []byte(testText), p.roots); err != nil && !strings.HasPrefix(err.Error(), "cms: ") {
			t.Errorf("error %q lacks the cms: prefix", err)
		}
		_, _ = AddTimestamp(der, der)
	})
}

// TestFinishVerified checks that FinishVerified builds the same SignedData
// as Finish from a good signature, which then verifies.
func TestFinishVerified(t *testing.T) {
	p := getPKI(t)
	for _, c := range []signCase{{name: "ec", mode: "attached"}, {name: "rsa", rsa: true, mode: "detached"}} {
		pend, err := Prepare(c.request(p, []byte(testText)))
		if err != nil {
			t.Fatal(err)
		}
		sig := simSign(t, p, c.rsa, pend)
		want, err := pend.Finish(sig)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pend.FinishVerified(sig)
		if err != nil {
			t.Fatalf("%s: FinishVerified: %v", c.name, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: FinishVerified = %x, want %x", c.name, got, want)
		}
	}
}
