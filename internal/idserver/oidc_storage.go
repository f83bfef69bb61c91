// This file is the storage the OpenID provider library works on: the
// clients from the database, the signing keys, the authorization
// requests with their codes, and the access tokens.

package idserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is an authorization request from its arrival to the code
// exchange, stored as JSON in idserver_oidc_requests.
type authRequest struct {
	ID              string                   `json:"id"`
	Created         time.Time                `json:"created"`
	ClientID        string                   `json:"client_id"`
	RedirectURI     string                   `json:"redirect_uri"`
	State           string                   `json:"state"`
	Nonce           string                   `json:"nonce"`
	Scopes          []string                 `json:"scopes"`
	ResponseType    oidc.ResponseType        `json:"response_type"`
	ResponseMode    oidc.ResponseMode        `json:"response_mode"`
	Challenge       string                   `json:"code_challenge"`
	ChallengeMethod oidc.CodeChallengeMethod `json:"code_challenge_method"`
	Hint            string                   `json:"login_hint"`
	Locales         string                   `json:"ui_locales,omitempty"`

	// The login: the browser that started it (hex SHA-256 of its
	// cookie), its Mobile ID session, the number and whom the directory
	// named for it.
	Browser string  `json:"browser"`
	Session string  `json:"session"`
	Phone   string  `json:"phone"`
	Pending *Person `json:"pending"`

	// Set when the login succeeded.
	Authenticated bool      `json:"done"`
	AuthTime      time.Time `json:"auth_time"`
	Person        *Person   `json:"person"`
	Subject       string    `json:"subject"`

	// A backchannel (CIBA) request: not for the login pages; polled at
	// the token endpoint every Interval seconds at most, the last time
	// at LastPoll; over at Expires.
	CIBA     bool      `json:"ciba,omitempty"`
	Interval int64     `json:"interval,omitempty"`
	LastPoll time.Time `json:"last_poll,omitzero"`
	Expires  time.Time `json:"expires,omitzero"`
}

func (a *authRequest) GetID() string                      { return a.ID }
func (a *authRequest) GetACR() string                     { return ACRMobileID }
func (a *authRequest) GetAMR() []string                   { return []string{AMRMobileID} }
func (a *authRequest) GetAudience() []string              { return []string{a.ClientID} }
func (a *authRequest) GetAuthTime() time.Time             { return a.AuthTime }
func (a *authRequest) GetClientID() string                { return a.ClientID }
func (a *authRequest) GetNonce() string                   { return a.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.RedirectURI }
func (a *authRequest) GetScopes() []string                { return a.Scopes }
func (a *authRequest) GetState() string                   { return a.State }
func (a *authRequest) GetSubject() string                 { return a.Subject }
func (a *authRequest) Done() bool                         { return a.Authenticated }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.ResponseMode }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	return &oidc.CodeChallenge{Challenge: a.Challenge, Method: a.ChallengeMethod}
}

// accessToken is an issued access token, with what /userinfo answers,
// stored as JSON in idserver_oidc_tokens.
type accessToken struct {
	ID       string    `json:"id"`
	ClientID string    `json:"client_id"`
	Subject  string    `json:"subject"`
	Scopes   []string  `json:"scopes"`
	Person   *Person   `json:"person"`
	Phone    string    `json:"phone"`
	Expires  time.Time `json:"expires"`
}

// claimsOnly returns p without its certificates, which the claims do not
// need and the provider's tables need not hold.
func claimsOnly(p *Person) *Person {
	if p == nil {
		return nil
	}
	c := *p
	c.AuthCert, c.SignCert = nil, nil
	return &c
}

// hashCode returns the form an authorization code is stored in.
func hashCode(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}

// insertRequest stores a new authorization request.
func (o *OIDC) insertRequest(ctx context.Context, a *authRequest) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("idserver: encode authorization request: %w", err)
	}
	if _, err := o.s.db.ExecContext(ctx, `INSERT INTO idserver_oidc_requests (id, code_hash, data, expires_at) VALUES ($1, '', $2, $3)`,
		a.ID, string(data), a.Created.Add(authRequestLifetime).UnixMicro()); err != nil {
		return fmt.Errorf("idserver: store authorization request: %w", err)
	}
	return nil
}

// updateRequest stores the login's changes to an authorization request.
func (o *OIDC) updateRequest(ctx context.Context, a *authRequest) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("idserver: encode authorization request: %w", err)
	}
	if _, err := o.s.db.ExecContext(ctx, `UPDATE idserver_oidc_requests SET data = $1 WHERE id = $2`, string(data), a.ID); err != nil {
		return fmt.Errorf("idserver: update authorization request: %w", err)
	}
	return nil
}

// request returns a live authorization request of the code flow, or nil.
func (o *OIDC) request(ctx context.Context, id string) (*authRequest, error) {
	a, err := o.requestWhere(ctx, `id = $1`, id, o.s.now().UnixMicro())
	if err != nil || a == nil || a.CIBA {
		return nil, err
	}
	return a, nil
}

// requestWhere returns the request that meets cond with arg and is stored
// until after the time after (Unix microseconds), or nil.
func (o *OIDC) requestWhere(ctx context.Context, cond, arg string, after int64) (*authRequest, error) {
	var data string
	err := o.s.db.QueryRowContext(ctx, `SELECT data FROM idserver_oidc_requests WHERE `+cond+` AND expires_at > $2`,
		arg, after).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("idserver: read authorization request: %w", err)
	}
	var a authRequest
	if err := json.Unmarshal([]byte(data), &a); err != nil {
		return nil, fmt.Errorf("idserver: decode authorization request: %w", err)
	}
	return &a, nil
}

// token returns a live access token, or nil.
func (o *OIDC) token(ctx context.Context, id string) (*accessToken, error) {
	var data string
	err := o.s.db.QueryRowContext(ctx, `SELECT data FROM idserver_oidc_tokens WHERE id = $1 AND expires_at > $2`,
		id, o.s.now().UnixMicro()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("idserver: read access token: %w", err)
	}
	var t accessToken
	if err := json.Unmarshal([]byte(data), &t); err != nil {
		return nil, fmt.Errorf("idserver: decode access token: %w", err)
	}
	return &t, nil
}

// prune deletes expired authorization requests and access tokens.
func (o *OIDC) prune(ctx context.Context) error {
	now := o.s.now().UnixMicro()
	if _, err := o.s.db.ExecContext(ctx, `DELETE FROM idserver_oidc_requests WHERE expires_at <= $1`, now); err != nil {
		return fmt.Errorf("idserver: prune authorization requests: %w", err)
	}
	if _, err := o.s.db.ExecContext(ctx, `DELETE FROM idserver_oidc_tokens WHERE expires_at <= $1`, now); err != nil {
		return fmt.Errorf("idserver: prune access tokens: %w", err)
	}
	return nil
}

// oidcClient is a registered client as the library sees it.
type oidcClient struct {
	c         *OIDCClient
	loginURL  string
	clockSkew time.Duration
}

func (c *oidcClient) GetID() string                       { return c.c.ID }
func (c *oidcClient) RedirectURIs() []string              { return c.c.RedirectURIs }
func (c *oidcClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *oidcClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *oidcClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *oidcClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *oidcClient) GrantTypes() []oidc.GrantType {
	if c.c.CIBA {
		return []oidc.GrantType{oidc.GrantTypeCode, GrantTypeCIBA}
	}
	return []oidc.GrantType{oidc.GrantTypeCode}
}
func (c *oidcClient) LoginURL(id string) string {
	return c.loginURL + "?authRequestID=" + id
}
func (c *oidcClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *oidcClient) IDTokenLifetime() time.Duration      { return idTokenLifetime }
func (c *oidcClient) DevMode() bool                       { return false }
func (c *oidcClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *oidcClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *oidcClient) IsScopeAllowed(scope string) bool { return scope == ScopeNationalID }

// IDTokenUserinfoClaimsAssertion is true: relying parties get the
// person's claims in the ID token and need not call /userinfo.
func (c *oidcClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *oidcClient) ClockSkew() time.Duration             { return c.clockSkew }

// oidcStorage implements op.Storage for an OIDC.
type oidcStorage struct{ o *OIDC }

var (
	_ op.Storage                   = (*oidcStorage)(nil)
	_ op.CanSetUserinfoFromRequest = (*oidcStorage)(nil)
	_ op.AuthRequest               = (*authRequest)(nil)
	_ op.Client                    = (*oidcClient)(nil)
	_ op.StorageNotFoundError      = notFoundError{}
)

// notFoundError is what the library takes for "no such thing".
type notFoundError struct{ what string }

func (e notFoundError) Error() string { return "idserver: " + e.what + " not found" }
func (notFoundError) IsNotFound()     {}

// randomID returns 32 random bytes in base64url.
func randomID() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (st *oidcStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	// PKCE is required of every client, confidential or not, against
	// code injection.
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE with code_challenge_method S256 is required")
	}
	if req.ResponseType != oidc.ResponseTypeCode {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("only the authorization code flow is supported")
	}
	// There is no single sign-on session to reuse: every login asks the
	// phone, so a login without a page cannot succeed. max_age is
	// always met, since every login is fresh.
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired().WithDescription("every login confirms on the phone")
	}
	o := st.o
	// Expired rows go here rather than in a timer: requests are what
	// makes them.
	if err := o.prune(ctx); err != nil {
		o.s.log.Error("prune OpenID Connect state", "err", err)
	}
	a := &authRequest{
		ID: randomID(), Created: o.s.now(), ClientID: req.ClientID, RedirectURI: req.RedirectURI,
		State: req.State, Nonce: req.Nonce, Scopes: slices.Clone(req.Scopes),
		ResponseType: req.ResponseType, ResponseMode: req.ResponseMode,
		Challenge: req.CodeChallenge, ChallengeMethod: req.CodeChallengeMethod, Hint: req.LoginHint,
		Locales: req.UILocales.String(),
	}
	if err := o.insertRequest(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

func (st *oidcStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a, err := st.o.request(ctx, id)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, notFoundError{"authorization request"}
	}
	return a, nil
}

func (st *oidcStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	a, err := st.o.requestWhere(ctx, `code_hash = $1`, hashCode(code), st.o.s.now().UnixMicro())
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, notFoundError{"code"}
	}
	return a, nil
}

func (st *oidcStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	res, err := st.o.s.db.ExecContext(ctx, `UPDATE idserver_oidc_requests SET code_hash = $1 WHERE id = $2`, hashCode(code), id)
	if err != nil {
		return fmt.Errorf("idserver: store authorization code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return notFoundError{"authorization request"}
	}
	return nil
}

// DeleteAuthRequest is called after the code exchange, so that a code is
// used only once.
func (st *oidcStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	if _, err := st.o.s.db.ExecContext(ctx, `DELETE FROM idserver_oidc_requests WHERE id = $1`, id); err != nil {
		return fmt.Errorf("idserver: delete authorization request: %w", err)
	}
	return nil
}

func (st *oidcStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	a, ok := req.(*authRequest)
	if !ok || a.Person == nil {
		return "", time.Time{}, errors.New("idserver: access token for an unauthenticated request")
	}
	t := &accessToken{
		ID: randomID(), ClientID: a.ClientID, Subject: a.Subject, Scopes: slices.Clone(a.Scopes),
		Person: a.Person, Phone: a.Phone, Expires: st.o.s.now().Add(accessTokenLifetime),
	}
	data, err := json.Marshal(t)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("idserver: encode access token: %w", err)
	}
	if _, err := st.o.s.db.ExecContext(ctx, `INSERT INTO idserver_oidc_tokens (id, client_id, subject, data, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		t.ID, t.ClientID, t.Subject, string(data), t.Expires.UnixMicro()); err != nil {
		return "", time.Time{}, fmt.Errorf("idserver: store access token: %w", err)
	}
	return t.ID, t.Expires, nil
}

func (st *oidcStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("idserver: refresh tokens are not issued")
}

func (st *oidcStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (st *oidcStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	if _, err := st.o.s.db.ExecContext(ctx, `DELETE FROM idserver_oidc_tokens WHERE subject = $1 AND client_id = $2`, userID, clientID); err != nil {
		return fmt.Errorf("idserver: delete access tokens: %w", err)
	}
	return nil
}

func (st *oidcStorage) RevokeToken(ctx context.Context, token, userID, clientID string) *oidc.Error {
	t, err := st.o.token(ctx, token)
	if err != nil {
		return oidc.ErrServerError()
	}
	if t == nil {
		return nil // RFC 7009: an unknown token is not an error
	}
	if t.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was issued to another client")
	}
	if _, err := st.o.s.db.ExecContext(ctx, `DELETE FROM idserver_oidc_tokens WHERE id = $1`, token); err != nil {
		return oidc.ErrServerError()
	}
	return nil
}

func (st *oidcStorage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (st *oidcStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	return st.o.keys.current(ctx)
}

func (st *oidcStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (st *oidcStorage) KeySet(ctx context.Context) ([]op.Key, error) {
	keys, err := st.o.keys.newest(ctx, publishedKeys)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(keys))
	for i, k := range keys {
		out[i] = &publicKey{id: k.id, key: &k.key.PublicKey}
	}
	return out, nil
}

func (st *oidcStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, _, err := st.o.client(ctx, id)
	if errors.Is(err, ErrUnknownClient) {
		return nil, notFoundError{"client"}
	}
	if err != nil {
		return nil, err
	}
	return &oidcClient{c: c, loginURL: st.o.prefix + "/login/"}, nil
}

func (st *oidcStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, _, err := st.o.client(ctx, id)
	if errors.Is(err, ErrUnknownClient) {
		return oidc.ErrInvalidClient()
	}
	if err != nil {
		return err
	}
	if !c.checkSecret(secret) {
		return oidc.ErrInvalidClient()
	}
	return nil
}

// setUserinfo fills in the claims of a person that scopes release.
func setUserinfo(info *oidc.UserInfo, subject string, p *Person, phone string, scopes []string) {
	info.Subject = subject
	for _, s := range scopes {
		switch s {
		case oidc.ScopeProfile:
			info.GivenName, info.FamilyName = p.GivenNames, p.Surname
			info.Name = p.GivenNames + " " + p.Surname
		case oidc.ScopePhone:
			// The number the Mobile ID answered on, so verified.
			info.PhoneNumber, info.PhoneNumberVerified = phone, true
		case ScopeNationalID:
			info.AppendClaims(ClaimNationalID, p.NationalID)
			info.AppendClaims(ClaimNationalIDCountry, p.Country)
		}
	}
}

func (st *oidcStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	a, ok := req.(*authRequest)
	if !ok || a.Person == nil {
		return errors.New("idserver: claims of an unauthenticated request")
	}
	setUserinfo(info, a.Subject, a.Person, a.Phone, scopes)
	return nil
}

func (st *oidcStorage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, userID, clientID string, scopes []string) error {
	// SetUserinfoFromRequest answers for ID tokens; this is left for the
	// library's other grants, which are not enabled.
	return nil
}

func (st *oidcStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	t, err := st.o.token(ctx, tokenID)
	if err != nil {
		return err
	}
	if t == nil || t.Subject != subject {
		return notFoundError{"access token"}
	}
	setUserinfo(info, t.Subject, t.Person, t.Phone, t.Scopes)
	return nil
}

func (st *oidcStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := st.o.token(ctx, tokenID)
	if err != nil {
		return err
	}
	if t == nil || t.ClientID != clientID {
		return notFoundError{"access token"}
	}
	resp.Active = true
	resp.Subject = t.Subject
	resp.ClientID = t.ClientID
	resp.Scope = t.Scopes
	return nil
}

func (st *oidcStorage) GetPrivateClaimsFromScopes(ctx context.Context, userID, clientID string, scopes []string) (map[string]any, error) {
	return nil, nil
}

func (st *oidcStorage) GetKeyByIDAndClientID(ctx context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	return nil, fmt.Errorf("idserver: JWT profile grants are not supported")
}

func (st *oidcStorage) ValidateJWTProfileScopes(ctx context.Context, userID string, scopes []string) ([]string, error) {
	return nil, fmt.Errorf("idserver: JWT profile grants are not supported")
}

func (st *oidcStorage) Health(ctx context.Context) error {
	return st.o.s.db.PingContext(ctx)
}
