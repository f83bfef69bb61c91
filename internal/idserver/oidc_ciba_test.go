package idserver

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type cibaTest struct {
	srv   *Server
	o     *OIDC
	mssp  *fakeMSSP
	clock *fakeClock
	url   string
}

const cibaClient = "call-centre"

func newCIBATest(t *testing.T, db *store.DB) *cibaTest {
	t.Helper()
	ctx := context.Background()
	x := &cibaTest{mssp: &fakeMSSP{}, clock: &fakeClock{t: time.Now()}}
	rps, err := NewRPs(db, x.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rps.Get(ctx, testUUID); err != nil {
		if err := rps.Add(ctx, RPConfig{UUID: testUUID, RP: RP{Name: "Test Bank",
			Services: []Service{ServiceAuthentication, ServiceSignature}}}); err != nil {
			t.Fatal(err)
		}
		if err := rps.AddOIDCClient(ctx, testUUID, OIDCClient{ID: cibaClient, CIBA: true}); err != nil {
			t.Fatal(err)
		}
		if err := rps.AddOIDCClient(ctx, testUUID, OIDCClient{ID: "web", RedirectURIs: []string{"https://bank.example/cb"}}); err != nil {
			t.Fatal(err)
		}
	}
	dir := fakeDirectory{"+37200000766": {Country: "EE", NationalID: "60001019906", GivenNames: "Mari", Surname: "Maasikas"}}
	x.srv, err = New(Config{APID: "http://id.example/ap", APPassword: "pw", Roots: x509.NewCertPool(), PollInterval: 10 * time.Millisecond},
		db, rps, dir, x.mssp, nil, x.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	x.o = newTestOIDC(t, x.srv)
	hs := httptest.NewServer(x.o.Handler())
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { x.srv.Run(runCtx) })
	t.Cleanup(func() { hs.Close(); cancel(); wg.Wait() })
	x.url = hs.URL
	return x
}

// post sends a form with the client's credentials (client_secret_basic
// when user is not empty) and returns the status and JSON answer.
func (x *cibaTest) post(t *testing.T, path, user, pass string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, x.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("POST %s: Cache-Control %q, want no-store", path, cc)
	}
	return resp.StatusCode, out
}

func (x *cibaTest) start(t *testing.T, form url.Values) (int, map[string]any) {
	t.Helper()
	return x.post(t, cibaEndpoint, cibaClient, testUUID, form)
}

func (x *cibaTest) poll(t *testing.T, id string) (int, map[string]any) {
	t.Helper()
	return x.post(t, "/oauth/token", cibaClient, testUUID, url.Values{"grant_type": {string(GrantTypeCIBA)}, "auth_req_id": {id}})
}

func cibaForm() url.Values {
	return url.Values{"scope": {"openid profile"}, "login_hint": {"+372 0000 0766"}, "binding_message": {"Call 4711: log in"}}
}

func (x *cibaTest) requests(t *testing.T, db *store.DB) int {
	return rows(t, db, `SELECT COUNT(*) FROM idserver_oidc_requests`)
}

// waitSession waits until the session behind the last MSSP request has
// ended.
func (x *cibaTest) waitSession(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if rows(t, x.srv.db, `SELECT COUNT(*) FROM idserver_sessions WHERE state = 'RUNNING'`) == 0 {
			return
		}
	}
	t.Fatal("session still running after 10 s")
}

func TestCIBARequests(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		x := newCIBATest(t, db)
		before := x.requests(t, db)
		cases := []struct {
			name       string
			user, pass string
			edit       func(url.Values)
			status     int
			code       string
		}{
			{"no credentials", "", "", nil, 401, "invalid_client"},
			{"wrong secret", cibaClient, "11111111-2222-4333-8444-555555555555", nil, 401, "invalid_client"},
			{"unknown client", "nobody", testUUID, nil, 401, "invalid_client"},
			{"client without CIBA", "web", testUUID, nil, 400, "unauthorized_client"},
			{"no openid scope", cibaClient, testUUID, func(f url.Values) { f.Set("scope", "profile") }, 400, "invalid_scope"},
			{"no login hint", cibaClient, testUUID, func(f url.Values) { f.Del("login_hint") }, 400, "invalid_request"},
			{"login hint token", cibaClient, testUUID, func(f url.Values) { f.Set("login_hint_token", "x") }, 400, "invalid_request"},
			{"hint not a number", cibaClient, testUUID, func(f url.Values) { f.Set("login_hint", "mari@example.com") }, 400, errUnknownUserID},
			{"unknown number", cibaClient, testUUID, func(f url.Values) { f.Set("login_hint", "+37299999999") }, 400, errUnknownUserID},
			{"empty binding message", cibaClient, testUUID, func(f url.Values) { f.Set("binding_message", "") }, 400, errInvalidBindingMessage},
			{"long binding message", cibaClient, testUUID, func(f url.Values) { f.Set("binding_message", strings.Repeat("a", 101)) }, 400, errInvalidBindingMessage},
			{"control characters", cibaClient, testUUID, func(f url.Values) { f.Set("binding_message", "a\x07b") }, 400, errInvalidBindingMessage},
			{"bad requested expiry", cibaClient, testUUID, func(f url.Values) { f.Set("requested_expiry", "-5") }, 400, "invalid_request"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f := cibaForm()
				if c.edit != nil {
					c.edit(f)
				}
				status, out := x.post(t, cibaEndpoint, c.user, c.pass, f)
				if status != c.status || out["error"] != c.code || out["error_description"] == "" {
					t.Errorf("POST %s = %d %v, want %d %s with a description", cibaEndpoint, status, out, c.status, c.code)
				}
			})
		}
		if got := x.requests(t, db); got != before {
			t.Errorf("%d requests stored after bad requests, want %d", got, before)
		}
		x.mssp.mu.Lock()
		defer x.mssp.mu.Unlock()
		if len(x.mssp.signs) != 0 {
			t.Errorf("the MSSP was asked %d times for bad requests", len(x.mssp.signs))
		}
	})
}

func TestCIBAPolling(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		x := newCIBATest(t, db)

		f := cibaForm()
		f.Set("ui_locales", "et-EE en")
		f.Set("binding_message", "Kõne 4711: logi sisse")
		status, out := x.start(t, f)
		id, _ := out["auth_req_id"].(string)
		if status != 200 || id == "" || out["expires_in"] != float64(300) || out["interval"] != float64(cibaInterval) {
			t.Fatalf("backchannel request = %d %v", status, out)
		}
		x.mssp.mu.Lock()
		req := x.mssp.signs[0]
		x.mssp.mu.Unlock()
		if got, want := req.DataToBeDisplayed.Value, "Test Bank: Kõne 4711: logi sisse"; got != want {
			t.Errorf("phone shows %q, want %q", got, want)
		}
		if got := req.MobileUser.MSISDN; got != "+37200000766" {
			t.Errorf("MSISDN = %q, want the normalised login_hint", got)
		}
		var lang string
		for _, s := range req.AdditionalServices {
			if s.Description.URI == etsi.ServiceUserLang {
				lang = s.UserLang
			}
		}
		if lang != "et" {
			t.Errorf("UserLang = %q, want et from ui_locales", lang)
		}
		if vc, _ := out["verification_code"].(string); len(vc) != 4 {
			t.Errorf("verification_code = %v, want 4 digits", out["verification_code"])
		}

		// Polling at once is too soon; the interval grows by 5 s.
		if status, out := x.poll(t, id); status != 400 || out["error"] != "slow_down" {
			t.Errorf("early poll = %d %v, want slow_down", status, out)
		}
		x.clock.advance(cibaInterval * time.Second)
		if status, out := x.poll(t, id); status != 400 || out["error"] != "slow_down" {
			t.Errorf("poll after the first interval but within the grown one = %d %v, want slow_down", status, out)
		}
		x.clock.advance((cibaInterval + 2*cibaSlowDown) * time.Second)
		if status, out := x.poll(t, id); status != 400 || out["error"] != "authorization_pending" {
			t.Errorf("poll after the interval = %d %v, want authorization_pending", status, out)
		}
		if status, out := x.post(t, "/oauth/token", "web", testUUID, url.Values{"grant_type": {string(GrantTypeCIBA)}, "auth_req_id": {id}}); status != 400 || out["error"] != "unauthorized_client" {
			t.Errorf("poll by a client without CIBA = %d %v, want unauthorized_client", status, out)
		}

		// The user cancels: access_denied once, then the request is gone.
		x.mssp.setFinal(func() (*etsi.MSSStatusResp, error) {
			return nil, &etsi.Fault{Code: etsi.CodeUserCancel, DetailCode: 4011}
		})
		x.waitSession(t)
		x.clock.advance(time.Minute)
		if status, out := x.poll(t, id); status != 403 || out["error"] != "access_denied" || !strings.Contains(out["error_description"].(string), ResultUserCancelled) {
			t.Errorf("poll after cancel = %d %v, want access_denied", status, out)
		}
		if status, out := x.poll(t, id); status != 400 || out["error"] != "invalid_grant" {
			t.Errorf("poll after the end = %d %v, want invalid_grant", status, out)
		}
		if status, out := x.poll(t, "not-an-id"); status != 400 || out["error"] != "invalid_grant" {
			t.Errorf("poll of an unknown request = %d %v, want invalid_grant", status, out)
		}

		// A request that expires while the phone asks.
		x.mssp.setFinal(nil)
		f = cibaForm()
		f.Set("requested_expiry", "30")
		status, out = x.start(t, f)
		id, _ = out["auth_req_id"].(string)
		if status != 200 || out["expires_in"] != float64(30) {
			t.Fatalf("backchannel request = %d %v, want expires_in 30", status, out)
		}
		x.clock.advance(31 * time.Second)
		if status, out := x.poll(t, id); status != 400 || out["error"] != "expired_token" {
			t.Errorf("poll after expiry = %d %v, want expired_token", status, out)
		}

		// A CIBA request is not a login page's.
		status, out = x.start(t, cibaForm())
		id, _ = out["auth_req_id"].(string)
		resp, err := http.Get(x.url + "/login/?authRequestID=" + url.QueryEscape(id))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if status != 200 || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("login page of a CIBA request = %d, want 400", resp.StatusCode)
		}
	})
}

func TestCIBADiscovery(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		x := newCIBATest(t, db)
		resp, err := http.Get(x.url + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d struct {
			Endpoint string   `json:"backchannel_authentication_endpoint"`
			Modes    []string `json:"backchannel_token_delivery_modes_supported"`
			UserCode *bool    `json:"backchannel_user_code_parameter_supported"`
			Grants   []string `json:"grant_types_supported"`
			Token    string   `json:"token_endpoint"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		if d.Endpoint != "https://id.example"+cibaEndpoint || len(d.Modes) != 1 || d.Modes[0] != "poll" ||
			d.UserCode == nil || *d.UserCode || !strings.Contains(strings.Join(d.Grants, " "), string(GrantTypeCIBA)) ||
			d.Token != "https://id.example/oauth/token" {
			t.Errorf("discovery = %+v", d)
		}
	})
}

func TestBindingMessage(t *testing.T) {
	for _, tt := range []struct {
		in, format string
		ok         bool
	}{
		{"Call 4711: log in", FormatGSM7, true},
		{"Kõne 4711", FormatUCS2, true},
		{"Привет", FormatUCS2, true},
		{strings.Repeat("a", 100), FormatGSM7, true},
		{strings.Repeat("a", 101), "", false},
		{strings.Repeat("ж", 51), "", false},
		{"", "", false},
		{"tab\there", "", false},
		{"emoji 😀", "", false},
	} {
		_, format, ok := bindingMessage(tt.in)
		if ok != tt.ok || format != tt.format {
			t.Errorf("bindingMessage(%q) = %s, %v, want %s, %v", tt.in, format, ok, tt.format, tt.ok)
		}
	}
}

func TestMIDLanguage(t *testing.T) {
	for in, want := range map[string]string{"": "ENG", "et": "EST", "fr-CA ru-RU": "RUS", "LT": "LIT", "de": "ENG"} {
		if got := midLanguage(in); got != want {
			t.Errorf("midLanguage(%q) = %s, want %s", in, got, want)
		}
	}
}
