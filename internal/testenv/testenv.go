// Package testenv holds helpers for tests that depend on the machine they run
// on, such as an external database or browser.
//
// Locally a missing tool is a reason to skip; in CI, where MOBILEID_CI is set,
// it is a failure, so that a misconfigured runner cannot pass by skipping.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// SkipOrFail skips the test with the formatted message, unless the
// environment variable MOBILEID_CI is non-empty, in which case it fails the
// test with that message instead.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("MOBILEID_CI") != "" {
		t.Fatalf("%s (MOBILEID_CI is set: CI must not skip)", msg)
	}
	t.Skip(msg)
}
