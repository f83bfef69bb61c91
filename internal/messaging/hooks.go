package messaging

import "context"

// commitHooks collects the functions a Handler asked to run once its
// transaction committed.
type commitHooks struct{ fns []func() }

type commitHooksKey struct{}

// withCommitHooks returns a context through which a Handler can register
// hooks, and the collection they go to.
func withCommitHooks(ctx context.Context) (context.Context, *commitHooks) {
	h := &commitHooks{}
	return context.WithValue(ctx, commitHooksKey{}, h), h
}

// run calls the hooks in order; a nil collection has none.
func (h *commitHooks) run() {
	if h == nil {
		return
	}
	for _, f := range h.fns {
		f()
	}
}

// AfterCommit arranges for f to run once the transaction that ctx's
// HandleMO or HandleReceipt call works in has committed, and not at all if
// it rolls back. A Handler uses it to act on what it wrote (wake a worker
// that reads it, answer a waiting caller) without acting outside the
// transaction. f runs on the dispatcher's goroutine and must not block.
// Outside a Handler call, AfterCommit reports false and does nothing.
func AfterCommit(ctx context.Context, f func()) bool {
	h, ok := ctx.Value(commitHooksKey{}).(*commitHooks)
	if !ok {
		return false
	}
	h.fns = append(h.fns, f)
	return true
}
