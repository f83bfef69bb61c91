package bank

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// midClient speaks the MID REST API v5 as a relying party, as any bank's
// client library would: JSON over HTTP, the RP's UUID and name in each
// start request.
type midClient struct {
	base string // ends before "/certificate", e.g. https://id.example/mid-api
	uuid string
	name string
	http *http.Client
}

// Errors of midClient, besides transport and decoding errors.
var (
	// errSessionNotFound is the 404 of a session status: unknown, or
	// older than the ID Server keeps sessions (5 minutes).
	errSessionNotFound = errors.New("mid: session not found")
	// errMIDInternal is a 500: the session ended with an error of the
	// service, and the customer must start again.
	errMIDInternal = errors.New("mid: internal error of the service")
)

// midError is an answer other than 200 to a request.
type midError struct {
	Status  int
	Message string
}

func (e *midError) Error() string {
	return fmt.Sprintf("mid: HTTP %d: %s", e.Status, e.Message)
}

// maxMIDAnswer bounds what the client reads of an answer: a certificate
// and a signature are a few kilobytes.
const maxMIDAnswer = 1 << 20

// call sends body (nil for GET) as JSON and decodes the JSON answer into
// out.
func (c *midClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("make request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("mid: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxMIDAnswer))
	if err != nil {
		return fmt.Errorf("mid: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(data, &e)
		return &midError{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("mid: decode answer: %w", err)
	}
	return nil
}

// certificate asks for the signing certificate of the person with the
// phone number and national ID. The result is OK with the certificate,
// or NOT_FOUND or NOT_ACTIVE without.
func (c *midClient) certificate(ctx context.Context, phone, nationalID string) (string, *x509.Certificate, error) {
	var out struct {
		Result string `json:"result"`
		Cert   string `json:"cert"`
	}
	err := c.call(ctx, http.MethodPost, "/certificate", map[string]string{
		"relyingPartyUUID": c.uuid, "relyingPartyName": c.name,
		"phoneNumber": phone, "nationalIdentityNumber": nationalID,
	}, &out)
	if err != nil {
		return "", nil, err
	}
	if out.Result != "OK" {
		return out.Result, nil, nil
	}
	der, err := base64.StdEncoding.DecodeString(out.Cert)
	if err != nil {
		return "", nil, fmt.Errorf("mid: decode certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", nil, fmt.Errorf("mid: parse certificate: %w", err)
	}
	return out.Result, cert, nil
}

// startSignature starts a signature session over a SHA-256 hash with the
// signing key (PIN2) and returns its ID.
func (c *midClient) startSignature(ctx context.Context, phone, nationalID string, hash []byte, text string) (string, error) {
	var out struct {
		SessionID string `json:"sessionID"`
	}
	err := c.call(ctx, http.MethodPost, "/signature", map[string]string{
		"relyingPartyUUID": c.uuid, "relyingPartyName": c.name,
		"phoneNumber": phone, "nationalIdentityNumber": nationalID,
		"hash": base64.StdEncoding.EncodeToString(hash), "hashType": "SHA256",
		"language": "ENG", "displayText": text, "displayTextFormat": "GSM-7",
	}, &out)
	if err != nil {
		return "", err
	}
	if out.SessionID == "" {
		return "", errors.New("mid: start signature: no sessionID in the answer")
	}
	return out.SessionID, nil
}

// sessionStatus is a signature session's status.
type sessionStatus struct {
	State     string `json:"state"`  // RUNNING or COMPLETE
	Result    string `json:"result"` // OK, USER_CANCELLED, TIMEOUT, …
	Signature struct {
		Value     string `json:"value"`
		Algorithm string `json:"algorithm"`
	} `json:"signature"`
}

// signatureStatus long-polls a signature session: the ID Server answers
// when the session ends or after wait.
func (c *midClient) signatureStatus(ctx context.Context, id string, wait time.Duration) (*sessionStatus, error) {
	// MID advises a client time-out of the long poll plus 1.5 s.
	ctx, cancel := context.WithTimeout(ctx, wait+1500*time.Millisecond)
	defer cancel()
	var out sessionStatus
	err := c.call(ctx, http.MethodGet, "/signature/session/"+url.PathEscape(id)+"?timeoutMs="+strconv.FormatInt(wait.Milliseconds(), 10), nil, &out)
	var me *midError
	switch {
	case errors.As(err, &me) && me.Status == http.StatusNotFound:
		return nil, errSessionNotFound
	case errors.As(err, &me) && me.Status == http.StatusInternalServerError:
		return nil, errMIDInternal
	case err != nil:
		return nil, err
	}
	return &out, nil
}
