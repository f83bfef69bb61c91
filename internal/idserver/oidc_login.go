// This file is the OpenID provider's login page: it asks for the phone
// number, starts a Mobile ID authentication session for the client's
// relying party, shows the verification code while the phone asks for
// the PIN, and completes the authorization request when the session is
// OK.

package idserver

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/op"
)

// loginCookie holds the secret that ties a login to the browser that
// started it, so that whoever learns the authorization request ID cannot
// watch the login and take its code.
const loginCookie = "mobileid_login"

// loginDisplayText is what the phone shows after the RP's name.
const loginDisplayText = "Log in"

// loginPage is the data of the login templates.
type loginPage struct {
	Prefix, Static string
	ID             string
	Client         string // the RP's name
	Phone          string
	Error          string
	VC             string
	StatusURL      string
}

// Texts of the login pages.
const (
	msgExpired    = "This login has expired or does not exist. Go back to the service you came from and start again."
	msgBadPhone   = "Enter the phone number in international format, with + and the country code, e.g. +37200000766."
	msgNoMobileID = "This phone number has no active Mobile ID."
	msgBusy       = "The service is busy. Please try again in a moment."
	msgInternal   = "The login could not be completed because of an error of the service. Please try again later."
)

// resultMessages are the texts of the results of a failed login.
var resultMessages = map[string]string{
	ResultTimeout:               "The PIN was not entered in time.",
	ResultNotMIDClient:          msgNoMobileID,
	ResultUserCancelled:         "The login was cancelled on the phone.",
	ResultSignatureHashMismatch: "The phone's answer could not be verified. Is the SIM card the one of your Mobile ID?",
	ResultPhoneAbsent:           "The phone could not be reached. Check that it is switched on and has a signal.",
	ResultDeliveryError:         "The request could not be delivered to the phone.",
	ResultSIMError:              "The SIM card reported an error.",
	ResultInternalError:         msgInternal,
}

func (o *OIDC) page(id string) *loginPage {
	return &loginPage{Prefix: o.prefix, Static: o.prefix + "/static", ID: id}
}

// render writes a template, buffered, so that a failing template becomes
// an error page rather than half a page.
func (o *OIDC) render(w http.ResponseWriter, status int, name string, p *loginPage) {
	var b bytes.Buffer
	if err := o.tmpl.ExecuteTemplate(&b, name, p); err != nil {
		o.s.log.Error("render login page", "template", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

func (o *OIDC) errorPage(w http.ResponseWriter, status int, msg string) {
	p := o.page("")
	p.Error = msg
	o.render(w, status, "errorpage", p)
}

// clientRP returns the RP of an auth request's client.
func (o *OIDC) clientRP(r *http.Request, a *authRequest) (*RP, error) {
	_, rp, err := o.client(r.Context(), a.ClientID)
	return rp, err
}

// loadRequest returns the live authorization request id, or nil after
// answering with an error page.
func (o *OIDC) loadRequest(w http.ResponseWriter, r *http.Request, id string) *authRequest {
	a, err := o.request(r.Context(), id)
	if err != nil {
		o.s.log.Error("login: read authorization request", "err", err)
		o.errorPage(w, http.StatusInternalServerError, msgInternal)
		return nil
	}
	if a == nil {
		o.errorPage(w, http.StatusBadRequest, msgExpired)
	}
	return a
}

func (o *OIDC) serveLogin(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	a := o.loadRequest(w, r, id)
	if a == nil {
		return
	}
	rp, err := o.clientRP(r, a)
	if err != nil {
		o.s.log.Error("login page", "client", a.ClientID, "err", err)
		o.errorPage(w, http.StatusInternalServerError, msgInternal)
		return
	}
	p := o.page(id)
	p.Client = rp.Name
	if phonePattern.MatchString(a.Hint) {
		p.Phone = a.Hint
	}
	o.render(w, http.StatusOK, "login", p)
}

// normalizePhone removes the spaces, dashes and parentheses people type
// in phone numbers.
func normalizePhone(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '(', ')', '.', '\u00a0':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

func (o *OIDC) serveLoginStart(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		o.errorPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	id := r.PostForm.Get("authRequestID")
	a := o.loadRequest(w, r, id)
	if a == nil {
		return
	}
	if a.Authenticated {
		// The login is over; a second number must not replace the
		// person it named.
		o.errorPage(w, http.StatusBadRequest, msgExpired)
		return
	}
	ctx := r.Context()
	rp, err := o.clientRP(r, a)
	if err != nil {
		o.s.log.Error("login", "client", a.ClientID, "err", err)
		o.errorPage(w, http.StatusInternalServerError, msgInternal)
		return
	}
	p := o.page(id)
	p.Client = rp.Name
	p.Phone = normalizePhone(r.PostForm.Get("phone"))
	if !phonePattern.MatchString(p.Phone) {
		p.Error = msgBadPhone
		o.render(w, http.StatusOK, "login", p)
		return
	}
	if !rp.Allows(ServiceAuthentication) {
		o.s.log.Warn("login for an RP without the authentication service", "rp", rp.ID, "client", a.ClientID)
		o.errorPage(w, http.StatusForbidden, "This service may not use Mobile ID to log in.")
		return
	}
	// The RP's rate limit counts the logins its users start as it counts
	// its MID API requests: each sends an SMS.
	if !o.s.rps.Allow(rp) {
		p.Error = msgBusy
		o.render(w, http.StatusTooManyRequests, "login", p)
		return
	}
	person, err := o.s.dir.Find(ctx, p.Phone)
	if errors.Is(err, ErrNotFound) {
		p.Error = msgNoMobileID
		o.render(w, http.StatusOK, "login", p)
		return
	}
	if err != nil {
		o.s.log.Error("login: directory", "err", err)
		o.errorPage(w, http.StatusInternalServerError, msgInternal)
		return
	}
	sess, err := o.s.createSession(ctx, rp, KindAuthentication, &sessionRequest{
		identRequest: identRequest{Phone: p.Phone, NationalID: person.NationalID},
		Hash:         randomChallenge(), HashType: "SHA256", Language: midLanguage(a.Locales),
		DisplayText: loginDisplayText, DisplayFormat: FormatGSM7,
	})
	if err != nil {
		o.s.log.Error("login: start session", "err", err)
		o.errorPage(w, http.StatusInternalServerError, msgInternal)
		return
	}
	secret := randomID()
	browser := sha256.Sum256([]byte(secret))
	a.Browser, a.Session, a.Phone, a.Pending = hex.EncodeToString(browser[:]), sess.ID, p.Phone, claimsOnly(person)
	if err := o.updateRequest(ctx, a); err != nil {
		o.s.log.Error("login", "err", err)
		o.errorPage(w, http.StatusInternalServerError, msgInternal)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: loginCookie, Value: secret, Path: o.prefix + "/login/",
		HttpOnly: true, Secure: strings.HasPrefix(o.cfg.Issuer, "https:"), SameSite: http.SameSiteLaxMode,
		MaxAge: int(authRequestLifetime.Seconds()),
	})
	o.s.log.Info("login started", "client", a.ClientID, "session", sess.ID)
	p.VC = sess.VC
	p.StatusURL = o.prefix + "/login/status?authRequestID=" + url.QueryEscape(id)
	o.render(w, http.StatusOK, "waitpage", p)
}

// serveLoginStatus answers the page's polls: the code again while the
// phone is asked, the failure, or, when the session is OK, the redirect
// that completes the authorization request (HX-Redirect for htmx, 303
// otherwise).
func (o *OIDC) serveLoginStatus(w http.ResponseWriter, r *http.Request) {
	htmx := r.Header.Get("HX-Request") == "true"
	id := r.URL.Query().Get("authRequestID")
	a := o.loadRequest(w, r, id)
	if a == nil {
		return
	}
	c, err := r.Cookie(loginCookie)
	sessID := a.Session
	if sessID == "" || err != nil {
		o.errorPage(w, http.StatusBadRequest, msgExpired)
		return
	}
	h := sha256.Sum256([]byte(c.Value))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(h[:])), []byte(a.Browser)) != 1 {
		o.errorPage(w, http.StatusBadRequest, msgExpired)
		return
	}
	ctx := r.Context()
	sess, err := o.s.getSession(ctx, sessID)
	if err != nil {
		o.s.log.Error("login status", "session", sessID, "err", err)
		o.errorPage(w, http.StatusInternalServerError, msgInternal)
		return
	}
	p := o.page(id)
	p.Phone = a.Phone
	if sess == nil || !o.s.now().Before(sess.Expires) {
		p.Error = resultMessages[ResultTimeout]
		o.renderStatus(w, htmx, "failed", p)
		return
	}
	switch {
	case sess.State == StateRunning:
		p.VC = sess.VC
		p.StatusURL = o.prefix + "/login/status?authRequestID=" + url.QueryEscape(id)
		o.renderStatus(w, htmx, "wait", p)
		return
	case sess.Result != ResultOK:
		p.Error = resultMessages[sess.Result]
		if p.Error == "" {
			p.Error = msgInternal
		}
		o.renderStatus(w, htmx, "failed", p)
		return
	}
	if !a.Authenticated {
		a.Authenticated, a.AuthTime, a.Person, a.Subject = true, sess.Finished, a.Pending, o.subject(a.Pending)
		if err := o.updateRequest(ctx, a); err != nil {
			o.s.log.Error("login", "err", err)
			o.errorPage(w, http.StatusInternalServerError, msgInternal)
			return
		}
		o.s.log.Info("login complete", "client", a.ClientID, "session", sessID)
	}
	// The secret has done its work.
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: o.prefix + "/login/", MaxAge: -1})
	next := op.AuthCallbackURL(o.provider)(ctx, id)
	if htmx {
		w.Header().Set("HX-Redirect", next)
		w.WriteHeader(http.StatusOK)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// randomChallenge returns the SHA-256-sized challenge of a login. It is
// random: the signature proves possession of the key now, and the code
// the user compares is derived from it.
func randomChallenge() []byte {
	hash := make([]byte, sha256.Size)
	rand.Read(hash)
	return hash
}

// renderStatus writes a fragment for htmx and a whole page otherwise.
func (o *OIDC) renderStatus(w http.ResponseWriter, htmx bool, name string, p *loginPage) {
	if !htmx {
		name += "page"
	}
	o.render(w, http.StatusOK, name, p)
}
