package ops

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"mobileid/internal/ota"
)

// FuzzDecode feeds the decoder what the SMSC's tap could report: any
// user data with any esm_class, PID and DCS, in any direction. It must
// never panic, its result must encode, and the secured data of a packet
// must not show in it.
func FuzzDecode(f *testing.F) {
	for _, ud := range []string{goldenCommand, goldenResponse, goldenLong1, goldenLong2, goldenClear, goldenReport, sja2Command, sja2PoR, sja2Replay} {
		b, _ := hex.DecodeString(ud)
		f.Add(byte(1), byte(0x40), byte(0x7F), byte(0xF6), false, b)
		f.Add(byte(2), byte(0x40), byte(0x7F), byte(0xF6), true, b)
	}
	f.Add(byte(0), byte(0), byte(0), byte(0), false, []byte("Demo Bank: done."))
	f.Add(byte(0), byte(0x40), byte(0), byte(8), false, []byte{5, 0, 3, 1, 2, 1, 0, 'a'})
	f.Add(byte(2), byte(4), byte(0), byte(0), false, []byte("id:1 stat:DELIVRD"))
	spis := []ota.SPI{{Integrity: ota.CC, Ciphered: true, Counter: ota.CounterHigher, PoR: ota.PoRAlways, PoRIntegrity: ota.CC, PoRCiphered: true, PoRSubmit: true},
		{Integrity: ota.CC, Counter: ota.CounterHigher, PoR: ota.PoRAlways, PoRIntegrity: ota.CC}}
	f.Fuzz(func(t *testing.T, dir, esm, pid, dcs byte, clearPoR bool, ud []byte) {
		in := Traffic{Direction: []Direction{MT, MO, Receipt}[int(dir)%3], MSISDN: "37250000001", ESMClass: esm, PID: pid, DCS: dcs, UserData: ud}
		spi := &spis[0]
		if clearPoR {
			spi = &spis[1]
		}
		s := Decode(in, func(string, ota.TAR) *ota.SPI { return spi })
		b, err := s.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		_ = s.Summary()
		if s.Packet == nil || len(ud) < 3 || !bytes.Equal(ud[:3], []byte{0x02, 0x70, 0x00}) && !bytes.Equal(ud[:3], []byte{0x02, 0x71, 0x00}) {
			return
		}
		// What follows the sixteen octets of the longest clear header
		// is secured data, which must not show.
		if rest := ud[3:]; len(rest) >= 16+8 {
			if h := hex.EncodeToString(rest[16:]); strings.Contains(string(b), h) {
				t.Fatalf("decoded segment shows the secured data %s:\n%s", h, b)
			}
		}
	})
}
