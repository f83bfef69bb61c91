package tsa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPolicy is the TSA policy of the test TSA, under the documentation arc
// of the private enterprise numbers.
var testPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 3161}

// testPKI is a root CA, an issuing CA (both ECDSA P-384) and a TSA
// certificate. The certificates are valid from an hour ago for a day, so
// that OpenSSL, which checks at the real time, accepts them.
type testPKI struct {
	root, ca, tsa  *x509.Certificate
	rootKey, caKey *ecdsa.PrivateKey
	tsaKey         crypto.Signer
}

// tsaCertOption changes the TSA certificate template, to make faulty ones.
type tsaCertOption func(*x509.Certificate)

// newTestPKI makes a PKI with a TSA key on curve.
func newTestPKI(t testing.TB, curve elliptic.Curve, opts ...tsaCertOption) *testPKI {
	t.Helper()
	return newTestPKIWithKey(t, newKey(t, curve), opts...)
}

// newTestPKIWithKey makes a PKI whose TSA certificate is for tsaKey.
func newTestPKIWithKey(t testing.TB, tsaKey crypto.Signer, opts ...tsaCertOption) *testPKI {
	t.Helper()
	p := &testPKI{rootKey: newKey(t, elliptic.P384()), caKey: newKey(t, elliptic.P384()), tsaKey: tsaKey}
	notBefore := time.Now().Add(-time.Hour)
	notAfter := notBefore.Add(25 * time.Hour)
	rootTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"EE"}, Organization: []string{"Mobile ID Test"}, CommonName: "Mobile ID Test Root CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	p.root = createCert(t, rootTmpl, rootTmpl, p.rootKey.Public(), p.rootKey)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(2),
		Subject:               pkix.Name{Country: []string{"EE"}, Organization: []string{"Mobile ID Test"}, CommonName: "Mobile ID Test Issuing CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	p.ca = createCert(t, caTmpl, p.root, p.caKey.Public(), p.rootKey)
	tsaTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{Country: []string{"EE"}, Organization: []string{"Mobile ID Test"}, CommonName: "Mobile ID Test TSA"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// crypto/x509 marks ExtKeyUsage non-critical; RFC 3161 §2.3 wants it
		// critical, so the extension is written by hand.
		ExtraExtensions: []pkix.Extension{ekuExtension(t, true, oidKPTimeStamping)},
	}
	for _, o := range opts {
		o(tsaTmpl)
	}
	p.tsa = createCert(t, tsaTmpl, p.ca, p.tsaKey.Public(), p.caKey)
	return p
}

var oidKPTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

func ekuExtension(t testing.TB, critical bool, purposes ...asn1.ObjectIdentifier) pkix.Extension {
	t.Helper()
	v, err := asn1.Marshal(purposes)
	if err != nil {
		t.Fatalf("marshal EKU: %v", err)
	}
	return pkix.Extension{Id: oidExtKeyUsage, Critical: critical, Value: v}
}

func newKey(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	return k
}

func createCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatalf("CreateCertificate(%s): %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("ParseCertificate: %v", err)
	}
	return c
}

// config is the TSA configuration for the PKI.
func (p *testPKI) config() Config {
	return Config{Cert: p.tsa, Key: p.tsaKey, Chain: []*x509.Certificate{p.ca, p.root}, Policy: testPolicy}
}

// writePEM writes certs to dir/name and returns the path.
func writePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
	t.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
