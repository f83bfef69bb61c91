package idserver

import (
	"context"
	"database/sql"
	"sync"

	"mobileid/internal/store"
)

// committer runs the ID Server's writes — a new session, its MSSP_TransID,
// its result — on SQLite several to a transaction: what callers queue
// while one transaction commits goes into the next. SQLite has one writer,
// which the MSSP and the Messaging Server of the same database need too;
// a transaction per statement would make every caller wait in line for
// it, and commit far more often.
type committer struct {
	db *store.DB

	mu      sync.Mutex
	queue   []*writeJob
	running bool
}

// writeJob is one statement to run, and its outcome.
type writeJob struct {
	ctx   context.Context
	query string
	args  []any
	n     int64 // rows changed
	err   error
	done  chan struct{}
}

// maxWriteBatch bounds the statements of one transaction.
const maxWriteBatch = 128

// exec runs the prepared write statement query and returns the number of
// rows it changed, once its transaction has committed. On PostgreSQL,
// which has no single writer, the statement runs on its own.
func (c *committer) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if c.db.Dialect() != store.SQLite {
		res, err := c.db.ExecTx(ctx, nil, query, args...)
		if err != nil {
			return 0, err
		}
		n, _ := res.RowsAffected()
		return n, nil
	}
	j := &writeJob{ctx: ctx, query: query, args: args, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, j)
	lead := !c.running
	c.running = true
	c.mu.Unlock()
	if lead {
		// The first caller commits for everyone queued, so that nobody
		// waits for another goroutine to wake, until its own write is
		// done; a goroutine of its own takes over what is left.
		c.drain(j)
	}
	<-j.done
	return j.n, j.err
}

// drain commits the queue until it is empty, or, for a caller that leads
// (mine is its job), until its job is done.
func (c *committer) drain(mine *writeJob) {
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxWriteBatch)
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		if mine != nil && mine.finished() {
			c.mu.Unlock()
			go c.drain(nil)
			return
		}
		jobs := c.queue[:n:n]
		c.queue = c.queue[n:]
		c.mu.Unlock()
		c.run(jobs)
	}
}

// finished reports whether the job has run.
func (j *writeJob) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// run commits jobs in one transaction. If one of them fails, the
// transaction is rolled back and each job runs again in a transaction of
// its own, so that one caller's failure is not the others'. Each job is a
// single statement, which can run again after a rollback.
func (c *committer) run(jobs []*writeJob) {
	err := c.db.InTx(context.Background(), func(tx *sql.Tx) error {
		for _, j := range jobs {
			if err := j.exec(tx, c.db); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(jobs) > 1 {
		for _, j := range jobs {
			j.err = c.db.InTx(context.WithoutCancel(j.ctx), func(tx *sql.Tx) error { return j.exec(tx, c.db) })
			close(j.done)
		}
		return
	}
	for _, j := range jobs {
		j.err = err
		close(j.done)
	}
}

// exec runs the job's statement in tx.
func (j *writeJob) exec(tx *sql.Tx, db *store.DB) error {
	ctx := context.WithoutCancel(j.ctx)
	res, err := db.ExecTx(ctx, tx, j.query, j.args...)
	if err != nil {
		return err
	}
	j.n, _ = res.RowsAffected()
	return nil
}
