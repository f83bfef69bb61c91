package e2e

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	gocmp "github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"mobileid/internal/handset"
	"mobileid/internal/idserver"
)

// oidcRP is a relying party of the OpenID provider, built on go-oidc and
// x/oauth2 as a web application would be.
type oidcRP struct {
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	url      string // of the RP's own server
	results  chan rpResult
	verify   string // the PKCE verifier of the login under way
	state    string
	nonce    string
}

// rpResult is what the RP's callback learnt.
type rpResult struct {
	claims   map[string]any
	userinfo map[string]any
	err      error
}

const oidcClientID = "demo-bank"

// newOIDC mounts an OpenID provider on the ID Server and registers Demo
// Bank as a client, and returns the issuer URL.
func newOIDC(t *testing.T, x *idServer) (*idserver.OIDC, string) {
	t.Helper()
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	var kek [32]byte
	copy(kek[:], "kek of the oidc end-to-end test.")
	cfg := idserver.OIDCConfig{
		Issuer: hs.URL, Insecure: true, KeyEncryptionKey: kek,
		SubjectKey: []byte("subject key of the oidc end-to-end test"),
	}
	// Two providers on the database, as on two nodes, take the requests
	// in turn: every step of a login may reach another node.
	var nodes []http.Handler
	var first *idserver.OIDC
	for range 2 {
		o, err := idserver.NewOIDC(context.Background(), x.srv, cfg)
		if err != nil {
			t.Fatalf("NewOIDC: %v", err)
		}
		first = cmp.Or(first, o)
		nodes = append(nodes, o.Handler())
	}
	var turn atomic.Int64
	mux.Handle("/mid-api/", x.srv.Handler())
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nodes[turn.Add(1)%2].ServeHTTP(w, r)
	}))
	return first, hs.URL
}

func newOIDCRP(t *testing.T, x *idServer, issuer string) *oidcRP {
	t.Helper()
	ctx := context.Background()
	rp := &oidcRP{results: make(chan rpResult, 1)}
	mux := http.NewServeMux()
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	rp.url = hs.URL
	if err := x.rps.AddOIDCClient(ctx, bankUUID, idserver.OIDCClient{ID: oidcClientID, RedirectURIs: []string{hs.URL + "/callback"}}); err != nil {
		t.Fatalf("AddOIDCClient: %v", err)
	}
	var err error
	if rp.provider, err = oidc.NewProvider(ctx, issuer); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	rp.oauth = oauth2.Config{
		ClientID: oidcClientID, ClientSecret: bankUUID, Endpoint: rp.provider.Endpoint(),
		RedirectURL: hs.URL + "/callback",
		Scopes:      []string{oidc.ScopeOpenID, "profile", "phone", idserver.ScopeNationalID},
	}
	rp.verifier = rp.provider.Verifier(&oidc.Config{ClientID: oidcClientID, SupportedSigningAlgs: []string{oidc.ES256}})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		res := rp.callback(r)
		rp.results <- res
		if res.err != nil {
			http.Error(w, res.err.Error(), http.StatusBadRequest)
			return
		}
		io.WriteString(w, "logged in")
	})
	return rp
}

// authURL starts a login: a fresh state, nonce and PKCE verifier.
func (rp *oidcRP) authURL(opts ...oauth2.AuthCodeOption) string {
	rp.verify, rp.state, rp.nonce = oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	opts = append(opts, oauth2.S256ChallengeOption(rp.verify), oidc.Nonce(rp.nonce))
	return rp.oauth.AuthCodeURL(rp.state, opts...)
}

// callback exchanges the code with the PKCE verifier and verifies the ID
// token.
func (rp *oidcRP) callback(r *http.Request) rpResult {
	ctx := r.Context()
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return rpResult{err: fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))}
	}
	if q.Get("state") != rp.state {
		return rpResult{err: fmt.Errorf("state = %q, want %q", q.Get("state"), rp.state)}
	}
	tok, err := rp.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(rp.verify))
	if err != nil {
		return rpResult{err: fmt.Errorf("exchange: %w", err)}
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		return rpResult{err: fmt.Errorf("verify ID token: %w", err)}
	}
	if idt.Nonce != rp.nonce {
		return rpResult{err: fmt.Errorf("nonce = %q, want %q", idt.Nonce, rp.nonce)}
	}
	var res rpResult
	if err := idt.Claims(&res.claims); err != nil {
		return rpResult{err: err}
	}
	ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		return rpResult{err: fmt.Errorf("userinfo: %w", err)}
	}
	if err := ui.Claims(&res.userinfo); err != nil {
		return rpResult{err: err}
	}
	return res
}

// browser is a user agent with cookies that does not run scripts: it
// polls the login status as the page's <noscript> link would.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func get(t *testing.T, c *http.Client, u string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	maps(req.Header, header)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func maps(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenID   = regexp.MustCompile(`name="authRequestID" value="([^"]+)"`)
	vcPattern  = regexp.MustCompile(`aria-label="verification code"><strong>([0-9]{4})</strong>`)
	statusLink = regexp.MustCompile(`hx-get="([^"]+)"`)
	phoneValue = regexp.MustCompile(`name="phone" type="tel"[^>]* value="([^"]*)"`)
)

func match(t *testing.T, re *regexp.Regexp, page string) string {
	t.Helper()
	m := re.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("page has no match for %s:\n%s", re, page)
	}
	return html.UnescapeString(m[1])
}

// login drives the login page from the authorization URL: it posts the
// phone number, checks the code, and polls until the redirect to the RP.
// It returns the last response and the verification code shown.
func login(t *testing.T, c *http.Client, issuer, authURL, phone string) (*http.Response, string, string) {
	t.Helper()
	resp, page := get(t, c, authURL, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), issuer+"/login/") {
		t.Fatalf("authorize led to %s %d:\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	action, id := match(t, formAction, page), match(t, hiddenID, page)
	resp, err := c.PostForm(issuer+action, url.Values{"authRequestID": {id}, "phone": {phone}})
	if err != nil {
		t.Fatalf("POST login: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page = string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST login = %d:\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, "/static/htmx.min.js") {
		t.Errorf("waiting page does not load the embedded htmx")
	}
	vc := match(t, vcPattern, page)
	status := issuer + match(t, statusLink, page)
	// The page polls with htmx: while the phone is asked it gets the
	// fragment again, and at the end an HX-Redirect.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("login still waiting after 30 s:\n%s", page)
		}
		resp, page = get(t, c, status, http.Header{"HX-Request": {"true"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d:\n%s", resp.StatusCode, page)
		}
		if next := resp.Header.Get("HX-Redirect"); next != "" {
			resp, page = get(t, c, next, nil)
			return resp, vc, page
		}
		if !strings.Contains(page, `id="wait"`) {
			t.Fatalf("status fragment:\n%s", page)
		}
		if strings.Contains(page, `class="error"`) {
			return resp, vc, page
		}
	}
}

// TestOIDC logs a user in to an RP with OpenID Connect: the authorization
// code flow with PKCE, the login page asking the phone, and the ID token
// and userinfo verified by go-oidc.
func TestOIDC(t *testing.T) {
	x := newIDServer(t)
	o, issuer := newOIDC(t, x)
	rp := newOIDCRP(t, x, issuer)
	p := &personClaims{Country: "EE", NationalID: idNationalID}

	t.Run("discovery", func(t *testing.T) {
		var d struct {
			Issuer     string   `json:"issuer"`
			Algs       []string `json:"id_token_signing_alg_values_supported"`
			PKCE       []string `json:"code_challenge_methods_supported"`
			JWKSURI    string   `json:"jwks_uri"`
			Userinfo   string   `json:"userinfo_endpoint"`
			Types      []string `json:"response_types_supported"`
			ScopesSupp []string `json:"scopes_supported"`
		}
		resp, body := get(t, http.DefaultClient, issuer+"/.well-known/openid-configuration", nil)
		if err := json.Unmarshal([]byte(body), &d); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("discovery = %d %q: %v", resp.StatusCode, body, err)
		}
		if d.Issuer != issuer || !slices.Equal(d.Algs, []string{"ES256"}) || !slices.Contains(d.PKCE, "S256") ||
			!slices.Contains(d.ScopesSupp, idserver.ScopeNationalID) || d.Userinfo == "" {
			t.Errorf("discovery = %+v", d)
		}
	})

	t.Run("code flow", func(t *testing.T) {
		x.phone.SetBehaviour(handset.ThinkTime(300 * time.Millisecond))
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		screens := x.watchScreen(t)
		resp, vc, page := login(t, browser(t), issuer, rp.authURL(oauth2.SetAuthURLParam("login_hint", x.msisdn)), x.msisdn)
		texts := screens()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.String(), rp.url+"/callback") {
			t.Fatalf("login ended at %s %d:\n%s", resp.Request.URL, resp.StatusCode, page)
		}
		res := <-rp.results
		if res.err != nil {
			t.Fatalf("RP callback: %v", res.err)
		}
		if want := "Demo Bank: Log in\nVerification code: " + vc; !strings.Contains(texts, want) {
			t.Errorf("phone screens %q, want %q", texts, want)
		}
		sub := p.subject()
		want := map[string]any{
			"sub": sub, "name": "Mari-Liis Männik", "given_name": "Mari-Liis", "family_name": "Männik",
			"phone_number": x.msisdn, "phone_number_verified": true,
			idserver.ClaimNationalID: idNationalID, idserver.ClaimNationalIDCountry: "EE",
			"amr": []any{"mid"}, "acr": idserver.ACRMobileID, "iss": issuer, "aud": []any{oidcClientID},
		}
		got := map[string]any{}
		for k := range want {
			got[k] = res.claims[k]
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("ID token claims (-want +got):\n%s", diff)
		}
		for _, k := range []string{"amr", "acr", "iss", "aud"} {
			delete(want, k)
		}
		got = map[string]any{}
		for k := range want {
			got[k] = res.userinfo[k]
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("userinfo (-want +got):\n%s", diff)
		}
	})

	t.Run("subject is stable", func(t *testing.T) {
		_, _, _ = login(t, browser(t), issuer, rp.authURL(), x.msisdn)
		res := <-rp.results
		if res.err != nil {
			t.Fatalf("RP callback: %v", res.err)
		}
		if got, want := res.claims["sub"], p.subject(); got != want {
			t.Errorf("sub of the second login = %v, want %v", got, want)
		}
	})

	t.Run("code used once", func(t *testing.T) {
		c := browser(t)
		c.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
			if strings.HasPrefix(r.URL.String(), rp.url) {
				return http.ErrUseLastResponse
			}
			return nil
		}
		resp, _, page := login(t, c, issuer, rp.authURL(), x.msisdn)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" || loc.Query().Get("state") != rp.state {
			t.Fatalf("login = %d to %q, want a redirect with the code and state:\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
		}
		code := loc.Query().Get("code")
		ctx := context.Background()
		tok, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(rp.verify))
		if err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		if got := introspect(t, issuer, tok.AccessToken); got["active"] != true || got["sub"] != p.subject() || got["client_id"] != oidcClientID {
			t.Errorf("introspection = %v, want active for %s", got, p.subject())
		}
		form := url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}
		req, _ := http.NewRequest(http.MethodPost, issuer+"/revoke", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(oidcClientID, bankUUID)
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke = %v, %v", resp, err)
		}
		if got := introspect(t, issuer, tok.AccessToken); got["active"] == true {
			t.Errorf("introspection after revocation = %v, want inactive", got)
		}
		if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Errorf("userinfo with a revoked token succeeded")
		}
		if _, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(rp.verify)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Errorf("second exchange of the code: %v, want invalid_grant", err)
		}
		wrong := rp.oauth
		wrong.ClientSecret = shopUUID
		resp2, _, _ := login(t, c, issuer, rp.authURL(), x.msisdn)
		loc, _ = url.Parse(resp2.Header.Get("Location"))
		if _, err := wrong.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(rp.verify)); err == nil {
			t.Errorf("exchange with another RP's UUID as the secret succeeded")
		}
	})

	t.Run("login hint", func(t *testing.T) {
		resp, page := get(t, browser(t), rp.authURL(oauth2.SetAuthURLParam("login_hint", x.msisdn)), nil)
		if resp.StatusCode != http.StatusOK || match(t, phoneValue, page) != x.msisdn {
			t.Errorf("login page with login_hint = %d, want the number filled in:\n%s", resp.StatusCode, page)
		}
	})

	t.Run("PKCE required", func(t *testing.T) {
		c := browser(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		rp.state = "s1"
		u := rp.oauth.AuthCodeURL(rp.state)
		resp, _ := get(t, c, u, nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != "invalid_request" ||
			!strings.HasPrefix(loc.String(), rp.url+"/callback") {
			t.Errorf("authorize without PKCE = %d %s, want a redirect with invalid_request", resp.StatusCode, loc)
		}
	})

	t.Run("prompt none", func(t *testing.T) {
		c := browser(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, _ := get(t, c, rp.authURL(oauth2.SetAuthURLParam("prompt", "none")), nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("error") != "login_required" ||
			loc.Query().Get("state") != rp.state || !strings.HasPrefix(loc.String(), rp.url+"/callback") {
			t.Errorf("authorize with prompt=none = %d %s, want a redirect with login_required", resp.StatusCode, loc)
		}
	})

	t.Run("wrong PKCE verifier", func(t *testing.T) {
		c := browser(t)
		authURL := rp.authURL()
		rp.verify = oauth2.GenerateVerifier()
		_, _, _ = login(t, c, issuer, authURL, x.msisdn)
		if res := <-rp.results; res.err == nil || !strings.Contains(res.err.Error(), "invalid_grant") {
			t.Errorf("exchange with another verifier: %v, want invalid_grant", res.err)
		}
	})

	t.Run("user cancels", func(t *testing.T) {
		x.phone.SetBehaviour(handset.Behaviour{Action: handset.Cancel})
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		resp, _, page := login(t, browser(t), issuer, rp.authURL(), x.msisdn)
		if resp.StatusCode != http.StatusOK || !strings.Contains(page, "cancelled on the phone") {
			t.Errorf("cancelled login = %d:\n%s", resp.StatusCode, page)
		}
	})

	t.Run("unknown number", func(t *testing.T) {
		c := browser(t)
		_, page := get(t, c, rp.authURL(), nil)
		resp, err := c.PostForm(issuer+match(t, formAction, page), url.Values{"authRequestID": {match(t, hiddenID, page)}, "phone": {"+37299999999"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), "no active Mobile ID") {
			t.Errorf("login with an unknown number:\n%s", b)
		}
	})

	t.Run("status from another browser", func(t *testing.T) {
		c := browser(t)
		_, page := get(t, c, rp.authURL(), nil)
		id := match(t, hiddenID, page)
		if _, err := c.PostForm(issuer+match(t, formAction, page), url.Values{"authRequestID": {id}, "phone": {x.msisdn}}); err != nil {
			t.Fatal(err)
		}
		resp, _ := get(t, browser(t), issuer+"/login/status?authRequestID="+url.QueryEscape(id), nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status without the login cookie = %d, want 400", resp.StatusCode)
		}
	})

	t.Run("error pages", func(t *testing.T) {
		for _, tt := range []struct{ path, want string }{
			{"/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fx.example%2Fcb&response_type=code&scope=openid", "client"},
			{"/login/?authRequestID=nothing", "has expired"},
			{"/login/status?authRequestID=nothing", "has expired"},
		} {
			resp, page := get(t, browser(t), issuer+tt.path, nil)
			if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(page, "<h1>Log in with Mobile ID</h1>") || !strings.Contains(page, tt.want) {
				t.Errorf("GET %s = %d %s, want an error page with %q:\n%s", tt.path, resp.StatusCode, resp.Header.Get("Content-Type"), tt.want, page)
			}
		}
	})

	t.Run("CIBA", func(t *testing.T) {
		ctx := context.Background()
		const client = "call-centre"
		if err := x.rps.AddOIDCClient(ctx, bankUUID, idserver.OIDCClient{ID: client, CIBA: true}); err != nil {
			t.Fatalf("AddOIDCClient: %v", err)
		}
		var d struct {
			Endpoint string `json:"backchannel_authentication_endpoint"`
		}
		if _, body := get(t, http.DefaultClient, issuer+"/.well-known/openid-configuration", nil); json.Unmarshal([]byte(body), &d) != nil || d.Endpoint != issuer+"/bc-authorize" {
			t.Fatalf("discovery names backchannel endpoint %q, want %s", d.Endpoint, issuer+"/bc-authorize")
		}
		x.idle(t)
		x.phone.SetBehaviour(handset.ThinkTime(300 * time.Millisecond))
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		screens := x.watchScreen(t)
		post := func(u string, form url.Values) (int, map[string]any) {
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(client, bankUUID)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", u, err)
			}
			defer resp.Body.Close()
			var out map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatalf("POST %s: %v", u, err)
			}
			return resp.StatusCode, out
		}
		status, out := post(d.Endpoint, url.Values{
			"scope": {"openid profile national_id"}, "login_hint": {x.msisdn}, "binding_message": {"Call 4711: log in"},
		})
		id, _ := out["auth_req_id"].(string)
		interval, _ := out["interval"].(float64)
		vc, _ := out["verification_code"].(string)
		if status != http.StatusOK || id == "" || interval < 1 {
			t.Fatalf("backchannel request = %d %v", status, out)
		}
		poll := url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {id}}
		for deadline := time.Now().Add(30 * time.Second); ; {
			time.Sleep(time.Duration(interval) * time.Second)
			status, out = post(rp.provider.Endpoint().TokenURL, poll)
			if out["error"] != "authorization_pending" || time.Now().After(deadline) {
				break
			}
		}
		raw, _ := out["id_token"].(string)
		if status != http.StatusOK || raw == "" || out["access_token"] == nil {
			t.Fatalf("token poll = %d %v, want tokens", status, out)
		}
		idt, err := rp.provider.Verifier(&oidc.Config{ClientID: client, SupportedSigningAlgs: []string{oidc.ES256}}).Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify ID token: %v", err)
		}
		var claims map[string]any
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"sub": p.subject(), "name": "Mari-Liis Männik", idserver.ClaimNationalID: idNationalID,
			"amr": []any{"mid"}, "acr": idserver.ACRMobileID, "aud": []any{client},
		}
		got := map[string]any{}
		for k := range want {
			got[k] = claims[k]
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("ID token claims (-want +got):\n%s", diff)
		}
		if texts, want := screens(), "Demo Bank: Call 4711: log in\nVerification code: "+vc; !strings.Contains(texts, want) {
			t.Errorf("phone screens %q, want %q", texts, want)
		}
		if status, out := post(rp.provider.Endpoint().TokenURL, poll); status != http.StatusBadRequest || out["error"] != "invalid_grant" {
			t.Errorf("second token poll = %d %v, want invalid_grant", status, out)
		}
	})

	t.Run("key rotation", func(t *testing.T) {
		before := jwks(t, issuer)
		if err := o.RotateKey(context.Background()); err != nil {
			t.Fatal(err)
		}
		after := jwks(t, issuer)
		if len(before) != 1 || len(after) != 2 || after[1] != before[0] {
			t.Errorf("JWKS key IDs %v after rotation from %v, want the new and the previous", after, before)
		}
	})
}

// introspect asks the provider about an access token as the RP.
func introspect(t *testing.T, issuer, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, issuer+"/oauth/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(oidcClientID, bankUUID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("introspect: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect = %d: %v", resp.StatusCode, err)
	}
	return out
}

// jwks returns the key IDs of the provider's JWKS.
func jwks(t *testing.T, issuer string) []string {
	t.Helper()
	_, body := get(t, http.DefaultClient, issuer+"/keys", nil)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
			Crv string `json:"crv"`
		} `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatalf("JWKS %q: %v", body, err)
	}
	var ids []string
	for _, k := range set.Keys {
		if k.Alg != "ES256" || k.Crv != "P-256" {
			t.Errorf("JWKS key %s is %s on %s, want ES256 on P-256", k.Kid, k.Alg, k.Crv)
		}
		ids = append(ids, k.Kid)
	}
	return ids
}

// personClaims computes the expected sub as the provider documents it.
type personClaims struct{ Country, NationalID string }

func (p *personClaims) subject() string {
	m := hmacSHA256([]byte("subject key of the oidc end-to-end test"), []byte(p.Country+":"+p.NationalID))
	return base64.RawURLEncoding.EncodeToString(m)
}

func hmacSHA256(key, msg []byte) []byte {
	// HMAC per RFC 2104, spelled out so that the test does not share
	// code with the provider.
	const block = 64
	if len(key) > block {
		k := sha256.Sum256(key)
		key = k[:]
	}
	k := make([]byte, block)
	copy(k, key)
	ipad, opad := make([]byte, block), make([]byte, block)
	for i := range k {
		ipad[i], opad[i] = k[i]^0x36, k[i]^0x5c
	}
	inner := sha256.Sum256(append(ipad, msg...))
	outer := sha256.Sum256(append(opad, inner[:]...))
	return outer[:]
}
