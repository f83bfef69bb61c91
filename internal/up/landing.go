package up

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"path/filepath"

	"mobileid/internal/webassets"
)

//go:embed web
var webFS embed.FS

var landingTmpl = template.Must(template.ParseFS(webFS, "web/landing.html"))

// landing serves the page that links to every console and says how to
// reach the APIs, with the demo people and their PINs.
func (s *System) landing() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/static/", http.StripPrefix("/static", webassets.Handler()))
	mux.HandleFunc("GET /landing.css", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, webFS, "web/landing.css")
	})
	// The addresses of the parts, for clients such as mobileid demo; no
	// secrets.
	mux.HandleFunc("GET /api/urls", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.URLs)
	})
	// The numbers of the phones, for clients that look for a free one.
	mux.HandleFunc("GET /api/phones", func(w http.ResponseWriter, r *http.Request) {
		var nums []string
		for _, p := range s.Phones.Phones() {
			nums = append(nums, p.MSISDN())
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(nums)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		err := landingTmpl.Execute(&b, map[string]any{
			"URLs": s.URLs, "People": s.People, "OfficerPassword": s.OfficerPassword,
			"SecretsFile": filepath.Join(s.cfg.DataDir, secretsFile),
		})
		if err != nil {
			s.log.Error("render landing page", "err", err)
			http.Error(w, "Internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		w.Write(b.Bytes())
	})
	return mux
}
