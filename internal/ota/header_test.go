package ota

import (
	"testing"
)

func TestParseCommandHeaderVectors(t *testing.T) {
	byName := map[string]packetVector{}
	for _, v := range packetVectors {
		byName[v.name] = v
	}
	tests := []struct {
		vector       string
		cpl, chl     int
		check, secur int
		clear        bool
		counter      uint64
	}{
		{"AES128-SJA5-CIPHERED-CC", 0x28, 0x15, 8, 32, false, 0},
		{"3DES-SJA5-UNCIPHERED-CC", 0x20, 0x15, 8, 24, false, 0},
		{"SJA2-3DES-CNTR100", 0x28, 0x15, 8, 32, false, 0},
		{"3DES-ciphered-noCC", 0x18, 0x0D, 0, 16, false, 0},
		{"3DES-CC-unciphered", 0x1d, 0x15, 8, 21, true, 0},
		{"no-security", 0x15, 0x0D, 0, 13, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.vector, func(t *testing.T) {
			v := byName[tt.vector]
			b := unhex(t, v.cmd)
			h, err := ParseCommandHeader(b)
			if err != nil {
				t.Fatalf("ParseCommandHeader(%s) = %v", v.cmd, err)
			}
			if h.CPL != tt.cpl || h.CHL != tt.chl || h.CheckLen != tt.check || h.SecuredLen != tt.secur {
				t.Errorf("ParseCommandHeader: CPL %d CHL %d check %d secured %d, want %d %d %d %d",
					h.CPL, h.CHL, h.CheckLen, h.SecuredLen, tt.cpl, tt.chl, tt.check, tt.secur)
			}
			if h.SPI.String() != v.spi || h.KIc != v.kic || h.KID != v.kid || h.TAR.String() != v.tar {
				t.Errorf("ParseCommandHeader: SPI %s KIc %02x KID %02x TAR %s, want %s %02x %02x %s",
					h.SPI, h.KIc, h.KID, h.TAR, v.spi, v.kic, v.kid, v.tar)
			}
			if h.Clear != tt.clear || h.Counter != tt.counter {
				t.Errorf("ParseCommandHeader: clear %v counter %d, want %v %d", h.Clear, h.Counter, tt.clear, tt.counter)
			}
			// The first ten octets are enough for the clear header.
			p, err := ParseCommandHeader(b[:cmdClearLen])
			if err != nil || p.TAR != h.TAR || p.SPI != h.SPI || p.Clear {
				t.Errorf("ParseCommandHeader(prefix) = %+v, %v; want the same header without the counter", p, err)
			}
		})
	}
}

// TestParseCommandHeaderCounter wraps an unciphered command with a counter
// and reads the counter back without keys.
func TestParseCommandHeaderCounter(t *testing.T) {
	tar, _ := ParseTAR("4d4944")
	c := &Command{SPI: mustSPI(t, "1209"), KIc: 0x12, KID: 0x12, TAR: tar, Counter: 0x0102030405, Data: []byte{1, 2, 3}}
	b, err := WrapCommand(c, Keys{KID: make([]byte, 16)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseCommandHeader(b)
	if err != nil {
		t.Fatalf("ParseCommandHeader = %v", err)
	}
	if !h.Clear || h.Counter != c.Counter || h.PCNTR != 0 {
		t.Errorf("ParseCommandHeader: clear %v counter %x PCNTR %d, want true %x 0", h.Clear, h.Counter, h.PCNTR, c.Counter)
	}
}

func TestParseResponseHeaderVectors(t *testing.T) {
	spi := func(s string) *SPI { v := mustSPI(t, s); return &v }
	tests := []struct {
		name      string
		rsp       string
		cmd       *SPI
		rhl       int
		check     int
		clear     bool
		unsecured bool
		counter   uint64
		status    Status
	}{
		{"CC, not ciphered", "027100001612b0001100000000000000b5bcd6353a421fae016132", spi("0609"), 0x12, 8, true, false, 0, StatusOK},
		{"no security", "027100000e0ab0001100000000000000016132", spi("0601"), 0x0A, 0, true, false, 0, StatusOK},
		{"ciphered", "027100002412b00011ebc6b497e2cad7aedf36ace0e3a29b38853f0fe9ccde81913be5702b73abce1f", spi("0619"), 0x12, 8, false, false, 0, 0},
		{"counter 100, ciphered", "027100002c12b0001049fb0315f6c6401b553867f412cefaf9355b38271178edb342a3bc9cc7e670cdc1f45eea6ffcbb39", spi("1619"), 0x12, 8, false, false, 0, 0},
		{"unsecured replay report", "027100000b0ab0001000000000000006", spi("1619"), 0x0A, 0, true, true, 0, StatusSecurityError},
		{"command not known", "027100000b0ab0001000000000000006", nil, 0x0A, 0, false, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := TrimResponseUDH(unhex(t, tt.rsp))
			h, err := ParseResponseHeader(b, tt.cmd)
			if err != nil {
				t.Fatalf("ParseResponseHeader = %v", err)
			}
			if h.RHL != tt.rhl || h.CheckLen != tt.check || h.RPL != len(b)-2 || h.SecuredLen != len(b)-6 {
				t.Errorf("ParseResponseHeader: RPL %d RHL %d check %d secured %d, want %d %d %d %d",
					h.RPL, h.RHL, h.CheckLen, h.SecuredLen, len(b)-2, tt.rhl, tt.check, len(b)-6)
			}
			if h.Clear != tt.clear || h.Unsecured != tt.unsecured || h.Counter != tt.counter || h.Status != tt.status {
				t.Errorf("ParseResponseHeader: clear %v unsecured %v counter %d status %v, want %v %v %d %v",
					h.Clear, h.Unsecured, h.Counter, h.Status, tt.clear, tt.unsecured, tt.counter, tt.status)
			}
			if h.TAR.String() != tt.rsp[12:18] {
				t.Errorf("ParseResponseHeader: TAR %s, want %s", h.TAR, tt.rsp[12:18])
			}
		})
	}
}

func TestParseHeaderErrors(t *testing.T) {
	cmds := []struct{ name, hex string }{
		{"short", "0028150619"},
		{"CHL below 13", "00280c06192222b00011"},
		{"CHL beyond CPL", "00101506192222b00011"},
		{"more than CPL", "000e0d00193535b0000000000000000000"},
		{"reserved SPI bits", "00281526192222b00011"},
	}
	for _, c := range cmds {
		t.Run("command "+c.name, func(t *testing.T) {
			if h, err := ParseCommandHeader(unhex(t, c.hex)); err == nil {
				t.Errorf("ParseCommandHeader(%s) = %+v, want an error", c.hex, h)
			}
		})
	}
	rsps := []struct{ name, hex string }{
		{"short", "00160a"},
		{"RHL below 10", "001609b00011"},
		{"RHL beyond RPL", "000a12b00011"},
		{"more than RPL", "000b0ab000100000000000000600"},
	}
	for _, c := range rsps {
		t.Run("response "+c.name, func(t *testing.T) {
			if h, err := ParseResponseHeader(unhex(t, c.hex), nil); err == nil {
				t.Errorf("ParseResponseHeader(%s) = %+v, want an error", c.hex, h)
			}
		})
	}
}

// FuzzParseCommandHeader holds the key-less command decoder to its
// invariants: no panic, a counter only for unciphered packets, and a
// secured part long enough for CNTR, PCNTR and the checksum.
func FuzzParseCommandHeader(f *testing.F) {
	fuzzSeeds(f, func(v packetVector) string { return v.cmd })
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseCommandHeader(b)
		if err != nil {
			return
		}
		if h.Clear && h.SPI.Ciphered {
			t.Fatalf("counter read from a ciphered packet: %+v", h)
		}
		if h.SecuredLen < h.CheckLen+6 {
			t.Fatalf("secured part %d shorter than CNTR, PCNTR and a %d-octet check", h.SecuredLen, h.CheckLen)
		}
		if p, err := ParseCommandPacket(b); err == nil && (p.TAR != h.TAR || p.SPI != h.SPI || p.CHL != h.CHL) {
			t.Fatalf("ParseCommandPacket %+v and ParseCommandHeader %+v disagree", p, h)
		}
	})
}

// FuzzParseResponseHeader holds the key-less response decoder to its
// invariants and to OpenResponse: what it reads in clear is what
// OpenResponse reads.
func FuzzParseResponseHeader(f *testing.F) {
	fuzzSeeds(f, func(v packetVector) string { return v.rsp })
	f.Add([]byte{0x00, 0x0b, 0x0a, 0xb0, 0x00, 0x10, 0, 0, 0, 0, 0, 0, 0x06})
	cmd := &Command{SPI: SPI{Integrity: CC, Counter: CounterHigher, PoR: PoRAlways, PoRIntegrity: CC, PoRSubmit: true}, KIc: 0x12, KID: 0x12}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = TrimResponseUDH(b)
		if _, err := ParseResponseHeader(b, nil); err != nil {
			return
		}
		h, err := ParseResponseHeader(b, &cmd.SPI)
		if err != nil {
			t.Fatalf("ParseResponseHeader with an SPI = %v, without one it parsed", err)
		}
		if h.SecuredLen < h.CheckLen+7 {
			t.Fatalf("secured part %d shorter than CNTR, PCNTR, status and a %d-octet check", h.SecuredLen, h.CheckLen)
		}
		r, err := OpenResponse(b, cmd, fuzzKeys)
		if r != nil && h.Clear && (r.Counter != h.Counter || r.Status != h.Status) {
			t.Fatalf("OpenResponse read counter %d status %v, ParseResponseHeader %d %v", r.Counter, r.Status, h.Counter, h.Status)
		}
		_ = err
	})
}
