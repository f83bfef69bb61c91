package smsc

import (
	"bytes"
	"testing"
	"time"

	"mobileid/internal/smpp"
	"mobileid/internal/sms"
)

// tapLog collects what the tap sees.
type tapLog chan Traffic

func (l tapLog) next(t *testing.T) Traffic {
	t.Helper()
	select {
	case tr := <-l:
		return tr
	case <-time.After(failsafe):
		t.Fatal("the tap saw nothing")
		return Traffic{}
	}
}

func TestTap(t *testing.T) {
	t.Parallel()
	taps := make(tapLog, 64)
	e := newEnv(t, func(c *Config) {
		c.Tap = func(tr Traffic) {
			select {
			case taps <- tr:
			default:
				t.Error("tap log full")
			}
		}
	})
	c := bindESME(t, e.addr, smpp.BindTransceiver, sys1, pass1)

	// An MT and its receipt.
	id := c.submit(otaSubmit("+"+phone, otaUD))
	mt := taps.next(t)
	if mt.Direction != MT || mt.MessageID != id || mt.Status != smpp.StatusOK || mt.MSISDN != phone || mt.Service != "3584000001" ||
		mt.SystemID != sys1 || mt.ESMClass != 0x40 || mt.ProtocolID != 0x7F || mt.DataCoding != 0xF6 || !bytes.Equal(mt.UserData, otaUD) {
		t.Errorf("tapped MT = %+v, want message %s to %s with the submitted user data", mt, id, phone)
	}
	if !mt.Time.Equal(t0) || !mt.Taken.Equal(t0) {
		t.Errorf("tapped MT at %v taken %v, want %v", mt.Time, mt.Taken, t0)
	}
	e.radio.next(t)
	c.next()
	rc := taps.next(t)
	if rc.Direction != Receipt || rc.MessageID != id || rc.State != smpp.StateDelivered || rc.NetworkError != 0 ||
		rc.MSISDN != phone || rc.Status != smpp.StatusOK || rc.ESMClass != smpp.ESMClassReceipt {
		t.Errorf("tapped receipt = %+v, want DELIVRD for %s", rc, id)
	}

	// A refused submit_sm: no message id, the error status.
	bad := otaSubmit("+12ab", otaUD)
	if r := c.call(bad); r.Status != smpp.StatusInvalidDestAddress {
		t.Fatalf("submit_sm to a bad number = %v", r.Status)
	}
	if tr := taps.next(t); tr.Direction != MT || tr.MessageID != "" || tr.Status != smpp.StatusInvalidDestAddress || tr.MSISDN != "+12ab" {
		t.Errorf("tapped refused MT = %+v, want status %v and no message id", tr, smpp.StatusInvalidDestAddress)
	}

	// An MO that the ESME first refuses, then takes: one record per
	// answer, each with its status.
	refuse := true
	c.setAck(func(p *smpp.PDU) (smpp.Status, bool) {
		if refuse {
			refuse = false
			return smpp.StatusSystemError, true
		}
		return smpp.StatusOK, true
	})
	e.clock.Advance(time.Second)
	sent := e.clock.Now()
	if err := e.s.SubmitMO(t.Context(), "+"+phone, moTPDU(t, "16000", []sms.IE{{ID: sms.IEResponsePacket}}, porData)); err != nil {
		t.Fatalf("SubmitMO: %v", err)
	}
	c.next()
	first := taps.next(t)
	wantUD := append([]byte{0x02, 0x71, 0x00}, porData...)
	if first.Direction != MO || first.Status != smpp.StatusSystemError || first.MSISDN != phone || first.Service != "16000" ||
		!bytes.Equal(first.UserData, wantUD) || !first.Taken.Equal(sent) {
		t.Errorf("tapped refused MO = %+v, want status %v from %s", first, smpp.StatusSystemError, phone)
	}
	e.eventually(t, time.Second, "the MO sent again", func() bool {
		select {
		case tr := <-taps:
			if tr.Direction != MO || tr.Status != smpp.StatusOK || !tr.Taken.Equal(sent) || !tr.Time.After(sent) {
				t.Errorf("tapped MO = %+v, want the retry accepted, taken at %v", tr, sent)
			}
			return true
		default:
			return false
		}
	})
}

// BenchmarkTapSubmit measures what a tap that hands each record to a
// buffered channel, as the operations console's does, adds to an accepted
// submit_sm; BenchmarkThroughput gives the cost of the rest.
func BenchmarkTapSubmit(b *testing.B) {
	ch := make(chan Traffic, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range ch {
		}
	}()
	s, err := New(Config{Tap: func(t Traffic) {
		select {
		case ch <- t:
		default:
		}
	}}, newFakeRadio(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := &account{s: s, cfg: Account{SystemID: "bench"}}
	p := otaSubmit(phone, otaUD)
	m := &mtMessage{id: "1a"}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s.tapSubmit(a, p, m, smpp.StatusOK, now)
	}
	close(ch)
	<-done
}
