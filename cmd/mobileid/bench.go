package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"mobileid/internal/bench"
)

func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bench", "",
		"Drives the complete platform with transactions and measures it: in this process (a new platform in a\n"+
			"temporary directory, with --phones registered users), or a running 'mobileid up' (--target, --data).\n"+
			"Modes: etsi-synch, etsi-async (MSS_Signature and MSS_StatusQuery), mid (MID REST authentication),\n"+
			"ciba (OpenID Connect CIBA). A closed loop (--concurrency) or an open loop (--rate). Prints a progress\n"+
			"line every second on standard error and one table at the end: tx/s, latency, errors by status, CPU\n"+
			"per transaction, peak RSS and the crypto floor. --pending N instead holds N transactions that are\n"+
			"never answered until their time-out, and reports the memory per pending transaction.\n"+
			"See docs/PERFORMANCE.md.")
	mode := fs.String("mode", string(bench.ModeETSISynch), "etsi-synch, etsi-async, mid or ciba")
	target := fs.String("target", "", "console URL of a running mobileid up to drive, e.g. http://127.0.0.1:8080; default: start the platform in this process")
	data := fs.String("data", envOr("MOBILEID_DATA", "data"), "with --target: its data directory, for the credentials")
	phones := fs.Int("phones", 0, "in process: phones to register (default 64, or --concurrency); with --target: use at most this many")
	concurrency := fs.Int("concurrency", 0, "closed loop: workers, each on its own phone (default: one per phone)")
	rate := fs.Float64("rate", 0, "open loop: transactions per second, each on a free phone")
	arrivals := fs.String("arrivals", "poisson", "open loop arrivals: poisson or fixed")
	duration := fs.Duration("duration", 10*time.Second, "measured time")
	warmup := fs.Duration("warmup", 2*time.Second, "time before the measurement, not counted")
	think := fs.Duration("think", 0, "how long the phones' users take at each question (0: they answer at once)")
	key := fs.String("key", string(bench.KeyECDSA), "in process: the users' keys, ecdsa (P-256) or rsa (RSA-2048)")
	format := fs.String("format", string(bench.FormatPKCS1), "ETSI modes: signature format, pkcs1 or cms")
	poll := fs.Duration("poll", 0, "etsi-async: MSS_StatusQuery interval (default 100ms)")
	timeout := fs.Duration("timeout", 0, "ETSI modes: the TimeOut the requests ask for (default 60s)")
	floor := fs.Duration("floor", 3*time.Second, "how long to measure the crypto floor; 0 skips it")
	pending := fs.Int("pending", 0, "instead of a load: hold this many transactions that are never answered until they time out")
	pendingVia := fs.String("pending-via", bench.PendingTestNumber, "with --pending: test-number (the MSSP's +9990092504) or phones (registered phones whose users never answer)")
	pendingTimeout := fs.Duration("pending-timeout", 0, "with --pending: the transactions' TimeOut (default 30s, at least 10s)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the measured window to this file")
	memProfile := fs.String("memprofile", "", "write a heap profile of the measured window to this file")
	logFile := fs.String("log", "", "in process: file for the platform's JSON logs (default: none)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object instead of the table")
	gcPercent := fs.Int("gc-percent", msspGCPercent, "in process: Go garbage collector target (GOGC) when $GOGC is unset, as mobileid mssp sets it")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	cfg := bench.Config{
		Mode: bench.Mode(*mode), Target: *target, Phones: *phones, Concurrency: *concurrency, Rate: *rate,
		Duration: *duration, Warmup: *warmup, Think: *think, Key: bench.KeyType(*key), Format: bench.Format(*format),
		Poll: *poll, TimeOut: *timeout, FloorTime: *floor, Pending: *pending, PendingVia: *pendingVia,
		PendingTimeOut: *pendingTimeout, CPUProfile: *cpuProfile, MemProfile: *memProfile, Progress: e.stderr,
	}
	if *target != "" {
		cfg.DataDir = *data
	}
	if *floor == 0 {
		cfg.FloorTime = -1
	}
	switch *arrivals {
	case "poisson":
	case "fixed":
		cfg.Fixed = true
	default:
		return usagef("--arrivals %q: want poisson or fixed", *arrivals)
	}
	if *target != "" && (*key != string(bench.KeyECDSA)) {
		return usagef("--key applies in process only: a running system's users have the keys they registered with")
	}
	if err := cfg.Check(); err != nil {
		return usageError{err}
	}
	if *logFile != "" {
		if *target != "" {
			return usagef("--log applies in process only: a running system keeps its own logs")
		}
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("log file %s: %w", *logFile, err)
		}
		defer f.Close()
		cfg.Log = f
	}
	if *target == "" && os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(*gcPercent))
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		err = res.WriteJSON(e.stdout)
	} else {
		err = res.WriteTable(e.stdout)
	}
	if err != nil {
		return err
	}
	switch {
	case res.Pending != nil && !res.Pending.OK:
		return errors.New("pending test failed: not every transaction ended once with its time-out status")
	case res.Pending == nil && res.Transactions == 0:
		return fmt.Errorf("no transaction succeeded (errors: %s)", errorList(res.Errors))
	}
	return nil
}

// errorList is the errors of a result in one line.
func errorList(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}
