package ca

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// wireRequest writes an issuance request as JSON by hand, so that the
// test pins the field names and encodings clients rely on.
func wireRequest(req *IssueRequest) map[string]any {
	m := map[string]any{
		"profile": string(req.Profile),
		"subject": map[string]any{
			"country": req.Subject.Country, "given_name": req.Subject.GivenName,
			"surname": req.Subject.Surname, "national_id": req.Subject.NationalID,
		},
		"public_key":          b64(req.PublicKey),
		"challenge":           b64(req.Challenge),
		"key_ref":             int(req.KeyRef),
		"proof_of_possession": b64(req.ProofOfPossession),
	}
	if a := req.Attestation; a != nil {
		m["attestation"] = map[string]any{
			"iccid": a.ICCID, "auth_spki": b64(a.AuthSPKI), "sign_spki": b64(a.SignSPKI),
			"signature": b64(a.Signature), "certificate": b64(a.Certificate),
		}
	}
	return m
}

func do(h http.Handler, method, path, contentType string, body []byte, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHTTPIssue(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		h := tc.Handler()
		reg := newRegistration(t, tc.vendor, newECKey(t), newRSAKey(t, 0))
		good, _ := json.Marshal(wireRequest(reg.request(t, ProfileSigning)))

		w := do(h, "POST", "/ca/issue", "application/json; charset=utf-8", good)
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("POST /ca/issue = %d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		var resp IssueResponse
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(resp.Certificate)
		if err != nil {
			t.Fatalf("response certificate: %v", err)
		}
		if resp.Serial != cert.SerialNumber.Text(16) || resp.Profile != ProfileSigning || resp.SubjectCN != "JÕEORG,JAAK-KRISTJAN" ||
			!resp.NotAfter.Equal(cert.NotAfter) || !resp.NotBefore.Equal(cert.NotBefore) {
			t.Errorf("response %+v does not describe the certificate", resp)
		}
		if _, err := tc.Get(t.Context(), cert.SerialNumber); err != nil {
			t.Errorf("issued certificate not stored: %v", err)
		}

		refused := wireRequest(reg.request(t, ProfileSigning))
		refused["subject"].(map[string]any)["country"] = "ee"
		refusedBody, _ := json.Marshal(refused)
		unknown := wireRequest(reg.request(t, ProfileSigning))
		unknown["pin"] = "1234"
		unknownBody, _ := json.Marshal(unknown)
		badRef := wireRequest(reg.request(t, ProfileSigning))
		badRef["key_ref"] = 300
		badRefBody, _ := json.Marshal(badRef)
		huge := append([]byte(`{"profile":"`), bytes.Repeat([]byte("a"), MaxIssueRequestBytes)...)

		for _, tt := range []struct {
			name        string
			method      string
			contentType string
			body        []byte
			status      int
			code        RefusalCode
		}{
			{"refused", "POST", "application/json", refusedBody, http.StatusUnprocessableEntity, RefusedSubject},
			{"malformed JSON", "POST", "application/json", []byte(`{"profile":`), http.StatusBadRequest, ""},
			{"not an object", "POST", "application/json", []byte(`[]`), http.StatusBadRequest, ""},
			{"unknown field", "POST", "application/json", unknownBody, http.StatusBadRequest, ""},
			{"key_ref out of range", "POST", "application/json", badRefBody, http.StatusBadRequest, ""},
			{"trailing data", "POST", "application/json", append(append([]byte(nil), good...), []byte(` {}`)...), http.StatusBadRequest, ""},
			{"bad base64", "POST", "application/json", []byte(`{"public_key":"%%%"}`), http.StatusBadRequest, ""},
			{"too large", "POST", "application/json", huge, http.StatusRequestEntityTooLarge, ""},
			{"form", "POST", "application/x-www-form-urlencoded", good, http.StatusUnsupportedMediaType, ""},
			{"no content type", "POST", "", good, http.StatusUnsupportedMediaType, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := userCertRows(t, db)
				w := do(h, tt.method, "/ca/issue", tt.contentType, tt.body)
				if w.Code != tt.status {
					t.Errorf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q, want application/json", ct)
				}
				var e struct {
					Error string      `json:"error"`
					Code  RefusalCode `json:"code"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code != tt.code {
					t.Errorf("body %s: want {\"error\": ..., \"code\": %q}", w.Body, tt.code)
				}
				if n := userCertRows(t, db); n != before {
					t.Errorf("a refused request stored a certificate")
				}
			})
		}

		if w := do(h, "GET", "/ca/issue", "", nil); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET /ca/issue = %d, want 405", w.Code)
		}
		if w := do(tc.PublicHandler(), "POST", "/ca/issue", "application/json", good); w.Code != http.StatusNotFound {
			t.Errorf("PublicHandler POST /ca/issue = %d, want 404", w.Code)
		}
	})
}

func TestHTTPCertificatesAndCRL(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		tc := newTestCA(t, db, nil)
		for _, h := range []http.Handler{tc.Handler(), tc.PublicHandler()} {
			for path, want := range map[string][]byte{"/ca/issuing.crt": tc.keys.Issuing.Raw, "/ca/root.crt": tc.keys.Root.Raw} {
				w := do(h, "GET", path, "", nil)
				if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/pkix-cert" || !bytes.Equal(w.Body.Bytes(), want) {
					t.Errorf("GET %s = %d %q, %d bytes; want the DER certificate as application/pkix-cert",
						path, w.Code, w.Header().Get("Content-Type"), w.Body.Len())
				}
			}
		}

		h := tc.PublicHandler()
		cert, _ := tc.issue(t, newRegistration(t, nil, newECKey(t), newECKey(t)).request(t, ProfileAuthentication))
		tc.clock.Advance(time.Hour)
		if err := tc.Revoke(t.Context(), cert.Serial, ReasonKeyCompromise, time.Time{}); err != nil {
			t.Fatal(err)
		}
		tc.clock.Advance(90 * time.Minute)
		w := do(h, "GET", "/crl/issuing.crl", "", nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET /crl/issuing.crl = %d", w.Code)
		}
		crl, err := x509.ParseRevocationList(w.Body.Bytes())
		if err != nil {
			t.Fatalf("served CRL: %v", err)
		}
		if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(cert.Serial) != 0 {
			t.Errorf("served CRL does not list the revoked certificate")
		}
		hdr := map[string]string{}
		for _, k := range []string{"Content-Type", "Cache-Control", "Last-Modified", "Expires", "ETag"} {
			hdr[k] = w.Header().Get(k)
		}
		want := map[string]string{
			"Content-Type":  "application/pkix-crl",
			"Cache-Control": "public, max-age=81000", // 24 h − 90 min until nextUpdate
			"Last-Modified": crl.ThisUpdate.UTC().Format(http.TimeFormat),
			"Expires":       crl.NextUpdate.UTC().Format(http.TimeFormat),
			"ETag":          `"crl-` + crl.Number.String() + `"`,
		}
		if diff := cmp.Diff(want, hdr); diff != "" {
			t.Errorf("CRL headers (-want +got):\n%s", diff)
		}
		if w := do(h, "GET", "/crl/issuing.crl", "", nil, "If-None-Match", hdr["ETag"]); w.Code != http.StatusNotModified {
			t.Errorf("conditional GET = %d, want 304", w.Code)
		}
		if w := do(h, "HEAD", "/crl/issuing.crl", "", nil); w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("HEAD /crl/issuing.crl = %d with %d bytes", w.Code, w.Body.Len())
		}
		if w := do(h, "POST", "/crl/issuing.crl", "", nil); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST /crl/issuing.crl = %d, want 405", w.Code)
		}
		if w := do(h, "GET", "/ca/other.crt", "", nil); w.Code != http.StatusNotFound || strings.Contains(w.Body.String(), "BEGIN") {
			t.Errorf("GET /ca/other.crt = %d", w.Code)
		}
	})
}
