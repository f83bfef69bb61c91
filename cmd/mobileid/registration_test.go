package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/ca"
	"mobileid/internal/ocsp"
	"mobileid/internal/store"
	"mobileid/internal/vmac"
)

// TestRegistrationOfficerAdd adds an officer, and checks that refused
// commands say why in one line.
func TestRegistrationOfficerAdd(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	add := []string{"registration", "officer", "add", "anna", "--name", "Anna Tamm", "--desk", "Tallinn 1", "--data", data}
	t.Setenv("MOBILEID_OFFICER_PASSWORD", "")
	if code, _, errOut := runCmd(t, add...); code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "no password") {
		t.Errorf("officer add without a password = %d %q, want exit 2 with one line", code, errOut)
	}
	t.Setenv("MOBILEID_OFFICER_PASSWORD", "short")
	if code, _, errOut := runCmd(t, add...); code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "10 to 72") {
		t.Errorf("officer add with a short password = %d %q, want exit 1 with one line", code, errOut)
	}
	t.Setenv("MOBILEID_OFFICER_PASSWORD", "a-long-enough-secret")
	if code, out, errOut := runCmd(t, add...); code != 0 || !strings.Contains(out, "added officer anna") {
		t.Fatalf("officer add = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, add...); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("officer add twice = %d %q, want exit 1", code, errOut)
	}
	if code, out, errOut := runCmd(t, add...); strings.Contains(out+errOut, "a-long-enough-secret") {
		t.Errorf("the password was printed (exit %d)", code)
	}
}

// TestOCSPStatus asks the desk's status function about a certificate of a
// real CA with its OCSP responder: good, on hold, revoked.
func TestOCSPStatus(t *testing.T) {
	ctx := context.Background()
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
	db, err := store.Open(ctx, store.Config{DataDir: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	mux := http.NewServeMux()
	mux.Handle("/ocsp", responder)
	srv.Config.Handler = mux
	srv.Start()
	defer srv.Close()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(key.Public())
	challenge := make([]byte, 16)
	rand.Read(challenge)
	d := sha256.Sum256(vmac.PoPMessage(challenge, vmac.KeyAuth, spki))
	der, _ := key.Sign(rand.Reader, d[:], crypto.SHA256)
	pop, _ := vmac.SignatureFromASN1(vmac.AlgECDSAP256, der)
	cert, err := c.Issue(ctx, &ca.IssueRequest{
		Profile: ca.ProfileAuthentication, Subject: ca.Subject{Country: "EE", GivenName: "MARI", Surname: "MÄNNIK", NationalID: "47605030299"},
		PublicKey: spki, Challenge: challenge, KeyRef: vmac.KeyAuth, ProofOfPossession: pop,
	})
	if err != nil {
		t.Fatal(err)
	}
	status := ocspStatus(c, keys.Issuing, http.DefaultClient)
	serial := cert.Serial.Text(16)
	for _, step := range []struct {
		act  func() error
		want string
	}{
		{func() error { return nil }, "good (OCSP)"},
		{func() error { return c.Revoke(ctx, cert.Serial, ca.ReasonCertificateHold, time.Time{}) }, "on hold (OCSP)"},
		{func() error { return c.Release(ctx, cert.Serial) }, "good (OCSP)"},
		{func() error { return c.Revoke(ctx, cert.Serial, ca.ReasonKeyCompromise, time.Time{}) }, "revoked (OCSP, reason 1)"},
	} {
		if err := step.act(); err != nil {
			t.Fatal(err)
		}
		if got, err := status(ctx, serial); err != nil || got != step.want {
			t.Errorf("status = %q, %v; want %q", got, err, step.want)
		}
	}
	if _, err := status(ctx, "zz"); err == nil {
		t.Error("status of a bad serial: no error")
	}
}

// TestIDServerRPAdd registers a relying party and checks the UUID it is
// given and that refused commands say why in one line.
func TestIDServerRPAdd(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	code, out, errOut := runCmd(t, "idserver", "rp", "add", "--name", "Demo Bank", "--data", data)
	if code != 0 || !strings.Contains(out, "added relying party \"Demo Bank\"") {
		t.Fatalf("rp add = %d %q %q", code, out, errOut)
	}
	var uuid string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "relyingPartyUUID: "); ok {
			uuid = v
		}
	}
	if len(uuid) != 36 || uuid[14] != '4' || strings.ToLower(uuid) != uuid {
		t.Errorf("relyingPartyUUID = %q, want a lower-case version 4 UUID", uuid)
	}
	for _, args := range [][]string{
		{"--data", data},
		{"--name", "Shop", "--services", "teleport", "--data", data},
		{"--name", "Shop", "--ips", "10.0.0.0/33", "--data", data},
	} {
		if code, _, errOut := runCmd(t, append([]string{"idserver", "rp", "add"}, args...)...); code == 0 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("rp add %v = %d %q, want a one-line refusal", args, code, errOut)
		}
	}
}
