package mssp

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"mobileid/internal/store"
)

// committer runs the engine's short write transactions together: what
// callers queue while one transaction commits goes into the next, each in
// a savepoint of its own, so that a refused request (406, a replayed
// AP_TransID) rolls back alone and the others commit. SQLite has one
// writer, and a commit per request would make requests wait in line for
// it; together they share one.
type committer struct {
	db *store.DB

	mu      sync.Mutex
	queue   []*commitJob
	running bool
}

type commitJob struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	err  error
	done chan struct{}
}

// maxCommitBatch bounds the jobs of one transaction.
const maxCommitBatch = 128

// do runs fn in a transaction shared with other callers and returns fn's
// error, or the transaction's. fn must have no effect outside tx and may
// run more than once.
func (c *committer) do(ctx context.Context, fn func(tx *sql.Tx) error) error {
	j := &commitJob{ctx: ctx, fn: fn, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, j)
	lead := !c.running
	if lead {
		c.running = true
	}
	c.mu.Unlock()
	if lead {
		// The first caller commits for everyone queued until the queue
		// is empty; nobody else waits for a goroutine to wake.
		c.drain()
	}
	<-j.done
	return j.err
}

func (c *committer) drain() {
	for {
		c.mu.Lock()
		n := min(len(c.queue), maxCommitBatch)
		jobs := c.queue[:n:n]
		c.queue = c.queue[n:]
		if n == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.run(jobs)
	}
}

// run commits jobs in one transaction, each in a savepoint.
func (c *committer) run(jobs []*commitJob) {
	if len(jobs) == 1 {
		j := jobs[0]
		j.err = c.db.InTx(context.WithoutCancel(j.ctx), j.fn)
		close(j.done)
		return
	}
	ctx := context.Background()
	err := c.db.InTx(ctx, func(tx *sql.Tx) error {
		for _, j := range jobs {
			j.err = nil
			if _, err := c.db.ExecTx(ctx, tx, `SAVEPOINT mssp_job`); err != nil {
				return fmt.Errorf("mssp: savepoint: %w", err)
			}
			if err := j.fn(tx); err != nil {
				j.err = err
				if _, rerr := c.db.ExecTx(ctx, tx, `ROLLBACK TO SAVEPOINT mssp_job`); rerr != nil {
					return errors.Join(err, rerr)
				}
			}
			if _, err := c.db.ExecTx(ctx, tx, `RELEASE SAVEPOINT mssp_job`); err != nil {
				return fmt.Errorf("mssp: release savepoint: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		// Nothing committed; each job gets the transaction's error.
		for _, j := range jobs {
			j.err = err
		}
	}
	for _, j := range jobs {
		close(j.done)
	}
}
