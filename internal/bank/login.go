package bank

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// serveLogin starts "Log in with Mobile ID": the authorization code flow
// with PKCE (S256), a state and a nonce, all kept in the database under
// a login cookie, so that the callback may reach any node.
func (b *Bank) serveLogin(w http.ResponseWriter, r *http.Request) {
	c, err := b.current(r)
	if err != nil {
		b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
		return
	}
	if c != nil {
		b.redirect(w, r, "account")
		return
	}
	p, err := b.provider(r.Context())
	if err != nil {
		b.log.Warn("login: OpenID provider unreachable", "err", err)
		b.errorPage(w, r, http.StatusServiceUnavailable, nil, msgUnreachable)
		return
	}
	l := login{State: oauth2.GenerateVerifier(), Nonce: oauth2.GenerateVerifier(), Verifier: oauth2.GenerateVerifier()}
	token, err := b.startLogin(r.Context(), l)
	if err != nil {
		b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
		return
	}
	b.setCookie(w, loginCookie, token, loginLife)
	u := b.oauth(p).AuthCodeURL(l.State, oauth2.S256ChallengeOption(l.Verifier), oidc.Nonce(l.Nonce))
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// serveCallback completes a login: it checks the state against the
// browser's login, exchanges the code with the PKCE verifier, verifies
// the ID token (signature, issuer, audience, expiry, nonce), and starts
// a session of the bank's own.
func (b *Bank) serveCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	lc, err := r.Cookie(loginCookie)
	if err != nil || lc.Value == "" {
		b.errorPage(w, r, http.StatusBadRequest, nil, msgLoginExpired)
		return
	}
	// The login is used up whatever happens next.
	b.setCookie(w, loginCookie, "", 0)
	l, err := b.takeLogin(ctx, lc.Value)
	if err != nil {
		b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
		return
	}
	q := r.URL.Query()
	if l == nil || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(l.State)) != 1 {
		b.errorPage(w, r, http.StatusBadRequest, nil, msgLoginExpired)
		return
	}
	if e := q.Get("error"); e != "" {
		b.log.Info("login refused by the provider", "error", e, "description", q.Get("error_description"))
		b.errorPage(w, r, http.StatusBadRequest, nil, msgLoginFailed)
		return
	}
	id, err := b.exchange(ctx, q.Get("code"), l)
	if err != nil {
		b.log.Warn("login failed", "err", err)
		b.errorPage(w, r, http.StatusBadGateway, nil, msgLoginFailed)
		return
	}
	token, err := b.logIn(ctx, *id)
	if err != nil {
		b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
		return
	}
	b.log.Info("customer logged in", "subject", id.Subject)
	b.setCookie(w, sessionCookie, token, 0)
	b.redirect(w, r, "account")
}

// idClaims are the ID token's claims the bank uses.
type idClaims struct {
	Nonce      string `json:"nonce"`
	Name       string `json:"name"`
	GivenName  string `json:"given_name"`
	FamilyName string `json:"family_name"`
	Phone      string `json:"phone_number"`
	NationalID string `json:"national_id"`
	Country    string `json:"national_id_country"`
}

// exchange trades the code for the tokens and returns the identity the
// verified ID token names.
func (b *Bank) exchange(ctx context.Context, code string, l *login) (*identity, error) {
	if code == "" {
		return nil, errors.New("exchange code: no code")
	}
	p, err := b.provider(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, b.http), httpTimeout)
	defer cancel()
	tok, err := b.oauth(p).Exchange(ctx, code, oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("exchange code: no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: b.cfg.ClientID, Now: b.now}).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("verify ID token: %w", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("read ID token claims: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(l.Nonce)) != 1 {
		return nil, errors.New("verify ID token: nonce does not match the login")
	}
	if c.Name == "" {
		c.Name = strings.TrimSpace(c.GivenName + " " + c.FamilyName)
	}
	// The bank signs payments with the phone number and national ID of
	// the person: without them it cannot serve the customer.
	if idt.Subject == "" || c.Name == "" || c.Phone == "" || c.NationalID == "" || c.Country == "" {
		return nil, errors.New("verify ID token: the name, phone_number or national_id claims are missing")
	}
	return &identity{Subject: idt.Subject, Name: c.Name, GivenName: c.GivenName, FamilyName: c.FamilyName,
		Phone: c.Phone, NationalID: c.NationalID, Country: c.Country}, nil
}
