package sms

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pySimDeliver is the SMS-DELIVER of pySim's test_ota.py with TP-UDL
// corrected from 03 to 25 (37 octets).
const pySimDeliver = "400881214365877ff6227052000000002502700000201506193535b00011ae733256918d050b87c94fbfe12e4dc402f262c41cf67f2f"

func TestDeliverVector(t *testing.T) {
	raw := mustHex(t, pySimDeliver)
	want := &Deliver{
		MoreMessagesToSend: true,
		OA:                 Address{TON: 0, NPI: 1, Digits: "12345678"},
		PID:                0x7F,
		DCS:                0xF6,
		SCTS:               SCTSTime(2022, time.July, 25, 0, 0, 0, 0),
		UDH:                []IE{{ID: IECommandPacket}},
		Data:               mustHex(t, "00201506193535b00011ae733256918d050b87c94fbfe12e4dc402f262c41cf67f2f"),
	}
	got, err := ParseDeliver(raw)
	if err != nil {
		t.Fatalf("ParseDeliver(%x): %v", raw, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseDeliver mismatch (-want +got):\n%s", diff)
	}
	enc, err := want.MarshalBinary()
	if err != nil || !bytes.Equal(enc, raw) {
		t.Errorf("MarshalBinary() = %x, %v, want %x", enc, err, raw)
	}
	if a := want.DCS.Alphabet(); a != Alphabet8Bit {
		t.Errorf("DCS(0xF6).Alphabet() = %v, want 8bit", a)
	}
	if c, ok := want.DCS.Class(); !ok || c != 2 {
		t.Errorf("DCS(0xF6).Class() = %d, %v, want 2, true", c, ok)
	}
}

func TestDeliverRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		d    Deliver
		hex  string
	}{
		{
			name: "gsm7 text with odd address and negative zone",
			d: Deliver{
				OA:   Address{TON: 1, NPI: 1, Digits: "4917012345"},
				SCTS: SCTSTime(2024, time.December, 31, 23, 59, 58, -20),
				Data: mustGSM7(t, "hellohello"),
			},
			hex: "040a9194711032540000" + "4221133295850a" + "0a" + "e8329bfd4697d9ec37",
		},
		{
			name: "alphanumeric sender, udh before gsm7 text",
			d: Deliver{
				StatusReportIndication: true,
				ReplyPath:              true,
				OA:                     Address{TON: TONAlphanumeric, NPI: 0, Digits: "MobileID"},
				SCTS:                   SCTSTime(2026, time.March, 1, 12, 0, 0, 8),
				UDH:                    []IE{{ID: IEConcat8, Data: []byte{7, 2, 1}}},
				Data:                   mustGSM7(t, "A"),
			},
			// UDH 6 octets = 7 septets with 1 fill bit; UDL 7+1.
			hex: "e40ed0cdb738cd2e2789" + "0000" + "62301021000080" + "08" + "050003070201" + "82",
		},
		{
			name: "ucs2 with odd digits filler",
			d: Deliver{
				OA:   Address{TON: 1, NPI: 1, Digits: "12345*#"},
				DCS:  0x08,
				SCTS: SCTSTime(2000, time.January, 1, 0, 0, 0, 79),
				Data: []byte{0x04, 0x1f},
			},
			hex: "0407912143a5fb" + "0008" + "00101000000097" + "02041f",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := tt.d.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if want := mustHex(t, tt.hex); !bytes.Equal(enc, want) {
				t.Errorf("MarshalBinary() = %x, want %x", enc, want)
			}
			got, err := ParseDeliver(enc)
			if err != nil {
				t.Fatalf("ParseDeliver(%x): %v", enc, err)
			}
			if diff := cmp.Diff(&tt.d, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
			if _, off := got.SCTS.Zone(); func() int { _, o := tt.d.SCTS.Zone(); return o }() != off {
				t.Errorf("time zone offset %d lost", off)
			}
		})
	}
}

func mustGSM7(t testing.TB, s string) []byte {
	t.Helper()
	b, err := EncodeGSM7(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubmitRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		s    Submit
		hex  string
	}{
		{
			name: "response packet, relative vp",
			s: Submit{
				MR:   0x2A,
				DA:   Address{TON: 1, NPI: 1, Digits: "12345"},
				PID:  0x7F,
				DCS:  0xF6,
				VP:   RelativeValidity(time.Hour),
				UDH:  []IE{{ID: IEResponsePacket}},
				Data: mustHex(t, "000e0ab0001100000000000000016132"),
			},
			hex: "512a05912143f57ff60b" + "13" + "027100" + "000e0ab0001100000000000000016132",
		},
		{
			name: "no vp, flags",
			s: Submit{
				RejectDuplicates:    true,
				StatusReportRequest: true,
				ReplyPath:           true,
				DA:                  Address{TON: 0, NPI: 0},
				Data:                mustGSM7(t, "€"),
			},
			hex: "a5000080" + "0000" + "02" + "9b32",
		},
		{
			name: "absolute vp raw",
			s: Submit{
				DA: Address{TON: 2, NPI: 9, Digits: "1"},
				VP: ValidityPeriod{Format: VPAbsolute, Raw: [7]byte{0x42, 0x21, 0x13, 0x32, 0x95, 0x85, 0x28}},
			},
			hex: "190001a9f1" + "0000" + "42211332958528" + "00",
		},
		{
			name: "enhanced vp raw",
			s: Submit{
				DA:  Address{TON: 1, NPI: 1, Digits: "99"},
				DCS: 0x04,
				VP:  ValidityPeriod{Format: VPEnhanced, Raw: [7]byte{1, 2, 3, 4, 5, 6, 7}},
			},
			hex: "0900029199" + "0004" + "01020304050607" + "00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := tt.s.MarshalBinary()
			if err != nil {
				t.Fatalf("MarshalBinary: %v", err)
			}
			if want := mustHex(t, tt.hex); !bytes.Equal(enc, want) {
				t.Errorf("MarshalBinary() = %x, want %x", enc, want)
			}
			got, err := ParseSubmit(enc)
			if err != nil {
				t.Fatalf("ParseSubmit(%x): %v", enc, err)
			}
			if diff := cmp.Diff(&tt.s, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRelativeValidity(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want byte
	}{
		{0, 0},
		{5 * time.Minute, 0},
		{6 * time.Minute, 1},
		{12 * time.Hour, 143},
		{12*time.Hour + time.Minute, 144},
		{24 * time.Hour, 167},
		{2 * 24 * time.Hour, 168},
		{30 * 24 * time.Hour, 196},
		{5 * 7 * 24 * time.Hour, 197},
		{63 * 7 * 24 * time.Hour, 255},
		{100 * 7 * 24 * time.Hour, 255},
	}
	for _, tt := range tests {
		if got := RelativeValidity(tt.d); got.Format != VPRelative || got.Relative != tt.want {
			t.Errorf("RelativeValidity(%v) = %+v, want relative %d", tt.d, got, tt.want)
		}
	}
}

func TestDCS(t *testing.T) {
	tests := []struct {
		dcs      DCS
		alphabet Alphabet
		class    int
		hasClass bool
	}{
		{0x00, AlphabetGSM7, 0, false},
		{0x04, Alphabet8Bit, 0, false},
		{0x08, AlphabetUCS2, 0, false},
		{0x0C, AlphabetGSM7, 0, false},
		{0x16, Alphabet8Bit, 2, true},
		{0x12, AlphabetGSM7, 2, true},
		{0x19, AlphabetUCS2, 1, true},
		{0x20, Alphabet8Bit, 0, false},
		{0x52, AlphabetGSM7, 2, true},
		{0x90, AlphabetGSM7, 0, false},
		{0xC8, AlphabetGSM7, 0, false},
		{0xE0, AlphabetUCS2, 0, false},
		{0xF0, AlphabetGSM7, 0, true},
		{0xF2, AlphabetGSM7, 2, true},
		{0xF6, Alphabet8Bit, 2, true},
	}
	for _, tt := range tests {
		if a := tt.dcs.Alphabet(); a != tt.alphabet {
			t.Errorf("DCS(%#02x).Alphabet() = %v, want %v", byte(tt.dcs), a, tt.alphabet)
		}
		if c, ok := tt.dcs.Class(); c != tt.class || ok != tt.hasClass {
			t.Errorf("DCS(%#02x).Class() = %d, %v, want %d, %v", byte(tt.dcs), c, ok, tt.class, tt.hasClass)
		}
	}
}

func TestParseErrors(t *testing.T) {
	deliver := []struct{ name, hex string }{
		{"empty", ""},
		{"submit mti", "01"},
		{"no address", "40"},
		{"address too long", "40158100"},
		{"address truncated", "40088121"},
		{"filler inside digits", "4002812f7ff62270520000000000"},
		{"truncated after address", "400881214365877ff6"},
		{"bad scts bcd", "400881214365877ff62a7052000000000100"},
		{"bad month", "400881214365877ff62231520000000000"},
		{"feb 30", "400881214365877ff62220030000000000"},
		{"udl too short", "400881214365877ff622705200000000020270"},
		{"trailing octets", "400881214365877ff6227052000000000102700000"},
		{"udhl beyond ud", "400881214365877ff6227052000000000409700000"},
		{"ie beyond udhl", "400881214365877ff622705200000000030270" + "01"},
		{"udhi but no ud", "400881214365877ff62270520000000000"},
		{"bad concat", "400881214365877ff622705200000000" + "06" + "050003030203"},
		{"udl over 140", "0400817ff6" + "22705200000000" + "8d"},
		{"septets over 160", "0400810000" + "22705200000000" + "a1"},
		{"udh septets exceed udl", "4400810000" + "22705200000000" + "01" + "00"},
		{"lone escape in alnum", "0402d01b7ff62270520000000000"},
	}
	for _, tt := range deliver {
		t.Run("deliver/"+tt.name, func(t *testing.T) {
			b := mustHex(t, tt.hex)
			d, err := ParseDeliver(b)
			if err == nil {
				t.Fatalf("ParseDeliver(%x) = %+v, want error", b, d)
			}
			if !strings.HasPrefix(err.Error(), "sms: ") {
				t.Errorf("error %q lacks sms: prefix", err)
			}
		})
	}
	submit := []struct{ name, hex string }{
		{"empty", ""},
		{"deliver mti", "0000"},
		{"truncated vp", "11000081000000"},
		{"truncated enhanced vp", "0900008100000102"},
		{"no udl", "010000810000"},
		{"ud short", "01000081000402aa"},
	}
	for _, tt := range submit {
		t.Run("submit/"+tt.name, func(t *testing.T) {
			b := mustHex(t, tt.hex)
			if s, err := ParseSubmit(b); err == nil {
				t.Fatalf("ParseSubmit(%x) = %+v, want error", b, s)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	ok := SCTSTime(2024, 1, 1, 0, 0, 0, 0)
	tests := []struct {
		name string
		d    Deliver
	}{
		{"zero time", Deliver{}},
		{"zone not quarter", Deliver{SCTS: time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("", 600))}},
		{"year 2100", Deliver{SCTS: SCTSTime(2100, 1, 1, 0, 0, 0, 0)}},
		{"bad digit", Deliver{SCTS: ok, OA: Address{Digits: "12x"}}},
		{"long address", Deliver{SCTS: ok, OA: Address{Digits: strings.Repeat("1", 21)}}},
		{"long alnum", Deliver{SCTS: ok, OA: Address{TON: TONAlphanumeric, Digits: "ABCDEFGHIJKL"}}},
		{"ton range", Deliver{SCTS: ok, OA: Address{TON: 8}}},
		{"septet > 127", Deliver{SCTS: ok, Data: []byte{0x80}}},
		{"too many septets", Deliver{SCTS: ok, Data: make([]byte, 161)}},
		{"too many octets", Deliver{SCTS: ok, DCS: 4, Data: make([]byte, 141)}},
		{"udh+septets", Deliver{SCTS: ok, UDH: []IE{{ID: IECommandPacket}}, Data: make([]byte, 157)}},
		{"bad concat ie", Deliver{SCTS: ok, UDH: []IE{{ID: IEConcat8, Data: []byte{1, 2, 3}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.d.MarshalBinary(); err == nil {
				t.Errorf("MarshalBinary() = %x, want error", b)
			}
		})
	}
	if b, err := (&Submit{VP: ValidityPeriod{Format: 4}}).MarshalBinary(); err == nil {
		t.Errorf("Submit with VPF 4: MarshalBinary() = %x, want error", b)
	}
}
