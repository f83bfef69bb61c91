package idserver

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// insertTestSession is a session row with only the ID to tell it apart.
func insertTestSession(id string) (string, []any) {
	return insertSessionSQL, []any{id, "rp", KindAuthentication, "+37200000766", "60001019906", []byte{1}, "SHA256", "ENG",
		"", FormatGSM7, "0000", "ID" + id, "", StateRunning, "", []byte{}, "", []byte{}, int64(1), int64(2), int64(0)}
}

func countSessions(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM idserver_sessions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCommitter checks that the writes queued together commit together,
// and that one that fails fails alone.
func TestCommitter(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		if err := migrate(db); err != nil {
			t.Fatal(err)
		}
		c := &committer{db: db}
		ctx := context.Background()

		// Many at once: each learns of its own row.
		var wg sync.WaitGroup
		errs := make([]error, 200)
		for i := range errs {
			wg.Go(func() {
				q, args := insertTestSession(fmt.Sprintf("s%03d", i))
				n, err := c.exec(ctx, q, args...)
				if err == nil && n != 1 {
					err = fmt.Errorf("%d rows", n)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("insert %d: %v", i, err)
			}
		}
		if n := countSessions(t, db); n != len(errs) {
			t.Fatalf("%d sessions stored, want %d", n, len(errs))
		}

		// A batch with a duplicate: the others commit.
		var jobs []*writeJob
		for _, id := range []string{"a", "s000", "b"} {
			q, args := insertTestSession(id)
			jobs = append(jobs, &writeJob{ctx: ctx, query: q, args: args, done: make(chan struct{})})
		}
		jobs = append(jobs, &writeJob{ctx: ctx, query: completeSessionSQL, done: make(chan struct{}),
			args: []any{StateComplete, ResultOK, []byte{}, "", []byte{}, int64(3), "s001", StateRunning}})
		c.run(jobs)
		for i, j := range jobs {
			<-j.done
			if wantErr := i == 1; (j.err != nil) != wantErr {
				t.Errorf("job %d: err = %v, want error %v", i, j.err, wantErr)
			}
		}
		if jobs[3].n != 1 {
			t.Errorf("completion changed %d rows, want 1", jobs[3].n)
		}
		if n := countSessions(t, db); n != len(errs)+2 {
			t.Errorf("%d sessions stored, want %d", n, len(errs)+2)
		}
	})
}
