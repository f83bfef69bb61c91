package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"mobileid/internal/etsi"
	"mobileid/internal/idserver"
	"mobileid/internal/store"
)

// TestIDServerRPAddOIDC registers a relying party that is also an OpenID
// Connect client, and checks the refusals.
func TestIDServerRPAddOIDC(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runCmd(t, "idserver", "rp", "add", "--name", "Demo Bank", "--data", data,
		"--oidc-client-id", "demo-bank", "--redirect-uris", "https://bank.example/cb, https://bank.example/cb2")
	if code != 0 || !strings.Contains(out, "OpenID Connect client_id: demo-bank") {
		t.Fatalf("rp add with a client = %d %q %q", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "idserver", "rp", "add", "--name", "Call Centre", "--data", data,
		"--oidc-client-id", "call-centre", "--ciba")
	if code != 0 || !strings.Contains(out, "OpenID Connect client_id: call-centre") {
		t.Fatalf("rp add with a CIBA client = %d %q %q", code, out, errOut)
	}
	for _, args := range [][]string{
		{"--name", "Shop", "--oidc-client-id", "shop"},
		{"--name", "Shop", "--ciba"},
		{"--name", "Shop", "--redirect-uris", "https://shop.example/cb"},
		{"--name", "Shop", "--oidc-client-id", "shop", "--redirect-uris", "shop://cb"},
		{"--name", "Shop", "--services", "signature", "--oidc-client-id", "shop", "--redirect-uris", "https://shop.example/cb"},
		{"--name", "Shop", "--oidc-client-id", "demo-bank", "--redirect-uris", "https://shop.example/cb"},
	} {
		args = append(args, "--data", data)
		if code, _, errOut := runCmd(t, append([]string{"idserver", "rp", "add"}, args...)...); code == 0 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("rp add %v = %d %q, want a one-line refusal", args, code, errOut)
		}
	}
	// The refusals left no relying party behind, not even the one whose
	// client ID was taken.
	db, err := store.Open(context.Background(), store.Config{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rps, err := idserver.NewRPs(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := rps.List(context.Background()); err != nil || len(list) != 2 {
		t.Errorf("relying parties after the refusals = %d (%v), want only Demo Bank and Call Centre", len(list), err)
	}
}

type noMSSP struct{}

func (noMSSP) Sign(context.Context, *etsi.MSSSignatureReq) (*etsi.MSSSignatureResp, error) {
	return nil, errors.New("no MSSP")
}
func (noMSSP) Status(context.Context, *etsi.MSSStatusReq) (*etsi.MSSStatusResp, error) {
	return nil, errors.New("no MSSP")
}
func (noMSSP) Receipt(context.Context, *etsi.MSSReceiptReq) (*etsi.MSSReceiptResp, error) {
	return nil, errors.New("no MSSP")
}

type noDirectory struct{}

func (noDirectory) Find(context.Context, string) (*idserver.Person, error) {
	return nil, idserver.ErrNotFound
}

// TestMountOIDC serves the provider beside the MID REST API, under the
// issuer's path, and checks the keys it needs.
func TestMountOIDC(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "test.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rps, err := idserver.NewRPs(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := idserver.New(idserver.Config{APID: "http://id.example/ap", Roots: x509.NewCertPool()}, db, rps, noDirectory{}, noMSSP{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const kek, subj = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "5375626a656374206b6579206f6620746865206d6f756e7420746573742121"

	tests := []struct {
		name, issuer, kek, subj string
		ok                      bool
	}{
		{"no KEK", "https://id.example", "", subj + "00", false},
		{"short KEK", "https://id.example", kek[:62], subj + "00", false},
		{"short subject key", "https://id.example", kek, subj, false},
		{"http not loopback", "http://id.example", kek, subj + "00", false},
		{"https", "https://id.example", kek, subj + "00", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("MOBILEID_OIDC_KEK", tt.kek)
			t.Setenv("MOBILEID_OIDC_SUBJECT_KEY", tt.subj)
			if _, err := mountOIDC(ctx, srv, srv.Handler(), tt.issuer); (err == nil) != tt.ok {
				t.Errorf("mountOIDC(%q) = %v, want ok %v", tt.issuer, err, tt.ok)
			}
		})
	}

	t.Setenv("MOBILEID_OIDC_KEK", kek)
	t.Setenv("MOBILEID_OIDC_SUBJECT_KEY", subj+"00")
	const issuer = "http://127.0.0.1:8085/id"
	h, err := mountOIDC(ctx, srv, srv.Handler(), issuer)
	if err != nil {
		t.Fatalf("mountOIDC(%q): %v", issuer, err)
	}
	for _, tt := range []struct {
		path string
		want int
	}{
		{"/id/.well-known/openid-configuration", http.StatusOK},
		{"/id/keys", http.StatusOK},
		{"/mid-api/version", http.StatusOK},
		{"/.well-known/openid-configuration", http.StatusNotFound},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.want {
			t.Errorf("GET %s = %d, want %d", tt.path, rec.Code, tt.want)
		}
		if tt.path == "/id/.well-known/openid-configuration" {
			var d struct {
				Issuer  string `json:"issuer"`
				JWKSURI string `json:"jwks_uri"`
			}
			json.Unmarshal(rec.Body.Bytes(), &d)
			if d.Issuer != issuer || d.JWKSURI != issuer+"/keys" {
				t.Errorf("discovery = %+v, want issuer %s", d, issuer)
			}
		}
	}
}

// TestIDServerRotateKey rotates the signing key from the command line and
// refuses to with another key encryption key.
func TestIDServerRotateKey(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	t.Setenv("MOBILEID_OIDC_KEK", strings.Repeat("ab", 32))
	var ids []string
	for range 2 {
		code, out, errOut := runCmd(t, "idserver", "rotate-key", "--data", data)
		id, ok := strings.CutPrefix(strings.TrimSpace(out), "new signing key ")
		if code != 0 || !ok || id == "" {
			t.Fatalf("rotate-key = %d %q %q", code, out, errOut)
		}
		ids = append(ids, id)
	}
	if ids[0] == ids[1] {
		t.Errorf("two rotations made the same key ID %s", ids[0])
	}
	t.Setenv("MOBILEID_OIDC_KEK", strings.Repeat("cd", 32))
	if code, _, errOut := runCmd(t, "idserver", "rotate-key", "--data", data); code == 0 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("rotate-key with another KEK = %d %q, want a one-line refusal", code, errOut)
	}
	t.Setenv("MOBILEID_OIDC_KEK", "short")
	if code, _, errOut := runCmd(t, "idserver", "rotate-key", "--data", data); code != 2 || !strings.Contains(errOut, "MOBILEID_OIDC_KEK") {
		t.Errorf("rotate-key with a bad KEK = %d %q, want a usage error", code, errOut)
	}
}
