package ota

import (
	"encoding/binary"
	"fmt"
)

// CommandHeader is what can be read of a command packet without its keys:
// the clear header and, when the packet is not ciphered, the counter and
// padding count. It is for monitoring tools, which see packets on the wire
// but must never hold the keys to open them.
type CommandHeader struct {
	// CPL is the command packet length: the octets that follow CPL.
	CPL int
	// CHL is the command header length, SPI through RC/CC/DS.
	CHL int
	// SPIBytes are the SPI octets as sent; SPI is their meaning.
	SPIBytes [2]byte
	SPI      SPI
	KIc      byte
	KID      byte
	TAR      TAR
	// CheckLen is the length of the RC, CC or DS that CHL announces.
	CheckLen int
	// SecuredLen is the length of the part from CNTR to the end of the
	// packet according to CPL; it is ciphered when SPI.Ciphered.
	SecuredLen int
	// Clear reports that CNTR and PCNTR travel in clear (the SPI asks for
	// no ciphering) and were in the octets given, so that Counter and
	// PCNTR are set.
	Clear   bool
	Counter uint64
	PCNTR   int
}

// ParseCommandHeader decodes the clear part of a command packet given from
// CPL onward. b may be a prefix of the packet, such as the share of it in
// the first message of a concatenated series: only the ten octets CPL
// through TAR are needed, and sixteen to read the counter of an unciphered
// packet. It never deciphers and never checks a checksum.
func ParseCommandHeader(b []byte) (*CommandHeader, error) {
	if len(b) < cmdClearLen {
		return nil, fmt.Errorf("ota: command header of %d octets is shorter than CPL through TAR", len(b))
	}
	h := &CommandHeader{CPL: int(binary.BigEndian.Uint16(b)), CHL: int(b[2])}
	if h.CHL < cmdHeaderLen {
		return nil, fmt.Errorf("ota: CHL %d is below the %d octets of SPI through PCNTR", h.CHL, cmdHeaderLen)
	}
	if 1+h.CHL > h.CPL {
		return nil, fmt.Errorf("ota: CHL %d does not fit in CPL %d", h.CHL, h.CPL)
	}
	if len(b)-2 > h.CPL {
		return nil, fmt.Errorf("ota: %d octets follow CPL %d", len(b)-2, h.CPL)
	}
	h.SPIBytes = [2]byte{b[3], b[4]}
	spi, err := ParseSPI(b[3], b[4])
	if err != nil {
		return nil, err
	}
	h.SPI, h.KIc, h.KID = spi, b[5], b[6]
	copy(h.TAR[:], b[7:10])
	h.CheckLen = h.CHL - cmdHeaderLen
	h.SecuredLen = h.CPL + 2 - cmdClearLen
	if !spi.Ciphered && len(b) >= cmdFixedLen {
		h.Clear = true
		h.Counter = getCounter(b[10:15])
		h.PCNTR = int(b[15])
	}
	return h, nil
}

// ResponseHeader is what can be read of a response packet without keys.
// A response carries no SPI of its own: whether its counter and status are
// ciphered follows from the SPI of the command it answers.
type ResponseHeader struct {
	// RPL is the response packet length: the octets that follow RPL.
	RPL int
	// RHL is the response header length, TAR through RC/CC/DS.
	RHL int
	TAR TAR
	// CheckLen is the length of the RC, CC or DS that RHL announces.
	CheckLen int
	// SecuredLen is the length of the part from CNTR to the end of the
	// packet according to RPL; it is ciphered unless Clear.
	SecuredLen int
	// Unsecured reports a response without the checksum and ciphering
	// that the command asked for: a card's report of a failure of the
	// command's security, which it cannot secure.
	Unsecured bool
	// Clear reports that CNTR, PCNTR and the status travel in clear and
	// were in the octets given, so that Counter, PCNTR and Status are set.
	Clear   bool
	Counter uint64
	PCNTR   int
	Status  Status
}

// ParseResponseHeader decodes the clear part of a response packet given
// from RPL onward; b may be a prefix of the packet. cmd is the SPI of the
// command the packet answers, when known. Without it only RPL, RHL and TAR
// are decoded, because nothing in the response says whether the rest is
// ciphered. It applies the rule of OpenResponse: a response whose RHL
// announces no checksum to a command that asked for a secured PoR is an
// unsecured report, in clear. It never deciphers and never checks a
// checksum.
func ParseResponseHeader(b []byte, cmd *SPI) (*ResponseHeader, error) {
	if len(b) < 6 {
		return nil, fmt.Errorf("ota: response header of %d octets is shorter than RPL through TAR", len(b))
	}
	h := &ResponseHeader{RPL: int(binary.BigEndian.Uint16(b)), RHL: int(b[2])}
	if h.RHL < rspHeaderLen {
		return nil, fmt.Errorf("ota: RHL %d is below the %d octets of TAR through the status", h.RHL, rspHeaderLen)
	}
	if 1+h.RHL > h.RPL {
		return nil, fmt.Errorf("ota: RHL %d does not fit in RPL %d", h.RHL, h.RPL)
	}
	if len(b)-2 > h.RPL {
		return nil, fmt.Errorf("ota: %d octets follow RPL %d", len(b)-2, h.RPL)
	}
	copy(h.TAR[:], b[3:6])
	h.CheckLen = h.RHL - rspHeaderLen
	h.SecuredLen = h.RPL + 2 - 6
	if cmd == nil {
		return h, nil
	}
	secured := cmd.PoRIntegrity != NoIntegrity || cmd.PoRCiphered
	h.Unsecured = secured && h.RHL == rspHeaderLen
	if (h.Unsecured || !cmd.PoRCiphered) && len(b) >= 13 {
		h.Clear = true
		h.Counter = getCounter(b[6:11])
		h.PCNTR = int(b[11])
		h.Status = Status(b[12])
	}
	return h, nil
}
