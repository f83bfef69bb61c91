package messaging

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"mobileid/internal/smpp"
	"mobileid/internal/sms"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
)

func TestBindCredentialsAndEnquireLink(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		cfg := testConfig(f.addr())
		cfg.EnquireLink = 40 * time.Millisecond
		ts := start(t, db, cfg, &recorder{}, nil)

		f.bound()
		b := f.pdus(smpp.BindTransceiver)[0]
		if b.SystemID != "mid" || b.Password != "secret" || b.InterfaceVersion != 0x34 {
			t.Errorf("bind_transceiver system_id %q password %q version %#x, want mid, secret, 0x34", b.SystemID, b.Password, b.InterfaceVersion)
		}
		// Ours: sent periodically.
		waitFor(t, "two enquire_link from the ESME", func() bool { return len(f.pdus(smpp.EnquireLink)) >= 2 })
		// The SMSC's: answered.
		resp := f.request(&smpp.PDU{ID: smpp.EnquireLink})
		if resp.ID != smpp.EnquireLinkResp || resp.Status != smpp.StatusOK {
			t.Errorf("answer to enquire_link = %v %v, want enquire_link_resp ESME_ROK", resp.ID, resp.Status)
		}
		// Shutdown unbinds cleanly.
		ts.stop()
		if n := len(f.pdus(smpp.Unbind)); n != 1 {
			t.Errorf("unbind PDUs at shutdown = %d, want 1", n)
		}
	})
}

func TestBindRefusedRetriesWithBackoff(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		cfg := testConfig(f.addr())
		cfg.Binds[0].Password = "wrong"
		ts := start(t, db, cfg, &recorder{}, nil)
		waitFor(t, "three bind attempts", func() bool { return len(f.pdus(smpp.BindTransceiver)) >= 3 })
		if n := f.bindCount(); n != 0 {
			t.Errorf("binds accepted = %d, want 0", n)
		}
		if got := testutil.ToFloat64(ts.m.reconnects); got < 2 {
			t.Errorf("reconnects_total = %v, want ≥ 2", got)
		}
	})
}

func TestSendPacketSubmitFields(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		ts := start(t, db, testConfig(f.addr()), &recorder{}, nil)
		ctx := t.Context()

		single := packet(60)
		id1, err := ts.SendPacket(ctx, testMSISDN, single, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		smscID(t, db, id1, 1)
		long := packet(300)
		id2, err := ts.SendPacket(ctx, testMSISDN, long, 90*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for seq := 1; seq <= 3; seq++ {
			smscID(t, db, id2, seq)
		}

		subs := f.submits()
		if len(subs) != 4 {
			t.Fatalf("submit_sm count = %d, want 4", len(subs))
		}
		want := &smpp.PDU{
			ID: smpp.SubmitSM, Seq: subs[0].Seq,
			Source:   smpp.Address{TON: 1, NPI: 1, Addr: testService},
			Dest:     smpp.Address{TON: 1, NPI: 1, Addr: testMSISDN},
			ESMClass: 0x40, ProtocolID: 0x7F, DataCoding: 0xF6, RegisteredDelivery: 0x01,
			ValidityPeriod: "000000000200000R",
			ShortMessage:   append([]byte{0x02, 0x70, 0x00}, single...),
		}
		if diff := cmp.Diff(want, subs[0]); diff != "" {
			t.Errorf("single-segment submit_sm (-want +got):\n%s", diff)
		}

		ref := byte(id2 % 256)
		segs, err := sms.SplitCommandPacket(long, uint16(ref), false)
		if err != nil {
			t.Fatal(err)
		}
		var joined []byte
		for i, p := range subs[1:] {
			if p.ESMClass != 0x40 || p.ProtocolID != 0x7F || p.DataCoding != 0xF6 || p.RegisteredDelivery != 0x01 {
				t.Errorf("segment %d: esm_class %#x protocol_id %#x data_coding %#x registered_delivery %#x", i+1,
					p.ESMClass, p.ProtocolID, p.DataCoding, p.RegisteredDelivery)
			}
			if p.ValidityPeriod != "000000000130000R" {
				t.Errorf("segment %d: validity_period %q, want 000000000130000R", i+1, p.ValidityPeriod)
			}
			if !bytes.Equal(p.ShortMessage, segs[i]) {
				t.Errorf("segment %d: short_message % x\nwant % x", i+1, p.ShortMessage, segs[i])
			}
			if len(p.ShortMessage) > 140 {
				t.Errorf("segment %d: %d octets", i+1, len(p.ShortMessage))
			}
			hdr := int(p.ShortMessage[0]) + 1
			joined = append(joined, p.ShortMessage[hdr:]...)
		}
		if got := subs[1].ShortMessage[:8]; !bytes.Equal(got, []byte{0x07, 0x70, 0x00, 0x00, 0x03, ref, 0x03, 0x01}) {
			t.Errorf("first segment header % x, want 07 70 00 00 03 %02x 03 01", got, ref)
		}
		for i, p := range subs[2:] {
			if got := p.ShortMessage[:6]; !bytes.Equal(got, []byte{0x05, 0x00, 0x03, ref, 0x03, byte(i + 2)}) {
				t.Errorf("segment %d header % x", i+2, got)
			}
		}
		if !bytes.Equal(joined, long) {
			t.Error("the segments do not carry the packet")
		}
		if got := testutil.ToFloat64(ts.m.sent); got != 4 {
			t.Errorf("sent_total = %v, want 4", got)
		}
	})
}

func TestSendArgumentErrors(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ts := start(t, db, testConfig(), &recorder{}, nil)
		ctx := t.Context()
		if _, err := ts.SendPacket(ctx, "+372 555", packet(10), time.Minute); err == nil {
			t.Error("SendPacket accepted a malformed MSISDN")
		}
		if _, err := ts.SendPacket(ctx, testMSISDN, packet(10), 0); err == nil {
			t.Error("SendPacket accepted a zero validity")
		}
		if _, err := ts.SendPacket(ctx, testMSISDN, packet(40000), time.Minute); err == nil {
			t.Error("SendPacket accepted a packet needing more than 255 messages")
		}
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_outbox`); n != 0 {
			t.Errorf("outbox rows after refused calls = %d, want 0", n)
		}
	})
}

func TestSendText(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		ts := start(t, db, testConfig(f.addr()), &recorder{}, nil)
		ctx := t.Context()

		long := strings.Repeat("Tere, see on pikk sõnum! ", 16) // 400 characters, GSM 7-bit (õ is not)
		long = strings.ReplaceAll(long, "õ", "o")
		id, err := ts.SendText(ctx, testMSISDN, long, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		for seq := 1; seq <= 3; seq++ {
			smscID(t, db, id, seq)
		}
		subs := f.submits()
		if len(subs) != 3 {
			t.Fatalf("submit_sm for a 400-character text = %d, want 3", len(subs))
		}
		var text []byte
		ref := byte(id % 256)
		for i, p := range subs {
			if p.DataCoding != 0x00 || p.ESMClass != 0x40 || p.ProtocolID != 0 {
				t.Errorf("part %d: data_coding %#x esm_class %#x protocol_id %#x, want 0, 0x40, 0", i+1, p.DataCoding, p.ESMClass, p.ProtocolID)
			}
			if got := p.ShortMessage[:6]; !bytes.Equal(got, []byte{0x05, 0x00, 0x03, ref, 0x03, byte(i + 1)}) {
				t.Errorf("part %d header % x", i+1, got)
			}
			text = append(text, p.ShortMessage[6:]...)
		}
		if got, err := sms.DecodeGSM7(text); err != nil || got != long {
			t.Errorf("reassembled text = %q, %v", got, err)
		}

		id, err = ts.SendText(ctx, testMSISDN, "Привет", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		smscID(t, db, id, 1)
		p := f.submits()[3]
		want, _ := sms.EncodeUCS2("Привет")
		if p.DataCoding != 0x08 || p.ESMClass != 0 || !bytes.Equal(p.ShortMessage, want) {
			t.Errorf("UCS-2 submit_sm: data_coding %#x esm_class %#x short_message % x", p.DataCoding, p.ESMClass, p.ShortMessage)
		}
	})
}

func TestSeveralBinds(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f1, f2 := newFakeSMSC(t), newFakeSMSC(t)
		slow := func(int, *smpp.PDU) reply { return reply{delay: 30 * time.Millisecond} }
		f1.setScript(slow)
		f2.setScript(slow)
		cfg := testConfig(f1.addr(), f2.addr())
		cfg.Window = 1
		ts := start(t, db, cfg, &recorder{}, nil)
		f1.bound()
		f2.bound()
		for range 6 {
			if _, err := ts.SendPacket(t.Context(), testMSISDN, packet(20), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "six segments accepted", func() bool { return testutil.ToFloat64(ts.m.sent) == 6 })
		if n1, n2 := len(f1.submits()), len(f2.submits()); n1 == 0 || n2 == 0 || n1+n2 != 6 {
			t.Errorf("submit_sm per bind = %d and %d, want both used, 6 in all", n1, n2)
		}
		if n := testutil.CollectAndCount(ts.m.windowInUse); n != 2 {
			t.Errorf("window_in_use series = %d, want one per bind", n)
		}
	})
}

func TestWindowNeverExceeded(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		f.setScript(func(int, *smpp.PDU) reply { return reply{delay: 20 * time.Millisecond} })
		cfg := testConfig(f.addr())
		cfg.Window = 3
		ts := start(t, db, cfg, &recorder{}, nil)
		f.bound()
		for range 12 {
			if _, err := ts.SendPacket(t.Context(), testMSISDN, packet(20), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "twelve segments accepted", func() bool { return testutil.ToFloat64(ts.m.sent) == 12 })
		f.mu.Lock()
		peak := f.maxOutstanding
		f.mu.Unlock()
		if peak > 3 || peak < 2 {
			t.Errorf("most outstanding submit_sm = %d, want the window of 3 used but never exceeded", peak)
		}
		name := cfg.Binds[0].SystemID + "@" + cfg.Binds[0].Addr
		waitFor(t, "window_in_use back to 0", func() bool {
			return testutil.ToFloat64(ts.m.windowInUse.WithLabelValues(name)) == 0
		})
		waitFor(t, "outbox_depth 0", func() bool { return testutil.ToFloat64(ts.m.outboxDepth) == 0 })
	})
}

func TestThrottledBacksOffAndResends(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		f.setScript(func(n int, _ *smpp.PDU) reply {
			switch n {
			case 0, 1, 2:
				return reply{status: smpp.StatusThrottled}
			case 3:
				return reply{status: smpp.StatusMessageQueueFull}
			}
			return reply{}
		})
		h := &recorder{}
		ts := start(t, db, testConfig(f.addr()), h, nil)
		f.bound()
		begin := time.Now()
		id, err := ts.SendPacket(t.Context(), testMSISDN, packet(50), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		sid := smscID(t, db, id, 1)
		// Pauses of 20, 40, 80 and 160 ms: the pause doubles while the SMSC
		// keeps refusing.
		if el := time.Since(begin); el < 300*time.Millisecond {
			t.Errorf("accepted after %v, want the doubling pauses (≥ 300ms) respected", el)
		}
		subs := f.submits()
		if len(subs) != 5 {
			t.Fatalf("submit_sm count = %d, want 4 refused + 1 accepted", len(subs))
		}
		for _, p := range subs[1:] {
			if !bytes.Equal(p.ShortMessage, subs[0].ShortMessage) {
				t.Error("a resend differs from the first submit_sm")
			}
		}
		f.request(receiptPDU(sid, smpp.StateDelivered, nil))
		waitFor(t, "receipt handed over", func() bool { return h.receiptFor(id) != nil })
		if got := h.receiptFor(id).Outcome; got != Delivered {
			t.Errorf("outcome = %v, want delivered", got)
		}
		if got := testutil.ToFloat64(ts.m.sent); got != 1 {
			t.Errorf("sent_total = %v, want 1", got)
		}
	})
}

func TestReconnectAfterDrop(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		ts := start(t, db, testConfig(f.addr()), &recorder{}, nil)
		f.bound()
		f.dropAll()
		waitFor(t, "second bind", func() bool { return f.bindCount() >= 2 })
		if got := testutil.ToFloat64(ts.m.reconnects); got < 1 {
			t.Errorf("reconnects_total = %v, want ≥ 1", got)
		}
		id, err := ts.SendPacket(t.Context(), testMSISDN, packet(30), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		smscID(t, db, id, 1)

		// An unbind from the SMSC is answered, and the ESME binds again.
		if p := f.request(&smpp.PDU{ID: smpp.Unbind}); p.ID != smpp.UnbindResp || p.Status != smpp.StatusOK {
			t.Errorf("answer to unbind = %v %v, want unbind_resp ESME_ROK", p.ID, p.Status)
		}
		waitFor(t, "third bind", func() bool { return f.bindCount() >= 3 })
	})
}

func TestResponseTimeoutDropsBindAndResends(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		f.setScript(func(n int, _ *smpp.PDU) reply { return reply{omit: n == 0} })
		cfg := testConfig(f.addr())
		cfg.ResponseTimeout = 200 * time.Millisecond
		ts := start(t, db, cfg, &recorder{}, nil)
		f.bound()
		id, err := ts.SendPacket(t.Context(), testMSISDN, packet(30), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		smscID(t, db, id, 1)
		subs := f.submits()
		if len(subs) != 2 || !bytes.Equal(subs[0].ShortMessage, subs[1].ShortMessage) {
			t.Errorf("submit_sm count = %d, want the unanswered one sent again", len(subs))
		}
		if f.bindCount() < 2 || testutil.ToFloat64(ts.m.reconnects) < 1 {
			t.Errorf("binds = %d, reconnects_total = %v: want the silent bind replaced", f.bindCount(), testutil.ToFloat64(ts.m.reconnects))
		}
	})
}

func TestEnquireLinkUnansweredDropsBind(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		f.mu.Lock()
		f.silentEnquire = true
		f.mu.Unlock()
		cfg := testConfig(f.addr())
		cfg.EnquireLink = 30 * time.Millisecond
		cfg.ResponseTimeout = 100 * time.Millisecond
		start(t, db, cfg, &recorder{}, nil)
		waitFor(t, "a new bind after the silent one", func() bool { return f.bindCount() >= 2 })
	})
}

func TestReceiptOutcomes(t *testing.T) {
	absent := []byte{0x03, 0x00, 0x1B}
	tests := []struct {
		name     string
		segments int
		receipts []struct { // per segment, in arrival order
			seq    int
			state  smpp.MessageState
			netErr []byte
		}
		textOnly bool
		want     Outcome
	}{
		{name: "DELIVRD", segments: 1, receipts: rcpts(1, smpp.StateDelivered, nil), want: Delivered},
		{name: "EXPIRED absent subscriber", segments: 1, receipts: rcpts(1, smpp.StateExpired, absent), want: PhoneAbsent},
		{name: "EXPIRED", segments: 1, receipts: rcpts(1, smpp.StateExpired, []byte{0x03, 0x00, 0x01}), want: Expired},
		{name: "UNDELIV", segments: 1, receipts: rcpts(1, smpp.StateUndeliverable, []byte{0x03, 0x00, 0x01}), want: Undeliverable},
		{name: "REJECTD", segments: 1, receipts: rcpts(1, smpp.StateRejected, nil), want: Undeliverable},
		{name: "text only", segments: 1, receipts: rcpts(1, smpp.StateDelivered, nil), textOnly: true, want: Delivered},
		{name: "all segments DELIVRD", segments: 3,
			receipts: slices.Concat(rcpts(2, smpp.StateDelivered, nil), rcpts(1, smpp.StateEnroute, nil),
				rcpts(3, smpp.StateDelivered, nil), rcpts(1, smpp.StateDelivered, nil)), want: Delivered},
		{name: "first failure decides", segments: 3,
			receipts: slices.Concat(rcpts(1, smpp.StateDelivered, nil), rcpts(3, smpp.StateExpired, absent),
				rcpts(2, smpp.StateUndeliverable, nil)), want: PhoneAbsent},
	}
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		h := &recorder{}
		ts := start(t, db, testConfig(f.addr()), h, nil)
		f.bound()
		counts := map[Outcome]float64{}
		var ids []int64
		for _, tc := range tests {
			size := 100
			if tc.segments == 3 {
				size = 300
			}
			id, err := ts.SendPacket(t.Context(), testMSISDN, packet(size), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
			for _, r := range tc.receipts {
				p := receiptPDU(smscID(t, db, id, r.seq), r.state, r.netErr)
				if tc.textOnly {
					p.TLVs = nil
				}
				if resp := f.request(p); resp.Status != smpp.StatusOK {
					t.Fatalf("%s: deliver_sm_resp status %v", tc.name, resp.Status)
				}
			}
			waitFor(t, tc.name+" handed over", func() bool { return h.receiptFor(id) != nil })
			rc := h.receiptFor(id)
			if rc.Outcome != tc.want || rc.MSISDN != testMSISDN {
				t.Errorf("%s: receipt %+v, want outcome %v for %s", tc.name, rc, tc.want, testMSISDN)
			}
			counts[tc.want]++
		}
		// A receipt for an id nobody sent is acknowledged and dropped.
		if resp := f.request(receiptPDU("no-such-id", smpp.StateDelivered, nil)); resp.Status != smpp.StatusOK {
			t.Errorf("receipt for an unknown id answered %v, want ESME_ROK", resp.Status)
		}
		// A late receipt for a decided message changes nothing.
		f.request(receiptPDU(smscID(t, db, ids[1], 1), smpp.StateDelivered, nil))
		time.Sleep(100 * time.Millisecond)
		if got := len(h.gotReceipts()); got != len(tests) {
			t.Errorf("receipts handed over = %d, want %d (each once)", got, len(tests))
		}
		if n := count(t, db, `SELECT COUNT(*) FROM handled_log WHERE kind = 'receipt'`); n != len(tests) {
			t.Errorf("handled_log receipt rows = %d, want %d", n, len(tests))
		}
		for o, want := range counts {
			if got := testutil.ToFloat64(ts.m.receipts.WithLabelValues(o.String())); got != want {
				t.Errorf("receipts_total{outcome=%q} = %v, want %v", o, got, want)
			}
		}
	})
}

// rcpts is one receipt line for the table of TestReceiptOutcomes.
func rcpts(seq int, st smpp.MessageState, netErr []byte) []struct {
	seq    int
	state  smpp.MessageState
	netErr []byte
} {
	return []struct {
		seq    int
		state  smpp.MessageState
		netErr []byte
	}{{seq, st, netErr}}
}

func TestSubmitRefusedIsUndeliverable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		// The second segment is refused: the third must not be sent.
		f.setScript(func(n int, _ *smpp.PDU) reply {
			if n == 1 {
				return reply{status: smpp.StatusInvalidDestAddress}
			}
			return reply{delay: 50 * time.Millisecond}
		})
		cfg := testConfig(f.addr())
		cfg.Window = 1
		h := &recorder{}
		ts := start(t, db, cfg, h, nil)
		f.bound()
		id, err := ts.SendPacket(t.Context(), testMSISDN, packet(300), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "receipt handed over", func() bool { return h.receiptFor(id) != nil })
		if got := h.receiptFor(id).Outcome; got != Undeliverable {
			t.Errorf("outcome = %v, want undeliverable", got)
		}
		time.Sleep(100 * time.Millisecond)
		if n := len(f.submits()); n != 2 {
			t.Errorf("submit_sm count = %d, want 2 (nothing after the refusal)", n)
		}
	})
}

func TestMOReassemblyOutOfOrderWithDuplicate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		h := &recorder{}
		ts := start(t, db, testConfig(f.addr()), h, nil)
		resp := packet(300)
		segs, err := sms.SplitResponsePacket(resp, 0x42, false)
		if err != nil || len(segs) != 3 {
			t.Fatalf("SplitResponsePacket: %d segments, %v", len(segs), err)
		}
		for _, i := range []int{2, 0, 0, 1} {
			r := f.request(moPDU(testMSISDN, true, 0xF6, segs[i]))
			if r.ID != smpp.DeliverSMResp || r.Status != smpp.StatusOK {
				t.Fatalf("deliver_sm_resp %v %v", r.ID, r.Status)
			}
		}
		waitFor(t, "MO handed over", func() bool { return len(h.gotMOs()) == 1 })
		mo := h.gotMOs()[0]
		if !mo.Secured || !bytes.Equal(mo.Packet, resp) || mo.From != testMSISDN || mo.To != testService || mo.Segments != 3 {
			t.Errorf("MO from %s to %s, secured %v, %d segments, packet of %d octets (equal %v)", mo.From, mo.To,
				mo.Secured, mo.Segments, len(mo.Packet), bytes.Equal(mo.Packet, resp))
		}
		time.Sleep(100 * time.Millisecond)
		if n := len(h.gotMOs()); n != 1 {
			t.Errorf("MOs handed over = %d, want 1", n)
		}
		if got := testutil.ToFloat64(ts.m.received); got != 4 {
			t.Errorf("received_total = %v, want 4", got)
		}
		if got := testutil.ToFloat64(ts.m.mo); got != 1 {
			t.Errorf("mo_total = %v, want 1", got)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_mo_segment`); n != 0 {
			t.Errorf("segments left after reassembly = %d", n)
		}
	})
}

func TestMOText(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		h := &recorder{}
		start(t, db, testConfig(f.addr()), h, nil)

		septets, _ := sms.EncodeGSM7("OK, thanks {1}")
		f.request(moPDU("37255555555", false, 0x00, septets))
		ucs, _ := sms.EncodeUCS2("Спасибо")
		f.request(moPDU("37255555556", false, 0x08, ucs))
		parts, dcs, err := sms.SplitText(strings.Repeat("long reply ", 20), 7)
		if err != nil || dcs != 0 {
			t.Fatal(err)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			f.request(moPDU("37255555557", true, 0x00, append(sms.MarshalUDH(parts[i].UDH), parts[i].Data...)))
		}
		waitFor(t, "three MOs", func() bool { return len(h.gotMOs()) == 3 })
		got := map[string]string{}
		for _, mo := range h.gotMOs() {
			if mo.Packet != nil || mo.Secured {
				t.Errorf("text MO from %s carries a packet", mo.From)
			}
			got[mo.From] = mo.Text
		}
		want := map[string]string{
			"37255555555": "OK, thanks {1}",
			"37255555556": "Спасибо",
			"37255555557": strings.Repeat("long reply ", 20),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("MO texts (-want +got):\n%s", diff)
		}
	})
}

func TestMOIncompleteExpires(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		clk := newClock()
		h := &recorder{}
		cfg := testConfig(f.addr())
		cfg.ReassemblyTimeout = time.Minute
		start(t, db, cfg, h, clk.Now)
		segs, _ := sms.SplitResponsePacket(packet(300), 9, false)
		f.request(moPDU(testMSISDN, true, 0xF6, segs[0]))
		f.request(moPDU(testMSISDN, true, 0xF6, segs[1]))
		if n := count(t, db, `SELECT COUNT(*) FROM messaging_mo_segment`); n != 2 {
			t.Fatalf("stored segments = %d, want 2", n)
		}
		clk.Advance(61 * time.Second)
		waitFor(t, "incomplete MO dropped", func() bool {
			return count(t, db, `SELECT COUNT(*) FROM messaging_mo_partial`) == 0 &&
				count(t, db, `SELECT COUNT(*) FROM messaging_mo_segment`) == 0
		})
		// The last part alone, after the timeout, completes nothing.
		f.request(moPDU(testMSISDN, true, 0xF6, segs[2]))
		time.Sleep(100 * time.Millisecond)
		if n := len(h.gotMOs()); n != 0 {
			t.Errorf("MOs handed over = %d, want 0", n)
		}
	})
}

func TestValidityExpiresUnsentMessage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		clk := newClock()
		h := &recorder{}
		ts := start(t, db, testConfig(), h, clk.Now) // no SMSC at all
		id, err := ts.SendPacket(t.Context(), testMSISDN, packet(40), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "outbox_depth 1", func() bool { return testutil.ToFloat64(ts.m.outboxDepth) == 1 })
		time.Sleep(50 * time.Millisecond)
		if h.receiptFor(id) != nil {
			t.Fatal("outcome before the validity ended")
		}
		clk.Advance(time.Minute)
		waitFor(t, "receipt handed over", func() bool { return h.receiptFor(id) != nil })
		if rc := h.receiptFor(id); rc.Outcome != Expired || !rc.At.Equal(clk.Now()) {
			t.Errorf("receipt %+v, want expired at %v", rc, clk.Now())
		}
		waitFor(t, "outbox_depth 0", func() bool { return testutil.ToFloat64(ts.m.outboxDepth) == 0 })
	})
}

func TestFailureOnlyReceiptsSilenceMeansDelivered(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		clk := newClock()
		h := &recorder{}
		cfg := testConfig(f.addr())
		cfg.RegisteredDelivery = 0x02
		ts := start(t, db, cfg, h, clk.Now)
		id, err := ts.SendPacket(t.Context(), testMSISDN, packet(40), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		smscID(t, db, id, 1)
		if p := f.submits()[0]; p.RegisteredDelivery != 0x02 {
			t.Errorf("registered_delivery = %#x, want 0x02", p.RegisteredDelivery)
		}
		clk.Advance(time.Minute)
		time.Sleep(60 * time.Millisecond)
		if h.receiptFor(id) != nil {
			t.Fatal("outcome before the receipt grace ended")
		}
		clk.Advance(receiptGrace)
		waitFor(t, "receipt handed over", func() bool { return h.receiptFor(id) != nil })
		if got := h.receiptFor(id).Outcome; got != Delivered {
			t.Errorf("outcome = %v, want delivered", got)
		}
	})
}

func TestBadPDUsKeepTheLink(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		start(t, db, testConfig(f.addr()), &recorder{}, nil)
		fc := f.bound()

		// An unknown command: generic_nack with its sequence number.
		raw := make([]byte, 16)
		binary.BigEndian.PutUint32(raw[0:], 16)
		binary.BigEndian.PutUint32(raw[4:], 0x00000099)
		ch := fc.expect(&smpp.PDU{})
		fc.mu.Lock()
		seq := fc.seq
		fc.mu.Unlock()
		binary.BigEndian.PutUint32(raw[12:], seq)
		if _, err := fc.c.NetConn().Write(raw); err != nil {
			t.Fatal(err)
		}
		if p := wait(t, ch); p.ID != smpp.GenericNack || p.Status != smpp.StatusInvalidCommandID {
			t.Errorf("answer to an unknown command = %v %v, want generic_nack ESME_RINVCMDID", p.ID, p.Status)
		}

		// A deliver_sm cut short: its response with an error status.
		ch = fc.expect(&smpp.PDU{})
		fc.mu.Lock()
		seq = fc.seq
		fc.mu.Unlock()
		bad := make([]byte, 20)
		binary.BigEndian.PutUint32(bad[0:], 20)
		binary.BigEndian.PutUint32(bad[4:], uint32(smpp.DeliverSM))
		binary.BigEndian.PutUint32(bad[12:], seq)
		copy(bad[16:], "abcd")
		if _, err := fc.c.NetConn().Write(bad); err != nil {
			t.Fatal(err)
		}
		if p := wait(t, ch); p.ID != smpp.DeliverSMResp || p.Status == smpp.StatusOK {
			t.Errorf("answer to a truncated deliver_sm = %v %v, want deliver_sm_resp with an error", p.ID, p.Status)
		}

		// A submit_sm is not for an ESME.
		if p := f.request(&smpp.PDU{ID: smpp.SubmitSM, Dest: smpp.Address{Addr: "1"}}); p.Status == smpp.StatusOK {
			t.Errorf("submit_sm to the ESME answered %v", p.Status)
		}

		// The link is still up.
		if p := f.request(&smpp.PDU{ID: smpp.EnquireLink}); p.Status != smpp.StatusOK {
			t.Errorf("enquire_link after bad PDUs: %v", p.Status)
		}
		if n := f.bindCount(); n != 1 {
			t.Errorf("binds = %d, want the first one kept", n)
		}

		// Lost framing ends the link, after a generic_nack.
		huge := make([]byte, 16)
		binary.BigEndian.PutUint32(huge[0:], 1<<30)
		fc.c.NetConn().Write(huge)
		waitFor(t, "a new bind after lost framing", func() bool { return f.bindCount() >= 2 })
	})
}

func TestStoreFailureAnswersSystemError(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		start(t, db, testConfig(f.addr()), &recorder{}, nil)
		f.bound()
		ctx := t.Context()
		if _, err := db.ExecContext(ctx, `ALTER TABLE messaging_receipt_in RENAME TO messaging_receipt_away`); err != nil {
			t.Fatal(err)
		}
		if p := f.request(receiptPDU("m1", smpp.StateDelivered, nil)); p.Status != smpp.StatusSystemError {
			t.Errorf("deliver_sm_resp when the store fails = %v, want ESME_RSYSERR", p.Status)
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE messaging_receipt_away RENAME TO messaging_receipt_in`); err != nil {
			t.Fatal(err)
		}
		if p := f.request(receiptPDU("m1", smpp.StateDelivered, nil)); p.Status != smpp.StatusOK {
			t.Errorf("deliver_sm_resp after the store recovered = %v, want ESME_ROK", p.Status)
		}
	})
}

func TestSendPacketTxCommitsWithCaller(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFakeSMSC(t)
		ts := start(t, db, testConfig(f.addr()), &recorder{}, nil)
		f.bound()
		ctx := t.Context()
		errRollback := context.Canceled
		_ = db.InTx(ctx, func(tx *sql.Tx) error {
			if _, err := ts.SendPacketTx(ctx, tx, testMSISDN, packet(20), time.Minute); err != nil {
				t.Fatal(err)
			}
			return errRollback
		})
		var id int64
		if err := db.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			id, err = ts.SendPacketTx(ctx, tx, testMSISDN, packet(21), time.Minute)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		smscID(t, db, id, 1)
		time.Sleep(50 * time.Millisecond)
		if subs := f.submits(); len(subs) != 1 || len(subs[0].ShortMessage) != 3+21 {
			t.Errorf("submit_sm count = %d, want only the committed message", len(subs))
		}
	})
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	ss := &session{srv: &Server{cfg: Config{ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second}}}
	for n, ceil := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 40: time.Second} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := ss.backoff(n)
			if d < ceil/2 || d > ceil {
				t.Errorf("backoff(%d) = %v, want within [%v, %v]", n, d, ceil/2, ceil)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("backoff(%d) is not jittered", n)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{ServiceNumber: "3725000", Binds: []Bind{
		{Addr: "a:1", SystemID: "x"}, {Addr: "a:1", SystemID: "x"}, {Name: "main", Addr: "b:2", SystemID: "y"},
	}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range c.Binds {
		names = append(names, b.Name)
	}
	if diff := cmp.Diff([]string{"x@a:1", "x@a:1#2", "main"}, names); diff != "" {
		t.Errorf("bind names (-want +got):\n%s", diff)
	}
	if c.Window != 32 || c.EnquireLink != 30*time.Second || c.ResponseTimeout != 10*time.Second ||
		c.ReconnectMin != 500*time.Millisecond || c.ReconnectMax != 30*time.Second || c.ThrottleBackoff != time.Second ||
		c.ReassemblyTimeout != 2*time.Minute || c.RegisteredDelivery != 1 || c.NodeID == "" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if _, err := (Config{}).withDefaults(); err == nil {
		t.Error("a config without a service number was accepted")
	}
}

func TestDecodeMO(t *testing.T) {
	gsm, _ := sms.EncodeGSM7("Hi @ home")
	ucs, _ := sms.EncodeUCS2("Tšau")
	tests := []struct {
		name    string
		dcs     byte
		udh     []sms.IE
		data    []byte
		want    MO
		wantErr bool
	}{
		{name: "GSM 7-bit", dcs: 0x00, data: gsm, want: MO{Text: "Hi @ home"}},
		{name: "GSM 7-bit class 1", dcs: 0xF1, data: gsm, want: MO{Text: "Hi @ home"}},
		{name: "IA5", dcs: 0x01, data: []byte("plain"), want: MO{Text: "plain"}},
		{name: "Latin-1", dcs: 0x03, data: []byte{'T', 0xF5, 'n'}, want: MO{Text: "Tõn"}},
		{name: "UCS-2", dcs: 0x08, data: ucs, want: MO{Text: "Tšau"}},
		{name: "response packet", dcs: 0xF6, udh: []sms.IE{{ID: sms.IEResponsePacket}}, data: []byte{1, 2},
			want: MO{Packet: []byte{1, 2}, Secured: true}},
		{name: "binary without security header", dcs: 0x04, data: []byte{9}, want: MO{Packet: []byte{9}}},
		{name: "SMPP octet unspecified", dcs: 0x02, data: []byte{8}, want: MO{Packet: []byte{8}}},
		{name: "bad septet", dcs: 0x00, data: []byte{0x80}, wantErr: true},
		{name: "odd UCS-2", dcs: 0x08, data: []byte{0, 0x41, 0}, wantErr: true},
	}
	for _, tc := range tests {
		got, err := decodeMO(tc.dcs, tc.udh, tc.data)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if diff := cmp.Diff(tc.want, *got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}
