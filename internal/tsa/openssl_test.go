package tsa

import (
	"bytes"
	"crypto/elliptic"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mobileid/internal/testenv"
)

// This file checks the TSA against OpenSSL, an independent RFC 3161
// implementation: OpenSSL makes the queries, the TSA answers them over
// HTTP, and OpenSSL prints and verifies the replies.

// openssl runs the openssl command in dir and returns its combined output.
func openssl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		testenv.SkipOrFail(t, "openssl not found: %v", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustOpenSSL is openssl for commands that must succeed.
func mustOpenSSL(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := openssl(t, dir, args...)
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// postQuery POSTs dir/req.tsq to url and writes the reply to dir/resp.tsr.
func postQuery(t *testing.T, url, dir string) {
	t.Helper()
	q, err := os.ReadFile(filepath.Join(dir, "req.tsq"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, ContentTypeQuery, bytes.NewReader(q))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ContentTypeReply {
		t.Fatalf("POST = %d %s, want 200 %s", resp.StatusCode, resp.Header.Get("Content-Type"), ContentTypeReply)
	}
	if err := os.WriteFile(filepath.Join(dir, "resp.tsr"), body.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// line returns the first line of out that starts with prefix, without it.
func line(out, prefix string) (string, bool) {
	for l := range strings.Lines(out) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), prefix); ok {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}

func TestOpenSSL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		testenv.SkipOrFail(t, "openssl not found: %v", err)
	}
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384()} {
		p := newTestPKI(t, curve)
		cfg := p.config()
		cfg.Chain = cfg.Chain[:1] // the issuing CA only; OpenSSL gets the root from -CAfile
		cfg.Accuracy = 1500 * time.Millisecond
		tsa, _, now := newTestTSA(t, cfg)
		srv := httptest.NewServer(tsa)
		t.Cleanup(srv.Close)

		pkiDir := t.TempDir()
		writePEM(t, pkiDir, "root.pem", p.root)
		writePEM(t, pkiDir, "chain.pem", p.ca)
		writePEM(t, pkiDir, "tsa-chain.pem", p.tsa, p.ca)

		tests := []struct {
			name     string
			args     []string
			certs    bool
			nonce    bool
			hashName string
		}{
			{"sha256 cert", []string{"-sha256", "-cert"}, true, true, "sha256"},
			{"sha384 cert", []string{"-sha384", "-cert"}, true, true, "sha384"},
			{"sha512 cert", []string{"-sha512", "-cert"}, true, true, "sha512"},
			{"sha256 no cert", []string{"-sha256"}, false, true, "sha256"},
			{"sha512 cert no nonce", []string{"-sha512", "-cert", "-no_nonce"}, true, false, "sha512"},
			{"sha256 cert our policy", []string{"-sha256", "-cert", "-tspolicy", testPolicy.String()}, true, true, "sha256"},
		}
		for _, tt := range tests {
			t.Run(curve.Params().Name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("Mobile ID: signed by +37200000001\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				mustOpenSSL(t, dir, append([]string{"ts", "-query", "-data", "data.txt", "-out", "req.tsq"}, tt.args...)...)
				postQuery(t, srv.URL, dir)

				qText := mustOpenSSL(t, dir, "ts", "-query", "-in", "req.tsq", "-text")
				rText := mustOpenSSL(t, dir, "ts", "-reply", "-in", "resp.tsr", "-text")
				t.Logf("openssl ts -reply -in resp.tsr -text:\n%s", rText)
				wantLines := map[string]string{
					"Status:":         "Granted.",
					"Policy OID:":     testPolicy.String(),
					"Hash Algorithm:": tt.hashName,
					"Accuracy:":       "0x01 seconds, 0x01F4 millis, unspecified micros",
					"Time stamp:":     now.Truncate(time.Second).Format("Jan _2 15:04:05 2006 GMT"),
					"Ordering:":       "no",
				}
				if tt.nonce {
					qNonce, _ := line(qText, "Nonce:")
					wantLines["Nonce:"] = qNonce
				} else {
					wantLines["Nonce:"] = "unspecified"
				}
				for prefix, want := range wantLines {
					if got, ok := line(rText, prefix); got != want || !ok {
						t.Errorf("reply %s %q, want %q", prefix, got, want)
					}
				}

				untrusted := filepath.Join(pkiDir, "chain.pem")
				if !tt.certs {
					// No certificate in the token: OpenSSL needs the TSA
					// certificate from outside.
					untrusted = filepath.Join(pkiDir, "tsa-chain.pem")
					if out, _ := openssl(t, dir, "ts", "-verify", "-data", "data.txt", "-in", "resp.tsr",
						"-CAfile", filepath.Join(pkiDir, "root.pem"), "-untrusted", filepath.Join(pkiDir, "chain.pem")); strings.Contains(out, "Verification: OK") {
						t.Errorf("token without certificates verified without the TSA certificate:\n%s", out)
					}
				}
				out := mustOpenSSL(t, dir, "ts", "-verify", "-data", "data.txt", "-in", "resp.tsr",
					"-CAfile", filepath.Join(pkiDir, "root.pem"), "-untrusted", untrusted)
				t.Logf("openssl ts -verify -data data.txt -in resp.tsr -CAfile root.pem -untrusted %s:\n%s", filepath.Base(untrusted), out)
				if !strings.Contains(out, "Verification: OK") {
					t.Errorf("openssl ts -verify -data: %s", out)
				}
				// -queryfile also compares the nonce and the imprint with the
				// query.
				out = mustOpenSSL(t, dir, "ts", "-verify", "-queryfile", "req.tsq", "-in", "resp.tsr",
					"-CAfile", filepath.Join(pkiDir, "root.pem"), "-untrusted", untrusted)
				if !strings.Contains(out, "Verification: OK") {
					t.Errorf("openssl ts -verify -queryfile: %s", out)
				}

				if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("Mobile ID: signed by +37200000002\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				out, err := openssl(t, dir, "ts", "-verify", "-data", "data.txt", "-in", "resp.tsr",
					"-CAfile", filepath.Join(pkiDir, "root.pem"), "-untrusted", untrusted)
				t.Logf("tampered data: openssl ts -verify = %v:\n%s", err, out)
				if err == nil || !strings.Contains(out, "Verification: FAILED") || !strings.Contains(out, "message imprint mismatch") {
					t.Errorf("openssl ts -verify of tampered data = %v:\n%s\nwant Verification: FAILED, message imprint mismatch", err, out)
				}
			})
		}
	}
}

// TestOpenSSL_Rejections checks that OpenSSL reads the rejections,
// PKIFailureInfo included.
func TestOpenSSL_Rejections(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		testenv.SkipOrFail(t, "openssl not found: %v", err)
	}
	tsa, _, _ := newTestTSA(t, newTestPKI(t, elliptic.P256()).config())
	srv := httptest.NewServer(tsa)
	t.Cleanup(srv.Close)
	tests := []struct {
		name    string
		args    []string
		wantFI  string // OpenSSL's text for the failInfo bit
		wantMsg string
	}{
		{"other policy", []string{"-sha256", "-tspolicy", "1.2.3.4"}, "the requested TSA policy is not supported by the TSA", "policy 1.2.3.4 not supported"},
		{"SHA-1", []string{"-sha1"}, "unrecognized or unsupported algorithm identifier", "unsupported hash algorithm 1.3.14.3.2.26"},
		{"MD5", []string{"-md5"}, "unrecognized or unsupported algorithm identifier", "unsupported hash algorithm 1.2.840.113549.2.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			mustOpenSSL(t, dir, append([]string{"ts", "-query", "-data", "data.txt", "-out", "req.tsq"}, tt.args...)...)
			postQuery(t, srv.URL, dir)
			out := mustOpenSSL(t, dir, "ts", "-reply", "-in", "resp.tsr", "-text")
			t.Logf("openssl ts -reply -in resp.tsr -text:\n%s", out)
			for _, want := range []string{"Status: Rejected", fmt.Sprintf("Failure info: %s", tt.wantFI), tt.wantMsg} {
				if !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(out) {
					t.Errorf("reply text lacks %q", want)
				}
			}
		})
	}
}
