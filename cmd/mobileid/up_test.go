package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUpRefuses checks that bad input gets one line and a non-zero exit,
// and leaves no state behind.
func TestUpRefuses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := func() []string {
		return []string{"--console", "127.0.0.1:0", "--smpp", "127.0.0.1:0", "--phones", "127.0.0.1:0", "--ca", "127.0.0.1:0",
			"--mssp", "127.0.0.1:0", "--registration", "127.0.0.1:0", "--idserver", "127.0.0.1:0", "--bank", "127.0.0.1:0"}
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"port in use", append(free(), "--data", t.TempDir(), "--log", "-", "--idserver", busy.Addr().String()), 1, "cannot listen on " + busy.Addr().String()},
		{"data directory is a file", append(free(), "--data", file, "--log", "-"), 1, "data directory"},
		{"bad flag", []string{"--sims", "many"}, 2, "invalid value"},
		{"argument", []string{"now"}, 2, "unexpected argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, append([]string{"up"}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("up %v = %d %q, want %d with %q", tt.args, code, errOut, tt.code, tt.want)
			}
		})
	}
}

// TestUpRuns starts the whole system from the command line, waits for the
// banner and stops it as Ctrl-C does.
func TestUpRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	pr, pw, _ := os.Pipe()
	done := make(chan int, 1)
	go func() {
		var errOut strings.Builder
		done <- run(ctx, &env{stdout: pw, stderr: &errOut}, []string{"up", "--data", dir, "--sims", "4",
			"--console", "127.0.0.1:0", "--smpp", "127.0.0.1:0", "--phones", "127.0.0.1:0", "--ca", "127.0.0.1:0",
			"--mssp", "127.0.0.1:0", "--registration", "127.0.0.1:0", "--idserver", "127.0.0.1:0", "--bank", "127.0.0.1:0"})
		pw.Close()
	}()
	var out strings.Builder
	buf := make([]byte, 4096)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops") && time.Now().Before(deadline) {
		n, err := pr.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(out.String(), "mobileid is up") || !strings.Contains(out.String(), "Registration desk") {
		t.Fatalf("up printed:\n%s", out.String())
	}

	// mobileid demo walks through the running system and is its smoke
	// test.
	console := regexp.MustCompile(`Start here +(\S+)`).FindStringSubmatch(out.String())
	if console == nil {
		t.Fatalf("up printed no console URL:\n%s", out.String())
	}
	sig := filepath.Join(t.TempDir(), "demo.p7s")
	code, demoOut, demoErr := runCmd(t, "demo", "--data", dir, "--console", console[1], "--out", sig)
	if code != 0 || !strings.Contains(demoOut, "All 4 steps passed") {
		t.Errorf("demo = %d:\n%s\n%s", code, demoOut, demoErr)
	}
	for _, want := range []string{"Registration Server → MSSP", "SMSC → phone", "phone → SMSC", "MSSP → ID Server", "NOT_MID_CLIENT"} {
		if !strings.Contains(demoOut, want) {
			t.Errorf("demo printed no %q", want)
		}
	}
	if der, err := os.ReadFile(sig); err != nil || len(der) < 500 {
		t.Errorf("demo wrote no CMS signature: %d bytes, %v", len(der), err)
	}
	// Without a running system it fails, in one line.
	if code, _, errOut := runCmd(t, "demo", "--data", dir, "--console", "http://127.0.0.1:1"); code != 1 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("demo without a system = %d %q, want 1 and one line", code, errOut)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("up exited %d after the interrupt", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "mobileid.log")); err != nil {
		t.Errorf("no log file: %v", err)
	}
}
