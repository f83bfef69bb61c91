package tsa

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/digitorus/timestamp"
	"github.com/google/go-cmp/cmp"
)

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	cfg := newTestPKI(t, elliptic.P256()).config()
	cfg.MaxRequestBytes = 512
	tsa, reg, _ := newTestTSA(t, cfg)
	srv := httptest.NewServer(tsa)
	t.Cleanup(srv.Close)
	q := makeQuery(t, crypto.SHA256, []byte("x"), nil)

	tests := []struct {
		name        string
		method      string
		contentType string
		body        io.Reader
		wantCode    int
		wantHeader  map[string]string
	}{
		{"query", http.MethodPost, ContentTypeQuery, bytes.NewReader(q), http.StatusOK,
			map[string]string{"Content-Type": ContentTypeReply, "Cache-Control": "no-store"}},
		{"query with media type parameter", http.MethodPost, ContentTypeQuery + "; charset=binary", bytes.NewReader(q), http.StatusOK, nil},
		{"rejection is still 200", http.MethodPost, ContentTypeQuery, bytes.NewReader([]byte("junk")), http.StatusOK,
			map[string]string{"Content-Type": ContentTypeReply}},
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed, map[string]string{"Allow": "POST"}},
		{"PUT", http.MethodPut, ContentTypeQuery, bytes.NewReader(q), http.StatusMethodNotAllowed, nil},
		{"wrong content type", http.MethodPost, "application/octet-stream", bytes.NewReader(q), http.StatusUnsupportedMediaType,
			map[string]string{"Accept-Post": ContentTypeQuery}},
		{"no content type", http.MethodPost, "", bytes.NewReader(q), http.StatusUnsupportedMediaType, nil},
		{"over MaxRequestBytes with length", http.MethodPost, ContentTypeQuery, bytes.NewReader(make([]byte, 513)), http.StatusRequestEntityTooLarge, nil},
		// An io.Reader of unknown size makes the client send it chunked, so
		// the limit is enforced while reading.
		{"over MaxRequestBytes chunked", http.MethodPost, ContentTypeQuery, io.MultiReader(bytes.NewReader(make([]byte, 4000))), http.StatusRequestEntityTooLarge, nil},
		{"at MaxRequestBytes", http.MethodPost, ContentTypeQuery, bytes.NewReader(make([]byte, 512)), http.StatusOK, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tt.method, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Fatalf("%s %q = %d %q, want %d", tt.method, tt.contentType, resp.StatusCode, body, tt.wantCode)
			}
			for k, v := range tt.wantHeader {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if tt.wantCode == http.StatusOK {
				decodeRejectionOrToken(t, body)
			}
		})
	}
	want := map[string]float64{"granted": 2, "rejection": 2, "http_405": 2, "http_413": 2, "http_415": 2}
	if diff := cmp.Diff(want, responseCounts(t, reg)); diff != "" {
		t.Errorf("responses_total (-want +got):\n%s", diff)
	}
}

// decodeRejectionOrToken checks that body is a TimeStampResp.
func decodeRejectionOrToken(t *testing.T, body []byte) {
	t.Helper()
	if _, err := timestamp.ParseResponse(body); err != nil {
		if status, _, _ := decodeRejection(t, body); status != int(timestamp.Rejection) {
			t.Errorf("body is neither a token nor a rejection: %v", err)
		}
	}
}
