package ota

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// Response is a response packet's content: the PoR status and the
// additional response data. The last three fields are set by OpenResponse.
type Response struct {
	TAR     TAR
	Counter uint64
	Status  Status
	Data    []byte

	// PCNTR is the number of padding octets that were removed.
	PCNTR int
	// Check is the RC/CC field as received.
	Check []byte
	// Secured is false when the card answered without the integrity the
	// command's SPI asked for, as cards do when they could not
	// authenticate the command.
	Secured bool
}

// WrapResponse builds the response packet to cmd, from RPL onward, secured
// as cmd's SPI asks for the PoR and with the keys that cmd used. An AES
// checksum has the length cmd's had. The checksum covers the 02 71 00 user
// data header, which the caller sends in front of the packet.
func WrapResponse(r *Response, cmd *Command, k Keys) ([]byte, error) {
	if r.Counter > MaxCounter {
		return nil, fmt.Errorf("ota: counter %d exceeds 5 octets", r.Counter)
	}
	spi := cmd.SPI
	n := 0
	var integ, ciph Algorithm
	var err error
	switch spi.PoRIntegrity {
	case NoIntegrity:
	case DS:
		return nil, fmt.Errorf("ota: digital signature integrity is not supported")
	default:
		if integ, err = IntegrityAlgorithm(cmd.KID, spi.PoRIntegrity); err != nil {
			return nil, err
		}
		if n, err = checkLen(integ, cmd.CCLen); err != nil {
			return nil, err
		}
	}
	pad := 0
	if spi.PoRCiphered {
		if ciph, err = CipherAlgorithm(cmd.KIc); err != nil {
			return nil, err
		}
		bs := blockSize(ciph)
		pad = (bs - (7+n+len(r.Data))%bs) % bs
	}
	rpl := 1 + rspHeaderLen + n + len(r.Data) + pad
	if rpl > 0xFFFF {
		return nil, fmt.Errorf("ota: response packet of %d octets is too long", rpl)
	}
	out := make([]byte, 2+rpl)
	binary.BigEndian.PutUint16(out, uint16(rpl))
	out[2] = byte(rspHeaderLen + n)
	copy(out[3:6], r.TAR[:])
	putCounter(out[6:11], r.Counter)
	out[11] = byte(pad)
	out[12] = byte(r.Status)
	copy(out[13+n:], r.Data)
	if n > 0 {
		in := make([]byte, 0, 3+len(out)-n)
		in = append(append(append(in, ResponseUDH...), out[:13]...), out[13+n:]...)
		cc, err := checksum(integ, k.KID, in, n)
		if err != nil {
			return nil, err
		}
		copy(out[13:], cc)
	}
	if spi.PoRCiphered {
		if err := crypt(ciph, k.KIc, out[6:], true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// WrapUnsecuredResponse builds a response packet with neither checksum nor
// ciphering. Cards send it to report a failure of the command's security
// (wrong checksum, old counter, unknown TAR): they cannot secure an answer
// to a sender they could not authenticate.
func WrapUnsecuredResponse(r *Response) []byte {
	out := make([]byte, 13, 13+len(r.Data))
	binary.BigEndian.PutUint16(out, uint16(11+len(r.Data)))
	out[2] = rspHeaderLen
	copy(out[3:6], r.TAR[:])
	putCounter(out[6:11], r.Counter)
	out[12] = byte(r.Status)
	return append(out, r.Data...)
}

// OpenResponse decodes a response packet to cmd (from RPL onward, or with
// the 02 71 00 header in front), deciphering it and verifying its
// checksum with the keys cmd used. A response without the security cmd's
// SPI asks for is accepted only when it reports an error (Secured is then
// false). When only the checksum fails, the decoded response is returned
// with an error. Callers should also check that Counter echoes cmd's.
func OpenResponse(b []byte, cmd *Command, k Keys) (*Response, error) {
	b = TrimResponseUDH(b)
	if len(b) < 13 {
		return nil, fmt.Errorf("ota: response packet of %d octets is shorter than its header", len(b))
	}
	if rpl := int(binary.BigEndian.Uint16(b)); rpl != len(b)-2 {
		return nil, fmt.Errorf("ota: RPL %d does not match the %d octets that follow it", rpl, len(b)-2)
	}
	rhl := int(b[2])
	if rhl < rspHeaderLen || 1+rhl > len(b)-2 {
		return nil, fmt.Errorf("ota: RHL %d is out of range for a packet of %d octets", rhl, len(b))
	}
	r := &Response{Secured: true}
	copy(r.TAR[:], b[3:6])
	spi := cmd.SPI
	n := rhl - rspHeaderLen
	if rhl == rspHeaderLen && (spi.PoRIntegrity != NoIntegrity || spi.PoRCiphered) {
		// The card did not secure its answer: only an error report may
		// come this way, and it is in clear.
		r.Secured = false
		r.Counter = getCounter(b[6:11])
		r.PCNTR = int(b[11])
		r.Status = Status(b[12])
		r.Data = bytes.Clone(b[13:])
		if r.PCNTR != 0 {
			return nil, fmt.Errorf("ota: PCNTR %d in an unsecured response", r.PCNTR)
		}
		if r.Status == StatusOK {
			return r, fmt.Errorf("ota: unsecured response reports success, but the SPI asks for a secured PoR")
		}
		return r, nil
	}
	var integ Algorithm
	var err error
	switch spi.PoRIntegrity {
	case NoIntegrity:
		if n != 0 {
			return nil, fmt.Errorf("ota: RHL %d announces a %d-octet checksum that the SPI does not ask for", rhl, n)
		}
	case DS:
		return nil, fmt.Errorf("ota: digital signature integrity is not supported")
	default:
		if integ, err = IntegrityAlgorithm(cmd.KID, spi.PoRIntegrity); err != nil {
			return nil, err
		}
		if !validCheckLen(integ, n) {
			return nil, fmt.Errorf("ota: %v checksum of %d octets", integ, n)
		}
	}
	sec := bytes.Clone(b[6:])
	bs := 0
	if spi.PoRCiphered {
		ciph, err := CipherAlgorithm(cmd.KIc)
		if err != nil {
			return nil, err
		}
		bs = blockSize(ciph)
		if err := crypt(ciph, k.KIc, sec, false); err != nil {
			return nil, err
		}
	}
	r.Counter = getCounter(sec[:5])
	r.PCNTR = int(sec[5])
	r.Status = Status(sec[6])
	r.Check = sec[7 : 7+n]
	data := sec[7+n:]
	switch {
	case !spi.PoRCiphered && r.PCNTR != 0:
		return nil, fmt.Errorf("ota: PCNTR %d in an unciphered response", r.PCNTR)
	case r.PCNTR > len(data) || (bs > 0 && r.PCNTR >= bs):
		return nil, fmt.Errorf("ota: PCNTR %d is not a valid padding length", r.PCNTR)
	}
	r.Data = data[:len(data)-r.PCNTR]
	if n > 0 {
		in := make([]byte, 0, 3+len(b)-n)
		in = append(append(append(append(in, ResponseUDH...), b[:6]...), sec[:7]...), data...)
		want, err := checksum(integ, k.KID, in, n)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(want, r.Check) != 1 {
			return r, fmt.Errorf("ota: %s check of the response does not match", spi.PoRIntegrity)
		}
	}
	return r, nil
}
