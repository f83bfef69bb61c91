package sms

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestEncodeDecodeGSM7(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // hex of unpacked septets
	}{
		{"ascii", "Hello", "48656c6c6f"},
		{"empty", "", ""},
		{"specials", "@£$¥èéùìòÇ\nØø\rÅå", "000102030405060708090a0b0c0d0e0f"},
		{"greek", "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ", "101112131415161718191a1c1d1e1f"},
		{"currency", " ¤¡§¿", "2024405f60"},
		{"umlauts", "ÄÖÑÜäöñüà", "5b5c5d5e7b7c7d7e7f"},
		{"extension", "^{}\\[~]|€\f", "1b141b281b291b2f1b3c1b3d1b3e1b401b651b0a"},
		{"mixed", "5€", "351b65"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeGSM7(tt.text)
			if err != nil {
				t.Fatalf("EncodeGSM7(%q) error: %v", tt.text, err)
			}
			if want := mustHex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("EncodeGSM7(%q) = %x, want %x", tt.text, got, want)
			}
			back, err := DecodeGSM7(got)
			if err != nil || back != tt.text {
				t.Errorf("DecodeGSM7(%x) = %q, %v, want %q", got, back, err, tt.text)
			}
			if n, ok := GSM7Len(tt.text); !ok || n != len(got) {
				t.Errorf("GSM7Len(%q) = %d, %v, want %d, true", tt.text, n, ok, len(got))
			}
		})
	}
}

func TestEncodeGSM7Errors(t *testing.T) {
	for _, s := range []string{"Привет", "a\x00", "a\x1b", "`", "ç", "a\xff"} {
		if b, err := EncodeGSM7(s); err == nil {
			t.Errorf("EncodeGSM7(%q) = %x, want error", s, b)
		} else if !strings.HasPrefix(err.Error(), "sms: ") {
			t.Errorf("EncodeGSM7(%q) error %q lacks sms: prefix", s, err)
		}
		if _, ok := GSM7Len(s); ok {
			t.Errorf("GSM7Len(%q) ok, want not representable", s)
		}
	}
}

func TestDecodeGSM7Special(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"1b41", "A", false},  // unknown escape: basic table
		{"1b1b", " ", false},  // reserved second table: space
		{"411b", "", true},    // lone escape
		{"80", "", true},      // out of range
		{"1b80", "", true},    // out of range after escape
		{"1b0d", "\r", false}, // CR2 falls back to CR
		{"00", "@", false},    // @ is zero
	}
	for _, tt := range tests {
		got, err := DecodeGSM7(mustHex(t, tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("DecodeGSM7(%s) = %q, %v, want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestPack7(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		fill    int
		wantHex string
	}{
		{"hellohello", "hellohello", 0, "e8329bfd4697d9ec37"},
		{"seven", "1234567", 0, "31d98c56b3dd00"},
		{"eight", "12345678", 0, "31d98c56b3dd70"},
		{"fill1", "A", 1, "82"},
		{"fill6", "AB", 6, "405008"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			septets, err := EncodeGSM7(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			got := Pack7(septets, tt.fill)
			want := mustHex(t, tt.wantHex)
			if !bytes.Equal(got, want) {
				t.Errorf("Pack7(%x, %d) = %x, want %x", septets, tt.fill, got, want)
			}
			back, err := Unpack7(got, tt.fill, len(septets))
			if err != nil || !bytes.Equal(back, septets) {
				t.Errorf("Unpack7(%x, %d, %d) = %x, %v, want %x", got, tt.fill, len(septets), back, err, septets)
			}
		})
	}
}

func TestPack7RoundTripAllFills(t *testing.T) {
	septets := make([]byte, 128)
	for i := range septets {
		septets[i] = byte(127 - i)
	}
	for fill := 0; fill <= 6; fill++ {
		for n := 0; n <= len(septets); n++ {
			p := Pack7(septets[:n], fill)
			if want := (fill + 7*n + 7) / 8; len(p) != want {
				t.Fatalf("len(Pack7(%d septets, %d)) = %d, want %d", n, fill, len(p), want)
			}
			if fill > 0 && len(p) > 0 && p[0]&(1<<fill-1) != 0 {
				t.Fatalf("Pack7 fill bits not zero: %x", p)
			}
			got, err := Unpack7(p, fill, n)
			if err != nil || !bytes.Equal(got, septets[:n]) {
				t.Fatalf("Unpack7(%x, %d, %d) = %x, %v", p, fill, n, got, err)
			}
		}
	}
}

func TestUnpack7Errors(t *testing.T) {
	tests := []struct {
		packed      string
		fill, count int
	}{
		{"e8329bfd4697d9ec", 0, 10},
		{"", 0, 1},
		{"ff", 2, 1},
		{"ff", -1, 0},
		{"ff", 0, -1},
		{"ff", 8, 0},
	}
	for _, tt := range tests {
		if got, err := Unpack7(mustHex(t, tt.packed), tt.fill, tt.count); err == nil {
			t.Errorf("Unpack7(%s, %d, %d) = %x, want error", tt.packed, tt.fill, tt.count, got)
		}
	}
}

func TestUCS2(t *testing.T) {
	tests := []struct {
		text string
		hex  string
	}{
		{"", ""},
		{"Aé", "004100e9"},
		{"Привет", "041f04400438043204350442"},
		{"€", "20ac"},
		{"😀", "d83dde00"},
	}
	for _, tt := range tests {
		got, err := EncodeUCS2(tt.text)
		if err != nil || !bytes.Equal(got, mustHex(t, tt.hex)) {
			t.Errorf("EncodeUCS2(%q) = %x, %v, want %s", tt.text, got, err, tt.hex)
		}
		back, err := DecodeUCS2(got)
		if err != nil || back != tt.text {
			t.Errorf("DecodeUCS2(%x) = %q, %v, want %q", got, back, err, tt.text)
		}
	}
	if _, err := EncodeUCS2("a\xff"); err == nil {
		t.Error("EncodeUCS2(invalid UTF-8) succeeded, want error")
	}
	for _, h := range []string{"00", "d83d", "de00", "d83d0041", "0041dc00"} {
		if s, err := DecodeUCS2(mustHex(t, h)); err == nil {
			t.Errorf("DecodeUCS2(%s) = %q, want error", h, s)
		}
	}
}
