package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"
)

// Mode is the kind of transaction the bench drives.
type Mode string

// The modes.
const (
	// ModeETSISynch is ETSI TS 102 204 MSS_Signature in synch mode.
	ModeETSISynch Mode = "etsi-synch"
	// ModeETSIAsync is MSS_Signature in asynchClientServer mode, then
	// MSS_StatusQuery every Config.Poll until the end.
	ModeETSIAsync Mode = "etsi-async"
	// ModeMID is a MID REST authentication: POST /authentication and long
	// polls of the session.
	ModeMID Mode = "mid"
	// ModeCIBA is an OpenID Connect CIBA authentication in poll mode.
	ModeCIBA Mode = "ciba"
)

// Modes lists the modes.
func Modes() []Mode { return []Mode{ModeETSISynch, ModeETSIAsync, ModeMID, ModeCIBA} }

// KeyType is the type of the users' keys.
type KeyType string

// The key types the SIM makes.
const (
	KeyECDSA KeyType = "ecdsa" // ECDSA P-256, the default
	KeyRSA   KeyType = "rsa"   // RSA-2048
)

func (k KeyType) label() string {
	if k == KeyRSA {
		return "RSA-2048"
	}
	return "ECDSA P-256"
}

// Format is the signature format the ETSI modes ask for.
type Format string

// The formats.
const (
	FormatPKCS1 Format = "pkcs1" // the raw signature and the certificate (FiCom PKCS1)
	FormatCMS   Format = "cms"   // CMS SignedData (CAdES-BES)
)

// Pending transactions are held by one of these.
const (
	// PendingPhones holds them on registered phones whose users never
	// answer: each goes through the whole OTA path.
	PendingPhones = "phones"
	// PendingTestNumber holds them on the MSSP's test number +9990092504,
	// which answers nothing until the time-out: no SIM, no SMS.
	PendingTestNumber = "test-number"
)

// pendingNumber is the MSSP's test number whose transactions stay
// outstanding until their time-out (docs/mssp.md).
const pendingNumber = "+9990092504"

// Config is a run of the bench.
type Config struct {
	// Mode is the kind of transaction.
	Mode Mode
	// Target is the console URL of a running `mobileid up` to drive, and
	// DataDir its data directory (for the credentials). Empty Target
	// starts the platform in this process, in a temporary directory.
	Target, DataDir string
	// Phones is how many phones the in-process platform registers;
	// against a target, at most this many of its registered phones are
	// used (0: all). Default 64 in process.
	Phones int
	// Concurrency is the number of workers of a closed loop, each with a
	// phone of its own; 0 means one per phone. Ignored with Rate.
	Concurrency int
	// Rate, when > 0, makes an open loop of Rate transactions per second,
	// Poisson arrivals unless Fixed.
	Rate  float64
	Fixed bool
	// Duration is the measured time, after Warmup.
	Duration, Warmup time.Duration
	// Think is how long the phones' users take at each question.
	Think time.Duration
	// Key is the users' key type.
	Key KeyType
	// Format is the ETSI modes' signature format.
	Format Format
	// Poll is the MSS_StatusQuery interval of etsi-async. Default 100 ms.
	Poll time.Duration
	// TimeOut is the transaction time-out the ETSI requests ask for.
	// Default 60 s.
	TimeOut time.Duration
	// FloorTime is how long the crypto floor is measured; default 3 s,
	// negative skips it.
	FloorTime time.Duration
	// Pending, when > 0, runs the pending-load test instead of a load:
	// that many asynchClientServer transactions that are never
	// answered, held until PendingTimeOut (default 30 s, at least 10 s)
	// by PendingVia (PendingPhones or PendingTestNumber, the default).
	Pending        int
	PendingVia     string
	PendingTimeOut time.Duration
	// CPUProfile and MemProfile are files for the CPU and heap profiles
	// of the measured window; empty means none.
	CPUProfile, MemProfile string
	// Progress receives the progress lines; nil discards them.
	Progress io.Writer
	// Log receives the in-process platform's JSON logs; nil discards
	// them.
	Log io.Writer
}

// Check fills in the defaults and checks the combination. Run calls it;
// a caller may call it first to tell a bad configuration from a failed run.
func (c *Config) Check() error {
	switch c.Mode {
	case ModeETSISynch, ModeETSIAsync, ModeMID, ModeCIBA:
	case "":
		c.Mode = ModeETSISynch
	default:
		return fmt.Errorf("unknown mode %q (want etsi-synch, etsi-async, mid or ciba)", c.Mode)
	}
	switch c.Key {
	case "":
		c.Key = KeyECDSA
	case KeyECDSA, KeyRSA:
	default:
		return fmt.Errorf("unknown key type %q (want ecdsa or rsa)", c.Key)
	}
	switch c.Format {
	case "":
		c.Format = FormatPKCS1
	case FormatPKCS1, FormatCMS:
	default:
		return fmt.Errorf("unknown format %q (want pkcs1 or cms)", c.Format)
	}
	if c.Format == FormatCMS && c.Mode != ModeETSISynch && c.Mode != ModeETSIAsync && c.Pending == 0 {
		return errors.New("--format cms applies to the ETSI modes only; MID and CIBA get PKCS1")
	}
	if c.Target != "" && c.DataDir == "" {
		return errors.New("--target needs --data, the data directory of the running system")
	}
	if c.Target == "" && c.Phones == 0 {
		c.Phones = 64
		if c.Concurrency > 0 && c.Rate == 0 {
			c.Phones = c.Concurrency
		}
	}
	switch {
	case c.Phones < 0 || c.Phones > 100000-3:
		return fmt.Errorf("--phones %d: want 1 to 99997", c.Phones)
	case c.Concurrency < 0:
		return fmt.Errorf("--concurrency %d: want at least 1", c.Concurrency)
	case c.Rate < 0 || math.IsInf(c.Rate, 0) || math.IsNaN(c.Rate):
		return fmt.Errorf("--rate %v: want a positive rate", c.Rate)
	case c.Concurrency > 0 && c.Rate > 0:
		return errors.New("--concurrency and --rate exclude each other: a closed or an open loop")
	case c.Target == "" && c.Concurrency > c.Phones:
		return fmt.Errorf("--concurrency %d needs as many phones, --phones is %d: a phone has one transaction at a time", c.Concurrency, c.Phones)
	case c.Duration < 0 || c.Warmup < 0 || c.Think < 0:
		return errors.New("durations must not be negative")
	case c.Pending < 0:
		return fmt.Errorf("--pending %d: want a positive number", c.Pending)
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = 100 * time.Millisecond
	}
	if c.TimeOut == 0 {
		c.TimeOut = 60 * time.Second
	}
	if c.TimeOut < 10*time.Second || c.TimeOut > 600*time.Second {
		return fmt.Errorf("--timeout %v: the MSSP accepts 10 s to 600 s", c.TimeOut)
	}
	if c.FloorTime == 0 {
		c.FloorTime = 3 * time.Second
	}
	if c.Pending > 0 {
		switch c.PendingVia {
		case "":
			c.PendingVia = PendingTestNumber
		case PendingTestNumber, PendingPhones:
		default:
			return fmt.Errorf("--pending-via %q: want phones or test-number", c.PendingVia)
		}
		if c.PendingTimeOut == 0 {
			c.PendingTimeOut = 30 * time.Second
		}
		if c.PendingTimeOut < 10*time.Second || c.PendingTimeOut > 600*time.Second {
			return fmt.Errorf("--pending-timeout %v: the MSSP accepts 10 s to 600 s", c.PendingTimeOut)
		}
		if c.Pending > 100000 {
			return fmt.Errorf("--pending %d: at most 100000", c.Pending)
		}
		if c.Target == "" && c.PendingVia == PendingPhones && c.Pending > 100000-3 {
			return fmt.Errorf("--pending %d with phones: at most 99997 phones", c.Pending)
		}
	}
	return nil
}

// Run runs the bench: it starts the platform or connects to the target,
// runs the load (or the pending test), measures the crypto floor and
// returns the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Pending > 0 {
		return runPending(ctx, &cfg)
	}
	return runLoad(ctx, &cfg)
}

// logf writes a progress line.
func (c *Config) logf(format string, args ...any) {
	fmt.Fprintf(c.Progress, "bench: "+format+"\n", args...)
}

// openStack starts or reaches the platform, with n phones in process.
func openStack(ctx context.Context, cfg *Config, n, conns int) (*stack, error) {
	if cfg.Target != "" {
		return connectTarget(ctx, cfg.Target, cfg.DataDir, conns, cfg.logf)
	}
	var logger *slog.Logger
	if cfg.Log != nil {
		logger = slog.New(slog.NewJSONHandler(cfg.Log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return startInProcess(ctx, n, conns, cfg.Key, logger, cfg.logf)
}

func runLoad(ctx context.Context, cfg *Config) (*Result, error) {
	if cfg.MemProfile != "" {
		// Only the measured window's allocations are sampled.
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 0
	}
	conns := cfg.Phones
	if conns == 0 {
		conns = 64
	}
	st, err := openStack(ctx, cfg, cfg.Phones, conns)
	if err != nil {
		return nil, err
	}
	defer st.stop()
	phones := st.phones
	if cfg.Target != "" && cfg.Phones > 0 && cfg.Phones < len(phones) {
		phones = phones[:cfg.Phones]
	}
	if len(phones) == 0 {
		return nil, errors.New("no phone with an active Mobile ID to drive")
	}
	workers := cfg.Concurrency
	if cfg.Rate == 0 {
		if workers == 0 {
			workers = len(phones)
		}
		if workers > len(phones) {
			return nil, fmt.Errorf("--concurrency %d needs as many phones, and %d are registered: a phone has one transaction at a time", workers, len(phones))
		}
		phones = phones[:workers]
	}
	behaviour := "approve"
	if cfg.Think > 0 {
		behaviour = "think:" + cfg.Think.String()
	}
	if err := st.setBehaviour(ctx, phones, behaviour); err != nil {
		return nil, err
	}
	if cfg.Target != "" {
		defer st.setBehaviour(context.WithoutCancel(ctx), phones, "default")
	}
	d, err := newDriver(cfg.Mode, st, cfg)
	if err != nil {
		return nil, err
	}

	// One transaction before the clock starts fills, once, what the first
	// request of a client fills (the AP's verified password, TLS sessions,
	// the OCSP answer), instead of every worker at the same time.
	if status := d.do(ctx, phones[0]); status != "" {
		cfg.logf("a first transaction on %s failed: %s", phones[0].MSISDN, status)
	}

	res := &Result{Mode: cfg.Mode, Stack: st.name, Key: cfg.Key.label(), Phones: len(phones), Think: cfg.Think.Seconds(),
		Warmup: cfg.Warmup.Seconds(), Duration: cfg.Duration.Seconds(), Errors: map[string]int64{}}
	if cfg.Mode == ModeETSISynch || cfg.Mode == ModeETSIAsync {
		res.Format = string(cfg.Format)
	}
	if cfg.Rate > 0 {
		res.Rate = cfg.Rate
		res.Arrivals = "poisson"
		if cfg.Fixed {
			res.Arrivals = "fixed"
		}
	} else {
		res.Concurrency = workers
	}
	cfg.logf("%s: %s", cfg.Mode, res.loadText())

	clk := systemClock{}
	start := clk.Now()
	mStart := start.Add(cfg.Warmup)
	mEnd := mStart.Add(cfg.Duration)
	rec := newRecorder(mStart, mEnd)
	// Transactions still running at the end are given time to finish
	// (they are not counted), then cancelled.
	loadCtx, cancel := context.WithDeadline(ctx, mEnd.Add(min(cfg.TimeOut, 30*time.Second)+cfg.Think))
	defer cancel()

	// The measured window: CPU and profiles from its start to its end.
	var (
		cpu0, cpu1 float64
		cpuErr     error
		windowDone = make(chan struct{})
	)
	go func() {
		defer close(windowDone)
		if clk.SleepUntil(ctx, mStart) != nil {
			return
		}
		cpu0, cpuErr = st.cpu(ctx)
		stopProfiles, err := startProfiles(cfg)
		if err != nil {
			cpuErr = err
			return
		}
		if clk.SleepUntil(ctx, mEnd) != nil {
			stopProfiles()
			return
		}
		c, err := st.cpu(ctx)
		cpu1, cpuErr = c, errors.Join(cpuErr, err, stopProfiles())
	}()
	stopProgress := progress(cfg, rec, start, mStart)

	run := func(ph phone, at time.Time) {
		status := d.do(loadCtx, ph)
		rec.record(at, clk.Now(), status)
	}
	if cfg.Rate > 0 {
		pool := newPhonePool(phones)
		arr := &Arrivals{Rate: cfg.Rate, Poisson: !cfg.Fixed, Rand: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
		var wg sync.WaitGroup
		openLoop(loadCtx, clk, arr, start, mEnd, pool, func(ph phone, at time.Time) {
			wg.Go(func() {
				run(ph, at)
				pool.put(ph)
			})
		}, func(at time.Time) {
			// Shortfalls count in the window only, like transactions.
			if !at.Before(mStart) {
				res.Shortfall++
			}
		})
		wg.Wait()
	} else {
		closedLoop(loadCtx, clk, phones, mEnd, run)
	}
	<-windowDone
	cancel()
	stopProgress()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cpuErr != nil {
		return nil, cpuErr
	}

	ok, errs, hist := rec.snapshot()
	res.Transactions = ok
	res.TxPerSec = float64(ok) / cfg.Duration.Seconds()
	res.Latency = Latency{P50: ms(hist.Percentile(0.50)), P95: ms(hist.Percentile(0.95)), P99: ms(hist.Percentile(0.99)), Max: ms(hist.Max())}
	res.Errors = errs
	for _, n := range errs {
		res.ErrorCount += n
	}
	if ok > 0 {
		res.CPUPerTx = (cpu1 - cpu0) / float64(ok)
	}
	res.CPUOf = "this process: platform and clients"
	res.PeakRSS = peakRSS()
	res.RSSOf = "this process"
	if cfg.Target != "" {
		res.CPUOf = "the target process"
		res.RSSOf = "this process: the clients only"
	}

	// The platform in this process stops first, so that its background
	// work (sweeps, checkpoints, the network's timers) does not take the
	// floor's cores.
	st.stop()
	if cfg.FloorTime > 0 {
		cfg.logf("crypto floor: %v on %d goroutines", cfg.FloorTime, runtime.GOMAXPROCS(0))
		w, err := newFloorWork(cfg.Key, cfg.Format, cfg.Mode)
		if err != nil {
			return nil, err
		}
		if res.Floor, err = measureFloor(ctx, w, cfg.FloorTime); err != nil {
			return nil, err
		}
		res.FloorRatio = res.TxPerSec / res.Floor.TxPerSec
	}
	return res, nil
}

// progress prints a line every second until the returned function is
// called: elapsed time, the rate over the last second, totals.
func progress(cfg *Config, rec *recorder, start, mStart time.Time) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				n := rec.done.Load()
				phase := ""
				if now.Before(mStart) {
					phase = "  (warm-up)"
				}
				cfg.logf("%5.0fs  %7d tx/s  total %d  errors %d%s", now.Sub(start).Seconds(), n-last, n, rec.failed.Load(), phase)
				last = n
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// startProfiles starts the CPU profile and the heap profile's sampling,
// as the configuration asks; the returned function writes them.
func startProfiles(cfg *Config) (stop func() error, err error) {
	var cpuFile *os.File
	if cfg.CPUProfile != "" {
		if cpuFile, err = os.Create(cfg.CPUProfile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpuFile); err != nil {
			cpuFile.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	if cfg.MemProfile != "" {
		runtime.MemProfileRate = 512 * 1024
	}
	return func() error {
		var errs []error
		if cpuFile != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpuFile.Close())
		}
		if cfg.MemProfile != "" {
			f, err := os.Create(cfg.MemProfile)
			if err != nil {
				return fmt.Errorf("memory profile: %w", err)
			}
			runtime.GC()
			errs = append(errs, pprof.Lookup("heap").WriteTo(f, 0), f.Close())
		}
		return errors.Join(errs...)
	}, nil
}

// processCPU returns this process's user and system CPU seconds.
func processCPU() (user, sys float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return tv(ru.Utime), tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// peakRSS returns the largest resident set this process has had, in
// bytes (getrusage's maxrss is in kilobytes on Linux).
func peakRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
