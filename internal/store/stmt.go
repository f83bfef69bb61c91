package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Stmt returns query prepared once per DB and bound to tx (or to the DB
// when tx is nil). Hot statements skip the parser this way: on SQLite the
// parse of a short statement costs more than running it, and the single
// writer pays for every parse inside a write transaction. database/sql
// prepares the statement again on each pooled connection that runs it,
// once. The statement bound to tx is closed with the transaction.
func (db *DB) Stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	db.stmtMu.Lock()
	st := db.stmts[query]
	db.stmtMu.Unlock()
	if st == nil {
		var err error
		if st, err = db.PrepareContext(ctx, query); err != nil {
			return nil, fmt.Errorf("prepare statement: %w", err)
		}
		db.stmtMu.Lock()
		if prev := db.stmts[query]; prev != nil {
			st.Close()
			st = prev
		} else {
			if db.stmts == nil {
				db.stmts = map[string]*sql.Stmt{}
			}
			db.stmts[query] = st
		}
		db.stmtMu.Unlock()
	}
	if tx == nil {
		return st, nil
	}
	return tx.StmtContext(ctx, st), nil
}

// ExecTx runs a prepared query (see Stmt) in tx.
func (db *DB) ExecTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	st, err := db.Stmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryRowTx runs a prepared query (see Stmt) in tx, or on the DB when tx
// is nil. If the statement cannot be prepared the query runs unprepared,
// so that its error surfaces from Scan.
func (db *DB) QueryRowTx(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	st, err := db.Stmt(ctx, tx, query)
	if err != nil {
		if tx != nil {
			return tx.QueryRowContext(ctx, query, args...)
		}
		return db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryTx runs a prepared query (see Stmt) in tx, or on the DB when tx is
// nil.
func (db *DB) QueryTx(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	st, err := db.Stmt(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}
