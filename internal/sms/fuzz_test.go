package sms

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func FuzzParseDeliver(f *testing.F) {
	f.Add(mustHex(f, pySimDeliver))
	f.Add(mustHex(f, "040a9194711032540000"+"4221133295850a"+"0a"+"e8329bfd4697d9ec37"))
	f.Add(mustHex(f, "e40ed0cdb738cd2e2789"+"0000"+"62301021000080"+"08"+"050003070201"+"82"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDeliver(b)
		if err != nil {
			return
		}
		enc, err := d.MarshalBinary()
		if err != nil {
			t.Fatalf("ParseDeliver(%x) = %+v, but MarshalBinary fails: %v", b, d, err)
		}
		d2, err := ParseDeliver(enc)
		if err != nil {
			t.Fatalf("ParseDeliver(%x) of re-encoded %x: %v", enc, b, err)
		}
		if diff := cmp.Diff(d, d2); diff != "" {
			t.Fatalf("parse→marshal→parse of %x changed the message (-first +second):\n%s", b, diff)
		}
		// cmp compares times by instant, so the octets check the zone too.
		if enc2, err := d2.MarshalBinary(); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not canonical: %x then %x (%v)", enc, enc2, err)
		}
	})
}

func FuzzParseSubmit(f *testing.F) {
	f.Add(mustHex(f, "512a05912143f57ff60b"+"13"+"027100"+"000e0ab0001100000000000000016132"))
	f.Add(mustHex(f, "a5000080"+"0000"+"02"+"9b32"))
	f.Add(mustHex(f, "190001a9f1"+"0000"+"42211332958528"+"00"))
	f.Add(mustHex(f, "0900029199"+"0004"+"01020304050607"+"00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSubmit(b)
		if err != nil {
			return
		}
		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("ParseSubmit(%x) = %+v, but MarshalBinary fails: %v", b, s, err)
		}
		s2, err := ParseSubmit(enc)
		if err != nil {
			t.Fatalf("ParseSubmit(%x) of re-encoded %x: %v", enc, b, err)
		}
		if diff := cmp.Diff(s, s2); diff != "" {
			t.Fatalf("parse→marshal→parse of %x changed the message (-first +second):\n%s", b, diff)
		}
		if enc2, err := s2.MarshalBinary(); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not canonical: %x then %x (%v)", enc, enc2, err)
		}
	})
}

func FuzzParseUDH(f *testing.F) {
	f.Add(mustHex(f, "0270000020"))
	f.Add(mustHex(f, "07000312030170"+"00"+"aa"))
	f.Add(mustHex(f, "087000080412340201bb"))
	f.Add(mustHex(f, "00cc"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ies, rest, err := ParseUDH(b)
		if err != nil {
			return
		}
		// The header encoding is canonical, so it must come back octet for octet.
		hdr := MarshalUDH(ies)
		if len(ies) == 0 {
			hdr = []byte{0}
		}
		if got := append(hdr, rest...); !bytes.Equal(got, b) {
			t.Fatalf("ParseUDH(%x) = %v, %x; re-encoded as %x", b, ies, rest, got)
		}
	})
}

// FuzzReassemble feeds the input as a stream of segments (a length octet,
// then that many octets) and checks the reassembler's invariants, then
// splits the input as a command packet and checks that shuffled,
// duplicated segments reassemble to it exactly.
func FuzzReassemble(f *testing.F) {
	f.Add(mustHex(f, "05027000aabb"))
	f.Add(mustHex(f, "07050003010202aa07050003010201bb"))
	f.Add(mustHex(f, "0a0870000804123402017007060804123402027171"))
	f.Add(bytes.Repeat([]byte{0x42}, 400))
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxPending = 3
		r := NewReassembler(10*time.Second, maxPending)
		now := t0
		for in := b; len(in) > 0; {
			n := min(int(in[0]), len(in)-1)
			seg := in[1 : 1+n]
			sender := string('A' + rune(in[0]%2))
			in = in[1+n:]
			now = now.Add(time.Second)
			m, err := r.Add(sender, seg, now)
			if err == nil && m != nil && (m.Segments < 1 || len(m.Data) > m.Segments*maxUDOctets) {
				t.Fatalf("implausible message %+v", m)
			}
			if r.Pending() > maxPending {
				t.Fatalf("Pending() = %d exceeds %d", r.Pending(), maxPending)
			}
		}
		r.Expire(now.Add(10 * time.Second))
		if r.Pending() != 0 {
			t.Fatalf("Pending() = %d after expiring everything", r.Pending())
		}

		packet := b[:min(len(b), 3000)]
		seed := uint64(len(b))
		if len(b) >= 8 {
			seed = binary.LittleEndian.Uint64(b)
		}
		segs, err := SplitCommandPacket(packet, uint16(seed), seed&1 == 1)
		if err != nil {
			// Only an 8-bit IE with a reference beyond 255 may fail.
			if seed&1 == 0 && uint16(seed) > 255 {
				return
			}
			t.Fatalf("SplitCommandPacket(%d octets): %v", len(packet), err)
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		order := append(append([][]byte(nil), segs...), segs[rng.IntN(len(segs))])
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		r = NewReassembler(time.Minute, 1)
		var got *Message
		for _, ud := range order {
			m, err := r.Add("S", ud, t0)
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			if m != nil && got == nil {
				got = m
			}
		}
		if got == nil || !bytes.Equal(got.Data, packet) || got.SecurityIEI() != IECommandPacket || got.Segments != len(segs) {
			t.Fatalf("reassembled %+v, want %d octets in %d segments", got, len(packet), len(segs))
		}
	})
}

func FuzzDecodeGSM7(f *testing.F) {
	f.Add(mustHex(f, "68656c6c6f"))
	f.Add(mustHex(f, "1b651b1b1b41000d0a7f"))
	f.Add(mustHex(f, "411b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		masked := make([]byte, len(b))
		for i, c := range b {
			masked[i] = c & 0x7F
		}
		for fill := range 7 {
			if got, err := Unpack7(Pack7(masked, fill), fill, len(masked)); err != nil || !bytes.Equal(got, masked) {
				t.Fatalf("Unpack7(Pack7(%x, %d)) = %x, %v", masked, fill, got, err)
			}
		}
		s, err := DecodeGSM7(b)
		if err != nil {
			return
		}
		enc, err := EncodeGSM7(s)
		if err != nil {
			t.Fatalf("DecodeGSM7(%x) = %q, which does not encode: %v", b, s, err)
		}
		if len(enc) > len(b) {
			t.Fatalf("EncodeGSM7(DecodeGSM7(%x)) = %x grew", b, enc)
		}
		if n, ok := GSM7Len(s); !ok || n != len(enc) {
			t.Fatalf("GSM7Len(%q) = %d, %v, want %d", s, n, ok, len(enc))
		}
		if s2, err := DecodeGSM7(enc); err != nil || s2 != s {
			t.Fatalf("DecodeGSM7(%x) = %q, %v, want %q", enc, s2, err, s)
		}
	})
}
