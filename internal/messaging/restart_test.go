package messaging

import (
	"bytes"
	"maps"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"mobileid/internal/smpp"
	"mobileid/internal/sms"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

// deadAddr returns an address where nothing listens.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func TestRestartSendsWhatWasQueued(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		// No SMSC is reachable: the messages stay in the outbox.
		first := start(t, db, testConfig(deadAddr(t)), &recorder{}, nil)
		queued, err := first.SendPacket(t.Context(), testMSISDN, packet(200), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		crashed, err := first.SendPacket(t.Context(), testMSISDN, packet(30), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a reconnect attempt", func() bool { return testutil.ToFloat64(first.m.reconnects) >= 1 })
		first.stop()
		// As if the node had died between submit_sm and its response.
		if _, err := db.ExecContext(t.Context(), `UPDATE messaging_segment SET state = 'inflight', owner = $1, lease_until = $2
			WHERE message_id = $3`, testNode, micros(time.Now().Add(time.Hour)), crashed); err != nil {
			t.Fatal(err)
		}

		db = storetest.Reopen(t, db)
		f := newFakeSMSC(t)
		second := start(t, db, testConfig(f.addr()), &recorder{}, nil)
		smscID(t, db, queued, 1)
		smscID(t, db, queued, 2)
		smscID(t, db, crashed, 1)
		if n := len(f.submits()); n != 3 {
			t.Errorf("submit_sm after restart = %d, want 3", n)
		}
		if got := testutil.ToFloat64(second.m.sent); got != 3 {
			t.Errorf("sent_total = %v, want 3", got)
		}
	})
}

func TestRestartKeepsIncompleteMO(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		first := start(t, db, testConfig(f.addr()), &recorder{}, nil)
		resp := packet(300)
		segs, _ := sms.SplitResponsePacket(resp, 0x1234, true)
		for _, i := range []int{1, 0} {
			if p := f.request(moPDU(testMSISDN, true, 0xF6, segs[i])); p.Status != smpp.StatusOK {
				t.Fatalf("deliver_sm_resp %v", p.Status)
			}
		}
		first.stop()

		db = storetest.Reopen(t, db)
		h := &recorder{}
		start(t, db, testConfig(f.addr()), h, nil)
		waitFor(t, "second bind", func() bool { return f.bindCount() >= 2 })
		f.request(moPDU(testMSISDN, true, 0xF6, segs[2]))
		waitFor(t, "MO handed over", func() bool { return len(h.gotMOs()) == 1 })
		if mo := h.gotMOs()[0]; !bytes.Equal(mo.Packet, resp) || !mo.Secured || mo.Segments != 3 {
			t.Errorf("MO after restart: secured %v, %d segments, packet equal %v", mo.Secured, mo.Segments, bytes.Equal(mo.Packet, resp))
		}
	})
}

func TestHandlerFailureRetriedThenNeverAgain(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		h := &recorder{failMO: 1, failReceipt: 1}
		first := start(t, db, testConfig(f.addr()), h, nil)
		f.bound()
		id, err := first.SendPacket(t.Context(), testMSISDN, packet(50), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		f.request(receiptPDU(smscID(t, db, id, 1), smpp.StateDelivered, nil))
		segs, _ := sms.SplitResponsePacket(packet(40), 0, false)
		f.request(moPDU(testMSISDN, true, 0xF6, segs[0]))

		waitFor(t, "MO and receipt handed over", func() bool { return len(h.gotMOs()) == 1 && len(h.gotReceipts()) == 1 })
		// The recorder sees a hand-over inside its transaction, before the
		// commit; wait for the commit before reading what it wrote.
		waitFor(t, "hand-overs committed", func() bool { return count(t, db, `SELECT COUNT(*) FROM handled_log`) >= 2 })
		h.mu.Lock()
		moCalls, rcptCalls := h.moCalls, h.rcptCalls
		h.mu.Unlock()
		if moCalls != 2 || rcptCalls != 2 {
			t.Errorf("handler calls: %d MO, %d receipt; want 2 each (one refused, one taken)", moCalls, rcptCalls)
		}
		// The refused attempts' writes were rolled back with them, and
		// their AfterCommit hooks never ran.
		if n := count(t, db, `SELECT COUNT(*) FROM handled_log`); n != 2 {
			t.Errorf("handled_log rows = %d, want 2", n)
		}
		waitFor(t, "AfterCommit hooks", func() bool {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.afterCommit["mo"]+h.afterCommit["receipt"] >= 2
		})
		h.mu.Lock()
		hooks := maps.Clone(h.afterCommit)
		h.mu.Unlock()
		if want := map[string]int{"mo": 1, "receipt": 1}; !maps.Equal(hooks, want) {
			t.Errorf("AfterCommit hooks run = %v, want %v", hooks, want)
		}
		if AfterCommit(t.Context(), func() {}) {
			t.Error("AfterCommit outside a hand-over reported true")
		}
		first.stop()

		db = storetest.Reopen(t, db)
		again := &recorder{}
		start(t, db, testConfig(f.addr()), again, nil)
		waitFor(t, "second bind", func() bool { return f.bindCount() >= 2 })
		time.Sleep(200 * time.Millisecond) // ten poll intervals
		if len(again.gotMOs()) != 0 || len(again.gotReceipts()) != 0 {
			t.Errorf("after restart the handler got %d MOs and %d receipts again", len(again.gotMOs()), len(again.gotReceipts()))
		}
		if n := count(t, db, `SELECT COUNT(*) FROM handled_log`); n != 2 {
			t.Errorf("handled_log rows after restart = %d, want 2", n)
		}
	})
}

func TestTwoNodesShareTheDatabase(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		f.setScript(func(int, *smpp.PDU) reply { return reply{delay: 5 * time.Millisecond} })
		cfgA, cfgB := testConfig(f.addr()), testConfig(f.addr())
		cfgB.NodeID = "node-b"
		ha, hb := &recorder{}, &recorder{}
		a := start(t, db, cfgA, ha, nil)
		other := storetest.Another(t, db)
		b := start(t, other, cfgB, hb, nil)
		waitFor(t, "both nodes bound", func() bool { return f.bindCount() >= 2 })

		const n = 20
		var ids []int64
		for i := range n {
			srv := a
			if i%2 == 1 {
				srv = b
			}
			id, err := srv.SendPacket(t.Context(), testMSISDN, packet(20+i), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			f.request(receiptPDU(smscID(t, db, id, 1), smpp.StateDelivered, nil))
		}
		for i := range n {
			f.request(moPDU(testMSISDN, false, 0x00, []byte{byte('A' + i)}))
		}
		waitFor(t, "every receipt and MO handed over", func() bool {
			return len(ha.gotReceipts())+len(hb.gotReceipts()) == n && len(ha.gotMOs())+len(hb.gotMOs()) == n
		})
		time.Sleep(100 * time.Millisecond)

		seen := map[int]bool{}
		for _, p := range f.submits() {
			seen[len(p.ShortMessage)] = true
		}
		if got := len(f.submits()); got != n || len(seen) != n {
			t.Errorf("submit_sm = %d (%d distinct), want each message once", got, len(seen))
		}
		if got := testutil.ToFloat64(a.m.sent) + testutil.ToFloat64(b.m.sent); got != n {
			t.Errorf("sent_total over both nodes = %v, want %d", got, n)
		}
		if got := count(t, db, `SELECT COUNT(*) FROM handled_log`); got != 2*n {
			t.Errorf("handled_log rows = %d, want %d: each MO and receipt once", got, 2*n)
		}
		if len(ha.gotReceipts()) == 0 && len(hb.gotReceipts()) == 0 {
			t.Error("no receipts handed over")
		}
	})
}
