package ca

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"mobileid/internal/store"
)

// BenchmarkIssue measures complete issuances on the embedded SQLite
// store: request checks (proof of possession and card attestation, ECDSA
// P-256), signing with the issuing key (ECDSA P-384, which crypto/x509
// also verifies), and the insert. Run with -benchtime=2000x or so; the
// figure is certs/s.
func BenchmarkIssue(b *testing.B) {
	db, err := store.Open(b.Context(), store.Config{DSN: "sqlite:" + filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tc := newTestCA(b, db, nil)
	var reqs []*IssueRequest
	for range 16 {
		reg := newRegistration(b, tc.vendor, newECKey(b), newECKey(b))
		reqs = append(reqs, reg.request(b, ProfileAuthentication), reg.request(b, ProfileSigning))
	}
	var next atomic.Int64
	// Goroutines beyond the cores keep a core busy signing while
	// another issuance waits for SQLite's write lock.
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := reqs[int(next.Add(1))%len(reqs)]
			if _, err := tc.Issue(b.Context(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "certs/s")
}
