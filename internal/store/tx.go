package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// InTx retry policy: the back-off doubles from txBackoff on each attempt and
// is jittered so that the transactions that collided do not collide again.
const (
	txAttempts = 5
	txBackoff  = 10 * time.Millisecond
)

// InTx runs fn in a read-write transaction and commits it if fn returns nil;
// otherwise, or if fn panics, it rolls the transaction back and returns fn's
// error unchanged.
//
// When the transaction fails because of contention with another transaction
// (SQLITE_BUSY or SQLITE_LOCKED; PostgreSQL serialization_failure or
// deadlock_detected) InTx rolls back and runs fn again, a few times, after a
// short random pause. fn must therefore have no effect outside tx, or effects
// that may safely repeat, and must not keep state from a failed attempt.
// After the last attempt the error is returned. On SQLite, contention shows
// up only after a statement has waited 10 s for the lock (or ctx ended), so
// the retries are a last resort there.
//
// On SQLite the transaction takes the database's single write lock at BEGIN,
// so transactions are serialised: keep them short, do no network I/O in fn,
// and use only tx inside fn (a query on the DB itself may wait for a
// connection or a lock that this transaction holds). On PostgreSQL the
// transaction runs at the server's default isolation, READ COMMITTED.
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.InTxPriority(ctx, Routine, fn)
}

// InTxPriority is InTx with a priority. On SQLite, write transactions take
// turns in Go before BEGIN, the waiters of a higher priority first, instead
// of sleeping in SQLite's busy handler; the wait is bounded, after which the
// transaction proceeds to SQLite's own locking. On PostgreSQL the priority
// has no effect.
func (db *DB) InTxPriority(ctx context.Context, p Priority, fn func(tx *sql.Tx) error) error {
	backoff := txBackoff
	for attempt := 1; ; attempt++ {
		err := db.inTxGated(ctx, p, fn)
		if err == nil || attempt == txAttempts || !isRetryable(err) {
			return err
		}
		pause := backoff/2 + rand.N(backoff/2)
		backoff *= 2
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// inTxGated makes one attempt of InTxPriority, at the gate on SQLite.
func (db *DB) inTxGated(ctx context.Context, p Priority, fn func(tx *sql.Tx) error) error {
	if db.gate != nil && db.gate.enter(ctx, p) {
		defer db.gate.leave()
		db.gate.commits.Add(1)
	}
	return db.inTx(ctx, fn)
}

// inTx makes one attempt of InTx.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// After a successful Commit this does nothing; it matters when fn fails
	// or panics.
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// isRetryable reports whether err means that the transaction lost a race
// with another one and would likely succeed if run again.
func isRetryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		// The primary result code is the low byte of the extended one.
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01" // serialization_failure, deadlock_detected
	}
	return false
}

// IsUniqueViolation reports whether err, or an error it wraps, is a violation
// of a primary key or unique constraint, on either engine. Callers use it to
// turn a duplicate insert into their own "already exists" error.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation, also raised for primary keys
	}
	return false
}
