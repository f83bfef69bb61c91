package bank

import (
	"bytes"
	"context"
	"crypto/x509"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"mobileid/internal/store"
	"mobileid/internal/webassets"
)

//go:embed migrations
var migrationsFS embed.FS

//go:embed web/templates/*.html web/static
var webFS embed.FS

// component names the bank's migrations and log lines.
const component = "bank"

const (
	// sessionCookie holds a logged-in customer's session token.
	sessionCookie = "bank_session"
	// loginCookie ties a login at the OpenID provider to the browser
	// that started it.
	loginCookie = "bank_login"
	// sessionIdle is how long a session lasts after its last use.
	sessionIdle = 30 * time.Minute
	// loginLife is how long a customer has to log in at the provider.
	loginLife = 10 * time.Minute
	// httpTimeout bounds each request to the ID Server; the long polls
	// have a shorter bound of their own.
	httpTimeout = 30 * time.Second
	// discoveryTimeout bounds the provider discovery on a login, so that
	// a customer is told soon when the ID Server is down.
	discoveryTimeout = 10 * time.Second
)

// Config is what the bank knows of itself and of the ID Server it uses.
type Config struct {
	// PublicURL is the bank's address as browsers reach it, e.g.
	// https://bank.example. The OpenID Connect redirect URI is PublicURL
	// + "/callback". With a path (https://example.com/bank), mount the
	// handler under that path with http.StripPrefix.
	PublicURL string
	// Issuer is the OpenID Connect issuer URL of the ID Server.
	Issuer string
	// ClientID and ClientSecret are the bank's OpenID Connect client
	// credentials; at the ID Server the secret is the relyingPartyUUID.
	ClientID     string
	ClientSecret string
	// MIDURL is the base URL of the MID REST API, e.g.
	// https://id.example/mid-api.
	MIDURL string
	// RPName and RPUUID are the bank's relyingPartyName and
	// relyingPartyUUID for the MID REST API.
	RPName string
	RPUUID string
	// Roots are the CA roots that signing certificates must chain to,
	// through Intermediates (optional: the issuing CAs, which the MID API
	// does not send).
	Roots         *x509.CertPool
	Intermediates *x509.CertPool
	// HTTPClient makes the requests to the ID Server; nil means a client
	// of the default transport with a 30 s time-out. Its time-out must be
	// longer than the 6.5 s of a session long poll.
	HTTPClient *http.Client
}

// Bank is the demo bank: a web site whose customers log in with Mobile
// ID over OpenID Connect and confirm payments with a Mobile ID signature
// over the MID REST API. It uses only the ID Server's public APIs.
type Bank struct {
	cfg    Config
	db     *store.DB
	log    *slog.Logger
	now    func() time.Time
	tmpl   *template.Template
	root   string // the path of PublicURL, ending in "/"
	secure bool   // cookies only over https
	http   *http.Client
	mid    *midClient

	// The provider is discovered on the first login that needs it, so
	// that the bank starts before the ID Server does.
	mu         sync.Mutex
	discovered *oidc.Provider
}

// New returns the bank on db, migrating its tables. It does not contact
// the ID Server: the OpenID provider is discovered at the first login.
func New(cfg Config, db *store.DB, logger *slog.Logger, now func() time.Time) (*Bank, error) {
	u, err := url.Parse(cfg.PublicURL)
	switch {
	case err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("bank: public URL %q must be an absolute http or https URL", cfg.PublicURL)
	case cfg.Issuer == "":
		return nil, errors.New("bank: no OpenID Connect issuer")
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		return nil, errors.New("bank: no OpenID Connect client ID or secret")
	case cfg.MIDURL == "":
		return nil, errors.New("bank: no MID REST API URL")
	case cfg.RPName == "" || cfg.RPUUID == "":
		return nil, errors.New("bank: no relying party name or UUID")
	case cfg.Roots == nil:
		return nil, errors.New("bank: no CA roots to verify signing certificates")
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: httpTimeout}
	}
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("bank: %w", err)
	}
	if err := db.Migrate(context.Background(), component, sub); err != nil {
		return nil, fmt.Errorf("bank: %w", err)
	}
	return &Bank{
		cfg: cfg, db: db, log: logger.With("component", component), now: now, tmpl: templates(),
		root: strings.TrimSuffix(u.Path, "/") + "/", secure: u.Scheme == "https", http: client,
		mid: &midClient{base: strings.TrimSuffix(cfg.MIDURL, "/"), uuid: cfg.RPUUID, name: cfg.RPName, http: client},
	}, nil
}

// Handler returns the bank's web site. State-changing requests are POSTs
// refused when they come from another origin (http.CrossOriginProtection);
// pages carry a Content-Security-Policy without inline scripts.
func (b *Bank) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(webFS, "web/static")
	mux.Handle("GET /static/bank.css", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.Handle("GET /static/", http.StripPrefix("/static", webassets.Handler()))
	mux.HandleFunc("GET /{$}", b.serveHome)
	mux.HandleFunc("GET /login", b.serveLogin)
	mux.HandleFunc("GET /callback", b.serveCallback)
	mux.HandleFunc("POST /logout", b.serveLogout)
	mux.Handle("GET /account", b.auth(b.serveAccount))
	mux.Handle("GET /pay", b.auth(b.servePayForm))
	mux.Handle("POST /pay", b.auth(b.servePay))
	mux.Handle("GET /payments/{id}", b.auth(b.servePayment))
	mux.Handle("GET /payments/{id}/status", b.auth(b.servePaymentStatus))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.errorPage(w, r, http.StatusNotFound, nil, "There is no such page.")
	})
	return http.NewCrossOriginProtection().Handler(securityHeaders(mux))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

// redirect sends the browser to target, a path below the bank's root,
// with 303 See Other so that a POST is followed by a GET. For htmx it
// is HX-Redirect, so that the whole page changes rather than a part.
func (b *Bank) redirect(w http.ResponseWriter, r *http.Request, target string) {
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", b.root+target)
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Header().Set("Location", b.root+target)
	w.WriteHeader(http.StatusSeeOther)
}

// setCookie sets or, with an empty value, deletes one of the bank's
// cookies: HttpOnly, SameSite=Lax (the OpenID provider's redirect back
// is a cross-site navigation that must carry the login cookie), Secure
// on https.
func (b *Bank) setCookie(w http.ResponseWriter, name, value string, life time.Duration) {
	c := &http.Cookie{
		Name: name, Value: value, Path: b.root, MaxAge: int(life / time.Second),
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode,
	}
	if value == "" {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

// current returns the customer of the request's session, or nil.
func (b *Bank) current(r *http.Request) (*customer, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	return b.sessionCustomer(r.Context(), c.Value)
}

// auth runs h for the customer of the session; everyone else, with no,
// a forged or an expired session, goes to the landing page.
func (b *Bank) auth(h func(http.ResponseWriter, *http.Request, *customer)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := b.current(r)
		if err != nil {
			b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
			return
		}
		if c == nil {
			if _, err := r.Cookie(sessionCookie); err == nil {
				b.setCookie(w, sessionCookie, "", 0)
			}
			b.redirect(w, r, "")
			return
		}
		h(w, r, c)
	})
}

// templates parses the embedded templates; they are part of the binary,
// so a failure is a bug that every test shows.
func templates() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"money": formatMoney,
		"iban":  formatIBAN,
		"mask":  maskID,
		"when":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	}).ParseFS(webFS, "web/templates/*.html"))
}

// page is what the templates draw; each page uses its part.
type page struct {
	Root     string
	Bank     string
	Title    string
	Customer *customer
	Error    string

	// Account.
	Payments []*paymentView

	// Payment form.
	Form   payForm
	Fields map[string]string

	// A payment.
	P *paymentView
}

// render draws a page, or answers 500 if the template fails; nothing is
// written before the page is complete.
func (b *Bank) render(w http.ResponseWriter, status int, name string, p *page) {
	p.Root, p.Bank = b.root, b.cfg.RPName
	var buf bytes.Buffer
	if err := b.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		b.log.Error("render page", "page", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Pages show personal data and balances: no cache keeps them.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Messages of the error pages.
const (
	msgInternal     = "Something went wrong on our side. Please try again in a moment."
	msgUnreachable  = "Mobile ID cannot be reached just now. Please try again in a moment."
	msgLoginExpired = "This login has expired or was already used. Please log in again."
	msgLoginFailed  = "The login was not completed."
)

// errorPage shows msg; err, if any, is logged and never shown.
func (b *Bank) errorPage(w http.ResponseWriter, r *http.Request, status int, err error, msg string) {
	if err != nil {
		b.log.Error("request failed", "path", r.URL.Path, "err", err)
	}
	c, _ := b.current(r)
	b.render(w, status, "error", &page{Title: "Error", Customer: c, Error: msg})
}

func (b *Bank) serveHome(w http.ResponseWriter, r *http.Request) {
	c, err := b.current(r)
	if err != nil {
		b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
		return
	}
	if c != nil {
		b.redirect(w, r, "account")
		return
	}
	b.render(w, http.StatusOK, "landing", &page{Title: "Welcome"})
}

func (b *Bank) serveLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		if err := b.logOut(r.Context(), c.Value); err != nil {
			b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
			return
		}
	}
	b.setCookie(w, sessionCookie, "", 0)
	b.redirect(w, r, "")
}

func (b *Bank) serveAccount(w http.ResponseWriter, r *http.Request, c *customer) {
	ps, err := b.payments(r.Context(), c.AccountID)
	if err != nil {
		b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
		return
	}
	p := &page{Title: "Account", Customer: c}
	for _, x := range ps {
		p.Payments = append(p.Payments, b.view(x))
	}
	b.render(w, http.StatusOK, "account", p)
}

// provider returns the OpenID provider, discovering it on first use. A
// failed discovery is not kept: the next login tries again.
func (b *Bank) provider(ctx context.Context) (*oidc.Provider, error) {
	b.mu.Lock()
	p := b.discovered
	b.mu.Unlock()
	if p != nil {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, b.http), b.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OpenID provider %s: %w", b.cfg.Issuer, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.discovered == nil {
		b.discovered = p
	}
	return b.discovered, nil
}

// oauth returns the OAuth 2.0 configuration of the bank's client.
func (b *Bank) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: b.cfg.ClientID, ClientSecret: b.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: b.cfg.PublicURL + "/callback",
		Scopes:      []string{oidc.ScopeOpenID, "profile", "phone", "national_id"},
	}
}

// field is an input of the payment form with what was typed in it and
// what is wrong with it.
type field struct{ Name, Label, Type, Hint, Value, Error string }

// Field returns the payment form's input name, for the "field" template.
func (p *page) Field(name, label, typ, hint string) field {
	v := map[string]string{"payee": p.Form.Payee, "iban": p.Form.IBAN, "amount": p.Form.Amount, "reference": p.Form.Reference}[name]
	return field{Name: name, Label: label, Type: typ, Hint: hint, Value: v, Error: p.Fields[name]}
}
