package ota

import (
	"bytes"
	"encoding/hex"
	"testing"
)

var fuzzKeys = Keys{
	KIc: []byte{0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	KID: []byte{0x20, 0x11, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
}

func fuzzSeeds(f *testing.F, pick func(packetVector) string) {
	for _, v := range append(packetVectors, independentVectors...) {
		if s := pick(v); s != "" {
			b, _ := hex.DecodeString(s)
			f.Add(b)
		}
	}
}

// FuzzOpenCommand feeds arbitrary bytes to the card-side parser. It must
// never panic, must report every failure as an *Error with a PoR status,
// and a packet it accepts without ciphering must re-wrap to the same bytes.
func FuzzOpenCommand(f *testing.F) {
	fuzzSeeds(f, func(v packetVector) string { return v.cmd })
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseCommandPacket(TrimCommandUDH(b))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("ParseCommandPacket error %T, want *Error", err)
			}
			return
		}
		for _, k := range []Keys{fuzzKeys, {KIc: make([]byte, 24), KID: make([]byte, 24)}, {KIc: make([]byte, 8), KID: make([]byte, 8)}} {
			c, err := p.Open(k)
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("Open error %T, want *Error", err)
				}
				continue
			}
			if c.SPI.Ciphered {
				continue // padding octets need not be zero on receipt
			}
			re, err := WrapCommand(c, k)
			if err != nil {
				t.Fatalf("WrapCommand of an accepted packet: %v", err)
			}
			if !bytes.Equal(re, TrimCommandUDH(b)) {
				t.Fatalf("WrapCommand(Open(%x)) = %x", b, re)
			}
		}
	})
}

// FuzzOpenResponse feeds arbitrary bytes to the sender-side PoR decoder
// under several SPIs.
func FuzzOpenResponse(f *testing.F) {
	fuzzSeeds(f, func(v packetVector) string { return v.rsp })
	f.Add([]byte{0x02, 0x71, 0x00, 0x00, 0x0b, 0x0a, 0xb0, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0x06})
	spis := []SPI{
		{PoR: PoRAlways},
		{PoR: PoRAlways, PoRIntegrity: CC},
		{PoR: PoRAlways, PoRIntegrity: CC, PoRCiphered: true},
		{PoR: PoRAlways, PoRIntegrity: RC, PoRCiphered: true},
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for i, spi := range spis {
			kid := byte(0x22)
			if spi.PoRIntegrity == RC {
				kid = 0x05
			}
			cmd := &Command{SPI: spi, KIc: 0x22, KID: kid}
			r, err := OpenResponse(b, cmd, fuzzKeys)
			if err != nil || !r.Secured || spi.PoRCiphered {
				continue
			}
			re, err := WrapResponse(r, &Command{SPI: spi, KIc: 0x22, KID: kid, CCLen: len(r.Check)}, fuzzKeys)
			if err != nil {
				t.Fatalf("spi %d: WrapResponse of an accepted packet: %v", i, err)
			}
			if !bytes.Equal(re, TrimResponseUDH(b)) {
				t.Fatalf("spi %d: WrapResponse(OpenResponse(%x)) = %x", i, b, re)
			}
		}
	})
}
