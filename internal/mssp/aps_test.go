package mssp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"mobileid/internal/etsi"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// apClock is a settable clock for the registry's Instant checks and rate
// limits.
type apClock struct {
	mu sync.Mutex
	t  time.Time
}

func newAPClock() *apClock { return &apClock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)} }

func (c *apClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *apClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestAPs returns a registry on db with the clock c and a 5-minute skew.
// It hashes with bcrypt's minimum cost, to keep the tests fast.
func newTestAPs(t testing.TB, db *store.DB, c *apClock) *APs {
	t.Helper()
	a, err := NewAPs(db, c.Now, 0)
	if err != nil {
		t.Fatalf("NewAPs() = %v", err)
	}
	a.cost = bcrypt.MinCost
	return a
}

// apTestCert makes a self-signed client certificate.
func apTestCert(t testing.TB, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func certFingerprint(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }

// checkAPFault fails unless err is an *etsi.Fault with code and detail.
func checkAPFault(t *testing.T, call string, err error, code etsi.Code, detail string) {
	t.Helper()
	var f *etsi.Fault
	if !errors.As(err, &f) {
		t.Errorf("%s = %v, want fault %d %q", call, err, code, detail)
		return
	}
	if f.Code != code || f.Detail != detail {
		t.Errorf("%s = fault %d %q, want %d %q", call, f.Code, f.Detail, code, detail)
	}
}

// checkAPNoFault fails unless err is nil.
func checkAPNoFault(t *testing.T, call string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s = %v, want nil", call, err)
	}
}

func bankAP() APConfig {
	return APConfig{
		AP: AP{
			ID:          "http://bank.example/mid",
			Name:        "Example Bank",
			Profiles:    []string{"http://mss.ficom.fi/TS102206/v1.0.0/authentication-profile.xml"},
			RateLimit:   2.5,
			URLPrefixes: []string{"https://bank.example/mss/"},
		},
		Password: "bank-secret-1",
	}
}

func TestNewAPs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if _, err := NewAPs(db, nil, -time.Second); err == nil {
			t.Errorf("NewAPs(skew -1s) succeeded")
		}
		a, err := NewAPs(db, nil, 0)
		if err != nil {
			t.Fatalf("NewAPs() = %v", err)
		}
		if a.skew != DefaultInstantSkew {
			t.Errorf("NewAPs(skew 0) skew = %v, want %v", a.skew, DefaultInstantSkew)
		}
		// Migrating again, as a second registry on the database does, is
		// harmless, also after the SIM registry.
		newTestSIMs(t, db)
		b, err := NewAPs(db, nil, time.Minute)
		if err != nil {
			t.Fatalf("second NewAPs() = %v", err)
		}
		if b.skew != time.Minute {
			t.Errorf("NewAPs(skew 1m) skew = %v, want 1m", b.skew)
		}
		if a.salt == b.salt {
			t.Errorf("two registries have the same cache salt %x", a.salt)
		}
		for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
			if got := fmt.Sprintf(f, a); got != "mssp.APs" {
				t.Errorf("Sprintf(%q, a) = %q, want mssp.APs", f, got)
			}
		}
	})
}

func TestAPsAddGetList(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		cert := apTestCert(t, "idserver")
		idp := APConfig{
			AP: AP{
				ID:          "urn:mobileid:idserver",
				Name:        "ID Server",
				ClientCerts: [][32]byte{certFingerprint(cert)},
			},
			Password: "idp-secret",
		}
		if err := a.Add(t.Context(), bankAP()); err != nil {
			t.Fatalf("Add(bank) = %v", err)
		}
		created := c.Now()
		c.Advance(time.Second)
		if err := a.Add(t.Context(), idp); err != nil {
			t.Fatalf("Add(idp) = %v", err)
		}

		wantBank := bankAP().AP
		wantBank.Burst = 3 // ceil(2.5)
		wantBank.CreatedAt = created
		wantIDP := idp.AP
		wantIDP.CreatedAt = created.Add(time.Second)
		for _, want := range []*AP{&wantBank, &wantIDP} {
			got, err := a.Get(t.Context(), want.ID)
			if err != nil {
				t.Fatalf("Get(%s) = %v", want.ID, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Get(%s) (-want +got):\n%s", want.ID, diff)
			}
		}
		list, err := a.List(t.Context())
		if err != nil {
			t.Fatalf("List() = %v", err)
		}
		if diff := cmp.Diff([]*AP{&wantBank, &wantIDP}, list); diff != "" {
			t.Errorf("List() (-want +got):\n%s", diff)
		}

		dup := bankAP()
		dup.Name = "Other"
		if err := a.Add(t.Context(), dup); !errors.Is(err, ErrAPExists) {
			t.Errorf("Add(existing ID) = %v, want ErrAPExists", err)
		}
		if _, err := a.Get(t.Context(), "http://nobody.example/"); !errors.Is(err, ErrUnknownAP) {
			t.Errorf("Get(unknown) = %v, want ErrUnknownAP", err)
		}
	})
}

func TestAPsAddInvalid(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		a := newTestAPs(t, db, newAPClock())
		for _, tc := range []struct {
			name string
			edit func(*APConfig)
		}{
			{"empty ID", func(c *APConfig) { c.ID = "" }},
			{"long ID", func(c *APConfig) { c.ID = "http://bank.example/" + strings.Repeat("x", 109) }},
			{"ID with space", func(c *APConfig) { c.ID = "http://bank example/" }},
			{"ID not UTF-8", func(c *APConfig) { c.ID = "http://bank.example/\xff" }},
			{"empty name", func(c *APConfig) { c.Name = "" }},
			{"long name", func(c *APConfig) { c.Name = strings.Repeat("N", 33) }},
			{"name with newline", func(c *APConfig) { c.Name = "Bank\nOther" }},
			{"empty password", func(c *APConfig) { c.Password = "" }},
			{"long password", func(c *APConfig) { c.Password = strings.Repeat("p", 73) }},
			{"negative rate", func(c *APConfig) { c.RateLimit = -1 }},
			{"NaN rate", func(c *APConfig) { c.RateLimit = apNaN() }},
			{"negative burst", func(c *APConfig) { c.Burst = -1 }},
			{"empty profile", func(c *APConfig) { c.Profiles = []string{""} }},
			{"relative prefix", func(c *APConfig) { c.URLPrefixes = []string{"/mss/"} }},
			{"ftp prefix", func(c *APConfig) { c.URLPrefixes = []string{"ftp://bank.example/"} }},
			{"prefix with user", func(c *APConfig) { c.URLPrefixes = []string{"https://u@bank.example/"} }},
			{"prefix with query", func(c *APConfig) { c.URLPrefixes = []string{"https://bank.example/mss?a=1"} }},
			{"prefix with fragment", func(c *APConfig) { c.URLPrefixes = []string{"https://bank.example/#x"} }},
			{"prefix with dots", func(c *APConfig) { c.URLPrefixes = []string{"https://bank.example/a/../"} }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cfg := bankAP()
				tc.edit(&cfg)
				err := a.Add(t.Context(), cfg)
				if err == nil {
					t.Fatalf("Add(%s) succeeded", tc.name)
				}
				if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
					t.Errorf("Add(%s) = %q, which contains the password", tc.name, err)
				}
			})
		}
		list, err := a.List(t.Context())
		if err != nil || len(list) != 0 {
			t.Errorf("List() after invalid Adds = %d APs, %v; want none", len(list), err)
		}
		// The limits themselves are allowed.
		cfg := bankAP()
		cfg.ID = "h:" + strings.Repeat("é", 126)
		cfg.Name = strings.Repeat("Ä", 32)
		cfg.Password = strings.Repeat("p", 72)
		if err := a.Add(t.Context(), cfg); err != nil {
			t.Errorf("Add(128-character ID, 32-character name, 72-byte password) = %v", err)
		}
	})
}

func apNaN() float64 {
	zero := 0.0
	return zero / zero
}

func TestAPsUpdate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		cfg := bankAP()
		if err := a.Add(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		created := c.Now()
		c.Advance(time.Hour)

		// Without a password the old one stays.
		upd := APConfig{AP: AP{
			ID:        cfg.ID,
			Name:      "Renamed Bank",
			RateLimit: 10,
			Burst:     20,
			CreatedAt: c.Now(), // ignored
		}}
		if err := a.Update(t.Context(), upd); err != nil {
			t.Fatalf("Update() = %v", err)
		}
		want := upd.AP
		want.CreatedAt = created
		got, err := a.Get(t.Context(), cfg.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Errorf("Get() after Update (-want +got):\n%s", diff)
		}
		if _, err := a.Authenticate(t.Context(), cfg.ID, cfg.Password, nil); err != nil {
			t.Errorf("Authenticate(old password) after Update without one = %v", err)
		}

		upd.Password = "bank-secret-2"
		if err := a.Update(t.Context(), upd); err != nil {
			t.Fatalf("Update(new password) = %v", err)
		}
		_, err = a.Authenticate(t.Context(), cfg.ID, cfg.Password, nil)
		checkAPFault(t, "Authenticate(old password)", err, etsi.CodeUnauthorizedAccess, faultCredentials)
		if _, err := a.Authenticate(t.Context(), cfg.ID, upd.Password, nil); err != nil {
			t.Errorf("Authenticate(new password) = %v", err)
		}

		if err := a.Update(t.Context(), APConfig{AP: AP{ID: "http://nobody.example/", Name: "Nobody"}}); !errors.Is(err, ErrUnknownAP) {
			t.Errorf("Update(unknown) = %v, want ErrUnknownAP", err)
		}
		bad := upd
		bad.Name = ""
		if err := a.Update(t.Context(), bad); err == nil {
			t.Errorf("Update(empty name) succeeded")
		}
		bad = upd
		bad.Password = strings.Repeat("q", 73)
		if err := a.Update(t.Context(), bad); err == nil || strings.Contains(err.Error(), bad.Password) {
			t.Errorf("Update(73-byte password) = %v, want an error without the password", err)
		}
	})
}

func TestAPsSetDisabled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		a := newTestAPs(t, db, newAPClock())
		cfg := bankAP()
		cfg.RateLimit = 0
		if err := a.Add(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			disabled bool
			wantErr  bool
		}{{false, false}, {true, true}, {true, true}, {false, false}} {
			if err := a.SetDisabled(t.Context(), cfg.ID, step.disabled); err != nil {
				t.Fatalf("SetDisabled(%v) = %v", step.disabled, err)
			}
			ap, err := a.Get(t.Context(), cfg.ID)
			if err != nil || ap.Disabled != step.disabled {
				t.Errorf("Get() after SetDisabled(%v) = %+v, %v", step.disabled, ap, err)
			}
			_, err = a.Authenticate(t.Context(), cfg.ID, cfg.Password, nil)
			if step.wantErr {
				checkAPFault(t, fmt.Sprintf("Authenticate() when disabled=%v", step.disabled), err, etsi.CodeUnauthorizedAccess, faultCredentials)
			} else {
				checkAPNoFault(t, fmt.Sprintf("Authenticate() when disabled=%v", step.disabled), err)
			}
		}
		if err := a.SetDisabled(t.Context(), "http://nobody.example/", true); !errors.Is(err, ErrUnknownAP) {
			t.Errorf("SetDisabled(unknown) = %v, want ErrUnknownAP", err)
		}

		// An AP may be added disabled.
		off := bankAP()
		off.ID, off.Disabled = "http://off.example/", true
		if err := a.Add(t.Context(), off); err != nil {
			t.Fatal(err)
		}
		_, err := a.Authenticate(t.Context(), off.ID, off.Password, nil)
		checkAPFault(t, "Authenticate(added disabled)", err, etsi.CodeUnauthorizedAccess, faultCredentials)
	})
}

func TestAuthenticate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		a := newTestAPs(t, db, newAPClock())
		allowed, other, second := apTestCert(t, "allowed"), apTestCert(t, "other"), apTestCert(t, "second")
		open := bankAP()
		open.RateLimit = 0
		pinned := APConfig{
			AP: AP{
				ID:          "urn:mobileid:idserver",
				Name:        "ID Server",
				ClientCerts: [][32]byte{certFingerprint(allowed), certFingerprint(second)},
			},
			Password: "idp-secret",
		}
		for _, cfg := range []APConfig{open, pinned} {
			if err := a.Add(t.Context(), cfg); err != nil {
				t.Fatal(err)
			}
		}
		const noFault = ""
		for _, tc := range []struct {
			name      string
			id, pw    string
			certs     []*x509.Certificate
			wantFault string
		}{
			{"open AP", open.ID, open.Password, nil, noFault},
			{"open AP with a certificate", open.ID, open.Password, []*x509.Certificate{other}, noFault},
			{"wrong password", open.ID, "bank-secret-2", nil, faultCredentials},
			{"password prefix", open.ID, "bank-secret-", nil, faultCredentials},
			{"empty password", open.ID, "", nil, faultCredentials},
			{"long password", open.ID, open.Password + strings.Repeat("x", 72), nil, faultCredentials},
			{"other AP's password", pinned.ID, open.Password, []*x509.Certificate{allowed}, faultCredentials},
			{"unknown AP", "http://nobody.example/", open.Password, nil, faultCredentials},
			{"empty AP_ID", "", open.Password, nil, faultCredentials},
			{"ID and password shifted", open.ID + "b", "ank-secret-1", nil, faultCredentials},
			{"allowed certificate", pinned.ID, pinned.Password, []*x509.Certificate{allowed}, noFault},
			{"second allowed certificate", pinned.ID, pinned.Password, []*x509.Certificate{second, other}, noFault},
			{"other certificate", pinned.ID, pinned.Password, []*x509.Certificate{other}, faultClientCert},
			{"allowed certificate not the leaf", pinned.ID, pinned.Password, []*x509.Certificate{other, allowed}, faultClientCert},
			{"no certificate", pinned.ID, pinned.Password, nil, faultClientCert},
			{"nil certificate", pinned.ID, pinned.Password, []*x509.Certificate{nil}, faultClientCert},
			{"wrong password before certificate", pinned.ID, "idp-secreT", []*x509.Certificate{other}, faultCredentials},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// Twice: the second time from the cache, if at all.
				for i := range 2 {
					call := fmt.Sprintf("Authenticate#%d(%s)", i+1, tc.name)
					ap, err := a.Authenticate(t.Context(), tc.id, tc.pw, tc.certs)
					if tc.wantFault != noFault {
						checkAPFault(t, call, err, etsi.CodeUnauthorizedAccess, tc.wantFault)
						if ap != nil {
							t.Errorf("%s = %+v, want no AP", call, ap)
						}
						if tc.pw != "" && strings.Contains(err.Error(), tc.pw) {
							t.Errorf("%s = %q, which contains the password", call, err)
						}
						continue
					}
					if err != nil {
						t.Fatalf("%s = %v", call, err)
					}
					if ap.ID != tc.id {
						t.Errorf("%s = AP %s, want %s", call, ap.ID, tc.id)
					}
				}
			})
		}
	})
}

// TestAuthenticateCache checks that verified passwords are remembered, wrong
// ones are not, and an update on another node invalidates what one node
// remembers.
func TestAuthenticateCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		other := newTestAPs(t, storetest.Another(t, db), c)
		cfg := bankAP()
		cfg.RateLimit = 0
		if err := a.Add(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		cached := func() int { // entries for the bank
			a.mu.Lock()
			defer a.mu.Unlock()
			n := 0
			for _, v := range a.verified {
				if v.apID == cfg.ID {
					n++
				}
			}
			return n
		}
		for _, pw := range []string{"wrong", "bank-secret-", ""} {
			a.Authenticate(t.Context(), cfg.ID, pw, nil)
		}
		if n := cached(); n != 0 {
			t.Errorf("after wrong passwords the cache holds %d entries, want 0", n)
		}
		if _, err := a.Authenticate(t.Context(), cfg.ID, cfg.Password, nil); err != nil {
			t.Fatal(err)
		}
		if n := cached(); n != 1 {
			t.Errorf("after a correct password the cache holds %d entries, want 1", n)
		}
		a.mu.Lock()
		for k := range a.verified {
			if strings.Contains(string(k[:]), cfg.Password) || strings.Contains(hex.EncodeToString(k[:]), hex.EncodeToString([]byte(cfg.Password))) {
				t.Errorf("cache key %x contains the password", k)
			}
		}
		a.mu.Unlock()

		// AP_ID and password run together must not find another AP's
		// entry: "urn:x:ab" + "-secret" is "urn:x:a" + "b-secret".
		for _, c := range []APConfig{
			{AP: AP{ID: "urn:x:ab", Name: "AB"}, Password: "-secret"},
			{AP: AP{ID: "urn:x:a", Name: "A"}, Password: "other-secret"},
		} {
			if err := a.Add(t.Context(), c); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Authenticate(t.Context(), "urn:x:ab", "-secret", nil); err != nil {
			t.Fatal(err)
		}
		_, err := a.Authenticate(t.Context(), "urn:x:a", "b-secret", nil)
		checkAPFault(t, "Authenticate(urn:x:a, b-secret)", err, etsi.CodeUnauthorizedAccess, faultCredentials)

		// With every bcrypt slot taken, only the cache can answer.
		busy := func(f func()) {
			for range cap(a.slow) {
				a.slow <- struct{}{}
			}
			defer func() {
				for range cap(a.slow) {
					<-a.slow
				}
			}()
			f()
		}
		busy(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			if _, err := a.Authenticate(ctx, cfg.ID, cfg.Password, nil); err != nil {
				t.Errorf("Authenticate(cached password) with bcrypt busy = %v", err)
			}
			_, err := a.Authenticate(ctx, cfg.ID, "wrong", nil)
			checkAPFault(t, "Authenticate(wrong password) with bcrypt busy", err, etsi.CodeUnauthorizedAccess, faultCredentials)
		})

		// Another node changes the password: the old one stops working
		// here too, although this node remembers it, once this node reads
		// the AP again (within apRowTTL).
		cfg.Password = "bank-secret-2"
		if err := other.Update(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		c.Advance(apRowTTL)
		_, err = a.Authenticate(t.Context(), cfg.ID, "bank-secret-1", nil)
		checkAPFault(t, "Authenticate(old password) after an update elsewhere", err, etsi.CodeUnauthorizedAccess, faultCredentials)
		if _, err := a.Authenticate(t.Context(), cfg.ID, cfg.Password, nil); err != nil {
			t.Errorf("Authenticate(new password) = %v", err)
		}
		// Disabling elsewhere takes effect within apRowTTL, and enabling
		// again needs a fresh verification.
		if err := other.SetDisabled(t.Context(), cfg.ID, true); err != nil {
			t.Fatal(err)
		}
		c.Advance(apRowTTL)
		_, err = a.Authenticate(t.Context(), cfg.ID, cfg.Password, nil)
		checkAPFault(t, "Authenticate() after disabling elsewhere", err, etsi.CodeUnauthorizedAccess, faultCredentials)
		if err := other.SetDisabled(t.Context(), cfg.ID, false); err != nil {
			t.Fatal(err)
		}
		c.Advance(apRowTTL)
		busy(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			_, err := a.Authenticate(ctx, cfg.ID, cfg.Password, nil)
			checkAPFault(t, "Authenticate() after re-enabling, bcrypt busy", err, etsi.CodeUnauthorizedAccess, faultCredentials)
		})
		if _, err := a.Authenticate(t.Context(), cfg.ID, cfg.Password, nil); err != nil {
			t.Errorf("Authenticate() after re-enabling = %v", err)
		}

		// A local update drops the AP's entries.
		if err := a.SetDisabled(t.Context(), cfg.ID, false); err != nil {
			t.Fatal(err)
		}
		if n := cached(); n != 0 {
			t.Errorf("after SetDisabled the cache holds %d entries, want 0", n)
		}
	})
}

func TestAuthenticateRateLimit(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		limited := bankAP() // 2.5/s, so a burst of 3
		cert := apTestCert(t, "slow")
		slow := APConfig{AP: AP{ID: "http://slow.example/", Name: "Slow", RateLimit: 0.5, Burst: 1, ClientCerts: [][32]byte{certFingerprint(cert)}}, Password: "slow-secret"}
		free := bankAP()
		free.ID, free.RateLimit = "http://free.example/", 0
		for _, cfg := range []APConfig{limited, slow, free} {
			if err := a.Add(t.Context(), cfg); err != nil {
				t.Fatal(err)
			}
		}
		certs := map[string][]*x509.Certificate{slow.ID: {cert}}
		auth := func(cfg APConfig) error {
			_, err := a.Authenticate(t.Context(), cfg.ID, cfg.Password, certs[cfg.ID])
			return err
		}
		for _, step := range []struct {
			advance time.Duration
			cfg     APConfig
			n       int // requests
			wantOK  int // of which the first wantOK pass
		}{
			{0, limited, 5, 3},                      // the full bucket
			{0, free, 100, 100},                     // no limit
			{0, slow, 2, 1},                         // buckets are per AP
			{200 * time.Millisecond, limited, 1, 0}, // half a token
			{200 * time.Millisecond, limited, 2, 1}, // 1 token
			{399 * time.Millisecond, limited, 1, 0},
			{time.Millisecond, limited, 1, 1},
			{time.Hour, limited, 4, 3}, // refills up to the burst only
			{0, slow, 2, 1},            // likewise
			{time.Second, slow, 1, 0},  // half a token
			{time.Second, slow, 2, 1},
		} {
			c.Advance(step.advance)
			for i := range step.n {
				err := auth(step.cfg)
				call := fmt.Sprintf("Authenticate(%s) #%d after +%v", step.cfg.ID, i+1, step.advance)
				if i < step.wantOK {
					checkAPNoFault(t, call, err)
				} else {
					checkAPFault(t, call, err, etsi.CodeUnauthorizedAccess, faultRateLimit)
				}
			}
		}

		// Failed requests take no token.
		c.Advance(time.Hour)
		for range 10 {
			a.Authenticate(t.Context(), limited.ID, "wrong", nil)
			a.Authenticate(t.Context(), slow.ID, slow.Password, nil) // no certificate
		}
		for i := range 3 {
			checkAPNoFault(t, fmt.Sprintf("Authenticate(%s) #%d after failures", limited.ID, i+1), auth(limited))
		}
		checkAPNoFault(t, "Authenticate(slow) after failures", auth(slow))

		// A clock going back refills nothing.
		c.Advance(-time.Hour)
		checkAPFault(t, "Authenticate(limited) after the clock went back", auth(limited), etsi.CodeUnauthorizedAccess, faultRateLimit)

		// A new rate applies from the next refill.
		c.Advance(time.Hour + time.Second)
		up := limited
		up.RateLimit, up.Burst, up.Password = 100, 5, ""
		if err := a.Update(t.Context(), up); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			checkAPNoFault(t, fmt.Sprintf("Authenticate(%s) #%d after raising the limit", limited.ID, i+1), auth(limited))
		}
		checkAPFault(t, "Authenticate() #6 after raising the limit", auth(limited), etsi.CodeUnauthorizedAccess, faultRateLimit)
		c.Advance(10 * time.Millisecond)
		checkAPNoFault(t, "Authenticate() 10 ms later at 100/s", auth(limited))
	})
}

func TestCheckInstant(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		now := c.Now()
		def := newTestAPs(t, db, c)
		short, err := NewAPs(db, c.Now, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			a       *APs
			instant time.Time
			ok      bool
		}{
			{def, now, true},
			{def, now.Add(5 * time.Minute), true},
			{def, now.Add(-5 * time.Minute), true},
			{def, now.Add(5*time.Minute + time.Microsecond), false},
			{def, now.Add(-5*time.Minute - time.Microsecond), false},
			{def, now.In(time.FixedZone("EET", 2*3600)), true},
			{def, time.Time{}, false},
			{def, now.AddDate(100, 0, 0), false},
			{short, now.Add(30 * time.Second), true},
			{short, now.Add(-30 * time.Second), true},
			{short, now.Add(31 * time.Second), false},
			{short, now.Add(-31 * time.Second), false},
		} {
			err := tc.a.CheckInstant(tc.instant)
			call := fmt.Sprintf("CheckInstant(now%+v) with skew %v", tc.instant.Sub(now), tc.a.skew)
			var f *etsi.Fault
			switch {
			case tc.ok && err != nil:
				t.Errorf("%s = %v, want nil", call, err)
			case !tc.ok && (!errors.As(err, &f) || f.Code != etsi.CodeWrongParam):
				t.Errorf("%s = %v, want a %d fault", call, err, etsi.CodeWrongParam)
			}
		}
	})
}

// transIDCount counts the stored AP_TransIDs.
func transIDCount(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM mssp_ap_transids`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func transIDUsed(id string) string { return fmt.Sprintf("AP_TransID %q already used", id) }

func TestReserveTransID(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		const bank, shop = "http://bank.example/mid", "http://shop.example/"
		reserve := func(apID, transID string) error {
			return db.InTx(t.Context(), func(tx *sql.Tx) error {
				return a.ReserveTransID(t.Context(), tx, apID, transID, c.Now())
			})
		}
		for _, tc := range []struct {
			apID, transID string
			wantFault     string
		}{
			{bank, "T1", ""},
			{bank, "T1", transIDUsed("T1")},
			{bank, "t1", ""}, // case matters
			{shop, "T1", ""}, // per AP
			{shop, "T1", transIDUsed("T1")},
			{bank, "T2", ""},
			{bank, "", "AP_TransID of 0 bytes, want 1 to 128"},
			{bank, strings.Repeat("x", 129), "AP_TransID of 129 bytes, want 1 to 128"},
			{bank, strings.Repeat("x", 128), ""},
		} {
			err := reserve(tc.apID, tc.transID)
			call := fmt.Sprintf("ReserveTransID(%s, %.10q)", tc.apID, tc.transID)
			if tc.wantFault == "" {
				checkAPNoFault(t, call, err)
			} else {
				checkAPFault(t, call, err, etsi.CodeWrongParam, tc.wantFault)
			}
		}
		if n := transIDCount(t, db); n != 5 {
			t.Errorf("%d reservations stored, want 5", n)
		}

		// Without a transaction.
		checkAPNoFault(t, "ReserveTransID(nil tx)", a.ReserveTransID(t.Context(), nil, bank, "T3", c.Now()))
		checkAPFault(t, "ReserveTransID(nil tx) again", a.ReserveTransID(t.Context(), nil, bank, "T3", c.Now()), etsi.CodeWrongParam, transIDUsed("T3"))
	})
}

func TestReserveTransIDSameTx(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		const bank = "http://bank.example/mid"
		err := db.InTx(t.Context(), func(tx *sql.Tx) error {
			if err := a.ReserveTransID(t.Context(), tx, bank, "T1", c.Now()); err != nil {
				return err
			}
			err := a.ReserveTransID(t.Context(), tx, bank, "T1", c.Now())
			checkAPFault(t, "second ReserveTransID(T1) in one transaction", err, etsi.CodeWrongParam, transIDUsed("T1"))
			// The duplicate leaves the transaction usable.
			return a.ReserveTransID(t.Context(), tx, bank, "T2", c.Now())
		})
		if err != nil {
			t.Fatalf("InTx() = %v", err)
		}
		if n := transIDCount(t, db); n != 2 {
			t.Errorf("%d reservations stored, want 2", n)
		}

		// A rolled-back reservation leaves the AP_TransID free.
		errRollback := errors.New("roll back")
		err = db.InTx(t.Context(), func(tx *sql.Tx) error {
			if err := a.ReserveTransID(t.Context(), tx, bank, "T3", c.Now()); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx() = %v, want %v", err, errRollback)
		}
		checkAPNoFault(t, "ReserveTransID(T3) after a rollback", a.ReserveTransID(t.Context(), nil, bank, "T3", c.Now()))
	})
}

// TestReserveTransIDConcurrent reserves the same AP_TransID in concurrent
// transactions on two handles, as two nodes would.
func TestReserveTransIDConcurrent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		b := newTestAPs(t, storetest.Another(t, db), c)
		const bank = "http://bank.example/mid"

		// The second transaction starts while the first holds the
		// reservation; its outcome depends on how the first ends.
		for _, commit := range []bool{true, false} {
			transID := fmt.Sprintf("held-%v", commit)
			tx1, err := db.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.ReserveTransID(t.Context(), tx1, bank, transID, c.Now()); err != nil {
				tx1.Rollback()
				t.Fatalf("ReserveTransID() in the first transaction = %v", err)
			}
			done := make(chan error, 1)
			go func() {
				done <- b.db.InTx(t.Context(), func(tx *sql.Tx) error {
					return b.ReserveTransID(t.Context(), tx, bank, transID, c.Now())
				})
			}()
			select {
			case err := <-done:
				t.Fatalf("the second transaction ended (%v) while the first held the reservation", err)
			case <-time.After(200 * time.Millisecond):
			}
			if commit {
				err = tx1.Commit()
			} else {
				err = tx1.Rollback()
			}
			if err != nil {
				t.Fatal(err)
			}
			err = <-done
			if commit {
				checkAPFault(t, "ReserveTransID() after the other committed", err, etsi.CodeWrongParam, transIDUsed(transID))
			} else {
				checkAPNoFault(t, "ReserveTransID() after the other rolled back", err)
			}
		}

		// Many at once: exactly one wins.
		const n = 16
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			ok     int
			faults int
			others []error
		)
		for i := range n {
			regs := []*APs{a, b}
			r := regs[i%2]
			wg.Go(func() {
				err := r.db.InTx(t.Context(), func(tx *sql.Tx) error {
					return r.ReserveTransID(t.Context(), tx, bank, "race", c.Now())
				})
				var f *etsi.Fault
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.As(err, &f) && f.Code == etsi.CodeWrongParam:
					faults++
				default:
					others = append(others, err)
				}
			})
		}
		wg.Wait()
		if ok != 1 || faults != n-1 || len(others) > 0 {
			t.Errorf("%d concurrent reservations: %d succeeded, %d faults, other errors %v; want 1, %d, none", n, ok, faults, others, n-1)
		}
	})
}

func TestPruneTransIDs(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		const bank = "http://bank.example/mid"
		reserve := func(transID string) error {
			return a.ReserveTransID(t.Context(), nil, bank, transID, c.Now())
		}
		start := c.Now()
		for _, id := range []string{"day0-a", "day0-b"} {
			if err := reserve(id); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(20 * 24 * time.Hour)
		if err := reserve("day20"); err != nil {
			t.Fatal(err)
		}
		c.Advance(11 * 24 * time.Hour) // day 31
		if err := reserve("day31"); err != nil {
			t.Fatal(err)
		}

		n, err := a.PruneTransIDs(t.Context(), c.Now().Add(-TransIDRetention))
		if err != nil || n != 2 {
			t.Fatalf("PruneTransIDs(day 1) = %d, %v; want 2, nil", n, err)
		}
		checkAPNoFault(t, "ReserveTransID(pruned day0-a)", reserve("day0-a"))
		checkAPFault(t, "ReserveTransID(kept day20)", reserve("day20"), etsi.CodeWrongParam, transIDUsed("day20"))
		if n, err := a.PruneTransIDs(t.Context(), start); err != nil || n != 0 {
			t.Errorf("PruneTransIDs(day 0) = %d, %v; want 0, nil", n, err)
		}

		// A cutoff in the future keeps what could still be replayed: the
		// reservations of the last 2 × 5 minutes.
		c.Advance(9 * time.Minute)
		n, err = a.PruneTransIDs(t.Context(), c.Now().Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("PruneTransIDs(future) = %d, %v; want 1 (day20), nil", n, err)
		}
		for _, id := range []string{"day31", "day0-a"} {
			checkAPFault(t, fmt.Sprintf("ReserveTransID(%s) 9 minutes later", id), reserve(id), etsi.CodeWrongParam, transIDUsed(id))
		}
		c.Advance(2 * time.Minute)
		if n, err := a.PruneTransIDs(t.Context(), c.Now()); err != nil || n != 2 {
			t.Errorf("PruneTransIDs(now) 11 minutes later = %d, %v; want 2, nil", n, err)
		}
		if n := transIDCount(t, db); n != 0 {
			t.Errorf("%d reservations left, want 0", n)
		}
	})
}

func TestPruneTransIDsBatches(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		c := newAPClock()
		a := newTestAPs(t, db, c)
		const total = transIDPruneBatch + 7
		err := db.InTx(t.Context(), func(tx *sql.Tx) error {
			for i := range total {
				if err := a.ReserveTransID(t.Context(), tx, "http://bank.example/mid", fmt.Sprintf("T%d", i), c.Now()); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(TransIDRetention + time.Hour)
		if n, err := a.PruneTransIDs(t.Context(), c.Now().Add(-TransIDRetention)); err != nil || n != total {
			t.Errorf("PruneTransIDs() = %d, %v; want %d, nil", n, err, total)
		}
	})
}

func TestAPConfigRedacted(t *testing.T) {
	cfg := bankAP()
	cfg.Password = "s3cr3t-AP-PWD"
	secrets := []string{cfg.Password, hex.EncodeToString([]byte(cfg.Password)), strings.ToUpper(hex.EncodeToString([]byte(cfg.Password)))}
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%v %+v"} {
		for _, v := range []any{cfg, &cfg, []APConfig{cfg}, map[string]APConfig{"k": cfg}} {
			got := fmt.Sprintf(f, v, v)
			for _, s := range secrets {
				if strings.Contains(got, s) {
					t.Errorf("Sprintf(%q, %T) = %q, which contains the password", f, v, got)
				}
			}
		}
	}
	if got := fmt.Sprintf("%+v", cfg); !strings.Contains(got, "Password:REDACTED") || !strings.Contains(got, cfg.ID) {
		t.Errorf("Sprintf(%%+v, cfg) = %q, want the AP and Password:REDACTED", got)
	}
	cfg.Password = ""
	if got := fmt.Sprintf("%+v", cfg); !strings.Contains(got, "Password:}") {
		t.Errorf("Sprintf(%%+v, cfg without password) = %q, want an empty Password", got)
	}
}

func TestAllowsProfile(t *testing.T) {
	const auth, sign = "http://mss.ficom.fi/TS102206/v1.0.0/authentication-profile.xml", "http://mss.ficom.fi/TS102206/v1.0.0/signature-profile.xml"
	for _, tc := range []struct {
		profiles []string
		uri      string
		want     bool
	}{
		{nil, auth, true},
		{nil, "", true},
		{[]string{auth}, auth, true},
		{[]string{auth}, sign, false},
		{[]string{auth}, "", false},
		{[]string{auth}, auth + "#x", false},
		{[]string{auth}, strings.ToUpper(auth), false},
		{[]string{sign, auth}, auth, true},
	} {
		ap := &AP{Profiles: tc.profiles}
		if got := ap.AllowsProfile(tc.uri); got != tc.want {
			t.Errorf("AP{Profiles: %q}.AllowsProfile(%q) = %v, want %v", tc.profiles, tc.uri, got, tc.want)
		}
	}
}

func TestAllowsURL(t *testing.T) {
	slash := []string{"https://bank.example/mss/"}
	bare := []string{"https://bank.example"}
	path := []string{"https://bank.example/mss/notify"}
	for _, tc := range []struct {
		prefixes []string
		u        string
		want     bool
	}{
		{nil, "https://bank.example/mss/notify", false},
		{slash, "https://bank.example/mss/notify", true},
		{slash, "https://bank.example/mss/", true},
		{slash, "https://bank.example/mss/notify?id=1", true},
		{slash, "https://bank.example/mss", false},
		{slash, "https://bank.example/msx/notify", false},
		{slash, "http://bank.example/mss/notify", false},
		{slash, "https://bank.example/mss/../admin", false},
		{slash, "https://bank.example/mss/%2e%2e/admin", false},
		{slash, "https://bank.example/mss/./x", false},
		{slash, "https://bank.example/mss/x#frag", false},
		{slash, "https://bank.example/mss/x y", false},
		{slash, "https://bank.example/mss/x\\y", false},
		{slash, "https://bank.example/mss/\nx", false},
		{slash, "https://bank.example/mss/" + strings.Repeat("x", 2048), false},
		{bare, "https://bank.example", true},
		{bare, "https://bank.example/", true},
		{bare, "https://bank.example/mss", true},
		{bare, "https://bank.example?x=1", true},
		{bare, "https://bank.example.evil.test/", false},
		{bare, "https://bank.example:8443/", false},
		{bare, "https://bank.example@evil.test/", false},
		{bare, "https://bank.exampl", false},
		{path, "https://bank.example/mss/notify", true},
		{path, "https://bank.example/mss/notify/x", true},
		{path, "https://bank.example/mss/notify?x", true},
		{path, "https://bank.example/mss/notifyx", false},
		{path, "https://bank.example/mss/notify.evil", false},
		{[]string{"https://other.example/", "https://bank.example/mss/"}, "https://bank.example/mss/n", true},
		{[]string{""}, "https://bank.example/", false},
		{slash, "", false},
		{slash, "/mss/notify", false},
		{slash, "mailto:x@bank.example", false},
	} {
		ap := &AP{URLPrefixes: tc.prefixes}
		if got := ap.AllowsURL(tc.u); got != tc.want {
			t.Errorf("AP{URLPrefixes: %q}.AllowsURL(%.60q) = %v, want %v", tc.prefixes, tc.u, got, tc.want)
		}
	}
}

// BenchmarkAuthenticate measures an authentication with a verified
// password and a pinned client certificate, on SQLite, at bcrypt's default
// cost (which only the first call pays).
func BenchmarkAuthenticate(b *testing.B) {
	db, err := store.Open(b.Context(), store.Config{DSN: "sqlite:" + filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	a, err := NewAPs(db, nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	cert := apTestCert(b, "bench")
	cfg := bankAP()
	cfg.RateLimit = 0
	cfg.ClientCerts = [][32]byte{certFingerprint(cert)}
	if err := a.Add(b.Context(), cfg); err != nil {
		b.Fatal(err)
	}
	certs := []*x509.Certificate{cert}
	if _, err := a.Authenticate(b.Context(), cfg.ID, cfg.Password, certs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(context.Background(), cfg.ID, cfg.Password, certs); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestAPsConcurrentFirstAuthentication checks that an AP's requests that
// arrive together before its password is verified share one bcrypt
// check, and that a wrong password still fails for each of them.
func TestAPsConcurrentFirstAuthentication(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		a := newTestAPs(t, db, newAPClock())
		a.cost = bcrypt.DefaultCost // slow enough that the requests overlap
		cfg := APConfig{AP: AP{ID: "http://bank.example/ap", Name: "Bank"}, Password: "a good password"}
		if err := a.Add(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			password string
			ok       bool
		}{{"a wrong password", false}, {cfg.Password, true}} {
			before := a.hashChecks.Load()
			var wg sync.WaitGroup
			var oks atomic.Int64
			for range 32 {
				wg.Go(func() {
					if _, err := a.Authenticate(t.Context(), cfg.ID, tt.password, nil); err == nil {
						oks.Add(1)
					}
				})
			}
			wg.Wait()
			if want := map[bool]int64{true: 32, false: 0}[tt.ok]; oks.Load() != want {
				t.Errorf("%d of 32 concurrent Authenticate(%q) succeeded, want %d", oks.Load(), tt.password, want)
			}
			// With two CPUs and 32 requests, sharing leaves far fewer
			// checks than requests; without it there would be 32.
			if n := a.hashChecks.Load() - before; n >= 16 {
				t.Errorf("32 concurrent Authenticate(%q) ran %d bcrypt checks, want them to share", tt.password, n)
			}
		}
	})
}
