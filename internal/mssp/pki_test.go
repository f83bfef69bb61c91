package mssp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/ca"
	"mobileid/internal/ocsp"
	"mobileid/internal/store"
	"mobileid/internal/testenv"
	"mobileid/internal/tsa"
	"mobileid/internal/vmac"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock { return &testClock{t: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testUser is a card key and the certificate the CA issued for it.
type testUser struct {
	name string
	key  crypto.Signer
	cert *x509.Certificate
}

// testPKI is the project's CA as `mobileid ca` runs it: the key ceremony,
// the CA on a store, and its OCSP responder served over HTTP at the address
// the certificates name. Users: an EC authentication key, and an EC and an
// RSA signing key.
type testPKI struct {
	keys          *ca.Keys
	ca            *ca.CA
	roots         *x509.CertPool
	intermediates *x509.CertPool
	chain         []*x509.Certificate // issuing CA and root, for CMS
	// clock is the OCSP responder's clock.
	clock *testClock
	// server serves the OCSP responder; requests counts the requests it
	// got.
	server   *httptest.Server
	requests atomic.Int64

	authEC, signEC, signRSA *testUser
}

// newTestPKI builds a testPKI on db.
func newTestPKI(t testing.TB, db *store.DB) *testPKI {
	t.Helper()
	p := &testPKI{clock: newTestClock()}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	dir := filepath.Join(t.TempDir(), "ca")
	kek := make([]byte, 32)
	rand.Read(kek)
	if err := ca.Init(dir, kek, ca.InitOptions{Organization: "Mobile ID Test", Country: "EE", BaseURL: base}); err != nil {
		t.Fatalf("ca.Init() = %v", err)
	}
	keys, err := ca.Load(dir, kek)
	if err != nil {
		t.Fatalf("ca.Load() = %v", err)
	}
	p.keys = keys
	logger := slog.New(slog.DiscardHandler)
	p.ca, err = ca.New(ca.Config{BaseURL: base}, keys, db, logger, logger, prometheus.NewRegistry(), time.Now)
	if err != nil {
		t.Fatalf("ca.New() = %v", err)
	}
	responder, err := ocsp.New(ocsp.Config{Issuer: keys.Issuing, Cert: keys.OCSP, Key: keys.OCSPKey}, p.ca, logger, prometheus.NewRegistry(), p.clock.Now)
	if err != nil {
		t.Fatalf("ocsp.New() = %v", err)
	}
	p.ca.OnRevoke(responder.Invalidate)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		responder.ServeHTTP(w, r)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	p.server = srv

	p.roots = x509.NewCertPool()
	p.roots.AddCert(keys.Root)
	p.intermediates = x509.NewCertPool()
	p.intermediates.AddCert(keys.Issuing)
	p.chain = []*x509.Certificate{keys.Issuing, keys.Root}

	p.authEC = p.newUser(t, "EC authentication", ca.ProfileAuthentication, testECKey(t))
	p.signEC = p.newUser(t, "EC signing", ca.ProfileSigning, testECKey(t))
	p.signRSA = p.newUser(t, "RSA signing", ca.ProfileSigning, testRSAKey(t))
	return p
}

// newUser has the CA issue a certificate of profile for key, with the
// proof of possession a card gives.
func (p *testPKI) newUser(t testing.TB, name string, profile ca.Profile, key crypto.Signer) *testUser {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ref := vmac.KeyAuth
	if profile == ca.ProfileSigning {
		ref = vmac.KeySign
	}
	challenge := make([]byte, 16)
	rand.Read(challenge)
	d := sha256.Sum256(vmac.PoPMessage(challenge, ref, spki))
	c, err := p.ca.Issue(t.Context(), &ca.IssueRequest{
		Profile:           profile,
		Subject:           ca.Subject{Country: "EE", GivenName: "MARY ÄNN", Surname: "O’CONNEŽ-ŠUSLIK TESTNUMBER", NationalID: "60001019906"},
		PublicKey:         spki,
		Challenge:         challenge,
		KeyRef:            ref,
		ProofOfPossession: testCardSign(t, key, crypto.SHA256, d[:]),
	})
	if err != nil {
		t.Fatalf("Issue(%s) = %v", name, err)
	}
	cert, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	return &testUser{name: name, key: key, cert: cert}
}

// testCardSign signs digest as the card does: raw r‖s for ECDSA P-256
// (the digest truncated to 256 bits), PKCS #1 v1.5 with hash's DigestInfo
// for RSA.
func testCardSign(t testing.TB, key crypto.Signer, hash crypto.Hash, digest []byte) []byte {
	t.Helper()
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := ecdsa.SignASN1(rand.Reader, k, digest)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := vmac.SignatureFromASN1(vmac.AlgECDSAP256, der)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, hash, digest)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	t.Fatalf("testCardSign: key %T", key)
	return nil
}

func testECKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testP384Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testRSAKeys holds two RSA-2048 keys made once for all tests, since making
// one takes a noticeable fraction of a second.
var testRSAKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

// testRSAKey returns the RSA key of the users of every test PKI.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keys, err := testRSAKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[0]
}

// testOtherRSAKey returns an RSA key that is not testRSAKey.
func testOtherRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keys, err := testRSAKeys()
	if err != nil {
		t.Fatal(err)
	}
	return keys[1]
}

// testSQLite opens a SQLite store in a temporary directory.
func testSQLite(t testing.TB) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "test.db")})
	if err != nil {
		t.Fatalf("store.Open() = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testTSAPolicy is the policy of the test TSA, under the documentation arc
// of the private enterprise numbers.
var testTSAPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 1, 3161}

// newTSA returns the CA's time-stamping authority.
func (p *testPKI) newTSA(t testing.TB) *tsa.TSA {
	t.Helper()
	a, err := tsa.New(tsa.Config{Cert: p.keys.TSA, Key: p.keys.TSAKey, Chain: p.chain, Policy: testTSAPolicy}, nil, nil, nil)
	if err != nil {
		t.Fatalf("tsa.New() = %v", err)
	}
	return a
}

// testOtherCA returns a certificate for key, with the given key usage,
// from a root that is not the test PKI's.
func testOtherCA(t testing.TB, key crypto.PublicKey, usage x509.KeyUsage) *x509.Certificate {
	t.Helper()
	rootKey := testECKey(t)
	now := time.Now()
	root := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Other Root CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if root, err = x509.ParseCertificate(rootDER); err != nil {
		t.Fatal(err)
	}
	return testCert(t, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "Other User"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     usage,
	}, root, key, rootKey)
}

// testCert creates and parses a certificate.
func testCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("CreateCertificate(%s) = %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testWritePEM writes certs as PEM to dir/name and returns the path.
func testWritePEM(t testing.TB, dir, name string, certs ...*x509.Certificate) string {
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

// testOpenSSL returns the path of the openssl command.
func testOpenSSL(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		testenv.SkipOrFail(t, "openssl not found: %v", err)
	}
	return path
}
