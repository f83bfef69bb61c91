package vmac

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxMessageSize is the largest encoded command or response in bytes. It
// bounds the card's receive buffer; a REGISTER response with two RSA-2048
// keys and an attestation certificate still fits comfortably.
const MaxMessageSize = 4096

// constructed is the BER bit that marks a tag whose value is itself a
// sequence of TLVs.
const constructed = 0x20

// readTLV splits the first TLV off b. It enforces the framing rules shared
// by every level: one-byte tags and minimal definite lengths of at most two
// length bytes. The returned value aliases b.
func readTLV(b []byte) (tag byte, value, rest []byte, err error) {
	if len(b) == 0 {
		return 0, nil, nil, errors.New("vmac: truncated TLV: missing tag")
	}
	tag = b[0]
	switch {
	case tag == 0x00 || tag == 0xFF:
		return 0, nil, nil, fmt.Errorf("vmac: tag %02X is padding, which is not allowed", tag)
	case tag&0x1F == 0x1F:
		return 0, nil, nil, fmt.Errorf("vmac: tag %02X starts a multi-byte tag, which is not allowed", tag)
	}
	if len(b) < 2 {
		return 0, nil, nil, fmt.Errorf("vmac: tag %02X: truncated TLV: missing length", tag)
	}
	var n, hdr int
	switch l := b[1]; {
	case l < 0x80:
		n, hdr = int(l), 2
	case l == 0x80:
		return 0, nil, nil, fmt.Errorf("vmac: tag %02X: indefinite length is not allowed", tag)
	case l == 0x81:
		if len(b) < 3 {
			return 0, nil, nil, fmt.Errorf("vmac: tag %02X: truncated length", tag)
		}
		n, hdr = int(b[2]), 3
		if n < 0x80 {
			return 0, nil, nil, fmt.Errorf("vmac: tag %02X: length 81 %02X is not minimal", tag, n)
		}
	case l == 0x82:
		if len(b) < 4 {
			return 0, nil, nil, fmt.Errorf("vmac: tag %02X: truncated length", tag)
		}
		n, hdr = int(binary.BigEndian.Uint16(b[2:])), 4
		if n < 0x100 {
			return 0, nil, nil, fmt.Errorf("vmac: tag %02X: length 82 %04X is not minimal", tag, n)
		}
	default:
		return 0, nil, nil, fmt.Errorf("vmac: tag %02X: length form %02X is not allowed", tag, l)
	}
	if len(b)-hdr < n {
		return 0, nil, nil, fmt.Errorf("vmac: tag %02X: length %d exceeds the %d bytes left", tag, n, len(b)-hdr)
	}
	return tag, b[hdr : hdr+n], b[hdr+n:], nil
}

// appendTLV appends tag, the minimal length encoding and value to dst.
// Callers keep values below 64 KiB; the MaxMessageSize check on the whole
// message catches anything that slips through.
func appendTLV(dst []byte, tag byte, value []byte) []byte {
	switch n := len(value); {
	case n < 0x80:
		dst = append(dst, tag, byte(n))
	case n < 0x100:
		dst = append(dst, tag, 0x81, byte(n))
	default:
		dst = append(dst, tag, 0x82, byte(n>>8), byte(n))
	}
	return append(dst, value...)
}

// readMessage parses the single top-level TLV of a message and returns its
// tag and value. Anything after that TLV is an error, so that a message has
// exactly one encoding.
func readMessage(b []byte) (tag byte, value []byte, err error) {
	if len(b) > MaxMessageSize {
		return 0, nil, fmt.Errorf("vmac: message is %d bytes, limit is %d", len(b), MaxMessageSize)
	}
	tag, value, rest, err := readTLV(b)
	if err != nil {
		return 0, nil, err
	}
	if len(rest) != 0 {
		return 0, nil, fmt.Errorf("vmac: %d trailing bytes after tag %02X", len(rest), tag)
	}
	if tag&constructed == 0 {
		return 0, nil, fmt.Errorf("vmac: top-level tag %02X is not constructed", tag)
	}
	return tag, value, nil
}

// finishMessage wraps the encoded fields of a message in its top-level tag
// and applies the size cap, so that the encoder never emits what the
// decoder would refuse.
func finishMessage(tag byte, fields []byte) ([]byte, error) {
	out := appendTLV(make([]byte, 0, len(fields)+4), tag, fields)
	if len(out) > MaxMessageSize {
		return nil, fmt.Errorf("vmac: encoded %02X message is %d bytes, limit is %d", tag, len(out), MaxMessageSize)
	}
	return out, nil
}

// field is one child TLV of a constructed tag.
type field struct {
	tag   byte
	value []byte
}

// fields holds the children of one constructed tag after the container
// rules were checked. Lookups are linear; containers have at most ten
// children.
type fields struct {
	parent byte
	list   []field
}

// parseFields splits the value of the constructed tag parent into its
// children and enforces the rules common to all containers: every tag must
// be in allowed, appear at most once and come in ascending order. Ascending
// order makes the encoding canonical and lets the card find TxRef first.
func parseFields(parent byte, value []byte, allowed ...byte) (*fields, error) {
	f := &fields{parent: parent}
	for len(value) > 0 {
		tag, v, rest, err := readTLV(value)
		if err != nil {
			return nil, err
		}
		if !contains(allowed, tag) {
			return nil, fmt.Errorf("vmac: unknown tag %02X in %02X", tag, parent)
		}
		if _, dup := f.get(tag); dup {
			return nil, fmt.Errorf("vmac: duplicate tag %02X in %02X", tag, parent)
		}
		if n := len(f.list); n > 0 && tag < f.list[n-1].tag {
			return nil, fmt.Errorf("vmac: tag %02X after %02X in %02X: fields must be in ascending tag order", tag, f.list[n-1].tag, parent)
		}
		f.list = append(f.list, field{tag, v})
		value = rest
	}
	return f, nil
}

func contains(list []byte, b byte) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

// get returns the value of tag and whether it is present.
func (f *fields) get(tag byte) ([]byte, bool) {
	for _, x := range f.list {
		if x.tag == tag {
			return x.value, true
		}
	}
	return nil, false
}

// has reports whether tag is present.
func (f *fields) has(tag byte) bool {
	_, ok := f.get(tag)
	return ok
}

// need returns the value of a mandatory tag.
func (f *fields) need(tag byte, name string) ([]byte, error) {
	v, ok := f.get(tag)
	if !ok {
		return nil, fmt.Errorf("vmac: %02X lacks mandatory tag %02X (%s)", f.parent, tag, name)
	}
	return v, nil
}

// needFixed returns the value of a mandatory tag whose length is fixed.
func (f *fields) needFixed(tag byte, name string, n int) ([]byte, error) {
	v, err := f.need(tag, name)
	if err != nil {
		return nil, err
	}
	if len(v) != n {
		return nil, fmt.Errorf("vmac: tag %02X %s length %d, want %d", tag, name, len(v), n)
	}
	return v, nil
}

// byteField returns the value of a mandatory one-byte tag.
func (f *fields) byteField(tag byte, name string) (byte, error) {
	v, err := f.needFixed(tag, name, 1)
	if err != nil {
		return 0, err
	}
	return v[0], nil
}

// optByte returns the value of an optional one-byte tag.
func (f *fields) optByte(tag byte, name string) (b byte, ok bool, err error) {
	if !f.has(tag) {
		return 0, false, nil
	}
	b, err = f.byteField(tag, name)
	return b, err == nil, err
}

// onlyHeader rejects any field beyond TxRef, status and the listed extra
// tags. Responses with a status other than OK carry nothing else, so that
// the MSSP never has to decide which of a failed response's fields to trust.
func (f *fields) onlyHeader(st Status, extra ...byte) error {
	for _, x := range f.list {
		if x.tag != tagTxRef && x.tag != tagStatus && !contains(extra, x.tag) {
			return fmt.Errorf("vmac: tag %02X is not allowed in %02X with status %v", x.tag, f.parent, st)
		}
	}
	return nil
}

// txRef decodes the mandatory TxRef field.
func (f *fields) txRef() (uint32, error) {
	v, err := f.needFixed(tagTxRef, "TxRef", 4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(v), nil
}

// appendTxRef appends the TxRef field.
func appendTxRef(dst []byte, ref uint32) []byte {
	return appendTLV(dst, tagTxRef, binary.BigEndian.AppendUint32(nil, ref))
}

// PeekTxRef returns the TxRef of a message that may not parse, so that a
// card can still echo it in a B0 response. It only looks at the top-level
// header and the first field, which the ascending tag order makes the
// TxRef; the declared top-level length may exceed the bytes present, since
// a truncated message is one of the reasons to call PeekTxRef at all.
func PeekTxRef(b []byte) (uint32, bool) {
	if len(b) < 2 {
		return 0, false
	}
	var hdr int
	switch l := b[1]; {
	case l < 0x80:
		hdr = 2
	case l == 0x81:
		hdr = 3
	case l == 0x82:
		hdr = 4
	default:
		return 0, false
	}
	if len(b) < hdr+6 || b[hdr] != tagTxRef || b[hdr+1] != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b[hdr+2:]), true
}
