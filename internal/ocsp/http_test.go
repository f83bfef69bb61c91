package ocsp

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	xocsp "golang.org/x/crypto/ocsp"
)

// escapeBase64 URL-escapes the three base64 characters that are special
// in a URL, as RFC 6960 Appendix A.1 asks.
func escapeBase64(s string) string {
	return strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(s)
}

// serialWithAwkwardBase64 finds a serial whose SHA-1 request encodes to
// base64 with "/", "+" and "=" in it.
func serialWithAwkwardBase64(t *testing.T, p *testPKI) (int64, []byte, string) {
	t.Helper()
	for serial := int64(1); serial < 10_000; serial++ {
		req := simpleRequest(t, p.issuing, serial, crypto.SHA1, nil)
		b64 := base64.StdEncoding.EncodeToString(req)
		if strings.Contains(b64, "/") && strings.Contains(b64, "+") && strings.HasSuffix(b64, "=") {
			return serial, req, b64
		}
	}
	t.Fatal("no serial with /, + and = in its request's base64")
	return 0, nil, ""
}

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "http")
	src := newFakeSource()
	clock := &fakeClock{t: time.Now().Truncate(time.Second)}
	r, _ := newTestResponder(t, p, src, clock.now)
	serial, req, b64 := serialWithAwkwardBase64(t, p)
	src.set(serial, fakeStatus{status: xocsp.Good})
	src.set(serial+1, fakeStatus{status: xocsp.Revoked, revokedAt: clock.now().Add(-time.Hour), reason: xocsp.Superseded})
	leaf := p.leaf(t, serial)

	mux := http.NewServeMux()
	mux.Handle("/", r)
	mux.Handle("/ocsp/", http.StripPrefix("/ocsp", r))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(t *testing.T, method, url string, body []byte, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		hreq, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != nil {
			hreq.Header.Set("Content-Type", "application/ocsp-request")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			hreq.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := srv.Client().Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	wantGood := func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP status = %d, want 200", resp.StatusCode)
		}
		if got := resp.Header.Get("Content-Type"); got != "application/ocsp-response" {
			t.Errorf("Content-Type = %q", got)
		}
		if got := parseAnswer(t, body, leaf, p.issuing).Status; got != xocsp.Good {
			t.Errorf("status = %d, want good", got)
		}
	}

	t.Run("POST", func(t *testing.T) {
		resp, body := do(t, http.MethodPost, srv.URL+"/", req)
		wantGood(t, resp, body)
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("Cache-Control = %q, want no-cache", got)
		}
		if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
			t.Errorf("Content-Length = %q, want %d", got, len(body))
		}
	})
	t.Run("POST with nonce", func(t *testing.T) {
		resp, body := do(t, http.MethodPost, srv.URL+"/", simpleRequest(t, p.issuing, serial, crypto.SHA256, []byte("0123456789abcdef")))
		wantGood(t, resp, body)
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("Cache-Control = %q, want no-cache", got)
		}
		if resp.Header.Get("ETag") != "" {
			t.Errorf("nonce answer has an ETag")
		}
	})

	var etag string
	for _, tt := range []struct{ name, path string }{
		{"GET escaped", "/" + escapeBase64(b64)},
		{"GET unescaped", "/" + b64},
		{"GET unpadded", "/" + strings.TrimRight(b64, "=")},
		{"GET under prefix", "/ocsp/" + escapeBase64(b64)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, srv.URL+tt.path, nil)
			wantGood(t, resp, body)
			thisUpdate := parseAnswer(t, body, leaf, p.issuing).ThisUpdate
			nextUpdate := thisUpdate.Add(DefaultValidity)
			maxAge := int(nextUpdate.Sub(clock.now()) / time.Second)
			wantHdr := map[string]string{
				"Cache-Control":  "max-age=" + strconv.Itoa(maxAge) + ", public, no-transform, must-revalidate",
				"Last-Modified":  thisUpdate.Format(http.TimeFormat),
				"Expires":        nextUpdate.Format(http.TimeFormat),
				"Content-Length": strconv.Itoa(len(body)),
			}
			for k, v := range wantHdr {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			got := resp.Header.Get("ETag")
			if !strings.HasPrefix(got, `"`) || len(got) != 66 {
				t.Errorf("ETag = %q, want a quoted SHA-256", got)
			}
			if etag != "" && got != etag {
				t.Errorf("ETag = %q, want %q of the cached answer", got, etag)
			}
			etag = got
		})
	}
	t.Run("GET If-None-Match", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, srv.URL+"/"+escapeBase64(b64), nil, "If-None-Match", `"other", `+etag)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("HTTP status = %d with %d bytes, want 304 and none", resp.StatusCode, len(body))
		}
	})
	t.Run("GET revoked", func(t *testing.T) {
		b := base64.StdEncoding.EncodeToString(simpleRequest(t, p.issuing, serial+1, crypto.SHA1, nil))
		resp, body := do(t, http.MethodGet, srv.URL+"/"+escapeBase64(b), nil)
		if got := parseAnswer(t, body, p.leaf(t, serial+1), p.issuing).Status; got != xocsp.Revoked {
			t.Errorf("status = %d, want revoked", got)
		}
		if got := resp.Header.Get("Cache-Control"); !strings.HasPrefix(got, "max-age=") {
			t.Errorf("Cache-Control = %q, want max-age", got)
		}
		if resp.Header.Get("ETag") == "" {
			t.Errorf("revoked GET answer has no ETag")
		}
	})
	t.Run("GET unknown", func(t *testing.T) {
		b := base64.StdEncoding.EncodeToString(simpleRequest(t, p.issuing, serial+2, crypto.SHA1, nil))
		resp, _ := do(t, http.MethodGet, srv.URL+"/"+escapeBase64(b), nil)
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("Cache-Control = %q, want no-cache", got)
		}
	})

	malformed := []struct{ name, method, path string }{
		{"bad base64", http.MethodGet, "/" + "not*base64!"},
		{"base64 of garbage", http.MethodGet, "/" + base64.StdEncoding.EncodeToString([]byte("garbage"))},
		{"empty GET", http.MethodGet, "/"},
		{"URL-safe base64", http.MethodGet, "/" + base64.URLEncoding.EncodeToString(req)},
	}
	for _, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.method, srv.URL+tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("HTTP status = %d, want 200", resp.StatusCode)
			}
			if !bytes.Equal(body, xocsp.MalformedRequestErrorResponse) {
				t.Errorf("body = %x, want malformedRequest", body)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", got)
			}
		})
	}
	t.Run("POST two requests", func(t *testing.T) {
		two := tOCSPRequest{TBSRequest: tTBSRequest{RequestList: []tRequest{
			{ReqCert: certIDFor(t, p.issuing, leaf.SerialNumber, crypto.SHA1)},
			{ReqCert: certIDFor(t, p.issuing, leaf.SerialNumber, crypto.SHA1)},
		}}}
		_, body := do(t, http.MethodPost, srv.URL+"/", marshalRequest(t, two))
		if !bytes.Equal(body, xocsp.MalformedRequestErrorResponse) {
			t.Errorf("body = %x, want malformedRequest", body)
		}
	})
	t.Run("POST other issuer", func(t *testing.T) {
		other := newTestPKI(t, "http other")
		_, body := do(t, http.MethodPost, srv.URL+"/", simpleRequest(t, other.issuing, serial, crypto.SHA1, nil))
		if !bytes.Equal(body, xocsp.UnauthorizedErrorResponse) {
			t.Errorf("body = %x, want unauthorized", body)
		}
	})

	t.Run("POST too large", func(t *testing.T) {
		resp, _ := do(t, http.MethodPost, srv.URL+"/", make([]byte, DefaultMaxRequestBytes+1))
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("HTTP status = %d, want 413", resp.StatusCode)
		}
	})
	t.Run("POST too large chunked", func(t *testing.T) {
		// No Content-Length: the limit applies while reading.
		hreq, _ := http.NewRequest(http.MethodPost, srv.URL+"/", io.MultiReader(bytes.NewReader(make([]byte, 3000)), bytes.NewReader(make([]byte, 3000))))
		hreq.ContentLength = -1
		resp, err := srv.Client().Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("HTTP status = %d, want 413", resp.StatusCode)
		}
	})
	t.Run("POST at the limit", func(t *testing.T) {
		// Exactly MaxRequestBytes is read, and malformed only as DER.
		resp, body := do(t, http.MethodPost, srv.URL+"/", make([]byte, DefaultMaxRequestBytes))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, xocsp.MalformedRequestErrorResponse) {
			t.Errorf("HTTP status = %d, body %x; want 200 and malformedRequest", resp.StatusCode, body)
		}
	})
	t.Run("GET too long", func(t *testing.T) {
		resp, _ := do(t, http.MethodGet, srv.URL+"/"+strings.Repeat("A", 8000), nil)
		if resp.StatusCode != http.StatusRequestURITooLong {
			t.Errorf("HTTP status = %d, want 414", resp.StatusCode)
		}
	})
	for _, m := range []string{http.MethodPut, http.MethodHead, http.MethodDelete, http.MethodOptions} {
		t.Run(m, func(t *testing.T) {
			resp, _ := do(t, m, srv.URL+"/", nil)
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("HTTP status = %d, want 405", resp.StatusCode)
			}
			if got := resp.Header.Get("Allow"); got != "GET, POST" {
				t.Errorf("Allow = %q", got)
			}
		})
	}

	if got := testutil.ToFloat64(r.m.byOutcome[outcomeMalformed]); got != float64(len(malformed)+2) {
		t.Errorf("malformed responses = %v, want %d", got, len(malformed)+2)
	}
}

func TestServeHTTP_CacheControlCountsDown(t *testing.T) {
	t.Parallel()
	p := newTestPKI(t, "max-age")
	src := newFakeSource()
	src.set(1, fakeStatus{status: xocsp.Good})
	clock := &fakeClock{t: time.Now().Truncate(time.Second)}
	r, _ := newTestResponder(t, p, src, clock.now)
	url := "/" + escapeBase64(base64.StdEncoding.EncodeToString(simpleRequest(t, p.issuing, 1, crypto.SHA1, nil)))
	for _, wait := range []time.Duration{0, 0, 10 * time.Minute, 1500 * time.Millisecond} {
		clock.advance(wait)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, url, nil))
		nextUpdate, err := http.ParseTime(w.Header().Get("Expires"))
		if err != nil {
			t.Fatal(err)
		}
		want := "max-age=" + strconv.Itoa(int(nextUpdate.Sub(clock.now())/time.Second)) + ", public, no-transform, must-revalidate"
		if got := w.Header().Get("Cache-Control"); got != want {
			t.Errorf("after %v Cache-Control = %q, want %q", wait, got, want)
		}
	}
}
