package mssp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"mobileid/internal/cms"
	"mobileid/internal/vmac"
)

// testText is a DTBS text with characters outside ASCII.
const testText = "Pay 1 234,50 € to Ülo Õun — ref. 2026/11"

// testData is the document whose digest an application provider sends.
var testData = []byte("%PDF-1.7 the document an application provider has the user sign\n")

// testInput is one kind of thing to sign.
type testInput struct {
	name    string
	text    []byte
	digest  []byte
	hash    crypto.Hash
	content []byte // what the signature covers: the text or the document
}

func testInputs() []testInput {
	s256 := sha256.Sum256(testData)
	s384 := sha512.Sum384(testData)
	s512 := sha512.Sum512(testData)
	return []testInput{
		{name: "text", text: []byte(testText), hash: crypto.SHA256, content: []byte(testText)},
		{name: "SHA-256 digest", digest: s256[:], hash: crypto.SHA256, content: testData},
		{name: "SHA-384 digest", digest: s384[:], hash: crypto.SHA384, content: testData},
		{name: "SHA-512 digest", digest: s512[:], hash: crypto.SHA512, content: testData},
	}
}

// toSign builds the input of a signature by u.
func (in testInput) toSign(p *testPKI, f Format, u *testUser) *toSign {
	return &toSign{
		Format:      f,
		Text:        in.text,
		Digest:      in.digest,
		Hash:        in.hash,
		Cert:        u.cert,
		Chain:       p.chain,
		SigningTime: time.Date(2026, 11, 30, 12, 34, 56, 789, time.UTC),
	}
}

// testSign has u's card sign what digestToSign returns for in and
// assembles the result.
func testSign(t testing.TB, in *toSign, u *testUser, ts Timestamper) (digest []byte, hash crypto.Hash, rawSig, der []byte) {
	t.Helper()
	digest, hash, err := digestToSign(in)
	if err != nil {
		t.Fatalf("digestToSign() = %v", err)
	}
	rawSig = testCardSign(t, u.key, hash, digest)
	sig, err := assemble(t.Context(), in, rawSig, ts)
	if err != nil {
		t.Fatalf("assemble() = %v", err)
	}
	if in.Format == FormatCMS {
		if sig.PKCS1 != nil || len(sig.Base64Signature) == 0 {
			t.Fatalf("assemble() = %+v, want only Base64Signature", sig)
		}
		der = sig.Base64Signature
	}
	return digest, hash, rawSig, der
}

func TestFormatString(t *testing.T) {
	for f, want := range map[Format]string{FormatCMS: "CMS", FormatPKCS1: "PKCS1", 0: "Format(0)", 7: "Format(7)"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}

func TestDigestToSign(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	for _, u := range []*testUser{p.authEC, p.signEC, p.signRSA} {
		for _, f := range []Format{FormatCMS, FormatPKCS1} {
			for _, in := range testInputs() {
				t.Run(u.name+"/"+f.String()+"/"+in.name, func(t *testing.T) {
					ts := in.toSign(p, f, u)
					d1, h1, err := digestToSign(ts)
					if err != nil {
						t.Fatalf("digestToSign() = %v", err)
					}
					if h1 != in.hash {
						t.Errorf("digestToSign() hash = %v, want %v", h1, in.hash)
					}
					if len(d1) != h1.Size() {
						t.Errorf("digestToSign() digest of %d bytes, want %d", len(d1), h1.Size())
					}
					// As after a restart: an equal input read back.
					d2, h2, err := digestToSign(in.toSign(p, f, u))
					if err != nil || h2 != h1 || !bytes.Equal(d2, d1) {
						t.Errorf("digestToSign() again = %x, %v, %v; want %x, %v", d2, h2, err, d1, h1)
					}

					switch f {
					case FormatPKCS1:
						want := in.digest
						if in.text != nil {
							s := sha256.Sum256(in.text)
							want = s[:]
						}
						if !bytes.Equal(d1, want) {
							t.Errorf("digestToSign() = %x, want %x", d1, want)
						}
					case FormatCMS:
						// The digest covers the signing time, to the second.
						ts.SigningTime = ts.SigningTime.Add(time.Second)
						d3, _, err := digestToSign(ts)
						if err != nil || bytes.Equal(d3, d1) {
							t.Errorf("digestToSign() a second later = %x, %v; want another digest", d3, err)
						}
						ts.SigningTime = ts.SigningTime.Add(-time.Second + 500*time.Millisecond)
						if d4, _, err := digestToSign(ts); err != nil || !bytes.Equal(d4, d1) {
							t.Errorf("digestToSign() half a second later = %x, %v; want %x", d4, err, d1)
						}
					}
				})
			}
		}
	}
}

func TestDigestToSignErrors(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	s256 := sha256.Sum256(testData)
	good := func() *toSign {
		return &toSign{Format: FormatCMS, Digest: s256[:], Hash: crypto.SHA256, Cert: p.signEC.cert, Chain: p.chain, SigningTime: time.Now()}
	}
	p384 := testOtherCA(t, testP384Key(t).Public(), x509.KeyUsageContentCommitment)
	tests := []struct {
		name   string
		change func(*toSign)
	}{
		{"no certificate", func(in *toSign) { in.Cert = nil }},
		{"P-384 key", func(in *toSign) { in.Cert = p384 }},
		{"text and digest", func(in *toSign) { in.Text = []byte(testText) }},
		{"neither text nor digest", func(in *toSign) { in.Digest = nil }},
		{"text with SHA-512", func(in *toSign) { in.Digest, in.Text, in.Hash = nil, []byte(testText), crypto.SHA512 }},
		{"digest without hash", func(in *toSign) { in.Hash = 0 }},
		{"SHA-1 digest", func(in *toSign) { in.Digest, in.Hash = s256[:20], crypto.SHA1 }},
		{"digest shorter than its hash", func(in *toSign) { in.Digest = s256[:31] }},
		{"SHA-256 digest named SHA-384", func(in *toSign) { in.Hash = crypto.SHA384 }},
		{"CMS without signing time", func(in *toSign) { in.SigningTime = time.Time{} }},
		{"no format", func(in *toSign) { in.Format = 0 }},
		{"unknown format", func(in *toSign) { in.Format = 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good()
			tt.change(in)
			if d, h, err := digestToSign(in); err == nil {
				t.Errorf("digestToSign() = %x, %v, nil; want an error", d, h)
			}
			raw := testCardSign(t, p.signEC.key, crypto.SHA256, s256[:])
			if sig, err := assemble(t.Context(), in, raw, nil); err == nil {
				t.Errorf("assemble() = %+v, nil; want an error", sig)
			}
		})
	}
	if _, _, err := digestToSign(good()); err != nil {
		t.Errorf("digestToSign(good input) = %v", err)
	}
}

func TestAssembleCMS(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	for _, u := range []*testUser{p.authEC, p.signEC, p.signRSA} {
		for _, in := range testInputs() {
			t.Run(u.name+"/"+in.name, func(t *testing.T) {
				ts := in.toSign(p, FormatCMS, u)
				_, _, _, der := testSign(t, ts, u, nil)
				var content []byte // attached
				if in.digest != nil {
					content = in.content
				}
				signer, err := cms.Verify(der, content, p.roots)
				if err != nil {
					t.Fatalf("cms.Verify() = %v", err)
				}
				if !signer.Equal(u.cert) {
					t.Errorf("cms.Verify() signer = %s, want %s", signer.Subject, u.cert.Subject)
				}

				si := testParseSignerInfo(t, der)
				if in.text != nil && !bytes.Equal(si.eContent, in.text) {
					t.Errorf("eContent = %q, want %q", si.eContent, in.text)
				}
				if in.digest != nil && si.eContent != nil {
					t.Errorf("eContent = %q, want none (detached)", si.eContent)
				}
				md := in.digest
				if md == nil {
					s := sha256.Sum256(in.text)
					md = s[:]
				}
				if !bytes.Equal(si.messageDigest, md) {
					t.Errorf("message-digest attribute = %x, want %x", si.messageDigest, md)
				}
				if si.timeStampToken != nil {
					t.Error("CAdES-BES signature has a time-stamp token")
				}
			})
		}
	}
}

// TestAssembleCMSOpenSSL checks that OpenSSL verifies every kind of CMS
// signature against the CA's root.
func TestAssembleCMSOpenSSL(t *testing.T) {
	bin := testOpenSSL(t)
	p := newTestPKI(t, testSQLite(t))
	dir := t.TempDir()
	root := testWritePEM(t, dir, "root.pem", p.keys.Root)
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(data, testData, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*testUser{p.authEC, p.signEC, p.signRSA} {
		for _, in := range testInputs() {
			t.Run(u.name+"/"+in.name, func(t *testing.T) {
				_, _, _, der := testSign(t, in.toSign(p, FormatCMS, u), u, nil)
				sig := filepath.Join(t.TempDir(), "sig.der")
				if err := os.WriteFile(sig, der, 0o600); err != nil {
					t.Fatal(err)
				}
				args := []string{"cms", "-verify", "-inform", "der", "-in", sig, "-CAfile", root}
				if u == p.authEC {
					// Its extended key usage is clientAuth, which is not
					// OpenSSL's default purpose, S/MIME signing.
					args = append(args, "-purpose", "any")
				}
				if in.digest != nil {
					args = append(args, "-binary", "-content", data)
				}
				out := testRunOpenSSL(t, bin, args...)
				if !bytes.Equal(out, in.content) {
					t.Errorf("openssl cms -verify printed %q, want %q", out, in.content)
				}
			})
		}
	}
}

// TestAssembleCAdEST time-stamps signatures with the CA's TSA over HTTP.
func TestAssembleCAdEST(t *testing.T) {
	bin := testOpenSSL(t)
	p := newTestPKI(t, testSQLite(t))
	srv := httptest.NewServer(p.newTSA(t))
	defer srv.Close()
	stamper := &HTTPTimestamper{URL: srv.URL, Client: srv.Client()}
	dir := t.TempDir()
	root := testWritePEM(t, dir, "root.pem", p.keys.Root)
	issuing := testWritePEM(t, dir, "issuing.pem", p.keys.Issuing)

	for _, u := range []*testUser{p.signEC, p.signRSA} {
		for _, in := range testInputs()[:2] {
			t.Run(u.name+"/"+in.name, func(t *testing.T) {
				before := time.Now().Add(-time.Second)
				_, _, _, der := testSign(t, in.toSign(p, FormatCMS, u), u, stamper)
				var content []byte
				if in.digest != nil {
					content = in.content
				}
				if _, err := cms.Verify(der, content, p.roots); err != nil {
					t.Fatalf("cms.Verify() = %v", err)
				}
				si := testParseSignerInfo(t, der)
				if si.timeStampToken == nil {
					t.Fatal("no time-stamp token")
				}
				tok, err := timestamp.Parse(si.timeStampToken)
				if err != nil {
					t.Fatalf("timestamp.Parse(token) = %v", err)
				}
				imprint := sha256.Sum256(si.signature)
				if tok.HashAlgorithm != crypto.SHA256 || !bytes.Equal(tok.HashedMessage, imprint[:]) {
					t.Errorf("token imprint = %v %x, want SHA-256 %x", tok.HashAlgorithm, tok.HashedMessage, imprint)
				}
				if tok.Time.Before(before.Truncate(time.Second)) || tok.Time.After(time.Now()) {
					t.Errorf("token genTime = %v, want about now", tok.Time)
				}

				work := t.TempDir()
				sig := filepath.Join(work, "sig.der")
				if err := os.WriteFile(sig, der, 0o600); err != nil {
					t.Fatal(err)
				}
				args := []string{"cms", "-verify", "-inform", "der", "-in", sig, "-CAfile", root}
				if in.digest != nil {
					data := filepath.Join(work, "data")
					if err := os.WriteFile(data, in.content, 0o600); err != nil {
						t.Fatal(err)
					}
					args = append(args, "-binary", "-content", data)
				}
				if out := testRunOpenSSL(t, bin, args...); !bytes.Equal(out, in.content) {
					t.Errorf("openssl cms -verify printed %q, want %q", out, in.content)
				}
				printed := string(testRunOpenSSL(t, bin, "cms", "-cmsout", "-print", "-inform", "der", "-in", sig))
				if !strings.Contains(printed, "id-smime-aa-timeStampToken") {
					t.Errorf("openssl cms -print shows no id-smime-aa-timeStampToken:\n%s", printed)
				}

				token := filepath.Join(work, "token.der")
				if err := os.WriteFile(token, si.timeStampToken, 0o600); err != nil {
					t.Fatal(err)
				}
				out := testRunOpenSSL(t, bin, "ts", "-verify", "-token_in", "-in", token,
					"-digest", hex.EncodeToString(imprint[:]), "-CAfile", root, "-untrusted", issuing)
				if !strings.Contains(string(out), "Verification: OK") {
					t.Errorf("openssl ts -verify printed %q, want Verification: OK", out)
				}
			})
		}
	}
}

// testRunOpenSSL runs openssl and returns its standard output; it fails
// the test if openssl fails.
func testRunOpenSSL(t testing.TB, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// testFailingTimestamper fails every time-stamp request.
type testFailingTimestamper struct{}

var errTestTSA = errors.New("time-stamping authority unreachable")

func (testFailingTimestamper) Timestamp(context.Context, crypto.Hash, []byte) ([]byte, error) {
	return nil, errTestTSA
}

func TestAssembleTimestampFails(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	in := testInputs()[0].toSign(p, FormatCMS, p.signEC)
	digest, hash, err := digestToSign(in)
	if err != nil {
		t.Fatal(err)
	}
	raw := testCardSign(t, p.signEC.key, hash, digest)
	if sig, err := assemble(t.Context(), in, raw, testFailingTimestamper{}); !errors.Is(err, errTestTSA) {
		t.Errorf("assemble() with a failing TSA = %+v, %v; want %v", sig, err, errTestTSA)
	}
}

// TestHTTPTimestamperChecksReply makes the TSA's answers go wrong on the
// way and checks that no such token is accepted.
func TestHTTPTimestamperChecksReply(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	authority := p.newTSA(t)
	digest := sha256.Sum256([]byte("signature value"))
	other := sha256.Sum256([]byte("another signature value"))

	// respond answers query with the TSA after change rewrites it.
	respond := func(change func(*timestamp.Request)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var body bytes.Buffer
			body.ReadFrom(r.Body)
			req, err := timestamp.ParseRequest(body.Bytes())
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			change(req)
			query, err := req.Marshal()
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			reply, err := authority.Respond(r.Context(), query)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "application/timestamp-reply")
			w.Write(reply)
		}
	}
	tests := []struct {
		name    string
		handler http.Handler
		hash    crypto.Hash
		wantErr bool
	}{
		{"as asked", respond(func(*timestamp.Request) {}), crypto.SHA256, false},
		{"SHA-384", respond(func(*timestamp.Request) {}), crypto.SHA384, false},
		{"other nonce", respond(func(r *timestamp.Request) { r.Nonce.Add(r.Nonce, r.Nonce) }), crypto.SHA256, true},
		{"other imprint", respond(func(r *timestamp.Request) { r.HashedMessage = other[:] }), crypto.SHA256, true},
		{"no certificates", respond(func(r *timestamp.Request) { r.Certificates = false }), crypto.SHA256, true},
		{"rejection", respond(func(r *timestamp.Request) { r.TSAPolicyOID = []int{1, 2, 3} }), crypto.SHA256, true},
		{"HTTP error", http.NotFoundHandler(), crypto.SHA256, true},
		{"not a reply", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/timestamp-reply")
			w.Write([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
		}), crypto.SHA256, true},
		{"wrong content type", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<html>proxy login</html>"))
		}), crypto.SHA256, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			d := digest[:]
			if tt.hash == crypto.SHA384 {
				s := sha512.Sum384([]byte("signature value"))
				d = s[:]
			}
			tok, err := (&HTTPTimestamper{URL: srv.URL, Client: srv.Client()}).Timestamp(t.Context(), tt.hash, d)
			if tt.wantErr {
				if err == nil {
					t.Errorf("Timestamp() = %x, nil; want an error", tok)
				}
				return
			}
			if err != nil {
				t.Fatalf("Timestamp() = %v", err)
			}
			ts, err := timestamp.Parse(tok)
			if err != nil {
				t.Fatalf("timestamp.Parse() = %v", err)
			}
			if ts.HashAlgorithm != tt.hash || !bytes.Equal(ts.HashedMessage, d) {
				t.Errorf("token imprint = %v %x, want %v %x", ts.HashAlgorithm, ts.HashedMessage, tt.hash, d)
			}
		})
	}
}

func TestAssemblePKCS1(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	for _, u := range []*testUser{p.authEC, p.signEC, p.signRSA} {
		for _, in := range testInputs() {
			t.Run(u.name+"/"+in.name, func(t *testing.T) {
				ts := in.toSign(p, FormatPKCS1, u)
				digest, hash, err := digestToSign(ts)
				if err != nil {
					t.Fatal(err)
				}
				raw := testCardSign(t, u.key, hash, digest)
				sig, err := assemble(t.Context(), ts, raw, nil)
				if err != nil {
					t.Fatalf("assemble() = %v", err)
				}
				if sig.Base64Signature != nil || sig.PKCS1 == nil {
					t.Fatalf("assemble() = %+v, want only PKCS1", sig)
				}
				if !bytes.Equal(sig.PKCS1.SignatureValue, raw) {
					t.Errorf("SignatureValue = %x, want the card's %x", sig.PKCS1.SignatureValue, raw)
				}
				if !bytes.Equal(sig.PKCS1.X509Certificate, u.cert.Raw) {
					t.Error("X509Certificate is not the user's certificate")
				}
				cert, err := x509.ParseCertificate(sig.PKCS1.X509Certificate)
				if err != nil {
					t.Fatal(err)
				}
				if err := vmac.VerifyDigest(cert.PublicKey, hash, digest, sig.PKCS1.SignatureValue); err != nil {
					t.Errorf("VerifyDigest(SignatureValue) = %v", err)
				}
				wantLen := 64
				if u == p.signRSA {
					wantLen = 256
				}
				if len(sig.PKCS1.SignatureValue) != wantLen {
					t.Errorf("SignatureValue has %d bytes, want %d", len(sig.PKCS1.SignatureValue), wantLen)
				}
			})
		}
	}
}

// TestAssembleRejectsBadSignature checks that a signature that does not
// verify is never assembled.
func TestAssembleRejectsBadSignature(t *testing.T) {
	p := newTestPKI(t, testSQLite(t))
	for _, u := range []*testUser{p.signEC, p.signRSA} {
		for _, f := range []Format{FormatCMS, FormatPKCS1} {
			in := testInputs()[1].toSign(p, f, u)
			digest, hash, err := digestToSign(in)
			if err != nil {
				t.Fatal(err)
			}
			good := testCardSign(t, u.key, hash, digest)
			other := sha256.Sum256([]byte("other"))
			bad := map[string][]byte{
				"flipped bit":   testFlip(good),
				"truncated":     good[:len(good)-1],
				"other digest":  testCardSign(t, u.key, hash, other[:]),
				"other key":     testCardSign(t, testOtherKey(t, u), hash, digest),
				"empty":         nil,
				"zero r and s":  make([]byte, len(good)),
				"longer by one": append(bytes.Clone(good), 0),
			}
			for name, raw := range bad {
				t.Run(u.name+"/"+f.String()+"/"+name, func(t *testing.T) {
					if sig, err := assemble(t.Context(), in, raw, nil); err == nil {
						t.Errorf("assemble(%x) = %+v, want an error", raw, sig)
					}
				})
			}
		}
	}
}

// testOtherKey returns a key of the same kind as u's but another one.
func testOtherKey(t testing.TB, u *testUser) crypto.Signer {
	t.Helper()
	if _, ok := u.key.(*rsa.PrivateKey); ok {
		return testOtherRSAKey(t)
	}
	return testECKey(t)
}

func testFlip(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)/2] ^= 0x01
	return b
}

func BenchmarkAssembleCMS(b *testing.B) {
	p := newTestPKI(b, testSQLite(b))
	in := testInputs()[0].toSign(p, FormatCMS, p.signEC)
	digest, hash, err := digestToSign(in)
	if err != nil {
		b.Fatal(err)
	}
	raw := testCardSign(b, p.signEC.key, hash, digest)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := assemble(ctx, in, raw, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// testSignerInfo is what the tests read from a CMS SignedData.
type testSignerInfo struct {
	eContent       []byte // nil when detached
	messageDigest  []byte
	signature      []byte
	timeStampToken []byte
}

var (
	testOIDMessageDigest  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	testOIDTimeStampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
)

// testParseSignerInfo reads a DER ContentInfo(SignedData) with its own
// parser rather than the cms package's, so that the tests do not just ask
// the code under test what it wrote.
func testParseSignerInfo(t testing.TB, der []byte) testSignerInfo {
	t.Helper()
	var ci struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		t.Fatalf("ContentInfo: %v", err)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo struct {
			EContentType asn1.ObjectIdentifier
			EContent     []byte `asn1:"explicit,optional,tag:0"`
		}
		Certificates asn1.RawValue `asn1:"optional,tag:0"`
		SignerInfos  []struct {
			Version            int
			SID                asn1.RawValue
			DigestAlgorithm    asn1.RawValue
			SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
			SignatureAlgorithm asn1.RawValue
			Signature          []byte
			UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
		} `asn1:"set"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		t.Fatalf("SignedData: %v", err)
	}
	if len(sd.SignerInfos) != 1 {
		t.Fatalf("%d SignerInfos, want 1", len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	out := testSignerInfo{eContent: sd.EncapContentInfo.EContent, signature: si.Signature}
	if v := testAttribute(t, si.SignedAttrs.Bytes, testOIDMessageDigest); v != nil {
		if _, err := asn1.Unmarshal(v, &out.messageDigest); err != nil {
			t.Fatalf("message-digest: %v", err)
		}
	}
	out.timeStampToken = testAttribute(t, si.UnsignedAttrs.Bytes, testOIDTimeStampToken)
	return out
}

// testAttribute returns the DER of the value of the attribute of type oid
// in the content of a SET OF Attribute, or nil.
func testAttribute(t testing.TB, attrs []byte, oid asn1.ObjectIdentifier) []byte {
	t.Helper()
	for len(attrs) > 0 {
		var a struct {
			Type   asn1.ObjectIdentifier
			Values asn1.RawValue
		}
		rest, err := asn1.Unmarshal(attrs, &a)
		if err != nil {
			t.Fatalf("attribute: %v", err)
		}
		attrs = rest
		if a.Type.Equal(oid) {
			var v asn1.RawValue
			if _, err := asn1.Unmarshal(a.Values.Bytes, &v); err != nil {
				t.Fatalf("attribute %v value: %v", oid, err)
			}
			return v.FullBytes
		}
	}
	return nil
}
