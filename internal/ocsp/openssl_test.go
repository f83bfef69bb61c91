package ocsp

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mobileid/internal/testenv"

	xocsp "golang.org/x/crypto/ocsp"
)

// TestOpenSSL checks the responder against an independent client: the
// openssl ocsp command verifies the signature, the delegation chain to the
// root, the nonce and the CertID match.
func TestOpenSSL(t *testing.T) {
	t.Parallel()
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		testenv.SkipOrFail(t, "openssl not found: %v", err)
	}
	p := newTestPKI(t, "openssl")
	leaf := p.leaf(t, 0x1234567)
	dir := t.TempDir()
	for name, c := range map[string]*x509.Certificate{"root.pem": p.root, "issuing.pem": p.issuing, "leaf.pem": leaf} {
		b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	src := newFakeSource()
	src.set(leaf.SerialNumber.Int64(), fakeStatus{status: xocsp.Good})
	r, _ := newTestResponder(t, p, src, nil) // openssl checks the times against the real clock
	srv := httptest.NewServer(r)
	defer srv.Close()

	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// openssl wants the CertID digest before -cert.
		args = append(append([]string{"ocsp"}, args...), "-issuer", "issuing.pem", "-cert", "leaf.pem", "-url", srv.URL+"/", "-CAfile", "root.pem")
		cmd := exec.CommandContext(ctx, openssl, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		t.Logf("openssl %s\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("openssl ocsp: %v", err)
		}
		return string(out)
	}
	check := func(t *testing.T, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q", w)
			}
		}
		if strings.Contains(out, "WARNING") || strings.Contains(out, "nonce") {
			t.Errorf("output has a warning")
		}
	}

	variants := []struct {
		name string
		args []string
	}{
		{"nonce", []string{"-nonce"}},
		{"no nonce", []string{"-no_nonce"}},
		{"sha256 nonce", []string{"-nonce", "-sha256"}},
		{"sha256 no nonce", []string{"-no_nonce", "-sha256"}},
	}
	t.Run("good", func(t *testing.T) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				check(t, run(t, v.args...), "leaf.pem: good", "Response verify OK")
			})
		}
	})

	// Revoke; the no-nonce answers above are cached until Invalidate.
	revokedAt := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	src.set(leaf.SerialNumber.Int64(), fakeStatus{status: xocsp.Revoked, revokedAt: revokedAt, reason: xocsp.KeyCompromise})
	r.Invalidate(big.NewInt(leaf.SerialNumber.Int64()))
	t.Run("revoked", func(t *testing.T) {
		for _, v := range variants {
			t.Run(v.name, func(t *testing.T) {
				check(t, run(t, v.args...), "leaf.pem: revoked", "Reason: keyCompromise",
					"Revocation Time: "+revokedAt.Format("Jan _2 15:04:05 2006 GMT"), "Response verify OK")
			})
		}
	})
}
