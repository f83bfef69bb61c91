// This file is the provider's Client-Initiated Backchannel Authentication
// (OpenID Connect CIBA Core 1.0, poll mode): a client that has no browser
// of the person's at hand - a call centre, a kiosk, a branch counter -
// names the person by phone number, the phone asks for the PIN, and the
// client polls the token endpoint until the person has confirmed.
//
// The OpenID provider library has no CIBA; this file adds its two
// endpoints and uses the library for everything else: the tokens are made
// by op.CreateTokenResponse from the same stored request type as a code
// flow login, so ID tokens, access tokens and /userinfo are the same.

package idserver

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// GrantTypeCIBA is the grant type of the token requests that poll for the
// outcome of a backchannel authentication request.
const GrantTypeCIBA oidc.GrantType = "urn:openid:params:grant-type:ciba"

// CIBA polling.
const (
	// cibaInterval is the interval, in seconds, a client is told to
	// keep between polls.
	cibaInterval = 2
	// cibaSlowDown is what a poll that comes too soon adds to the
	// request's interval, in seconds, as CIBA Core §11 requires.
	cibaSlowDown = 5
	// cibaLeeway forgives a poll that comes this much early: clients
	// sleep the interval, and their clocks and the nodes' differ a
	// little.
	cibaLeeway = 250 * time.Millisecond
	// cibaMaxExpiry is the longest a backchannel request lives, and
	// its lifetime when the client does not ask for less: that of the
	// Mobile ID session.
	cibaMaxExpiry = SessionLifetime
)

// cibaEndpoint is the path of the backchannel authentication endpoint
// below the issuer.
const cibaEndpoint = "/bc-authorize"

// maxFormBody bounds the form of a backchannel or token request.
const maxFormBody = 16 << 10

// CIBA's error codes (CIBA Core §13 and §11, RFC 6749 §5.2) that the
// library does not name.
const (
	errUnknownUserID         = "unknown_user_id"
	errInvalidBindingMessage = "invalid_binding_message"
)

// oauthError is an error answer of the backchannel and token endpoints.
type oauthError struct {
	status      int
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(status int, code, desc string) *oauthError {
	return &oauthError{status: status, Code: code, Description: desc}
}

var errCIBAInternal = oauthErr(http.StatusInternalServerError, "server_error", "the request could not be processed")

// writeTokenJSON answers with v as JSON, never cached (RFC 6749 §5.1).
func writeTokenJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, v)
}

func writeOAuthError(w http.ResponseWriter, e *oauthError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="mobileid"`)
	}
	writeTokenJSON(w, e.status, e)
}

// cibaAuthResponse is the answer to a backchannel authentication request.
// VerificationCode is ours: the code the phone shows, which an agent on
// the line may read out to the person.
type cibaAuthResponse struct {
	AuthReqID        string `json:"auth_req_id"`
	ExpiresIn        int64  `json:"expires_in"`
	Interval         int64  `json:"interval"`
	VerificationCode string `json:"verification_code"`
}

// authenticateClient checks the credentials of a request to the
// backchannel or token endpoint: client_secret_basic or
// client_secret_post, the secret being the RP's relyingPartyUUID.
func (o *OIDC) authenticateClient(r *http.Request) (*OIDCClient, *RP, *oauthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: both are form-encoded before Basic.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return nil, nil, oauthErr(http.StatusUnauthorized, "invalid_client", "the client credentials are not form-encoded")
		}
		if r.PostForm.Has("client_secret") {
			return nil, nil, oauthErr(http.StatusBadRequest, "invalid_request", "more than one client authentication method")
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id == "" || secret == "" {
		return nil, nil, oauthErr(http.StatusUnauthorized, "invalid_client", "client authentication is required")
	}
	// RFC 6749 §5.2: a client that tried the Authorization header gets
	// 401 with a Basic challenge; one that sent its secret in the form
	// gets 400, as a challenge would invite a scheme it did not use.
	failed := oauthErr(http.StatusBadRequest, "invalid_client", "client authentication failed")
	if basic {
		failed.status = http.StatusUnauthorized
	}
	c, rp, err := o.client(r.Context(), id)
	if errors.Is(err, ErrUnknownClient) {
		return nil, nil, failed
	}
	if err != nil {
		o.s.log.Error("CIBA: look up client", "err", err)
		return nil, nil, errCIBAInternal
	}
	if !c.checkSecret(secret) {
		return nil, nil, failed
	}
	return c, rp, nil
}

// parseForm reads a bounded form body.
func parseForm(w http.ResponseWriter, r *http.Request) *oauthError {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		return oauthErr(http.StatusBadRequest, "invalid_request", "the body is not a form")
	}
	return nil
}

// serveBackchannel is the backchannel authentication endpoint: it checks
// the client and the request, looks the number up, starts the Mobile ID
// session and answers with the auth_req_id to poll for.
func (o *OIDC) serveBackchannel(w http.ResponseWriter, r *http.Request) {
	if e := parseForm(w, r); e != nil {
		writeOAuthError(w, e)
		return
	}
	a, vc, e := o.backchannel(r)
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	writeTokenJSON(w, http.StatusOK, cibaAuthResponse{
		AuthReqID: a.ID, ExpiresIn: int64(a.Expires.Sub(a.Created).Seconds()),
		Interval: a.Interval, VerificationCode: vc,
	})
}

func (o *OIDC) backchannel(r *http.Request) (*authRequest, string, *oauthError) {
	c, rp, e := o.authenticateClient(r)
	if e != nil {
		return nil, "", e
	}
	f := r.PostForm
	switch {
	case !c.CIBA:
		return nil, "", oauthErr(http.StatusBadRequest, "unauthorized_client", "the client is not registered for CIBA")
	case !rp.Allows(ServiceAuthentication) || !rp.AllowsIP(remoteAddr(r)):
		o.s.log.Warn("CIBA request refused", "client", c.ID, "rp", rp.ID)
		return nil, "", oauthErr(http.StatusBadRequest, "unauthorized_client", "the client may not authenticate users from here")
	case f.Has("login_hint_token") || f.Has("id_token_hint"):
		return nil, "", oauthErr(http.StatusBadRequest, "invalid_request", "only login_hint is supported, with the phone number")
	case f.Get("login_hint") == "":
		return nil, "", oauthErr(http.StatusBadRequest, "invalid_request", "login_hint, the phone number, is required")
	}
	scopes := strings.Fields(f.Get("scope"))
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		return nil, "", oauthErr(http.StatusBadRequest, "invalid_scope", "the scope must include openid")
	}
	// Unknown scopes are dropped, as the authorization endpoint does.
	scopes = slices.DeleteFunc(scopes, func(s string) bool {
		return !slices.Contains([]string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopePhone, ScopeNationalID}, s)
	})
	expiry := cibaMaxExpiry
	if v := f.Get("requested_expiry"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n <= 0 {
			return nil, "", oauthErr(http.StatusBadRequest, "invalid_request", "requested_expiry must be a positive number of seconds")
		}
		expiry = min(expiry, time.Duration(n)*time.Second)
	}
	text, format := loginDisplayText, FormatGSM7
	if f.Has("binding_message") {
		var ok bool
		if text, format, ok = bindingMessage(f.Get("binding_message")); !ok {
			return nil, "", oauthErr(http.StatusBadRequest, errInvalidBindingMessage,
				"binding_message must be 1 to 100 GSM-7 characters (at most 5 from the extension table) or 1 to 50 others, on no more than a few lines")
		}
	}
	phone := normalizePhone(f.Get("login_hint"))
	if !phonePattern.MatchString(phone) {
		return nil, "", oauthErr(http.StatusBadRequest, errUnknownUserID, "login_hint must be a phone number in international format, e.g. +37200000766")
	}
	if !o.s.rps.Allow(rp) {
		return nil, "", oauthErr(http.StatusTooManyRequests, "slow_down", "the client has sent too many requests")
	}
	ctx := r.Context()
	if err := o.prune(ctx); err != nil {
		o.s.log.Error("prune OpenID Connect state", "err", err)
	}
	person, err := o.s.dir.Find(ctx, phone)
	if errors.Is(err, ErrNotFound) {
		return nil, "", oauthErr(http.StatusBadRequest, errUnknownUserID, "the phone number has no active Mobile ID")
	}
	if err != nil {
		o.s.log.Error("CIBA: directory", "err", err)
		return nil, "", errCIBAInternal
	}
	sess, err := o.s.createSession(ctx, rp, KindAuthentication, &sessionRequest{
		identRequest: identRequest{Phone: phone, NationalID: person.NationalID},
		Hash:         randomChallenge(), HashType: "SHA256", Language: midLanguage(f.Get("ui_locales")),
		DisplayText: text, DisplayFormat: format,
	})
	if err != nil {
		o.s.log.Error("CIBA: start session", "err", err)
		return nil, "", errCIBAInternal
	}
	now := o.s.now()
	a := &authRequest{
		ID: randomID(), Created: now, ClientID: c.ID, Scopes: scopes,
		ResponseType: oidc.ResponseTypeCode, Hint: phone,
		Session: sess.ID, Phone: phone, Pending: claimsOnly(person),
		CIBA: true, Interval: cibaInterval, LastPoll: now, Expires: now.Add(expiry),
	}
	if err := o.insertRequest(ctx, a); err != nil {
		o.s.log.Error("CIBA", "err", err)
		return nil, "", errCIBAInternal
	}
	o.s.log.Info("CIBA login started", "client", c.ID, "session", sess.ID)
	return a, sess.VC, nil
}

// bindingMessage checks a binding message as the phone will show it and
// returns it with its display text format. Unlike a MID displayText it is
// not repaired: a client that sends what the phone cannot show learns so.
func bindingMessage(s string) (text, format string, ok bool) {
	if s == "" || strings.ContainsFunc(s, isControl) {
		return "", "", false
	}
	if out, err := displayText(s, FormatGSM7); err == nil && out == s {
		return s, FormatGSM7, true
	}
	if out, err := displayText(s, FormatUCS2); err == nil && out == s {
		return s, FormatUCS2, true
	}
	return "", "", false
}

// midLanguage returns the MID language of the first of the space-separated
// ui_locales that the phone can be asked in, or English.
func midLanguage(locales string) string {
	for _, l := range strings.Fields(locales) {
		lang, _, _ := strings.Cut(strings.ToLower(l), "-")
		switch lang {
		case "et":
			return "EST"
		case "en":
			return "ENG"
		case "ru":
			return "RUS"
		case "lt":
			return "LIT"
		}
	}
	return "ENG"
}

// tokenEndpoint serves the CIBA grant and passes every other token
// request to the library.
func (o *OIDC) tokenEndpoint(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if e := parseForm(w, r); e != nil {
				writeOAuthError(w, e)
				return
			}
			if r.PostForm.Get("grant_type") == string(GrantTypeCIBA) {
				resp, e := o.cibaToken(r)
				if e != nil {
					writeOAuthError(w, e)
					return
				}
				writeTokenJSON(w, http.StatusOK, resp)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// cibaToken answers a poll: authorization_pending while the phone asks,
// slow_down to a client that polls too often, the tokens once, or why the
// login failed.
func (o *OIDC) cibaToken(r *http.Request) (*oidc.AccessTokenResponse, *oauthError) {
	c, _, e := o.authenticateClient(r)
	if e != nil {
		return nil, e
	}
	if !c.CIBA {
		return nil, oauthErr(http.StatusBadRequest, "unauthorized_client", "the client is not registered for CIBA")
	}
	id := r.PostForm.Get("auth_req_id")
	if id == "" {
		return nil, oauthErr(http.StatusBadRequest, "invalid_request", "auth_req_id is required")
	}
	ctx := r.Context()
	a, err := o.cibaRequest(ctx, id)
	if err != nil {
		o.s.log.Error("CIBA token", "err", err)
		return nil, errCIBAInternal
	}
	if a == nil || a.ClientID != c.ID {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "auth_req_id is not known")
	}
	now := o.s.now()
	expired := oauthErr(http.StatusBadRequest, "expired_token", "the authentication request has expired")
	if !now.Before(a.Expires) {
		o.deleteRequest(ctx, id)
		return nil, expired
	}
	sess, err := o.s.getSession(ctx, a.Session)
	if err != nil {
		o.s.log.Error("CIBA token", "session", a.Session, "err", err)
		return nil, errCIBAInternal
	}
	switch {
	case sess == nil || !now.Before(sess.Expires):
		o.deleteRequest(ctx, id)
		return nil, expired
	case sess.State == StateRunning:
		e := oauthErr(http.StatusBadRequest, "authorization_pending", "the person has not yet confirmed on the phone")
		if now.Sub(a.LastPoll) < time.Duration(a.Interval)*time.Second-cibaLeeway {
			a.Interval += cibaSlowDown
			e = oauthErr(http.StatusBadRequest, "slow_down", "poll every "+strconv.FormatInt(a.Interval, 10)+" seconds")
		} else {
			a.LastPoll = now
		}
		if err := o.updateRequest(ctx, a); err != nil {
			o.s.log.Error("CIBA token", "err", err)
			return nil, errCIBAInternal
		}
		return nil, e
	case sess.Result != ResultOK:
		o.deleteRequest(ctx, id)
		o.s.log.Info("CIBA login failed", "client", c.ID, "session", sess.ID, "result", sess.Result)
		switch sess.Result {
		case ResultTimeout:
			return nil, expired
		case ResultInternalError:
			return nil, errCIBAInternal
		}
		msg := resultMessages[sess.Result]
		if msg == "" {
			msg = msgInternal
		}
		return nil, oauthErr(http.StatusForbidden, "access_denied", sess.Result+": "+msg)
	}
	// Only the poll that deletes the request gets the tokens.
	res, err := o.s.db.ExecContext(ctx, `DELETE FROM idserver_oidc_requests WHERE id = $1`, id)
	if err != nil {
		o.s.log.Error("CIBA token", "err", err)
		return nil, errCIBAInternal
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, oauthErr(http.StatusBadRequest, "invalid_grant", "auth_req_id is not known")
	}
	a.Authenticated, a.AuthTime, a.Person, a.Subject = true, sess.Finished, a.Pending, o.subject(a.Pending)
	resp, err := op.CreateTokenResponse(ctx, a, &oidcClient{c: c, loginURL: o.prefix + "/login/"}, o.provider, true, "", "")
	if err != nil {
		o.s.log.Error("CIBA token: create tokens", "err", err)
		return nil, errCIBAInternal
	}
	o.s.log.Info("CIBA login complete", "client", c.ID, "session", sess.ID)
	return resp, nil
}

// cibaRequest returns a backchannel request, expired or not, as long as
// it is stored, or nil.
func (o *OIDC) cibaRequest(ctx context.Context, id string) (*authRequest, error) {
	a, err := o.requestWhere(ctx, `id = $1`, id, 0)
	if err != nil || a == nil || !a.CIBA {
		return nil, err
	}
	return a, nil
}

// deleteRequest deletes a request that has ended; a failure is only
// logged, since the request expires anyway.
func (o *OIDC) deleteRequest(ctx context.Context, id string) {
	if _, err := o.s.db.ExecContext(ctx, `DELETE FROM idserver_oidc_requests WHERE id = $1`, id); err != nil {
		o.s.log.Error("delete authorization request", "err", err)
	}
}

// discovery adds CIBA to the library's discovery document.
func (o *OIDC) discovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var doc map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		doc["backchannel_authentication_endpoint"] = o.cfg.Issuer + cibaEndpoint
		doc["backchannel_token_delivery_modes_supported"] = []string{"poll"}
		doc["backchannel_user_code_parameter_supported"] = false
		grants, _ := doc["grant_types_supported"].([]any)
		doc["grant_types_supported"] = append(grants, string(GrantTypeCIBA))
		b, err := json.Marshal(doc)
		if err != nil {
			http.Error(w, "Internal error", http.StatusInternalServerError)
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
	})
}
