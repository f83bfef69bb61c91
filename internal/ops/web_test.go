package ops

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeTxs is a Signature Server with fixed transactions, newest first.
type fakeTxs []Transaction

func (f fakeTxs) Recent(ctx context.Context, limit int) ([]Transaction, error) {
	return slices.Clone(f[:min(limit, len(f))]), nil
}

func (f fakeTxs) Transaction(ctx context.Context, id string) (*Transaction, error) {
	for _, t := range f {
		if t.TransID == id {
			return &t, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

type fakeCerts []Certificate

func (f fakeCerts) Certificates(ctx context.Context, limit int) ([]Certificate, error) {
	return f[:min(limit, len(f))], nil
}

const (
	doneTx    = "Tdone000000000000000"
	pendingTx = "Tpending000000000000"
)

// testConsole is a console over one finished authentication with its
// SMS, one transaction still waiting, two certificates and a registry.
func testConsole(t *testing.T) (*Console, *Recorder) {
	t.Helper()
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	txs := fakeTxs{
		{TransID: pendingTx, APID: "http://mobileid.dev/idserver", APTransID: "B2", Kind: "sign", MSISDN: "+37250000002",
			Mode: "synch", State: "sent", Status: 504, StatusName: "OUTSTANDING_TRANSACTION", Counter: 9, TAR: "4d4944",
			Created: ms(5000), Deadline: ms(125000)},
		{TransID: doneTx, APID: "http://mobileid.dev/idserver", APTransID: "A1", Kind: "sign", MSISDN: "+37250000001",
			Mode: "synch", Profile: "http://mss.ficom.fi/TS102206/v1.0.0/authentication-profile.xml", State: "validated",
			Status: 502, StatusName: "VALID_SIGNATURE", Counter: 5, TAR: "4d4944",
			Created: ms(0), Delivered: ms(60), Answered: ms(1300), Finished: ms(1350), Deadline: ms(120000)},
	}
	rec := NewRecorder(50)
	mt := mtCommand(t, "37250000001", goldenCommand)
	mt.Time, mt.Taken, mt.MessageID, mt.StatusName, mt.Account, mt.Service = ms(10), ms(10), "1a", "ESME_ROK", "mssp", "3725000"
	rec.add(mt)
	rec.add(Traffic{Direction: Receipt, Time: ms(50), Taken: ms(40), MSISDN: "37250000001", MessageID: "1a", ESMClass: 0x04,
		ReceiptState: "DELIVRD", StatusName: "ESME_ROK", UserData: []byte("id:1a sub:001 dlvrd:001 submit date:2603011200 done date:2603011200 stat:DELIVRD err:000 text:")})
	mo := moResponse(t, "37250000001", goldenResponse)
	mo.Time, mo.Taken, mo.StatusName = ms(1210), ms(1200), "ESME_ROK"
	rec.add(mo)
	clear := mtCommand(t, "37250000003", goldenClear)
	clear.Time, clear.MessageID = ms(3000), "1b"
	rec.add(clear)
	rec.add(Traffic{Direction: MT, Time: ms(2000), MSISDN: "37250000001", MessageID: "1c", UserData: []byte("Demo Bank: done. Thank you.")})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mobileid_test_finished_total", Help: "Transactions ended."}, []string{"status"})
	c.WithLabelValues("502").Add(3)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "mobileid_test_seconds", Help: "Durations."})
	h.Observe(1)
	h.Observe(2)
	reg.MustRegister(c, h)

	certs := fakeCerts{
		{Serial: "5a01", Subject: "CN=MÄNNIK\\,MARI-LIIS\\,47605030299,SERIALNUMBER=PNOEE-47605030299,C=EE", Profile: "auth", Country: "EE",
			NationalID: "47605030299", ICCID: "8999001", NotBefore: t0, NotAfter: t0.AddDate(3, 0, 0), IssuedAt: t0, Status: "good"},
		{Serial: "5a02", Subject: "CN=TAMM\\,JAAN", Profile: "sign", NotBefore: t0, NotAfter: t0.AddDate(3, 0, 0), IssuedAt: t0,
			Status: "on hold", RevokedAt: ms(9000), Reason: 6},
	}
	console, err := New(Config{Now: func() time.Time { return ms(10000) }},
		Sources{Transactions: txs, SMS: rec, Certificates: certs, Metrics: []MetricsSource{{Part: "MSSP", Gatherer: reg}}}, nil)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	return console, rec
}

// serve mounts the console under /ops/ as `mobileid up` does.
func serve(t *testing.T, c *Console) *httptest.Server {
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", c.Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPages(t *testing.T) {
	c, rec := testConsole(t)
	srv := serve(t, c)
	cmdSeq := rec.Recent(0)[4].Seq
	tests := []struct {
		path string
		code int
		want []string
	}{
		{"/ops/", 200, []string{`<base href="./">`, doneTx, pendingTx, "VALID_SIGNATURE", "command packet · SPI 1639 · KIc 12 · KID 12 · TAR 4d4944",
			"response packet · SPI 1639 · TAR 4d4944 · 48 octets ciphered", `text: &#34;Demo Bank: done. Thank you.&#34;`, "receipt for 1a: DELIVRD",
			`hx-get="fragments/transactions" hx-trigger="every 2000ms"`, `src="static/htmx.min.js"`}},
		{"/ops/fragments/transactions", 200, []string{doneTx, "answered"}},
		{"/ops/fragments/sms", 200, []string{"CNTR 4328719365", "← MO"}},
		{"/ops/transactions/" + doneTx, 200, []string{`<base href="../">`, "counter 5", "delivered to phone", "SMSC → phone", "1350.0 ms", "VALID_SIGNATURE"}},
		{"/ops/transactions/" + pendingTx, 200, []string{`hx-get="fragments/transactions/` + pendingTx + `"`, "None recorded"}},
		{"/ops/fragments/transactions/" + pendingTx, 200, []string{pendingTx}},
		{"/ops/transactions/Tnosuch", 404, []string{"There is no transaction Tnosuch."}},
		{fmt.Sprintf("/ops/sms/%d", cmdSeq), 200, []string{"Secured command packet", "cryptographic checksum (CC)", "AES-CBC, key version 1",
			"AES-CMAC, key version 1", "<code>4d4944</code>", "ciphered", "64 octets, ciphered",
			`<a href="transactions/` + doneTx + `">`, "counter 5"}},
		{"/ops/sms/999", 404, []string{"not recorded"}},
		{"/ops/sms/x", 404, []string{"not recorded"}},
		{"/ops/certificates", 200, []string{"MÄNNIK", "47605030299", "on hold", "certificateHold"}},
		{"/ops/fragments/certificates", 200, []string{"5a02"}},
		{"/ops/metrics", 200, []string{"mobileid_test_finished_total", "status=502", "2 observations, mean 1500.0 ms"}},
		{"/ops/fragments/metrics", 200, []string{"mobileid_test_seconds"}},
		{"/ops/static/ops.css", 200, []string{".badge"}},
		{"/ops/static/htmx.min.js", 200, nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tt.path)
			if resp.StatusCode != tt.code {
				t.Fatalf("GET %s = %d, want %d:\n%s", tt.path, resp.StatusCode, tt.code, body)
			}
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q:\n%s", tt.path, w, body)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
				t.Errorf("GET %s: Content-Security-Policy %q", tt.path, csp)
			}
			if strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
				t.Errorf("GET %s has an inline script or style, which the CSP forbids", tt.path)
			}
		})
	}
	if _, body := get(t, srv.URL+"/ops/metrics"); strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics page shows the Go runtime's metrics")
	}
	resp, err := http.Post(srv.URL+"/ops/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ops/ = %d, want 405", resp.StatusCode)
	}
}

func TestAPITransaction(t *testing.T) {
	c, _ := testConsole(t)
	srv := serve(t, c)
	resp, body := get(t, srv.URL+"/ops/api/transactions/"+doneTx)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET api/transactions/%s = %d %s", doneTx, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var tx struct {
		TransID    string  `json:"trans_id"`
		Status     int     `json:"status"`
		Final      bool    `json:"final"`
		DurationMS float64 `json:"duration_ms"`
		Created    string  `json:"created"`
		Steps      []struct {
			Step, From, To, At string
			ElapsedMS          float64 `json:"elapsed_ms"`
			DeltaMS            float64 `json:"delta_ms"`
		} `json:"steps"`
		SMS []struct {
			Direction string `json:"direction"`
			Time      string `json:"time"`
			Packet    *struct {
				SPI string `json:"spi"`
				TAR string `json:"tar"`
			} `json:"packet"`
		} `json:"sms"`
	}
	if err := json.Unmarshal([]byte(body), &tx); err != nil {
		t.Fatalf("api/transactions/%s: %v\n%s", doneTx, err, body)
	}
	if tx.TransID != doneTx || tx.Status != 502 || !tx.Final || tx.DurationMS != 1350 || tx.Created != "2026-03-01T12:00:00.000Z" {
		t.Errorf("transaction = %+v", tx)
	}
	want := []struct {
		step, from, to, at string
		elapsed, delta     float64
	}{
		{"created", "AP", "MSSP", "2026-03-01T12:00:00.000Z", 0, 0},
		{"submit_sm", "Messaging", "SMSC", "2026-03-01T12:00:00.010Z", 10, 10},
		{"delivered to phone", "SMSC", "phone", "2026-03-01T12:00:00.040Z", 40, 30},
		{"receipt", "SMSC", "Messaging", "2026-03-01T12:00:00.050Z", 50, 10},
		{"delivered", "Messaging", "MSSP", "2026-03-01T12:00:00.060Z", 60, 10},
		{"sent by phone", "phone", "SMSC", "2026-03-01T12:00:01.200Z", 1200, 1140},
		{"deliver_sm", "SMSC", "Messaging", "2026-03-01T12:00:01.210Z", 1210, 10},
		{"answered", "Messaging", "MSSP", "2026-03-01T12:00:01.300Z", 1300, 90},
		{"validated", "MSSP", "AP", "2026-03-01T12:00:01.350Z", 1350, 50},
	}
	if len(tx.Steps) != len(want) {
		t.Fatalf("%d steps, want %d:\n%s", len(tx.Steps), len(want), body)
	}
	for i, w := range want {
		s := tx.Steps[i]
		if s.Step != w.step || s.From != w.from || s.To != w.to || s.At != w.at || s.ElapsedMS != w.elapsed || s.DeltaMS != w.delta {
			t.Errorf("step %d = %+v, want %+v", i, s, w)
		}
	}
	if len(tx.SMS) != 3 || tx.SMS[0].Direction != "MT" || tx.SMS[0].Packet.SPI != "1639" || tx.SMS[2].Direction != "MO" ||
		tx.SMS[2].Packet.TAR != "4d4944" || tx.SMS[0].Time != "2026-03-01T12:00:00.010Z" {
		t.Errorf("SMS of the transaction = %+v, want the command, its receipt and the answer", tx.SMS)
	}
}

func TestAPILists(t *testing.T) {
	c, _ := testConsole(t)
	srv := serve(t, c)
	tests := []struct {
		path string
		code int
		key  string
		n    int
	}{
		{"/ops/api/transactions", 200, "transactions", 2},
		{"/ops/api/transactions?limit=1", 200, "transactions", 1},
		{"/ops/api/transactions?limit=0", 400, "error", 0},
		{"/ops/api/transactions?limit=501", 400, "error", 0},
		{"/ops/api/transactions?limit=x", 400, "error", 0},
		{"/ops/api/transactions/Tnosuch", 404, "error", 0},
		{"/ops/api/sms", 200, "sms", 5},
		{"/ops/api/sms?limit=2", 200, "sms", 2},
		{"/ops/api/certificates", 200, "certificates", 2},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tt.path)
			if resp.StatusCode != tt.code {
				t.Fatalf("GET %s = %d, want %d: %s", tt.path, resp.StatusCode, tt.code, body)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatalf("GET %s: %v", tt.path, err)
			}
			if tt.n > 0 {
				var list []json.RawMessage
				if err := json.Unmarshal(m[tt.key], &list); err != nil || len(list) != tt.n {
					t.Errorf("GET %s: %d %s, want %d", tt.path, len(list), tt.key, tt.n)
				}
			} else if _, ok := m[tt.key]; !ok {
				t.Errorf("GET %s = %s, want %q", tt.path, body, tt.key)
			}
		})
	}
	_, body := get(t, srv.URL+"/ops/api/certificates")
	if !strings.Contains(body, `"reason_name": "certificateHold"`) || !strings.Contains(body, `"status": "on hold"`) {
		t.Errorf("api/certificates lacks the hold and its reason:\n%s", body)
	}
}

// TestNoKeysShown fetches everything the console serves and looks for
// the OTA keys and for the data the packets protect, in every form.
func TestNoKeysShown(t *testing.T) {
	c, rec := testConsole(t)
	srv := serve(t, c)
	paths := []string{"/ops/", "/ops/fragments/transactions", "/ops/fragments/sms", "/ops/certificates", "/ops/metrics",
		"/ops/transactions/" + doneTx, "/ops/transactions/" + pendingTx, "/ops/api/transactions", "/ops/api/transactions/" + doneTx,
		"/ops/api/sms", "/ops/api/certificates"}
	for _, s := range rec.Recent(0) {
		paths = append(paths, fmt.Sprintf("/ops/sms/%d", s.Seq))
	}
	var secrets []string
	for _, b := range [][]byte{testKIc, testKID, testData, testReply} {
		h := hex.EncodeToString(b)
		secrets = append(secrets, string(b), h, strings.ToUpper(h))
	}
	for _, p := range paths {
		resp, body := get(t, srv.URL+p)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", p, resp.StatusCode)
		}
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s shows %q", p, s)
			}
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for _, cfg := range []Config{{Refresh: time.Millisecond}, {ListLimit: 501}} {
		if _, err := New(cfg, Sources{}, nil); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	// A console without sources still serves its pages.
	c, err := New(Config{}, Sources{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, c)
	for _, p := range []string{"/ops/", "/ops/certificates", "/ops/metrics", "/ops/api/sms"} {
		if resp, body := get(t, srv.URL+p); resp.StatusCode != 200 {
			t.Errorf("GET %s without sources = %d: %s", p, resp.StatusCode, body)
		}
	}
}
