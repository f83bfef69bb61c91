package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mobileid/internal/registration"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to make it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func sampleResult() *Result {
	return &Result{
		Mode: ModeETSISynch, Stack: "in-process", Key: "ECDSA P-256", Format: "pkcs1", Phones: 64, Concurrency: 64,
		Warmup: 5, Duration: 30, Transactions: 36012, TxPerSec: 1200.4,
		Latency:    Latency{P50: 48.2, P95: 80.5, P99: 120.25, Max: 301.7},
		Errors:     map[string]int64{"transport: timeout": 1, "ETSI 208 EXPIRED_TRANSACTION": 2},
		ErrorCount: 3, CPUPerTx: 0.001234, CPUOf: "this process: platform and clients",
		PeakRSS: 312 << 20, RSSOf: "this process",
		Floor: &Floor{TxPerSec: 1290.4, TxPerSecNoChain: 9000.5, Goroutines: 2, Seconds: 3.0,
			Steps: map[string]float64{stepHash: 0.7, stepOTA: 7.2, stepSIM: 50.5, stepVerify: 90, stepChain: 1400.6, stepCMS: 0}},
		FloorRatio: 1200.4 / 1290.4,
	}
}

func TestReportTable(t *testing.T) {
	var b bytes.Buffer
	if err := sampleResult().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "table.golden", b.Bytes())

	open := sampleResult()
	open.Mode, open.Format, open.Concurrency, open.Rate, open.Arrivals, open.Think, open.Shortfall = ModeMID, "", 0, 50, "poisson", 2, 12
	open.Floor, open.FloorRatio = nil, 0
	open.Errors, open.ErrorCount = map[string]int64{}, 0
	b.Reset()
	if err := open.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "table_open.golden", b.Bytes())
}

func TestReportPending(t *testing.T) {
	r := &Result{Mode: ModeETSIAsync, Stack: "in-process", Key: "ECDSA P-256", Pending: &PendingResult{
		Via: PendingTestNumber, Requested: 1000, Accepted: 1000, Refused: map[string]int64{}, TimeOut: 30,
		MemoryOf: "this process, after GC", HeapDelta: 1 << 20, HeapPerPending: 1048.576, RSSDelta: 3 << 20, RSSPerPending: 3145.728,
		TimedOut: 1000, Other: map[string]int64{}, Ended: 1000, Wait: 1.5, OK: true,
	}}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "pending.golden", b.Bytes())
}

func TestReportJSON(t *testing.T) {
	var b bytes.Buffer
	if err := sampleResult().WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("JSON does not decode: %v\n%s", err, b.String())
	}
	for _, k := range []string{"mode", "tx_per_sec", "latency_ms", "errors", "cpu_s_per_tx", "peak_rss_bytes", "crypto_floor", "floor_ratio"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b.String())
		}
	}
	var back Result
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Latency.P99 != 120.25 || back.Errors["transport: timeout"] != 1 {
		t.Errorf("JSON round trip = %+v, %v", back, err)
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown mode", Config{Mode: "soap"}, "unknown mode"},
		{"unknown key", Config{Key: "dsa"}, "unknown key type"},
		{"cms with mid", Config{Mode: ModeMID, Format: FormatCMS}, "ETSI modes only"},
		{"closed and open", Config{Concurrency: 4, Rate: 10}, "exclude each other"},
		{"more workers than phones", Config{Concurrency: 8, Phones: 4}, "needs as many phones"},
		{"target without data", Config{Target: "http://127.0.0.1:8080"}, "--data"},
		{"time-out too short", Config{TimeOut: 5e9}, "10 s to 600 s"},
		{"pending via", Config{Pending: 10, PendingVia: "carrier pigeon"}, "--pending-via"},
		{"negative duration", Config{Duration: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check() = %v, want an error with %q", err, tt.want)
			}
		})
	}
	c := Config{Concurrency: 8}
	if err := c.Check(); err != nil || c.Phones != 8 || c.Mode != ModeETSISynch || c.Key != KeyECDSA || c.Duration <= 0 {
		t.Errorf("Check() of a closed loop = %v, %+v, want defaults with 8 phones", err, c)
	}
}

func TestBenchNationalIDs(t *testing.T) {
	v := registration.PersonalCode{Label: "personal code"}
	seen := map[string]bool{}
	for _, i := range []int{0, 1, 999, 1000, 54321, 99999} {
		id, dob := benchNationalID(i)
		got, err := v.Check(id)
		if err != nil || !got.Equal(dob) {
			t.Errorf("benchNationalID(%d) = %s, %v: Check = %v, %v", i, id, dob, got, err)
		}
		if seen[id] {
			t.Errorf("benchNationalID(%d) = %s again", i, id)
		}
		seen[id] = true
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP mobileid_mssp_transactions_finished_total Transactions ended.
# TYPE mobileid_mssp_transactions_finished_total counter
mobileid_mssp_transactions_finished_total{kind="sign",status="502"} 120
mobileid_mssp_transactions_finished_total{kind="test",status="208"} 7
process_cpu_seconds_total 12.5
`
	m, err := parseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mobileid_mssp_transactions_finished_total", nil, 127},
		{"mobileid_mssp_transactions_finished_total", []string{`status="208"`}, 7},
		{"process_cpu_seconds_total", nil, 12.5},
		{"mobileid_mssp", nil, 0},
	}
	for _, tt := range tests {
		if got := sumMetric(m, tt.name, tt.labels...); got != tt.want {
			t.Errorf("sumMetric(%s, %v) = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
}
