package ca

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes bounds an answer Client reads: a list of 1000
// certificates is about 3 MiB.
const maxResponseBytes = 16 << 20

// Client is an Issuer that calls the internal HTTP API of a CA in another
// process (see Handler). Its errors are those of the in-process CA:
// errors.Is finds ErrNotFound, ErrAlreadyRevoked, ErrAlreadyOnHold,
// ErrNotOnHold, ErrBadReason, ErrFutureRevocation and ErrRefused, and
// errors.As a *RefusalError with the CA's code and reason. Any other
// failure, including one the CA reports as an internal error, is
// another error. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the CA's internal address, e.g. "http://127.0.0.1:8083";
	// the endpoint paths are appended to it.
	BaseURL string
	// HTTP makes the requests; nil means http.DefaultClient.
	HTTP *http.Client
}

var _ Issuer = (*Client)(nil)

// Issue implements Issuer with POST /ca/issue.
func (c *Client) Issue(ctx context.Context, req *IssueRequest) (*Certificate, error) {
	var resp IssueResponse
	if err := c.call(ctx, http.MethodPost, "/ca/issue", req, &resp); err != nil {
		return nil, wrap("issue certificate", err)
	}
	cert, err := resp.certificate()
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return cert, nil
}

// Revoke implements Issuer with POST /ca/revoke.
func (c *Client) Revoke(ctx context.Context, serial *big.Int, reason int, at time.Time) error {
	key, ok := apiSerial(serial)
	if !ok {
		return fmt.Errorf("revoke certificate: %w", ErrNotFound)
	}
	var resp StatusResponse
	if err := c.call(ctx, http.MethodPost, "/ca/revoke", RevokeRequest{Serial: key, Reason: &reason, At: at}, &resp); err != nil {
		return wrap("revoke certificate "+key, err)
	}
	return nil
}

// Release implements Issuer with POST /ca/release.
func (c *Client) Release(ctx context.Context, serial *big.Int) error {
	key, ok := apiSerial(serial)
	if !ok {
		return fmt.Errorf("release certificate: %w", ErrNotFound)
	}
	var resp StatusResponse
	if err := c.call(ctx, http.MethodPost, "/ca/release", ReleaseRequest{Serial: key}, &resp); err != nil {
		return wrap("release certificate "+key, err)
	}
	return nil
}

// Get implements Issuer with GET /ca/certificates/{serial}.
func (c *Client) Get(ctx context.Context, serial *big.Int) (*Certificate, error) {
	key, ok := apiSerial(serial)
	if !ok {
		return nil, ErrNotFound
	}
	var resp CertificateJSON
	if err := c.call(ctx, http.MethodGet, "/ca/certificates/"+key, nil, &resp); err != nil {
		return nil, wrap("get certificate "+key, err)
	}
	cert, err := resp.certificate()
	if err != nil {
		return nil, fmt.Errorf("get certificate: %w", err)
	}
	return cert, nil
}

// List implements Issuer with GET /ca/certificates. Unlike the in-process
// CA, the API refuses a Profile or Status that no certificate can have
// instead of finding nothing.
func (c *Client) List(ctx context.Context, f ListFilter) ([]*Certificate, error) {
	q := url.Values{}
	for k, v := range map[string]string{
		"country": f.Country, "national_id": f.NationalID, "iccid": f.ICCID,
		"profile": string(f.Profile), "status": string(f.Status),
	} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	path := "/ca/certificates"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var resp ListResponse
	if err := c.call(ctx, http.MethodGet, path, nil, &resp); err != nil {
		return nil, wrap("list certificates", err)
	}
	out := make([]*Certificate, 0, len(resp.Certificates))
	for i := range resp.Certificates {
		cert, err := resp.Certificates[i].certificate()
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		out = append(out, cert)
	}
	return out, nil
}

// apiSerial is serial as the API writes it, or false for one the CA
// cannot have issued (and the API would reject as malformed).
func apiSerial(serial *big.Int) (string, bool) {
	if serial == nil || serial.Sign() <= 0 || serial.BitLen() > 4*maxSerialDigits {
		return "", false
	}
	return serialKey(serial), true
}

// call makes one request, with in as its JSON body unless it is nil, and
// decodes a 200 answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, req.URL.Path, err)
	}
	if len(b) > maxResponseBytes {
		return fmt.Errorf("answer of %s %s larger than %d bytes", method, req.URL.Path, maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return responseError(method, req.URL.Path, resp, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode answer of %s %s: %w", method, req.URL.Path, err)
	}
	return nil
}

// responseError turns an error answer back into the error the CA
// returned. Only a JSON body with a known code counts: a 404 from
// something that is not the CA's API, such as a proxy or a wrong BaseURL,
// must not read as ErrNotFound.
func responseError(method, path string, resp *http.Response, body []byte) error {
	var e errorBody
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		if json.Unmarshal(body, &e) != nil {
			e = errorBody{}
		}
	}
	if e.Code != "" {
		if resp.StatusCode == http.StatusUnprocessableEntity {
			return &RefusalError{Code: RefusalCode(e.Code), Reason: e.Error}
		}
		for _, le := range lifecycleErrors {
			if le.code == e.Code && le.status == resp.StatusCode {
				return &remoteError{msg: e.Error, err: le.err}
			}
		}
	}
	msg := e.Error
	if msg == "" {
		msg = strings.TrimSpace(string(body[:min(len(body), 200)]))
	}
	return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
}

// remoteError is one of the package's errors as the CA reported it: its
// message is the CA's, and it wraps the error it stands for.
type remoteError struct {
	msg string
	err error
}

func (e *remoteError) Error() string {
	if e.msg == "" {
		return e.err.Error()
	}
	return e.msg
}

func (e *remoteError) Unwrap() error { return e.err }

// wrap prefixes err with op, unless it is the CA's own error, whose
// message already says what failed, as the in-process CA's does.
func wrap(op string, err error) error {
	var remote *remoteError
	var refusal *RefusalError
	if errors.As(err, &remote) || errors.As(err, &refusal) {
		return err
	}
	return fmt.Errorf("%s: %w", op, err)
}
