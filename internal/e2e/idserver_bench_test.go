package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/idserver"
	"mobileid/internal/mssp"
	"mobileid/internal/registration"
	"mobileid/internal/up"
	"mobileid/internal/vmac"
)

// midBench is the whole platform with an ID Server in front of it, as the
// benchmarks of the MID REST API use it: CA, Registration Server, MSSP,
// Messaging Server, SMSC and handsets on one SQLite database, every user
// registered at the Registration Server, and one relying party.
type midBench struct {
	p     *platform
	reg   *registration.Server
	srv   *idserver.Server
	url   string // of the MID REST API, ending in /mid-api
	users []*midUser
	// polls counts the session status requests being served.
	polls atomic.Int64
	// statusQueries counts the ID Server's MSS_StatusQuery requests.
	statusQueries atomic.Int64
}

// countingMSSP counts the MSS_StatusQuery requests of an ID Server.
type countingMSSP struct {
	idserver.MSSP
	n *atomic.Int64
}

func (c *countingMSSP) Status(ctx context.Context, req *etsi.MSSStatusReq) (*etsi.MSSStatusResp, error) {
	c.n.Add(1)
	return c.MSSP.Status(ctx, req)
}

// midUser is a registered user as a relying party knows them.
type midUser struct {
	phone, nationalID string
	// cert is the authentication certificate, base64 as the API returns
	// it, and key its public key.
	cert string
	key  crypto.PublicKey
	// sessions counts the user's completed sessions.
	sessions atomic.Int64
}

const (
	benchRPUUID = "3c1d2b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	benchRPName = "Bench Bank"
)

// benchNationalID returns the i-th of a series of valid Estonian personal
// codes, and the date of birth it encodes.
func benchNationalID(i int) (string, time.Time) {
	dob := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000)
	ten := fmt.Sprintf("3%s%03d", dob.Format("060102"), i%1000)
	for c := '0'; c <= '9'; c++ {
		if _, err := (registration.PersonalCode{}).Check(ten + string(c)); err == nil {
			return ten + string(c), dob
		}
	}
	panic("no check digit for " + ten)
}

// midOptions are what the benchmarks change of the ID Server's
// production defaults.
type midOptions struct {
	// timeOut is Config.TimeOut; 0 means the default.
	timeOut time.Duration
	// testUser, when set, is found in the directory with the MSSP's test
	// number of that status, e.g. 504 (outstanding until the time-out).
	testUser etsi.Code
}

// testUserID is the national ID of the directory's test number user.
const testUserID = "38001085718"

// testDirectory adds to a directory a person on an MSSP test number.
type testDirectory struct {
	idserver.Directory
	phone string
}

func (d *testDirectory) Find(ctx context.Context, phone string) (*idserver.Person, error) {
	if phone == d.phone {
		return &idserver.Person{Country: "EE", NationalID: testUserID, GivenNames: "TEST", Surname: "NUMBER"}, nil
	}
	return d.Directory.Find(ctx, phone)
}

// newMIDBench builds the platform with phones phones, registers a user on
// each through the Registration Server (keys generated on the SIM, both
// certificates issued by the CA) and starts an ID Server with the
// production defaults, whose MID REST API is served over loopback HTTP.
func newMIDBench(b *testing.B, phones int, opt midOptions) *midBench {
	b.Helper()
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	p := newPlatform(b, phones, platformOptions{ocspMaxAge: time.Minute})
	m := &midBench{p: p}

	// The Registration Server registers every phone's user, many at once.
	reg, err := registration.New(registration.Config{APID: p.apID, APPassword: p.apPwd, RetryPause: 100 * time.Millisecond},
		p.db, p.client, p.ca, nil, logger, logger, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	m.reg = reg
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { reg.Run(rctx) })
	b.Cleanup(func() { cancel(); wg.Wait() })
	list := p.phones()
	begin := time.Now()
	active := func() int {
		return rows(b, p.db, `SELECT COUNT(*) FROM registration_mobileid WHERE state = $1`, registration.StateActive)
	}
	// At most 256 registrations in progress at a time, each holding a
	// connection to the MSSP.
	const inProgress = 256
	sem := make(chan struct{}, 32)
	var failed atomic.Value
	for i, msisdn := range list {
		for i >= inProgress && i%64 == 0 && active() < i-inProgress {
			time.Sleep(20 * time.Millisecond)
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			nid, dob := benchNationalID(i)
			id := identity(msisdn, nid)
			id.DateOfBirth = dob
			if _, err := reg.Register(ctx, officer, id); err != nil {
				failed.Store(fmt.Errorf("Register(%s): %w", msisdn, err))
			}
		})
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Duration(phones)*10*time.Millisecond + time.Minute); active() < phones; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d users registered in time", active(), phones)
		}
	}
	if testing.Verbose() {
		b.Logf("%d users registered in %v", phones, time.Since(begin).Round(time.Second))
	}
	dir := &up.Directory{RS: reg, CA: p.ca}
	for i, msisdn := range list {
		person, err := dir.Find(ctx, msisdn)
		if err != nil {
			b.Fatal(err)
		}
		c, err := x509.ParseCertificate(person.AuthCert)
		if err != nil {
			b.Fatal(err)
		}
		nid, _ := benchNationalID(i)
		m.users = append(m.users, &midUser{phone: msisdn, nationalID: nid, cert: base64.StdEncoding.EncodeToString(c.Raw), key: c.PublicKey})
	}

	// The ID Server, an AP of the MSSP, with one relying party.
	const apID, apPwd = "http://idserver.example/mid", "idserver-secret-1"
	if err := p.aps.Add(ctx, mssp.APConfig{AP: mssp.AP{ID: apID, Name: "Mobile ID"}, Password: apPwd}); err != nil {
		b.Fatal(err)
	}
	rps, err := idserver.NewRPs(p.db, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	if err := rps.Add(ctx, idserver.RPConfig{UUID: benchRPUUID, RP: idserver.RP{Name: benchRPName,
		Services: []idserver.Service{idserver.ServiceAuthentication, idserver.ServiceSignature}}}); err != nil {
		b.Fatal(err)
	}
	// Enough connections to the MSSP that requests seldom wait for one,
	// and a bound, for when thousands of sessions poll.
	msspHTTP := p.httpClient(nil)
	tr := msspHTTP.Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = 256, 256
	// The ID Server's errors and warnings are shown: a benchmark has none.
	warnings := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var directory idserver.Directory = dir
	if opt.testUser != 0 {
		directory = &testDirectory{Directory: dir, phone: testMSISDN(opt.testUser)}
	}
	m.srv, err = idserver.New(idserver.Config{
		APID: apID, APPassword: apPwd,
		Roots: pool(p.keys.Root), Intermediates: pool(p.keys.Issuing),
		TimeOut: opt.timeOut,
	}, p.db, rps, directory, &countingMSSP{MSSP: &etsiclient.Client{BaseURL: p.url, HTTP: msspHTTP}, n: &m.statusQueries}, warnings, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	api := m.srv.Handler()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/session/") {
			m.polls.Add(1)
			defer m.polls.Add(-1)
		}
		api.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	m.url = "http://" + ln.Addr().String() + "/mid-api"
	sctx, stop := context.WithCancel(ctx)
	var swg sync.WaitGroup
	swg.Go(func() { m.srv.Run(sctx) })
	b.Cleanup(func() {
		hs.Close()
		stop()
		swg.Wait()
	})
	return m
}

// rpClient returns an HTTP client for relying parties that keeps a
// connection per concurrent caller.
func rpClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxIdleConns: conns}, Timeout: 3 * time.Minute}
}

// midStatus is the answer to GET …/session/{id}.
type midStatus struct {
	State     string `json:"state"`
	Result    string `json:"result"`
	Signature *struct {
		Value     string `json:"value"`
		Algorithm string `json:"algorithm"`
	} `json:"signature"`
	Cert  string `json:"cert"`
	Error string `json:"error"`
}

// startSession starts an authentication of u over hash and returns the
// session ID.
func (m *midBench) startSession(c *http.Client, u *midUser, hash []byte) (string, error) {
	body := `{"relyingPartyUUID":"` + benchRPUUID + `","relyingPartyName":"` + benchRPName + `","phoneNumber":"` + u.phone +
		`","nationalIdentityNumber":"` + u.nationalID + `","hash":"` + base64.StdEncoding.EncodeToString(hash) +
		`","hashType":"SHA256","language":"ENG","displayText":"Log in to the bank?"}`
	resp, err := c.Post(m.url+"/authentication", "application/json", strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("POST /authentication for %s: %w", u.phone, err)
	}
	defer resp.Body.Close()
	var out struct {
		SessionID string `json:"sessionID"`
	}
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &out); err != nil || resp.StatusCode != http.StatusOK || out.SessionID == "" {
		return "", fmt.Errorf("POST /authentication for %s = %d %s", u.phone, resp.StatusCode, data)
	}
	return out.SessionID, nil
}

// poll long-polls a session once.
func (m *midBench) poll(c *http.Client, id string, timeout time.Duration) (*midStatus, error) {
	resp, err := c.Get(m.url + "/authentication/session/" + id + "?timeoutMs=" + fmt.Sprint(timeout.Milliseconds()))
	if err != nil {
		return nil, fmt.Errorf("GET session %s: %w", id, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var st midStatus
	if err := json.Unmarshal(data, &st); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET session %s = %d %s", id, resp.StatusCode, data)
	}
	return &st, nil
}

// check checks a completed authentication as a relying party does: the
// result is OK and the certificate is the user's; with verify, the
// signature is also verified over the hash with its key.
func (u *midUser) check(st *midStatus, hash []byte, verify bool) error {
	if st.State != idserver.StateComplete || st.Result != idserver.ResultOK || st.Signature == nil {
		return fmt.Errorf("authentication of %s = %+v, want COMPLETE OK", u.phone, st)
	}
	if st.Cert != u.cert {
		return fmt.Errorf("authentication of %s: cert is not the user's authentication certificate", u.phone)
	}
	sig, err := base64.StdEncoding.DecodeString(st.Signature.Value)
	if err != nil || len(sig) != 64 {
		return fmt.Errorf("authentication of %s: signature value %q: %v", u.phone, st.Signature.Value, err)
	}
	if !verify {
		return nil
	}
	if err := vmac.VerifyDigest(u.key, crypto.SHA256, hash, sig); err != nil {
		return fmt.Errorf("authentication of %s: signature does not verify: %w", u.phone, err)
	}
	return nil
}

// verifyEvery is how often the relying parties verify a signature
// themselves in the measured runs: the ID Server has verified it, and
// the relying parties share the platform's two cores here, where they
// would not in the field. Each user's first (warm-up) signature is
// verified.
const verifyEvery = 16

// authenticate runs one authentication of u as a relying party does:
// start it, then long-poll until it is complete, and check the answer.
func (m *midBench) authenticate(c *http.Client, u *midUser) error {
	hash := make([]byte, 32)
	rand.Read(hash)
	id, err := m.startSession(c, u, hash)
	if err != nil {
		return err
	}
	for {
		st, err := m.poll(c, id, 30*time.Second)
		if err != nil {
			return err
		}
		if st.State == idserver.StateRunning {
			continue
		}
		return u.check(st, hash, u.sessions.Add(1)%verifyEvery == 1)
	}
}

// BenchmarkMIDAuthentication measures complete authentications through
// the MID REST API: a relying party's POST /authentication over loopback
// HTTP → ID Server (session stored) → directory (Registration Server and
// CA) → MSS_Signature in asynchClientServer mode over HTTPS → MSSP → OTA
// → SMPP → SMSC → handset that approves at once → SIM signs → back →
// MSSP validation → MSS_StatusQuery → the ID Server's own validation
// (certificate against the directory, signature, chain, OCSP) → session
// COMPLETE → the relying party's long poll answered, and checked. One
// session per phone at a time, as the MSSP allows; the ID Server runs
// with its production defaults (status queries every second). It reports
// sessions per second.
func BenchmarkMIDAuthentication(b *testing.B) {
	// The MSSP's garbage collector target, as in BenchmarkMSSPSignature.
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	for _, phones := range []int{1024} {
		// The platform is built and warmed up once, for the benchmark's
		// first run (b.N = 1) and the one that counts: registering a
		// thousand users takes a while.
		var (
			m *midBench
			c *http.Client
		)
		parent := b
		b.Run(fmt.Sprintf("phones=%d", phones), func(b *testing.B) {
			if m == nil {
				m, c = newMIDBench(parent, phones, midOptions{}), rpClient(phones)
				m.warmUp(b, c)
			}
			var next, failures atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			cpu0, queries0 := cpuTime(), m.statusQueries.Load()
			start := time.Now()
			if b.N > 1 {
				defer startProfile(b)()
			}
			for _, u := range m.users {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := m.authenticate(c, u); err != nil {
							if failures.Add(1) == 1 {
								b.Error(err)
							}
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			rate := float64(b.N) / time.Since(start).Seconds()
			cpu := float64((cpuTime() - cpu0).Microseconds()) / 1000 / float64(b.N)
			queries := float64(m.statusQueries.Load()-queries0) / float64(b.N)
			b.ReportMetric(rate, "sessions/s")
			b.ReportMetric(cpu, "cpu-ms/session")
			b.ReportMetric(queries, "status-queries/session")
			if n := failures.Load(); n > 0 {
				b.Errorf("%d of %d sessions failed", n, b.N)
			}
			if testing.Verbose() {
				b.Logf("%d sessions: %.1f sessions/s, %.2f ms of CPU and %.2f MSS_StatusQuery each", b.N, rate, cpu, queries)
				m.logTimes(b, start)
			}
		})
	}
}

// warmUp runs an authentication for every user, so that connections,
// OCSP answers and prepared statements are ready: the first alone, for
// the MSSP's check of the ID Server's password, which it then caches,
// and the others a few at a time, lest the first OCSP requests of the
// MSSP and of the ID Server all meet at the responder.
func (m *midBench) warmUp(b *testing.B, c *http.Client) {
	b.Helper()
	if err := m.authenticate(c, m.users[0]); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, u := range m.users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := m.authenticate(c, u); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// logTimes logs where the sessions' time went: from the session's start
// to the MSSP's acceptance, the phone's answer and the MSSP's end, and to
// the session's end.
func (m *midBench) logTimes(b *testing.B, since time.Time) {
	var accepted, answered, msspDone, done float64
	err := m.p.db.QueryRow(`SELECT AVG(t.created_at - s.created_at), AVG(t.answered_at - s.created_at), AVG(t.finished_at - s.created_at),
			AVG(s.finished_at - s.created_at)
		FROM idserver_sessions s JOIN mssp_tx t ON t.trans_id = s.mssp_trans_id
		WHERE s.state = $1 AND t.answered_at > 0 AND s.created_at >= $2`, idserver.StateComplete, since.UnixMicro()).Scan(&accepted, &answered, &msspDone, &done)
	if err != nil {
		b.Logf("session times: %v", err)
		return
	}
	b.Logf("after the session's start: MSSP accepted %.1f ms, phone answered %.1f ms, MSSP done %.1f ms, session done %.1f ms",
		accepted/1000, answered/1000, msspDone/1000, done/1000)
}

// profileEnv names a file for a CPU profile of what the benchmarks of the
// MID REST API measure, without the setup that -cpuprofile includes.
const profileEnv = "MOBILEID_BENCH_CPUPROFILE"

// startProfile starts the CPU profile profileEnv asks for, if any, and
// returns the function that ends it.
func startProfile(b *testing.B) (stop func()) {
	name := os.Getenv(profileEnv)
	if name == "" {
		return func() {}
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// cpuTime returns the CPU time the process has used, in user and kernel
// mode: the whole platform and the relying parties, which share the
// machine's cores.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// longPollJobEnv names the job file of the process that plays the
// relying parties' clients in BenchmarkMIDLongPolls.
const longPollJobEnv = "MOBILEID_BENCH_LONGPOLL_JOB"

// longPollJob is what the clients' process is to do.
type longPollJob struct {
	URL        string `json:"url"`
	Phone      string `json:"phone"`
	NationalID string `json:"nationalID"`
	Sessions   int    `json:"sessions"`
	// TimeoutMs is the timeoutMs of every long poll.
	TimeoutMs int `json:"timeoutMs"`
}

// longPollSummary is what the clients' process reports at the end: how
// many clients got an answer, and which.
type longPollSummary struct {
	Answers  int            `json:"answers"`
	Results  map[string]int `json:"results"`
	Errors   []string       `json:"errors"`
	Requests int64          `json:"requests"`
}

// memStats is the process's memory and goroutines at one time, after a
// garbage collection that returned what it could to the system.
type memStats struct {
	heap, rss  uint64
	goroutines int
}

func measureMem() memStats {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := memStats{heap: ms.HeapAlloc, goroutines: runtime.NumGoroutine()}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &m.rss)
				m.rss *= 1024
			}
		}
	}
	return m
}

// per returns the growth from a to b per item, in bytes and goroutines.
func (b memStats) per(a memStats, n int) (heap, rss, goroutines float64) {
	return (float64(b.heap) - float64(a.heap)) / float64(n), (float64(b.rss) - float64(a.rss)) / float64(n),
		float64(b.goroutines-a.goroutines) / float64(n)
}

// BenchmarkMIDLongPolls holds 10,000 long polls open at once: 10,000
// authentication sessions that stay RUNNING, each with a relying party's
// client waiting in GET …/session/{id}?timeoutMs=120000 on a connection
// of its own. It reports the memory and goroutines each running session
// and each held poll cost the process, and the CPU the process spends
// while they wait; then the sessions end with their time-out and every
// client must have had exactly one answer, TIMEOUT.
//
// The sessions are for the MSSP's test number +9990092504, which the
// MSSP keeps outstanding until the time-out, as it would a phone whose
// user never answers: 10,000 handsets would keep 10,000 card state files
// open beside the 10,000 connections, more than the 20,000 descriptors
// a process may have here. For the same reason the clients run in a
// process of their own (this test binary again). The ID Server's
// time-out is shortened to a minute (Config.TimeOut) so that the
// sessions end within the clients' 120 s.
func BenchmarkMIDLongPolls(b *testing.B) {
	if job := os.Getenv(longPollJobEnv); job != "" {
		runLongPollClients(b, job)
		return
	}
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	const sessions = 10000
	m := newMIDBench(b, 2, midOptions{timeOut: time.Minute, testUser: etsi.CodeOutstandingTransaction})
	// One session first: the MSSP verifies the ID Server's password once
	// and then remembers it, but requests that arrive while it verifies
	// each verify it again.
	if err := m.authenticate(rpClient(1), m.users[0]); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	job := longPollJob{URL: m.url, Phone: testMSISDN(etsi.CodeOutstandingTransaction), NationalID: testUserID,
		Sessions: sessions, TimeoutMs: 120000}
	jobFile := dir + "/job.json"
	data, _ := json.Marshal(job)
	if err := os.WriteFile(jobFile, data, 0o600); err != nil {
		b.Fatal(err)
	}

	// The clients' process: commands on its descriptor 3, reports on 4.
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkMIDLongPolls$", "-test.benchtime=1x")
	child.Env = append(os.Environ(), longPollJobEnv+"="+jobFile)
	child.ExtraFiles = []*os.File{cmdR, repW}
	var childOut bytes.Buffer
	child.Stdout, child.Stderr = &childOut, &childOut
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	cmdR.Close()
	repW.Close()
	defer func() {
		cmdW.Close()
		if err := child.Wait(); err != nil {
			b.Errorf("clients' process: %v\n%s", err, childOut.Bytes())
		}
	}()
	reports := bufio.NewScanner(repR)
	reports.Buffer(nil, 1<<20)
	expect := func(what string) string {
		b.Helper()
		if !reports.Scan() {
			b.Fatalf("clients' process ended before %s: %s", what, childOut.Bytes())
		}
		line := reports.Text()
		if !strings.HasPrefix(line, what) {
			b.Fatalf("clients' process said %q, want %s", line, what)
		}
		return strings.TrimSpace(strings.TrimPrefix(line, what))
	}
	command := func(c string) { fmt.Fprintln(cmdW, c) }

	b.ResetTimer()
	base := measureMem()
	begin := time.Now()
	command("start")
	expect("started")
	started := time.Since(begin)
	// Every session waits for the user once the MSSP has accepted its
	// request.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		n := rows(b, m.p.db, `SELECT COUNT(*) FROM idserver_sessions WHERE state = $1 AND mssp_trans_id <> ''`, idserver.StateRunning)
		if n == sessions {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sessions accepted by the MSSP after a minute", n, sessions)
		}
	}
	running := measureMem()

	command("poll")
	for deadline := time.Now().Add(30 * time.Second); m.polls.Load() < sessions; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d polls held after 30 s", m.polls.Load(), sessions)
		}
	}
	held := measureMem()
	// What waiting costs: the process's CPU, and the MSS_StatusQuery
	// requests, over 10 s while every poll is held.
	cpu0, queries0, t0 := cpuTime(), m.statusQueries.Load(), time.Now()
	stop := startProfile(b)
	time.Sleep(10 * time.Second)
	stop()
	waitCPU := (cpuTime() - cpu0).Seconds() / time.Since(t0).Seconds()
	waitQueries := float64(m.statusQueries.Load()-queries0) / time.Since(t0).Seconds()
	if n := m.polls.Load(); n != sessions {
		b.Errorf("%d polls held after the wait, want %d", n, sessions)
	}

	var sum longPollSummary
	if err := json.Unmarshal([]byte(expect("done")), &sum); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if sum.Answers != sessions || sum.Results[idserver.ResultTimeout] != sessions || len(sum.Errors) > 0 {
		b.Errorf("clients' answers: %d, results %v, errors %v; want %d TIMEOUT", sum.Answers, sum.Results, sum.Errors, sessions)
	}
	if sum.Requests != 2*sessions {
		b.Errorf("clients sent %d requests, want %d: a start and one poll each", sum.Requests, 2*sessions)
	}
	sessHeap, sessRSS, sessG := running.per(base, sessions)
	pollHeap, pollRSS, pollG := held.per(running, sessions)
	b.ReportMetric(pollHeap/1024, "heap-KiB/poll")
	b.ReportMetric(pollRSS/1024, "rss-KiB/poll")
	b.ReportMetric(pollG, "goroutines/poll")
	b.ReportMetric(sessHeap/1024, "heap-KiB/session")
	b.ReportMetric(waitCPU, "cpus-waiting")
	b.ReportMetric(waitQueries, "status-queries/s")
	if testing.Verbose() {
		b.Logf("%d sessions started in %v", sessions, started.Round(time.Millisecond))
		b.Logf("each running session: %.1f KiB heap, %.1f KiB RSS, %.2f goroutines", sessHeap/1024, sessRSS/1024, sessG)
		b.Logf("each held poll: %.1f KiB heap, %.1f KiB RSS, %.2f goroutines", pollHeap/1024, pollRSS/1024, pollG)
		b.Logf("while %d polls were held: %.2f CPUs busy, %.0f MSS_StatusQuery/s", sessions, waitCPU, waitQueries)
		b.Logf("process with the polls held: heap %d MiB, RSS %d MiB, %d goroutines", held.heap>>20, held.rss>>20, held.goroutines)
	}
}

// runLongPollClients is the clients' process of BenchmarkMIDLongPolls:
// on "start" it starts the sessions, on "poll" it long-polls each on a
// connection of its own, and when every poll has been answered it
// reports the answers.
func runLongPollClients(b *testing.B, jobFile string) {
	data, err := os.ReadFile(jobFile)
	if err != nil {
		b.Fatal(err)
	}
	var job longPollJob
	if err := json.Unmarshal(data, &job); err != nil {
		b.Fatal(err)
	}
	commands := bufio.NewScanner(os.NewFile(3, "commands"))
	reports := os.NewFile(4, "reports")
	await := func(c string) {
		if !commands.Scan() || commands.Text() != c {
			b.Fatalf("command %q, want %q", commands.Text(), c)
		}
	}
	// A connection per client: each held poll keeps one busy.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: job.Sessions, MaxIdleConns: job.Sessions}, Timeout: 3 * time.Minute}
	m := &midBench{url: job.URL}
	user := &midUser{phone: job.Phone, nationalID: job.NationalID}
	var requests atomic.Int64

	await("start")
	ids := make([]string, job.Sessions)
	var wg sync.WaitGroup
	var failed atomic.Value
	sem := make(chan struct{}, 64)
	for i := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			hash := make([]byte, 32)
			rand.Read(hash)
			requests.Add(1)
			id, err := m.startSession(client, user, hash)
			if err != nil {
				failed.Store(err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	fmt.Fprintln(reports, "started")

	await("poll")
	var (
		mu  sync.Mutex
		sum = longPollSummary{Results: map[string]int{}}
	)
	for _, id := range ids {
		// At most 256 requests on their way at a time, so that the
		// server's accept queue does not overflow; each waits for its
		// answer without holding a place.
		sem <- struct{}{}
		var once sync.Once
		release := func() { once.Do(func() { <-sem }) }
		wg.Go(func() {
			defer release()
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				WroteRequest: func(httptrace.WroteRequestInfo) { release() },
			})
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/authentication/session/%s?timeoutMs=%d", job.URL, id, job.TimeoutMs), nil)
			requests.Add(1)
			resp, err := client.Do(req)
			var st midStatus
			if err == nil {
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err = json.Unmarshal(data, &st); err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d %s", resp.StatusCode, data)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if len(sum.Errors) < 5 {
					sum.Errors = append(sum.Errors, fmt.Sprintf("GET session %s: %v", id, err))
				}
				return
			}
			sum.Answers++
			if st.State == idserver.StateComplete {
				sum.Results[st.Result]++
			} else {
				sum.Results[st.State]++
			}
		})
	}
	wg.Wait()
	sum.Requests = requests.Load()
	out, _ := json.Marshal(sum)
	fmt.Fprintf(reports, "done %s\n", out)
}
