package idserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/idserver/midgolden"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// goldenDir holds request and response JSON written from SK's description
// of the MID REST API, not from this server's output (see its README.md).
const goldenDir = "testdata/mid"

// realStackGolden are the golden answers that need a signature from a SIM
// and a CA with an OCSP responder. The MSSP fake of these tests only
// scripts failures, so internal/e2e (TestMIDGolden) compares them against
// the whole platform.
var realStackGolden = []string{
	"certificate-ok.json", "certificate-not-active.json",
	"session-authentication-ok.json", "session-signature-ok.json",
}

// goldenCase sends a golden request and compares the answer with a golden
// response.
type goldenCase struct {
	name    string
	method  string
	path    string // under /mid-api; {id} is the session started first
	start   string // kind of the session to start first, with its golden request
	request string // golden request body, if any
	// signErr and final script the fake MSSP, as in TestSessionOutcomes.
	signErr error
	final   func() (*etsi.MSSStatusResp, error)
	wait    bool // poll until the session is no longer RUNNING
	status  int
	golden  string
}

// goldenFault scripts an MSSP that ends a transaction with a fault.
func goldenFault(code etsi.Code, detail int) func() (*etsi.MSSStatusResp, error) {
	return func() (*etsi.MSSStatusResp, error) { return nil, &etsi.Fault{Code: code, DetailCode: detail} }
}

// goldenStatus scripts an MSSP that ends a transaction with a status.
func goldenStatus(code etsi.Code) func() (*etsi.MSSStatusResp, error) {
	return func() (*etsi.MSSStatusResp, error) { return &etsi.MSSStatusResp{Status: etsi.NewStatus(code)}, nil }
}

// goldenCases are the cases the MSSP fake can play. The directory of
// newTestServer knows the demo user without certificates, so POST
// /certificate finds nothing to return.
func goldenCases() []goldenCase {
	const unknownSession = "0f6a0c5e-2b1d-4c8e-9d3a-7e5b4a1c2d3f"
	cases := []goldenCase{
		{name: "certificate NOT_FOUND", method: "POST", path: "/certificate", request: "certificate-request.json", status: 200, golden: "certificate-not-found.json"},
		{name: "certificate 401", method: "POST", path: "/certificate", request: "error-401-request.json", status: 401, golden: "error-401.json"},
		{name: "certificate 405", method: "GET", path: "/certificate", status: 405, golden: "error-405-method-not-allowed.json"},
	}
	// The status of a session of either kind: every result the MSSP fake
	// can script, RUNNING, and the errors.
	results := []struct {
		golden string
		final  func() (*etsi.MSSStatusResp, error)
	}{
		{"session-timeout.json", goldenFault(etsi.CodeExpiredTransaction, 0)},
		{"session-not-mid-client.json", goldenStatus(etsi.CodeRevokedCertificate)},
		{"session-user-cancelled.json", goldenFault(etsi.CodeUserCancel, 4011)},
		{"session-signature-hash-mismatch.json", goldenStatus(etsi.CodeInvalidSignature)},
		{"session-phone-absent.json", goldenFault(etsi.CodeOTAError, etsi.DetailMECommunicationError)},
		{"session-delivery-error.json", goldenFault(etsi.CodeOTAError, 0)},
		{"session-sim-error.json", goldenFault(etsi.CodeInternalError, etsi.DetailSIMApplicationError)},
	}
	for _, kind := range []string{KindAuthentication, KindSignature} {
		other := KindSignature
		if kind == KindSignature {
			other = KindAuthentication
		}
		cases = append(cases,
			goldenCase{name: kind + " start", method: "POST", path: "/" + kind, request: kind + "-request.json", status: 200, golden: kind + "-response.json"},
			goldenCase{name: kind + " 400 missing field", method: "POST", path: "/" + kind, request: "error-400-missing-field-request.json", status: 400, golden: "error-400-missing-field.json"},
			goldenCase{name: kind + " 400 hash not base64", method: "POST", path: "/" + kind, request: "error-400-bad-hash-request.json", status: 400, golden: "error-400-bad-hash.json"},
			goldenCase{name: kind + " 400 hash length", method: "POST", path: "/" + kind, request: "error-400-hash-length-request.json", status: 400, golden: "error-400-hash-length.json"},
			goldenCase{name: kind + " 401", method: "POST", path: "/" + kind, request: "error-401-request.json", status: 401, golden: "error-401.json"},
			goldenCase{name: kind + " 405", method: "GET", path: "/" + kind, status: 405, golden: "error-405-method-not-allowed.json"},
			goldenCase{name: kind + " RUNNING", start: kind, method: "GET", path: "/" + kind + "/session/{id}?timeoutMs=1000", status: 200, golden: "session-running.json"},
			goldenCase{name: kind + " 400 no session ID", method: "GET", path: "/" + kind + "/session/", status: 400, golden: "error-400-session-id-missing.json"},
			goldenCase{name: kind + " 404 unknown session", method: "GET", path: "/" + kind + "/session/" + unknownSession, status: 404, golden: "error-404-session-not-found.json"},
			goldenCase{name: kind + " 404 session of the other kind", start: other, method: "GET", path: "/" + kind + "/session/{id}", status: 404, golden: "error-404-session-not-found.json"},
			goldenCase{name: kind + " 500", start: kind, signErr: &etsi.Fault{Code: etsi.CodeUnauthorizedAccess}, method: "GET", path: "/" + kind + "/session/{id}?timeoutMs=1000", wait: true, status: 500, golden: "error-500-internal-error.json"},
		)
		for _, r := range results {
			name := strings.TrimSuffix(strings.TrimPrefix(r.golden, "session-"), ".json")
			cases = append(cases, goldenCase{name: kind + " " + name, start: kind, final: r.final,
				method: "GET", path: "/" + kind + "/session/{id}?timeoutMs=1000", wait: true, status: 200, golden: r.golden})
		}
	}
	return cases
}

// readGolden returns a golden file.
func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenCall sends a request to a test server and returns the status, the
// Content-Type and the body of the answer.
func goldenCall(t *testing.T, ts *testServer, method, path string, body []byte) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), data
}

// TestGoldenFilesUsed checks that every golden file is compared, here or
// in internal/e2e, so that none is left behind when the tests change.
func TestGoldenFilesUsed(t *testing.T) {
	used := map[string]bool{"version.txt": true}
	for _, name := range realStackGolden {
		used[name] = true
	}
	for _, c := range goldenCases() {
		used[c.golden] = true
		if c.request != "" {
			used[c.request] = true
		}
		if c.start != "" {
			used[c.start+"-request.json"] = true
		}
	}
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if e.Name() == "README.md" {
			continue
		}
		files = append(files, e.Name())
		if !used[e.Name()] {
			t.Errorf("golden file %s is not compared by any test", e.Name())
		}
	}
	for name := range used {
		if !slices.Contains(files, name) {
			t.Errorf("golden file %s is missing", name)
		}
	}
}

// TestGolden sends each golden request to the handler and compares the
// answer with its golden response field by field: the same fields, the
// same JSON types, equal values, placeholders of the right shape.
func TestGolden(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		// SK's demo relying party, which the README's examples use.
		rps, err := NewRPs(db, nil)
		if err != nil {
			t.Fatal(err)
		}
		demo := RPConfig{UUID: "00000000-0000-0000-0000-000000000000", RP: RP{Name: "DEMO",
			Services: []Service{ServiceCertificate, ServiceAuthentication, ServiceSignature}}}
		if err := rps.Add(context.Background(), demo); err != nil && !errors.Is(err, ErrRPExists) {
			t.Fatal(err)
		}
		for _, c := range goldenCases() {
			t.Run(c.name, func(t *testing.T) {
				ts := newTestServer(t, db, &fakeMSSP{signErr: c.signErr, final: c.final})
				path := c.path
				if c.start != "" {
					code, _, out := goldenCall(t, ts, http.MethodPost, "/"+c.start, readGolden(t, c.start+"-request.json"))
					if code != http.StatusOK {
						t.Fatalf("POST /%s = %d %s", c.start, code, out)
					}
					if diffs := midgolden.Compare(out, readGolden(t, c.start+"-response.json")); diffs != nil {
						t.Fatalf("POST /%s: %s", c.start, strings.Join(diffs, "; "))
					}
					path = strings.Replace(path, "{id}", sessionIDOf(t, out), 1)
				}
				var body []byte
				if c.request != "" {
					body = readGolden(t, c.request)
				}
				code, ctype, out := goldenCall(t, ts, c.method, path, body)
				for deadline := time.Now().Add(10 * time.Second); c.wait && code == http.StatusOK && bytes.Contains(out, []byte(`"RUNNING"`)); {
					if time.Now().After(deadline) {
						t.Fatalf("%s %s still RUNNING after 10 s", c.method, path)
					}
					code, ctype, out = goldenCall(t, ts, c.method, path, body)
				}
				if code != c.status {
					t.Errorf("%s %s = %d %s, want %d", c.method, c.path, code, out, c.status)
				}
				if !strings.HasPrefix(ctype, "application/json") {
					t.Errorf("%s %s: Content-Type = %q, want application/json", c.method, c.path, ctype)
				}
				for _, d := range midgolden.Compare(out, readGolden(t, c.golden)) {
					t.Errorf("%s %s against %s: %s", c.method, c.path, c.golden, d)
				}
			})
		}

		// GET /version answers plain text in the README's form; every
		// digit may differ.
		t.Run("version", func(t *testing.T) {
			ts := newTestServer(t, db, &fakeMSSP{})
			code, _, out := goldenCall(t, ts, http.MethodGet, "/version", nil)
			digits := regexp.MustCompile(`[0-9]`)
			got := digits.ReplaceAllString(strings.TrimSpace(string(out)), "0")
			want := digits.ReplaceAllString(strings.TrimSpace(string(readGolden(t, "version.txt"))), "0")
			if code != http.StatusOK || got != want {
				t.Errorf("GET /version = %d %q, want the form of %q", code, out, want)
			}
		})
	})
}

// sessionIDOf returns the sessionID of a session start answer.
func sessionIDOf(t *testing.T, out []byte) string {
	t.Helper()
	m := regexp.MustCompile(`"sessionID":"([^"]+)"`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no sessionID in %s", out)
	}
	return string(m[1])
}
