package messaging

import (
	"context"
	"slices"
	"sync"
	"time"
)

// sendQueue is the group commit of SendPacket and SendText: the messages
// of concurrent callers are written in one transaction, and each caller
// returns once the transaction holding its message committed.
//
// A committer goroutine writes what is queued, at once when it is idle,
// so a lone caller never waits for a timer; callers that arrive while it
// commits are written together in its next transaction, so under load each
// transaction carries what arrived during the one before. (Committing on a
// goroutine of its own, rather than on the first caller's, also keeps the
// deep stack of the database driver off callers' fresh stacks.) The
// committer ends after committerIdle without work and is started again by
// the next caller, so that a Server needs no Close.
type sendQueue struct {
	mu      sync.Mutex
	pending []*sendReq
	running bool          // a committer goroutine exists
	wake    chan struct{} // signals the committer that work is pending
}

// sendReq is one queued message and, once done is closed, its outcome.
type sendReq struct {
	ctx  context.Context
	m    *mtMessage
	id   int64
	err  error
	done chan struct{}
}

const (
	// maxSendBatch bounds the messages written in one transaction.
	maxSendBatch = 256
	// committerIdle is how long the committer waits for work before it
	// ends.
	committerIdle = time.Second
)

// queue writes m to the outbox with whatever other callers queue at the
// same time and returns its id once it is committed. A caller whose ctx
// ends while its message still waits in the queue gets ctx's error, and
// the message is not written; once its transaction is under way, the
// outcome of that decides.
func (s *Server) queue(ctx context.Context, m *mtMessage) (int64, error) {
	r := &sendReq{ctx: ctx, m: m, done: make(chan struct{})}
	q := &s.sendQ
	q.mu.Lock()
	q.pending = append(q.pending, r)
	if !q.running {
		q.running = true
		go s.committer()
	}
	q.mu.Unlock()
	signal(q.wake)
	select {
	case <-r.done:
	case <-ctx.Done():
		q.mu.Lock()
		if i := slices.Index(q.pending, r); i >= 0 {
			q.pending = slices.Delete(q.pending, i, i+1)
			q.mu.Unlock()
			return 0, ctx.Err()
		}
		q.mu.Unlock()
		<-r.done
	}
	return r.id, r.err
}

// committer writes the queued messages until there has been nothing to
// write for committerIdle.
func (s *Server) committer() {
	q := &s.sendQ
	idle := time.NewTimer(committerIdle)
	defer idle.Stop()
	for {
		q.mu.Lock()
		reqs := q.pending
		if len(reqs) > maxSendBatch {
			reqs = reqs[:maxSendBatch:maxSendBatch]
			q.pending = append([]*sendReq(nil), q.pending[maxSendBatch:]...)
		} else {
			q.pending = nil
		}
		q.mu.Unlock()
		if len(reqs) > 0 {
			s.commitQueued(reqs)
			continue
		}
		idle.Reset(committerIdle)
		select {
		case <-q.wake:
		case <-idle.C:
			q.mu.Lock()
			if len(q.pending) == 0 {
				q.running = false
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
		}
	}
}

// commitQueued writes queued messages in one transaction and tells each
// caller the outcome of its own.
func (s *Server) commitQueued(reqs []*sendReq) {
	items := make([]*txItem, 0, len(reqs)+1)
	for _, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			// Given up before its transaction began: not queued.
			r.err = err
			close(r.done)
			continue
		}
		items = append(items, &txItem{
			do: func(_ context.Context, b *batch) error {
				var err error
				r.id, err = s.insertMessage(b, r.m)
				return err
			},
			done: func(err error) {
				if err != nil {
					r.id, r.err = 0, err
				}
				close(r.done)
			},
		})
	}
	if len(items) == 0 {
		return
	}
	// Claim for the binds in the same transaction, after a claim of the
	// sender's in progress (if any) has taken its share of the windows.
	// Should that take unusually long (this may be a Handler calling
	// SendPacket inside the dispatcher's transaction, which the sender's
	// waits for), the sender claims the messages instead.
	if s.takeClaim() {
		items = append(items, s.claimItem())
	} else {
		defer s.wakeSender()
	}
	s.runBatch(context.Background(), routine, items)
}

// claimWait bounds the group commit's wait for a claim in progress.
const claimWait = 50 * time.Millisecond

// takeClaim waits, at most claimWait, to hold claiming.
func (s *Server) takeClaim() bool {
	select {
	case s.claiming <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(claimWait)
	defer t.Stop()
	select {
	case s.claiming <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}
