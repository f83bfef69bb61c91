package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MaxIssueRequestBytes bounds the body of POST /ca/issue; a request with
// an RSA-2048 key and an attestation is under 4 KiB. The other internal
// POST endpoints take the same limit.
const MaxIssueRequestBytes = 64 << 10

// maxSerialDigits bounds a serial number in the API: RFC 5280 §4.1.2.2
// allows at most 20 octets.
const maxSerialDigits = 40

// CertificateJSON is a Certificate as the internal HTTP API carries it: the
// body of a successful POST /ca/issue and of GET /ca/certificates/{serial},
// and the elements of GET /ca/certificates. Times are RFC 3339 in UTC.
type CertificateJSON struct {
	Serial     string  `json:"serial"` // lower-case hex without leading zeros
	Profile    Profile `json:"profile"`
	SubjectCN  string  `json:"subject_cn"`
	Country    string  `json:"country"`
	NationalID string  `json:"national_id"`
	ICCID      string  `json:"iccid"`
	// Certificate is the DER certificate, base64 in JSON.
	Certificate []byte    `json:"certificate"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	IssuedAt    time.Time `json:"issued_at"`
	Status      Status    `json:"status"`
	// RevokedAt and InvalidSince are absent while they are zero (see
	// Certificate).
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	InvalidSince time.Time `json:"invalid_since,omitzero"`
	// Reason is the RFC 5280 reason code. It is absent while the
	// certificate is good, because 0 is a reason of its own
	// (unspecified).
	Reason *int `json:"reason,omitempty"`
}

// IssueResponse is the body of a successful POST /ca/issue: the new
// certificate.
type IssueResponse = CertificateJSON

// newCertificateJSON is the wire form of c.
func newCertificateJSON(c *Certificate) CertificateJSON {
	j := CertificateJSON{
		Serial:       serialKey(c.Serial),
		Profile:      c.Profile,
		SubjectCN:    c.SubjectCN,
		Country:      c.Country,
		NationalID:   c.NationalID,
		ICCID:        c.ICCID,
		Certificate:  c.DER,
		NotBefore:    c.NotBefore.UTC(),
		NotAfter:     c.NotAfter.UTC(),
		IssuedAt:     c.IssuedAt.UTC(),
		Status:       c.Status,
		RevokedAt:    c.RevokedAt.UTC(),
		InvalidSince: c.InvalidSince.UTC(),
	}
	if c.Status != StatusGood {
		j.Reason = &c.Reason
	}
	return j
}

// certificate is the Certificate that j describes.
func (j *CertificateJSON) certificate() (*Certificate, error) {
	serial, err := parseSerial(j.Serial)
	if err != nil {
		return nil, err
	}
	c := &Certificate{
		Serial:       serial,
		Profile:      j.Profile,
		SubjectCN:    j.SubjectCN,
		Country:      j.Country,
		NationalID:   j.NationalID,
		ICCID:        j.ICCID,
		DER:          j.Certificate,
		NotBefore:    j.NotBefore,
		NotAfter:     j.NotAfter,
		IssuedAt:     j.IssuedAt,
		Status:       j.Status,
		RevokedAt:    j.RevokedAt,
		InvalidSince: j.InvalidSince,
	}
	if j.Reason != nil {
		c.Reason = *j.Reason
	}
	return c, nil
}

// RevokeRequest is the body of POST /ca/revoke (see Issuer.Revoke).
type RevokeRequest struct {
	Serial string `json:"serial"` // lower-case hex without leading zeros
	// Reason is the RFC 5280 reason code. It is required: a revocation
	// cannot be undone, so a forgotten reason must not become
	// unspecified (0).
	Reason *int `json:"reason"`
	// At is when the certificate became invalid; absent means now.
	At time.Time `json:"at,omitzero"`
}

// ReleaseRequest is the body of POST /ca/release (see Issuer.Release).
type ReleaseRequest struct {
	Serial string `json:"serial"` // lower-case hex without leading zeros
}

// StatusResponse is the body of a successful POST /ca/revoke, where
// Status is "revoked" or "hold", and of POST /ca/release, where it is
// "good".
type StatusResponse struct {
	Status string `json:"status"`
}

// ListResponse is the body of GET /ca/certificates, newest first.
type ListResponse struct {
	Certificates []CertificateJSON `json:"certificates"`
}

// errorBody is the body of every error answer of the internal endpoints.
// Code is a RefusalCode on 422, and on 400, 404 and 409 one of the codes
// of lifecycleErrors when the CA returned one of its errors; it is absent
// for malformed requests.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code,omitempty"`
}

// lifecycleErrors are the package errors the API carries as codes, so that
// Client can return them to its callers as the in-process CA would. The
// codes are stable.
var lifecycleErrors = []struct {
	err    error
	status int
	code   string
}{
	{ErrNotFound, http.StatusNotFound, "not_found"},
	{ErrAlreadyRevoked, http.StatusConflict, "already_revoked"},
	{ErrAlreadyOnHold, http.StatusConflict, "already_on_hold"},
	{ErrNotOnHold, http.StatusConflict, "not_on_hold"},
	{ErrBadReason, http.StatusBadRequest, "bad_reason"},
	{ErrFutureRevocation, http.StatusBadRequest, "future_revocation"},
}

// Handler serves the CA's HTTP endpoints:
//
//	POST /ca/issue                  issuance (JSON), internal
//	POST /ca/revoke                 revocation and hold (JSON), internal
//	POST /ca/release                end of a hold (JSON), internal
//	GET  /ca/certificates/{serial}  one certificate (JSON), internal
//	GET  /ca/certificates           certificates by filter (JSON), internal
//	GET  /ca/issuing.crt            issuing CA certificate, DER, application/pkix-cert
//	GET  /ca/root.crt               root CA certificate, DER, application/pkix-cert
//	GET  /crl/issuing.crl           newest CRL, DER, application/pkix-crl
//
// The internal endpoints sign and revoke whatever a caller vouches for, so
// they must be reachable only by the registration server: serve Handler
// on a loopback or otherwise private listener (mutual TLS is the plan for
// multi-host set-ups) and PublicHandler on the public one. Client calls
// them.
//
// The POST endpoints take JSON (Content-Type application/json, at most
// MaxIssueRequestBytes, unknown fields rejected): an IssueRequest, a
// RevokeRequest or a ReleaseRequest. Serial numbers are lower-case hex
// without leading zeros, as the answers write them. POST /ca/issue answers
// 200 with an IssueResponse, the others 200 with a StatusResponse. GET
// /ca/certificates/{serial} answers a CertificateJSON; GET
// /ca/certificates takes the query parameters country, national_id,
// iccid, profile, status and limit (see ListFilter; others are rejected,
// so that a misspelt filter cannot list everything) and answers a
// ListResponse.
//
// Errors are JSON, {"error": message} with a "code" where one applies:
// 400 for a malformed request or serial number, 413 for a body that is too
// large, 415 for another content type, 422 with a RefusalCode for a
// refused issuance, 404 "not_found" for an unknown serial number, 409
// "already_revoked", "already_on_hold" or "not_on_hold" for a revocation
// or release the certificate's status does not allow, 400 "bad_reason" or
// "future_revocation" for a revocation reason or time the CA does not
// accept, and 500 {"error": "internal error"} when the CA fails. A request
// answered with an error changes nothing.
func (c *CA) Handler() http.Handler {
	mux := http.NewServeMux()
	c.publicRoutes(mux)
	mux.HandleFunc("POST /ca/issue", c.serveIssue)
	mux.HandleFunc("POST /ca/revoke", c.serveRevoke)
	mux.HandleFunc("POST /ca/release", c.serveRelease)
	mux.HandleFunc("GET /ca/certificates/{serial}", c.serveGet)
	mux.HandleFunc("GET /ca/certificates", c.serveList)
	return mux
}

// PublicHandler serves only the endpoints relying parties need: the CA
// certificates and the CRL (see Handler).
func (c *CA) PublicHandler() http.Handler {
	mux := http.NewServeMux()
	c.publicRoutes(mux)
	return mux
}

func (c *CA) publicRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ca/issuing.crt", c.serveCert(c.keys.Issuing))
	mux.HandleFunc("GET /ca/root.crt", c.serveCert(c.keys.Root))
	mux.HandleFunc("GET /crl/issuing.crl", c.serveCRL)
}

func (c *CA) serveCert(cert *x509.Certificate) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-cert")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		http.ServeContent(w, r, "", cert.NotBefore, bytes.NewReader(cert.Raw))
	}
}

func (c *CA) serveCRL(w http.ResponseWriter, r *http.Request) {
	crl, err := c.LatestCRL(r.Context())
	if err != nil {
		c.log.Error("cannot serve CRL", "err", err)
		http.Error(w, "CRL unavailable", http.StatusServiceUnavailable)
		return
	}
	// Caches may keep it until nextUpdate, as relying parties do anyway;
	// a new CRL with a revocation is fetched by whoever asks after that.
	maxAge := max(0, int64(math.Ceil(crl.NextUpdate.Sub(c.now()).Seconds())))
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(maxAge, 10))
	h.Set("Expires", crl.NextUpdate.UTC().Format(http.TimeFormat))
	h.Set("ETag", fmt.Sprintf(`"crl-%d"`, crl.Number))
	http.ServeContent(w, r, "", crl.ThisUpdate, bytes.NewReader(crl.DER))
}

func (c *CA) serveIssue(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	req, err := decodeIssueRequest(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	cert, err := c.Issue(r.Context(), req)
	var refusal *RefusalError
	switch {
	case errors.As(err, &refusal):
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: refusal.Reason, Code: string(refusal.Code)})
		return
	case err != nil:
		c.log.Error("issuance failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, newCertificateJSON(cert))
}

func (c *CA) serveRevoke(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req RevokeRequest
	if err := decodeStrict(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	serial, err := parseSerial(req.Serial)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	if req.Reason == nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "malformed request: no reason"})
		return
	}
	if err := c.Revoke(r.Context(), serial, *req.Reason, req.At); err != nil {
		c.writeError(w, "revocation failed", err)
		return
	}
	status := string(StatusRevoked)
	if *req.Reason == ReasonCertificateHold {
		status = "hold"
	}
	writeJSON(w, http.StatusOK, StatusResponse{Status: status})
}

func (c *CA) serveRelease(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req ReleaseRequest
	if err := decodeStrict(body, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	serial, err := parseSerial(req.Serial)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	if err := c.Release(r.Context(), serial); err != nil {
		c.writeError(w, "release failed", err)
		return
	}
	writeJSON(w, http.StatusOK, StatusResponse{Status: string(StatusGood)})
}

func (c *CA) serveGet(w http.ResponseWriter, r *http.Request) {
	serial, err := parseSerial(r.PathValue("serial"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	cert, err := c.Get(r.Context(), serial)
	if err != nil {
		c.writeError(w, "certificate lookup failed", err)
		return
	}
	writeJSON(w, http.StatusOK, newCertificateJSON(cert))
}

func (c *CA) serveList(w http.ResponseWriter, r *http.Request) {
	f, err := parseListQuery(r.URL.RawQuery)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: err.Error()})
		return
	}
	certs, err := c.List(r.Context(), f)
	if err != nil {
		c.writeError(w, "certificate listing failed", err)
		return
	}
	// Never null: "no certificates" is an empty list.
	resp := ListResponse{Certificates: make([]CertificateJSON, 0, len(certs))}
	for _, cert := range certs {
		resp.Certificates = append(resp.Certificates, newCertificateJSON(cert))
	}
	writeJSON(w, http.StatusOK, resp)
}

// parseListQuery reads the query of GET /ca/certificates. Unknown or
// repeated parameters and values that no certificate can have are errors
// rather than ignored, because a filter that is silently dropped lists
// more than the caller asked for.
func parseListQuery(raw string) (ListFilter, error) {
	var f ListFilter
	q, err := url.ParseQuery(raw)
	if err != nil {
		return f, fmt.Errorf("malformed query: %v", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return f, fmt.Errorf("malformed query: parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "country":
			f.Country = v
		case "national_id":
			f.NationalID = v
		case "iccid":
			f.ICCID = v
		case "profile":
			switch p := Profile(v); p {
			case "", ProfileAuthentication, ProfileSigning, ProfileOCSPResponder, ProfileTimeStamping:
				f.Profile = p
			default:
				return f, fmt.Errorf("malformed query: unknown profile %q", v)
			}
		case "status":
			switch s := Status(v); s {
			case "", StatusGood, StatusRevoked, StatusOnHold:
				f.Status = s
			default:
				return f, fmt.Errorf("malformed query: unknown status %q", v)
			}
		case "limit":
			if v == "" {
				break
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return f, fmt.Errorf("malformed query: limit %q is not a number of certificates", v)
			}
			f.Limit = n
		default:
			return f, fmt.Errorf("malformed query: unknown parameter %q", k)
		}
	}
	return f, nil
}

// parseSerial parses a serial number as the API writes it: lower-case hex
// without leading zeros, positive, at most 20 octets. Accepting only that
// one spelling keeps a serial number in a log, a request and the store
// the same string.
func parseSerial(s string) (*big.Int, error) {
	switch {
	case s == "":
		return nil, errors.New("malformed serial number: empty")
	case len(s) > maxSerialDigits:
		return nil, fmt.Errorf("malformed serial number: more than %d hex digits", maxSerialDigits)
	case s[0] == '0':
		return nil, fmt.Errorf("malformed serial number %q: zero or a leading zero", s)
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return nil, fmt.Errorf("malformed serial number %q: want lower-case hex", s)
		}
	}
	n, _ := new(big.Int).SetString(s, 16)
	return n, nil
}

// writeError answers err from a lifecycle operation: one of the CA's own
// errors with its status and code, anything else as an internal error,
// whose details stay in the log.
func (c *CA) writeError(w http.ResponseWriter, msg string, err error) {
	for _, e := range lifecycleErrors {
		if errors.Is(err, e.err) {
			writeJSON(w, e.status, errorBody{Error: err.Error(), Code: e.code})
			return
		}
	}
	c.log.Error(msg, "err", err)
	writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
}

// readBody reads the body of an internal POST, or answers the error and
// returns false.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	// Requiring JSON also keeps browsers from posting here cross-site
	// without a CORS preflight, which these endpoints never answer.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, errorBody{Error: "Content-Type must be application/json"})
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxIssueRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body larger than %d bytes", MaxIssueRequestBytes)})
			return nil, false
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "cannot read request body"})
		return nil, false
	}
	return body, true
}

// decodeIssueRequest parses the JSON body of POST /ca/issue strictly: one
// object, no unknown fields, nothing after it.
func decodeIssueRequest(body []byte) (*IssueRequest, error) {
	var req IssueRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	return &req, nil
}

// decodeStrict parses a JSON request body into v: one value, no unknown
// fields, nothing after it.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed request: data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
