package bench

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// fakeClock is simulated time: sleeping moves it on at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var epoch = time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)

func testPhones(n int) []phone {
	p := make([]phone, n)
	for i := range p {
		p[i] = phone{MSISDN: "+3725000" + string(rune('0'+i%10))}
	}
	return p
}

func TestOpenLoopFixed(t *testing.T) {
	clk := &fakeClock{now: epoch}
	pool := newPhonePool(testPhones(1))
	var times []time.Time
	started, short := openLoop(context.Background(), clk, &Arrivals{Rate: 100}, epoch, epoch.Add(10*time.Second), pool,
		func(ph phone, at time.Time) {
			if now := clk.Now(); !now.Equal(at) {
				t.Errorf("launched at %v for the arrival at %v", now, at)
			}
			times = append(times, at)
			pool.put(ph) // the transaction ends at once
		}, nil)
	// Arrivals at 10 ms, 20 ms, … 9990 ms; the one at 10 s is the end.
	if started != 999 || short != 0 {
		t.Fatalf("openLoop = %d started, %d short, want 999, 0", started, short)
	}
	for i, at := range times {
		if want := epoch.Add(time.Duration(i+1) * 10 * time.Millisecond); !at.Equal(want) {
			t.Fatalf("arrival %d at %v, want %v", i, at.Sub(epoch), want.Sub(epoch))
		}
	}
}

func TestOpenLoopPoisson(t *testing.T) {
	clk := &fakeClock{now: epoch}
	pool := newPhonePool(testPhones(1))
	var gaps []time.Duration
	last := epoch
	arr := &Arrivals{Rate: 1000, Poisson: true, Rand: rand.New(rand.NewPCG(1, 2))}
	started, _ := openLoop(context.Background(), clk, arr, epoch, epoch.Add(10*time.Second), pool, func(ph phone, at time.Time) {
		gaps = append(gaps, at.Sub(last))
		last = at
		pool.put(ph)
	}, nil)
	// 10,000 expected; the standard deviation of a Poisson count is 100.
	if started < 9500 || started > 10500 {
		t.Errorf("openLoop at 1000/s for 10 s started %d, want 10000 ± 500", started)
	}
	// Exponential gaps: about 1/e of them are longer than the mean.
	long := 0
	for _, g := range gaps {
		if g > time.Millisecond {
			long++
		}
	}
	if frac := float64(long) / float64(len(gaps)); frac < 0.33 || frac > 0.41 {
		t.Errorf("%.3f of the gaps exceed the mean, want about 0.368 (exponential)", frac)
	}
}

func TestOpenLoopShortfall(t *testing.T) {
	clk := &fakeClock{now: epoch}
	pool := newPhonePool(testPhones(2))
	var missed []time.Time
	// The transactions never end, so the two phones stay busy.
	started, short := openLoop(context.Background(), clk, &Arrivals{Rate: 10}, epoch, epoch.Add(time.Second), pool,
		func(phone, time.Time) {}, func(at time.Time) { missed = append(missed, at) })
	if started != 2 || short != 7 || len(missed) != 7 {
		t.Fatalf("openLoop = %d started, %d short (%d reported), want 2, 7, 7", started, short, len(missed))
	}
	if want := epoch.Add(300 * time.Millisecond); !missed[0].Equal(want) {
		t.Errorf("first shortfall at %v, want %v", missed[0].Sub(epoch), want.Sub(epoch))
	}
}

func TestOpenLoopStopsWithContext(t *testing.T) {
	clk := &fakeClock{now: epoch}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	started, short := openLoop(ctx, clk, &Arrivals{Rate: 10}, epoch, epoch.Add(time.Second), newPhonePool(testPhones(1)),
		func(phone, time.Time) { t.Error("launched after the context ended") }, nil)
	if started != 0 || short != 0 {
		t.Errorf("openLoop on a cancelled context = %d, %d, want 0, 0", started, short)
	}
}

func TestClosedLoop(t *testing.T) {
	clk := &fakeClock{now: epoch}
	n := 0
	closedLoop(context.Background(), clk, testPhones(1), epoch.Add(time.Second), func(ph phone, at time.Time) {
		n++
		clk.advance(100 * time.Millisecond)
	})
	if n != 10 {
		t.Errorf("closedLoop ran %d transactions of 100 ms in 1 s, want 10", n)
	}
}

func TestRecorderWindow(t *testing.T) {
	from, to := epoch.Add(time.Second), epoch.Add(2*time.Second)
	r := newRecorder(from, to)
	r.record(epoch, epoch.Add(500*time.Millisecond), "")                                    // warm-up
	r.record(epoch.Add(900*time.Millisecond), from.Add(10*time.Millisecond), "")            // started in warm-up, ends inside
	r.record(from, from.Add(20*time.Millisecond), "MID TIMEOUT")                            // an error inside
	r.record(to.Add(-time.Millisecond), to, "")                                             // ends at the end: outside
	r.record(from.Add(100*time.Millisecond), from.Add(130*time.Millisecond), "")            // inside
	r.record(from.Add(200*time.Millisecond), from.Add(210*time.Millisecond), "MID TIMEOUT") // another error
	ok, errs, h := r.snapshot()
	if ok != 2 || errs["MID TIMEOUT"] != 2 || len(errs) != 1 {
		t.Errorf("snapshot = %d ok, errors %v, want 2 ok and 2 MID TIMEOUT", ok, errs)
	}
	if h.Max() != 110*time.Millisecond {
		t.Errorf("latency max = %v, want 110ms (from the start to the end)", h.Max())
	}
	if r.done.Load() != 6 || r.failed.Load() != 2 {
		t.Errorf("progress counters = %d, %d, want 6, 2", r.done.Load(), r.failed.Load())
	}
}
