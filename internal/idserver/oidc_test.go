package idserver

import (
	"context"
	"errors"
	"strings"
	"testing"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

func testKEK(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func TestOIDCKeys(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := migrateOIDC(ctx, db); err != nil {
			t.Fatal(err)
		}
		n := int64(0)
		clock := func() int64 { n++; return n }
		ks, err := newKeyStore(db, testKEK(1), clock)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.current(ctx); err == nil {
			t.Fatalf("current() of an empty store succeeded")
		}
		k1, err := ks.rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ks.rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		k3, err := ks.rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}

		// A store without the cache unseals from the database.
		fresh, _ := newKeyStore(db, testKEK(1), clock)
		got, err := fresh.newest(ctx, publishedKeys)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].id != k3.id || got[1].id != k2.id {
			t.Fatalf("newest(2) = %v, want %s and %s", ids(got), k3.id, k2.id)
		}
		if !got[0].key.Equal(k3.key) || !got[1].key.Equal(k2.key) {
			t.Errorf("unsealed keys differ from the generated ones")
		}
		if cur, err := fresh.current(ctx); err != nil || cur.id != k3.id {
			t.Errorf("current() = %v, %v, want %s", cur, err, k3.id)
		}

		wrong, _ := newKeyStore(db, testKEK(2), clock)
		if _, err := wrong.newest(ctx, 1); err == nil {
			t.Errorf("newest() with another key encryption key succeeded")
		}

		// A sealed key moved to another ID does not open: the ID is
		// authenticated.
		var sealed []byte
		if err := db.QueryRowContext(ctx, `SELECT sealed FROM idserver_oidc_keys WHERE id = $1`, k1.id).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `UPDATE idserver_oidc_keys SET sealed = $1 WHERE id = $2`, sealed, k3.id); err != nil {
			t.Fatal(err)
		}
		moved, _ := newKeyStore(db, testKEK(1), clock)
		if _, err := moved.current(ctx); err == nil {
			t.Errorf("current() with a sealed key moved from %s to %s succeeded", k1.id, k3.id)
		}
	})
}

func ids(keys []*signingKey) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k.id)
	}
	return out
}

func TestOIDCClientCheck(t *testing.T) {
	tests := []struct {
		name string
		c    OIDCClient
		ok   bool
	}{
		{"ok", OIDCClient{ID: "bank", RedirectURIs: []string{"https://bank.example/cb", "http://127.0.0.1:8080/cb"}}, true},
		{"empty ID", OIDCClient{RedirectURIs: []string{"https://bank.example/cb"}}, false},
		{"space in ID", OIDCClient{ID: "a bank", RedirectURIs: []string{"https://bank.example/cb"}}, false},
		{"long ID", OIDCClient{ID: strings.Repeat("b", 65), RedirectURIs: []string{"https://bank.example/cb"}}, false},
		{"no redirect", OIDCClient{ID: "bank"}, false},
		{"relative redirect", OIDCClient{ID: "bank", RedirectURIs: []string{"/cb"}}, false},
		{"custom scheme", OIDCClient{ID: "bank", RedirectURIs: []string{"bank://cb"}}, false},
		{"fragment", OIDCClient{ID: "bank", RedirectURIs: []string{"https://bank.example/cb#x"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.Check(); (err == nil) != tt.ok {
				t.Errorf("Check(%+v) = %v, want ok %v", tt.c, err, tt.ok)
			}
		})
	}
}

func TestAddOIDCClient(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ts := newTestServer(t, db, &fakeMSSP{})
		const signOnly = "9b2f3c1e-6a4d-4f7e-8c5b-2d1a0e9f8c7b"
		if err := ts.srv.rps.Add(ctx, RPConfig{UUID: signOnly, RP: RP{Name: "Notary", Services: []Service{ServiceSignature}}}); err != nil {
			t.Fatal(err)
		}
		c := OIDCClient{ID: "bank", RedirectURIs: []string{"https://bank.example/cb"}}
		if err := ts.srv.rps.AddOIDCClient(ctx, testUUID, c); err != nil {
			t.Fatalf("AddOIDCClient: %v", err)
		}
		if err := ts.srv.rps.AddOIDCClient(ctx, testUUID, c); err == nil {
			t.Errorf("AddOIDCClient with a taken client ID succeeded")
		}
		if err := ts.srv.rps.AddOIDCClient(ctx, signOnly, OIDCClient{ID: "notary", RedirectURIs: c.RedirectURIs}); err == nil {
			t.Errorf("AddOIDCClient for an RP without authentication succeeded")
		}
		if err := ts.srv.rps.AddOIDCClient(ctx, "00000000-0000-4000-8000-000000000000", OIDCClient{ID: "x", RedirectURIs: c.RedirectURIs}); !errors.Is(err, ErrUnknownRP) {
			t.Errorf("AddOIDCClient for an unknown RP = %v, want ErrUnknownRP", err)
		}

		o := newTestOIDC(t, ts.srv)
		got, rp, err := o.client(ctx, "bank")
		if err != nil {
			t.Fatal(err)
		}
		if rp.Name != "Test Bank" || len(got.RedirectURIs) != 1 || got.RedirectURIs[0] != c.RedirectURIs[0] {
			t.Errorf("client(bank) = %+v of %q", got, rp.Name)
		}
		for _, tt := range []struct {
			secret string
			want   bool
		}{{testUUID, true}, {signOnly, false}, {"", false}, {strings.ToUpper(testUUID), false}} {
			if ok := got.checkSecret(tt.secret); ok != tt.want {
				t.Errorf("checkSecret(%q) = %v, want %v", tt.secret, ok, tt.want)
			}
		}
		if _, _, err := o.client(ctx, "nobody"); !errors.Is(err, ErrUnknownClient) {
			t.Errorf("client(nobody) = %v, want ErrUnknownClient", err)
		}
	})
}

func newTestOIDC(t *testing.T, s *Server) *OIDC {
	t.Helper()
	o, err := NewOIDC(context.Background(), s, OIDCConfig{
		Issuer: "https://id.example", KeyEncryptionKey: testKEK(1), SubjectKey: []byte(strings.Repeat("s", 32)),
	})
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	return o
}

func TestNewOIDCConfig(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db, &fakeMSSP{})
		good := OIDCConfig{Issuer: "https://id.example/oidc", KeyEncryptionKey: testKEK(1), SubjectKey: make([]byte, 32)}
		tests := []struct {
			name string
			edit func(c *OIDCConfig)
			ok   bool
		}{
			{"ok", func(c *OIDCConfig) {}, true},
			{"http", func(c *OIDCConfig) { c.Issuer = "http://id.example" }, false},
			{"http allowed", func(c *OIDCConfig) { c.Issuer, c.Insecure = "http://127.0.0.1:1", true }, true},
			{"relative", func(c *OIDCConfig) { c.Issuer = "/oidc" }, false},
			{"query", func(c *OIDCConfig) { c.Issuer = "https://id.example/?a=b" }, false},
			{"short subject key", func(c *OIDCConfig) { c.SubjectKey = make([]byte, 31) }, false},
			{"no key encryption key", func(c *OIDCConfig) { c.KeyEncryptionKey = [32]byte{} }, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := good
				tt.edit(&c)
				if _, err := NewOIDC(context.Background(), ts.srv, c); (err == nil) != tt.ok {
					t.Errorf("NewOIDC(%q) = %v, want ok %v", c.Issuer, err, tt.ok)
				}
			})
		}
		// Another key encryption key cannot open the stored keys, and
		// the provider does not start rather than make a new one.
		c := good
		c.KeyEncryptionKey = testKEK(9)
		if _, err := NewOIDC(context.Background(), ts.srv, c); err == nil {
			t.Errorf("NewOIDC with another key encryption key succeeded")
		}
		if n := rows(t, db, `SELECT COUNT(*) FROM idserver_oidc_keys`); n != 1 {
			t.Errorf("%d signing keys after the starts, want 1", n)
		}
	})
}

func rows(t *testing.T, db *store.DB, query string) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOIDCSubject(t *testing.T) {
	o := &OIDC{cfg: OIDCConfig{SubjectKey: []byte(strings.Repeat("k", 32))}}
	other := &OIDC{cfg: OIDCConfig{SubjectKey: []byte(strings.Repeat("K", 32))}}
	a := &Person{Country: "EE", NationalID: "47605030299", GivenNames: "Mari-Liis"}
	renamed := &Person{Country: "EE", NationalID: "47605030299", GivenNames: "Mari"}
	lt := &Person{Country: "LT", NationalID: "47605030299"}
	if o.subject(a) != o.subject(renamed) {
		t.Errorf("subject changes with the name")
	}
	if got := o.subject(a); got == o.subject(lt) || got == other.subject(a) || len(got) != 43 {
		t.Errorf("subject(%v) = %q: not unique per country and key, or not 43 characters", a, got)
	}
}
