package webassets

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/static", Handler()))
	defer srv.Close()

	tests := []struct {
		path     string
		code     int
		ctype    string
		contains string
	}{
		{"/static/htmx.min.js", http.StatusOK, "text/javascript; charset=utf-8", `version:"2.0.11"`},
		{"/static/sse.js", http.StatusOK, "text/javascript; charset=utf-8", "defineExtension('sse'"},
		{"/static/base.css", http.StatusOK, "text/css; charset=utf-8", "header {"},
		{"/static/LICENSE.htmx", http.StatusOK, "", "Permission to use, copy, modify"},
		{"/static/LICENSE.htmx-ext-sse", http.StatusOK, "", "Permission to use, copy, modify"},
		{"/static/README.md", http.StatusOK, "", "npm pack htmx.org@2.0.11"},
		{"/static/", http.StatusNotFound, "", ""},
		{"/static/nothing.js", http.StatusNotFound, "", ""},
		{"/static/../webassets.go", http.StatusNotFound, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.code)
			}
			if tt.code != http.StatusOK {
				return
			}
			if tt.ctype != "" && resp.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("GET %s: Content-Type %q, want %q", tt.path, resp.Header.Get("Content-Type"), tt.ctype)
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("GET %s lacks %q", tt.path, tt.contains)
			}
			tag := resp.Header.Get("ETag")
			if tag == "" {
				t.Fatalf("GET %s has no ETag", tt.path)
			}
			req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
			req.Header.Set("If-None-Match", tag)
			again, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			again.Body.Close()
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("GET %s with If-None-Match %s = %d, want %d", tt.path, tag, again.StatusCode, http.StatusNotModified)
			}
		})
	}
}

// TestReadmeHashes checks the files against the hashes README.md records,
// so that a replaced or edited copy of a third-party file is noticed.
func TestReadmeHashes(t *testing.T) {
	readme, err := fs.ReadFile(FS(), "README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("`([0-9a-f]{64})` \\(`([^`]+)`\\)")
	found := 0
	for _, m := range re.FindAllStringSubmatch(string(readme), -1) {
		b, err := fs.ReadFile(FS(), m[2])
		if err != nil {
			t.Errorf("README.md names %s: %v", m[2], err)
			continue
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != m[1] {
			t.Errorf("SHA-256(%s) = %s, want %s", m[2], got, m[1])
		}
		found++
	}
	if found != 2 {
		t.Errorf("README.md records %d file hashes, want 2", found)
	}
}
