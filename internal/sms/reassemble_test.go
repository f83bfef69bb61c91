package sms

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestReassembleShuffledWithDuplicates(t *testing.T) {
	for _, tt := range []struct {
		name  string
		size  int
		wide  bool
		split func([]byte, uint16, bool) ([][]byte, error)
		iei   byte
	}{
		{"command 8-bit", 1000, false, SplitCommandPacket, IECommandPacket},
		{"command 16-bit", 600, true, SplitCommandPacket, IECommandPacket},
		{"response 8-bit", 300, false, SplitResponsePacket, IEResponsePacket},
		{"single", 40, false, SplitCommandPacket, IECommandPacket},
	} {
		t.Run(tt.name, func(t *testing.T) {
			packet := seqBytes(tt.size)
			segs, err := tt.split(packet, 0x77, tt.wide)
			if err != nil {
				t.Fatal(err)
			}
			// All segments shuffled, then a shuffled repeat of all but the
			// last one to arrive injected just before it.
			rng := rand.New(rand.NewPCG(1, 2))
			shuffled := append([][]byte(nil), segs...)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			n := len(shuffled)
			dups := append([][]byte(nil), shuffled[:n-1]...)
			rng.Shuffle(len(dups), func(i, j int) { dups[i], dups[j] = dups[j], dups[i] })
			order := append(append(shuffled[:n-1:n-1], dups...), shuffled[n-1])

			r := NewReassembler(time.Minute, 4)
			var got []*Message
			for i, ud := range order {
				m, err := r.Add("+4912345", ud, t0.Add(time.Duration(i)*time.Second))
				if err != nil {
					t.Fatalf("Add segment %d: %v", i, err)
				}
				if m != nil {
					got = append(got, m)
				}
			}
			if len(got) != 1 {
				t.Fatalf("got %d complete messages, want 1", len(got))
			}
			want := &Message{UDH: []IE{{ID: tt.iei}}, Data: packet, Segments: len(segs)}
			if diff := cmp.Diff(want, got[0]); diff != "" {
				t.Errorf("reassembled message (-want +got):\n%s", diff)
			}
			if got[0].SecurityIEI() != tt.iei {
				t.Errorf("SecurityIEI() = %#02x, want %#02x", got[0].SecurityIEI(), tt.iei)
			}
			if r.Duplicates() != n-1 || r.Pending() != 0 {
				t.Errorf("Duplicates(), Pending() = %d, %d, want %d, 0", r.Duplicates(), r.Pending(), n-1)
			}
		})
	}
}

func TestReassembleInOrderAndKeys(t *testing.T) {
	a, _ := SplitCommandPacket(seqBytes(300), 9, false)
	b, _ := SplitCommandPacket(bytes.Repeat([]byte{0xEE}, 300), 9, false)
	r := NewReassembler(time.Minute, 10)
	// Same reference from two senders must not mix.
	for i := range a {
		ma, err := r.Add("A", a[i], t0)
		if err != nil {
			t.Fatal(err)
		}
		mb, err := r.Add("B", b[i], t0)
		if err != nil {
			t.Fatal(err)
		}
		if last := i == len(a)-1; (ma != nil) != last || (mb != nil) != last {
			t.Fatalf("segment %d: completion %v/%v", i+1, ma != nil, mb != nil)
		}
		if ma != nil && (!bytes.Equal(ma.Data, seqBytes(300)) || !bytes.Equal(mb.Data, bytes.Repeat([]byte{0xEE}, 300))) {
			t.Errorf("messages of different senders mixed")
		}
	}
	if n := r.Pending(); n != 0 {
		t.Errorf("Pending() = %d after completion, want 0", n)
	}
}

func TestReassembleSinglePassThrough(t *testing.T) {
	r := NewReassembler(time.Minute, 1)
	ud := mustHex(t, "027000"+"0020")
	m, err := r.Add("x", ud, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{UDH: []IE{{ID: IECommandPacket}}, Data: []byte{0x00, 0x20}, Segments: 1}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("Add(%x) (-want +got):\n%s", ud, diff)
	}
	// A concatenation IE numbering 1 of 1 is complete at once too.
	m, err = r.Add("x", mustHex(t, "050003010101ff"), t0)
	if err != nil || m == nil || !bytes.Equal(m.Data, []byte{0xFF}) || m.UDH != nil {
		t.Errorf("Add(1 of 1) = %+v, %v", m, err)
	}
	if r.Pending() != 0 {
		t.Errorf("Pending() = %d, want 0", r.Pending())
	}
}

func TestReassembleConcatBeforeSecurityIE(t *testing.T) {
	r := NewReassembler(time.Minute, 1)
	if m, err := r.Add("x", mustHex(t, "050003050202bb"), t0); m != nil || err != nil {
		t.Fatalf("Add(part 2) = %+v, %v", m, err)
	}
	m, err := r.Add("x", mustHex(t, "07000305020170"+"00"+"aa"), t0)
	want := &Message{UDH: []IE{{ID: IECommandPacket}}, Data: []byte{0xAA, 0xBB}, Segments: 2}
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("reassembled (-want +got):\n%s", diff)
	}
}

func TestReassembleErrors(t *testing.T) {
	r := NewReassembler(time.Minute, 1)
	if _, err := r.Add("x", mustHex(t, "050003010202aa"), t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ud string
	}{
		{"conflicting duplicate", "050003010202bb"},
		{"bad udh", "09"},
		{"no udh", ""},
		{"bad concat", "050003010204aa"},
		{"pending limit", "050003020201aa"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := r.Add("x", mustHex(t, tt.ud), t0); err == nil {
				t.Errorf("Add(%s) = %+v, want error", tt.ud, m)
			}
		})
	}
	if _, err := r.Add("x", make([]byte, 141), t0); err == nil {
		t.Error("Add(141 octets) succeeded, want error")
	}
	// The original part survives the conflict.
	m, err := r.Add("x", mustHex(t, "050003010201cc"), t0)
	if err != nil || m == nil || !bytes.Equal(m.Data, []byte{0xCC, 0xAA}) {
		t.Errorf("completing after conflict = %+v, %v, want data ccaa", m, err)
	}
}

func TestReassembleExpire(t *testing.T) {
	r := NewReassembler(30*time.Second, 10)
	mustAdd := func(sender, ud string, at time.Time) *Message {
		t.Helper()
		m, err := r.Add(sender, mustHex(t, ud), at)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	mustAdd("B", "050003070201aa", t0.Add(5*time.Second))
	mustAdd("A", "06080401020301bb", t0)
	if got := r.Expire(t0.Add(29 * time.Second)); len(got) != 0 {
		t.Errorf("Expire before timeout = %v, want none", got)
	}
	got := r.Expire(t0.Add(30 * time.Second))
	want := []Expired{{Sender: "A", Ref: 0x0102, Total: 3, Received: 1, FirstSeen: t0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Expire(+30s) (-want +got):\n%s", diff)
	}
	// A late part of a stale message starts afresh instead of completing it.
	if m := mustAdd("B", "050003070202aa", t0.Add(40*time.Second)); m != nil {
		t.Errorf("late part completed a stale message: %+v", m)
	}
	got = r.Expire(t0.Add(70 * time.Second))
	want = []Expired{{Sender: "B", Ref: 7, Total: 2, Received: 1, FirstSeen: t0.Add(40 * time.Second)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Expire(+70s) (-want +got):\n%s", diff)
	}
	if r.Pending() != 0 {
		t.Errorf("Pending() = %d, want 0", r.Pending())
	}
}

func TestReassembleConcurrent(t *testing.T) {
	r := NewReassembler(time.Minute, 64)
	packet := seqBytes(700)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			segs, _ := SplitCommandPacket(packet, uint16(g), true)
			done := 0
			for _, ud := range segs {
				m, err := r.Add(fmt.Sprint("sender", g%4), ud, t0)
				if err != nil {
					errs <- err
					return
				}
				if m != nil {
					done++
					if !bytes.Equal(m.Data, packet) {
						errs <- fmt.Errorf("goroutine %d: wrong data", g)
					}
				}
			}
			if done != 1 {
				errs <- fmt.Errorf("goroutine %d: %d messages completed, want 1", g, done)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
