package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestApplyConfig(t *testing.T) {
	type result struct {
		listen string
		rate   int
		quiet  bool
		urls   []string
	}
	parse := func(t *testing.T, file string, args ...string) (result, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "role.conf")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		fs := newFlags(&env{stdout: io.Discard, stderr: io.Discard}, "role", "", "")
		var r result
		fs.StringVar(&r.listen, "listen", "127.0.0.1:1", "")
		fs.IntVar(&r.rate, "rate", 0, "")
		fs.BoolVar(&r.quiet, "quiet", false, "")
		var urls listFlag
		fs.Var(&urls, "url-prefix", "")
		_, err := parseFlags(fs, append([]string{"--config", path}, args...))
		r.urls = urls
		return r, err
	}
	r, err := parse(t, "# the role\n\nlisten = 127.0.0.1:8443\nrate=5\nquiet = true\nurl-prefix = \"https://a.example/ x\"\nurl-prefix = https://b.example/\n")
	if err != nil {
		t.Fatalf("parse = %v", err)
	}
	if r.listen != "127.0.0.1:8443" || r.rate != 5 || !r.quiet || !slices.Equal(r.urls, []string{"https://a.example/ x", "https://b.example/"}) {
		t.Errorf("config gave %+v", r)
	}
	if r, err := parse(t, "listen = 127.0.0.1:8443\nrate = 5\n", "--rate", "7"); err != nil || r.rate != 7 || r.listen != "127.0.0.1:8443" {
		t.Errorf("command line and config = %+v, %v; want the command line's rate and the file's address", r, err)
	}
	for _, tt := range []struct{ name, file, want string }{
		{"unknown key", "listen = x\nlistn = 127.0.0.1:1\n", `role.conf:2: unknown key "listn" for mobileid role`},
		{"bad value", "rate = fast\n", `role.conf:1: bad value "fast" for rate`},
		{"twice", "rate = 1\nrate = 2\n", "role.conf:2: rate is set twice"},
		{"no equals", "listen\n", "role.conf:1: want name = value"},
		{"config in config", "config = other.conf\n", `unknown key "config"`},
		{"bad quotes", "listen = \"x\n", "role.conf:1: listen: bad quoted value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.file)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("parse(%q) = %v, want one line with %q", tt.file, err, tt.want)
			}
			if _, ok := err.(usageError); !ok {
				t.Errorf("parse(%q) = %T, want a usage error", tt.file, err)
			}
		})
	}
	fs := newFlags(&env{stdout: io.Discard, stderr: io.Discard}, "role", "", "")
	if _, err := parseFlags(fs, []string{"--config", filepath.Join(t.TempDir(), "missing.conf")}); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing config file = %v", err)
	}
}
