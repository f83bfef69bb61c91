package bank

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParseIBAN(t *testing.T) {
	tests := []struct {
		in, want string
		err      string // part of the message; empty for a valid IBAN
	}{
		{"EE382200221020145685", "EE382200221020145685", ""},
		{"ee38 2200 2210 2014 5685", "EE382200221020145685", ""},
		{" EE38-2200-2210-2014-5685 ", "EE382200221020145685", ""},
		{"GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", ""},
		{"DE89 3704 0044 0532 0130 00", "DE89370400440532013000", ""},
		{"FR14 2004 1010 0505 0001 3M02 606", "FR1420041010050500013M02606", ""},
		{"NO93 8601 1117 947", "NO9386011117947", ""},
		{"LT12 1000 0111 0100 1000", "LT121000011101001000", ""},
		{accountIBAN(7), accountIBAN(7), ""},
		// A country not in the table is held to the general rule only.
		{makeIBAN("ZZ", "12345678901234"), makeIBAN("ZZ", "12345678901234"), ""},
		{"", "", "Enter the payee's IBAN"},
		{"   ", "", "Enter the payee's IBAN"},
		{"EE38220022102014568", "", "An IBAN of EE has 20 characters; this one has 19"},
		{"EE382200221020145686", "", "check digits do not match"},
		{"EE832200221020145685", "", "check digits do not match"},
		{"GB82WEST12345698765433", "", "check digits do not match"},
		{"EEAB2200221020145685", "", "starts with a country code"},
		{"1238220022102014568", "", "starts with a country code"},
		{"EE38 2200_2210 2014 5685", "", "only letters and digits"},
		{"EE38 2200 2210 2014 568€", "", "only letters and digits"},
		{"EE38", "", "15 to 34"},
		{"EE38" + strings.Repeat("1", 31), "", "15 to 34"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseIBAN(tt.in)
			switch {
			case tt.err == "" && (err != nil || got != tt.want):
				t.Errorf("parseIBAN(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("parseIBAN(%q) = %q, %v, want an error with %q", tt.in, got, err, tt.err)
			}
		})
	}
}

func TestFormatIBAN(t *testing.T) {
	if got, want := formatIBAN("EE382200221020145685"), "EE38 2200 2210 2014 5685"; got != want {
		t.Errorf("formatIBAN = %q, want %q", got, want)
	}
	if got, want := formatIBAN("NO9386011117947"), "NO93 8601 1117 947"; got != want {
		t.Errorf("formatIBAN = %q, want %q", got, want)
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"12.50", 1250, ""},
		{"12,50", 1250, ""},
		{"12.5", 1250, ""},
		{"12", 1200, ""},
		{" 0.01 ", 1, ""},
		{"007.10", 710, ""},
		{"9999999999.99", 999999999999, ""},
		{"", 0, "Enter the amount"},
		{"0", 0, "more than zero"},
		{"0.00", 0, "more than zero"},
		{"-5", 0, "e.g. 12.50"},
		{"+5", 0, "e.g. 12.50"},
		{"1e3", 0, "e.g. 12.50"},
		{"1.", 0, "e.g. 12.50"},
		{".5", 0, "e.g. 12.50"},
		{"1,000.00", 0, "e.g. 12.50"},
		{"1 000", 0, "e.g. 12.50"},
		{"12.505", 0, "at most two decimals"},
		{"10000000000", 0, "too large"},
		{"١٢", 0, "e.g. 12.50"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseAmount(tt.in)
			switch {
			case tt.err == "" && (err != nil || got != tt.want):
				t.Errorf("parseAmount(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("parseAmount(%q) = %d, %v, want an error with %q", tt.in, got, err, tt.err)
			}
		})
	}
}

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		cents        int64
		amount, pick string
	}{
		{1250, "12.50", "12.50"},
		{5, "0.05", "0.05"},
		{250000, "2500.00", "2,500.00"},
		{123456789, "1234567.89", "1,234,567.89"},
		{-100000, "-1000.00", "-1,000.00"},
	}
	for _, tt := range tests {
		if got := formatAmount(tt.cents); got != tt.amount {
			t.Errorf("formatAmount(%d) = %q, want %q", tt.cents, got, tt.amount)
		}
		if got := formatMoney(tt.cents); got != tt.pick {
			t.Errorf("formatMoney(%d) = %q, want %q", tt.cents, got, tt.pick)
		}
	}
}

func TestVerificationCode(t *testing.T) {
	mustHex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		hash []byte
		want string
	}{
		// The example of docs/api/mid-rest.md and SK's documentation.
		{mustHex("2f665f6a6999e0ef0752e00ec9f453adf59d8cb6"), "1462"},
		{make([]byte, 32), "0000"},
		{bytes.Repeat([]byte{0xff}, 32), "8191"},
		{append([]byte{0x03}, append(make([]byte, 30), 0x80)...), "0000"}, // only the bits that do not count
		{append([]byte{0x04}, append(make([]byte, 30), 0x01)...), "0129"},
	}
	for _, tt := range tests {
		if got := verificationCode(tt.hash); got != tt.want {
			t.Errorf("verificationCode(%x) = %s, want %s", tt.hash, got, tt.want)
		}
	}
}

func TestDisplayText(t *testing.T) {
	tests := []struct {
		cents int64
		payee string
		want  string
	}{
		{1250, "ACME", "Pay 12.50 EUR to ACME"},
		{250000, "Tallinna Vesi AS", "Pay 2500.00 EUR to Tallinna Vesi AS"},
		{1250, "A Very Long Company Name Limited", "Pay 12.50 EUR to A Very Long Company Nam"},
		// Cut where a space would end it: no trailing space.
		{1250, "A Very Long Company Ab Cd", "Pay 12.50 EUR to A Very Long Company Ab"},
		{1250, "Šveits Õun OÜ", "Pay 12.50 EUR to Sveits Oun OÜ"},
		{1250, "Łódź café", "Pay 12.50 EUR to Lodz café"},
		{1250, "Café {€}", "Pay 12.50 EUR to Café ???"},
		{1250, "Газпром", "Pay 12.50 EUR to ???????"},
		{999999999999, "ACME Corporation", "Pay 9999999999.99 EUR to ACME Corporatio"},
	}
	for _, tt := range tests {
		got := displayText(tt.cents, "EUR", tt.payee)
		if got != tt.want {
			t.Errorf("displayText(%d, %q) = %q, want %q", tt.cents, tt.payee, got, tt.want)
		}
		if n := len([]rune(got)); n > maxDisplayText {
			t.Errorf("displayText(%d, %q) has %d characters, want at most %d", tt.cents, tt.payee, n, maxDisplayText)
		}
		for _, r := range got {
			if !strings.ContainsRune(gsm7Basic, r) {
				t.Errorf("displayText(%d, %q) = %q has %q outside GSM-7", tt.cents, tt.payee, got, r)
			}
		}
	}
}

func TestPaymentOrderDocument(t *testing.T) {
	o := &paymentOrder{
		ID: "0123456789abcdef0123456789abcdef", Created: time.Date(2026, 3, 1, 14, 0, 5, 123e6, time.FixedZone("EET", 2*3600)),
		Bank: "Demo Bank", PayerName: "Mari-Liis Männik", PayerCountry: "EE", PayerNationalID: "47605030299",
		PayerIBAN: accountIBAN(1), PayeeName: "ACME Ltd", PayeeIBAN: "EE382200221020145685",
		Amount: 1250, Currency: "EUR", Reference: "Invoice 2026-17\r\nline two",
	}
	got := o.document()
	path := filepath.Join("testdata", "payment-order.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("document() =\n%s\nwant (%s)\n%s", got, path, want)
	}
	// The same order gives the same bytes; any field changes them.
	if again := o.document(); !bytes.Equal(again, got) {
		t.Errorf("document() is not deterministic")
	}
	o2 := *o
	o2.Amount++
	if bytes.Equal(o2.document(), got) {
		t.Errorf("document() does not change with the amount")
	}
}

// testPKI is a root, an issuing CA and the means to issue signing
// certificates under them.
type testPKI struct {
	root, issuing *x509.Certificate
	issuingKey    *ecdsa.PrivateKey
	roots, inter  *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	root := mustCert(t, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	issKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Issuing CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	iss := mustCert(t, issTmpl, root, &issKey.PublicKey, rootKey)
	p := &testPKI{root: root, issuing: iss, issuingKey: issKey, roots: x509.NewCertPool(), inter: x509.NewCertPool()}
	p.roots.AddCert(root)
	p.inter.AddCert(iss)
	return p
}

func mustCert(t testing.TB, tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signingCert issues a signing certificate for pub to the person, as the
// platform's CA does: keyUsage contentCommitment, subject C, CN, SN, GN,
// serialNumber.
func (p *testPKI) signingCert(t testing.TB, pub any, country, nationalID string, mod func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject: pkix.Name{Country: []string{country}, CommonName: "MÄNNIK,MARI-LIIS", SerialNumber: semanticsID(country, nationalID),
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidSurname, Value: "Männik"}, {Type: oidGivenName, Value: "Mari-Liis"}}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(3, 0, 0),
		KeyUsage: x509.KeyUsageContentCommitment,
	}
	if mod != nil {
		mod(tmpl)
	}
	return mustCert(t, tmpl, p.issuing, pub, p.issuingKey)
}

// rawECDSA signs hash as a SIM does for MID: r‖s, each 32 bytes.
func rawECDSA(t testing.TB, key *ecdsa.PrivateKey, hash []byte) []byte {
	t.Helper()
	der, err := ecdsa.SignASN1(rand.Reader, key, hash)
	if err != nil {
		t.Fatal(err)
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out
}

func TestVerifySignature(t *testing.T) {
	pki := newTestPKI(t)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecCert := pki.signingCert(t, &ecKey.PublicKey, "EE", "47605030299", nil)
	rsaCert := pki.signingCert(t, &rsaKey.PublicKey, "EE", "47605030299", nil)
	hash := sha256.Sum256([]byte("payment order"))
	other := sha256.Sum256([]byte("another payment order"))
	ecSig := rawECDSA(t, ecKey, hash[:])
	rsaSig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey, crypto.SHA256, hash[:])
	if err != nil {
		t.Fatal(err)
	}
	der, _ := ecdsa.SignASN1(rand.Reader, ecKey, hash[:])
	otherPKI := newTestPKI(t)
	strangerCert := otherPKI.signingCert(t, &ecKey.PublicKey, "EE", "47605030299", nil)
	encipher := pki.signingCert(t, &ecKey.PublicKey, "EE", "47605030299", func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageKeyEncipherment })
	tampered := bytes.Clone(ecSig)
	tampered[10] ^= 1
	now := time.Now()

	tests := []struct {
		name  string
		cert  *x509.Certificate
		hash  []byte
		sig   []byte
		alg   string
		at    time.Time
		inter *x509.CertPool
		ok    bool
	}{
		{"ECDSA raw r||s", ecCert, hash[:], ecSig, "SHA256WithECEncryption", now, pki.inter, true},
		{"RSA PKCS#1 v1.5", rsaCert, hash[:], rsaSig, "SHA256WithRSAEncryption", now, pki.inter, true},
		{"ECDSA over another hash", ecCert, other[:], ecSig, "SHA256WithECEncryption", now, pki.inter, false},
		{"RSA over another hash", rsaCert, other[:], rsaSig, "SHA256WithRSAEncryption", now, pki.inter, false},
		{"ECDSA tampered", ecCert, hash[:], tampered, "SHA256WithECEncryption", now, pki.inter, false},
		{"ECDSA as DER", ecCert, hash[:], der, "SHA256WithECEncryption", now, pki.inter, false},
		{"ECDSA short", ecCert, hash[:], ecSig[:63], "SHA256WithECEncryption", now, pki.inter, false},
		{"ECDSA empty", ecCert, hash[:], nil, "SHA256WithECEncryption", now, pki.inter, false},
		{"ECDSA named RSA", ecCert, hash[:], ecSig, "SHA256WithRSAEncryption", now, pki.inter, false},
		{"ECDSA with SHA-512 named", ecCert, hash[:], ecSig, "SHA512WithECEncryption", now, pki.inter, false},
		{"RSA named ECDSA", rsaCert, hash[:], rsaSig, "SHA256WithECEncryption", now, pki.inter, false},
		{"certificate of another CA", strangerCert, hash[:], ecSig, "SHA256WithECEncryption", now, pki.inter, false},
		{"no intermediates", ecCert, hash[:], ecSig, "SHA256WithECEncryption", now, nil, false},
		{"certificate expired", ecCert, hash[:], ecSig, "SHA256WithECEncryption", now.AddDate(4, 0, 0), pki.inter, false},
		{"certificate not yet valid", ecCert, hash[:], ecSig, "SHA256WithECEncryption", now.Add(-2 * time.Hour), pki.inter, false},
		{"key usage without signing", encipher, hash[:], ecSig, "SHA256WithECEncryption", now, pki.inter, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifySignature(tt.cert, tt.hash, tt.sig, tt.alg, pki.roots, tt.inter, tt.at)
			if (err == nil) != tt.ok {
				t.Errorf("verifySignature() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	if got, want := signerName(ecCert), "Mari-Liis Männik"; got != want {
		t.Errorf("signerName() = %q, want %q", got, want)
	}
}

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

// testCustomer is the identity the tests log in.
var testCustomer = identity{
	Subject: "sub-1", Name: "Mari-Liis Männik", GivenName: "Mari-Liis", FamilyName: "Männik",
	Phone: "+37200000766", NationalID: "47605030299", Country: "EE",
}

func newTestBank(t *testing.T, db *store.DB, cfg Config, clock *fakeClock) *Bank {
	t.Helper()
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://bank.test"
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "http://127.0.0.1:1" // nothing listens: discovery fails
	}
	if cfg.MIDURL == "" {
		cfg.MIDURL = "http://127.0.0.1:1/mid-api"
	}
	if cfg.Roots == nil {
		cfg.Roots = x509.NewCertPool()
	}
	cfg.ClientID, cfg.ClientSecret, cfg.RPName, cfg.RPUUID = "demo-bank", "de305d54-75b4-431b-adb2-eb6b9e546014", "Demo Bank", "de305d54-75b4-431b-adb2-eb6b9e546014"
	b, err := New(cfg, db, slog.New(slog.DiscardHandler), clock.now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

// do runs a request on h with the session cookie token, if any.
func do(t *testing.T, h http.Handler, method, target, token string, form url.Values, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestNewChecksConfig(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		good := Config{PublicURL: "https://bank.test", Issuer: "https://id.test", ClientID: "c", ClientSecret: "s",
			MIDURL: "https://id.test/mid-api", RPName: "Demo Bank", RPUUID: "u", Roots: x509.NewCertPool()}
		if _, err := New(good, db, nil, nil); err != nil {
			t.Fatalf("New(good) = %v", err)
		}
		for name, mod := range map[string]func(*Config){
			"relative URL":   func(c *Config) { c.PublicURL = "/bank" },
			"ftp URL":        func(c *Config) { c.PublicURL = "ftp://bank.test" },
			"no issuer":      func(c *Config) { c.Issuer = "" },
			"no client":      func(c *Config) { c.ClientID = "" },
			"no secret":      func(c *Config) { c.ClientSecret = "" },
			"no MID URL":     func(c *Config) { c.MIDURL = "" },
			"no RP UUID":     func(c *Config) { c.RPUUID = "" },
			"no roots":       func(c *Config) { c.Roots = nil },
			"query in URL":   func(c *Config) { c.PublicURL = "https://bank.test/?x=1" },
			"no host in URL": func(c *Config) { c.PublicURL = "https:///bank" },
		} {
			cfg := good
			mod(&cfg)
			if _, err := New(cfg, db, nil, nil); err == nil {
				t.Errorf("New with %s succeeded", name)
			}
		}
	})
}

func TestSessionExpiry(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		b := newTestBank(t, db, Config{}, clock)
		h := b.Handler()
		token, err := b.logIn(t.Context(), testCustomer)
		if err != nil {
			t.Fatal(err)
		}
		account := func() *httptest.ResponseRecorder { return do(t, h, http.MethodGet, "/account", token, nil, nil) }
		if w := account(); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Mari-Liis Männik") {
			t.Fatalf("GET /account = %d, want 200 with the name:\n%s", w.Code, w.Body)
		}
		// Each use moves the end on: 29 minutes, then 29 more, still in.
		for range 2 {
			clock.advance(29 * time.Minute)
			if w := account(); w.Code != http.StatusOK {
				t.Fatalf("GET /account 29 min after the last use = %d, want 200", w.Code)
			}
		}
		clock.advance(30 * time.Minute)
		w := account()
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
			t.Fatalf("GET /account 30 min after the last use = %d to %q, want 303 to /", w.Code, w.Header().Get("Location"))
		}
		if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != sessionCookie || c[0].MaxAge >= 0 {
			t.Errorf("expired session's cookies = %v, want the session cookie deleted", c)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM bank_sessions`); n != 0 {
			t.Errorf("%d sessions left after expiry, want 0", n)
		}
		// An htmx poll is sent to the landing page as a whole.
		w = do(t, h, http.MethodGet, "/account", token, nil, http.Header{"Hx-Request": {"true"}})
		if w.Header().Get("HX-Redirect") != "/" {
			t.Errorf("htmx request with an expired session: HX-Redirect %q, want /", w.Header().Get("HX-Redirect"))
		}
		// A forged session is no session.
		w = do(t, h, http.MethodGet, "/pay", "forged-token", nil, nil)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/" {
			t.Errorf("GET /pay with a forged session = %d to %q, want 303 to /", w.Code, w.Header().Get("Location"))
		}
	})
}

func TestSessionSurvivesRestart(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clock := &fakeClock{t: time.Now()}
		b := newTestBank(t, db, Config{}, clock)
		token, err := b.logIn(t.Context(), testCustomer)
		if err != nil {
			t.Fatal(err)
		}
		b2 := newTestBank(t, storetest.Reopen(t, db), Config{}, clock)
		if w := do(t, b2.Handler(), http.MethodGet, "/account", token, nil, nil); w.Code != http.StatusOK {
			t.Errorf("GET /account after a restart = %d, want 200", w.Code)
		}
	})
}

func TestLogout(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		b := newTestBank(t, db, Config{}, &fakeClock{t: time.Now()})
		h := b.Handler()
		token, err := b.logIn(t.Context(), testCustomer)
		if err != nil {
			t.Fatal(err)
		}
		if w := do(t, h, http.MethodPost, "/logout", token, url.Values{}, nil); w.Code != http.StatusSeeOther {
			t.Fatalf("POST /logout = %d, want 303", w.Code)
		}
		if w := do(t, h, http.MethodGet, "/account", token, nil, nil); w.Code != http.StatusSeeOther {
			t.Errorf("GET /account after logout = %d, want 303", w.Code)
		}
		// A form posted from another site is refused.
		token, _ = b.logIn(t.Context(), testCustomer)
		w := do(t, h, http.MethodPost, "/logout", token, url.Values{}, http.Header{"Sec-Fetch-Site": {"cross-site"}})
		if w.Code != http.StatusForbidden {
			t.Errorf("cross-site POST /logout = %d, want 403", w.Code)
		}
	})
}

func TestLoginWithoutProvider(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		b := newTestBank(t, db, Config{}, &fakeClock{t: time.Now()})
		h := b.Handler()
		w := do(t, h, http.MethodGet, "/", "", nil, nil)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Log in with Mobile ID") {
			t.Fatalf("GET / = %d:\n%s", w.Code, w.Body)
		}
		w = do(t, h, http.MethodGet, "/login", "", nil, nil)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "cannot be reached") {
			t.Errorf("GET /login without the ID Server = %d:\n%s", w.Code, w.Body)
		}
		w = do(t, h, http.MethodGet, "/callback?code=x&state=y", "", nil, nil)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "expired") {
			t.Errorf("GET /callback without a login = %d:\n%s", w.Code, w.Body)
		}
		w = do(t, h, http.MethodGet, "/nothing", "", nil, nil)
		if w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "goroutine") {
			t.Errorf("GET /nothing = %d:\n%s", w.Code, w.Body)
		}
	})
}

func count(t *testing.T, db *store.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// fakeMID is an ID Server's MID REST API as far as the bank uses it. It
// answers every session with result, signed by key (or not at all when
// key is nil).
type fakeMID struct {
	t      *testing.T
	cert   *x509.Certificate
	certOK string // the /certificate result
	mu     sync.Mutex
	key    crypto.Signer
	result string
	hashes map[string][]byte
	texts  []string
}

func (f *fakeMID) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var in map[string]string
	if r.Method == http.MethodPost {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
			return
		}
		if in["relyingPartyUUID"] != "de305d54-75b4-431b-adb2-eb6b9e546014" || in["relyingPartyName"] != "Demo Bank" {
			http.Error(w, `{"error":"Failed to authorize user"}`, http.StatusUnauthorized)
			return
		}
	}
	switch {
	case r.URL.Path == "/mid-api/certificate":
		out := map[string]string{"result": f.certOK}
		if f.certOK == "OK" {
			out["cert"] = base64.StdEncoding.EncodeToString(f.cert.Raw)
		}
		json.NewEncoder(w).Encode(out)
	case r.URL.Path == "/mid-api/signature":
		hash, _ := base64.StdEncoding.DecodeString(in["hash"])
		id := hex.EncodeToString(hash[:8])
		f.hashes[id] = hash
		f.texts = append(f.texts, in["displayText"])
		json.NewEncoder(w).Encode(map[string]string{"sessionID": id})
	case strings.HasPrefix(r.URL.Path, "/mid-api/signature/session/"):
		hash := f.hashes[strings.TrimPrefix(r.URL.Path, "/mid-api/signature/session/")]
		if hash == nil {
			http.Error(w, `{"error":"SessionID not found"}`, http.StatusNotFound)
			return
		}
		out := map[string]any{"state": "COMPLETE", "result": f.result}
		if f.result == "OK" {
			var sig []byte
			alg := "SHA256WithECEncryption"
			switch k := f.key.(type) {
			case *ecdsa.PrivateKey:
				sig = rawECDSA(f.t, k, hash)
			case *rsa.PrivateKey:
				sig, _ = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, hash)
				alg = "SHA256WithRSAEncryption"
			}
			out["signature"] = map[string]string{"value": base64.StdEncoding.EncodeToString(sig), "algorithm": alg}
		}
		json.NewEncoder(w).Encode(out)
	default:
		http.NotFound(w, r)
	}
}

var (
	vcOnPage   = regexp.MustCompile(`aria-label="verification code"><strong>([0-9]{4})</strong>`)
	fieldError = regexp.MustCompile(`<p class="field-error" id="([a-z]+)-error">([^<]*)</p>`)
)

func TestPayment(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		pki := newTestPKI(t)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		wrongKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		mid := &fakeMID{t: t, cert: pki.signingCert(t, &key.PublicKey, "EE", testCustomer.NationalID, nil), certOK: "OK",
			key: key, result: "OK", hashes: map[string][]byte{}}
		ms := httptest.NewServer(mid)
		t.Cleanup(ms.Close)
		clock := &fakeClock{t: time.Now()}
		b := newTestBank(t, db, Config{MIDURL: ms.URL + "/mid-api", Roots: pki.roots, Intermediates: pki.inter}, clock)
		h := b.Handler()
		token, err := b.logIn(t.Context(), testCustomer)
		if err != nil {
			t.Fatal(err)
		}
		balance := func() int64 {
			return int64(count(t, db, `SELECT balance FROM bank_accounts`))
		}
		// pay submits the form and follows the payment to its end.
		pay := func(t *testing.T, amount string) (string, *payment) {
			t.Helper()
			form := url.Values{"payee": {"ACME Ltd"}, "iban": {"EE38 2200 2210 2014 5685"}, "amount": {amount}, "reference": {"Invoice 7"}}
			w := do(t, h, http.MethodPost, "/pay", token, form, nil)
			if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/payments/") {
				t.Fatalf("POST /pay = %d to %q:\n%s", w.Code, w.Header().Get("Location"), w.Body)
			}
			loc := w.Header().Get("Location")
			w = do(t, h, http.MethodGet, loc, token, nil, nil)
			m := vcOnPage.FindStringSubmatch(w.Body.String())
			if w.Code != http.StatusOK || m == nil || !strings.Contains(w.Body.String(), `hx-get="`+loc+`/status"`) {
				t.Fatalf("waiting page = %d:\n%s", w.Code, w.Body)
			}
			w = do(t, h, http.MethodGet, loc+"/status", token, nil, http.Header{"Hx-Request": {"true"}})
			if w.Header().Get("HX-Redirect") != loc {
				t.Fatalf("status = %d, HX-Redirect %q, want %q:\n%s", w.Code, w.Header().Get("HX-Redirect"), loc, w.Body)
			}
			w = do(t, h, http.MethodGet, loc, token, nil, nil)
			p, err := b.payment(t.Context(), 1, strings.TrimPrefix(loc, "/payments/"))
			if err != nil || p == nil {
				t.Fatalf("payment %s: %v", loc, err)
			}
			if p.VC != m[1] || p.VC != verificationCode(p.Hash) || !bytes.Equal(p.Hash, sha256Sum(p.Document)) {
				t.Errorf("payment's code %s, page's %s, hash %x of its document", p.VC, m[1], p.Hash)
			}
			return w.Body.String(), p
		}

		t.Run("signed and booked", func(t *testing.T) {
			page, p := pay(t, "12.50")
			if p.State != stateBooked || balance() != demoBalance-1250 {
				t.Fatalf("payment %s %s, balance %d, want booked and %d", p.State, p.Result, balance(), demoBalance-1250)
			}
			for _, want := range []string{"signature verified", "Mari-Liis Männik", "serialNumber=PNOEE-47605030299", "GN=Mari-Liis", "CN=Test Issuing CA", p.VC} {
				if !strings.Contains(page, want) {
					t.Errorf("result page lacks %q:\n%s", want, page)
				}
			}
			if got := mid.texts[len(mid.texts)-1]; got != "Pay 12.50 EUR to ACME Ltd" {
				t.Errorf("displayText = %q, want %q", got, "Pay 12.50 EUR to ACME Ltd")
			}
			cert, _ := x509.ParseCertificate(p.Cert)
			if err := verifySignature(cert, p.Hash, p.Signature, p.Algorithm, pki.roots, pki.inter, time.Now()); err != nil {
				t.Errorf("stored signature does not verify: %v", err)
			}
			w := do(t, h, http.MethodGet, "/account", token, nil, nil)
			if !strings.Contains(w.Body.String(), "2,487.50 EUR") || !strings.Contains(w.Body.String(), "/payments/"+p.ID) {
				t.Errorf("account page lacks the balance or the payment:\n%s", w.Body)
			}
		})

		t.Run("cancelled", func(t *testing.T) {
			mid.mu.Lock()
			mid.result = "USER_CANCELLED"
			mid.mu.Unlock()
			defer func() { mid.mu.Lock(); mid.result = "OK"; mid.mu.Unlock() }()
			before := balance()
			page, p := pay(t, "10")
			if p.State != stateFailed || p.Result != "USER_CANCELLED" || balance() != before {
				t.Errorf("cancelled payment %s %s, balance %d, want failed and %d", p.State, p.Result, balance(), before)
			}
			if !strings.Contains(page, "You cancelled the payment on your phone. Nothing was paid.") {
				t.Errorf("result page:\n%s", page)
			}
		})

		t.Run("signature of another key", func(t *testing.T) {
			mid.mu.Lock()
			mid.key = wrongKey
			mid.mu.Unlock()
			defer func() { mid.mu.Lock(); mid.key = key; mid.mu.Unlock() }()
			before := balance()
			page, p := pay(t, "10")
			if p.State != stateFailed || p.Result != resultNotVerified || balance() != before || p.Signature != nil {
				t.Errorf("payment with a bad signature %s %s, balance %d, want failed and %d", p.State, p.Result, balance(), before)
			}
			if !strings.Contains(page, "could not be verified") {
				t.Errorf("result page:\n%s", page)
			}
		})

		t.Run("certificate of someone else", func(t *testing.T) {
			mid.mu.Lock()
			old := mid.cert
			mid.cert = pki.signingCert(t, &key.PublicKey, "EE", "38001085718", nil)
			mid.mu.Unlock()
			defer func() { mid.mu.Lock(); mid.cert = old; mid.mu.Unlock() }()
			before := balance()
			_, p := pay(t, "10")
			if p.State != stateFailed || p.Result != resultNotVerified || balance() != before {
				t.Errorf("payment with another person's certificate %s %s, want failed", p.State, p.Result)
			}
		})

		t.Run("no active Mobile ID", func(t *testing.T) {
			mid.mu.Lock()
			mid.certOK = "NOT_ACTIVE"
			mid.mu.Unlock()
			defer func() { mid.mu.Lock(); mid.certOK = "OK"; mid.mu.Unlock() }()
			form := url.Values{"payee": {"ACME"}, "iban": {"EE382200221020145685"}, "amount": {"1"}}
			w := do(t, h, http.MethodPost, "/pay", token, form, nil)
			if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "suspended or revoked") {
				t.Errorf("POST /pay with a suspended certificate = %d:\n%s", w.Code, w.Body)
			}
		})

		t.Run("form errors", func(t *testing.T) {
			before := count(t, db, `SELECT COUNT(*) FROM bank_payments`)
			form := url.Values{"payee": {" "}, "iban": {"EE382200221020145686"}, "amount": {"999999"}, "reference": {"a\x00b"}}
			w := do(t, h, http.MethodPost, "/pay", token, form, nil)
			got := map[string]string{}
			for _, m := range fieldError.FindAllStringSubmatch(w.Body.String(), -1) {
				got[m[1]] = m[2]
			}
			if w.Code != http.StatusBadRequest || len(got) != 4 || !strings.Contains(got["amount"], "more than your balance") ||
				!strings.Contains(got["iban"], "check digits") {
				t.Errorf("POST /pay with bad fields = %d, errors %v:\n%s", w.Code, got, w.Body)
			}
			// What was typed is shown again.
			if !strings.Contains(w.Body.String(), `value="EE382200221020145686"`) {
				t.Errorf("form does not keep the IBAN typed")
			}
			form = url.Values{"payee": {"Me"}, "iban": {accountIBAN(1)}, "amount": {"1"}}
			w = do(t, h, http.MethodPost, "/pay", token, form, nil)
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "your own account") {
				t.Errorf("POST /pay to the own account = %d:\n%s", w.Code, w.Body)
			}
			if after := count(t, db, `SELECT COUNT(*) FROM bank_payments`); after != before {
				t.Errorf("refused forms recorded %d payments", after-before)
			}
		})

		t.Run("another customer's payment", func(t *testing.T) {
			other := testCustomer
			other.Subject, other.NationalID = "sub-2", "38001085718"
			tok2, err := b.logIn(t.Context(), other)
			if err != nil {
				t.Fatal(err)
			}
			var id string
			if err := db.QueryRowContext(t.Context(), `SELECT id FROM bank_payments LIMIT 1`).Scan(&id); err != nil {
				t.Fatal(err)
			}
			for _, path := range []string{"/payments/" + id, "/payments/" + id + "/status"} {
				if w := do(t, h, http.MethodGet, path, tok2, nil, nil); w.Code != http.StatusNotFound {
					t.Errorf("GET %s as another customer = %d, want 404", path, w.Code)
				}
			}
		})

		t.Run("expired session at the ID Server", func(t *testing.T) {
			p := &payment{ID: "00000000000000000000000000000000", AccountID: 1, State: statePending, PayeeName: "X",
				PayeeIBAN: "EE382200221020145685", Amount: 100, Currency: "EUR", Document: []byte("x"), Hash: []byte("x"),
				VC: "0000", Session: "unknown", Cert: mid.cert.Raw, Created: clock.now()}
			if err := b.insertPayment(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			w := do(t, h, http.MethodGet, "/payments/"+p.ID+"/status", token, nil, nil)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("status = %d", w.Code)
			}
			if p, _ := b.payment(t.Context(), 1, p.ID); p.State != stateFailed || p.Result != resultExpired {
				t.Errorf("payment whose session is gone: %s %s, want failed %s", p.State, p.Result, resultExpired)
			}
		})
	})
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

func TestInsufficientFundsAtBooking(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		b := newTestBank(t, db, Config{}, &fakeClock{t: time.Now()})
		if _, err := b.logIn(t.Context(), testCustomer); err != nil {
			t.Fatal(err)
		}
		// Two payments that each fit the balance but not together: the
		// second to be signed fails.
		var ps []*payment
		for i := range 2 {
			p := &payment{ID: strings.Repeat(string(rune('a'+i)), 32), AccountID: 1, State: statePending, PayeeName: "X",
				PayeeIBAN: "EE382200221020145685", Amount: 200000, Currency: "EUR", Document: []byte("x"), Hash: []byte("x"),
				VC: "0000", Session: "s", Cert: []byte("c"), Created: time.Now()}
			if err := b.insertPayment(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		for _, p := range ps {
			if err := b.bookPayment(t.Context(), p, []byte("sig"), "SHA256WithECEncryption", "Mari-Liis Männik"); err != nil {
				t.Fatal(err)
			}
		}
		// Booking again changes nothing.
		if err := b.bookPayment(t.Context(), ps[0], []byte("sig"), "SHA256WithECEncryption", "Mari-Liis Männik"); err != nil {
			t.Fatal(err)
		}
		p0, _ := b.payment(t.Context(), 1, ps[0].ID)
		p1, _ := b.payment(t.Context(), 1, ps[1].ID)
		if p0.State != stateBooked || p1.State != stateFailed || p1.Result != resultInsufficientFunds {
			t.Errorf("payments %s, %s %s; want booked, failed %s", p0.State, p1.State, p1.Result, resultInsufficientFunds)
		}
		if got := count(t, db, `SELECT balance FROM bank_accounts`); got != demoBalance-200000 {
			t.Errorf("balance = %d, want %d", got, demoBalance-200000)
		}
	})
}

// TestUnderPrefix mounts the bank under a path, as PublicURL says.
func TestUnderPrefix(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clock := &fakeClock{t: time.Now()}
		b := newTestBank(t, db, Config{PublicURL: "https://example.test/bank/"}, clock)
		h := http.StripPrefix("/bank", b.Handler())
		w := do(t, h, http.MethodGet, "/bank/", "", nil, nil)
		body := w.Body.String()
		if w.Code != http.StatusOK || !strings.Contains(body, `href="/bank/login"`) || !strings.Contains(body, `href="/bank/static/base.css"`) {
			t.Errorf("GET /bank/ = %d:\n%s", w.Code, body)
		}
		if w := do(t, h, http.MethodGet, "/bank/static/htmx.min.js", "", nil, nil); w.Code != http.StatusOK {
			t.Errorf("GET /bank/static/htmx.min.js = %d, want 200", w.Code)
		}
		token, err := b.logIn(t.Context(), testCustomer)
		if err != nil {
			t.Fatal(err)
		}
		w = do(t, h, http.MethodGet, "/bank/", token, nil, nil)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/bank/account" {
			t.Errorf("GET /bank/ logged in = %d to %q, want 303 to /bank/account", w.Code, w.Header().Get("Location"))
		}
		w = do(t, h, http.MethodPost, "/bank/logout", token, url.Values{}, nil)
		c := w.Result().Cookies()
		if w.Header().Get("Location") != "/bank/" || len(c) != 1 || c[0].Path != "/bank/" || !c[0].Secure || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode {
			t.Errorf("POST /bank/logout = %d to %q, cookies %v", w.Code, w.Header().Get("Location"), c)
		}
	})
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"  ACME   Ltd ", "ACME Ltd", true},
		{"ACME\tLtd\n", "ACME Ltd", true},
		{"Šveits Õun OÜ", "Šveits Õun OÜ", true},
		{"", "", true},
		{"ACME\x00", "", false},
		{"ACME\x1b[31m", "", false},
		{"ACME\u202eLTD", "", false},
		{"ACME\u2028Ltd", "", false},
		{"ACME\xff", "", false},
	}
	for _, tt := range tests {
		if got, ok := cleanText(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("cleanText(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
