package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/ca"
	"mobileid/internal/ocsp"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
	"mobileid/internal/testenv"
	"mobileid/internal/vmac"
)

// TestCAWithOpenSSLOCSP wires the real CA and OCSP responder as
// `mobileid ca` does and asks OpenSSL's OCSP client about a certificate
// the CA issued: good, then — right after the CA revokes it — revoked,
// with a nonce that verifies.
func TestCAWithOpenSSLOCSP(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		testenv.SkipOrFail(t, "openssl is not installed")
	}
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		dir := t.TempDir()
		kek := make([]byte, 32)
		rand.Read(kek)
		srv := httptest.NewUnstartedServer(nil)
		base := "http://" + srv.Listener.Addr().String()
		if err := ca.Init(filepath.Join(dir, "ca"), kek, ca.InitOptions{Organization: "Test", Country: "EE", BaseURL: base}); err != nil {
			t.Fatal(err)
		}
		keys, err := ca.Load(filepath.Join(dir, "ca"), kek)
		if err != nil {
			t.Fatal(err)
		}
		logger := slog.New(slog.DiscardHandler)
		c, err := ca.New(ca.Config{BaseURL: base}, keys, db, logger, logger, prometheus.NewRegistry(), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		responder, err := ocsp.New(ocsp.Config{Issuer: keys.Issuing, Cert: keys.OCSP, Key: keys.OCSPKey}, c, logger, prometheus.NewRegistry(), time.Now)
		if err != nil {
			t.Fatal(err)
		}
		c.OnRevoke(responder.Invalidate)
		srv.Config.Handler = responder
		srv.Start()
		defer srv.Close()

		// A card's authentication key and its proof of possession.
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(key.Public())
		challenge := make([]byte, 16)
		rand.Read(challenge)
		d := sha256.Sum256(vmac.PoPMessage(challenge, vmac.KeyAuth, spki))
		der, _ := key.Sign(rand.Reader, d[:], crypto.SHA256)
		pop, err := vmac.SignatureFromASN1(vmac.AlgECDSAP256, der)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := c.Issue(context.Background(), &ca.IssueRequest{
			Profile:   ca.ProfileAuthentication,
			Subject:   ca.Subject{Country: "EE", GivenName: "MARY ÄNN", Surname: "O’CONNEŽ-ŠUSLIK TESTNUMBER", NationalID: "60001019906"},
			PublicKey: spki, Challenge: challenge, KeyRef: vmac.KeyAuth, ProofOfPossession: pop,
		})
		if err != nil {
			t.Fatal(err)
		}
		write := func(name string, der []byte) string {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		root, issuing, leaf := write("root.pem", keys.Root.Raw), write("issuing.pem", keys.Issuing.Raw), write("leaf.pem", cert.DER)
		query := func(nonce string) string {
			out, err := exec.Command("openssl", "ocsp", "-issuer", issuing, "-cert", leaf, "-url", srv.URL+"/", "-CAfile", root, nonce).CombinedOutput()
			if err != nil {
				t.Fatalf("openssl ocsp: %v\n%s", err, out)
			}
			return string(out)
		}
		out := query("-nonce")
		if !strings.Contains(out, "Response verify OK") || !strings.Contains(out, "leaf.pem: good") || strings.Contains(out, "WARNING") {
			t.Fatalf("openssl ocsp before revocation:\n%s", out)
		}
		// An answer without a nonce is cached; it must not outlive the
		// revocation.
		if out := query("-no_nonce"); !strings.Contains(out, "leaf.pem: good") {
			t.Fatalf("openssl ocsp -no_nonce:\n%s", out)
		}
		if err := c.Revoke(context.Background(), cert.Serial, ca.ReasonKeyCompromise, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, nonce := range []string{"-no_nonce", "-nonce"} {
			out = query(nonce)
			if !strings.Contains(out, "leaf.pem: revoked") || !strings.Contains(out, "Reason: keyCompromise") || !strings.Contains(out, "Response verify OK") {
				t.Fatalf("openssl ocsp %s after revocation:\n%s", nonce, out)
			}
		}
	})
}
