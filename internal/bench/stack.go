package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/handset"
	"mobileid/internal/registration"
	"mobileid/internal/up"
)

// phone is a registered Mobile ID user the bench can ask.
type phone struct {
	MSISDN     string
	NationalID string
}

// Identities of the bench's relying party in process. The demo bank's
// OpenID Connect client and MID account serve the MID and CIBA modes in
// both kinds of stack.
const (
	benchAPID    = "http://mobileid.dev/bench"
	benchAPName  = "Bench"
	bankName     = "Demo Bank"
	bankClientID = "demo-bank"
)

// stack is the platform under load: started in this process, or a
// running `mobileid up` reached over its public interfaces.
type stack struct {
	name      string // "in-process" or the console's URL
	inProcess bool
	urls      up.URLs
	phones    []phone

	// The AP that ETSI requests come from: the bench's own AP at the MSSP
	// in process, the demo bank through the ID Server's pass-through
	// against a deployment.
	etsi         *etsiclient.Client
	apID, apPWD  string
	msspMetrics  *http.Client // trusts the MSSP's certificate; nil if unknown
	rpUUID       string       // the demo bank's relyingPartyUUID: MID account and OIDC client secret
	http         *http.Client // MID, CIBA, consoles
	console      string       // the console's base URL, without the final slash
	officer      string       // the desk officer's password
	setBehaviour func(ctx context.Context, phones []phone, b string) error
	// cpu returns the CPU seconds the platform has used so far.
	cpu func(ctx context.Context) (float64, error)
	// stop stops an in-process platform; it may be called again.
	stop func()
}

// clientTransport returns a transport for conns concurrent requests.
func clientTransport(conns int, tlsCfg *tls.Config) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = max(conns, 2)
	tr.TLSClientConfig = tlsCfg
	return tr
}

// anyPorts has the system listen on free loopback ports.
var anyPorts = up.Addrs{
	Console: "127.0.0.1:0", SMPP: "127.0.0.1:0", Phones: "127.0.0.1:0", CA: "127.0.0.1:0",
	MSSP: "127.0.0.1:0", Registration: "127.0.0.1:0", IDServer: "127.0.0.1:0", Bank: "127.0.0.1:0",
}

// startInProcess starts the whole platform in a new data directory with
// n phones of its own (besides the demo people's), registers each of them
// through the Registration Server with keys of type key, and registers
// the bench as an AP of the MSSP. The platform logs to logger, if not nil.
func startInProcess(ctx context.Context, n, conns int, key KeyType, logger *slog.Logger, logf func(string, ...any)) (st *stack, err error) {
	dir, err := os.MkdirTemp("", "mobileid-bench-")
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	logf("starting the platform in %s with %d phones", dir, n)
	begun := time.Now()
	sys, err := up.Start(ctx, up.Config{DataDir: dir, Addrs: anyPorts, Phones: n + 3, Logger: logger})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			sys.Stop(sctx)
			os.RemoveAll(dir)
		})
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	logf("started in %.1f s", time.Since(begun).Seconds())
	if key == KeyRSA {
		sys.RS.SetKeyAlgorithm(etsi.KeyAlgRSA2048)
	}
	demo := map[string]bool{}
	for _, p := range sys.People {
		demo[p.MSISDN] = true
	}
	var numbers []string
	for _, p := range sys.Phones.Phones() {
		if !demo[p.MSISDN()] {
			numbers = append(numbers, p.MSISDN())
		}
	}
	begun = time.Now()
	logf("registering %d people at the desk, one on each phone", len(numbers))
	phones, err := registerPhones(ctx, sys, numbers, logf)
	if err != nil {
		return nil, err
	}
	logf("registered %d phones (%s keys) in %.1f s", len(phones), key.label(), time.Since(begun).Seconds())

	apPWD := randomHex(16)
	if err := sys.AddAP(ctx, benchAPID, benchAPName, apPWD); err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(sys.MSSPCertFile())
	if err != nil {
		return nil, fmt.Errorf("MSSP certificate: %w", err)
	}
	pool, err := certPoolPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("MSSP certificate: %w", err)
	}
	tlsCfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &stack{
		name: "in-process", inProcess: true, urls: sys.URLs, phones: phones,
		etsi: &etsiclient.Client{BaseURL: sys.URLs.MSSP, HTTP: &http.Client{Transport: clientTransport(conns, tlsCfg)}},
		apID: benchAPID, apPWD: apPWD,
		msspMetrics: &http.Client{Timeout: 10 * time.Second, Transport: clientTransport(2, tlsCfg)},
		rpUUID:      sys.BankRPUUID,
		http:        &http.Client{Transport: clientTransport(conns, nil)},
		console:     strings.TrimSuffix(sys.URLs.Console, "/"),
		officer:     sys.OfficerPassword,
		setBehaviour: func(_ context.Context, phones []phone, s string) error {
			b, err := handset.ParseBehaviour(s)
			if err != nil {
				return err
			}
			for _, p := range phones {
				if ph, ok := sys.Phones.Phone(p.MSISDN); ok {
					ph.SetBehaviour(b)
				}
			}
			return nil
		},
		cpu:  func(context.Context) (float64, error) { u, s := processCPU(); return u + s, nil },
		stop: stop,
	}, nil
}

// registerPhones registers a person on each number at the desk, as its
// officer, and waits until every registration has ended. The phones'
// users approve at once and choose their scripted PINs.
func registerPhones(ctx context.Context, sys *up.System, numbers []string, logf func(string, ...any)) ([]phone, error) {
	officer, err := sys.RS.Login(ctx, "officer", sys.OfficerPassword)
	if err != nil {
		return nil, fmt.Errorf("registration: officer: %w", err)
	}
	for _, m := range numbers {
		if ph, ok := sys.Phones.Phone(m); ok {
			ph.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		}
	}
	phones := make([]phone, len(numbers))
	ids := make([]int64, len(numbers))
	expires := time.Now().AddDate(4, 0, 0).UTC().Truncate(24 * time.Hour)
	// The desk records a registration in one database transaction; the
	// Registration Server then runs all of them at once.
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 8)
		mu   sync.Mutex
		ferr error
	)
	for i, m := range numbers {
		nid, dob := benchNationalID(i)
		phones[i] = phone{MSISDN: m, NationalID: nid}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			mid, err := sys.RS.Register(ctx, *officer, registration.Identity{
				Person: registration.Person{GivenNames: "Bench", Surname: "Tester", Country: "EE", NationalID: nid, DateOfBirth: dob},
				Document: registration.Document{Type: registration.IDCard, Number: fmt.Sprintf("BT%07d", i), Issuer: "EE",
					Expires: expires},
				MSISDN: m,
			})
			if err != nil {
				mu.Lock()
				ferr = errors.Join(ferr, fmt.Errorf("register %s: %w", m, err))
				mu.Unlock()
				return
			}
			ids[i] = mid.ID
		})
	}
	wg.Wait()
	if ferr != nil {
		return nil, fmt.Errorf("registration: %w", ferr)
	}
	// Wait for the flows: keys on the SIM, certificates, binding.
	deadline := time.Now().Add(5*time.Minute + time.Duration(len(numbers))*20*time.Millisecond)
	left := ids
	lastLog := time.Now()
	for len(left) > 0 {
		var still []int64
		for _, id := range left {
			m, err := sys.RS.Get(ctx, id)
			if err != nil {
				return nil, fmt.Errorf("registration: %w", err)
			}
			switch m.State {
			case registration.StateActive:
			case registration.StateRegistering:
				still = append(still, id)
			default:
				return nil, fmt.Errorf("registration of %s ended %s: %s", m.MSISDN, m.State, m.Status)
			}
		}
		left = still
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("registration: %d of %d not done in time", len(left), len(ids))
		}
		if time.Since(lastLog) > 5*time.Second {
			logf("registering: %d of %d done", len(ids)-len(left), len(ids))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return phones, nil
}

// benchNationalID returns the i-th bench person's Estonian personal code
// (a woman born in the 1960s; valid check digit) and date of birth. Up to
// 1000 people share a birthday, told apart by the serial number.
func benchNationalID(i int) (string, time.Time) {
	dob := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000)
	ten := fmt.Sprintf("4%02d%02d%02d%03d", dob.Year()%100, int(dob.Month()), dob.Day(), i%1000)
	return ten + strconv.Itoa(personalCodeCheckDigit(ten)), dob
}

// personalCodeCheckDigit is the check digit of an Estonian personal
// code's first ten digits (EVS 585).
func personalCodeCheckDigit(ten string) int {
	sum := func(first int) int {
		s := 0
		for i := range 10 {
			w := (first+i-1)%9 + 1
			s += int(ten[i]-'0') * w
		}
		return s % 11
	}
	if r := sum(1); r != 10 {
		return r
	}
	if r := sum(3); r != 10 {
		return r
	}
	return 0
}

// connectTarget reaches a running `mobileid up` through its console (the
// URLs and phone numbers it serves) and the credentials in its data
// directory, and finds the phones with an active Mobile ID at the desk.
func connectTarget(ctx context.Context, console, dataDir string, conns int, logf func(string, ...any)) (*stack, error) {
	creds, err := up.ReadCredentials(dataDir)
	if err != nil {
		return nil, err
	}
	st := &stack{
		name: console, console: strings.TrimSuffix(console, "/"),
		http: &http.Client{Transport: clientTransport(conns, nil), Timeout: 15 * time.Minute},
		apID: up.BankAPID, apPWD: creds.BankRPUUID, rpUUID: creds.BankRPUUID, officer: creds.OfficerPassword,
		stop: func() {},
	}
	if err := st.getJSON(ctx, st.console+"/api/urls", &st.urls); err != nil {
		return nil, fmt.Errorf("is mobileid up running at %s? %w", console, err)
	}
	st.etsi = &etsiclient.Client{BaseURL: st.urls.Issuer, HTTP: st.http}
	if certPEM, err := os.ReadFile(filepath.Join(dataDir, "mssp-tls.crt")); err == nil {
		if pool, err := certPoolPEM(certPEM); err == nil {
			st.msspMetrics = &http.Client{Timeout: 10 * time.Second, Transport: clientTransport(2, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})}
		}
	}
	var numbers []string
	if err := st.getJSON(ctx, st.console+"/api/phones", &numbers); err != nil {
		return nil, err
	}
	found := make([]*phone, len(numbers))
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 16)
		mu   sync.Mutex
		ferr error
	)
	for i, m := range numbers {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var res struct {
				MobileIDs []struct {
					MSISDN string `json:"msisdn"`
					State  string `json:"state"`
					Person struct {
						NationalID string `json:"national_id"`
					} `json:"person"`
				} `json:"mobileids"`
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(st.urls.RegistrationAPI, "/")+"/mobileids?q="+url.QueryEscape(m), nil)
			req.SetBasicAuth("officer", st.officer)
			if err := st.do(req, &res); err != nil {
				mu.Lock()
				ferr = err
				mu.Unlock()
				return
			}
			for _, r := range res.MobileIDs {
				if r.MSISDN == m && r.State == registration.StateActive {
					found[i] = &phone{MSISDN: m, NationalID: r.Person.NationalID}
				}
			}
		})
	}
	wg.Wait()
	if ferr != nil {
		return nil, fmt.Errorf("the desk's API: %w", ferr)
	}
	for _, p := range found {
		if p != nil {
			st.phones = append(st.phones, *p)
		}
	}
	logf("%s: %d of %d phones have an active Mobile ID", console, len(st.phones), len(numbers))
	st.setBehaviour = func(ctx context.Context, phones []phone, b string) error {
		for _, p := range phones {
			u := st.urls.Phones + "phone/" + strings.TrimPrefix(p.MSISDN, "+") + "/behaviour"
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(url.Values{"b": {b}}.Encode()))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := st.do(req, nil); err != nil {
				return fmt.Errorf("phone %s: %w", p.MSISDN, err)
			}
		}
		return nil
	}
	st.cpu = func(ctx context.Context) (float64, error) {
		m, err := st.metrics(ctx, st.http, st.console+"/metrics")
		if err != nil {
			return 0, err
		}
		v, ok := m["process_cpu_seconds_total"]
		if !ok {
			return 0, errors.New("the console's metrics have no process_cpu_seconds_total")
		}
		return v, nil
	}
	return st, nil
}

// getJSON gets u and decodes its JSON answer into out.
func (st *stack) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return st.do(req, out)
}

// do sends req and decodes a 2xx JSON answer into out, if not nil.
func (st *stack) do(req *http.Request, out any) error {
	resp, err := st.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// metrics reads a Prometheus text exposition into a map from the series
// (name and labels as written) to its value.
func (st *stack) metrics(ctx context.Context, c *http.Client, u string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s answered %s", u, resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the samples of a Prometheus text exposition.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sumMetric adds the samples of name whose labels include every one of
// labels (each written as `key="value"`).
func sumMetric(m map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for k, v := range m {
		series, rest, _ := strings.Cut(k, "{")
		if series != name {
			continue
		}
		all := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				all = false
				break
			}
		}
		if all {
			sum += v
		}
	}
	return sum
}

func certPoolPEM(b []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("no certificate")
	}
	return pool, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
