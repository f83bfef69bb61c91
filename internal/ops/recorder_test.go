package ops

import (
	"context"
	"testing"
	"time"
)

// failsafe bounds every wait for the recorder's goroutine; tests never
// assert on how long something took.
const failsafe = 10 * time.Second

func mtCommand(t testing.TB, msisdn, ud string) Traffic {
	return Traffic{Direction: MT, MSISDN: msisdn, ESMClass: 0x40, PID: 0x7F, DCS: 0xF6, UserData: unhex(t, ud)}
}

func moResponse(t testing.TB, msisdn, ud string) Traffic {
	return Traffic{Direction: MO, MSISDN: msisdn, ESMClass: 0x40, PID: 0x7F, DCS: 0xF6, UserData: unhex(t, ud)}
}

func TestRecorderRing(t *testing.T) {
	r := NewRecorder(3)
	if got := r.Recent(10); len(got) != 0 {
		t.Fatalf("Recent on an empty recorder = %d segments", len(got))
	}
	for i := range 5 {
		r.add(Traffic{Direction: MT, MSISDN: "3725000000" + string(rune('0'+i)), UserData: []byte("x")})
	}
	got := r.Recent(0)
	if len(got) != 3 || got[0].Seq != 5 || got[2].Seq != 3 || got[0].MSISDN != "37250000004" {
		t.Fatalf("Recent(0) = %+v, want segments 5, 4, 3", got)
	}
	if got := r.Recent(2); len(got) != 2 || got[1].Seq != 4 {
		t.Errorf("Recent(2) = %+v, want segments 5, 4", got)
	}
	for _, tt := range []struct {
		seq uint64
		ok  bool
	}{{0, false}, {2, false}, {3, true}, {5, true}, {6, false}} {
		if s, ok := r.Get(tt.seq); ok != tt.ok || (ok && s.Seq != tt.seq) {
			t.Errorf("Get(%d) = %d, %v, want %v", tt.seq, s.Seq, ok, tt.ok)
		}
	}
}

// TestRecorderCommandContext checks that a response is decoded with the
// SPI of the latest command to the same phone and application.
func TestRecorderCommandContext(t *testing.T) {
	r := NewRecorder(10)
	r.add(mtCommand(t, "37250000001", goldenCommand))
	r.add(moResponse(t, "37250000001", goldenReport))
	r.add(moResponse(t, "37250000002", goldenReport))
	got := r.Recent(0)
	if p := got[1].Packet; p == nil || p.Status == nil || p.Status.Name != "CNTR low" || p.SPI != "1639" {
		t.Errorf("response after its command = %+v, want the status decoded with SPI 1639", p)
	}
	if p := got[0].Packet; p == nil || p.Status != nil || p.Protection != ProtectionUnknown {
		t.Errorf("response from another phone = %+v, want its protection unknown", p)
	}
}

func TestRecorderNeverBlocks(t *testing.T) {
	r := NewRecorder(4)
	// Without Run nothing drains the buffer: the fifth record is dropped
	// at once instead of waiting.
	for range 6 {
		r.Record(Traffic{Direction: MT})
	}
	if got := r.Dropped(); got != 2 {
		t.Errorf("Dropped() = %d, want 2", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(failsafe)
	for len(r.Recent(0)) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("Run decoded %d of 4 buffered segments", len(r.Recent(0)))
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// BenchmarkRecord is what the SMSC's tap costs per segment while the
// recorder keeps up.
func BenchmarkRecord(b *testing.B) {
	r := NewRecorder(0)
	go r.Run(b.Context())
	t := mtCommand(b, "37250000001", goldenCommand)
	b.ReportAllocs()
	for b.Loop() {
		r.Record(t)
	}
}

// BenchmarkDecode is the decoding of one secured command segment, done
// off the SMSC's path by Run.
func BenchmarkDecode(b *testing.B) {
	t := mtCommand(b, "37250000001", goldenCommand)
	b.ReportAllocs()
	for b.Loop() {
		Decode(t, nil)
	}
}
