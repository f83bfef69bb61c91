package smsc

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/smpp"
	"mobileid/internal/sms"
)

// checkReceipt checks a receipt deliver_sm for message id and returns its
// parsed text.
func checkReceipt(t *testing.T, p *smpp.PDU, id string, state smpp.MessageState, netErr uint16) *smpp.Receipt {
	t.Helper()
	if p.ID != smpp.DeliverSM || p.ESMClass != smpp.ESMClassReceipt {
		t.Fatalf("got %v esm_class %#x, want a receipt deliver_sm (esm_class 0x04)", p.ID, p.ESMClass)
	}
	r, err := smpp.ParseReceipt(string(p.ShortMessage))
	if err != nil {
		t.Fatalf("receipt text %q: %v", p.ShortMessage, err)
	}
	if r.ID != id || r.State != state || r.Err != int(netErr) {
		t.Errorf("receipt id %s stat %s err %d, want %s %s %d", r.ID, r.State.Stat(), r.Err, id, state.Stat(), netErr)
	}
	if got := tlv(t, p, smpp.TagReceiptedMessageID); string(got) != id+"\x00" {
		t.Errorf("receipted_message_id = %q, want %q", got, id+"\x00")
	}
	if got := tlv(t, p, smpp.TagMessageState); !bytes.Equal(got, []byte{byte(state)}) {
		t.Errorf("message_state = % x, want %02x", got, byte(state))
	}
	nec, ok := p.TLV(smpp.TagNetworkErrorCode)
	switch {
	case state == smpp.StateDelivered && ok:
		t.Errorf("network_error_code % x on a delivered message", nec)
	case state != smpp.StateDelivered && !bytes.Equal(nec, []byte{0x03, byte(netErr >> 8), byte(netErr)}):
		t.Errorf("network_error_code = % x, want 03 %04x", nec, netErr)
	}
	return r
}

func TestMTBinaryByteExact(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	id := c.submit(otaSubmit("+"+phone, otaUD))

	d := e.radio.next(t)
	if d.msisdn != phone {
		t.Errorf("radio got MSISDN %q, want %q", d.msisdn, phone)
	}
	// SMS-DELIVER, TP-MMS (no more), TP-SRI (receipt asked), TP-UDHI.
	if d.tpdu[0] != 0x64 {
		t.Errorf("first octet %#02x, want 0x64", d.tpdu[0])
	}
	ud := d.tpdu[len(d.tpdu)-len(otaUD):]
	if udl := d.tpdu[len(d.tpdu)-len(otaUD)-1]; udl != byte(len(otaUD)) || !bytes.Equal(ud, otaUD) {
		t.Errorf("TP-UDL %d TP-UD % x, want %d and the short_message % x", udl, ud, len(otaUD), otaUD)
	}
	got, err := sms.ParseDeliver(d.tpdu)
	if err != nil {
		t.Fatalf("ParseDeliver: %v", err)
	}
	want := &sms.Deliver{
		StatusReportIndication: true,
		OA:                     sms.Address{TON: 1, NPI: 1, Digits: "3584000001"},
		PID:                    0x7F,
		DCS:                    0xF6,
		SCTS:                   t0,
		UDH:                    []sms.IE{{ID: sms.IECommandPacket}},
		Data:                   otaUD[3:],
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SMS-DELIVER (-want +got):\n%s", diff)
	}

	p := c.next()
	r := checkReceipt(t, p, id, smpp.StateDelivered, 0)
	if r.Delivered != 1 || r.Submitted != 1 || !r.SubmitDate.Equal(t0) {
		t.Errorf("receipt sub %d dlvrd %d submit date %v", r.Submitted, r.Delivered, r.SubmitDate)
	}
	if p.Source.Addr != "+"+phone || p.Dest.Addr != "3584000001" {
		t.Errorf("receipt from %q to %q, want the message's destination and source", p.Source.Addr, p.Dest.Addr)
	}
	e.eventually(t, 0, "receipt to be settled", func() bool { return e.s.Stats().Queued == 0 })
}

func TestMTCoding(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := bindESME(t, e.addr, smpp.BindTransmitter, sys1, pass1)
	hello, err := sms.EncodeGSM7("Hello {world} @ €5")
	if err != nil {
		t.Fatal(err)
	}
	concat := []byte{5, sms.IEConcat8, 3, 9, 2, 1}
	concat16 := []byte{6, sms.IEConcat16, 4, 0x12, 0x34, 2, 2} // 7 octets: no fill bits
	tests := []struct {
		name string
		mod  func(p *smpp.PDU)
		want sms.Deliver // SCTS is always t0 and OA the default
	}{
		{"GSM 7-bit text", func(p *smpp.PDU) { p.ESMClass, p.DataCoding, p.ShortMessage = 0, 0, hello },
			sms.Deliver{StatusReportIndication: true, PID: 0x7F, DCS: 0, Data: hello}},
		{"GSM 7-bit after a header with fill bits", func(p *smpp.PDU) {
			p.DataCoding, p.ProtocolID, p.ShortMessage = 0, 0, append(slices.Clone(concat), hello...)
		}, sms.Deliver{StatusReportIndication: true, DCS: 0, UDH: []sms.IE{{ID: 0, Data: []byte{9, 2, 1}}}, Data: hello}},
		{"GSM 7-bit after a header without fill bits", func(p *smpp.PDU) {
			p.DataCoding, p.ProtocolID, p.ShortMessage = 0x11, 0, append(slices.Clone(concat16), hello...)
		}, sms.Deliver{StatusReportIndication: true, DCS: 0x11, UDH: []sms.IE{{ID: 8, Data: []byte{0x12, 0x34, 2, 2}}}, Data: hello}},
		{"UCS-2", func(p *smpp.PDU) { p.ESMClass, p.DataCoding, p.ShortMessage = 0, 0x08, []byte{0, 'H', 0x20, 0xAC} },
			sms.Deliver{StatusReportIndication: true, PID: 0x7F, DCS: 0x08, Data: []byte{0, 'H', 0x20, 0xAC}}},
		{"SMPP 8-bit binary 0x02 becomes TP-DCS 0x04", func(p *smpp.PDU) { p.DataCoding = 0x02 },
			sms.Deliver{StatusReportIndication: true, PID: 0x7F, DCS: 0x04, UDH: []sms.IE{{ID: 0x70}}, Data: otaUD[3:]}},
		{"alphanumeric originator", func(p *smpp.PDU) { p.Source = smpp.Address{TON: 5, NPI: 0, Addr: "MobileID"} },
			sms.Deliver{StatusReportIndication: true, OA: sms.Address{TON: 5, Digits: "MobileID"}, PID: 0x7F, DCS: 0xF6, UDH: []sms.IE{{ID: 0x70}}, Data: otaUD[3:]}},
		{"no receipt, reply path", func(p *smpp.PDU) { p.RegisteredDelivery, p.ESMClass = 0, 0xC0 },
			sms.Deliver{ReplyPath: true, PID: 0x7F, DCS: 0xF6, UDH: []sms.IE{{ID: 0x70}}, Data: otaUD[3:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := otaSubmit(phone, slices.Clone(otaUD))
			tt.mod(p)
			c.submit(p)
			got, err := sms.ParseDeliver(e.radio.next(t).tpdu)
			if err != nil {
				t.Fatalf("ParseDeliver: %v", err)
			}
			want := tt.want
			want.SCTS = t0
			if want.OA == (sms.Address{}) {
				want.OA = sms.Address{TON: 1, NPI: 1, Digits: "3584000001"}
			}
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("SMS-DELIVER (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMTStoreAndForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		down, up      func(e *env)
		needsTimeStep bool
	}{
		{"switched off, then on",
			func(e *env) { e.s.SetFaults(phone, Faults{SwitchedOff: true}) },
			func(e *env) { e.s.SetFaults(phone, Faults{}) }, false},
		{"everyone out of coverage, then back",
			func(e *env) { e.s.SetDefaultFaults(Faults{OutOfCoverage: true}) },
			func(e *env) { e.s.SetDefaultFaults(Faults{}) }, false},
		{"own faults cleared",
			func(e *env) { e.s.SetFaults("+"+phone, Faults{SwitchedOff: true}) },
			func(e *env) { e.s.ClearFaults(phone) }, false},
		{"radio reports absent, then takes it",
			func(e *env) { e.radio.setFail(phone, absentErr{}) },
			func(e *env) { e.radio.setFail(phone, nil) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
			tt.down(e)
			id := c.submit(otaSubmit(phone, otaUD))
			e.eventually(t, time.Second, "two failed attempts", func() bool { return e.s.Stats().Absent >= 2 })
			if n := len(e.radio.deliveries()); n != 0 {
				t.Fatalf("radio got %d messages while the phone was away", n)
			}
			tt.up(e)
			step := time.Duration(0)
			if tt.needsTimeStep {
				step = time.Second
			}
			e.eventually(t, step, "delivery", func() bool { return len(e.radio.deliveries()) == 1 })
			checkReceipt(t, c.next(), id, smpp.StateDelivered, 0)
			if st := e.s.Stats(); st.Retried < 2 || st.Delivered != 1 {
				t.Errorf("stats: retried %d delivered %d, want ≥2 and 1", st.Retried, st.Delivered)
			}
		})
	}
}

func TestMTExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults Faults
		radio  error
		lost   bool
	}{
		{"switched off until the validity ends", Faults{SwitchedOff: true}, nil, false},
		{"radio reports absent until the validity ends", Faults{}, absentErr{}, false},
		{"every attempt lost", Faults{LossPercent: 100}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *Config) { c.Faults = tt.faults })
			e.radio.setFail(phone, tt.radio)
			c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
			short := otaSubmit(phone, otaUD)
			short.ValidityPeriod = "000000000500000R" // 5 minutes
			long := otaSubmit(phone, otaUD)
			long.ValidityPeriod = "000000001000000R" // 10 minutes, queued behind the first
			ids := []string{c.submit(short), c.submit(long)}
			var receipts []*smpp.PDU
			e.eventually(t, time.Second, "two receipts", func() bool {
				if p, ok := c.poll(); ok {
					receipts = append(receipts, p)
				}
				return len(receipts) == 2
			})
			for i, p := range receipts {
				r := checkReceipt(t, p, ids[i], smpp.StateExpired, 0x001B)
				if want := t0.Add(time.Duration(5*(i+1)) * time.Minute); r.DoneDate.Before(want.Truncate(time.Minute)) {
					t.Errorf("receipt %d done %v, before the validity ended at %v", i, r.DoneDate, want)
				}
			}
			st := e.s.Stats()
			if n := len(e.radio.deliveries()); n != 0 || st.Delivered != 0 {
				t.Errorf("radio got %d messages (stats %d), want none", n, st.Delivered)
			}
			if st.Expired != 2 || (tt.lost && st.Lost < 2) {
				t.Errorf("stats: expired %d lost %d", st.Expired, st.Lost)
			}
		})
	}
}

func TestMTUndeliverable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want uint16
	}{
		{"unknown subscriber", errors.New("no such phone"), 0x0001},
		{"radio names the error", codeErr(0x0020), 0x0020},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			e.radio.setFail(phone, tt.err)
			c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
			id := c.submit(otaSubmit(phone, otaUD))
			checkReceipt(t, c.next(), id, smpp.StateUndeliverable, tt.want)
			if st := e.s.Stats(); st.Undeliverable != 1 || st.Retried != 0 {
				t.Errorf("stats: undeliverable %d retried %d, want 1 and 0", st.Undeliverable, st.Retried)
			}
		})
	}
}

func TestMTReceiptSelection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rd      byte
		fail    bool
		receipt bool
	}{
		{0, false, false}, {0, true, false},
		{1, false, true}, {1, true, true},
		{2, false, false}, {2, true, true},
		{3, false, true}, {3, true, false},
	}
	for _, tt := range tests {
		name := "registered_delivery " + string('0'+tt.rd)
		if tt.fail {
			name += " failed"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			if tt.fail {
				e.radio.setFail(phone, errors.New("rejected"))
			}
			c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
			p := otaSubmit(phone, otaUD)
			p.RegisteredDelivery = tt.rd
			id := c.submit(p)
			e.eventually(t, 0, "the outcome", func() bool {
				st := e.s.Stats()
				return st.Delivered+st.Undeliverable == 1 && st.Queued == 0
			})
			if got := e.s.Stats().Receipts; got != map[bool]uint64{false: 0, true: 1}[tt.receipt] {
				t.Fatalf("receipts = %d, want receipt %v", got, tt.receipt)
			}
			if tt.receipt {
				want := smpp.StateDelivered
				code := uint16(0)
				if tt.fail {
					want, code = smpp.StateUndeliverable, 0x0001
				}
				checkReceipt(t, c.next(), id, want, code)
			}
		})
	}
}

// order returns the index octet at the end of each delivered TPDU.
func order(ds []delivery) []int {
	var o []int
	for _, d := range ds {
		o = append(o, int(d.tpdu[len(d.tpdu)-1]))
	}
	return o
}

func TestMTOrder(t *testing.T) {
	t.Parallel()
	const n = 20
	tests := []struct {
		name      string
		faults    Faults
		wantOrder bool
	}{
		{"one at a time in submit order", Faults{Latency: 10 * time.Millisecond, Jitter: 20 * time.Millisecond}, true},
		{"reorder", Faults{Latency: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Reorder: true}, false},
		{"reorder without jitter", Faults{Reorder: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *Config) { c.Faults = tt.faults })
			c := bindESME(t, e.addr, smpp.BindTransmitter, sys1, pass1)
			for i := range n {
				p := otaSubmit(phone, append(slices.Clone(otaUD), byte(i)))
				p.RegisteredDelivery = 0
				c.submit(p)
			}
			e.eventually(t, 5*time.Millisecond, "all messages", func() bool { return len(e.radio.deliveries()) == n })
			got := order(e.radio.deliveries())
			if sorted := slices.IsSorted(got); sorted != tt.wantOrder {
				t.Errorf("delivery order %v: sorted %v, want %v", got, sorted, tt.wantOrder)
			}
			slices.Sort(got)
			for i, v := range got {
				if v != i {
					t.Fatalf("delivered %v, want each of 0..%d once", got, n-1)
				}
			}
		})
	}
}

func TestMTDuplicates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Faults = Faults{DuplicatePercent: 100, Latency: 5 * time.Millisecond} })
	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	id := c.submit(otaSubmit(phone, otaUD))
	e.eventually(t, 5*time.Millisecond, "two copies", func() bool { return len(e.radio.deliveries()) == 2 })
	ds := e.radio.deliveries()
	if !bytes.Equal(ds[0].tpdu, ds[1].tpdu) || ds[0].msisdn != ds[1].msisdn {
		t.Errorf("copies differ: % x and % x", ds[0].tpdu, ds[1].tpdu)
	}
	checkReceipt(t, c.next(), id, smpp.StateDelivered, 0)
	if st := e.s.Stats(); st.Duplicated != 1 || st.Receipts != 1 {
		t.Errorf("stats: duplicated %d receipts %d, want 1 and 1", st.Duplicated, st.Receipts)
	}
}

func TestMTDatagramModeIsNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.Faults.SwitchedOff = true })
	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	p := otaSubmit(phone, otaUD)
	p.ESMClass |= 0x01
	id := c.submit(p)
	checkReceipt(t, c.next(), id, smpp.StateUndeliverable, 0x001B)
	if st := e.s.Stats(); st.Attempts != 1 || st.Retried != 0 {
		t.Errorf("attempts %d retried %d, want 1 and 0", st.Attempts, st.Retried)
	}
}
