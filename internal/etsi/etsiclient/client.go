// Package etsiclient is a SOAP 1.2 client for the ETSI TS 102 204 interface
// of an MSSP, as an application provider uses it, plus the MSSP's side of
// the MSS_Notification callback.
//
// It lives apart from package etsi so that the codec stays free of network
// I/O.
package etsiclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"mobileid/internal/etsi"
)

// ContentType is the media type of SOAP 1.2 requests.
const ContentType = "application/soap+xml; charset=utf-8"

// Client calls an MSSP's SOAP endpoints. The zero value is not usable:
// BaseURL must be set. A Client is safe for concurrent use.
type Client struct {
	// BaseURL is the MSSP's scheme, host and optional path prefix, e.g.
	// "https://mssp.example.com:8443". Requests go to BaseURL +
	// "/soap/services/<Port>", as in the MSSP's WSDL.
	BaseURL string
	// HTTP sends the requests; nil means http.DefaultClient. MSSPs
	// authenticate APs with TLS client certificates, which are configured
	// in its Transport.
	HTTP *http.Client
	// MaxBody limits the size of a response; 0 means etsi.DefaultMaxBody.
	MaxBody int64
}

// Sign sends an MSS_SignatureReq to MSS_SignaturePort.
func (c *Client) Sign(ctx context.Context, req *etsi.MSSSignatureReq) (*etsi.MSSSignatureResp, error) {
	return call[*etsi.MSSSignatureResp](ctx, c, "MSS_SignaturePort", req)
}

// Status sends an MSS_StatusReq to MSS_StatusQueryPort.
func (c *Client) Status(ctx context.Context, req *etsi.MSSStatusReq) (*etsi.MSSStatusResp, error) {
	return call[*etsi.MSSStatusResp](ctx, c, "MSS_StatusQueryPort", req)
}

// Receipt sends an MSS_ReceiptReq to MSS_ReceiptPort.
func (c *Client) Receipt(ctx context.Context, req *etsi.MSSReceiptReq) (*etsi.MSSReceiptResp, error) {
	return call[*etsi.MSSReceiptResp](ctx, c, "MSS_ReceiptPort", req)
}

// Profile sends an MSS_ProfileReq to MSS_ProfilePort.
func (c *Client) Profile(ctx context.Context, req *etsi.MSSProfileReq) (*etsi.MSSProfileResp, error) {
	return call[*etsi.MSSProfileResp](ctx, c, "MSS_ProfilePort", req)
}

// Registration sends an MSS_RegistrationReq to MSS_RegistrationPort.
func (c *Client) Registration(ctx context.Context, req *etsi.MSSRegistrationReq) (*etsi.MSSRegistrationResp, error) {
	return call[*etsi.MSSRegistrationResp](ctx, c, "MSS_RegistrationPort", req)
}

// Notify is the MSSP side of asynchServerServer mode: it posts n as an
// MSS_Notification to apURL (the request's AP_URL, used as is; BaseURL
// plays no part) and returns the MSS_ReceiptReq the AP answers with.
func (c *Client) Notify(ctx context.Context, apURL string, n *etsi.MSSStatusResp) (*etsi.MSSReceiptReq, error) {
	var body bytes.Buffer
	if err := etsi.EncodeNotification(&body, n); err != nil {
		return nil, fmt.Errorf("etsiclient: encoding notification: %w", err)
	}
	v, err := c.post(ctx, apURL, body.Bytes(), func(r io.Reader, max int64) (any, error) {
		return etsi.DecodeNotificationResponse(r, max)
	})
	if err != nil {
		return nil, err
	}
	return v.(*etsi.MSSReceiptReq), nil
}

func call[T any](ctx context.Context, c *Client, port string, req any) (T, error) {
	var zero T
	var body bytes.Buffer
	if err := etsi.EncodeRequest(&body, req); err != nil {
		return zero, fmt.Errorf("etsiclient: encoding request: %w", err)
	}
	url := strings.TrimSuffix(c.BaseURL, "/") + "/soap/services/" + port
	v, err := c.post(ctx, url, body.Bytes(), etsi.DecodeResponse)
	if err != nil {
		return zero, err
	}
	resp, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("etsiclient: %s answered with %T, want %T", port, v, zero)
	}
	return resp, nil
}

// post sends a SOAP body to url and decodes the answer. A SOAP fault is
// returned as the MSSP's *etsi.Fault, whatever the HTTP status (MSSPs use
// 500, some 200).
func (c *Client) post(ctx context.Context, url string, body []byte, decode func(io.Reader, int64) (any, error)) (any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("etsiclient: creating request: %w", err)
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("Accept", "application/soap+xml, text/xml")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("etsiclient: posting to %s: %w", url, err)
	}
	defer resp.Body.Close()
	max := c.MaxBody
	if max <= 0 {
		max = etsi.DefaultMaxBody
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("etsiclient: reading response from %s: %w", url, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("etsiclient: response from %s exceeds %d bytes", url, max)
	}
	if f, err := etsi.DecodeFault(bytes.NewReader(data), max); err == nil {
		return nil, f
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("etsiclient: %s answered %s", url, resp.Status)
	}
	v, err := decode(bytes.NewReader(data), max)
	if err != nil {
		// The codec reports a bad answer as a *Fault; it is flattened to
		// text so that errors.As finds a *Fault only when the MSSP sent one.
		return nil, fmt.Errorf("etsiclient: invalid response from %s: %v", url, err)
	}
	return v, nil
}
