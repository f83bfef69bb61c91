package idserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// testPKI is a root CA and a user certificate it issued.
type testPKI struct {
	root, leaf *x509.Certificate
	rootKey    *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T, now time.Time) *testPKI {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(rootDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "MARY TESTNUMBER"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, root, leafKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return &testPKI{root: root, leaf: leaf, rootKey: rootKey}
}

// TestChainCache checks that a verified chain is reused only while every
// certificate of it is valid, and that what does not chain is refused
// every time.
func TestChainCache(t *testing.T) {
	now := time.Now()
	pki := newTestPKI(t, now)
	roots := x509.NewCertPool()
	roots.AddCert(pki.root)
	s := &Server{cfg: Config{Roots: roots}, now: func() time.Time { return now }}

	first, err := parseAndChain(s, pki.leaf.Raw)
	if err != nil {
		t.Fatalf("parseAndChain = %v", err)
	}
	if !first.issuer.Equal(pki.root) || !first.notAfter.Equal(pki.leaf.NotAfter) || !first.notBefore.Equal(pki.leaf.NotBefore) {
		t.Errorf("chain = issuer %s, valid %v..%v; want the root, %v..%v", first.issuer.Subject, first.notBefore, first.notAfter,
			pki.leaf.NotBefore, pki.leaf.NotAfter)
	}
	if again, err := parseAndChain(s, pki.leaf.Raw); err != nil || again != first {
		t.Errorf("second parseAndChain = %p, %v; want the first result %p", again, err, first)
	}
	// Past the certificate's end the chain is verified again, and fails.
	now = pki.leaf.NotAfter.Add(time.Second)
	if _, err := parseAndChain(s, pki.leaf.Raw); err == nil {
		t.Error("parseAndChain after the certificate expired = nil error")
	}
	now = time.Now()

	// Another CA's certificate is refused, the second time too.
	other := newTestPKI(t, now)
	for i := range 2 {
		if _, err := parseAndChain(s, other.leaf.Raw); err == nil {
			t.Errorf("parseAndChain(another CA's certificate) #%d = nil error", i+1)
		}
	}
}

// TestOCSPAnswerReuse checks that an OCSP response whose bytes were
// verified before is not verified again, and that any other bytes are.
func TestOCSPAnswerReuse(t *testing.T) {
	now := time.Now()
	pki := newTestPKI(t, now)
	respond := func(status int, thisUpdate time.Time) []byte {
		der, err := ocsp.CreateResponse(pki.root, pki.root, ocsp.Response{
			Status: status, SerialNumber: pki.leaf.SerialNumber, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(time.Hour),
		}, pki.rootKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	c := newOCSPChecker(nil, time.Now, time.Second)
	key := ocspKey(pki.leaf, pki.root)
	good := respond(ocsp.Good, now.Add(-time.Minute))

	first, err := c.answer(key, good, pki.leaf, pki.root)
	if err != nil || first.status != ocsp.Good {
		t.Fatalf("answer(good) = %+v, %v", first, err)
	}
	if again, err := c.answer(key, good, pki.leaf, pki.root); err != nil || again != first {
		t.Errorf("answer(the same bytes) = %p, %v; want the first answer %p", again, err, first)
	}
	// A newer answer is verified, and replaces the first.
	newer := respond(ocsp.Good, now)
	second, err := c.answer(key, newer, pki.leaf, pki.root)
	if err != nil || second == first || !second.thisUpdate.Equal(now.Truncate(time.Second)) {
		t.Errorf("answer(newer) = %+v, %v; want a new answer of %v", second, err, now)
	}
	// Bytes that differ from the verified ones in the signature fail.
	forged := append([]byte(nil), newer...)
	forged[len(forged)-1] ^= 1
	if a, err := c.answer(key, forged, pki.leaf, pki.root); err == nil {
		t.Errorf("answer(a changed signature) = %+v, want an error", a)
	}
	// Revoked answers are verified, and not kept.
	revoked := respond(ocsp.Revoked, now)
	if a, err := c.answer(key, revoked, pki.leaf, pki.root); err != nil || a.status != ocsp.Revoked {
		t.Errorf("answer(revoked) = %+v, %v", a, err)
	}
	if a, err := c.answer(key, newer, pki.leaf, pki.root); err != nil || a != second {
		t.Errorf("answer(newer) after a revoked one = %p, %v; want the kept good answer %p", a, err, second)
	}
}
