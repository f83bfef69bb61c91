// Package store is the database layer every stateful component builds on.
//
// It opens one database, either an embedded SQLite file (the default, in the
// data directory) or a PostgreSQL server shared by several nodes, and hands it
// out as a [DB], which is a *sql.DB plus the few things both engines need:
// per-component schema migrations ([DB.Migrate]), transactions that are
// retried on transient contention ([DB.InTx]) and error classification
// ([IsUniqueViolation]).
//
// # Writing portable SQL
//
// Queries are written once, with $1, $2, ... placeholders, which both engines
// accept; only DDL differs per dialect, and it lives in the migration files.
// By convention:
//
//   - Times are stored as BIGINT Unix microseconds (time.Time.UnixMicro and
//     time.UnixMicro). Neither engine's time types round-trip the same way
//     through database/sql, while an integer does, and microseconds are what
//     PostgreSQL keeps anyway.
//   - Binary data is BLOB in SQLite and BYTEA in PostgreSQL, scanned into a
//     []byte.
//   - Text is TEXT and integers are BIGINT in both.
//
// # Durability
//
// SQLite runs in WAL mode with synchronous=NORMAL: a committed transaction
// survives a crash of the process, but a power loss or kernel crash may lose
// the last few transactions (the database stays consistent). Set
// [Config.SyncFull] to make every commit durable at the cost of an fsync per
// commit. PostgreSQL's durability is the server's configuration.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// Config says which database to open.
type Config struct {
	// DSN selects the database. Empty means the SQLite file mobileid.db in
	// DataDir; "sqlite:PATH" means the SQLite file PATH; a URL starting with
	// postgres:// or postgresql:// means that PostgreSQL database, with the
	// URL's parameters as pgx understands them (unknown ones, such as
	// search_path, become session settings).
	DSN string
	// DataDir is the directory holding the default SQLite file. It is
	// created, private to the user, if missing. It is only used when DSN is
	// empty.
	DataDir string
	// SyncFull makes SQLite fsync on every commit (synchronous=FULL), so that
	// committed transactions also survive a power loss. It has no effect on
	// PostgreSQL.
	SyncFull bool
}

// Dialect identifies the database engine behind a DB, for the few places
// (mainly DDL) where the engines differ.
type Dialect int

// The supported dialects.
const (
	SQLite Dialect = iota + 1
	Postgres
)

// String returns the dialect's name, which is also the name of its migration
// folder: "sqlite" or "postgres".
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// DB is an open database. Its embedded *sql.DB is safe for concurrent use and
// is meant to be shared by all components of a process.
type DB struct {
	*sql.DB
	dialect Dialect
	cfg     Config

	// Prepared statements by query (see Stmt).
	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt

	// SQLite only: the write gate and the WAL checkpointer.
	gate           *writeGate
	stopCheckpoint context.CancelFunc
	checkpointDone chan struct{}
}

// Pool sizes. SQLite has a single writer, so more connections only buy
// concurrent readers; they are cheap and are kept open, since closing one
// throws away its page cache. PostgreSQL connections are server processes
// shared by every node, so each node keeps a modest pool and recycles idle
// ones.
const (
	sqliteMaxConns   = 16
	postgresMaxConns = 16
	postgresMaxIdle  = 4
	postgresIdleTime = 5 * time.Minute
	postgresLifetime = time.Hour
)

// sqliteBusyTimeout is how long a SQLite statement waits for a lock held by
// another connection before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// Open opens and pings the database cfg selects. The caller must Close it.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	switch {
	case cfg.DSN == "":
		if cfg.DataDir == "" {
			return nil, errors.New("open database: neither a DSN nor a data directory is configured")
		}
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("open sqlite database: %w", err)
		}
		return openSQLite(ctx, cfg, filepath.Join(cfg.DataDir, "mobileid.db"))
	case strings.HasPrefix(cfg.DSN, "sqlite:"):
		return openSQLite(ctx, cfg, strings.TrimPrefix(cfg.DSN, "sqlite:"))
	case strings.HasPrefix(cfg.DSN, "postgres://"), strings.HasPrefix(cfg.DSN, "postgresql://"):
		return openPostgres(ctx, cfg)
	}
	return nil, fmt.Errorf("open database: unsupported DSN %q: want empty, sqlite:PATH, or a postgres:// URL", redact(cfg.DSN))
}

func openSQLite(ctx context.Context, cfg Config, path string) (*DB, error) {
	// modernc takes everything after the first '?' as parameters, and an
	// in-memory database would be private to each pooled connection.
	switch {
	case path == "":
		return nil, errors.New("open sqlite database: empty path")
	case path == ":memory:" || strings.HasPrefix(path, "file:"):
		return nil, fmt.Errorf("open sqlite database: %q is not supported, use a file path", path)
	case strings.Contains(path, "?"):
		return nil, fmt.Errorf("open sqlite database: path %q contains '?'", path)
	}
	syncMode := "NORMAL"
	if cfg.SyncFull {
		syncMode = "FULL"
	}
	// busy_timeout comes first (modernc orders it so) so that switching to
	// WAL waits for other connections rather than failing. _txlock=immediate
	// makes every read-write transaction take the write lock at BEGIN: a
	// transaction that read first and then tried to upgrade could otherwise
	// fail with SQLITE_BUSY without waiting.
	params := url.Values{
		"_pragma": {
			fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()),
			"journal_mode(WAL)",
			"foreign_keys(ON)",
			"synchronous(" + syncMode + ")",
			// 16 MiB of page cache per connection (SQLite's default is 2 MiB):
			// the hot pages of the outbox and the transactions stay in memory.
			"cache_size(-16384)",
		},
		"_txlock": {"immediate"},
	}
	sqldb, err := sql.Open("sqlite", path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite database: %w", err)
	}
	sqldb.SetMaxOpenConns(sqliteMaxConns)
	sqldb.SetMaxIdleConns(sqliteMaxConns)
	db := &DB{DB: sqldb, dialect: SQLite, cfg: cfg, gate: &writeGate{}}

	// Some file systems cannot do WAL, and SQLite then silently keeps its
	// rollback journal, which has neither the concurrency nor the crash
	// behaviour documented above.
	var mode string
	if err := sqldb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		sqldb.Close()
		return nil, fmt.Errorf("open sqlite database %s: journal mode is %q, want wal", path, mode)
	}
	cctx, cancel := context.WithCancel(context.Background())
	db.stopCheckpoint, db.checkpointDone = cancel, make(chan struct{})
	go func() {
		defer close(db.checkpointDone)
		db.checkpointLoop(cctx)
	}()
	return db, nil
}

func openPostgres(ctx context.Context, cfg Config) (*DB, error) {
	sqldb, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("open postgres database: %w", err)
	}
	sqldb.SetMaxOpenConns(postgresMaxConns)
	sqldb.SetMaxIdleConns(postgresMaxIdle)
	sqldb.SetConnMaxIdleTime(postgresIdleTime)
	sqldb.SetConnMaxLifetime(postgresLifetime)
	if err := sqldb.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open postgres database %s: %w", redact(cfg.DSN), err)
	}
	return &DB{DB: sqldb, dialect: Postgres, cfg: cfg}, nil
}

// redact hides the password of a URL DSN so it can go into an error.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// Dialect reports which engine the database runs on.
func (db *DB) Dialect() Dialect { return db.dialect }

// Config returns the configuration db was opened with, so that the same
// database can be opened again (a second handle, or after a restart).
func (db *DB) Config() Config { return db.cfg }

// Close closes the database and its connections. For SQLite the last
// connection to close checkpoints the WAL into the database file.
func (db *DB) Close() error {
	db.stmtMu.Lock()
	for _, st := range db.stmts {
		st.Close()
	}
	db.stmts = nil
	db.stmtMu.Unlock()
	if db.stopCheckpoint != nil {
		db.stopCheckpoint()
		<-db.checkpointDone
	}
	if err := db.DB.Close(); err != nil {
		return fmt.Errorf("close %s database: %w", db.dialect, err)
	}
	return nil
}
