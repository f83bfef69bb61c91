// Package webassets holds the files the web consoles share: htmx, its
// server-sent events extension, their licences and a base stylesheet. They
// are embedded in the binary, so that no console loads anything from the
// internet; static/README.md records where each file comes from.
package webassets

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var files embed.FS

// FS returns the shared files: htmx.min.js, sse.js, base.css, the licences
// and README.md, at the root of the returned file system.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		// fs.Sub fails only for an invalid directory name.
		panic(err)
	}
	return sub
}

// Handler serves the shared files by name, e.g. "/htmx.min.js"; mount it
// with http.StripPrefix. Each answer carries a strong ETag, the SHA-256 of
// the file, so a browser revalidates instead of downloading it again:
// embedded files have no modification time to offer instead. Directories
// are not listed.
func Handler() http.Handler {
	sub := FS()
	tags := map[string]string{}
	fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		tags["/"+name] = `"` + hex.EncodeToString(sum[:16]) + `"`
		return nil
	})
	serve := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := path.Clean("/" + r.URL.Path)
		tag, ok := tags[name]
		if !ok || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", tag)
		w.Header().Set("Cache-Control", "no-cache")
		serve.ServeHTTP(w, r)
	})
}
