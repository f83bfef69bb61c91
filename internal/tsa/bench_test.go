package tsa

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"testing"
)

// BenchmarkRespond measures Respond from query to signed TimeStampResp, on
// one goroutine, and reports tokens per second. "chain" sets certReq, so
// the token carries the TSA certificate, the issuing CA and the root.
func BenchmarkRespond(b *testing.B) {
	for _, bc := range []struct {
		name    string
		curve   elliptic.Curve
		certReq bool
	}{
		{"P-256/no-certs", elliptic.P256(), false},
		{"P-256/chain", elliptic.P256(), true},
		{"P-384/no-certs", elliptic.P384(), false},
		{"P-384/chain", elliptic.P384(), true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tsa, _, _ := newTestTSA(b, newTestPKI(b, bc.curve).config())
			q := makeQuery(b, crypto.SHA256, []byte("benchmark"), func(r *timeStampReq) { r.CertReq = bc.certReq })
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tsa.Respond(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
