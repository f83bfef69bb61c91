// This file is the storage the OpenID provider library works on: the
// clients from the database, the signing keys, and the authorization
// requests, codes and access tokens in memory.

package idserver

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// authRequest is an authorization request from its arrival to the code
// exchange.
type authRequest struct {
	id       string
	created  time.Time
	clientID string
	redirect string
	state    string
	nonce    string
	scopes   []string
	respType oidc.ResponseType
	respMode oidc.ResponseMode
	pkce     *oidc.CodeChallenge
	hint     string // login_hint

	// The login: the browser that started it (SHA-256 of its cookie) and
	// its Mobile ID session.
	browser [32]byte
	session string
	pending *Person // whom the directory named for the number

	// Set when the login succeeded.
	done     bool
	authTime time.Time
	person   *Person
	phone    string
	subject  string
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return ACRMobileID }
func (a *authRequest) GetAMR() []string                      { return []string{AMRMobileID} }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.pkce }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirect }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.respType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.respMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.subject }
func (a *authRequest) Done() bool                            { return a.done }

// accessToken is an issued access token, with what /userinfo answers.
type accessToken struct {
	id       string
	clientID string
	subject  string
	scopes   []string
	person   *Person
	phone    string
	expires  time.Time
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
func (c *oidcClient) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }
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

// pruneLocked drops expired requests, codes and tokens.
func (o *OIDC) pruneLocked(now time.Time) {
	for id, a := range o.requests {
		if now.Sub(a.created) > authRequestLifetime {
			delete(o.requests, id)
		}
	}
	for code, id := range o.codes {
		if _, ok := o.requests[id]; !ok {
			delete(o.codes, code)
		}
	}
	for id, t := range o.tokens {
		if !now.Before(t.expires) {
			delete(o.tokens, id)
		}
	}
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
	o := st.o
	now := o.s.now()
	a := &authRequest{
		id: randomID(), created: now, clientID: req.ClientID, redirect: req.RedirectURI,
		state: req.State, nonce: req.Nonce, scopes: slices.Clone(req.Scopes),
		respType: req.ResponseType, respMode: req.ResponseMode,
		pkce: &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod},
		hint: req.LoginHint,
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pruneLocked(now)
	o.requests[a.id] = a
	return a, nil
}

// request returns a live auth request, or nil.
func (o *OIDC) request(id string) *authRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	a := o.requests[id]
	if a == nil || o.s.now().Sub(a.created) > authRequestLifetime {
		return nil
	}
	return a
}

func (st *oidcStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	a := st.o.request(id)
	if a == nil {
		return nil, notFoundError{"authorization request"}
	}
	// A copy, so that the library does not read fields the login
	// writes.
	st.o.mu.Lock()
	c := *a
	st.o.mu.Unlock()
	return &c, nil
}

func (st *oidcStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	st.o.mu.Lock()
	id, ok := st.o.codes[code]
	st.o.mu.Unlock()
	if !ok {
		return nil, notFoundError{"code"}
	}
	return st.AuthRequestByID(ctx, id)
}

func (st *oidcStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	st.o.mu.Lock()
	defer st.o.mu.Unlock()
	if _, ok := st.o.requests[id]; !ok {
		return notFoundError{"authorization request"}
	}
	st.o.codes[code] = id
	return nil
}

// DeleteAuthRequest is called after the code exchange, so that a code is
// used only once.
func (st *oidcStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	st.o.mu.Lock()
	defer st.o.mu.Unlock()
	delete(st.o.requests, id)
	for code, rid := range st.o.codes {
		if rid == id {
			delete(st.o.codes, code)
		}
	}
	return nil
}

func (st *oidcStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	a, ok := req.(*authRequest)
	if !ok || a.person == nil {
		return "", time.Time{}, errors.New("idserver: access token for an unauthenticated request")
	}
	t := &accessToken{
		id: randomID(), clientID: a.clientID, subject: a.subject, scopes: slices.Clone(a.scopes),
		person: a.person, phone: a.phone, expires: st.o.s.now().Add(accessTokenLifetime),
	}
	st.o.mu.Lock()
	st.o.tokens[t.id] = t
	st.o.mu.Unlock()
	return t.id, t.expires, nil
}

func (st *oidcStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("idserver: refresh tokens are not issued")
}

func (st *oidcStorage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (st *oidcStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	st.o.mu.Lock()
	defer st.o.mu.Unlock()
	for id, t := range st.o.tokens {
		if t.subject == userID && t.clientID == clientID {
			delete(st.o.tokens, id)
		}
	}
	return nil
}

func (st *oidcStorage) RevokeToken(ctx context.Context, token, userID, clientID string) *oidc.Error {
	st.o.mu.Lock()
	defer st.o.mu.Unlock()
	t, ok := st.o.tokens[token]
	if !ok {
		return nil // RFC 7009: an unknown token is not an error
	}
	if t.clientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was issued to another client")
	}
	delete(st.o.tokens, token)
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
	if !ok || a.person == nil {
		return errors.New("idserver: claims of an unauthenticated request")
	}
	setUserinfo(info, a.subject, a.person, a.phone, scopes)
	return nil
}

func (st *oidcStorage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, userID, clientID string, scopes []string) error {
	// SetUserinfoFromRequest answers for ID tokens; this is left for the
	// library's other grants, which are not enabled.
	return nil
}

func (st *oidcStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, origin string) error {
	st.o.mu.Lock()
	t, ok := st.o.tokens[tokenID]
	st.o.mu.Unlock()
	if !ok || !st.o.s.now().Before(t.expires) || t.subject != subject {
		return notFoundError{"access token"}
	}
	setUserinfo(info, t.subject, t.person, t.phone, t.scopes)
	return nil
}

func (st *oidcStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	st.o.mu.Lock()
	t, ok := st.o.tokens[tokenID]
	st.o.mu.Unlock()
	if !ok || !st.o.s.now().Before(t.expires) || t.clientID != clientID {
		return notFoundError{"access token"}
	}
	resp.Active = true
	resp.Subject = t.subject
	resp.ClientID = t.clientID
	resp.Scope = t.scopes
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
