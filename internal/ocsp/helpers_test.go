package ocsp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	xocsp "golang.org/x/crypto/ocsp"
)

// testPKI is root → issuing CA → delegated OCSP responder, built in code.
// Keys are derived from a label, so that the CertIDs of the fuzz seeds in
// testdata stay valid for every run; the certificates differ per run.
type testPKI struct {
	root, issuing, responder       *x509.Certificate
	rootKey, issuingKey, respKey   *ecdsa.PrivateKey
	issuingName                    string
	notBefore, notAfter, leafAfter time.Time
}

// testKey returns a P-256 key derived from label.
func testKey(t testing.TB, label string) *ecdsa.PrivateKey {
	t.Helper()
	seed := sha256.Sum256([]byte("mobileid ocsp test key " + label))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), seed[:])
	if err != nil {
		t.Fatalf("ParseRawPrivateKey(%q): %v", label, err)
	}
	return k
}

// pkiOption changes the responder certificate template.
type pkiOption func(*x509.Certificate)

// newTestPKI builds a PKI whose names and keys derive from label.
func newTestPKI(t testing.TB, label string, opts ...pkiOption) *testPKI {
	t.Helper()
	now := time.Now()
	p := &testPKI{
		rootKey:     testKey(t, label+" root"),
		issuingKey:  testKey(t, label+" issuing"),
		respKey:     testKey(t, label+" responder"),
		issuingName: "Mobile ID Test Issuing CA " + label,
		notBefore:   now.Add(-time.Hour),
		notAfter:    now.Add(10 * 365 * 24 * time.Hour),
	}
	p.root = createCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Mobile ID Test Root " + label},
		NotBefore:             p.notBefore,
		NotAfter:              p.notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, p.rootKey, p.rootKey)
	p.issuing = createCert(t, &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{CommonName: p.issuingName},
		NotBefore:             p.notBefore,
		NotAfter:              p.notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, p.root, p.issuingKey, p.rootKey)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "Mobile ID Test OCSP Responder " + label},
		NotBefore:    p.notBefore,
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: oidOCSPNoCheck, Value: asn1.NullBytes},
		},
	}
	for _, o := range opts {
		o(tmpl)
	}
	p.responder = createCert(t, tmpl, p.issuing, p.respKey, p.issuingKey)
	return p
}

func createCert(t testing.TB, tmpl, parent *x509.Certificate, key, signer *ecdsa.PrivateKey) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatalf("CreateCertificate(%v): %v", tmpl.Subject, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	return c
}

// leaf returns an end-entity certificate of the issuing CA.
func (p *testPKI) leaf(t testing.TB, serial int64) *x509.Certificate {
	t.Helper()
	k := testKey(t, fmt.Sprintf("leaf %d", serial))
	return createCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: fmt.Sprintf("+3580000%d", serial)},
		NotBefore:    p.notBefore,
		NotAfter:     p.notBefore.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, p.issuing, k, p.issuingKey)
}

// config returns the responder Config of the PKI.
func (p *testPKI) config() Config {
	return Config{Issuer: p.issuing, Cert: p.responder, Key: p.respKey}
}

// fakeStatus is what fakeSource says about one serial.
type fakeStatus struct {
	status    int
	revokedAt time.Time
	reason    int
}

// fakeSource is an in-memory Source: a map from serial to status; serials
// not in it are unknown.
type fakeSource struct {
	mu    sync.Mutex
	certs map[string]fakeStatus
	err   error
	// afterRead, if set, runs after the status is read and before it is
	// returned, to hold an answer in flight.
	afterRead func(serial *big.Int, st fakeStatus)
	calls     atomic.Int64
}

func newFakeSource() *fakeSource {
	return &fakeSource{certs: make(map[string]fakeStatus)}
}

func (s *fakeSource) set(serial int64, st fakeStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.certs[big.NewInt(serial).String()] = st
}

func (s *fakeSource) CertStatus(ctx context.Context, serial *big.Int) (int, time.Time, int, error) {
	s.calls.Add(1)
	s.mu.Lock()
	st, ok := s.certs[serial.String()]
	err, hook := s.err, s.afterRead
	s.mu.Unlock()
	if err != nil {
		return 0, time.Time{}, 0, err
	}
	if !ok {
		st = fakeStatus{status: xocsp.Unknown}
	}
	if hook != nil {
		hook(serial, st)
	}
	return st.status, st.revokedAt, st.reason, nil
}

var _ Source = (*fakeSource)(nil)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newTestResponder returns a Responder for p with its own metrics
// registry.
func newTestResponder(t testing.TB, p *testPKI, src Source, now func() time.Time) (*Responder, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(p.config(), src, nil, reg, now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r, reg
}

// The ASN.1 of an OCSPRequest, for building requests that
// xocsp.CreateRequest cannot: with a nonce, several Requests, or an odd
// version.
type (
	tCertID struct {
		HashAlgorithm  pkix.AlgorithmIdentifier
		IssuerNameHash []byte
		IssuerKeyHash  []byte
		SerialNumber   *big.Int
	}
	tRequest struct {
		ReqCert tCertID
		Exts    []pkix.Extension `asn1:"explicit,tag:0,optional"`
	}
	tTBSRequest struct {
		Version     int `asn1:"explicit,tag:0,default:0,optional"`
		RequestList []tRequest
		Exts        []pkix.Extension `asn1:"explicit,tag:2,optional"`
	}
	tOCSPRequest struct {
		TBSRequest tTBSRequest
	}
)

// certIDFor returns the CertID of serial under issuer, hashed with h.
func certIDFor(t testing.TB, issuer *x509.Certificate, serial *big.Int, h crypto.Hash) tCertID {
	t.Helper()
	var oid asn1.ObjectIdentifier
	switch h {
	case crypto.SHA1:
		oid = oidSHA1
	case crypto.SHA256:
		oid = oidSHA256
	case crypto.SHA384:
		oid = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	default:
		t.Fatalf("certIDFor: unsupported hash %v", h)
	}
	key, err := subjectPublicKey(issuer)
	if err != nil {
		t.Fatal(err)
	}
	nh, kh := h.New(), h.New()
	nh.Write(issuer.RawSubject)
	kh.Write(key)
	return tCertID{
		HashAlgorithm:  pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue},
		IssuerNameHash: nh.Sum(nil),
		IssuerKeyHash:  kh.Sum(nil),
		SerialNumber:   serial,
	}
}

// nonceExt returns a nonce extension as OpenSSL sends it: the nonce as an
// OCTET STRING inside extnValue.
func nonceExt(t testing.TB, nonce []byte) pkix.Extension {
	t.Helper()
	v, err := asn1.Marshal(nonce)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidNonce, Value: v}
}

func marshalRequest(t testing.TB, req tOCSPRequest) []byte {
	t.Helper()
	der, err := asn1.Marshal(req)
	if err != nil {
		t.Fatalf("marshal request: %v", err)
	}
	return der
}

// simpleRequest returns a request for one serial, with a nonce if nonce is
// not nil.
func simpleRequest(t testing.TB, issuer *x509.Certificate, serial int64, h crypto.Hash, nonce []byte) []byte {
	t.Helper()
	req := tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{{ReqCert: certIDFor(t, issuer, big.NewInt(serial), h)}}}}
	if nonce != nil {
		req.TBSRequest.Exts = []pkix.Extension{nonceExt(t, nonce)}
	}
	return marshalRequest(t, req)
}

// The ASN.1 of an OCSPResponse, for reading what x/crypto/ocsp does not
// expose: the responseExtensions.
type (
	tResponse struct {
		Status   asn1.Enumerated
		Response struct {
			ResponseType asn1.ObjectIdentifier
			Response     []byte
		} `asn1:"explicit,tag:0,optional"`
	}
	tBasicResponse struct {
		TBSResponseData tResponseData
		SigAlg          pkix.AlgorithmIdentifier
		Signature       asn1.BitString
		Certs           []asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	tResponseData struct {
		Version     int `asn1:"optional,default:0,explicit,tag:0"`
		ResponderID asn1.RawValue
		ProducedAt  time.Time `asn1:"generalized"`
		Responses   []asn1.RawValue
		Exts        []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
)

// responseExtensions returns the responseExtensions of a successful
// OCSPResponse.
func responseExtensions(t testing.TB, der []byte) []pkix.Extension {
	t.Helper()
	var resp tResponse
	if _, err := asn1.Unmarshal(der, &resp); err != nil {
		t.Fatalf("unmarshal OCSPResponse: %v", err)
	}
	var basic tBasicResponse
	if _, err := asn1.Unmarshal(resp.Response.Response, &basic); err != nil {
		t.Fatalf("unmarshal BasicOCSPResponse: %v", err)
	}
	return basic.TBSResponseData.Exts
}

// responseStatus returns the OCSP response status of der, or fails.
func responseStatus(t testing.TB, der []byte) xocsp.ResponseStatus {
	t.Helper()
	var resp tResponse
	if rest, err := asn1.Unmarshal(der, &resp); err != nil || len(rest) != 0 {
		t.Fatalf("unmarshal OCSPResponse: %v (%d bytes left)", err, len(rest))
	}
	return xocsp.ResponseStatus(resp.Status)
}

// responderKeyHash is the byKey ResponderID the responder must use.
func responderKeyHash(t testing.TB, cert *x509.Certificate) []byte {
	t.Helper()
	k, err := subjectPublicKey(cert)
	if err != nil {
		t.Fatal(err)
	}
	h := sha1.Sum(k)
	return h[:]
}

// parseAnswer parses and verifies a successful response for leaf.
func parseAnswer(t testing.TB, der []byte, leaf, issuer *x509.Certificate) *xocsp.Response {
	t.Helper()
	resp, err := xocsp.ParseResponseForCert(der, leaf, issuer)
	if err != nil {
		t.Fatalf("ParseResponseForCert: %v", err)
	}
	return resp
}
