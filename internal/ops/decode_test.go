package ops

import (
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/ota"
	"mobileid/internal/sms"
)

// Test keys of the golden packets below. They are made up for these tests
// and chosen so that a leak would be easy to spot: the console must never
// show them, nor the data they protect.
var (
	testKIc   = []byte("OTA-KIc-testkey1")
	testKID   = []byte("OTA-KID-testkey2")
	testData  = []byte("SIGN: Demo Bank wants you to log in")
	testReply = []byte("signature-bytes-here")
)

// Golden user data, each as an ESME or a phone sends it: the user data
// header, then the secured packet. The first group is the platform's own
// packets (SPI 16 39, AES key version 1, TAR 4d4944), made with
// ota.WrapCommand and ota.WrapResponse and the keys above (see
// TestGoldenPacketsAreReal); the second a real card's, from the project's
// OTA reference notes (sysmoISIM-SJA2 through pySim, 3DES).
const (
	goldenCommand  = "027000004815163912124d494481054e2ad7fa09d40e92d4f7a37babf08935345fa26020b60dd7413e352dea1e27b8917b11419ff20b7173ac5d4a970ca44a7f5cdf338f7f0edbdd09994fcb86"
	goldenResponse = "0271000034124d49445eabd6ca610146e45fff58d50e6f6015aca33be55afb799cf493bc224dc23ac260c52c7639925dff81d9cc08326ee0e4"
	goldenLong1    = "077000000307020100e815163912124d49449284c101e9ce1b3c1d76a6827b36454cfbbd5312a3ef2d95bd1a8e2e1706adc4a3c48f7c40aeb92c41a8e6bd10a2edac07b2c9c8d203a8e08da68dcc300aaf74f5d4ba4b6261483f7276ee6dfb4d43ce9f01e9ac30bd53d11679033597b629f34232a359636a5fd9f7550c72d328b011c801a93e0c88e466e4dc"
	goldenLong2    = "050003070202d11362ac00456629e133af35360f41f18feaf013d709a64b6dbbc9b404289d93abbd423362d8e00f1093b40b67a5416e35cc53882a2e6ac9c27941e87b2d0290137beba122e3836f1723137fd71ba778dfa7e9da5ec0f4e193018b596073b5d3afb233e04db3"
	// goldenClear is SPI 12 09: CC, counter must be higher, not ciphered.
	goldenClear = "027000003915120912124d4944010203040500e638e5d630c56b3c5349474e3a2044656d6f2042616e6b2077616e747320796f7520746f206c6f6720696e"
	// goldenReport is a card's unsecured PoR: CNTR low.
	goldenReport = "027100000b0a4d494400000000040002"

	sja2Command = "02700000281506191515b00010da1d6cbbd0d11ce4330d844c7408340943e843f67a6d7b0674730881605fd62d"
	sja2PoR     = "027100002c12b000107ddf58d1780f771638b3975759f4296cf5c31efc87a16a1b61921426baa16da1b5ba1a9951d59a39"
	sja2Replay  = "027100000b0ab0001000000000000006"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func mustSPI(t testing.TB, s string) ota.SPI {
	t.Helper()
	b := unhex(t, s)
	spi, err := ota.ParseSPI(b[0], b[1])
	if err != nil {
		t.Fatal(err)
	}
	return spi
}

// TestGoldenPacketsAreReal makes the platform's golden packets again from
// the test keys.
func TestGoldenPacketsAreReal(t *testing.T) {
	keys := ota.Keys{KIc: testKIc, KID: testKID}
	tar := ota.TAR{0x4d, 0x49, 0x44}
	wrap := func(spi string, counter uint64, data []byte, ref uint16) []string {
		c := &ota.Command{SPI: mustSPI(t, spi), KIc: 0x12, KID: 0x12, TAR: tar, Counter: counter, Data: data}
		p, err := ota.WrapCommand(c, keys)
		if err != nil {
			t.Fatal(err)
		}
		segs, err := sms.SplitCommandPacket(p, ref, false)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range segs {
			out = append(out, hex.EncodeToString(s))
		}
		return out
	}
	long := make([]byte, 200)
	for i := range long {
		long[i] = byte('A' + i%26)
	}
	cmd := &ota.Command{SPI: mustSPI(t, "1639"), KIc: 0x12, KID: 0x12, TAR: tar, Counter: 5}
	rsp, err := ota.WrapResponse(&ota.Response{TAR: tar, Counter: 5, Data: testReply}, cmd, keys)
	if err != nil {
		t.Fatal(err)
	}
	report := ota.WrapUnsecuredResponse(&ota.Response{TAR: tar, Counter: 4, Status: ota.StatusCounterLow})
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"command", wrap("1639", 5, testData, 0), []string{goldenCommand}},
		{"concatenated command", wrap("1639", 6, long, 7), []string{goldenLong1, goldenLong2}},
		{"unciphered command", wrap("1209", 0x0102030405, testData, 0), []string{goldenClear}},
		{"response", []string{"027100" + hex.EncodeToString(rsp)}, []string{goldenResponse}},
		{"unsecured report", []string{"027100" + hex.EncodeToString(report)}, []string{goldenReport}},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func u64(v uint64) *uint64 { return &v }
func intp(v int) *int      { return &v }

func TestDecode(t *testing.T) {
	spi1639, spi0619, spi1619 := mustSPI(t, "1639"), mustSPI(t, "0619"), mustSPI(t, "1619")
	platformSPI := func(string, ota.TAR) *ota.SPI { return &spi1639 }
	aesKey := &KeyRef{Value: 0x12, Algorithm: "AES-CBC", KeyVersion: 1}
	cmacKey := &KeyRef{Value: 0x12, Algorithm: "AES-CMAC", KeyVersion: 1}
	words1639 := []string{"cryptographic checksum (CC)", "ciphered", "counter must be higher", "PoR required", "PoR with CC", "PoR ciphered", "PoR by SMS-SUBMIT"}
	binary := func(dir Direction, ud string) Traffic {
		return Traffic{Direction: dir, MSISDN: "37250000001", ESMClass: 0x40, PID: 0x7F, DCS: 0xF6, UserData: unhex(t, ud)}
	}
	text7, _ := sms.EncodeGSM7("Demo Bank: done. Thank you.")
	ucs2, _ := sms.EncodeUCS2("Pank: tehtud ✓")
	tests := []struct {
		name string
		in   Traffic
		cmd  CommandSPI
		want SMS
	}{
		{
			name: "platform command",
			in:   binary(MT, goldenCommand),
			want: SMS{Kind: KindCommand, DataLength: 74, UDH: []IE{{IEI: 0x70, Name: "command packet identifier"}}, Packet: &Packet{
				Type: "command", Length: 0x48, HeaderLength: 0x15, SPI: "1639", SPIWords: words1639, KIc: aesKey, KID: cmacKey,
				TAR: "4d4944", CheckLength: 8, Protection: ProtectionCiphered, SecuredLength: 64, InSegment: 74,
			}},
		},
		{
			name: "platform response, its command seen",
			in:   binary(MO, goldenResponse),
			cmd:  platformSPI,
			want: SMS{Kind: KindResponse, DataLength: 54, UDH: []IE{{IEI: 0x71, Name: "response packet identifier"}}, Packet: &Packet{
				Type: "response", Length: 0x34, HeaderLength: 0x12, SPI: "1639", SPIFromCommand: true, SPIWords: words1639,
				TAR: "4d4944", CheckLength: 8, Protection: ProtectionCiphered, SecuredLength: 48, InSegment: 54,
			}},
		},
		{
			name: "platform response, its command not seen",
			in:   binary(MO, goldenResponse),
			want: SMS{Kind: KindResponse, DataLength: 54, UDH: []IE{{IEI: 0x71, Name: "response packet identifier"}}, Packet: &Packet{
				Type: "response", Length: 0x34, HeaderLength: 0x12, TAR: "4d4944", CheckLength: 8, Protection: ProtectionUnknown,
				SecuredLength: 48, InSegment: 54, Note: unknownCmdNote,
			}},
		},
		{
			name: "first part of a concatenated command",
			in:   binary(MT, goldenLong1),
			want: SMS{Kind: KindCommand, DataLength: 132, Concat: &Concat{Ref: 7, Total: 2, Seq: 1, Bits: 8},
				UDH: []IE{{IEI: 0x70, Name: "command packet identifier"}, {IEI: 0x00, Name: "concatenation, 8-bit reference", Data: "070201"}},
				Packet: &Packet{Type: "command", Length: 0xe8, HeaderLength: 0x15, SPI: "1639", SPIWords: words1639, KIc: aesKey, KID: cmacKey,
					TAR: "4d4944", CheckLength: 8, Protection: ProtectionCiphered, SecuredLength: 224, InSegment: 132}},
		},
		{
			name: "second part",
			in:   binary(MT, goldenLong2),
			want: SMS{Kind: KindContinuation, DataLength: 102, Concat: &Concat{Ref: 7, Total: 2, Seq: 2, Bits: 8},
				UDH: []IE{{IEI: 0x00, Name: "concatenation, 8-bit reference", Data: "070202"}}},
		},
		{
			name: "unciphered command: counter in clear, data never shown",
			in:   binary(MT, goldenClear),
			want: SMS{Kind: KindCommand, DataLength: 59, UDH: []IE{{IEI: 0x70, Name: "command packet identifier"}}, Packet: &Packet{
				Type: "command", Length: 0x39, HeaderLength: 0x15, SPI: "1209",
				SPIWords: []string{"cryptographic checksum (CC)", "not ciphered", "counter must be higher", "PoR required", "PoR with CC", "PoR not ciphered", "PoR in SMS-DELIVER-REPORT"},
				KIc:      &KeyRef{Value: 0x12, Algorithm: "not used (no ciphering)", KeyVersion: 1}, KID: cmacKey,
				TAR: "4d4944", CheckLength: 8, Protection: ProtectionClear, SecuredLength: 49, InSegment: 59,
				Counter: u64(0x0102030405), PCNTR: intp(0),
			}},
		},
		{
			name: "card's unsecured report",
			in:   binary(MO, goldenReport),
			cmd:  platformSPI,
			want: SMS{Kind: KindResponse, DataLength: 13, UDH: []IE{{IEI: 0x71, Name: "response packet identifier"}}, Packet: &Packet{
				Type: "response", Length: 0x0b, HeaderLength: 0x0a, SPI: "1639", SPIFromCommand: true, SPIWords: words1639,
				TAR: "4d4944", Protection: ProtectionClear, SecuredLength: 7, InSegment: 13, Unsecured: true,
				Counter: u64(4), PCNTR: intp(0), Status: &PoRStatus{Code: 0x02, Name: "CNTR low"},
				Note: "unsecured: the card reports a failure of the command's security, which it cannot answer securely",
			}},
		},
		{
			name: "real card's command (sysmoISIM-SJA2, 3DES)",
			in:   binary(MT, sja2Command),
			want: SMS{Kind: KindCommand, DataLength: 42, UDH: []IE{{IEI: 0x70, Name: "command packet identifier"}}, Packet: &Packet{
				Type: "command", Length: 0x28, HeaderLength: 0x15, SPI: "0619",
				SPIWords: []string{"cryptographic checksum (CC)", "ciphered", "no counter", "PoR required", "PoR with CC", "PoR ciphered", "PoR in SMS-DELIVER-REPORT"},
				KIc:      &KeyRef{Value: 0x15, Algorithm: "3DES-2KEY", KeyVersion: 1}, KID: &KeyRef{Value: 0x15, Algorithm: "3DES-2KEY", KeyVersion: 1},
				TAR: "b00010", CheckLength: 8, Protection: ProtectionCiphered, SecuredLength: 32, InSegment: 42,
			}},
		},
		{
			name: "real card's PoR",
			in:   binary(MO, sja2PoR),
			cmd:  func(string, ota.TAR) *ota.SPI { return &spi0619 },
			want: SMS{Kind: KindResponse, DataLength: 46, UDH: []IE{{IEI: 0x71, Name: "response packet identifier"}}, Packet: &Packet{
				Type: "response", Length: 0x2c, HeaderLength: 0x12, SPI: "0619", SPIFromCommand: true,
				SPIWords: []string{"cryptographic checksum (CC)", "ciphered", "no counter", "PoR required", "PoR with CC", "PoR ciphered", "PoR in SMS-DELIVER-REPORT"},
				TAR:      "b00010", CheckLength: 8, Protection: ProtectionCiphered, SecuredLength: 40, InSegment: 46,
			}},
		},
		{
			name: "real card's answer to a replay",
			in:   binary(MO, sja2Replay),
			cmd:  func(string, ota.TAR) *ota.SPI { return &spi1619 },
			want: SMS{Kind: KindResponse, DataLength: 13, UDH: []IE{{IEI: 0x71, Name: "response packet identifier"}}, Packet: &Packet{
				Type: "response", Length: 0x0b, HeaderLength: 0x0a, SPI: "1619", SPIFromCommand: true,
				SPIWords: []string{"cryptographic checksum (CC)", "ciphered", "counter must be higher", "PoR required", "PoR with CC", "PoR ciphered", "PoR in SMS-DELIVER-REPORT"},
				TAR:      "b00010", Protection: ProtectionClear, SecuredLength: 7, InSegment: 13, Unsecured: true,
				Counter: u64(0), PCNTR: intp(0), Status: &PoRStatus{Code: 0x06, Name: "unidentified security error"},
				Note: "unsecured: the card reports a failure of the command's security, which it cannot answer securely",
			}},
		},
		{
			name: "GSM 7-bit text",
			in:   Traffic{Direction: MT, MSISDN: "37250000001", UserData: text7},
			want: SMS{Kind: KindText, DataLength: len(text7), Text: "Demo Bank: done. Thank you."},
		},
		{
			name: "UCS-2 text",
			in:   Traffic{Direction: MT, MSISDN: "37250000001", DCS: 0x08, UserData: ucs2},
			want: SMS{Kind: KindText, DataLength: len(ucs2), Text: "Pank: tehtud ✓"},
		},
		{
			name: "receipt",
			in: Traffic{Direction: Receipt, MSISDN: "37250000001", MessageID: "1f", ESMClass: 0x04, ReceiptState: "EXPIRED", NetworkError: 0x1b,
				UserData: []byte("id:1f sub:001 dlvrd:000 submit date:2603011200 done date:2603011201 stat:EXPIRED err:027 text:\x01")},
			want: SMS{Kind: KindReceipt, MessageID: "1f", ReceiptState: "EXPIRED", NetworkError: 0x1b,
				ReceiptText: "id:1f sub:001 dlvrd:000 submit date:2603011200 done date:2603011201 stat:EXPIRED err:027 text:."},
		},
		{
			name: "header longer than the user data",
			in:   binary(MO, "0a7100"),
			want: SMS{Kind: KindBinary, DataLength: 3, Problem: "sms: UDHL 10 exceeds user data length 2"},
		},
		{
			name: "reserved SPI bits",
			in:   binary(MT, "02700000281526191515b00010da1d6cbbd0d11ce433"),
			want: SMS{Kind: KindCommand, DataLength: 19, UDH: []IE{{IEI: 0x70, Name: "command packet identifier"}},
				Problem: "ota: SPI 2619: reserved bits set in first octet"},
		},
		{
			name: "truncated response",
			in:   binary(MO, "0271000034"),
			want: SMS{Kind: KindResponse, DataLength: 2, UDH: []IE{{IEI: 0x71, Name: "response packet identifier"}},
				Problem: "ota: response header of 2 octets is shorter than RPL through TAR"},
		},
		{
			name: "binary without a security header",
			in:   Traffic{Direction: MO, MSISDN: "37250000001", PID: 0x7F, DCS: 0xF6, UserData: []byte{1, 2, 3}},
			want: SMS{Kind: KindBinary, DataLength: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decode(tt.in, tt.cmd)
			want := tt.want
			want.Direction, want.MSISDN, want.Length = tt.in.Direction, tt.in.MSISDN, len(tt.in.UserData)
			want.ESMClass, want.PID, want.DCS = Octet(tt.in.ESMClass), Octet(tt.in.PID), Octet(tt.in.DCS)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	spi := mustSPI(t, "1639")
	tests := []struct {
		in   Traffic
		cmd  CommandSPI
		want string
	}{
		{Traffic{Direction: MT, ESMClass: 0x40, PID: 0x7F, DCS: 0xF6, UserData: unhex(t, goldenCommand)}, nil,
			"command packet · SPI 1639 · KIc 12 · KID 12 · TAR 4d4944 · 64 octets ciphered"},
		{Traffic{Direction: MO, ESMClass: 0x40, PID: 0x7F, DCS: 0xF6, UserData: unhex(t, goldenReport)}, func(string, ota.TAR) *ota.SPI { return &spi },
			"response packet · SPI 1639 · TAR 4d4944 · CNTR 4 · status 02 CNTR low · 7 octets clear"},
		{Traffic{Direction: MT, ESMClass: 0x40, PID: 0x7F, DCS: 0xF6, UserData: unhex(t, goldenLong2)}, nil,
			"part 2 of 2 (ref 7) · continuation of a secured packet · 102 octets"},
		{Traffic{Direction: Receipt, ESMClass: 0x04, MessageID: "2a", ReceiptState: "UNDELIV", NetworkError: 1}, nil,
			"receipt for 2a: UNDELIV (GSM error 0x0001)"},
	}
	for _, tt := range tests {
		s := Decode(tt.in, tt.cmd)
		if got := s.Summary(); got != tt.want {
			t.Errorf("Summary() = %q, want %q", got, tt.want)
		}
	}
}

// TestDecodeShowsNoSecrets checks that no decoded field carries the data
// of a secured packet, ciphered or not.
func TestDecodeShowsNoSecrets(t *testing.T) {
	for _, ud := range []string{goldenCommand, goldenClear, goldenResponse, goldenLong1, goldenLong2} {
		s := Decode(Traffic{Direction: MT, ESMClass: 0x40, PID: 0x7F, DCS: 0xF6, UserData: unhex(t, ud)}, nil)
		b, err := s.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range [][]byte{testData, testReply, testKIc, testKID, unhex(t, ud)[len(ud)/2-8:]} {
			for _, form := range []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret))} {
				if strings.Contains(string(b), form) {
					t.Errorf("Decode(%s…) shows %q:\n%s", ud[:16], form, b)
				}
			}
		}
	}
}
