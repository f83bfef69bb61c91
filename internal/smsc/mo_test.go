package smsc

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/smpp"
	"mobileid/internal/sms"
)

// moTPDU builds a binary SMS-SUBMIT (PID 0x7F, DCS 0xF6) as a SIM sends
// its response packets; a '+' on da makes it international.
func moTPDU(t testing.TB, da string, udh []sms.IE, data []byte) []byte {
	t.Helper()
	addr := sms.Address{TON: 0, NPI: 1, Digits: da}
	if strings.HasPrefix(da, "+") {
		addr = sms.Address{TON: 1, NPI: 1, Digits: da[1:]}
	}
	s := sms.Submit{MR: 7, DA: addr, PID: 0x7F, DCS: 0xF6, UDH: udh, Data: data}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var porData = []byte{0x00, 0x0E, 0x0A, 0xB0, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x90, 0x00, 0xFF}

func TestMORouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	b := bindESME(t, e.addr, smpp.BindReceiver, sys2, pass2)
	text, err := sms.EncodeGSM7("PIN OK")
	if err != nil {
		t.Fatal(err)
	}
	gsmSubmit, err := (&sms.Submit{DA: sms.Address{TON: 0, NPI: 1, Digits: "16000"}, DCS: 0, Data: text}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		tpdu     []byte
		to       *esme
		wantDest smpp.Address
		wantESM  byte
		wantPID  byte
		wantDC   byte
		wantSM   []byte
	}{
		{"response packet to a short code", moTPDU(t, "16001", []sms.IE{{ID: sms.IEResponsePacket}}, porData), b,
			smpp.Address{TON: 0, NPI: 1, Addr: "16001"}, 0x40, 0x7F, 0xF6, append([]byte{0x02, 0x71, 0x00}, porData...)},
		{"international service number", moTPDU(t, "+3584000001", []sms.IE{{ID: sms.IEResponsePacket}}, porData), a,
			smpp.Address{TON: 1, NPI: 1, Addr: "3584000001"}, 0x40, 0x7F, 0xF6, append([]byte{0x02, 0x71, 0x00}, porData...)},
		{"concatenated part", moTPDU(t, "16000", []sms.IE{{ID: 0x00, Data: []byte{5, 2, 1}}, {ID: sms.IEResponsePacket}}, porData), a,
			smpp.Address{TON: 0, NPI: 1, Addr: "16000"}, 0x40, 0x7F, 0xF6, append([]byte{0x07, 0x00, 0x03, 5, 2, 1, 0x71, 0x00}, porData...)},
		{"no header", moTPDU(t, "16001", nil, porData), b,
			smpp.Address{TON: 0, NPI: 1, Addr: "16001"}, 0x00, 0x7F, 0xF6, porData},
		{"GSM 7-bit text arrives unpacked", gsmSubmit, a,
			smpp.Address{TON: 0, NPI: 1, Addr: "16000"}, 0x00, 0x00, 0x00, text},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.s.SubmitMO(t.Context(), "+"+phone, tt.tpdu); err != nil {
				t.Fatalf("SubmitMO: %v", err)
			}
			p := tt.to.next()
			want := smpp.PDU{
				ID:           smpp.DeliverSM,
				Seq:          p.Seq,
				Source:       smpp.Address{TON: 1, NPI: 1, Addr: phone},
				Dest:         tt.wantDest,
				ESMClass:     tt.wantESM,
				ProtocolID:   tt.wantPID,
				DataCoding:   tt.wantDC,
				ShortMessage: tt.wantSM,
			}
			if diff := cmp.Diff(&want, p); diff != "" {
				t.Errorf("deliver_sm (-want +got):\n%s", diff)
			}
		})
	}
	if _, ok := a.poll(); ok {
		t.Error("msg1 got a message meant for msg2")
	}
	if _, ok := b.poll(); ok {
		t.Error("msg2 got a message meant for msg1")
	}
	if st := e.s.Stats(); st.MO != uint64(len(tests)) {
		t.Errorf("stats: mo %d, want %d", st.MO, len(tests))
	}
}

func TestMOErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.s.SetFaults("358400000002", Faults{SwitchedOff: true})
	e.s.SetFaults("358400000003", Faults{LossPercent: 100})
	e.s.SetFaults("358400000004", Faults{OutOfCoverage: true})
	good := moTPDU(t, "16000", nil, porData)
	tests := []struct {
		name string
		from string
		tpdu []byte
		want error
	}{
		{"no account serves it", phone, moTPDU(t, "19999", nil, porData), ErrNoRoute},
		{"switched off", "358400000002", good, ErrUnreachable},
		{"out of coverage", "358400000004", good, ErrUnreachable},
		{"lost", "358400000003", good, ErrLost},
		{"bad originator", "12ab", good, ErrBadMSISDN},
		{"not an SMS-SUBMIT", phone, []byte{0x00, 0x01}, nil},
		{"empty TPDU", phone, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.s.SubmitMO(t.Context(), tt.from, tt.tpdu)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("SubmitMO = %v, want %v", err, tt.want)
			}
		})
	}
	if st := e.s.Stats(); st.MO != 0 || st.Queued != 0 || st.Lost != 1 {
		t.Errorf("stats: mo %d queued %d lost %d, want 0, 0, 1", st.MO, st.Queued, st.Lost)
	}
}

func TestMOHeldUntilBind(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	// A transmitter cannot take MO, so the messages wait.
	bindESME(t, e.addr, smpp.BindTransmitter, sys1, pass1)
	for i := range 3 {
		if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.s.Stats(); st.Queued != 3 || st.ESMEDelivered != 0 {
		t.Fatalf("stats before bind: queued %d delivered %d", st.Queued, st.ESMEDelivered)
	}
	e.clock.Advance(30 * time.Minute) // well inside the default validity
	r := bindESME(t, e.addr, smpp.BindReceiver, sys1, pass1)
	for i := range 3 {
		if p := r.next(); !bytes.Equal(p.ShortMessage, []byte{byte(i)}) {
			t.Errorf("message %d: short_message % x", i, p.ShortMessage)
		}
	}
	e.eventually(t, 0, "the responses", func() bool { return e.s.Stats().Queued == 0 })
}

func TestMOExpiresWhileUnbound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.DefaultValidity = time.Minute })
	if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, porData)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Minute)
	if st := e.s.Stats(); st.Dropped != 1 || st.Queued != 0 {
		t.Errorf("stats: dropped %d queued %d, want 1 and 0", st.Dropped, st.Queued)
	}
}

func TestMORetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ack  func(n int) (smpp.Status, bool)
		step time.Duration
	}{
		{"refused once", func(n int) (smpp.Status, bool) {
			if n == 1 {
				return smpp.StatusSystemError, true
			}
			return smpp.StatusOK, true
		}, time.Second},
		{"not answered once", func(n int) (smpp.Status, bool) { return smpp.StatusOK, n > 1 }, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
			n := 0
			c.setAck(func(*smpp.PDU) (smpp.Status, bool) { n++; return tt.ack(n) })
			if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, porData)); err != nil {
				t.Fatal(err)
			}
			first := c.next()
			var second *smpp.PDU
			e.eventually(t, tt.step, "the retry", func() bool {
				var ok bool
				second, ok = c.poll()
				return ok
			})
			if !bytes.Equal(first.ShortMessage, second.ShortMessage) || first.Seq == second.Seq {
				t.Errorf("retry: seq %d → %d, short_message % x → % x", first.Seq, second.Seq, first.ShortMessage, second.ShortMessage)
			}
			e.eventually(t, 0, "the response", func() bool { return e.s.Stats().ESMEDelivered == 1 })
			if st := e.s.Stats(); st.ESMERetried != 1 || st.Queued != 0 || st.WindowInUse != 0 {
				t.Errorf("stats: retried %d queued %d window %d, want 1, 0, 0", st.ESMERetried, st.Queued, st.WindowInUse)
			}
		})
	}
}

func TestMODuplicatesAndLatency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Faults = Faults{DuplicatePercent: 100, Latency: time.Second} })
	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, porData)); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.poll(); ok {
		t.Fatal("MO arrived before the radio leg's latency")
	}
	var got []*smpp.PDU
	e.eventually(t, 100*time.Millisecond, "two copies", func() bool {
		if p, ok := c.poll(); ok {
			got = append(got, p)
		}
		return len(got) == 2
	})
	if !bytes.Equal(got[0].ShortMessage, got[1].ShortMessage) {
		t.Error("copies differ")
	}
}

func TestWindowAndRoundRobin(t *testing.T) {
	t.Parallel()
	const window, total = 4, 12
	e := newEnv(t, func(c *Config) { c.Window = window })
	hold := func(*smpp.PDU) (smpp.Status, bool) { return 0, false }
	x := bindESME(t, e.addr, smpp.BindReceiver, sys1, pass1)
	y := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	x.setAck(hold)
	y.setAck(hold)
	for i := range total {
		if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
	}
	// SubmitMO hands out deliver_sm before it returns, so the counts are
	// settled now.
	if st := e.s.Stats(); st.WindowInUse != 2*window || st.Queued != total {
		t.Fatalf("window in use %d, queued %d, want %d and %d", st.WindowInUse, st.Queued, 2*window, total)
	}
	var fromX, fromY []*smpp.PDU
	for range window {
		fromX = append(fromX, x.next())
		fromY = append(fromY, y.next())
	}
	// Round robin: x got 0, 2, 4, 6 and y 1, 3, 5, 7.
	for i := range window {
		if fromX[i].ShortMessage[0] != byte(2*i) || fromY[i].ShortMessage[0] != byte(2*i+1) {
			t.Errorf("deliver_sm %d: x got %d, y got %d", i, fromX[i].ShortMessage[0], fromY[i].ShortMessage[0])
		}
	}
	// One response frees one slot for one more deliver_sm.
	x.write(&smpp.PDU{ID: smpp.DeliverSMResp, Seq: fromX[0].Seq})
	if p := x.next(); p.ShortMessage[0] != 2*window {
		t.Errorf("after one response x got message %d, want %d", p.ShortMessage[0], 2*window)
	}
	if st := e.s.Stats(); st.WindowInUse != 2*window {
		t.Errorf("window in use %d, want %d", st.WindowInUse, 2*window)
	}
	// A bind that goes away hands its outstanding deliver_sm to the other.
	x.nc.Close()
	e.eventually(t, 0, "x to go", func() bool { return e.s.Stats().Binds == 1 })
	y.setAck(nil)
	for _, p := range fromY {
		y.write(&smpp.PDU{ID: smpp.DeliverSMResp, Seq: p.Seq})
	}
	e.eventually(t, 0, "everything delivered through y", func() bool { return e.s.Stats().ESMEDelivered == total })
	// y gets x's three unanswered messages first, in order, then the rest.
	want := []byte{2, 4, 6, 8, 9, 10, 11}
	var seen []byte
	for range want {
		seen = append(seen, y.next().ShortMessage[0])
	}
	if !bytes.Equal(seen, want) {
		t.Errorf("y got %v, want %v", seen, want)
	}
}

func TestTwoESMEsAndAStalledPeer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.WriteTimeout = 200 * time.Millisecond })
	// msg2 binds and then only writes: its responses pile up unread.
	stalled := dial(t, e.addr)
	if r := stalled.bindRaw(smpp.BindTransceiver, sys2, pass2); r.Status != smpp.StatusOK {
		t.Fatal(r.Status)
	}
	flood := bytes.Repeat(header(16, smpp.EnquireLink, 1), 4096)
	flooded := make(chan error, 1)
	go func() {
		for range 2048 { // 128 MiB at most; the SMSC cuts it off long before
			stalled.nc.SetWriteDeadline(time.Now().Add(failsafe))
			if _, err := stalled.nc.Write(flood); err != nil {
				flooded <- err
				return
			}
		}
		flooded <- nil
	}()
	// MO for the stalled account is held without disturbing anyone.
	if err := e.s.SubmitMO(t.Context(), "358400000009", moTPDU(t, "16001", nil, porData)); err != nil {
		t.Fatal(err)
	}

	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	for i := range 50 {
		p := otaSubmit(phone, append(otaUD[:len(otaUD):len(otaUD)], byte(i)))
		id := c.submit(p)
		checkReceipt(t, c.next(), id, smpp.StateDelivered, 0)
		if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, []byte{byte(i)})); err != nil {
			t.Fatal(err)
		}
		if p := c.next(); p.ShortMessage[0] != byte(i) {
			t.Fatalf("MO %d: got % x", i, p.ShortMessage)
		}
	}
	if err := <-flooded; err == nil {
		t.Error("the SMSC never disconnected a peer that does not read")
	}
	e.eventually(t, 0, "the stalled bind to go", func() bool { return e.s.Stats().Binds == 1 })
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	id := c.submit(otaSubmit(phone, otaUD))
	checkReceipt(t, c.next(), id, smpp.StateDelivered, 0)
	if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, porData)); err != nil {
		t.Fatal(err)
	}
	c.next()
	e.eventually(t, 0, "responses", func() bool { return e.s.Stats().Queued == 0 })
	want := map[string]float64{
		`mobileid_smsc_submit_total`:                             1,
		`mobileid_smsc_deliver_attempts_total{result=delivered}`: 1,
		`mobileid_smsc_deliver_attempts_total{result=absent}`:    0,
		`mobileid_smsc_mo_total`:                                 1,
		`mobileid_smsc_receipts_total{stat=DELIVRD}`:             1,
		`mobileid_smsc_queue_depth`:                              0,
		`mobileid_smsc_binds`:                                    1,
		`mobileid_smsc_window_in_use`:                            0,
	}
	got := gather(t, e.reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// gather flattens a registry into "name{label=value}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			v := -1.0
			if c := m.GetCounter(); c != nil {
				v = c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				v = g.GetValue()
			}
			out[key] = v
		}
	}
	return out
}
