package smsc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"mobileid/internal/smpp"
)

func TestBind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		id         smpp.CommandID
		sys, pass  string
		want       smpp.Status
		wantClosed bool
	}{
		{"transmitter", smpp.BindTransmitter, sys1, pass1, smpp.StatusOK, false},
		{"receiver", smpp.BindReceiver, sys1, pass1, smpp.StatusOK, false},
		{"transceiver", smpp.BindTransceiver, sys2, pass2, smpp.StatusOK, false},
		{"wrong password", smpp.BindTransceiver, sys1, "secret2", smpp.StatusInvalidPassword, true},
		{"empty password", smpp.BindTransmitter, sys1, "", smpp.StatusInvalidPassword, true},
		{"unknown system_id", smpp.BindReceiver, "nobody", pass1, smpp.StatusInvalidSystemID, true},
	}
	e := newEnv(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, e.addr)
			r := c.bindRaw(tt.id, tt.sys, tt.pass)
			if r.ID != tt.id.Response() || r.Status != tt.want {
				t.Fatalf("%v = %v status %v, want %v status %v", tt.id, r.ID, r.Status, tt.id.Response(), tt.want)
			}
			if r.SystemID != SystemID {
				t.Errorf("system_id = %q, want %q", r.SystemID, SystemID)
			}
			if tt.wantClosed {
				c.expectClosed()
				return
			}
			if v := tlv(t, r, smpp.TagSCInterfaceVersion); !bytes.Equal(v, []byte{0x34}) {
				t.Errorf("sc_interface_version = % x, want 34", v)
			}
			c.write(&smpp.PDU{ID: smpp.EnquireLink})
			if p := c.read(); p.ID != smpp.EnquireLinkResp || p.Status != smpp.StatusOK {
				t.Errorf("enquire_link after bind: %v status %v", p.ID, p.Status)
			}
		})
	}
}

func TestBindLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.MaxBindsPerAccount = 2 })
	first := dial(t, e.addr)
	if r := first.bindRaw(smpp.BindTransceiver, sys1, pass1); r.Status != smpp.StatusOK {
		t.Fatalf("first bind: %v", r.Status)
	}
	t.Run("second bind on a bound connection", func(t *testing.T) {
		first.write(&smpp.PDU{ID: smpp.BindTransmitter, SystemID: sys1, Password: pass1, Seq: 42})
		r := first.read()
		if r.ID != smpp.BindTransmitterResp || r.Status != smpp.StatusAlreadyBound || r.Seq != 42 {
			t.Fatalf("got %v status %v seq %d, want bind_transmitter_resp ESME_RALYBND seq 42", r.ID, r.Status, r.Seq)
		}
		first.write(&smpp.PDU{ID: smpp.EnquireLink})
		if r := first.read(); r.ID != smpp.EnquireLinkResp {
			t.Fatalf("link lost after ESME_RALYBND: got %v", r.ID)
		}
	})
	t.Run("more than MaxBindsPerAccount", func(t *testing.T) {
		second := dial(t, e.addr)
		if r := second.bindRaw(smpp.BindReceiver, sys1, pass1); r.Status != smpp.StatusOK {
			t.Fatalf("second bind: %v", r.Status)
		}
		third := dial(t, e.addr)
		if r := third.bindRaw(smpp.BindTransmitter, sys1, pass1); r.Status != smpp.StatusBindFailed {
			t.Fatalf("third bind: %v, want ESME_RBINDFAIL", r.Status)
		}
		third.expectClosed()
		other := dial(t, e.addr)
		if r := other.bindRaw(smpp.BindTransmitter, sys2, pass2); r.Status != smpp.StatusOK {
			t.Fatalf("other account's bind: %v, want ESME_ROK", r.Status)
		}
		second.write(&smpp.PDU{ID: smpp.Unbind})
		if r := second.read(); r.ID != smpp.UnbindResp {
			t.Fatalf("unbind: got %v", r.ID)
		}
		e.eventually(t, 0, "unbind to free the slot", func() bool { return e.s.Stats().Binds == 2 })
		again := dial(t, e.addr)
		if r := again.bindRaw(smpp.BindTransmitter, sys1, pass1); r.Status != smpp.StatusOK {
			t.Fatalf("bind after unbind: %v", r.Status)
		}
	})
}

func TestBeforeBind(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tests := []struct {
		name string
		p    *smpp.PDU
		want smpp.CommandID
	}{
		{"submit_sm", otaSubmit(phone, otaUD), smpp.SubmitSMResp},
		{"enquire_link", &smpp.PDU{ID: smpp.EnquireLink}, smpp.EnquireLinkResp},
		{"unbind", &smpp.PDU{ID: smpp.Unbind}, smpp.UnbindResp},
		{"deliver_sm_resp", &smpp.PDU{ID: smpp.DeliverSMResp}, smpp.GenericNack},
		{"submit_sm_resp", &smpp.PDU{ID: smpp.SubmitSMResp, MessageID: "1"}, smpp.GenericNack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, e.addr)
			tt.p.Seq = 1234
			c.write(tt.p)
			r := c.read()
			if r.ID != tt.want || r.Status != smpp.StatusInvalidBindStatus || r.Seq != 1234 {
				t.Fatalf("got %v status %v seq %d, want %v ESME_RINVBNDSTS seq 1234", r.ID, r.Status, r.Seq, tt.want)
			}
			if r := c.bindRaw(smpp.BindTransceiver, sys1, pass1); r.Status != smpp.StatusOK {
				t.Fatalf("bind afterwards: %v", r.Status)
			}
		})
	}
}

// header encodes a PDU header by hand, for PDUs the codec would refuse.
func header(length uint32, id smpp.CommandID, seq uint32) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b, length)
	binary.BigEndian.PutUint32(b[4:], uint32(id))
	binary.BigEndian.PutUint32(b[12:], seq)
	return b
}

// rawPDU is a PDU with an arbitrary body and a correct command_length.
func rawPDU(id smpp.CommandID, seq uint32, body []byte) []byte {
	return append(header(uint32(16+len(body)), id, seq), body...)
}

func TestProtocolErrorsKeepTheLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	valid, err := otaSubmit(phone, otaUD).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	validBody := valid[16:]
	tests := []struct {
		name   string
		raw    []byte
		wantID smpp.CommandID
		want   smpp.Status
	}{
		{"unknown command_id", rawPDU(0x00000099, 77, nil), smpp.GenericNack, smpp.StatusInvalidCommandID},
		{"unknown response id", rawPDU(0x80000123, 77, []byte{1, 2}), smpp.GenericNack, smpp.StatusInvalidCommandID},
		{"submit_sm truncated", rawPDU(smpp.SubmitSM, 77, validBody[:10]), smpp.SubmitSMResp, smpp.StatusInvalidCommandLength},
		{"submit_sm empty body", rawPDU(smpp.SubmitSM, 77, nil), smpp.SubmitSMResp, smpp.StatusInvalidCommandLength},
		{"submit_sm stray TLV octets", rawPDU(smpp.SubmitSM, 77, append(slicesClone(validBody), 0x04, 0x24)), smpp.SubmitSMResp, smpp.StatusInvalidOptionalParamStream},
		{"submit_sm service_type too long", rawPDU(smpp.SubmitSM, 77, []byte("abcdefghij\x00")), smpp.SubmitSMResp, smpp.StatusInvalidParamLength},
		{"enquire_link with garbage", rawPDU(smpp.EnquireLink, 77, []byte{1}), smpp.EnquireLinkResp, smpp.StatusInvalidOptionalParamStream},
	}
	c := dial(t, e.addr)
	if r := c.bindRaw(smpp.BindTransceiver, sys1, pass1); r.Status != smpp.StatusOK {
		t.Fatal(r.Status)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The expected status is the codec's verdict, so this test
			// checks the server's handling, not the codec's details.
			if _, err := smpp.Unmarshal(tt.raw); smpp.StatusOf(err) != tt.want {
				t.Fatalf("codec says %v for this input; fix the test", smpp.StatusOf(err))
			}
			c.writeRaw(tt.raw)
			r := c.read()
			if r.ID != tt.wantID || r.Status != tt.want || r.Seq != 77 {
				t.Fatalf("got %v status %v seq %d, want %v %v seq 77", r.ID, r.Status, r.Seq, tt.wantID, tt.want)
			}
			c.write(&smpp.PDU{ID: smpp.EnquireLink, Seq: 78})
			if r := c.read(); r.ID != smpp.EnquireLinkResp || r.Seq != 78 {
				t.Fatalf("link lost: got %v seq %d", r.ID, r.Seq)
			}
		})
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func TestFramingErrorCloses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	tests := []struct {
		name   string
		length uint32
	}{
		{"absurd length", 0xFFFFFFFF},
		{"above MaxPDULen", smpp.MaxPDULen + 1},
		{"shorter than a header", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, bound := range []bool{false, true} {
				c := dial(t, e.addr)
				if bound {
					if r := c.bindRaw(smpp.BindTransceiver, sys1, pass1); r.Status != smpp.StatusOK {
						t.Fatal(r.Status)
					}
				}
				c.writeRaw(header(tt.length, smpp.SubmitSM, 5))
				r := c.read()
				if r.ID != smpp.GenericNack || r.Status != smpp.StatusInvalidCommandLength {
					t.Fatalf("bound=%v: got %v status %v, want generic_nack ESME_RINVCMDLEN", bound, r.ID, r.Status)
				}
				c.expectClosed()
			}
		})
	}
	// The server goes on for everyone else.
	c := dial(t, e.addr)
	if r := c.bindRaw(smpp.BindTransceiver, sys1, pass1); r.Status != smpp.StatusOK {
		t.Fatal(r.Status)
	}
}

func TestEnquireLinkAndUnbind(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := dial(t, e.addr)
	if r := c.bindRaw(smpp.BindTransceiver, sys1, pass1); r.Status != smpp.StatusOK {
		t.Fatal(r.Status)
	}
	c.write(&smpp.PDU{ID: smpp.EnquireLink, Seq: 9})
	if r := c.read(); r.ID != smpp.EnquireLinkResp || r.Status != smpp.StatusOK || r.Seq != 9 {
		t.Fatalf("enquire_link: got %v status %v seq %d", r.ID, r.Status, r.Seq)
	}
	c.write(&smpp.PDU{ID: smpp.Unbind, Seq: 10})
	if r := c.read(); r.ID != smpp.UnbindResp || r.Status != smpp.StatusOK || r.Seq != 10 {
		t.Fatalf("unbind: got %v status %v seq %d", r.ID, r.Status, r.Seq)
	}
	c.expectClosed()
	e.eventually(t, 0, "bind count to drop", func() bool { return e.s.Stats().Binds == 0 })
}

func TestSubmitValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	gsm := func(n int) []byte { return bytes.Repeat([]byte{'A'}, n) }
	tests := []struct {
		name string
		mod  func(p *smpp.PDU)
		want smpp.Status
	}{
		{"binary OTA", func(p *smpp.PDU) {}, smpp.StatusOK},
		{"dest with plus", func(p *smpp.PDU) { p.Dest.Addr = "+" + phone }, smpp.StatusOK},
		{"dest not digits", func(p *smpp.PDU) { p.Dest.Addr = "35840abc" }, smpp.StatusInvalidDestAddress},
		{"dest empty", func(p *smpp.PDU) { p.Dest.Addr = "" }, smpp.StatusInvalidDestAddress},
		{"dest national", func(p *smpp.PDU) { p.Dest.TON = smpp.TONNational }, smpp.StatusInvalidDestAddress},
		{"dest too long", func(p *smpp.PDU) { p.Dest.Addr = "1234567890123456" }, smpp.StatusInvalidDestAddress},
		{"source letters, numeric TON", func(p *smpp.PDU) { p.Source.Addr = "Bank" }, smpp.StatusInvalidSourceAddress},
		{"source empty", func(p *smpp.PDU) { p.Source.Addr = "" }, smpp.StatusInvalidSourceAddress},
		{"source alphanumeric", func(p *smpp.PDU) { p.Source = smpp.Address{TON: smpp.TONAlphanumeric, Addr: "MobileID"} }, smpp.StatusOK},
		{"source alphanumeric too long", func(p *smpp.PDU) { p.Source = smpp.Address{TON: smpp.TONAlphanumeric, Addr: "MobileIDBank1"} }, smpp.StatusInvalidSourceAddress},
		{"esm_class datagram mode", func(p *smpp.PDU) { p.ESMClass |= 0x01 }, smpp.StatusOK},
		{"esm_class receipt type", func(p *smpp.PDU) { p.ESMClass = 0x04 }, smpp.StatusInvalidESMClass},
		{"esm_class intermediate type", func(p *smpp.PDU) { p.ESMClass = 0x20 }, smpp.StatusInvalidESMClass},
		{"140 octets", func(p *smpp.PDU) { p.ShortMessage = make([]byte, 140); p.ShortMessage[0] = 2; p.ShortMessage[1] = 0x70 }, smpp.StatusOK},
		{"141 octets", func(p *smpp.PDU) { p.ShortMessage = make([]byte, 141); p.ShortMessage[0] = 2; p.ShortMessage[1] = 0x70 }, smpp.StatusInvalidMessageLength},
		{"UDHL beyond the message", func(p *smpp.PDU) { p.ShortMessage = []byte{0x05, 0x70, 0x00} }, smpp.StatusInvalidMessageLength},
		{"UDHI without data", func(p *smpp.PDU) { p.ShortMessage = nil }, smpp.StatusInvalidMessageLength},
		{"message_payload", func(p *smpp.PDU) {
			p.TLVs = []smpp.TLV{{Tag: smpp.TagMessagePayload, Value: p.ShortMessage}}
			p.ShortMessage = nil
		}, smpp.StatusOK},
		{"message_payload of 141", func(p *smpp.PDU) {
			p.TLVs = []smpp.TLV{{Tag: smpp.TagMessagePayload, Value: append([]byte{2, 0x70, 0}, make([]byte, 138)...)}}
			p.ShortMessage = nil
		}, smpp.StatusInvalidMessageLength},
		{"short_message and message_payload", func(p *smpp.PDU) {
			p.TLVs = []smpp.TLV{{Tag: smpp.TagMessagePayload, Value: p.ShortMessage}}
		}, smpp.StatusInvalidMessageLength},
		{"GSM 7-bit 160 septets", func(p *smpp.PDU) { p.ESMClass, p.DataCoding, p.ShortMessage = 0, 0, gsm(160) }, smpp.StatusOK},
		{"GSM 7-bit 161 septets", func(p *smpp.PDU) { p.ESMClass, p.DataCoding, p.ShortMessage = 0, 0, gsm(161) }, smpp.StatusInvalidMessageLength},
		{"GSM 7-bit 153 septets after a concatenation header", func(p *smpp.PDU) {
			p.DataCoding, p.ShortMessage = 0, append([]byte{5, 0, 3, 1, 2, 1}, gsm(153)...)
		}, smpp.StatusOK},
		{"GSM 7-bit 154 septets after a concatenation header", func(p *smpp.PDU) {
			p.DataCoding, p.ShortMessage = 0, append([]byte{5, 0, 3, 1, 2, 1}, gsm(154)...)
		}, smpp.StatusInvalidMessageLength},
		{"GSM 7-bit octet above 0x7F", func(p *smpp.PDU) { p.ESMClass, p.DataCoding, p.ShortMessage = 0, 0, []byte{'A', 0x80} }, smpp.StatusSubmitFailed},
		{"relative validity", func(p *smpp.PDU) { p.ValidityPeriod = "000000000500000R" }, smpp.StatusOK},
		{"absolute validity", func(p *smpp.PDU) { p.ValidityPeriod = smpp.FormatAbsolute(t0.Add(time.Hour)) }, smpp.StatusOK},
		{"validity in the past", func(p *smpp.PDU) { p.ValidityPeriod = smpp.FormatAbsolute(t0.Add(-time.Hour)) }, smpp.StatusInvalidExpiry},
		{"validity not a time", func(p *smpp.PDU) { p.ValidityPeriod = "ab0000000500000R" }, smpp.StatusInvalidExpiry},
		{"validity bad month", func(p *smpp.PDU) { p.ValidityPeriod = "261301120000000+" }, smpp.StatusInvalidExpiry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := otaSubmit(phone, slicesClone(otaUD))
			p.RegisteredDelivery = 0
			tt.mod(p)
			r := c.call(p)
			if r.ID != smpp.SubmitSMResp || r.Status != tt.want {
				t.Fatalf("got %v status %v, want submit_sm_resp %v", r.ID, r.Status, tt.want)
			}
			if (r.MessageID != "") != (tt.want == smpp.StatusOK) {
				t.Errorf("message_id %q with status %v", r.MessageID, r.Status)
			}
		})
	}
}

func TestSubmitRefusals(t *testing.T) {
	t.Parallel()
	t.Run("receiver bind", func(t *testing.T) {
		e := newEnv(t, nil)
		c := bindESME(t, e.addr, smpp.BindReceiver, sys1, pass1)
		if r := c.call(otaSubmit(phone, otaUD)); r.Status != smpp.StatusInvalidBindStatus {
			t.Fatalf("submit_sm on a receiver: %v, want ESME_RINVBNDSTS", r.Status)
		}
	})
	t.Run("queue full", func(t *testing.T) {
		e := newEnv(t, func(c *Config) {
			c.MaxQueued = 1
			c.Faults.SwitchedOff = true
		})
		c := bindESME(t, e.addr, smpp.BindTransmitter, sys1, pass1)
		c.submit(otaSubmit(phone, otaUD))
		if r := c.call(otaSubmit(phone, otaUD)); r.Status != smpp.StatusMessageQueueFull {
			t.Fatalf("second submit_sm: %v, want ESME_RMSGQFUL", r.Status)
		}
		if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, []byte("x"))); err == nil {
			// The phone is switched off by the default faults.
			t.Fatal("SubmitMO from a switched-off phone succeeded")
		}
	})
	t.Run("throttle", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.ThrottlePerSecond = 2 })
		c := bindESME(t, e.addr, smpp.BindTransmitter, sys1, pass1)
		c.submit(otaSubmit(phone, otaUD))
		c.submit(otaSubmit(phone, otaUD))
		if r := c.call(otaSubmit(phone, otaUD)); r.Status != smpp.StatusThrottled {
			t.Fatalf("third submit_sm in one second: %v, want ESME_RTHROTTLED", r.Status)
		}
		e.clock.Advance(time.Second)
		c.submit(otaSubmit(phone, otaUD))
		if st := e.s.Stats(); st.Rejected != 1 || st.Submitted != 3 {
			t.Errorf("stats: submitted %d rejected %d, want 3 and 1", st.Submitted, st.Rejected)
		}
	})
}

func TestCloseUnbindsESMEs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if p := c.next(); p.ID != smpp.Unbind {
		t.Fatalf("got %v, want unbind", p.ID)
	}
	<-c.done
	if err := e.s.SubmitMO(t.Context(), phone, moTPDU(t, "16000", nil, []byte("x"))); !errors.Is(err, ErrClosed) {
		t.Errorf("SubmitMO after Close = %v, want ErrClosed", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"duplicate account", Config{Accounts: []Account{{SystemID: "a"}, {SystemID: "a"}}}},
		{"shared address", Config{Accounts: []Account{{SystemID: "a", Addresses: []string{"1"}}, {SystemID: "b", Addresses: []string{"+1"}}}}},
		{"long system_id", Config{Accounts: []Account{{SystemID: strings.Repeat("x", 16)}}}},
		{"long password", Config{Accounts: []Account{{SystemID: "a", Password: "123456789"}}}},
		{"retry range", Config{RetryMin: time.Minute, RetryMax: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := New(tt.cfg, newFakeRadio(), nil, nil); err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
		})
	}
	if _, err := New(Config{}, nil, nil, nil); err == nil {
		t.Error("New without a radio succeeded")
	}
}
