package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"mobileid/internal/etsi"
)

// pendingWorkers is how many requests the pending test has in flight at
// once, to start the transactions and to query them.
const pendingWorkers = 64

// runPending starts cfg.Pending asynchClientServer transactions that are
// never answered, measures the memory they hold, waits for their
// time-out and checks that each ended once, with 208.
func runPending(ctx context.Context, cfg *Config) (*Result, error) {
	n := cfg.Pending
	phonesNeeded := 1 // the in-process platform needs some phone of its own
	if cfg.PendingVia == PendingPhones {
		phonesNeeded = n
	}
	st, err := openStack(ctx, cfg, phonesNeeded, pendingWorkers)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	numbers := make([]string, n)
	for i := range numbers {
		numbers[i] = pendingNumber
	}
	if cfg.PendingVia == PendingPhones {
		if len(st.phones) < n {
			return nil, fmt.Errorf("--pending %d with phones needs as many registered phones, there are %d: each holds one transaction", n, len(st.phones))
		}
		phones := st.phones[:n]
		if err := st.setBehaviour(ctx, phones, "never"); err != nil {
			return nil, err
		}
		if cfg.Target != "" {
			defer st.setBehaviour(context.WithoutCancel(ctx), phones, "default")
		}
		for i, p := range phones {
			numbers[i] = p.MSISDN
		}
	}
	timeOut := int(cfg.PendingTimeOut / time.Second)
	d := &etsiDriver{st: st, async: true, timeOut: timeOut, format: etsi.FormatFiComPKCS1, prefix: "P" + randomHex(4) + "-"}
	p := &PendingResult{Via: cfg.PendingVia, Requested: n, Refused: map[string]int64{}, Other: map[string]int64{}, TimeOut: float64(timeOut), Ended: -1}
	res := &Result{Mode: ModeETSIAsync, Stack: st.name, Key: cfg.Key.label(), Phones: len(st.phones), Pending: p, Errors: map[string]int64{}}

	// Connections are opened before the first measurement, so that they
	// do not count as the transactions' memory.
	forEach(ctx, min(n, pendingWorkers), pendingWorkers, func(i int) {
		st.etsi.Profile(ctx, &etsi.MSSProfileReq{MessageAbstract: d.abstract(), MobileUser: etsi.MobileUser{MSISDN: numbers[i]}})
	})
	ids := make([]string, n)
	mem0, err := memory(ctx, st)
	if err != nil {
		return nil, err
	}
	metrics0 := msspEnded(ctx, st)

	cfg.logf("starting %d transactions that will not be answered (TimeOut %ds)", n, timeOut)
	begun := time.Now()
	var mu sync.Mutex
	forEach(ctx, n, pendingWorkers, func(i int) {
		resp, err := st.etsi.Sign(ctx, d.request(numbers[i], etsi.AsynchClientServer, timeOut))
		status := ""
		switch {
		case err != nil:
			status = etsiErr(err)
		case resp.Status.StatusCode.Value != etsi.CodeRequestOK:
			status = "ETSI " + resp.Status.StatusCode.Value.String()
		default:
			ids[i] = resp.MSSPTransID
		}
		if status != "" {
			mu.Lock()
			p.Refused[status]++
			mu.Unlock()
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	accepted := time.Now()
	for _, id := range ids {
		if id != "" {
			p.Accepted++
		}
	}
	cfg.logf("%d accepted in %.1f s", p.Accepted, accepted.Sub(begun).Seconds())
	if cfg.PendingVia == PendingPhones {
		// The commands are on their way to the phones: let them arrive.
		settle := min(2*time.Second, cfg.PendingTimeOut/4)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(settle):
		}
	}
	mem1, err := memory(ctx, st)
	if err != nil {
		return nil, err
	}
	p.MemoryOf = mem1.of
	p.HeapDelta, p.RSSDelta = int64(mem1.heap)-int64(mem0.heap), mem1.rss-mem0.rss
	if p.Accepted > 0 {
		p.HeapPerPending = float64(p.HeapDelta) / float64(p.Accepted)
		p.RSSPerPending = float64(p.RSSDelta) / float64(p.Accepted)
	}
	res.PeakRSS = peakRSS()

	// The MSSP ends them with 208 once their TimeOut has passed, at its
	// next sweep; then each one's status is asked for until it is final.
	due := accepted.Add(cfg.PendingTimeOut + time.Second)
	giveUp := due.Add(time.Minute + time.Duration(n)*2*time.Millisecond)
	for {
		left := time.Until(due)
		if left <= 0 {
			break
		}
		cfg.logf("%d pending, time-out in %.0f s", p.Accepted, left.Seconds())
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(left, 5*time.Second)):
		}
	}
	var open []int
	for i, id := range ids {
		if id != "" {
			open = append(open, i)
		}
	}
	for len(open) > 0 {
		var still []int
		forEach(ctx, len(open), pendingWorkers, func(k int) {
			i := open[k]
			st, _, err := d.status(ctx, ids[i])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && !isFault(err):
				still = append(still, i) // asked again; lost if it never answers
			case err != nil && faultCode(err) == etsi.CodeExpiredTransaction:
				// A transaction that ended with a fault code is
				// answered with that fault.
				p.TimedOut++
			case err != nil:
				p.Other[etsiErr(err)]++
			case st.StatusCode.Value == etsi.CodeOutstandingTransaction:
				still = append(still, i)
			case st.StatusCode.Value == etsi.CodeExpiredTransaction:
				p.TimedOut++
			default:
				p.Other["ETSI "+st.StatusCode.Value.String()]++
			}
		})
		open = still
		if len(open) == 0 || time.Now().After(giveUp) {
			break
		}
		cfg.logf("%d ended with 208, %d not yet", p.TimedOut, len(open))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	p.Wait = time.Since(accepted).Seconds() - cfg.PendingTimeOut.Seconds()
	p.Lost = int64(len(open))
	if metrics0 >= 0 {
		if m := msspEnded(ctx, st); m >= 0 {
			p.Ended = int64(m - metrics0)
			p.EndedTwice = max(0, p.Ended-int64(p.Accepted))
		}
	}
	p.OK = p.Accepted == n && p.TimedOut == int64(n) && p.Lost == 0 && len(p.Other) == 0 && p.EndedTwice == 0
	return res, nil
}

// isFault reports whether err is the MSSP's fault rather than a failure
// to reach it.
func isFault(err error) bool {
	var f *etsi.Fault
	return errors.As(err, &f)
}

// faultCode returns the code of the MSSP's fault err, or 0.
func faultCode(err error) etsi.Code {
	var f *etsi.Fault
	if errors.As(err, &f) {
		return f.Code
	}
	return 0
}

// forEach calls f(0) … f(n-1) on up to workers goroutines.
func forEach(ctx context.Context, n, workers int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, workers) {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// memState is the memory of the platform at one time.
type memState struct {
	heap uint64 // bytes of heap in use
	rss  int64
	of   string
}

// memory returns the platform's memory: in process the heap in use after
// two collections and the resident set; against a target what its
// metrics say, without a collection.
func memory(ctx context.Context, st *stack) (memState, error) {
	if st.inProcess {
		// A collection that also gives freed memory back to the system,
		// so that the resident set is comparable too.
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return memState{heap: ms.HeapInuse, rss: currentRSS(), of: "this process, after GC"}, nil
	}
	m, err := st.metrics(ctx, st.http, st.console+"/metrics")
	if err != nil {
		return memState{}, err
	}
	return memState{heap: uint64(m["go_memstats_heap_inuse_bytes"]), rss: int64(m["process_resident_memory_bytes"]),
		of: "the target's metrics, without a forced GC"}, nil
}

// msspEnded returns how many transactions the MSSP's metrics count as
// ended, or -1 when they cannot be read.
func msspEnded(ctx context.Context, st *stack) float64 {
	if st.msspMetrics == nil {
		return -1
	}
	m, err := st.metrics(ctx, st.msspMetrics, st.urls.MSSP+"/metrics")
	if err != nil {
		return -1
	}
	return sumMetric(m, "mobileid_mssp_transactions_finished_total")
}

// currentRSS returns this process's resident set in bytes, from
// /proc/self/statm; 0 where there is none.
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
