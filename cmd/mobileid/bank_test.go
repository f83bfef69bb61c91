package main

import (
	"mobileid/internal/up"

	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCA writes a self-signed CA certificate and one it issued, as PEM.
func writeCA(t *testing.T, path string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Root"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	iss := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Issuing"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	rootCert, _ := x509.ParseCertificate(rootDER)
	issDER, err := x509.CreateCertificate(rand.Reader, iss, rootCert, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: rootDER})
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: issDER})
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBankCommand runs `mobileid bank` until it serves its landing page,
// with no ID Server up, and stops it.
func TestBankCommand(t *testing.T) {
	dir := t.TempDir()
	roots := filepath.Join(dir, "roots.pem")
	writeCA(t, roots)

	t.Setenv("MOBILEID_BANK_RP_UUID", "")
	if code, _, errOut := runCmd(t, "bank", "--data", dir, "--ca-roots", roots); code != 2 || !strings.Contains(errOut, "MOBILEID_BANK_RP_UUID") {
		t.Errorf("bank without the RP UUID = %d %q, want 2 and a hint", code, errOut)
	}
	t.Setenv("MOBILEID_BANK_RP_UUID", "de305d54-75b4-431b-adb2-eb6b9e546014")
	if code, _, errOut := runCmd(t, "bank", "--data", dir, "--ca-roots", filepath.Join(dir, "none.pem")); code != 2 || !strings.Contains(errOut, "--ca-roots") {
		t.Errorf("bank with a missing roots file = %d %q, want 2", code, errOut)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, &env{stdout: io.Discard, stderr: &stderr}, []string{"bank", "--data", dir, "--ca-roots", roots, "--ca-chain", "",
			"--listen", addr, "--public-url", "http://" + addr, "--issuer", "http://127.0.0.1:1", "--mid-api", "http://127.0.0.1:1/mid-api"})
	}()
	var page string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page = string(b)
		break
	}
	if !strings.Contains(page, "Log in with Mobile ID") {
		t.Errorf("landing page of `mobileid bank`:\n%s", page)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("bank exited with %d after the signal", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("bank did not stop within 10 s of the signal")
	}
}

func TestBankCAs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ca.pem")
	writeCA(t, path)
	roots, inter, err := bankCAs(path, "")
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := up.ReadCertsFile(path)
	// The issuing CA chains to the root, so it was not taken for a root
	// itself; the root is not among the intermediates.
	if chains, err := certs[1].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter}); err != nil || len(chains[0]) != 2 {
		t.Errorf("issuing CA verifies with the roots found as %v, %v; want a chain of 2", chains, err)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: inter}); err == nil {
		t.Errorf("the root was taken for an intermediate")
	}
	if _, _, err := bankCAs(path, path); err != nil {
		t.Errorf("bankCAs with a chain file = %v", err)
	}
	only := filepath.Join(t.TempDir(), "issuing.pem")
	os.WriteFile(only, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[1].Raw}), 0o644)
	if _, _, err := bankCAs(only, ""); err == nil {
		t.Errorf("bankCAs with no self-signed certificate succeeded")
	}
}
