// Package storetest runs a component's database tests on every engine the
// store supports, so that the SQL that passes on the embedded SQLite also
// passes on PostgreSQL.
//
// SQLite is always tested, on a fresh file. PostgreSQL is tested when the
// environment variable MOBILEID_TEST_POSTGRES holds a postgres:// URL (CI sets
// it with .ci/postgres.sh); each test gets an empty schema of its own there,
// so tests may run in parallel on one database.
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"mobileid/internal/store"
	"mobileid/internal/testenv"
)

// Run runs fn as the subtests "sqlite" and "postgres", each with an empty
// database that is closed when the subtest ends. Without MOBILEID_TEST_POSTGRES
// the postgres subtest is skipped, or fails in CI.
func Run(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, open(t, store.Config{DSN: "sqlite:" + filepath.Join(t.TempDir(), "test.db")}))
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("MOBILEID_TEST_POSTGRES")
		if dsn == "" {
			testenv.SkipOrFail(t, "MOBILEID_TEST_POSTGRES is not set; source .ci/postgres.sh to test on PostgreSQL")
		}
		fn(t, open(t, store.Config{DSN: newSchema(t, dsn)}))
	})
}

// Reopen closes db and opens the same database (and schema) again, as a
// restarted process would. The new handle is closed when the test ends.
func Reopen(t testing.TB, db *store.DB) *store.DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	return open(t, db.Config())
}

// Another opens a second handle to db's database (and schema), as another
// node sharing it would have. It is closed when the test ends.
func Another(t testing.TB, db *store.DB) *store.DB {
	t.Helper()
	return open(t, db.Config())
}

func open(t testing.TB, cfg store.Config) *store.DB {
	t.Helper()
	db, err := store.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("store.Open() = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newSchema creates a schema of its own for the test, dropped with everything
// in it when the test ends, and returns dsn with that schema as the only one
// on the search path, so that unqualified table names land in it.
func newSchema(t testing.TB, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("MOBILEID_TEST_POSTGRES: %v", err)
	}
	// Hex, so that the name is a lowercase identifier needing no quotes.
	var b [8]byte
	rand.Read(b[:])
	schema := fmt.Sprintf("t_%x", b)
	admin := open(t, store.Config{DSN: dsn})
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		// Registered after admin's Close, so it runs before it.
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresDSN returns the URL of an empty PostgreSQL schema of the test's
// own, dropped when the test ends, for a test that starts processes which
// open the database themselves. Without MOBILEID_TEST_POSTGRES the test is
// skipped, or fails in CI.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("MOBILEID_TEST_POSTGRES")
	if dsn == "" {
		testenv.SkipOrFail(t, "MOBILEID_TEST_POSTGRES is not set; source .ci/postgres.sh to test on PostgreSQL")
	}
	return newSchema(t, dsn)
}
