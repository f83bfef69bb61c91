package ota

import (
	"testing"
)

// benchCommand is a one-SMS command: 90 octets of data, AES-128, SPI 16 39,
// 8-byte CC, as the platform sends to the VMAC applet.
func benchCommand() (*Command, Keys) {
	return &Command{
			SPI: SPI{Integrity: CC, Ciphered: true, Counter: CounterHigher, PoR: PoRAlways, PoRIntegrity: CC, PoRCiphered: true, PoRSubmit: true},
			KIc: 0x12, KID: 0x12, TAR: TAR{0xb0, 0, 0x10}, Counter: 1, Data: make([]byte, 90),
		}, Keys{
			KIc: []byte("0123456789abcdef"),
			KID: []byte("fedcba9876543210"),
		}
}

// BenchmarkWrapOpenCommand measures the sender's wrap and the card's
// unwrap of one single-SMS AES command.
func BenchmarkWrapOpenCommand(b *testing.B) {
	c, k := benchCommand()
	b.ReportAllocs()
	for b.Loop() {
		pkt, err := WrapCommand(c, k)
		if err != nil {
			b.Fatal(err)
		}
		p, err := ParseCommandPacket(pkt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Open(k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrapOpenResponse measures the card's wrap and the sender's
// unwrap of a single-SMS PoR carrying an ECDSA P-256 signature response.
func BenchmarkWrapOpenResponse(b *testing.B) {
	c, k := benchCommand()
	r := &Response{TAR: c.TAR, Counter: 1, Data: make([]byte, 77)}
	b.ReportAllocs()
	for b.Loop() {
		pkt, err := WrapResponse(r, c, k)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenResponse(pkt, c, k); err != nil {
			b.Fatal(err)
		}
	}
}
