package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"
)

// MaxIssueRequestBytes bounds the body of POST /ca/issue; a request with
// an RSA-2048 key and an attestation is under 4 KiB.
const MaxIssueRequestBytes = 64 << 10

// IssueResponse is the body of a successful POST /ca/issue.
type IssueResponse struct {
	Serial      string    `json:"serial"` // lower-case hex
	Profile     Profile   `json:"profile"`
	SubjectCN   string    `json:"subject_cn"`
	NotBefore   time.Time `json:"not_before"`
	NotAfter    time.Time `json:"not_after"`
	Certificate []byte    `json:"certificate"` // DER, base64 in JSON
}

// errorBody is the body of every error answer of POST /ca/issue.
type errorBody struct {
	Error string      `json:"error"`
	Code  RefusalCode `json:"code,omitempty"` // set on 422
}

// Handler serves the CA's HTTP endpoints:
//
//	POST /ca/issue        issuance (JSON), internal
//	GET  /ca/issuing.crt  issuing CA certificate, DER, application/pkix-cert
//	GET  /ca/root.crt     root CA certificate, DER, application/pkix-cert
//	GET  /crl/issuing.crl newest CRL, DER, application/pkix-crl
//
// POST /ca/issue signs whatever a caller vouches for, so it must be
// reachable only by the registration server: serve Handler on a loopback
// or otherwise private listener (mutual TLS is the plan for multi-host
// set-ups) and PublicHandler on the public one. It takes an IssueRequest
// as JSON (Content-Type application/json, at most MaxIssueRequestBytes,
// unknown fields rejected) and answers 200 with an IssueResponse; 400 for
// malformed JSON, 413 for a body that is too large, 415 for another
// content type, 422 with {"error": reason, "code": RefusalCode} for a
// refused request and 500 {"error": "internal error"} when the CA fails.
func (c *CA) Handler() http.Handler {
	mux := http.NewServeMux()
	c.publicRoutes(mux)
	mux.HandleFunc("POST /ca/issue", c.serveIssue)
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
	// Requiring JSON also keeps browsers from posting here cross-site
	// without a CORS preflight, which this endpoint never answers.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSON(w, http.StatusUnsupportedMediaType, errorBody{Error: "Content-Type must be application/json"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxIssueRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("request body larger than %d bytes", MaxIssueRequestBytes)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "cannot read request body"})
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
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: refusal.Reason, Code: refusal.Code})
		return
	case err != nil:
		c.log.Error("issuance failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, IssueResponse{
		Serial:      serialKey(cert.Serial),
		Profile:     cert.Profile,
		SubjectCN:   cert.SubjectCN,
		NotBefore:   cert.NotBefore.UTC(),
		NotAfter:    cert.NotAfter.UTC(),
		Certificate: cert.DER,
	})
}

// decodeIssueRequest parses the JSON body of POST /ca/issue strictly: one
// object, no unknown fields, nothing after it.
func decodeIssueRequest(body []byte) (*IssueRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req IssueRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("malformed request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("malformed request: data after the JSON object")
	}
	return &req, nil
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
