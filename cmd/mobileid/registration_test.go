package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRegistrationOfficerAdd adds an officer, and checks that refused
// commands say why in one line.
func TestRegistrationOfficerAdd(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	add := []string{"registration", "officer", "add", "anna", "--name", "Anna Tamm", "--desk", "Tallinn 1", "--data", data}
	t.Setenv("MOBILEID_OFFICER_PASSWORD", "")
	if code, _, errOut := runCmd(t, add...); code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "no password") {
		t.Errorf("officer add without a password = %d %q, want exit 2 with one line", code, errOut)
	}
	t.Setenv("MOBILEID_OFFICER_PASSWORD", "short")
	if code, _, errOut := runCmd(t, add...); code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "10 to 72") {
		t.Errorf("officer add with a short password = %d %q, want exit 1 with one line", code, errOut)
	}
	t.Setenv("MOBILEID_OFFICER_PASSWORD", "a-long-enough-secret")
	if code, out, errOut := runCmd(t, add...); code != 0 || !strings.Contains(out, "added officer anna") {
		t.Fatalf("officer add = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(t, add...); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("officer add twice = %d %q, want exit 1", code, errOut)
	}
	if code, out, errOut := runCmd(t, add...); strings.Contains(out+errOut, "a-long-enough-secret") {
		t.Errorf("the password was printed (exit %d)", code)
	}
}
