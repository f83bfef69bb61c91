package cms

import (
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mobileid/internal/testenv"
)

func writePEM(t *testing.T, path string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func openssl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		testenv.SkipOrFail(t, "openssl not found: %v", err)
	}
	return path
}

// TestOpenSSLVerify checks that OpenSSL accepts every kind of signature.
func TestOpenSSLVerify(t *testing.T) {
	bin := openssl(t)
	p := getPKI(t)
	dir := t.TempDir()
	root, issuing, data := filepath.Join(dir, "root.pem"), filepath.Join(dir, "issuing.pem"), filepath.Join(dir, "data.txt")
	writePEM(t, root, p.root.Raw)
	writePEM(t, issuing, p.issuing.Raw)
	if err := os.WriteFile(data, []byte(testText), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range signCases() {
		t.Run(c.name, func(t *testing.T) {
			sig := filepath.Join(t.TempDir(), "sig.der")
			if err := os.WriteFile(sig, sign(t, p, c, []byte(testText)), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"cms", "-verify", "-inform", "der", "-in", sig, "-CAfile", root, "-certfile", issuing}
			if c.mode != "attached" {
				args = append(args, "-content", data, "-binary")
			}
			cmd := exec.Command(bin, args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil || !strings.Contains(stderr.String(), "Verification successful") {
				t.Fatalf("openssl %v: %v\nstderr: %s", args, err, stderr.String())
			}
			if string(out) != testText {
				t.Errorf("openssl printed %q, want %q", out, testText)
			}

			// Verification against the wrong content must fail.
			if c.mode != "attached" {
				other := filepath.Join(t.TempDir(), "other.txt")
				if err := os.WriteFile(other, []byte("tampered"), 0o600); err != nil {
					t.Fatal(err)
				}
				args[len(args)-2] = other
				if out, err := exec.Command(bin, args...).CombinedOutput(); err == nil {
					t.Errorf("openssl verified tampered content: %s", out)
				}
			}
		})
	}
}

// TestOpenSSLPrint checks that OpenSSL sees the four CAdES-BES signed
// attributes and the time-stamp token.
func TestOpenSSLPrint(t *testing.T) {
	bin := openssl(t)
	p := getPKI(t)
	der := sign(t, p, signCase{mode: "attached"}, []byte(testText))
	sd, err := parseSignedData(der)
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := AddTimestamp(der, fakeTimestampToken(t, sd.SignerInfos[0].Signature))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sig.der")
	if err := os.WriteFile(path, stamped, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "cms", "-cmsout", "-print", "-inform", "der", "-in", path).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	for _, want := range []string{"contentType", "messageDigest", "signingTime", "id-smime-aa-signingCertificateV2", "id-smime-aa-timeStampToken", "ecdsa-with-SHA256"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("openssl -print output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
