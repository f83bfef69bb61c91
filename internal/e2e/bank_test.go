package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mobileid/internal/bank"
	"mobileid/internal/handset"
	"mobileid/internal/idserver"
	"mobileid/internal/store"
)

var (
	bankLoginLink = regexp.MustCompile(`<a class="button login" href="([^"]+)">Log in with Mobile ID</a>`)
	bankVC        = regexp.MustCompile(`aria-label="verification code"><strong>([0-9]{4})</strong>`)
	bankStatus    = regexp.MustCompile(`<div id="wait" hx-get="([^"]+)"`)
	bankBalance   = regexp.MustCompile(`<dd class="amount" id="balance">([^<]+)</dd>`)
)

// newBank starts the demo bank as an RP of the ID Server, on a database
// of its own, and returns its URL.
func newBank(t *testing.T, x *idServer, issuer string) string {
	t.Helper()
	ctx := context.Background()
	var h http.Handler = http.NotFoundHandler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	if err := x.rps.AddOIDCClient(ctx, bankUUID, idserver.OIDCClient{ID: "demo-bank", RedirectURIs: []string{hs.URL + "/callback"}}); err != nil {
		t.Fatalf("AddOIDCClient: %v", err)
	}
	db, err := store.Open(ctx, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "bank.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b, err := bank.New(bank.Config{
		PublicURL: hs.URL, Issuer: issuer, ClientID: "demo-bank", ClientSecret: bankUUID,
		MIDURL: issuer + "/mid-api", RPName: "Demo Bank", RPUUID: bankUUID,
		Roots: pool(x.p.keys.Root), Intermediates: pool(x.p.keys.Issuing),
	}, db, slog.New(slog.DiscardHandler), x.clock.now)
	if err != nil {
		t.Fatalf("bank.New: %v", err)
	}
	h = b.Handler()
	return hs.URL
}

// bankPay fills in the payment form, checks that the phone showed the
// display text with the waiting page's code, and polls as the page does until the
// result page, which it returns.
func bankPay(t *testing.T, x *idServer, c *http.Client, bankURL string, form url.Values, display string) string {
	t.Helper()
	screens := x.watchScreen(t)
	resp, err := c.PostForm(bankURL+"/pay", form)
	if err != nil {
		t.Fatalf("POST /pay: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/payments/") {
		t.Fatalf("POST /pay led to %s %d:\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	if !strings.Contains(page, "/static/htmx.min.js") {
		t.Errorf("waiting page does not load the embedded htmx")
	}
	vc := match(t, bankVC, page)
	status := bankURL + match(t, bankStatus, page)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatalf("payment still waiting after 30 s:\n%s", page)
		}
		resp, page = get(t, c, status, http.Header{"HX-Request": {"true"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d:\n%s", resp.StatusCode, page)
		}
		if next := resp.Header.Get("HX-Redirect"); next != "" {
			_, page = get(t, c, bankURL+next, nil)
			break
		}
		if !strings.Contains(page, `id="wait"`) {
			t.Fatalf("status fragment:\n%s", page)
		}
	}
	want := "Demo Bank: " + display + "\nVerification code: " + vc
	if texts := screens(); !strings.Contains(texts, want) {
		t.Errorf("phone screens %q, want %q", texts, want)
	}
	if !strings.Contains(page, vc) {
		t.Errorf("result page does not show the verification code %s:\n%s", vc, page)
	}
	return page
}

// TestBank is the demo bank on the real stack: a customer logs in with
// Mobile ID over OpenID Connect, signs a payment over the MID REST API,
// and cancels another on the phone.
func TestBank(t *testing.T) {
	x := newIDServer(t)
	_, issuer := newOIDC(t, x)
	bankURL := newBank(t, x, issuer)
	c := browser(t)

	resp, page := get(t, c, bankURL+"/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("landing page = %d:\n%s", resp.StatusCode, page)
	}
	loginURL := bankURL + match(t, bankLoginLink, page)
	resp, _, page = login(t, c, issuer, loginURL, x.msisdn)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != bankURL+"/account" || !strings.Contains(page, "Mari-Liis Männik") {
		t.Fatalf("login ended at %s %d:\n%s", resp.Request.URL, resp.StatusCode, page)
	}
	if got := match(t, bankBalance, page); got != "2,500.00 EUR" {
		t.Errorf("opening balance = %q, want 2,500.00 EUR", got)
	}

	t.Run("payment", func(t *testing.T) {
		x.idle(t)
		// Time to read the screen.
		x.phone.SetBehaviour(handset.ThinkTime(300 * time.Millisecond))
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		page := bankPay(t, x, c, bankURL, url.Values{
			"payee": {"ACME"}, "iban": {"EE38 2200 2210 2014 5685"}, "amount": {"12.50"}, "reference": {"Invoice 7"},
		}, "Pay 12.50 EUR to ACME")
		for _, want := range []string{"Payment made", "signature verified", "Mari-Liis Männik", "serialNumber=PNOEE-" + idNationalID, "12.50 EUR"} {
			if !strings.Contains(page, want) {
				t.Errorf("result page lacks %q:\n%s", want, page)
			}
		}
		_, page = get(t, c, bankURL+"/account", nil)
		if got := match(t, bankBalance, page); got != "2,487.50 EUR" {
			t.Errorf("balance after paying 12.50 = %q, want 2,487.50 EUR", got)
		}
	})

	t.Run("cancelled on the phone", func(t *testing.T) {
		x.idle(t)
		x.phone.SetBehaviour(handset.Behaviour{Action: handset.Cancel, Think: 300 * time.Millisecond})
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		page := bankPay(t, x, c, bankURL, url.Values{
			"payee": {"Šveits Õun OÜ"}, "iban": {"EE382200221020145685"}, "amount": {"100"},
		}, "Pay 100.00 EUR to Sveits Oun OÜ")
		if !strings.Contains(page, "Payment not made") || !strings.Contains(page, "You cancelled the payment on your phone. Nothing was paid.") {
			t.Errorf("result page of a cancelled payment:\n%s", page)
		}
		_, page = get(t, c, bankURL+"/account", nil)
		if got := match(t, bankBalance, page); got != "2,487.50 EUR" {
			t.Errorf("balance after a cancelled payment = %q, want 2,487.50 EUR", got)
		}
		if !strings.Contains(page, `<span class="badge failed">failed</span>`) || !strings.Contains(page, `<span class="badge booked">booked</span>`) {
			t.Errorf("account page does not list both payments:\n%s", page)
		}
	})

	t.Run("forged callback", func(t *testing.T) {
		c := browser(t)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		// start begins a login and returns its state.
		start := func() string {
			resp, _ := get(t, c, loginURL, nil)
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc.String(), issuer+"/authorize?") ||
				loc.Query().Get("code_challenge_method") != "S256" || loc.Query().Get("nonce") == "" || loc.Query().Get("state") == "" {
				t.Fatalf("GET /login = %d to %q, want a redirect to the provider with PKCE, nonce and state", resp.StatusCode, loc)
			}
			return loc.Query().Get("state")
		}
		start()
		state := start()
		for _, tt := range []struct {
			query  string
			status int
		}{
			{"state=forged&code=x", http.StatusBadRequest},                         // another state: the login is used up
			{"state=" + url.QueryEscape(state) + "&code=x", http.StatusBadRequest}, // so its state is no good either
		} {
			if resp, page := get(t, c, bankURL+"/callback?"+tt.query, nil); resp.StatusCode != tt.status {
				t.Errorf("GET /callback?%s = %d, want %d:\n%s", tt.query, resp.StatusCode, tt.status, page)
			}
		}
		state = start()
		if resp, page := get(t, c, bankURL+"/callback?state="+url.QueryEscape(state)+"&code=forged", nil); resp.StatusCode != http.StatusBadGateway {
			t.Errorf("GET /callback with a forged code = %d, want 502:\n%s", resp.StatusCode, page)
		}
		if resp, _ := get(t, c, bankURL+"/account", nil); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("account after forged callbacks = %d, want 303 to the landing page", resp.StatusCode)
		}
	})

	t.Run("log out", func(t *testing.T) {
		resp, err := c.PostForm(bankURL+"/logout", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		resp, page := get(t, c, bankURL+"/account", nil)
		if resp.Request.URL.String() != bankURL+"/" || !strings.Contains(page, "Log in with Mobile ID") {
			t.Errorf("account after logout led to %s:\n%s", resp.Request.URL, page)
		}
	})
}
