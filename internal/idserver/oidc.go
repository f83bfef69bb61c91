// This file is the ID Server's OpenID Connect provider: relying parties
// that speak OpenID Connect rather than the MID REST API send their users
// here to log in with their Mobile ID (authorization code flow with PKCE).

package idserver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"mobileid/internal/store"
	"mobileid/internal/webassets"
)

//go:embed oidc_migrations
var oidcMigrationsFS embed.FS

//go:embed web
var webFS embed.FS

// Claims the provider issues besides the standard ones.
const (
	// ClaimNationalID is the person's national identity number, as on
	// their certificate's serialNumber without the "PNOxx-" prefix.
	ClaimNationalID = "national_id"
	// ClaimNationalIDCountry is the ISO 3166-1 alpha-2 country that
	// issued the national identity number.
	ClaimNationalIDCountry = "national_id_country"
	// ScopeNationalID asks for ClaimNationalID and ClaimNationalIDCountry.
	ScopeNationalID = "national_id"
	// AMRMobileID is the amr value of a Mobile ID authentication.
	AMRMobileID = "mid"
	// ACRMobileID is the acr of every ID token: the signature profile
	// the MSSP was asked for, a level of assurance of "high" with a key
	// on the SIM.
	ACRMobileID = ProfileAuthentication
)

// Lifetimes of the provider's artefacts.
const (
	// authRequestLifetime bounds the time from the authorization request
	// to the code exchange: the Mobile ID session (SessionLifetime) and
	// a little for the redirects.
	authRequestLifetime = SessionLifetime + time.Minute
	accessTokenLifetime = 5 * time.Minute
	idTokenLifetime     = 5 * time.Minute
)

// OIDCConfig configures the OpenID Connect provider.
type OIDCConfig struct {
	// Issuer is the issuer URL, e.g. https://id.example.com. It must be
	// https unless Insecure is set.
	Issuer string
	// Insecure allows an http Issuer, for tests and local development.
	Insecure bool
	// KeyEncryptionKey is the AES-256 key the signing keys are sealed
	// with in the database. It must be the same on every node, and
	// losing it only means new signing keys: relying parties fetch the
	// JWKS again.
	KeyEncryptionKey [32]byte
	// SubjectKey is the HMAC key of the subject identifiers, at least 32
	// bytes. A person's sub is the same for every relying party and
	// stays the same as long as this key does; changing it changes
	// every sub.
	SubjectKey []byte
}

// OIDC is the OpenID Connect provider of a Server. Create it with NewOIDC
// and serve Handler. Its state is in the database, so that any node can
// serve any step of a login.
type OIDC struct {
	s        *Server
	cfg      OIDCConfig
	keys     *keyStore
	provider *op.Provider
	tmpl     *template.Template
	prefix   string // the issuer's path, without a trailing /
}

// NewOIDC returns the OpenID Connect provider of s. It creates the first
// signing key if there is none.
func NewOIDC(ctx context.Context, s *Server, cfg OIDCConfig) (*OIDC, error) {
	u, err := url.Parse(cfg.Issuer)
	switch {
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("idserver: issuer %q is not an absolute URL without query", cfg.Issuer)
	case u.Scheme != "https" && !(cfg.Insecure && u.Scheme == "http"):
		return nil, fmt.Errorf("idserver: issuer %q is not https", cfg.Issuer)
	case len(cfg.SubjectKey) < 32:
		return nil, errors.New("idserver: the subject key must have at least 32 bytes")
	case cfg.KeyEncryptionKey == [32]byte{}:
		return nil, errors.New("idserver: no key encryption key")
	}
	cfg.Issuer = strings.TrimSuffix(cfg.Issuer, "/")
	if err := migrateOIDC(ctx, s.db); err != nil {
		return nil, err
	}
	ks, err := newKeyStore(s.db, cfg.KeyEncryptionKey, func() int64 { return s.now().UnixMicro() })
	if err != nil {
		return nil, fmt.Errorf("idserver: %w", err)
	}
	// Only an empty table gets a new key: a key that does not open
	// (another key encryption key) must stop the start, not be
	// replaced behind the relying parties' backs.
	_, err = ks.current(ctx)
	if errors.Is(err, errNoKey) {
		_, err = ks.rotate(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("idserver: %w", err)
	}
	tmpl, err := template.ParseFS(webFS, "web/*.html")
	if err != nil {
		return nil, fmt.Errorf("idserver: parse templates: %w", err)
	}
	o := &OIDC{
		s: s, cfg: cfg, keys: ks, tmpl: tmpl, prefix: strings.TrimSuffix(u.Path, "/"),
	}
	opCfg := &op.Config{
		CryptoKey:      derive(cfg.KeyEncryptionKey[:], "access token encryption"),
		CodeMethodS256: true,
		AuthMethodPost: true,
		SupportedScopes: []string{
			"openid", "profile", "phone", ScopeNationalID,
		},
		SupportedClaims: []string{
			"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "azp",
			"name", "given_name", "family_name", "phone_number", "phone_number_verified",
			ClaimNationalID, ClaimNationalIDCountry,
		},
	}
	var opts []op.Option
	if cfg.Insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	o.provider, err = op.NewProvider(opCfg, &oidcStorage{o}, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("idserver: create OpenID provider: %w", err)
	}
	return o, nil
}

// migrateOIDC creates or updates the provider's tables. They are a
// component of their own, so that they can be added to a database the
// ID Server already uses.
func migrateOIDC(ctx context.Context, db *store.DB) error {
	sub, err := fs.Sub(oidcMigrationsFS, "oidc_migrations")
	if err != nil {
		return fmt.Errorf("idserver: %w", err)
	}
	if err := db.Migrate(ctx, component+"-oidc", sub); err != nil {
		return fmt.Errorf("idserver: %w", err)
	}
	return nil
}

// derive returns a 32-byte key for purpose from key.
func derive(key []byte, purpose string) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("mobileid idserver " + purpose))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// Handler returns the provider's endpoints: discovery, /keys, /authorize,
// /oauth/token, /userinfo, /revoke, /end_session, the login pages under
// /login/ and the CIBA endpoint /bc-authorize. Their paths are those below the issuer's: for an issuer
// with a path, mount the handler with http.StripPrefix of that path.
func (o *OIDC) Handler() http.Handler {
	mux := http.NewServeMux()
	login := http.NewServeMux()
	login.HandleFunc("GET /login/{$}", o.serveLogin)
	login.HandleFunc("POST /login/{$}", o.serveLoginStart)
	login.HandleFunc("GET /login/status", o.serveLoginStatus)
	login.HandleFunc("GET /login/login.css", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, webFS, "web/login.css")
	})
	login.HandleFunc("/login/", func(w http.ResponseWriter, r *http.Request) {
		o.errorPage(w, http.StatusNotFound, "This page does not exist.")
	})
	mux.Handle("/login/", op.NewIssuerInterceptor(o.provider.IssuerFromRequest).Handler(
		http.NewCrossOriginProtection().Handler(login)))
	mux.Handle("/static/", http.StripPrefix("/static", webassets.Handler()))
	issuer := op.NewIssuerInterceptor(o.provider.IssuerFromRequest).Handler
	mux.Handle("POST "+cibaEndpoint, issuer(http.HandlerFunc(o.serveBackchannel)))
	mux.Handle("/oauth/token", issuer(o.tokenEndpoint(o.provider)))
	mux.Handle("/.well-known/openid-configuration", o.discovery(o.provider))
	// The endpoints a browser visits answer errors with a page.
	mux.Handle("/authorize", o.htmlErrors(o.provider))
	mux.Handle("/authorize/", o.htmlErrors(o.provider))
	mux.Handle("/", o.provider)
	return mux
}

// htmlErrors turns the plain text errors of h into error pages.
func (o *OIDC) htmlErrors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &errorCapture{ResponseWriter: w}
		h.ServeHTTP(c, r)
		if c.status != 0 {
			msg := strings.TrimSpace(c.buf.String())
			if msg == "" {
				msg = http.StatusText(c.status)
			}
			o.errorPage(w, c.status, "The login request is not valid: "+msg)
		}
	})
}

// errorCapture holds back a plain text error response.
type errorCapture struct {
	http.ResponseWriter
	status int // of the error held back; 0 for other answers
	buf    bytes.Buffer
}

func (c *errorCapture) WriteHeader(code int) {
	if code >= 400 && strings.HasPrefix(c.Header().Get("Content-Type"), "text/plain") {
		c.status = code
		return
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *errorCapture) Write(b []byte) (int, error) {
	if c.status != 0 {
		return c.buf.Write(b)
	}
	return c.ResponseWriter.Write(b)
}

// RotateOIDCSigningKey makes a new ID token signing key in db, sealed
// under kek, and returns its key ID. Every node signs with it from its
// next token on; the previous key stays in the JWKS. It refuses to add a
// key when the current one does not open under kek, which would leave the
// nodes with a key they cannot use.
func RotateOIDCSigningKey(ctx context.Context, db *store.DB, kek [32]byte) (string, error) {
	if err := migrateOIDC(ctx, db); err != nil {
		return "", err
	}
	ks, err := newKeyStore(db, kek, func() int64 { return time.Now().UnixMicro() })
	if err != nil {
		return "", fmt.Errorf("idserver: %w", err)
	}
	if _, err := ks.current(ctx); err != nil && !errors.Is(err, errNoKey) {
		return "", fmt.Errorf("idserver: rotate signing key: %w", err)
	}
	k, err := ks.rotate(ctx)
	if err != nil {
		return "", fmt.Errorf("idserver: rotate signing key: %w", err)
	}
	return k.id, nil
}

// RotateKey makes a new signing key the one ID tokens are signed with.
// The previous one stays in the JWKS.
func (o *OIDC) RotateKey(ctx context.Context) error {
	if _, err := o.keys.rotate(ctx); err != nil {
		return fmt.Errorf("idserver: rotate signing key: %w", err)
	}
	return nil
}

// subject returns the sub of a person: the base64url HMAC-SHA-256 of
// their country and national ID under the subject key.
func (o *OIDC) subject(p *Person) string {
	m := hmac.New(sha256.New, o.cfg.SubjectKey)
	m.Write([]byte(p.Country + ":" + p.NationalID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ErrUnknownClient means no OpenID Connect client has that ID.
var ErrUnknownClient = errors.New("idserver: unknown OpenID Connect client")

// OIDCClient is a registered OpenID Connect client. Every client is a
// relying party of the registry allowed the authentication service; its
// client secret is the RP's relyingPartyUUID, sent with
// client_secret_basic or client_secret_post.
type OIDCClient struct {
	// ID is the client_id, public.
	ID string
	// RedirectURIs are the exact redirect URIs allowed. A client that
	// only uses CIBA may have none.
	RedirectURIs []string
	// CIBA allows the client the CIBA grant in poll mode: it starts
	// logins at the backchannel authentication endpoint with the
	// person's phone number, for channels without a browser.
	CIBA bool

	rpKey string
}

// AddOIDCClient registers an OpenID Connect client for the RP whose
// relyingPartyUUID is rpUUID.
func (r *RPs) AddOIDCClient(ctx context.Context, rpUUID string, c OIDCClient) error {
	if err := migrateOIDC(ctx, r.db); err != nil {
		return err
	}
	rp, err := r.Get(ctx, rpUUID)
	if err != nil {
		return fmt.Errorf("idserver: add OpenID Connect client %q: %w", c.ID, err)
	}
	if !rp.Allows(ServiceAuthentication) {
		return fmt.Errorf("idserver: add OpenID Connect client %q: the relying party may not authenticate", c.ID)
	}
	if err := c.Check(); err != nil {
		return fmt.Errorf("idserver: add OpenID Connect client %q: %w", c.ID, err)
	}
	uris, _ := json.Marshal(c.RedirectURIs)
	if c.RedirectURIs == nil {
		uris = []byte("[]")
	}
	_, err = r.db.ExecContext(ctx, `INSERT INTO idserver_oidc_clients (client_id, rp_key, redirect_uris, ciba, created_at) VALUES ($1, $2, $3, $4, $5)`,
		c.ID, uuidKey(rpUUID), string(uris), boolInt(c.CIBA), r.now().UnixMicro())
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("idserver: add OpenID Connect client %q: the client ID is taken", c.ID)
	}
	if err != nil {
		return fmt.Errorf("idserver: add OpenID Connect client %q: %w", c.ID, err)
	}
	return nil
}

// Check reports whether the client's ID and redirect URIs are
// acceptable.
func (c *OIDCClient) Check() error {
	if c.ID == "" || len(c.ID) > 64 || strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return errors.New("the client ID must be 1 to 64 printable ASCII characters")
	}
	if len(c.RedirectURIs) == 0 && !c.CIBA {
		return errors.New("no redirect URI, and CIBA not allowed")
	}
	for _, r := range c.RedirectURIs {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
			return fmt.Errorf("redirect URI %q is not an absolute http(s) URL without fragment", r)
		}
	}
	return nil
}

// client returns a registered client with its RP, or ErrUnknownClient.
func (o *OIDC) client(ctx context.Context, id string) (*OIDCClient, *RP, error) {
	var c OIDCClient
	var uris string
	var ciba int64
	err := o.s.db.QueryRowContext(ctx, `SELECT client_id, rp_key, redirect_uris, ciba FROM idserver_oidc_clients WHERE client_id = $1`, id).
		Scan(&c.ID, &c.rpKey, &uris, &ciba)
	c.CIBA = ciba != 0
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrUnknownClient
	}
	if err != nil {
		return nil, nil, fmt.Errorf("idserver: look up OpenID Connect client: %w", err)
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return nil, nil, fmt.Errorf("idserver: redirect URIs of client %q: %w", id, err)
	}
	rp, err := o.s.rps.byKey(ctx, c.rpKey)
	if errors.Is(err, ErrUnknownRP) {
		return nil, nil, ErrUnknownClient
	}
	if err != nil {
		return nil, nil, err
	}
	return &c, rp, nil
}

// boolInt is the integer a flag is stored as, the same in SQLite and
// PostgreSQL.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// checkSecret reports whether secret is the relyingPartyUUID of the
// client's RP.
func (c *OIDCClient) checkSecret(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(uuidKey(secret)), []byte(c.rpKey)) == 1
}

// AddWithOIDCClient registers an RP and its OpenID Connect client
// together: when the client cannot be added (its ID is taken, its redirect
// URIs are bad) the RP is not left behind without it.
func (r *RPs) AddWithOIDCClient(ctx context.Context, c RPConfig, client OIDCClient) error {
	if err := client.Check(); err != nil {
		return fmt.Errorf("idserver: add OpenID Connect client %q: %w", client.ID, err)
	}
	if err := r.Add(ctx, c); err != nil {
		return err
	}
	if err := r.AddOIDCClient(ctx, c.UUID, client); err != nil {
		if _, derr := r.db.ExecContext(ctx, `DELETE FROM idserver_rps WHERE rp_key = $1`, uuidKey(c.UUID)); derr != nil {
			return errors.Join(err, fmt.Errorf("idserver: remove relying party %q again: %w", c.Name, derr))
		}
		return err
	}
	return nil
}
