package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"mobileid/internal/handset"
	"mobileid/internal/idserver"
	"mobileid/internal/testenv"
)

// oidcNodeDir returns the folder of the openid-client relying party with
// its pinned dependencies installed. Without node or npm the test skips,
// except in CI.
func oidcNodeDir(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.SkipOrFail(t, "%s is not installed", tool)
		}
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "oidc-node"))
	if err != nil {
		t.Fatal(err)
	}
	if err := testenv.NPMInstall(dir); err != nil {
		t.Fatalf("installing openid-client: %v", err)
	}
	return dir
}

// nodeRP is a run of rp.mjs, which speaks JSON lines on stdin and stdout.
type nodeRP struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Scanner
	stderr bytes.Buffer
	done   bool
	err    error
}

// nodeError is what rp.mjs prints on stderr when it fails: the error as
// openid-client reported it and, for a WWW-Authenticate challenge, the
// body of the answer, which the library leaves unread.
type nodeError struct {
	Error            string `json:"error"`
	Name             string `json:"name"`
	Code             string `json:"code"`
	Status           int    `json:"status"`
	OAuthError       string `json:"oauth_error"`
	ErrorDescription string `json:"error_description"`
	Challenges       []struct {
		Scheme     string            `json:"scheme"`
		Parameters map[string]string `json:"parameters"`
	} `json:"challenges"`
	Body struct {
		Error string `json:"error"`
	} `json:"body"`
	Cause string `json:"cause"`
}

// nodeLogin is the last line of a successful run: the claims of the ID
// token, whose signature openid-client checked, and the userinfo answer.
type nodeLogin struct {
	Claims   map[string]any `json:"claims"`
	Userinfo map[string]any `json:"userinfo"`
}

// startNodeRP runs rp.mjs with the client secret in its environment.
func startNodeRP(t *testing.T, dir, secret string, args ...string) *nodeRP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	n := &nodeRP{cmd: exec.CommandContext(ctx, "node", append([]string{"rp.mjs"}, args...)...)}
	n.cmd.Dir = dir
	n.cmd.Env = append(os.Environ(), "OIDC_CLIENT_SECRET="+secret)
	n.cmd.Stderr = &n.stderr
	n.cmd.WaitDelay = 5 * time.Second
	var err error
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.stdout = bufio.NewScanner(stdout)
	n.stdout.Buffer(nil, 1<<20)
	if err := n.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("node rp.mjs: %v", err)
	}
	t.Cleanup(func() {
		// A test that failed half-way leaves node waiting on stdin.
		cancel()
		n.wait()
	})
	return n
}

// read decodes the next line node prints into v. If node ends instead,
// the test fails with what it said on stderr.
func (n *nodeRP) read(t *testing.T, v any) {
	t.Helper()
	if !n.stdout.Scan() {
		t.Fatalf("node rp.mjs ended (%v) before the next line: %s", n.wait(), n.stderr.Bytes())
	}
	if err := json.Unmarshal(n.stdout.Bytes(), v); err != nil {
		t.Fatalf("node rp.mjs printed %q: %v", n.stdout.Bytes(), err)
	}
}

// write sends v to node as one line of JSON.
func (n *nodeRP) write(t *testing.T, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("writing to node rp.mjs: %v", err)
	}
}

// wait waits for node to exit and returns its error.
func (n *nodeRP) wait() error {
	if !n.done {
		n.done = true
		n.stdin.Close()
		for n.stdout.Scan() {
		}
		n.err = n.cmd.Wait()
	}
	return n.err
}

// succeed waits for node to exit and fails the test unless it exited 0.
func (n *nodeRP) succeed(t *testing.T) {
	t.Helper()
	if err := n.wait(); err != nil {
		t.Fatalf("node rp.mjs: %v: %s", err, n.stderr.Bytes())
	}
}

// fail waits for node to exit, wants exit code 1, and returns the error
// it reported.
func (n *nodeRP) fail(t *testing.T) nodeError {
	t.Helper()
	var exit *exec.ExitError
	if err := n.wait(); !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("node rp.mjs ended with %v, want exit code 1: %s", err, n.stderr.Bytes())
	}
	var e nodeError
	lines := strings.Split(strings.TrimSpace(n.stderr.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &e); err != nil {
		t.Fatalf("node rp.mjs stderr %q: %v", n.stderr.Bytes(), err)
	}
	return e
}

// pick returns the entries of m under keys, absent ones as nil, so that a
// missing claim shows in a diff.
func pick(m map[string]any, keys map[string]any) map[string]any {
	out := map[string]any{}
	for k := range keys {
		out[k] = m[k]
	}
	return out
}

// TestOIDCNodeClient has openid-client, a certified OpenID Connect client
// we did not write, log the registered person in to Demo Bank with the
// authorization code flow (PKCE, the login page answered on the phone) and
// with CIBA, and verify the ID tokens' ES256 signatures against the JWKS.
func TestOIDCNodeClient(t *testing.T) {
	dir := oidcNodeDir(t)
	x := newIDServer(t)
	_, issuer := newOIDC(t, x)
	p := &personClaims{Country: "EE", NationalID: idNationalID}

	// The relying party's redirect URI only records where the browser
	// came back to: node exchanges the code, as an RP's backend would.
	callbacks := make(chan string, 1)
	rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case callbacks <- "http://" + r.Host + r.URL.RequestURI():
		default:
		}
		io.WriteString(w, "back at the relying party")
	}))
	t.Cleanup(rec.Close)
	const codeClient, cibaClient = "node-bank", "node-call-centre"
	redirectURI := rec.URL + "/oidc/callback"
	ctx := context.Background()
	if err := x.rps.AddOIDCClient(ctx, bankUUID, idserver.OIDCClient{ID: codeClient, RedirectURIs: []string{redirectURI}}); err != nil {
		t.Fatalf("AddOIDCClient(%s): %v", codeClient, err)
	}
	if err := x.rps.AddOIDCClient(ctx, bankUUID, idserver.OIDCClient{ID: cibaClient, CIBA: true}); err != nil {
		t.Fatalf("AddOIDCClient(%s): %v", cibaClient, err)
	}

	person := map[string]any{
		"sub": p.subject(), "name": "Mari-Liis Männik", "given_name": "Mari-Liis", "family_name": "Männik",
		"phone_number": x.msisdn, "phone_number_verified": true,
		idserver.ClaimNationalID: idNationalID, idserver.ClaimNationalIDCountry: "EE",
	}
	idToken := func(client string) map[string]any {
		want := map[string]any{"amr": []any{"mid"}, "acr": idserver.ACRMobileID, "iss": issuer, "aud": []any{client}}
		for k, v := range person {
			want[k] = v
		}
		return want
	}

	// codeLogin runs the code flow in node and drives the login page for
	// it, and returns node and the verification code the page showed.
	codeLogin := func(t *testing.T, secret, auth string) (*nodeRP, string) {
		t.Helper()
		n := startNodeRP(t, dir, secret, "code", issuer, codeClient, redirectURI, auth)
		var start struct {
			URL string `json:"authorization_url"`
		}
		n.read(t, &start)
		resp, vc, page := login(t, browser(t), issuer, start.URL, x.msisdn)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), redirectURI+"?") {
			t.Fatalf("login ended at %s %d, want %s:\n%s", resp.Request.URL, resp.StatusCode, redirectURI, page)
		}
		select {
		case u := <-callbacks:
			n.write(t, map[string]string{"callback_url": u})
		default:
			t.Fatal("the redirect URI was not called")
		}
		return n, vc
	}

	t.Run("code flow", func(t *testing.T) {
		x.idle(t)
		x.phone.SetBehaviour(handset.ThinkTime(300 * time.Millisecond))
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		screens := x.watchScreen(t)
		n, vc := codeLogin(t, bankUUID, "client_secret_basic")
		var res nodeLogin
		n.read(t, &res)
		n.succeed(t)
		want := idToken(codeClient)
		if diff := gocmp.Diff(want, pick(res.Claims, want)); diff != "" {
			t.Errorf("ID token claims (-want +got):\n%s", diff)
		}
		if diff := gocmp.Diff(person, pick(res.Userinfo, person)); diff != "" {
			t.Errorf("userinfo (-want +got):\n%s", diff)
		}
		if texts, want := screens(), "Demo Bank: Log in\nVerification code: "+vc; !strings.Contains(texts, want) {
			t.Errorf("phone screens %q, want %q", texts, want)
		}
	})

	t.Run("CIBA", func(t *testing.T) {
		x.idle(t)
		x.phone.SetBehaviour(handset.ThinkTime(300 * time.Millisecond))
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		screens := x.watchScreen(t)
		const binding = "Call 4711: log in"
		n := startNodeRP(t, dir, bankUUID, "ciba", issuer, cibaClient, x.msisdn, binding, "client_secret_post")
		var started struct {
			AuthReqID        string  `json:"auth_req_id"`
			ExpiresIn        float64 `json:"expires_in"`
			Interval         float64 `json:"interval"`
			VerificationCode string  `json:"verification_code"`
		}
		n.read(t, &started)
		if started.AuthReqID == "" || started.ExpiresIn <= 0 || started.Interval != 2 || started.VerificationCode == "" {
			t.Errorf("backchannel authentication response = %+v, want an auth_req_id, expires_in, interval 2 and a verification code", started)
		}
		var res nodeLogin
		n.read(t, &res)
		n.succeed(t)
		want := idToken(cibaClient)
		if diff := gocmp.Diff(want, pick(res.Claims, want)); diff != "" {
			t.Errorf("ID token claims (-want +got):\n%s", diff)
		}
		if diff := gocmp.Diff(person, pick(res.Userinfo, person)); diff != "" {
			t.Errorf("userinfo (-want +got):\n%s", diff)
		}
		if texts, want := screens(), "Demo Bank: "+binding+"\nVerification code: "+started.VerificationCode; !strings.Contains(texts, want) {
			t.Errorf("phone screens %q, want %q", texts, want)
		}
	})

	// Another RP's UUID is a well-formed secret that is not this client's.
	// RFC 6749 §5.2 wants a WWW-Authenticate challenge on a 401 to a client
	// that authenticated with the Authorization header; openid-client then
	// reports the challenge and leaves the invalid_client in the body. Our
	// /bc-authorize answers such a client so, and one that sent its secret
	// in the form with 400; the provider library's token endpoint
	// (authorization_code) answers 401 without a challenge.
	for _, tt := range []struct {
		endpoint, auth string
		status         int
		challenge      bool // the answer carries a Basic challenge
	}{
		{"token", "client_secret_basic", http.StatusUnauthorized, false},
		{"token", "client_secret_post", http.StatusUnauthorized, false},
		{"backchannel", "client_secret_basic", http.StatusUnauthorized, true},
		{"backchannel", "client_secret_post", http.StatusBadRequest, false},
	} {
		t.Run("wrong secret at the "+tt.endpoint+" endpoint with "+tt.auth, func(t *testing.T) {
			var n *nodeRP
			if tt.endpoint == "token" {
				x.idle(t)
				n, _ = codeLogin(t, shopUUID, tt.auth)
			} else {
				n = startNodeRP(t, dir, shopUUID, "ciba", issuer, cibaClient, x.msisdn, "Log in", tt.auth)
			}
			e := n.fail(t)
			if e.Status != tt.status {
				t.Errorf("openid-client reported status %d (%+v), want %d", e.Status, e, tt.status)
			}
			if tt.challenge {
				if e.Code != "OAUTH_WWW_AUTHENTICATE_CHALLENGE" || len(e.Challenges) != 1 || e.Challenges[0].Scheme != "basic" || e.Body.Error != "invalid_client" {
					t.Errorf("openid-client reported %+v, want a Basic challenge and invalid_client in the body", e)
				}
			} else if e.Code != "OAUTH_RESPONSE_BODY_ERROR" || e.OAuthError != "invalid_client" {
				t.Errorf("openid-client reported %+v, want invalid_client", e)
			}
		})
	}
}
