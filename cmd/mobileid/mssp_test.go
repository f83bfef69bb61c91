package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mobileid/internal/simfactory"
)

// TestMSSPCommands imports a SIM batch and registers an AP with the mssp
// operator commands, and checks that refused commands change nothing.
func TestMSSPCommands(t *testing.T) {
	dir := t.TempDir()
	batch := filepath.Join(dir, "batch")
	if code, _, errOut := runCmd(t, "sim", "issue", "--count", "3", "--msisdn-from", "+37200000101", "--out", batch); code != 0 {
		t.Fatalf("sim issue: %d %s", code, errOut)
	}
	data := filepath.Join(dir, "data")
	common := []string{"--data", data, "--kek-file", filepath.Join(data, "mssp.kek")}
	operator := filepath.Join(batch, simfactory.OperatorFile)

	code, out, errOut := runCmd(t, append([]string{"mssp", "import-sims", operator}, common...)...)
	if code != 0 || !strings.Contains(out, "imported 3 SIMs, 0 already known") {
		t.Fatalf("mssp import-sims = %d %q %q", code, out, errOut)
	}
	if code, out, _ := runCmd(t, append([]string{"mssp", "import-sims", operator}, common...)...); code != 0 || !strings.Contains(out, "imported 0 SIMs, 3 already known") {
		t.Errorf("second import = %d %q, want everything already known", code, out)
	}
	kek, err := os.ReadFile(filepath.Join(data, "mssp.kek"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(filepath.Join(data, "mobileid.db"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(db), strings.TrimSpace(string(kek))) {
		t.Error("the key-encryption key is in the database")
	}

	t.Setenv("MOBILEID_AP_PASSWORD", "")
	add := append([]string{"mssp", "ap", "add", "--id", "http://bank.example/mid", "--name", "Test Bank"}, common...)
	if code, _, errOut := runCmd(t, add...); code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "no password") {
		t.Errorf("ap add without a password = %d %q, want exit 2 with one line", code, errOut)
	}
	t.Setenv("MOBILEID_AP_PASSWORD", "s3cret-ap-password")
	if code, out, errOut := runCmd(t, add...); code != 0 || !strings.Contains(out, "added AP") {
		t.Fatalf("ap add = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, add...); code != 1 || strings.Count(errOut, "\n") != 1 {
		t.Errorf("ap add twice = %d %q, want exit 1 with one line", code, errOut)
	}
	code, out, errOut = runCmd(t, append([]string{"mssp", "ap", "list"}, common...)...)
	if code != 0 || !strings.Contains(out, "http://bank.example/mid") || !strings.Contains(out, "Test Bank") {
		t.Fatalf("ap list = %d %q %q", code, out, errOut)
	}
	if strings.Contains(out+errOut, "s3cret") {
		t.Error("ap list shows the password")
	}
	if strings.Count(out, "\n") != 2 {
		t.Errorf("ap list has %d lines, want a header and one AP:\n%s", strings.Count(out, "\n"), out)
	}
}
