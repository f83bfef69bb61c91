package messaging

import (
	"context"
	"database/sql"
	"errors"

	"mobileid/internal/store"
)

// Batch transactions
//
// Work that queues up — the deliver_sm and submit_sm_resp read on a bind,
// concurrent SendPacket calls, receipts to match, MOs and outcomes for the
// Handler — is written many items per transaction. On SQLite the fixed cost
// of a transaction (taking the write lock, WAL frames, system calls) is
// many times that of the few statements of one item, so a transaction per
// item is what limits throughput. runBatch is the one place that does it;
// callers describe each item as a txItem.

// A txItem is one piece of work in a batch transaction.
type txItem struct {
	// do does the item's work with b. It may run more than once — the
	// store retries a transaction that lost a race, and runBatch runs the
	// items of a failed batch again one by one — so it must set, not
	// accumulate, whatever done reads.
	do func(ctx context.Context, b *batch) error
	// savepoint runs do inside a SAVEPOINT: when do fails, its writes
	// (and the items it added) are rolled back, onFail records the
	// failure in the transaction, and the other items commit. Without
	// it, a failing do aborts the batch, whose items are then run again,
	// each in a transaction of its own, so that only the culprit fails.
	savepoint bool
	onFail    func(b *batch, err error) error
	// done runs once the transaction is over, with nil when do's writes
	// committed, a *postponed error when do failed but the batch (with
	// what onFail wrote) committed, and otherwise the error that kept
	// anything of this item from committing.
	done func(err error)
}

// postponed is the error given to done when a savepoint item failed and
// was rolled back alone; what onFail wrote committed.
type postponed struct{ err error }

func (e *postponed) Error() string { return e.err.Error() }
func (e *postponed) Unwrap() error { return e.err }

// aborted wraps the failure of an item that ended its batch transaction.
type aborted struct{ err error }

func (e *aborted) Error() string { return e.err.Error() }
func (e *aborted) Unwrap() error { return e.err }

// batch is the state of one attempt of a batch transaction.
type batch struct {
	s     *Server
	ctx   context.Context // for statements: never cancelled mid-batch
	tx    *sql.Tx
	items []*txItem
	errs  []error
	stmts map[*sql.Stmt]*sql.Stmt // prepared statements bound to tx
	// inserted are the messages written in this transaction, by id.
	inserted map[int64]*mtMessage
}

// add appends an item to the running batch: it runs in the same
// transaction, after those already there. An item that depends on
// another's writes (an outcome to hand over once decided) is added by it.
func (b *batch) add(it *txItem) { b.items = append(b.items, it) }

// runBatch runs items in one transaction and then calls their done in
// order. ctx is handed to do (and thus to the Handler); the statements run
// without its cancellation, so that a batch in flight ends cleanly.
func (s *Server) runBatch(ctx context.Context, class gateClass, items []*txItem) {
	if len(items) == 0 {
		return
	}
	dbctx := context.WithoutCancel(ctx)
	var b *batch
	err := s.inTx(dbctx, class, func(tx *sql.Tx) error {
		b = &batch{s: s, ctx: dbctx, tx: tx, items: append(make([]*txItem, 0, len(items)), items...)}
		for i := 0; i < len(b.items); i++ {
			itemErr, err := b.run(ctx, b.items[i])
			if err != nil {
				return &aborted{err}
			}
			b.errs = append(b.errs, itemErr)
		}
		return nil
	})
	var ab *aborted
	switch {
	case err == nil:
		for i, it := range b.items {
			if it.done != nil {
				it.done(b.errs[i])
			}
		}
	case errors.As(err, &ab) && len(items) > 1:
		// Find the culprit: only its transaction fails now.
		for _, it := range items {
			s.runBatch(ctx, class, []*txItem{it})
		}
	default:
		// BEGIN or COMMIT failed (or a lone item did): nothing committed.
		if ab != nil {
			err = ab.err
		}
		for _, it := range items {
			if it.done != nil {
				it.done(err)
			}
		}
	}
}

// inBatchTx runs fn in a write transaction (see inTx), with a batch for
// its statements.
func (s *Server) inBatchTx(ctx context.Context, fn func(b *batch) error) error {
	dbctx := context.WithoutCancel(ctx)
	return s.inTx(dbctx, routine, func(tx *sql.Tx) error {
		return fn(&batch{s: s, ctx: dbctx, tx: tx})
	})
}

// run runs one item. itemErr is the failure of a savepoint item that was
// rolled back alone; err is one that must end the transaction.
func (b *batch) run(ctx context.Context, it *txItem) (itemErr, err error) {
	if !it.savepoint {
		return nil, it.do(ctx, b)
	}
	q := b.s.q
	if _, err := b.exec(q.savepoint); err != nil {
		return nil, err
	}
	n := len(b.items)
	doErr := it.do(ctx, b)
	if doErr == nil {
		_, err := b.exec(q.release)
		return nil, err
	}
	b.items = b.items[:n]
	if _, err := b.exec(q.rollbackTo); err != nil {
		return nil, errors.Join(doErr, err)
	}
	if _, err := b.exec(q.release); err != nil {
		return nil, err
	}
	if it.onFail != nil {
		if err := it.onFail(b, doErr); err != nil {
			return nil, err
		}
	}
	return &postponed{doErr}, nil
}

// stmt returns q's prepared statement bound to the transaction, or nil if
// q is not prepared.
func (b *batch) stmt(q *query) *sql.Stmt {
	if q.st == nil {
		return nil
	}
	if st := b.stmts[q.st]; st != nil {
		return st
	}
	if b.stmts == nil {
		b.stmts = make(map[*sql.Stmt]*sql.Stmt)
	}
	st := b.tx.StmtContext(b.ctx, q.st)
	b.stmts[q.st] = st
	return st
}

func (b *batch) exec(q *query, args ...any) (sql.Result, error) {
	if st := b.stmt(q); st != nil {
		return st.ExecContext(b.ctx, args...)
	}
	return b.tx.ExecContext(b.ctx, q.text, args...)
}

func (b *batch) queryRow(q *query, args ...any) *sql.Row {
	if st := b.stmt(q); st != nil {
		return st.QueryRowContext(b.ctx, args...)
	}
	return b.tx.QueryRowContext(b.ctx, q.text, args...)
}

func (b *batch) query(q *query, args ...any) (*sql.Rows, error) {
	if st := b.stmt(q); st != nil {
		return st.QueryContext(b.ctx, args...)
	}
	return b.tx.QueryContext(b.ctx, q.text, args...)
}

// insert runs an INSERT of one row and returns the row's id: the
// statement's RETURNING id on PostgreSQL, the row id on SQLite, whose
// INTEGER PRIMARY KEY it is.
func (b *batch) insert(q *query, args ...any) (int64, error) {
	if b.s.db.Dialect() == store.Postgres {
		var id int64
		err := b.queryRow(q, args...).Scan(&id)
		return id, err
	}
	res, err := b.exec(q, args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// execOne runs a guarded update and reports whether it changed one row.
func (b *batch) execOne(q *query, args ...any) (bool, error) {
	res, err := b.exec(q, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// inTx runs fn in a write transaction of the store, at the given
// priority (see store.DB.InTxPriority).
func (s *Server) inTx(ctx context.Context, class gateClass, fn func(tx *sql.Tx) error) error {
	s.commits.Add(1)
	return s.db.InTxPriority(ctx, class, fn)
}

// A gateClass orders the transactions waiting for SQLite's writer.
type gateClass = store.Priority

const (
	// urgent: storing what an SMSC waits for (deliver_sm awaiting their
	// deliver_sm_resp, whose window limits what the SMSC sends us).
	urgent = store.Urgent
	// routine: everything else.
	routine = store.Routine
)

// A query is a statement, prepared once per Server where that pays.
type query struct {
	text string
	st   *sql.Stmt // nil: not prepared
}

// read runs a query outside any transaction.
func (s *Server) read(ctx context.Context, q *query, args ...any) (*sql.Rows, error) {
	if q.st != nil {
		return q.st.QueryContext(ctx, args...)
	}
	return s.db.QueryContext(ctx, q.text, args...)
}

// prepare prepares the queries given. On SQLite a statement prepared once
// skips the parser and planner on every later use; PostgreSQL's driver
// already keeps a statement cache per connection, so there it is left to
// the driver.
func (s *Server) prepare(ctx context.Context, qs ...*query) error {
	if s.db.Dialect() != store.SQLite {
		return nil
	}
	for _, q := range qs {
		st, err := s.db.PrepareContext(ctx, q.text)
		if err != nil {
			return err
		}
		q.st = st
	}
	return nil
}
