package idserver

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// TestLongPollAcrossNodes long-polls a session on the node that runs it,
// which wakes the poll when it ends, and on another node, which reads the
// session again until it has.
func TestLongPollAcrossNodes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		m := &fakeMSSP{}
		home := newTestServer(t, db, m)
		other := newTestServer(t, storetest.Another(t, db), m)
		id := home.start(t, KindAuthentication, startBody())

		type answer struct {
			code int
			out  map[string]any
			err  error
		}
		answers := make(chan answer, 2)
		for _, ts := range []*testServer{home, other} {
			go func() {
				var a answer
				resp, err := http.Get(ts.url + "/authentication/session/" + id + "?timeoutMs=20000")
				if err == nil {
					a.code = resp.StatusCode
					err = json.NewDecoder(resp.Body).Decode(&a.out)
					resp.Body.Close()
				}
				a.err = err
				answers <- a
			}()
		}
		// Both polls wait for the user.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			home.srv.mu.Lock()
			w := home.srv.watches[id]
			other.srv.mu.Lock()
			w2 := other.srv.watches[id]
			other.srv.mu.Unlock()
			home.srv.mu.Unlock()
			if w != nil && w2 != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the polls did not start")
			}
		}
		if !home.srv.runsHere(id) || other.srv.runsHere(id) {
			t.Fatalf("runsHere = %v at home, %v on the other node; want true, false", home.srv.runsHere(id), other.srv.runsHere(id))
		}
		m.setFinal(func() (*etsi.MSSStatusResp, error) { return nil, &etsi.Fault{Code: etsi.CodeUserCancel} })
		for range 2 {
			select {
			case a := <-answers:
				if a.err != nil || a.code != http.StatusOK || a.out["state"] != StateComplete || a.out["result"] != ResultUserCancelled {
					t.Errorf("long poll = %d %v, %v; want COMPLETE USER_CANCELLED", a.code, a.out, a.err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("a long poll was not answered when the session ended")
			}
		}
	})
}
