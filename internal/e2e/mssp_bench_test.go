package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/etsi/etsiclient"
)

// BenchmarkMSSPSignature measures complete MSS_Signature transactions:
// SOAP over HTTPS with a client certificate → MSSP (SQLite) → OTA → SMPP →
// SMSC → handset answering at once → SIM signature → back → signature
// validated (chain and OCSP, cached) → CAdES-BES assembled → SOAP
// response. One synchronous request per phone is in flight, as the MSSP
// allows. It reports transactions per second.
func BenchmarkMSSPSignature(b *testing.B) {
	// The garbage collector target `mobileid mssp` sets (msspGCPercent in
	// cmd/mobileid), unless $GOGC says otherwise.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	for _, phones := range []int{128, 256} {
		b.Run(fmt.Sprintf("phones=%d", phones), func(b *testing.B) {
			p := newPlatform(b, phones, platformOptions{ocspMaxAge: time.Minute})
			list := p.phones()
			for _, m := range list {
				p.register(b, m)
			}
			tr := p.httpClient(&p.apCert).Transport.(*http.Transport)
			tr.MaxIdleConnsPerHost = phones
			client := &etsiclient.Client{BaseURL: p.url, HTTP: &http.Client{Transport: tr, Timeout: time.Minute}}
			// Warm up: TLS sessions, OCSP cache, prepared statements.
			var wg sync.WaitGroup
			for _, m := range list {
				wg.Go(func() { client.Sign(context.Background(), p.signReq(m, "warm up")) })
			}
			wg.Wait()

			var next atomic.Int64
			var failures atomic.Int64
			b.ResetTimer()
			start := time.Now()
			for _, m := range list {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						resp, err := client.Sign(context.Background(), p.signReq(m, "Pay 12.50 EUR to ACME"))
						if err != nil || resp.Status.StatusCode.Value != etsi.CodeValidSignature {
							if failures.Add(1) == 1 {
								b.Errorf("MSS_Signature to %s: %v", m, err)
							}
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
			if testing.Verbose() {
				var delivered, answered, finished float64
				err := p.db.QueryRow(`SELECT AVG(delivered_at - created_at), AVG(answered_at - created_at), AVG(finished_at - created_at)
					FROM mssp_tx WHERE kind = 'sign' AND delivered_at > 0 AND answered_at > 0`).Scan(&delivered, &answered, &finished)
				if err == nil {
					b.Logf("after acceptance: delivered %.1f ms, answered %.1f ms, finished %.1f ms", delivered/1000, answered/1000, finished/1000)
				}
			}
		})
	}
}
