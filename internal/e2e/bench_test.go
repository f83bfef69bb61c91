package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mobileid/internal/store"
	"mobileid/internal/vmac"
)

// rig is a running network with a Messaging Server on SQLite, and an
// operator that sends INFO commands and routes the answers back to the
// goroutine waiting for them.
type rig struct {
	w       *world
	op      *operator
	send    func(msisdn string, ref uint32) error
	answers map[string]chan vmac.Response
	phones  []string
}

func newRig(b *testing.B, phones int) *rig {
	b.Helper()
	w := newWorld(b, phones, smscNoFaults)
	db, err := store.Open(context.Background(), store.Config{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	srv, c := startMessaging(b, w, db)
	r := &rig{w: w, op: newOperator(w), answers: map[string]chan vmac.Response{}}
	for m := range w.recs {
		r.answers[m] = make(chan vmac.Response, 4)
		r.phones = append(r.phones, m)
	}
	slices.Sort(r.phones)
	go func() {
		for mo := range c.mos {
			if resp := r.op.accept(b, mo); resp != nil {
				r.answers[withPlus(mo.From)] <- resp
			}
		}
	}()
	r.send = func(msisdn string, ref uint32) error {
		_, err := srv.SendPacket(context.Background(), msisdn[1:], r.op.wrap(b, msisdn, &vmac.Info{Ref: ref}), time.Minute)
		return err
	}
	return r
}

// roundTrip sends one INFO to msisdn and waits for its verified answer.
func (r *rig) roundTrip(msisdn string, ref uint32) error {
	if err := r.send(msisdn, ref); err != nil {
		return err
	}
	select {
	case a := <-r.answers[msisdn]:
		if a.Status() != vmac.StatusOK || a.TxRef() != ref {
			return fmt.Errorf("answer %v for %d", a.Status(), a.TxRef())
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: no answer to %d", msisdn, ref)
	}
}

// BenchmarkOTARoundTrip measures complete OTA round trips — one SMS each
// way — through messaging (SQLite outbox and inbox), SMPP over loopback,
// the SMSC and the handsets, with as many commands in flight as there are
// phones (one per phone, as the platform sends them). It reports round
// trips per second.
func BenchmarkOTARoundTrip(b *testing.B) {
	for _, phones := range []int{64, 256} {
		b.Run(fmt.Sprintf("phones=%d", phones), func(b *testing.B) {
			r := newRig(b, phones)
			var next atomic.Int64
			var ref atomic.Uint32
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			errs := make(chan error, phones)
			for _, m := range r.phones {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := r.roundTrip(m, ref.Add(1)); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "trips/s")
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkOTALatencyAt1000 sends round trips at a fixed rate of 1,000 per
// second, spread over the phones, and reports the latency percentiles of
// the whole round trip (the network adds no delay of its own here).
func BenchmarkOTALatencyAt1000(b *testing.B) {
	const rate = 1000
	r := newRig(b, 256)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var ref atomic.Uint32
	busy := make(map[string]*sync.Mutex)
	for _, m := range r.phones {
		busy[m] = &sync.Mutex{}
	}
	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	for i := 0; i < b.N; i++ {
		<-tick.C
		m := r.phones[i%len(r.phones)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			busy[m].Lock() // one command per phone at a time
			defer busy[m].Unlock()
			t0 := time.Now()
			if err := r.roundTrip(m, ref.Add(1)); err != nil {
				b.Error(err)
				return
			}
			d := time.Since(t0)
			mu.Lock()
			lat = append(lat, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
