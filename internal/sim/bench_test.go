package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"mobileid/internal/ota"
	"mobileid/internal/vmac"
)

// instantUser approves at once with a fixed PIN, as the benchmark's
// handsets with zero think time do.
type instantUser struct{ pin string }

func (instantUser) Show(string)                                   {}
func (instantUser) Confirm(context.Context, string) (bool, error) { return true, nil }
func (u instantUser) AskPIN(context.Context, string, int, int) (string, bool, error) {
	return u.pin, true, nil
}

// signBenchSetup registers a card and prepares b.N+1 SIGN packets for
// it outside the timed loop: the operator's wrap is not the card's work.
func signBenchSetup(b *testing.B) (*Card, [][]byte, [32]byte) {
	card, is := newTestCard(b, Options{})
	op := &testOperator{rec: is, spi: vmacSPI}
	u := &scriptUser{pins: []string{"1234", "1234", "12345", "12345"}}
	data, _ := vmac.MarshalCommand(&vmac.Register{Ref: 1, AuthAlg: vmac.AlgECDSAP256, SignAlg: vmac.AlgECDSAP256, Challenge: challenge})
	pkt, _ := ota.WrapCommand(&ota.Command{SPI: vmacSPI, KIc: is.Record.KIc, KID: is.Record.KID, TAR: is.Record.TAR, Counter: 1, Data: data}, op.keys())
	if _, err := card.Process(context.Background(), pkt, u); err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("login"))
	data, _ = vmac.MarshalCommand(&vmac.Sign{Ref: 2, Key: vmac.KeyAuth, Hash: vmac.HashSHA256, Digest: digest[:],
		DisplayText: "Log in to Demo Bank", VerificationCode: "1462", RPName: "Demo Bank"})
	pkts := make([][]byte, b.N+1)
	for i := range pkts {
		pkts[i], _ = ota.WrapCommand(&ota.Command{SPI: vmacSPI, KIc: is.Record.KIc, KID: is.Record.KID, TAR: is.Record.TAR, Counter: uint64(i + 2), Data: data}, op.keys())
	}
	return card, pkts, digest
}

// BenchmarkCardSign measures the card's whole SIGN path for an ECDSA
// P-256 authentication: OTA unwrap and checks, VMAC parse, PIN check,
// signature, VMAC response, OTA wrap. Compare with BenchmarkECDSASign.
func BenchmarkCardSign(b *testing.B) {
	card, pkts, _ := signBenchSetup(b)
	ctx := context.Background()
	iu := instantUser{"1234"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rsp, err := card.Process(ctx, pkts[i], iu)
		if err != nil || len(rsp) == 0 {
			b.Fatal(err)
		}
	}
}

// BenchmarkCardSignVsECDSA interleaves the card's SIGN path with plain
// crypto/ecdsa signing of the same digest, so that both are measured under
// the same conditions, and reports their ratio (target: at most 1.5).
func BenchmarkCardSignVsECDSA(b *testing.B) {
	card, pkts, digest := signBenchSetup(b)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx := context.Background()
	iu := instantUser{"1234"}
	var cardTime, ecdsaTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := card.Process(ctx, pkts[i], iu); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := ecdsa.SignASN1(rand.Reader, k, digest[:]); err != nil {
			b.Fatal(err)
		}
		cardTime += t1.Sub(t0)
		ecdsaTime += time.Since(t1)
	}
	b.ReportMetric(float64(cardTime.Nanoseconds())/float64(b.N), "card-ns/op")
	b.ReportMetric(float64(ecdsaTime.Nanoseconds())/float64(b.N), "ecdsa-ns/op")
	b.ReportMetric(float64(cardTime)/float64(ecdsaTime), "ratio")
}

// BenchmarkECDSASign is crypto/ecdsa signing alone, the floor for
// BenchmarkCardSign.
func BenchmarkECDSASign(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("login"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, k, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}
