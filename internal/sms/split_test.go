package sms

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func TestSplitCommandPacket(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		ref      uint16
		wide     bool
		wantUDHs []string // hex header of each segment
		wantLens []int    // TP-UD length of each segment
	}{
		{"empty", 0, 1, false, []string{"027000"}, []int{3}},
		{"fits", 137, 1, false, []string{"027000"}, []int{140}},
		{"two 8-bit", 138, 0xAB, false, []string{"0770000003ab0201", "050003ab0202"}, []int{140, 12}},
		{"two 16-bit", 138, 0xABCD, true, []string{"0870000804abcd0201", "060804abcd0202"}, []int{140, 14}},
		{"three exact", 132 + 134 + 134, 5, false, []string{"0770000003050301", "0500030503" + "02", "050003050303"}, []int{140, 140, 140}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			packet := seqBytes(tt.size)
			segs, err := SplitCommandPacket(packet, tt.ref, tt.wide)
			if err != nil {
				t.Fatalf("SplitCommandPacket: %v", err)
			}
			if len(segs) != len(tt.wantUDHs) {
				t.Fatalf("SplitCommandPacket(%d octets) gave %d segments, want %d", tt.size, len(segs), len(tt.wantUDHs))
			}
			var joined []byte
			for i, seg := range segs {
				udh := mustHex(t, tt.wantUDHs[i])
				if !bytes.HasPrefix(seg, udh) {
					t.Errorf("segment %d = %x, want header %x", i+1, seg[:min(len(seg), 10)], udh)
				}
				if len(seg) != tt.wantLens[i] {
					t.Errorf("segment %d length %d, want %d", i+1, len(seg), tt.wantLens[i])
				}
				joined = append(joined, seg[len(udh):]...)
			}
			if !bytes.Equal(joined, packet) {
				t.Errorf("joined segment data differs from packet")
			}
		})
	}
}

func TestSplitResponsePacket(t *testing.T) {
	segs, err := SplitResponsePacket(mustHex(t, "000e0ab0001100000000000000016132"), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	want := mustHex(t, "027100000e0ab0001100000000000000016132")
	if len(segs) != 1 || !bytes.Equal(segs[0], want) {
		t.Errorf("SplitResponsePacket = %x, want [%x]", segs, want)
	}
	segs, err = SplitResponsePacket(seqBytes(300), 0x1234, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustHex(t, "0871000804123403"+"01"); !bytes.HasPrefix(segs[0], want) {
		t.Errorf("first segment header %x, want %x", segs[0][:9], want)
	}
}

func TestSplitPacketLimits(t *testing.T) {
	maxLen := 132 + 254*134
	segs, err := SplitCommandPacket(seqBytes(maxLen), 1, false)
	if err != nil || len(segs) != 255 {
		t.Fatalf("SplitCommandPacket(%d octets) = %d segments, %v; want 255", maxLen, len(segs), err)
	}
	if _, err := SplitCommandPacket(seqBytes(maxLen+1), 1, false); err == nil {
		t.Errorf("SplitCommandPacket(%d octets) succeeded, want error", maxLen+1)
	}
	if _, err := SplitCommandPacket(seqBytes(200), 256, false); err == nil {
		t.Error("SplitCommandPacket with ref 256 and 8-bit IE succeeded, want error")
	}
	if _, err := SplitCommandPacket(seqBytes(100), 256, false); err != nil {
		t.Errorf("single segment should not need a reference: %v", err)
	}
}

func TestCountText(t *testing.T) {
	cyr := "ж"
	tests := []struct {
		name     string
		text     string
		segments int
		units    int
		alphabet Alphabet
	}{
		{"empty", "", 1, 0, AlphabetGSM7},
		{"160 gsm", strings.Repeat("a", 160), 1, 160, AlphabetGSM7},
		{"161 gsm", strings.Repeat("a", 161), 2, 161, AlphabetGSM7},
		{"306 gsm", strings.Repeat("a", 306), 2, 306, AlphabetGSM7},
		{"307 gsm", strings.Repeat("a", 307), 3, 307, AlphabetGSM7},
		{"euro counts two", strings.Repeat("a", 158) + "€", 1, 160, AlphabetGSM7},
		{"euro tips over", strings.Repeat("a", 159) + "€", 2, 161, AlphabetGSM7},
		{"escape pair not split", strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152), 3, 306, AlphabetGSM7},
		{"70 cyrillic", strings.Repeat(cyr, 70), 1, 70, AlphabetUCS2},
		{"71 cyrillic", strings.Repeat(cyr, 71), 2, 71, AlphabetUCS2},
		{"134 cyrillic", strings.Repeat(cyr, 134), 2, 134, AlphabetUCS2},
		{"135 cyrillic", strings.Repeat(cyr, 135), 3, 135, AlphabetUCS2},
		{"emoji counts two", strings.Repeat("a", 68) + "😀", 1, 70, AlphabetUCS2},
		{"surrogate pair not split", strings.Repeat("a", 66) + "😀" + strings.Repeat("a", 66), 3, 134, AlphabetUCS2},
		{"one non-gsm char forces ucs2", strings.Repeat("a", 100) + "ç", 2, 101, AlphabetUCS2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seg, units, alpha := CountText(tt.text)
			if seg != tt.segments || units != tt.units || alpha != tt.alphabet {
				t.Errorf("CountText(%d runes) = %d, %d, %v, want %d, %d, %v", len([]rune(tt.text)), seg, units, alpha, tt.segments, tt.units, tt.alphabet)
			}
			parts, dcs, err := SplitText(tt.text, 42)
			if err != nil {
				t.Fatalf("SplitText: %v", err)
			}
			if len(parts) != tt.segments {
				t.Errorf("SplitText gave %d parts, CountText %d", len(parts), tt.segments)
			}
			if want := dcsFor(tt.alphabet); dcs != want {
				t.Errorf("SplitText dcs = %#02x, want %#02x", dcs, want)
			}
			var text string
			for i, p := range parts {
				var s string
				if tt.alphabet == AlphabetGSM7 {
					s, err = DecodeGSM7(p.Data)
				} else {
					s, err = DecodeUCS2(p.Data)
				}
				if err != nil {
					t.Fatalf("part %d does not decode on its own: %v", i+1, err)
				}
				text += s
				if len(parts) > 1 {
					want := []IE{{ID: IEConcat8, Data: []byte{42, byte(len(parts)), byte(i + 1)}}}
					if diff := cmp.Diff(want, p.UDH); diff != "" {
						t.Errorf("part %d UDH (-want +got):\n%s", i+1, diff)
					}
				} else if p.UDH != nil {
					t.Errorf("single part has UDH %v", p.UDH)
				}
				// Each part must fit a message with its header.
				d := Deliver{SCTS: SCTSTime(2024, 1, 1, 0, 0, 0, 0), DCS: DCS(dcs), UDH: p.UDH, Data: p.Data}
				if _, err := d.MarshalBinary(); err != nil {
					t.Errorf("part %d does not fit a message: %v", i+1, err)
				}
			}
			if text != tt.text {
				t.Errorf("joined parts = %q, want %q", text, tt.text)
			}
		})
	}
}

func TestSplitTextErrors(t *testing.T) {
	if _, _, err := SplitText("a\xff", 0); err == nil {
		t.Error("SplitText(invalid UTF-8) succeeded, want error")
	}
	if _, _, err := SplitText(strings.Repeat("a", 161), 300); err == nil {
		t.Error("SplitText with ref 300 succeeded, want error")
	}
	if _, _, err := SplitText(strings.Repeat("a", 153*255+1), 1); err == nil {
		t.Error("SplitText needing 256 parts succeeded, want error")
	}
}
