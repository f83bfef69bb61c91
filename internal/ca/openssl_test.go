package ca

import (
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
	"mobileid/internal/testenv"
)

// openssl runs the OpenSSL command line in dir and returns its combined
// output and whether it exited 0.
func openssl(t *testing.T, dir string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
	}
	return string(out), err == nil
}

func needOpenSSL(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		testenv.SkipOrFail(t, "openssl is not installed: %v", err)
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOpenSSL has OpenSSL, which shares no code with crypto/x509, check
// the chain, the CRL and the profiles.
func TestOpenSSL(t *testing.T) {
	t.Parallel()
	needOpenSSL(t)
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		dir := t.TempDir()
		writePEM(t, filepath.Join(dir, "root.pem"), "CERTIFICATE", tc.keys.Root.Raw)
		writePEM(t, filepath.Join(dir, "issuing.pem"), "CERTIFICATE", tc.keys.Issuing.Raw)
		writePEM(t, filepath.Join(dir, "ocsp.pem"), "CERTIFICATE", tc.keys.OCSP.Raw)
		writePEM(t, filepath.Join(dir, "tsa.pem"), "CERTIFICATE", tc.keys.TSA.Raw)
		reg := newRegistration(t, tc.vendor, newECKey(t), newRSAKey(t, 1))
		auth, _ := tc.issue(t, reg.request(t, ProfileAuthentication))
		sign, _ := tc.issue(t, reg.request(t, ProfileSigning))
		writePEM(t, filepath.Join(dir, "auth.pem"), "CERTIFICATE", auth.DER)
		writePEM(t, filepath.Join(dir, "sign.pem"), "CERTIFICATE", sign.DER)
		writeCRL := func() {
			t.Helper()
			crl, err := tc.LatestCRL(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			writePEM(t, filepath.Join(dir, "crl.pem"), "X509 CRL", crl.DER)
		}
		writeCRL()

		verify := func(leaf string, extra ...string) (string, bool) {
			t.Helper()
			args := append([]string{"verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem"}, extra...)
			return openssl(t, dir, append(args, leaf)...)
		}
		for _, tt := range []struct {
			leaf  string
			extra []string
		}{
			{"auth.pem", nil},
			{"sign.pem", nil},
			{"auth.pem", []string{"-purpose", "sslclient"}},
			{"tsa.pem", []string{"-purpose", "timestampsign"}},
			{"ocsp.pem", nil},
			{"auth.pem", []string{"-crl_check", "-CRLfile", "crl.pem"}},
			{"sign.pem", []string{"-crl_check", "-CRLfile", "crl.pem"}},
		} {
			if out, ok := verify(tt.leaf, tt.extra...); !ok || !strings.Contains(out, tt.leaf+": OK") {
				t.Errorf("openssl verify %v %s:\n%s", tt.extra, tt.leaf, out)
			}
		}

		// The profiles as OpenSSL reads them.
		for _, tt := range []struct {
			file string
			want []string
		}{
			{"auth.pem", []string{
				"Signature Algorithm: ecdsa-with-SHA384",
				"X509v3 Key Usage: critical", "Digital Signature, Key Agreement",
				"X509v3 Extended Key Usage:", "TLS Web Client Authentication",
				"Authority Information Access:", "OCSP - URI:http://ca.test/ocsp", "CA Issuers - URI:http://ca.test/ca/issuing.crt",
				"X509v3 CRL Distribution Points:", "URI:http://ca.test/crl/issuing.crl",
				"Policy: " + PolicyArc + ".1.1",
				"serialNumber=PNOEE-38001085718",
			}},
			{"sign.pem", []string{
				"X509v3 Key Usage: critical", "Non Repudiation",
				"qcStatements:",
				"Authority Information Access:", "OCSP - URI:http://ca.test/ocsp", "CA Issuers - URI:http://ca.test/ca/issuing.crt",
				"X509v3 CRL Distribution Points:", "URI:http://ca.test/crl/issuing.crl",
				"Policy: " + PolicyArc + ".1.2",
				"Public-Key: (2048 bit)",
			}},
			{"tsa.pem", []string{"X509v3 Extended Key Usage: critical", "Time Stamping"}},
			{"ocsp.pem", []string{"OCSP Signing", "OCSP No Check"}},
			{"issuing.pem", []string{"CA:TRUE, pathlen:0", "Policy: X509v3 Any Policy"}},
		} {
			out, ok := openssl(t, dir, "x509", "-text", "-noout", "-nameopt", "RFC2253,-esc_msb", "-in", tt.file)
			if !ok {
				t.Fatalf("openssl x509 %s:\n%s", tt.file, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("openssl x509 -text %s lacks %q:\n%s", tt.file, w, out)
				}
			}
			if tt.file == "auth.pem" && !strings.Contains(out, "Subject: serialNumber=PNOEE-38001085718,GN=JAAK-KRISTJAN,SN=JÕEORG,CN=JÕEORG\\,JAAK-KRISTJAN,C=EE") {
				t.Errorf("openssl x509 -text %s: subject not C, CN, SN, GN, serialNumber:\n%s", tt.file, out)
			}
		}
		// The QC statement OIDs, from OpenSSL's own DER parser.
		out, ok := openssl(t, dir, "asn1parse", "-in", "sign.pem")
		if !ok {
			t.Fatalf("openssl asn1parse:\n%s", out)
		}
		qcOffset := ""
		for line := range strings.Lines(out) {
			if strings.Contains(line, "qcStatements") {
				qcOffset = "found"
			}
			if qcOffset == "found" && strings.Contains(line, "OCTET STRING") {
				qcOffset = strings.TrimSpace(strings.SplitN(line, ":", 2)[0])
				break
			}
		}
		out, ok = openssl(t, dir, "asn1parse", "-in", "sign.pem", "-strparse", qcOffset)
		for _, oid := range []string{"0.4.0.1862.1.1", "0.4.0.1862.1.4", "0.4.0.1862.1.6", "0.4.0.1862.1.6.1", "0.4.0.1862.1.5", ":http://pds.test/en", ":en"} {
			if !ok || !strings.Contains(out, oid) {
				t.Errorf("qcStatements as parsed by OpenSSL lack %s:\n%s", oid, out)
			}
		}

		// Revoke the authentication certificate, suspend the signing one.
		tc.clock.Advance(time.Second)
		if err := tc.Revoke(t.Context(), auth.Serial, ReasonKeyCompromise, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := tc.Revoke(t.Context(), sign.Serial, ReasonCertificateHold, time.Time{}); err != nil {
			t.Fatal(err)
		}
		writeCRL()
		for _, leaf := range []string{"auth.pem", "sign.pem"} {
			if out, ok := verify(leaf, "-crl_check", "-CRLfile", "crl.pem"); ok || !strings.Contains(out, "certificate revoked") {
				t.Errorf("openssl verify -crl_check %s after revocation succeeded or said something else:\n%s", leaf, out)
			}
		}
		out, ok = openssl(t, dir, "crl", "-text", "-noout", "-in", "crl.pem")
		crl, _ := tc.LatestCRL(t.Context())
		for _, w := range []string{
			"X509v3 CRL Number:", "\n                " + strconv.FormatInt(crl.Number, 10) + "\n",
			"Serial Number: " + opensslSerial(auth.Serial), "Key Compromise", "Invalidity Date:",
			"Serial Number: " + opensslSerial(sign.Serial), "Certificate Hold",
			"Signature Algorithm: ecdsa-with-SHA384",
		} {
			if !ok || !strings.Contains(out, w) {
				t.Errorf("openssl crl -text lacks %q:\n%s", w, out)
			}
		}

		// Released from hold: valid again with the next CRL.
		if err := tc.Release(t.Context(), sign.Serial); err != nil {
			t.Fatal(err)
		}
		writeCRL()
		if out, ok := verify("sign.pem", "-crl_check", "-CRLfile", "crl.pem"); !ok {
			t.Errorf("openssl verify -crl_check sign.pem after release:\n%s", out)
		}
		if out, ok := verify("auth.pem", "-crl_check", "-CRLfile", "crl.pem"); ok || !strings.Contains(out, "certificate revoked") {
			t.Errorf("openssl verify -crl_check auth.pem after another certificate's release:\n%s", out)
		}
	})
}

// opensslSerial is a serial number as openssl crl -text prints it: upper-case
// hex, whole bytes.
func opensslSerial(s *big.Int) string { return fmt.Sprintf("%X", s.Bytes()) }
