package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Result is what a run measured. `mobileid bench --json` prints it as
// one JSON object.
type Result struct {
	Mode   Mode   `json:"mode"`
	Stack  string `json:"stack"` // "in-process" or the target's console URL
	Key    string `json:"key"`
	Format string `json:"format,omitempty"` // the ETSI modes' signature format
	Phones int    `json:"phones"`
	// Concurrency is the closed loop's workers; Rate and Arrivals
	// describe an open loop instead.
	Concurrency int     `json:"concurrency,omitempty"`
	Rate        float64 `json:"rate,omitempty"`
	Arrivals    string  `json:"arrivals,omitempty"`
	Think       float64 `json:"think_s"`
	Warmup      float64 `json:"warmup_s"`
	Duration    float64 `json:"duration_s"`

	// Transactions is the number of successful transactions that ended
	// in the measured window; TxPerSec divides it by the window.
	Transactions int64   `json:"transactions"`
	TxPerSec     float64 `json:"tx_per_sec"`
	// Latency is that of the successful transactions, from the request
	// (in an open loop: from the arrival it was meant to start at) to the
	// final answer.
	Latency Latency `json:"latency_ms"`
	// Errors counts the failed transactions of the window by status.
	Errors     map[string]int64 `json:"errors"`
	ErrorCount int64            `json:"error_count"`
	// Shortfall counts the open loop's arrivals in the window that found
	// no free phone and were not sent.
	Shortfall int64 `json:"shortfall,omitempty"`
	// CPUPerTx is CPU seconds (user + system) per transaction of CPUOf.
	CPUPerTx float64 `json:"cpu_s_per_tx"`
	CPUOf    string  `json:"cpu_of"`
	// PeakRSS is the largest resident set of RSSOf, in bytes.
	PeakRSS int64  `json:"peak_rss_bytes"`
	RSSOf   string `json:"rss_of"`
	// Floor is the crypto floor, and FloorRatio TxPerSec ÷ its rate.
	Floor      *Floor  `json:"crypto_floor,omitempty"`
	FloorRatio float64 `json:"floor_ratio,omitempty"`

	// Pending is the outcome of a --pending run, which has no load.
	Pending *PendingResult `json:"pending,omitempty"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// PendingResult is the outcome of the pending-load test.
type PendingResult struct {
	Via       string `json:"via"` // PendingPhones or PendingTestNumber
	Requested int    `json:"requested"`
	Accepted  int    `json:"accepted"`
	// Refused counts the requests not accepted, by status.
	Refused  map[string]int64 `json:"refused"`
	TimeOut  float64          `json:"timeout_s"`
	MemoryOf string           `json:"memory_of"`
	// HeapDelta is the growth of the heap in use with every transaction
	// pending (after a GC in process), and HeapPerPending that ÷
	// Accepted; the same for the resident set.
	HeapDelta      int64   `json:"heap_delta_bytes"`
	HeapPerPending float64 `json:"heap_bytes_per_pending"`
	RSSDelta       int64   `json:"rss_delta_bytes"`
	RSSPerPending  float64 `json:"rss_bytes_per_pending"`
	// TimedOut counts the transactions whose status is 208
	// EXPIRED_TRANSACTION; Other the ones that ended otherwise, by status;
	// Lost those still outstanding or unknown when the bench gave up.
	TimedOut int64            `json:"timed_out"`
	Other    map[string]int64 `json:"ended_otherwise"`
	Lost     int64            `json:"lost"`
	// Ended is how many transactions the MSSP's metrics say ended during
	// the test (-1 when they could not be read); more than Accepted
	// means some ended twice, which EndedTwice counts.
	Ended      int64 `json:"ended_by_metrics"`
	EndedTwice int64 `json:"ended_twice"`
	// Wait is the time from the last acceptance until every status was
	// final.
	Wait float64 `json:"wait_s"`
	// OK is true when every request was accepted and every transaction
	// ended exactly once with its time-out status.
	OK bool `json:"ok"`
}

// loadText describes the load in words.
func (r *Result) loadText() string {
	var b strings.Builder
	if r.Rate > 0 {
		fmt.Fprintf(&b, "open loop, %g tx/s, %s arrivals, on %d phones", r.Rate, r.Arrivals, r.Phones)
	} else {
		fmt.Fprintf(&b, "closed loop, %d workers, each on its own phone", r.Concurrency)
	}
	if r.Think > 0 {
		fmt.Fprintf(&b, ", users think %gs", r.Think)
	} else {
		b.WriteString(", users answer at once")
	}
	fmt.Fprintf(&b, ", %gs measured after %gs of warm-up", r.Duration, r.Warmup)
	return b.String()
}

// WriteJSON writes r as one JSON object and a newline.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as the table a person reads.
func (r *Result) WriteTable(w io.Writer) error {
	if r.Pending != nil {
		return r.writePending(w)
	}
	t := &table{}
	title := fmt.Sprintf("mobileid bench: %s, %s, %s keys", r.Mode, r.Stack, r.Key)
	if r.Format != "" {
		title += ", " + strings.ToUpper(r.Format)
	}
	t.row("", title)
	t.row("load", r.loadText())
	t.row("transactions", fmt.Sprintf("%d", r.Transactions))
	t.row("tx/s", fmt.Sprintf("%.1f", r.TxPerSec))
	t.row("latency p50", fmt.Sprintf("%.1f ms", r.Latency.P50))
	t.row("latency p95", fmt.Sprintf("%.1f ms", r.Latency.P95))
	t.row("latency p99", fmt.Sprintf("%.1f ms", r.Latency.P99))
	t.row("latency max", fmt.Sprintf("%.1f ms", r.Latency.Max))
	t.row("errors", fmt.Sprintf("%d", r.ErrorCount))
	for _, k := range sortedKeys(r.Errors) {
		t.row("  "+k, fmt.Sprintf("%d", r.Errors[k]))
	}
	if r.Rate > 0 {
		t.row("no free phone", fmt.Sprintf("%d arrivals not sent (client-side shortfall)", r.Shortfall))
	}
	t.row("CPU per transaction", fmt.Sprintf("%.3f ms (%s)", r.CPUPerTx*1000, r.CPUOf))
	t.row("peak RSS", fmt.Sprintf("%s (%s)", mib(r.PeakRSS), r.RSSOf))
	if f := r.Floor; f != nil {
		t.row("crypto floor", fmt.Sprintf("%.1f tx/s (%d goroutines, %.1f s, same process)", f.TxPerSec, f.Goroutines, f.Seconds))
		t.row("  without chain", fmt.Sprintf("%.1f tx/s (derived: chain validation left out, as the MSSP caches it)", f.TxPerSecNoChain))
		var steps []string
		for _, s := range floorSteps {
			if v, ok := f.Steps[s]; ok && v > 0 {
				steps = append(steps, fmt.Sprintf("%s %.1f", s, v))
			}
		}
		t.row("  µs per transaction", strings.Join(steps, ", "))
		ratio := fmt.Sprintf("%.1f %%", r.FloorRatio*100)
		if f.TxPerSecNoChain > 0 {
			ratio += fmt.Sprintf(" (%.1f %% of the floor without chain)", r.TxPerSec/f.TxPerSecNoChain*100)
		}
		t.row("tx/s ÷ crypto floor", ratio)
	} else {
		t.row("crypto floor", "not measured")
	}
	return t.write(w)
}

func (r *Result) writePending(w io.Writer) error {
	p := r.Pending
	t := &table{}
	via := "the test number " + pendingNumber + ", which never answers"
	if p.Via == PendingPhones {
		via = "phones whose users never answer"
	}
	t.row("", fmt.Sprintf("mobileid bench --pending: %s, %s", r.Stack, r.Key+" keys"))
	t.row("load", fmt.Sprintf("%d MSS_Signature asynchClientServer on %s, TimeOut %gs", p.Requested, via, p.TimeOut))
	t.row("accepted", fmt.Sprintf("%d", p.Accepted))
	for _, k := range sortedKeys(p.Refused) {
		t.row("  refused: "+k, fmt.Sprintf("%d", p.Refused[k]))
	}
	t.row("heap per pending", fmt.Sprintf("%s (heap in use %+.1f MiB; %s)", kib(p.HeapPerPending), float64(p.HeapDelta)/(1<<20), p.MemoryOf))
	t.row("RSS per pending", fmt.Sprintf("%s (RSS %+.1f MiB)", kib(p.RSSPerPending), float64(p.RSSDelta)/(1<<20)))
	t.row("ended 208 (time-out)", fmt.Sprintf("%d", p.TimedOut))
	for _, k := range sortedKeys(p.Other) {
		t.row("  ended "+k, fmt.Sprintf("%d", p.Other[k]))
	}
	t.row("never ended (lost)", fmt.Sprintf("%d", p.Lost))
	ended := "metrics not readable"
	if p.Ended >= 0 {
		ended = fmt.Sprintf("%d (the MSSP's metrics count %d ends)", p.EndedTwice, p.Ended)
	}
	t.row("ended twice", ended)
	t.row("wait after the last", fmt.Sprintf("%.1f s until every status was final", p.Wait))
	verdict := "PASS: every transaction ended once, with its time-out status"
	if !p.OK {
		verdict = "FAIL"
	}
	t.row("result", verdict)
	return t.write(w)
}

// table is a two-column table: a name and a value per row; a row without
// a name is a title.
type table struct{ rows [][2]string }

func (t *table) row(name, value string) { t.rows = append(t.rows, [2]string{name, value}) }

func (t *table) write(w io.Writer) error {
	width := 0
	for _, r := range t.rows {
		width = max(width, len([]rune(r[0])))
	}
	var b strings.Builder
	for _, r := range t.rows {
		if r[0] == "" {
			b.WriteString(r[1] + "\n")
			continue
		}
		b.WriteString(r[0] + strings.Repeat(" ", width-len([]rune(r[0]))+2) + r[1] + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func kib(b float64) string { return fmt.Sprintf("%.2f KiB", b/1024) }
