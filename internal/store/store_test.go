package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// testMigrations is laid out as a component's migrations are.
//
//go:embed testdata/migrations
var testMigrations embed.FS

// migrations builds a migration fs.FS from alternating paths and SQL.
func migrations(pathAndSQL ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i < len(pathAndSQL); i += 2 {
		fsys[pathAndSQL[i]] = &fstest.MapFile{Data: []byte(pathAndSQL[i+1])}
	}
	return fsys
}

// record is a row of schema_migrations, without its time.
type record struct {
	Version int64
	Name    string
}

func records(t *testing.T, db *store.DB, component string) []record {
	t.Helper()
	if !tableExists(t, db, "schema_migrations") {
		return nil
	}
	rows, err := db.QueryContext(t.Context(),
		`SELECT version, name FROM schema_migrations WHERE component = $1 ORDER BY version`, component)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var rs []record
	for rows.Next() {
		var r record
		if err := rows.Scan(&r.Version, &r.Name); err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		rs = append(rs, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return rs
}

func tableExists(t *testing.T, db *store.DB, table string) bool {
	t.Helper()
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
	if db.Dialect() == store.Postgres {
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	}
	return queryInt(t, db, q, table) == 1
}

func queryInt(t *testing.T, db *store.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func exec(t *testing.T, db *store.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestMigrateAppliesInOrderOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		fsys := migrations(
			"0001_create_t.sql", "CREATE TABLE t (id BIGINT PRIMARY KEY, note TEXT NOT NULL);",
			"0002_seed.sql", "INSERT INTO t (id, note) VALUES (1, 'seed');",
			"0003_index_note.sql", "CREATE INDEX t_note ON t (note);",
		)
		want := []record{{1, "create_t"}, {2, "seed"}, {3, "index_note"}}
		for run := 1; run <= 2; run++ {
			if err := db.Migrate(t.Context(), "comp", fsys); err != nil {
				t.Fatalf("run %d: Migrate(...) = %v, want nil", run, err)
			}
			if diff := cmp.Diff(want, records(t, db, "comp")); diff != "" {
				t.Errorf("run %d: schema_migrations (-want +got):\n%s", run, diff)
			}
			if n := queryInt(t, db, "SELECT count(*) FROM t"); n != 1 {
				t.Errorf("run %d: t has %d rows, want 1 (the seed, once)", run, n)
			}
		}

		fsys["0004_seed_more.sql"] = &fstest.MapFile{Data: []byte("INSERT INTO t (id, note) VALUES (2, 'more');")}
		if err := db.Migrate(t.Context(), "comp", fsys); err != nil {
			t.Fatalf("Migrate(...) with a new version = %v, want nil", err)
		}
		if n := queryInt(t, db, "SELECT count(*) FROM t"); n != 2 {
			t.Errorf("after adding 0004, t has %d rows, want 2", n)
		}
		if got := records(t, db, "other"); len(got) != 0 {
			t.Errorf("records of another component = %v, want none", got)
		}
	})
}

func TestMigrateDialectFolders(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		fsys := migrations(
			"0001_create_d.sql", "CREATE TABLE d (dialect TEXT NOT NULL);",
			"sqlite/0002_add_data.sql", "ALTER TABLE d ADD COLUMN data BLOB; INSERT INTO d VALUES ('sqlite', x'00ff');",
			"postgres/0002_add_data.sql", `ALTER TABLE d ADD COLUMN data BYTEA; INSERT INTO d VALUES ('postgres', '\x00ff'::bytea);`,
			"0003_add_n.sql", "ALTER TABLE d ADD COLUMN n BIGINT NOT NULL DEFAULT 7;",
			"README.md", "Not a migration, ignored.",
		)
		if err := db.Migrate(t.Context(), "comp", fsys); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		want := []record{{1, "create_d"}, {2, "add_data"}, {3, "add_n"}}
		if diff := cmp.Diff(want, records(t, db, "comp")); diff != "" {
			t.Errorf("schema_migrations (-want +got):\n%s", diff)
		}
		type row struct {
			Dialect string
			Data    []byte
			N       int64
		}
		var got row
		if err := db.QueryRowContext(t.Context(), "SELECT dialect, data, n FROM d").Scan(&got.Dialect, &got.Data, &got.N); err != nil {
			t.Fatalf("SELECT: %v", err)
		}
		if diff := cmp.Diff(row{db.Dialect().String(), []byte{0, 0xff}, 7}, got); diff != "" {
			t.Errorf("row written by the dialect's migration (-want +got):\n%s", diff)
		}
	})
}

func TestMigrateEmbedded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		sub, err := fs.Sub(testMigrations, "testdata/migrations")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(t.Context(), "notes", sub); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		want := []record{{1, "create_notes"}, {2, "add_attachment"}, {3, "index_created_at"}}
		if diff := cmp.Diff(want, records(t, db, "notes")); diff != "" {
			t.Errorf("schema_migrations (-want +got):\n%s", diff)
		}
		// The embed.FS itself, without fs.Sub, has no migrations at its root.
		if err := db.Migrate(t.Context(), "notes", testMigrations); !errors.Is(err, store.ErrMigrationFiles) {
			t.Errorf("Migrate(...) without fs.Sub = %v, want %v", err, store.ErrMigrationFiles)
		}
	})
}

func TestMigrateBadFiles(t *testing.T) {
	create := "CREATE TABLE bad (id BIGINT);"
	tests := []struct {
		name string
		fsys fs.FS
	}{
		{"version at root and in dialect folders", migrations(
			"0001_create.sql", create, "sqlite/0001_create.sql", create, "postgres/0001_create.sql", create)},
		{"version twice in a folder", migrations("0001_create.sql", create, "0001_other.sql", "SELECT 1;")},
		{"gap", migrations("0001_create.sql", create, "0003_later.sql", "SELECT 1;")},
		{"not starting at 1", migrations("0002_create.sql", create)},
		{"no description", migrations("0001.sql", create)},
		{"not a number", migrations("one_create.sql", create)},
		{"dash", migrations("0001-create.sql", create)},
		{"empty", migrations()},
		{"only the other dialect", migrations("oracle/0001_create.sql", create)},
	}
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if err := db.Migrate(t.Context(), "comp", tt.fsys); !errors.Is(err, store.ErrMigrationFiles) {
					t.Errorf("Migrate(...) = %v, want %v", err, store.ErrMigrationFiles)
				}
				if tableExists(t, db, "bad") {
					t.Errorf("table bad exists after a rejected set of migrations")
				}
				if got := records(t, db, "comp"); len(got) != 0 {
					t.Errorf("schema_migrations = %v, want nothing", got)
				}
			})
		}
	})
}

func TestMigrateFailureLeavesNoTrace(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		fsys := migrations(
			"0001_create_a.sql", "CREATE TABLE a (id BIGINT);",
			"0002_create_b.sql", "CREATE TABLE b (id BIGINT); INSERT INTO b VALUES (1); THIS IS NOT SQL;",
			"0003_create_c.sql", "CREATE TABLE c (id BIGINT);",
		)
		err := db.Migrate(t.Context(), "comp", fsys)
		if err == nil || !strings.Contains(err.Error(), "0002_create_b.sql") {
			t.Fatalf("Migrate(...) = %v, want an error naming 0002_create_b.sql", err)
		}
		if diff := cmp.Diff([]record{{1, "create_a"}}, records(t, db, "comp")); diff != "" {
			t.Errorf("schema_migrations (-want +got):\n%s", diff)
		}
		for table, want := range map[string]bool{"a": true, "b": false, "c": false} {
			if got := tableExists(t, db, table); got != want {
				t.Errorf("table %s exists = %v, want %v", table, got, want)
			}
		}

		// Once fixed, the failed migration and those after it are applied.
		fsys["0002_create_b.sql"].Data = []byte("CREATE TABLE b (id BIGINT); INSERT INTO b VALUES (1);")
		if err := db.Migrate(t.Context(), "comp", fsys); err != nil {
			t.Fatalf("Migrate(...) after the fix = %v, want nil", err)
		}
		if diff := cmp.Diff([]record{{1, "create_a"}, {2, "create_b"}, {3, "create_c"}}, records(t, db, "comp")); diff != "" {
			t.Errorf("schema_migrations after the fix (-want +got):\n%s", diff)
		}
	})
}

func TestMigrateHistoryMismatch(t *testing.T) {
	tests := []struct {
		name string
		fsys fs.FS
	}{
		{"renamed", migrations(
			"0001_create_x.sql", "CREATE TABLE x (id BIGINT);",
			"0002_renamed.sql", "CREATE TABLE y (id BIGINT);",
			"0003_create_z.sql", "CREATE TABLE z (id BIGINT);")},
		{"database newer than files", migrations(
			"0001_create_x.sql", "CREATE TABLE x (id BIGINT);")},
	}
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				component := strings.ReplaceAll(tt.name, " ", "_")
				applied := migrations(
					"0001_create_x.sql", "CREATE TABLE IF NOT EXISTS x (id BIGINT);",
					"0002_create_y.sql", "CREATE TABLE IF NOT EXISTS y (id BIGINT);")
				if err := db.Migrate(t.Context(), component, applied); err != nil {
					t.Fatalf("Migrate(...) = %v, want nil", err)
				}
				if err := db.Migrate(t.Context(), component, tt.fsys); !errors.Is(err, store.ErrMigrationHistory) {
					t.Errorf("Migrate(...) = %v, want %v", err, store.ErrMigrationHistory)
				}
				if diff := cmp.Diff([]record{{1, "create_x"}, {2, "create_y"}}, records(t, db, component)); diff != "" {
					t.Errorf("schema_migrations (-want +got):\n%s", diff)
				}
				if tableExists(t, db, "z") {
					t.Errorf("table z exists: a migration was applied after a mismatch")
				}
			})
		}
	})
}

func TestMigrateConcurrently(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		fsys := migrations(
			"0001_create_c.sql", "CREATE TABLE c (id BIGINT PRIMARY KEY);",
			"0002_seed.sql", "INSERT INTO c VALUES (1);",
			"0003_seed.sql", "INSERT INTO c VALUES (2);",
		)
		// Each handle is a node of its own, with its own connections.
		nodes := []*store.DB{db, storetest.Another(t, db), storetest.Another(t, db), storetest.Another(t, db)}
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, node := range nodes {
			wg.Go(func() { errs[i] = node.Migrate(t.Context(), "comp", fsys) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("node %d: Migrate(...) = %v, want nil", i, err)
			}
		}
		if diff := cmp.Diff([]record{{1, "create_c"}, {2, "seed"}, {3, "seed"}}, records(t, db, "comp")); diff != "" {
			t.Errorf("schema_migrations (-want +got):\n%s", diff)
		}
		if n := queryInt(t, db, "SELECT count(*) FROM c"); n != 2 {
			t.Errorf("c has %d rows, want 2 (each seed once)", n)
		}
	})
}

// kvFiles creates a small table for the transaction tests.
func kvFiles() fs.FS {
	return migrations("0001_create_kv.sql", "CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL);")
}

func TestInTxCommitAndRollback(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if err := db.Migrate(t.Context(), "kv", kvFiles()); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		insert := func(k string) func(tx *sql.Tx) error {
			return func(tx *sql.Tx) error {
				_, err := tx.ExecContext(t.Context(), "INSERT INTO kv (k, v) VALUES ($1, 1)", k)
				return err
			}
		}

		if err := db.InTx(t.Context(), insert("committed")); err != nil {
			t.Fatalf("InTx(commit) = %v, want nil", err)
		}

		errFn := errors.New("fn failed")
		err := db.InTx(t.Context(), func(tx *sql.Tx) error {
			if err := insert("rolled back")(tx); err != nil {
				return err
			}
			return errFn
		})
		if err != errFn {
			t.Errorf("InTx(failing fn) = %v, want %v unchanged", err, errFn)
		}

		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("recover() = %v, want the panic of fn", r)
				}
			}()
			db.InTx(t.Context(), func(tx *sql.Tx) error {
				insert("panicked")(tx)
				panic("boom")
			})
		}()

		for k, want := range map[string]int64{"committed": 1, "rolled back": 0, "panicked": 0} {
			if got := queryInt(t, db, "SELECT count(*) FROM kv WHERE k = $1", k); got != want {
				t.Errorf("rows with k = %q: %d, want %d", k, got, want)
			}
		}
	})
}

// contentionError returns an error from the driver that InTx must retry.
func contentionError(t *testing.T, db *store.DB) error {
	t.Helper()
	ctx := t.Context()
	if db.Dialect() == store.Postgres {
		_, err := db.ExecContext(ctx, `DO $$ BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = 'serialization_failure'; END $$`)
		if err == nil {
			t.Fatal("raising serialization_failure succeeded")
		}
		return err
	}
	// A second connection that will not wait finds the write lock taken.
	other := storetest.Another(t, db)
	defer other.Close()
	holder, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		t.Fatal(err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err == nil {
		tx.Rollback()
		t.Fatal("a second write transaction began while the first held the lock")
	}
	return err
}

func TestInTxRetries(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if err := db.Migrate(t.Context(), "kv", kvFiles()); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		contention := contentionError(t, db)
		t.Logf("provoked contention error: %v", contention)
		unique := func() error {
			_, err := db.ExecContext(t.Context(), "INSERT INTO kv (k, v) VALUES ('dup', 0), ('dup', 0)")
			return err
		}()
		other := errors.New("fn failed")

		tests := []struct {
			name      string
			failures  int   // attempts that fail before one succeeds
			err       error // the failure
			wantCalls int
			wantErr   error
		}{
			{"contention once", 1, contention, 2, nil},
			{"contention always", math.MaxInt, contention, store.TxAttempts, contention},
			{"unique violation", math.MaxInt, unique, 1, unique},
			{"other error", math.MaxInt, other, 1, other},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				exec(t, db, "DELETE FROM kv")
				calls := 0
				err := db.InTx(t.Context(), func(tx *sql.Tx) error {
					calls++
					// Each attempt writes; only the successful one may remain.
					if _, err := tx.ExecContext(t.Context(), "INSERT INTO kv (k, v) VALUES ($1, $2)", fmt.Sprint("attempt ", calls), calls); err != nil {
						return err
					}
					if calls <= tt.failures {
						return fmt.Errorf("wrapped: %w", tt.err)
					}
					return nil
				})
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("InTx(...) = %v, want %v", err, tt.wantErr)
				}
				if calls != tt.wantCalls {
					t.Errorf("fn called %d times, want %d", calls, tt.wantCalls)
				}
				wantRows := int64(0)
				if tt.wantErr == nil {
					wantRows = 1
				}
				if n := queryInt(t, db, "SELECT count(*) FROM kv"); n != wantRows {
					t.Errorf("kv has %d rows, want %d", n, wantRows)
				}
			})
		}
	})
}

// TestInTxConcurrentWriters checks that concurrent transactions from several
// handles neither fail nor lose updates.
func TestInTxConcurrentWriters(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if err := db.Migrate(t.Context(), "kv", kvFiles()); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		exec(t, db, "INSERT INTO kv (k, v) VALUES ('counter', 0)")
		nodes := []*store.DB{db, storetest.Another(t, db)}
		const workers, increments = 8, 10
		var wg sync.WaitGroup
		errs := make(chan error, workers*increments)
		for w := range workers {
			node := nodes[w%len(nodes)]
			wg.Go(func() {
				for range increments {
					errs <- node.InTx(t.Context(), func(tx *sql.Tx) error {
						_, err := tx.ExecContext(t.Context(), "UPDATE kv SET v = v + 1 WHERE k = 'counter'")
						return err
					})
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("InTx(increment) = %v, want nil", err)
			}
		}
		if got := queryInt(t, db, "SELECT v FROM kv WHERE k = 'counter'"); got != workers*increments {
			t.Errorf("counter = %d, want %d", got, workers*increments)
		}
	})
}

// TestInTxRetriesDeadlock provokes a real deadlock on PostgreSQL, which
// aborts one of the two transactions; InTx must run it again.
func TestInTxRetriesDeadlock(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if db.Dialect() != store.Postgres {
			t.Skip("SQLite write transactions are serialised at BEGIN and cannot deadlock")
		}
		if err := db.Migrate(t.Context(), "kv", kvFiles()); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		exec(t, db, "INSERT INTO kv (k, v) VALUES ('a', 0), ('b', 0)")
		var barrier, wg sync.WaitGroup
		barrier.Add(2)
		var calls [2]int
		var errs [2]error
		for i, order := range [2][2]string{{"a", "b"}, {"b", "a"}} {
			wg.Go(func() {
				errs[i] = db.InTx(t.Context(), func(tx *sql.Tx) error {
					calls[i]++
					if _, err := tx.ExecContext(t.Context(), "UPDATE kv SET v = v + 1 WHERE k = $1", order[0]); err != nil {
						return err
					}
					if calls[i] == 1 {
						// Both hold their first row before either takes its second.
						barrier.Done()
						barrier.Wait()
					}
					_, err := tx.ExecContext(t.Context(), "UPDATE kv SET v = v + 1 WHERE k = $1", order[1])
					return err
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("transaction %d: InTx(...) = %v, want nil", i, err)
			}
		}
		if got := calls[0] + calls[1]; got != 3 {
			t.Errorf("fn called %v times, want one retry (3 in all)", calls)
		}
		if got := queryInt(t, db, "SELECT sum(v) FROM kv"); got != 4 {
			t.Errorf("sum of kv = %d, want 4", got)
		}
	})
}

func TestIsUniqueViolation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if err := db.Migrate(t.Context(), "u", migrations("0001_create_u.sql",
			"CREATE TABLE u (id BIGINT PRIMARY KEY, email TEXT NOT NULL UNIQUE);")); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		exec(t, db, "INSERT INTO u (id, email) VALUES (1, 'a@example.org')")
		execErr := func(query string) error {
			_, err := db.ExecContext(t.Context(), query)
			if err == nil {
				t.Fatalf("%s succeeded, want an error", query)
			}
			return err
		}
		pk := execErr("INSERT INTO u (id, email) VALUES (1, 'b@example.org')")
		tests := []struct {
			name string
			err  error
			want bool
		}{
			{"primary key", pk, true},
			{"unique column", execErr("INSERT INTO u (id, email) VALUES (2, 'a@example.org')"), true},
			{"wrapped", fmt.Errorf("create user: %w", pk), true},
			{"not null", execErr("INSERT INTO u (id) VALUES (3)"), false},
			{"syntax", execErr("INSERT INTO u VALUES"), false},
			{"no such table", execErr("SELECT * FROM missing"), false},
			{"not a driver error", errors.New("duplicate key"), false},
			{"nil", nil, false},
		}
		for _, tt := range tests {
			if got := store.IsUniqueViolation(tt.err); got != tt.want {
				t.Errorf("%s: IsUniqueViolation(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
			}
		}
	})
}

// item is a row of the round-trip table.
type item struct {
	ID   int64
	At   int64
	Data []byte
}

// itemFiles creates the round-trip table, with the dialects' blob types.
func itemFiles() fs.FS {
	return migrations(
		"sqlite/0001_create_items.sql", "CREATE TABLE items (id BIGINT PRIMARY KEY, at BIGINT NOT NULL, data BLOB);",
		"postgres/0001_create_items.sql", "CREATE TABLE items (id BIGINT PRIMARY KEY, at BIGINT NOT NULL, data BYTEA);",
	)
}

func readItems(t *testing.T, db *store.DB) []item {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), "SELECT id, at, data FROM items ORDER BY id")
	if err != nil {
		t.Fatalf("SELECT items: %v", err)
	}
	defer rows.Close()
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.ID, &it.At, &it.Data); err != nil {
			t.Fatalf("SELECT items: %v", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("SELECT items: %v", err)
	}
	return items
}

func TestRoundTrip(t *testing.T) {
	big := make([]byte, 64<<10)
	rand.Read(big)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	now := time.Now()
	want := []item{
		{1, math.MaxInt64, big},
		{2, math.MinInt64, all},
		{3, now.UnixMicro(), nil}, // NULL
		{4, 0, []byte{0}},
		{5, -1, []byte("text is bytes too")},
	}
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if err := db.Migrate(t.Context(), "items", itemFiles()); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		for _, it := range want {
			exec(t, db, "INSERT INTO items (id, at, data) VALUES ($1, $2, $3)", it.ID, it.At, it.Data)
		}
		got := readItems(t, db)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("items (-want +got):\n%s", diff)
		}
		if len(got) == len(want) {
			if at := time.UnixMicro(got[2].At); !at.Equal(now.Truncate(time.Microsecond)) {
				t.Errorf("time round trip = %v, want %v", at, now.Truncate(time.Microsecond))
			}
		}
	})
}

func TestReopen(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if err := db.Migrate(t.Context(), "items", itemFiles()); err != nil {
			t.Fatalf("Migrate(...) = %v, want nil", err)
		}
		want := []item{{1, time.Now().UnixMicro(), []byte("accepted before the restart")}}
		err := db.InTx(t.Context(), func(tx *sql.Tx) error {
			_, err := tx.ExecContext(t.Context(), "INSERT INTO items (id, at, data) VALUES ($1, $2, $3)", want[0].ID, want[0].At, want[0].Data)
			return err
		})
		if err != nil {
			t.Fatalf("InTx(insert) = %v, want nil", err)
		}

		db = storetest.Reopen(t, db)
		if err := db.Migrate(t.Context(), "items", itemFiles()); err != nil {
			t.Fatalf("Migrate(...) after reopening = %v, want nil", err)
		}
		if diff := cmp.Diff(want, readItems(t, db)); diff != "" {
			t.Errorf("items after reopening (-want +got):\n%s", diff)
		}
	})
}

func TestOpenSQLite(t *testing.T) {
	type pragmas struct {
		JournalMode string
		ForeignKeys int64
		Synchronous int64 // 1 NORMAL, 2 FULL
		BusyTimeout int64
	}
	tests := []struct {
		name string
		cfg  func(dir string) store.Config
		file string
		want pragmas
	}{
		{"data dir", func(dir string) store.Config { return store.Config{DataDir: filepath.Join(dir, "data")} },
			"data/mobileid.db", pragmas{"wal", 1, 1, 10000}},
		{"dsn", func(dir string) store.Config { return store.Config{DSN: "sqlite:" + filepath.Join(dir, "x.db")} },
			"x.db", pragmas{"wal", 1, 1, 10000}},
		{"sync full", func(dir string) store.Config {
			return store.Config{DSN: "sqlite:" + filepath.Join(dir, "x.db"), SyncFull: true}
		}, "x.db", pragmas{"wal", 1, 2, 10000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := store.Open(t.Context(), tt.cfg(dir))
			if err != nil {
				t.Fatalf("Open() = %v, want nil", err)
			}
			defer db.Close()
			if db.Dialect() != store.SQLite {
				t.Errorf("Dialect() = %v, want %v", db.Dialect(), store.SQLite)
			}
			if _, err := os.Stat(filepath.Join(dir, tt.file)); err != nil {
				t.Errorf("database file: %v", err)
			}
			var got pragmas
			ctx := t.Context()
			for _, p := range []struct {
				name string
				dst  any
			}{
				{"journal_mode", &got.JournalMode},
				{"foreign_keys", &got.ForeignKeys},
				{"synchronous", &got.Synchronous},
				{"busy_timeout", &got.BusyTimeout},
			} {
				if err := db.QueryRowContext(ctx, "PRAGMA "+p.name).Scan(p.dst); err != nil {
					t.Fatalf("PRAGMA %s: %v", p.name, err)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("pragmas (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("data dir is private", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		db, err := store.Open(t.Context(), store.Config{DataDir: dir})
		if err != nil {
			t.Fatalf("Open() = %v, want nil", err)
		}
		db.Close()
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("data directory mode = %v, want no access for group and others", perm)
		}
	})
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  store.Config
	}{
		{"nothing configured", store.Config{}},
		{"unknown scheme", store.Config{DSN: "mysql://u:secret@localhost/db"}},
		{"bare path", store.Config{DSN: "/tmp/x.db"}},
		{"memory", store.Config{DSN: "sqlite::memory:"}},
		{"sqlite uri", store.Config{DSN: "sqlite:file:x.db?mode=memory"}},
		{"empty sqlite path", store.Config{DSN: "sqlite:"}},
		{"postgres unreachable", store.Config{DSN: "postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			db, err := store.Open(ctx, tt.cfg)
			if err == nil {
				db.Close()
				t.Fatalf("Open(%+v) = nil error, want an error", tt.cfg)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("Open() error %q shows the password", err)
			}
		})
	}
}

func TestDialectString(t *testing.T) {
	for d, want := range map[store.Dialect]string{store.SQLite: "sqlite", store.Postgres: "postgres", 0: "Dialect(0)"} {
		if got := d.String(); got != want {
			t.Errorf("Dialect(%d).String() = %q, want %q", int(d), got, want)
		}
	}
}
