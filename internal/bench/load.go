package bench

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source of the load generators, so that tests can run
// the rate scheduler on simulated time.
type Clock interface {
	Now() time.Time
	// SleepUntil returns at t, or with ctx's error when ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// systemClock is the real time.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Arrivals gives the times between the transactions of an open loop: a
// fixed interval of 1/Rate, or exponentially distributed ones with mean
// 1/Rate (a Poisson process), which is how independent users arrive.
type Arrivals struct {
	Rate    float64 // transactions per second, > 0
	Poisson bool
	Rand    *rand.Rand // for Poisson; nil means a random seed
}

// Next returns the time to the next arrival.
func (a *Arrivals) Next() time.Duration {
	mean := float64(time.Second) / a.Rate
	if !a.Poisson {
		return time.Duration(mean)
	}
	if a.Rand == nil {
		a.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	return time.Duration(a.Rand.ExpFloat64() * mean)
}

// phonePool holds the phones that have no transaction under way: a phone
// takes one at a time, as the MSSP allows.
type phonePool struct{ free chan phone }

func newPhonePool(phones []phone) *phonePool {
	p := &phonePool{free: make(chan phone, len(phones))}
	for _, ph := range phones {
		p.free <- ph
	}
	return p
}

// tryGet takes a free phone, if there is one.
func (p *phonePool) tryGet() (phone, bool) {
	select {
	case ph := <-p.free:
		return ph, true
	default:
		return phone{}, false
	}
}

// put gives a phone back.
func (p *phonePool) put(ph phone) { p.free <- ph }

// openLoop starts transactions at the arrival times from start until end,
// each on a free phone, and returns how many it started and how many found
// no free phone (a shortfall of the client side: the phones, not the
// system, limited the rate). launch must return at once and give the phone
// back to the pool when its transaction ends; it gets the arrival time the
// transaction was meant to start at, from which its latency counts, so
// that a late start is not hidden (coordinated omission). miss, if not
// nil, learns the arrival time of each shortfall.
func openLoop(ctx context.Context, clk Clock, arr *Arrivals, start, end time.Time, pool *phonePool, launch func(ph phone, at time.Time), miss func(at time.Time)) (started, shortfall int64) {
	t := start
	for {
		t = t.Add(arr.Next())
		if !t.Before(end) {
			return started, shortfall
		}
		if err := clk.SleepUntil(ctx, t); err != nil {
			return started, shortfall
		}
		ph, ok := pool.tryGet()
		if !ok {
			shortfall++
			if miss != nil {
				miss(t)
			}
			continue
		}
		started++
		launch(ph, t)
	}
}

// closedLoop runs one worker per phone, each starting its next
// transaction as soon as the last one ended, until end.
func closedLoop(ctx context.Context, clk Clock, phones []phone, end time.Time, run func(ph phone, at time.Time)) {
	var wg sync.WaitGroup
	for _, ph := range phones {
		wg.Go(func() {
			for ctx.Err() == nil {
				at := clk.Now()
				if !at.Before(end) {
					return
				}
				run(ph, at)
			}
		})
	}
	wg.Wait()
}

// recorder collects the outcomes of the transactions that end inside the
// measured window [from, to): their latencies and the errors by status.
// The progress counters cover every transaction, warm-up included.
type recorder struct {
	mu       sync.Mutex
	from, to time.Time
	hist     Histogram
	ok       int64
	errors   map[string]int64

	done   atomic.Int64 // all ended transactions, for the progress line
	failed atomic.Int64 // all failed ones
}

func newRecorder(from, to time.Time) *recorder {
	return &recorder{from: from, to: to, errors: map[string]int64{}}
}

// record counts a transaction that started at and ended at end; status is
// "" for a success, else its error class.
func (r *recorder) record(at, end time.Time, status string) {
	r.done.Add(1)
	if status != "" {
		r.failed.Add(1)
	}
	if end.Before(r.from) || !end.Before(r.to) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if status != "" {
		r.errors[status]++
		return
	}
	r.ok++
	r.hist.Record(end.Sub(at))
}

// snapshot returns the measured window's counts.
func (r *recorder) snapshot() (ok int64, errs map[string]int64, h Histogram) {
	r.mu.Lock()
	defer r.mu.Unlock()
	errs = make(map[string]int64, len(r.errors))
	for k, v := range r.errors {
		errs[k] = v
	}
	h.Merge(&r.hist)
	return r.ok, errs, h
}
