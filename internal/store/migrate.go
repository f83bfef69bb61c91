package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors returned, wrapped, by Migrate.
var (
	// ErrMigrationFiles means the migration files are malformed: a file name
	// not of the form NNNN_description.sql, a version given twice, a gap in
	// the versions, or no migrations at all.
	ErrMigrationFiles = errors.New("store: invalid migration files")
	// ErrMigrationHistory means the migrations recorded in the database do
	// not match the files: an applied version has been renamed, has no file
	// (the database is newer than the program), or was skipped.
	ErrMigrationHistory = errors.New("store: applied migrations do not match the files")
)

// createMigrationsTable is the same in both dialects.
const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT   NOT NULL,
	version    BIGINT NOT NULL,
	name       TEXT   NOT NULL,
	applied_at BIGINT NOT NULL,
	PRIMARY KEY (component, version)
)`

// migration is one migration file.
type migration struct {
	version int64
	name    string // the description part of the file name
	path    string // in the migration fs.FS, for errors
	sql     string
}

// Migrate brings component's tables up to date with the migrations in fsys.
//
// fsys holds files named NNNN_description.sql, numbered from 1 without gaps.
// A migration that differs between engines goes in the folders sqlite/ and
// postgres/, one that is the same for both at the root; a version may not be
// in both. A component embeds its migrations and passes the folder:
//
//	//go:embed migrations
//	var migrations embed.FS
//
//	sub, err := fs.Sub(migrations, "migrations")
//	...
//	err = db.Migrate(ctx, "sms", sub)
//
// Migrations are applied in version order, each in its own transaction
// together with its row in schema_migrations(component, version, name,
// applied_at), so a migration that fails leaves no trace and the next call
// retries it. Applied versions are skipped; an applied version whose name
// changed, or that has no file, is an error ([ErrMigrationHistory]) and
// nothing is applied. A migration therefore must not be edited once released:
// add a new one.
//
// Several processes may migrate the same database at once: on PostgreSQL each
// step holds an advisory lock keyed by the component, on SQLite the write
// lock; the others wait and then find the work done. Statements that cannot
// run inside a transaction (CREATE INDEX CONCURRENTLY, VACUUM, PRAGMA
// foreign_keys) cannot be used in migrations.
func (db *DB) Migrate(ctx context.Context, component string, fsys fs.FS) error {
	if component == "" {
		return errors.New("migrate: empty component name")
	}
	ms, err := loadMigrations(fsys, db.dialect)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", component, err)
	}
	// The table is created under a lock of its own because concurrent
	// CREATE TABLE IF NOT EXISTS can fail on PostgreSQL.
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		if err := db.lockMigrations(ctx, tx, "schema_migrations"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, createMigrationsTable)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate %s: create schema_migrations: %w", component, err)
	}
	for {
		var done bool
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			done = false
			if err := db.lockMigrations(ctx, tx, component); err != nil {
				return err
			}
			// Read under the lock: another process may have just applied
			// the migration this one was about to apply.
			applied, err := appliedMigrations(ctx, tx, component)
			if err != nil {
				return err
			}
			if err := checkHistory(ms, applied); err != nil {
				return err
			}
			if len(applied) == len(ms) {
				done = true
				return nil
			}
			m := ms[len(applied)]
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.path, err)
			}
			_, err = tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (component, version, name, applied_at) VALUES ($1, $2, $3, $4)`,
				component, m.version, m.name, time.Now().UnixMicro())
			if err != nil {
				return fmt.Errorf("record %s: %w", m.path, err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", component, err)
		}
		if done {
			return nil
		}
	}
}

// lockMigrations serialises migrations of the same key across processes
// until tx ends. On SQLite the immediate transaction already holds the
// database's only write lock.
func (db *DB) lockMigrations(ctx context.Context, tx *sql.Tx, key string) error {
	if db.dialect != Postgres {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte("mobileid/store.Migrate:" + key))
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	return nil
}

// loadMigrations reads the migrations for dialect from fsys, sorted by
// version.
func loadMigrations(fsys fs.FS, dialect Dialect) ([]migration, error) {
	var ms []migration
	for _, dir := range []string{".", dialect.String()} {
		entries, err := fs.ReadDir(fsys, dir)
		if dir != "." && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read migrations: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || path.Ext(e.Name()) != ".sql" {
				continue
			}
			p := path.Join(dir, e.Name())
			version, name, ok := parseMigrationName(e.Name())
			if !ok {
				return nil, fmt.Errorf("%w: %s is not named NNNN_description.sql", ErrMigrationFiles, p)
			}
			if i := slices.IndexFunc(ms, func(m migration) bool { return m.version == version }); i >= 0 {
				return nil, fmt.Errorf("%w: version %d is both %s and %s", ErrMigrationFiles, version, ms[i].path, p)
			}
			body, err := fs.ReadFile(fsys, p)
			if err != nil {
				return nil, fmt.Errorf("read migrations: %w", err)
			}
			ms = append(ms, migration{version: version, name: name, path: p, sql: string(body)})
		}
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("%w: no NNNN_description.sql files at the root or in %s/", ErrMigrationFiles, dialect)
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i, m := range ms {
		if m.version != int64(i+1) {
			return nil, fmt.Errorf("%w: version %d is missing (found %s)", ErrMigrationFiles, i+1, m.path)
		}
	}
	return ms, nil
}

// parseMigrationName splits "0012_add_index.sql" into 12 and "add_index".
func parseMigrationName(file string) (version int64, name string, ok bool) {
	digits, name, ok := strings.Cut(strings.TrimSuffix(file, ".sql"), "_")
	if !ok || name == "" || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, "", false
	}
	version, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || version < 1 {
		return 0, "", false
	}
	return version, name, true
}

// appliedMigration is a row of schema_migrations.
type appliedMigration struct {
	version int64
	name    string
}

func appliedMigrations(ctx context.Context, tx *sql.Tx, component string) ([]appliedMigration, error) {
	rows, err := tx.QueryContext(ctx,
		`SELECT version, name FROM schema_migrations WHERE component = $1 ORDER BY version`, component)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	var applied []appliedMigration
	for rows.Next() {
		var a appliedMigration
		if err := rows.Scan(&a.version, &a.name); err != nil {
			return nil, fmt.Errorf("read schema_migrations: %w", err)
		}
		applied = append(applied, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	return applied, nil
}

// checkHistory checks that the applied migrations are the first
// len(applied) of ms, by version and name.
func checkHistory(ms []migration, applied []appliedMigration) error {
	for i, a := range applied {
		switch {
		case a.version != int64(i+1):
			return fmt.Errorf("%w: version %d is applied but version %d is not", ErrMigrationHistory, a.version, i+1)
		case i >= len(ms):
			return fmt.Errorf("%w: version %d (%s) is applied but has no file: the database is newer than this program", ErrMigrationHistory, a.version, a.name)
		case a.name != ms[i].name:
			return fmt.Errorf("%w: version %d was applied as %q but the file is %s", ErrMigrationHistory, a.version, a.name, ms[i].path)
		}
	}
	return nil
}
