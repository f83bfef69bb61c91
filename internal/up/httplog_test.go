package up

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWithRequestLog(t *testing.T) {
	var logs bytes.Buffer
	h := WithRequestLog(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.Header.Get(RequestIDHeader) == "" {
			t.Errorf("the handler sees no request ID")
		}
		http.NotFound(w, r)
	}), slog.New(slog.NewJSONHandler(&logs, nil)))

	for _, tt := range []struct {
		name, sent string
		keep       bool
	}{
		{"none", "", false},
		{"sane", "abc-123.4:x", true},
		{"hostile", "a\nb", false},
		{"long", strings.Repeat("a", 65), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			r := httptest.NewRequest(http.MethodGet, "/desk/x?code=secret", nil)
			if tt.sent != "" {
				r.Header.Set(RequestIDHeader, tt.sent)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			id := w.Header().Get(RequestIDHeader)
			if tt.keep && id != tt.sent || !tt.keep && (id == tt.sent || !requestIDPattern.MatchString(id)) {
				t.Errorf("answer's request ID = %q for %q sent", id, tt.sent)
			}
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("log %q: %v", logs.String(), err)
			}
			if line["request_id"] != id || line["status"] != float64(404) || line["path"] != "/desk/x" || line["method"] != "GET" {
				t.Errorf("log line = %v", line)
			}
			if strings.Contains(logs.String(), "secret") {
				t.Errorf("the log has the query: %s", logs.String())
			}
		})
	}
	logs.Reset()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if logs.Len() != 0 {
		t.Errorf("a health check was logged: %s", logs.String())
	}
}
