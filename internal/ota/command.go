package ota

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// TAR is the Toolkit Application Reference that addresses an application on
// the card (TS 101 220 Annex D).
type TAR [3]byte

// String returns the TAR in lowercase hex.
func (t TAR) String() string { return hex.EncodeToString(t[:]) }

// ParseTAR decodes six hex digits.
func ParseTAR(s string) (TAR, error) {
	var t TAR
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 3 {
		return t, fmt.Errorf("ota: TAR %q: want 6 hex digits", s)
	}
	copy(t[:], b)
	return t, nil
}

// Keys holds the key material selected by KIc (ciphering) and KID
// (integrity) for one packet. AES keys may be 16, 24 or 32 bytes; the
// length is not coded in the packet. Keys are secrets: never log them.
type Keys struct {
	KIc []byte
	KID []byte
}

// Command is a command packet's content. The fields above the blank line
// are what a sender chooses; Open fills in the rest.
type Command struct {
	SPI     SPI
	KIc     byte
	KID     byte
	TAR     TAR
	Counter uint64
	Data    []byte
	// CCLen is the length of an AES-CMAC checksum, 8 (when zero) or 4.
	// Other algorithms have a fixed length.
	CCLen int

	// PCNTR is the number of padding octets that were removed.
	PCNTR int
	// Check is the RC/CC field as received.
	Check []byte
}

// Header lengths. The command header (CHL) counts SPI, KIc, KID, TAR, CNTR
// and PCNTR; the clear part of a command is CPL, CHL, SPI, KIc, KID and TAR.
const (
	cmdHeaderLen = 13
	cmdClearLen  = 10
	cmdFixedLen  = 16 // clear part + CNTR + PCNTR: the CC input before data
	rspHeaderLen = 10 // RHL without RC/CC: TAR, CNTR, PCNTR, status
)

// CommandUDH and ResponseUDH are the user data headers that carry a single
// secured packet in an SMS (IEI 70 and 71 with no data). The response's
// three octets are part of its checksum input.
var (
	CommandUDH  = []byte{0x02, 0x70, 0x00}
	ResponseUDH = []byte{0x02, 0x71, 0x00}
)

// WrapCommand builds the secured command packet for c, from CPL onward
// (the SMS user data header is not part of it).
func WrapCommand(c *Command, k Keys) ([]byte, error) {
	if c.Counter > MaxCounter {
		return nil, fmt.Errorf("ota: counter %d exceeds 5 octets", c.Counter)
	}
	n := 0
	var integ, ciph Algorithm
	var err error
	switch c.SPI.Integrity {
	case NoIntegrity:
	case DS:
		return nil, fmt.Errorf("ota: digital signature integrity is not supported")
	default:
		if integ, err = IntegrityAlgorithm(c.KID, c.SPI.Integrity); err != nil {
			return nil, err
		}
		if n, err = checkLen(integ, c.CCLen); err != nil {
			return nil, err
		}
	}
	pad := 0
	if c.SPI.Ciphered {
		if ciph, err = CipherAlgorithm(c.KIc); err != nil {
			return nil, err
		}
		bs := blockSize(ciph)
		pad = (bs - (6+n+len(c.Data))%bs) % bs
	}
	cpl := 1 + cmdHeaderLen + n + len(c.Data) + pad
	if cpl > 0xFFFF {
		return nil, fmt.Errorf("ota: command packet of %d octets is too long", cpl)
	}
	spi := c.SPI.Bytes()
	out := make([]byte, 2+cpl)
	binary.BigEndian.PutUint16(out, uint16(cpl))
	out[2] = byte(cmdHeaderLen + n)
	out[3], out[4], out[5], out[6] = spi[0], spi[1], c.KIc, c.KID
	copy(out[7:10], c.TAR[:])
	putCounter(out[10:15], c.Counter)
	out[15] = byte(pad)
	copy(out[cmdFixedLen+n:], c.Data) // padding stays zero
	if n > 0 {
		in := make([]byte, 0, len(out)-n)
		in = append(append(in, out[:cmdFixedLen]...), out[cmdFixedLen+n:]...)
		cc, err := checksum(integ, k.KID, in, n)
		if err != nil {
			return nil, err
		}
		copy(out[cmdFixedLen:], cc)
	}
	if c.SPI.Ciphered {
		if err := crypt(ciph, k.KIc, out[cmdClearLen:], true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CommandPacket is a command packet whose clear header has been parsed and
// whose secured part has not been processed yet. A card reads the TAR and
// key indices from it to choose the keys, then calls Open.
type CommandPacket struct {
	SPI SPI
	KIc byte
	KID byte
	TAR TAR
	// CHL is the command header length, which tells the RC/CC length.
	CHL int

	raw []byte
}

// TrimCommandUDH removes a leading 02 70 00 user data header when what
// follows is a complete packet, so callers can accept both forms.
func TrimCommandUDH(b []byte) []byte { return trimUDH(b, CommandUDH) }

// TrimResponseUDH removes a leading 02 71 00 user data header when what
// follows is a complete packet.
func TrimResponseUDH(b []byte) []byte { return trimUDH(b, ResponseUDH) }

func trimUDH(b, udh []byte) []byte {
	if len(b) >= 5 && bytes.Equal(b[:3], udh) && int(binary.BigEndian.Uint16(b[3:5])) == len(b)-5 {
		return b[3:]
	}
	return b
}

// ParseCommandPacket checks the structure of a command packet (from CPL
// onward) and decodes its clear header. Errors carry StatusSecurityError
// so a card can answer them.
func ParseCommandPacket(b []byte) (*CommandPacket, error) {
	if len(b) < cmdFixedLen {
		return nil, errorf(StatusSecurityError, "command packet of %d octets is shorter than its header", len(b))
	}
	if cpl := int(binary.BigEndian.Uint16(b)); cpl != len(b)-2 {
		return nil, errorf(StatusSecurityError, "CPL %d does not match the %d octets that follow it", cpl, len(b)-2)
	}
	chl := int(b[2])
	if chl < cmdHeaderLen || 1+chl > len(b)-2 {
		return nil, errorf(StatusSecurityError, "CHL %d is out of range for a packet of %d octets", chl, len(b))
	}
	spi, err := ParseSPI(b[3], b[4])
	if err != nil {
		return nil, wrapErr(StatusSecurityError, err)
	}
	p := &CommandPacket{SPI: spi, KIc: b[5], KID: b[6], CHL: chl, raw: b}
	copy(p.TAR[:], b[7:10])
	return p, nil
}

// Open deciphers the packet and verifies its RC/CC. When only the checksum
// fails, it returns the decoded command together with an *Error carrying
// StatusIntegrityFailed, so tools can show what arrived; a card must not act
// on it. The counter is not checked here (see CheckCounter).
func (p *CommandPacket) Open(k Keys) (*Command, error) {
	n := p.CHL - cmdHeaderLen
	var integ Algorithm
	var err error
	switch p.SPI.Integrity {
	case NoIntegrity:
		if n != 0 {
			return nil, errorf(StatusSecurityError, "CHL %d announces a %d-octet checksum that the SPI does not ask for", p.CHL, n)
		}
	case DS:
		return nil, errorf(StatusSecurityError, "digital signature integrity is not supported")
	default:
		if integ, err = IntegrityAlgorithm(p.KID, p.SPI.Integrity); err != nil {
			return nil, wrapErr(StatusSecurityError, err)
		}
		if !validCheckLen(integ, n) {
			return nil, errorf(StatusSecurityError, "%v checksum of %d octets", integ, n)
		}
	}
	sec := bytes.Clone(p.raw[cmdClearLen:])
	bs := 0
	if p.SPI.Ciphered {
		ciph, err := CipherAlgorithm(p.KIc)
		if err != nil {
			return nil, wrapErr(StatusSecurityError, err)
		}
		blk, err := newBlock(ciph, k.KIc)
		if err != nil {
			return nil, wrapErr(StatusSecurityError, err)
		}
		bs = blockSize(ciph)
		if len(sec)%bs != 0 {
			return nil, errorf(StatusCipheringError, "ciphered part of %d octets is not a multiple of the %d-octet block", len(sec), bs)
		}
		cryptBlock(blk, ciph == AlgDESECB, sec, false)
	}
	c := &Command{
		SPI: p.SPI, KIc: p.KIc, KID: p.KID, TAR: p.TAR,
		Counter: getCounter(sec[:5]),
		PCNTR:   int(sec[5]),
		Check:   sec[6 : 6+n],
	}
	if integ == AlgAES {
		c.CCLen = n
	}
	data := sec[6+n:]
	switch {
	case !p.SPI.Ciphered && c.PCNTR != 0:
		return nil, errorf(StatusSecurityError, "PCNTR %d in an unciphered packet", c.PCNTR)
	case c.PCNTR > len(data) || (bs > 0 && c.PCNTR >= bs):
		return nil, errorf(StatusCipheringError, "PCNTR %d is not a valid padding length", c.PCNTR)
	}
	c.Data = data[:len(data)-c.PCNTR]
	if n > 0 {
		in := make([]byte, 0, len(p.raw)-n)
		in = append(append(append(in, p.raw[:cmdClearLen]...), sec[:6]...), data...)
		want, err := checksum(integ, k.KID, in, n)
		if err != nil {
			return nil, wrapErr(StatusSecurityError, err)
		}
		if subtle.ConstantTimeCompare(want, c.Check) != 1 {
			return c, errorf(StatusIntegrityFailed, "%s check does not match", p.SPI.Integrity)
		}
	}
	return c, nil
}

func putCounter(b []byte, v uint64) {
	for i := 4; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}

func getCounter(b []byte) uint64 {
	var v uint64
	for _, c := range b[:5] {
		v = v<<8 | uint64(c)
	}
	return v
}
