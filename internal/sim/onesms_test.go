package sim

import (
	"context"
	"crypto/sha256"
	"strings"
	"testing"

	"mobileid/internal/ota"
	"mobileid/internal/sms"
	"mobileid/internal/vmac"
)

// TestAuthenticationFitsOneSMS checks the design's promise: an ECDSA P-256
// authentication request with a 40-character display text and a short RP
// name, and the card's answer, each travel in a single SMS with AES
// ciphering and an 8-byte CC.
func TestAuthenticationFitsOneSMS(t *testing.T) {
	card, is := newTestCard(t, Options{})
	op := &testOperator{t: t, rec: is, spi: vmacSPI}
	register(t, op, card)
	digest := sha256.Sum256([]byte("login"))
	c := &vmac.Sign{Ref: 0xFFFFFFFF, Key: vmac.KeyAuth, Hash: vmac.HashSHA256, Digest: digest[:],
		DisplayText: strings.Repeat("Log in to your account at Demo Bank now", 2)[:40], VerificationCode: "1462", RPName: "Demo Bank"}
	cmd, pkt := op.wrap(c)
	segs, err := sms.SplitCommandPacket(pkt, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 {
		t.Errorf("SIGN command (%d octets of packet) takes %d SMS, want 1", len(pkt), len(segs))
	}
	rsp, err := card.Process(context.Background(), pkt, instantUser{"1234"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ota.OpenResponse(rsp, cmd, op.keys()); err != nil {
		t.Fatal(err)
	}
	segs, err = sms.SplitResponsePacket(rsp, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 1 {
		t.Errorf("SIGN response (%d octets of packet) takes %d SMS, want 1", len(rsp), len(segs))
	}
}
