package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"mobileid/internal/etsi"
)

// driver runs transactions of one kind against a stack.
type driver interface {
	// do runs one complete transaction for phone p and returns "" when it
	// succeeded, or the class of its failure for the report: "ETSI 208
	// EXPIRED_TRANSACTION", "MID TIMEOUT", "OAuth access_denied",
	// "transport: timeout", ….
	do(ctx context.Context, p phone) string
}

// Texts the transactions carry.
const (
	signText    = "Pay 12.50 EUR to ACME, invoice 2026-1208"
	displayText = "Log in to the bench"
)

// newDriver returns the driver of mode.
func newDriver(mode Mode, st *stack, cfg *Config) (driver, error) {
	switch mode {
	case ModeETSISynch, ModeETSIAsync:
		d := &etsiDriver{st: st, async: mode == ModeETSIAsync, poll: cfg.Poll, timeOut: int(cfg.TimeOut / time.Second),
			format: etsi.FormatFiComPKCS1, sigLen: 64, prefix: "B" + randomHex(4) + "-"}
		if cfg.Format == FormatCMS {
			d.format = etsi.FormatCMS
		}
		if cfg.Key == KeyRSA {
			d.sigLen = 256
		}
		return d, nil
	case ModeMID:
		return &midDriver{st: st}, nil
	case ModeCIBA:
		return &cibaDriver{st: st}, nil
	}
	return nil, fmt.Errorf("unknown mode %q", mode)
}

// etsiDriver is an AP sending MSS_Signature requests for a text, with the
// signing profile, in synch mode or in asynchClientServer mode followed
// by MSS_StatusQuery every poll.
type etsiDriver struct {
	st      *stack
	async   bool
	poll    time.Duration
	timeOut int // seconds
	format  string
	sigLen  int // the length of a PKCS1 signature value with the bench's key type
	prefix  string
	seq     atomic.Int64
}

// abstract is a request's header with a new AP_TransID.
func (d *etsiDriver) abstract() etsi.MessageAbstract {
	return etsi.MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo: etsi.APInfo{APID: d.st.apID, APPWD: d.st.apPWD, APTransID: d.prefix + strconv.FormatInt(d.seq.Add(1), 10),
			Instant: time.Now().UTC().Truncate(time.Second)},
		MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: "http://mobileid.dev/mssp"}},
	}
}

// request is an MSS_SignatureReq for msisdn in mode.
func (d *etsiDriver) request(msisdn string, mode etsi.MessagingMode, timeOut int) *etsi.MSSSignatureReq {
	return &etsi.MSSSignatureReq{
		MessageAbstract:  d.abstract(),
		MessagingMode:    mode,
		TimeOut:          timeOut,
		MobileUser:       etsi.MobileUser{MSISDN: msisdn},
		DataToBeSigned:   etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: signText},
		SignatureProfile: &etsi.MSSURI{URI: "mss:mobileid.dev:sign:loa3:UICC"},
		MSSFormat:        &etsi.MSSURI{URI: d.format},
	}
}

func (d *etsiDriver) do(ctx context.Context, p phone) string {
	if !d.async {
		resp, err := d.st.etsi.Sign(ctx, d.request(p.MSISDN, etsi.Synch, d.timeOut))
		if err != nil {
			return etsiErr(err)
		}
		return d.outcome(resp.Status, resp.MSSSignature)
	}
	resp, err := d.st.etsi.Sign(ctx, d.request(p.MSISDN, etsi.AsynchClientServer, d.timeOut))
	if err != nil {
		return etsiErr(err)
	}
	if c := resp.Status.StatusCode.Value; c != etsi.CodeRequestOK {
		return "ETSI " + c.String()
	}
	st, sig, err := d.wait(ctx, resp.MSSPTransID)
	if err != nil {
		return etsiErr(err)
	}
	return d.outcome(st, sig)
}

// wait polls MSS_StatusQuery until the transaction has ended.
func (d *etsiDriver) wait(ctx context.Context, id string) (etsi.Status, *etsi.Signature, error) {
	for {
		timer := time.NewTimer(d.poll)
		select {
		case <-ctx.Done():
			timer.Stop()
			return etsi.Status{}, nil, ctx.Err()
		case <-timer.C:
		}
		st, sig, err := d.status(ctx, id)
		if err != nil {
			return st, nil, err
		}
		if st.StatusCode.Value != etsi.CodeOutstandingTransaction {
			return st, sig, nil
		}
	}
}

// status asks once for the state of transaction id; an outstanding one
// answers 504, as a status or as a fault.
func (d *etsiDriver) status(ctx context.Context, id string) (etsi.Status, *etsi.Signature, error) {
	resp, err := d.st.etsi.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: d.abstract(), MSSPTransID: id})
	var f *etsi.Fault
	if errors.As(err, &f) && f.Code == etsi.CodeOutstandingTransaction {
		return etsi.NewStatus(f.Code), nil, nil
	}
	if err != nil {
		return etsi.Status{}, nil, err
	}
	return resp.Status, resp.MSSSignature, nil
}

// outcome checks a final status: a signature of the bench's key type in
// the requested format.
func (d *etsiDriver) outcome(st etsi.Status, sig *etsi.Signature) string {
	switch c := st.StatusCode.Value; {
	case c != etsi.CodeValidSignature && c != etsi.CodeSignature:
		return "ETSI " + c.String()
	case sig == nil:
		return "bench: no signature in the answer"
	case d.format == etsi.FormatCMS:
		if len(sig.Base64Signature) == 0 {
			return "bench: no CMS signature in the answer"
		}
	case sig.PKCS1 == nil:
		return "bench: no PKCS1 signature in the answer"
	case len(sig.PKCS1.SignatureValue) != d.sigLen:
		return fmt.Sprintf("bench: signature of %d bytes, want %d for the key type", len(sig.PKCS1.SignatureValue), d.sigLen)
	}
	return ""
}

// etsiErr classifies an error of an ETSI call: the MSSP's fault, or a
// transport failure.
func etsiErr(err error) string {
	var f *etsi.Fault
	if errors.As(err, &f) {
		return "ETSI " + f.Code.String()
	}
	return transportErr(err)
}

// transportErr classifies a failure below the API: the report counts
// classes, not messages, so that their number stays small.
func transportErr(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "transport: cancelled at the end of the run"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "transport: timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "transport: connection closed"
	case strings.Contains(err.Error(), "connection refused"):
		return "transport: connection refused"
	case strings.Contains(err.Error(), "connection reset"):
		return "transport: connection reset"
	}
	return "transport: other"
}

// midDriver is a relying party of the MID REST API (the demo bank): POST
// /authentication, then long polls of the session until it completes.
type midDriver struct{ st *stack }

func (d *midDriver) do(ctx context.Context, p phone) string {
	hash := make([]byte, 32)
	rand.Read(hash)
	body, _ := json.Marshal(map[string]string{
		"relyingPartyUUID": d.st.rpUUID, "relyingPartyName": bankName,
		"phoneNumber": p.MSISDN, "nationalIdentityNumber": p.NationalID,
		"hash": base64.StdEncoding.EncodeToString(hash), "hashType": "SHA256", "language": "ENG", "displayText": displayText,
	})
	var started struct {
		SessionID string `json:"sessionID"`
	}
	if status := d.call(ctx, http.MethodPost, d.st.urls.MIDAPI+"/authentication", body, &started); status != "" {
		return status
	}
	for {
		var s struct {
			State  string `json:"state"`
			Result string `json:"result"`
		}
		if status := d.call(ctx, http.MethodGet, d.st.urls.MIDAPI+"/authentication/session/"+started.SessionID+"?timeoutMs=120000", nil, &s); status != "" {
			return status
		}
		if s.State == "RUNNING" {
			continue
		}
		if s.Result != "OK" {
			return "MID " + s.Result
		}
		return ""
	}
}

// call sends a MID request and decodes its 200 answer.
func (d *midDriver) call(ctx context.Context, method, u string, body []byte, out any) string {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return "bench: " + err.Error()
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.st.http.Do(req)
	if err != nil {
		return transportErr(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return transportErr(err)
	}
	if resp.StatusCode != http.StatusOK {
		return "MID HTTP " + strconv.Itoa(resp.StatusCode)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return "MID: answer is not JSON"
	}
	return ""
}

// cibaDriver is the demo bank's OpenID Connect client in CIBA poll mode:
// POST /bc-authorize, then token requests every interval, as the answer
// says (2 s), growing by 5 s at each slow_down.
type cibaDriver struct{ st *stack }

// cibaGrant is the grant type of CIBA token requests.
const cibaGrant = "urn:openid:params:grant-type:ciba"

func (d *cibaDriver) do(ctx context.Context, p phone) string {
	var auth struct {
		AuthReqID string `json:"auth_req_id"`
		Interval  int    `json:"interval"`
	}
	sent := time.Now()
	if status, _ := d.post(ctx, "/bc-authorize", url.Values{
		"scope": {"openid"}, "login_hint": {p.MSISDN}, "binding_message": {displayText},
	}, &auth); status != "" {
		return status
	}
	interval := time.Duration(max(auth.Interval, 1)) * time.Second
	// The first poll counts from the backchannel request.
	next := sent.Add(interval)
	for {
		timer := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			timer.Stop()
			return transportErr(ctx.Err())
		case <-timer.C:
		}
		var tok struct {
			IDToken string `json:"id_token"`
		}
		status, oauthErr := d.post(ctx, "/oauth/token", url.Values{"grant_type": {cibaGrant}, "auth_req_id": {auth.AuthReqID}}, &tok)
		switch {
		case oauthErr == "authorization_pending":
		case oauthErr == "slow_down":
			interval += 5 * time.Second
		case status != "":
			return status
		case tok.IDToken == "":
			return "OAuth: no id_token"
		default:
			return ""
		}
		next = time.Now().Add(interval)
	}
}

// post sends a form with the client's credentials (client_secret_post)
// and decodes a 200 answer into out. For an OAuth error it returns the
// report's status and the error code.
func (d *cibaDriver) post(ctx context.Context, path string, form url.Values, out any) (status, oauthErr string) {
	form.Set("client_id", bankClientID)
	form.Set("client_secret", d.st.rpUUID)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.st.urls.Issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return "bench: " + err.Error(), ""
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := d.st.http.Do(req)
	if err != nil {
		return transportErr(err), ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return transportErr(err), ""
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return "OAuth HTTP " + strconv.Itoa(resp.StatusCode), ""
		}
		return "OAuth " + e.Error, e.Error
	}
	if err := json.Unmarshal(b, out); err != nil {
		return "OAuth: answer is not JSON", ""
	}
	return "", ""
}
