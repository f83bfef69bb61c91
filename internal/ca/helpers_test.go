package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/store"
	"mobileid/internal/vmac"
)

const (
	testBaseURL = "http://ca.test"
	testPDSURL  = "http://pds.test/en" // 18 characters: the expected QC statements bytes depend on it
	testICCID   = "8937201234567890123"
)

var testSubject = Subject{Country: "EE", GivenName: "JAAK-KRISTJAN", Surname: "JÕEORG", NationalID: "38001085718"}

// clock is a settable clock, a minute behind the real time so that
// OpenSSL, which checks validity against its own clock, accepts what the
// CA signs even after a test has advanced it a little.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Add(-time.Minute).Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// auditLog records audit records: message and attributes as strings.
type auditLog struct {
	mu      sync.Mutex
	records []auditRecord
}

type auditRecord struct {
	Msg   string
	Attrs map[string]string
}

func (a *auditLog) Enabled(context.Context, slog.Level) bool { return true }
func (a *auditLog) WithAttrs([]slog.Attr) slog.Handler       { return a }
func (a *auditLog) WithGroup(string) slog.Handler            { return a }
func (a *auditLog) Handle(_ context.Context, r slog.Record) error {
	rec := auditRecord{Msg: r.Message, Attrs: map[string]string{}}
	r.Attrs(func(at slog.Attr) bool {
		rec.Attrs[at.Key] = at.Value.String()
		return true
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, rec)
	return nil
}

func (a *auditLog) all() []auditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]auditRecord(nil), a.records...)
}

// testCA is a CA made by a real ceremony in a temporary directory.
type testCA struct {
	*CA
	dir   string
	kek   []byte
	keys  *Keys
	clock *clock
	audit *auditLog
	reg   *prometheus.Registry
	db    *store.DB
	// vendor is the SIM vendor the CA trusts.
	vendor *vendor
}

func newKEK(t testing.TB) []byte {
	kek := make([]byte, 32)
	rand.Read(kek)
	return kek
}

// newTestCA runs a ceremony and starts a CA on db; mod, if not nil,
// adjusts the configuration.
func newTestCA(t testing.TB, db *store.DB, mod func(*Config)) *testCA {
	t.Helper()
	tc := &testCA{dir: t.TempDir(), kek: newKEK(t), clock: newClock(), audit: &auditLog{}, reg: prometheus.NewRegistry(), db: db}
	err := Init(tc.dir, tc.kek, InitOptions{
		Organization: "Mobile ID Test", Country: "EE", BaseURL: testBaseURL,
		Now: tc.clock.Now().Add(-time.Hour),
	})
	if err != nil {
		t.Fatalf("Init() = %v", err)
	}
	if tc.keys, err = Load(tc.dir, tc.kek); err != nil {
		t.Fatalf("Load() = %v", err)
	}
	tc.vendor = newVendor(t, "Test SIM Vendor")
	cfg := Config{BaseURL: testBaseURL, PDSURL: testPDSURL, TrustedVendorRoots: tc.vendor.pool}
	if mod != nil {
		mod(&cfg)
	}
	tc.CA, err = New(cfg, tc.keys, db, nil, slog.New(tc.audit), tc.reg, tc.clock.Now)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return tc
}

// cardKey is a key as a card holds it, with its SPKI as the card sends it.
type cardKey struct {
	signer crypto.Signer
	spki   []byte
}

func newCardKey(t testing.TB, signer crypto.Signer) cardKey {
	t.Helper()
	spki, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return cardKey{signer: signer, spki: spki}
}

func newECKey(t testing.TB) cardKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newCardKey(t, k)
}

// RSA keys are slow to make, so tests share a few.
var rsaKeys = sync.OnceValues(func() ([3]*rsa.PrivateKey, error) {
	var ks [3]*rsa.PrivateKey
	var err error
	for i, bits := range []int{2048, 2048, 1024} {
		if ks[i], err = rsa.GenerateKey(rand.Reader, bits); err != nil {
			return ks, err
		}
	}
	return ks, nil
})

// newRSAKey returns shared RSA key i: 0 and 1 are RSA-2048, 2 is RSA-1024.
func newRSAKey(t testing.TB, i int) cardKey {
	t.Helper()
	ks, err := rsaKeys()
	if err != nil {
		t.Fatal(err)
	}
	return newCardKey(t, ks[i])
}

// sign signs SHA-256(msg) as the card does: raw r‖s for ECDSA, PKCS #1
// v1.5 for RSA.
func (k cardKey) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	digest := sha256.Sum256(msg)
	sig, err := k.signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := k.signer.(*ecdsa.PrivateKey); ok {
		if sig, err = vmac.SignatureFromASN1(vmac.AlgECDSAP256, sig); err != nil {
			t.Fatal(err)
		}
	}
	return sig
}

// pop is the key's proof of possession for challenge and ref.
func (k cardKey) pop(t testing.TB, challenge []byte, ref vmac.KeyRef) []byte {
	return k.sign(t, vmac.PoPMessage(challenge, ref, k.spki))
}

// vendor is a SIM vendor CA with one card attestation key.
type vendor struct {
	root    *x509.Certificate
	pool    *x509.CertPool
	attKey  cardKey
	attCert []byte
}

func newVendor(t testing.TB, name string) *vendor {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := x509.ParseCertificate(der)
	att := newECKey(t)
	attDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " Card Attestation"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, root, att.signer.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &vendor{root: root, pool: pool, attKey: att, attCert: attDER}
}

// attest makes the card's attestation of the two keys.
func (v *vendor) attest(t testing.TB, challenge []byte, auth, sign []byte) *Attestation {
	t.Helper()
	msg, err := vmac.AttestationMessage(challenge, testICCID, auth, sign)
	if err != nil {
		t.Fatal(err)
	}
	return &Attestation{ICCID: testICCID, AuthSPKI: auth, SignSPKI: sign, Signature: v.attKey.sign(t, msg), Certificate: v.attCert}
}

// registration is what a card returns for REGISTER: two keys with their
// proofs of possession for one challenge, and an attestation.
type registration struct {
	challenge  []byte
	auth, sign cardKey
	att        *Attestation
}

func newRegistration(t testing.TB, v *vendor, auth, sign cardKey) *registration {
	t.Helper()
	r := &registration{challenge: make([]byte, 32), auth: auth, sign: sign}
	rand.Read(r.challenge)
	if v != nil {
		r.att = v.attest(t, r.challenge, auth.spki, sign.spki)
	}
	return r
}

// request is the registration server's request for profile p.
func (r *registration) request(t testing.TB, p Profile) *IssueRequest {
	t.Helper()
	k, ref := r.auth, vmac.KeyAuth
	if p == ProfileSigning {
		k, ref = r.sign, vmac.KeySign
	}
	return &IssueRequest{
		Profile: p, Subject: testSubject, PublicKey: k.spki, Challenge: r.challenge, KeyRef: ref,
		ProofOfPossession: k.pop(t, r.challenge, ref), Attestation: r.att,
	}
}

// issue issues a certificate or fails the test.
func (tc *testCA) issue(t testing.TB, req *IssueRequest) (*Certificate, *x509.Certificate) {
	t.Helper()
	rec, err := tc.Issue(t.Context(), req)
	if err != nil {
		t.Fatalf("Issue(%s) = %v", req.Profile, err)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatalf("ParseCertificate() = %v", err)
	}
	return rec, cert
}

// userCertRows counts the end-entity certificates in the store.
func userCertRows(t testing.TB, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM ca_certificate WHERE profile IN ('authentication', 'signing')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// parseCRL fetches the newest CRL and checks its signature.
func (tc *testCA) parseCRL(t testing.TB) *x509.RevocationList {
	t.Helper()
	crl, err := tc.LatestCRL(t.Context())
	if err != nil {
		t.Fatalf("LatestCRL() = %v", err)
	}
	rl, err := x509.ParseRevocationList(crl.DER)
	if err != nil {
		t.Fatalf("ParseRevocationList() = %v", err)
	}
	if err := rl.CheckSignatureFrom(tc.keys.Issuing); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	return rl
}
