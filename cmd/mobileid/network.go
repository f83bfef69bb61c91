package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"mobileid/internal/handset"
	"mobileid/internal/simbatch"
	"mobileid/internal/simfactory"
	"mobileid/internal/smsc"
	"mobileid/internal/up"
)

func runNetwork(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "network", "",
		"Runs the simulated mobile network: an SMSC (SMPP 3.4 server) and the virtual phones of a SIM batch\n"+
			"directory, with the phone console. When the directory does not exist, a batch is made first.")
	smppAddr := fs.String("smpp", "127.0.0.1:2775", "SMPP listen address")
	httpAddr := fs.String("http", "127.0.0.1:8081", "phone console and /metrics listen address")
	sims := fs.String("sims", filepath.Join("data", "sims"), "SIM batch directory (see 'mobileid sim issue')")
	create := fs.Int("create", 10, "SIMs to make when --sims does not exist")
	from := fs.String("msisdn-from", "+37250000001", "first MSISDN when making SIMs")
	account := fs.String("account", "mssp:mssp-pw:3725000",
		"ESME account system_id:password:number[,number…]; the password may instead come from $MOBILEID_SMSC_PASSWORD")
	behaviour := fs.String("behaviour", "approve", "what scripted users do: approve, think:DURATION, wrong-pin, cancel, never, console")
	loss := fs.Float64("loss", 0, "radio loss, percent of attempts")
	dup := fs.Float64("dup", 0, "radio duplication, percent of messages")
	latency := fs.Duration("latency", 0, "radio latency per leg")
	jitter := fs.Duration("jitter", 0, "uniform extra radio latency per leg, up to this")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	acct, err := parseAccount(*account)
	if err != nil {
		return err
	}
	b, err := handset.ParseBehaviour(*behaviour)
	if err != nil {
		return usageError{err}
	}
	if *loss < 0 || *loss > 100 || *dup < 0 || *dup > 100 {
		return usagef("--loss and --dup are percentages from 0 to 100")
	}
	logger := roleLogger(e, "network")

	if _, err := os.Stat(*sims); errors.Is(err, os.ErrNotExist) {
		if err := makeBatch(ctx, *sims, *from, *create); err != nil {
			return err
		}
		logger.Info("made SIM batch", "dir", *sims, "count", *create)
	}
	phones, err := handset.LoadNetwork(*sims, handset.Config{Logger: logger, Default: b})
	if err != nil {
		return err
	}
	defer phones.Close()
	reg := up.NewRegistry()
	sc, err := smsc.New(smsc.Config{
		Accounts: []smsc.Account{acct},
		Faults:   smsc.Faults{LossPercent: *loss, DuplicatePercent: *dup, Latency: *latency, Jitter: *jitter},
	}, phones, logger, reg)
	if err != nil {
		return err
	}
	phones.SetUplink(handset.UplinkFunc(sc.SubmitMO))

	ln, err := net.Listen("tcp", *smppAddr)
	if err != nil {
		return fmt.Errorf("listen for SMPP: %w", err)
	}
	hl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen for HTTP: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/phones/", http.StripPrefix("/phones", phones.Handler()))
	mux.Handle("GET /{$}", http.RedirectHandler("/phones/", http.StatusFound))
	hs := newHTTPServer(up.WithHealth(mux, reg, up.Always), logger)
	logger.Info("network up", "smpp", ln.Addr().String(), "console", "http://"+hl.Addr().String()+"/phones/",
		"phones", len(phones.Phones()), "system_id", acct.SystemID)
	err = runUntilDone(ctx, []*http.Server{hs}, func() { sc.Close() },
		func() error { return sc.Serve(ln) },
		func() error { return hs.Serve(hl) })
	if err != nil {
		return err
	}
	logger.Info("network stopped")
	return nil
}

// parseAccount reads system_id:password:number[,number…].
func parseAccount(s string) (smsc.Account, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return smsc.Account{}, usagef("--account %q: want system_id:password:number[,number…]", s)
	}
	a := smsc.Account{SystemID: parts[0], Password: parts[1], Addresses: strings.Split(parts[2], ",")}
	if p := os.Getenv("MOBILEID_SMSC_PASSWORD"); p != "" {
		a.Password = p
	}
	return a, nil
}

// makeBatch issues count SIMs into dir with a new factory.
func makeBatch(ctx context.Context, dir, from string, count int) error {
	if err := simbatch.ValidMSISDN(from); err != nil {
		return usagef("--msisdn-from: %q: want + and 8 to 15 digits", from)
	}
	if count < 1 || count > 100000 {
		return usagef("--create: %d, want 1 to 100000", count)
	}
	f, err := simfactory.NewFactory("mobileid SIM vendor CA")
	if err != nil {
		return err
	}
	first, _ := new(big.Int).SetString(from[1:], 10)
	return simfactory.IssueBatch(ctx, f, dir, first, len(from)-1, count, simfactory.Options{Workers: 2})
}
