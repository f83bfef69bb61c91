package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a buffer safe for the progress lines' writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tableRows are the names of the rows every load table has.
var tableRows = []string{"load", "transactions", "tx/s", "latency p50", "latency p95", "latency p99", "latency max", "errors",
	"CPU per transaction", "peak RSS", "crypto floor", "without chain", "µs per transaction", "tx/s ÷ crypto floor"}

// TestBenchRuns runs the bench in process, briefly, in each mode. It is a
// functional test: it checks that transactions happened without errors
// and that the report is complete, never how fast anything was.
func TestBenchRuns(t *testing.T) {
	loads := []struct {
		name string
		cfg  Config
	}{
		{"etsi-synch", Config{Mode: ModeETSISynch, Phones: 8}},
		{"etsi-async", Config{Mode: ModeETSIAsync, Phones: 8, Poll: 50 * time.Millisecond}},
		// With PKCS1 the driver checks that the signatures are RSA-2048
		// ones: the registration asked the SIMs for RSA keys.
		{"etsi-synch rsa", Config{Mode: ModeETSISynch, Phones: 4, Key: KeyRSA}},
		{"etsi-synch cms", Config{Mode: ModeETSISynch, Phones: 4, Format: FormatCMS}},
		{"etsi-synch open loop", Config{Mode: ModeETSISynch, Phones: 8, Rate: 20, Fixed: true}},
		{"mid", Config{Mode: ModeMID, Phones: 8, Duration: 3 * time.Second}},
		{"ciba", Config{Mode: ModeCIBA, Phones: 1, Duration: 5 * time.Second}},
	}
	// The pending tests wait for their time-out; they run beside the
	// loads.
	for _, via := range []string{PendingTestNumber, PendingPhones} {
		t.Run("pending "+via, func(t *testing.T) {
			t.Parallel()
			var progress syncBuffer
			res, err := Run(context.Background(), Config{Pending: 50, PendingVia: via, PendingTimeOut: 10 * time.Second, Progress: &progress})
			if err != nil {
				t.Fatalf("Run: %v\n%s", err, progress.String())
			}
			p := res.Pending
			if p == nil || !p.OK || p.Accepted != 50 || p.TimedOut != 50 || p.Lost != 0 || p.EndedTwice != 0 || p.Ended != 50 {
				t.Errorf("pending = %+v, want 50 accepted and 50 ended once with 208", p)
			}
			var b bytes.Buffer
			res.WriteTable(&b)
			for _, row := range []string{"accepted", "heap per pending", "RSS per pending", "ended 208 (time-out)", "never ended (lost)", "ended twice", "PASS: every transaction ended once"} {
				if !strings.Contains(b.String(), row) {
					t.Errorf("pending table has no %q:\n%s", row, b.String())
				}
			}
		})
	}
	t.Run("loads", func(t *testing.T) {
		t.Parallel()
		for _, l := range loads {
			t.Run(l.name, func(t *testing.T) {
				var progress syncBuffer
				cfg := l.cfg
				cfg.Warmup, cfg.FloorTime, cfg.Progress = 500*time.Millisecond, 300*time.Millisecond, &progress
				if cfg.Duration == 0 {
					cfg.Duration = 2 * time.Second
				}
				res, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatalf("Run: %v\n%s", err, progress.String())
				}
				errs := res.ErrorCount
				if cfg.Mode == ModeMID {
					// A known race of the platform, not of the bench: the
					// demo bank's confirmation (an MSS_Receipt, a DISPLAY
					// command that does not hold the SIM) and the next
					// authentication on the same phone cross in the
					// network, and the card refuses the later counter
					// (DELIVERY_ERROR) or is busy (406: HTTP 500).
					// docs/PERFORMANCE.md, "First runs".
					raced := res.Errors["MID DELIVERY_ERROR"] + res.Errors["MID HTTP 500"]
					if raced > 0 && raced*10 <= res.Transactions {
						t.Logf("%d sessions met the receipt race", raced)
						errs -= raced
					}
				}
				if res.Transactions == 0 || errs != 0 {
					t.Errorf("%d transactions, errors %v; want some and none", res.Transactions, res.Errors)
				}
				if res.CPUPerTx <= 0 || res.PeakRSS <= 0 || res.Floor == nil || res.Floor.TxPerSec <= 0 || res.FloorRatio <= 0 {
					t.Errorf("result %+v lacks CPU, RSS or the crypto floor", res)
				}
				if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
					t.Errorf("latency %+v is not ordered", res.Latency)
				}
				var table bytes.Buffer
				if err := res.WriteTable(&table); err != nil {
					t.Fatal(err)
				}
				rows := tableRows
				if cfg.Rate > 0 {
					rows = append(rows, "no free phone")
				}
				for _, row := range rows {
					if !strings.Contains(table.String(), "\n"+row+" ") && !strings.Contains(table.String(), "\n  "+row+" ") {
						t.Errorf("table has no row %q:\n%s", row, table.String())
					}
				}
				var js bytes.Buffer
				if err := res.WriteJSON(&js); err != nil {
					t.Fatal(err)
				}
				var back Result
				if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Transactions != res.Transactions || back.Mode != cfg.Mode {
					t.Errorf("JSON = %v, %+v:\n%s", err, back, js.String())
				}
				if !strings.Contains(progress.String(), "tx/s  total") {
					t.Errorf("no progress line:\n%s", progress.String())
				}
			})
		}
	})
}
