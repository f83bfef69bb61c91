package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"mobileid/internal/up"
)

func runUp(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "up", "",
		"Runs the whole system in this process on an embedded database: the CA, the simulated mobile network,\n"+
			"the Signature Server with its Messaging Server, the Registration Server and the ID Server, with their\n"+
			"consoles. The first start makes everything (CA key ceremony, SIMs, demo people registered through the\n"+
			"real flow, a demo relying party) and prints the demo PINs once; later starts reuse it. Ctrl-C stops it.")
	data := fs.String("data", envOr("MOBILEID_DATA", "data"), "data directory; $MOBILEID_DATA sets the default")
	sims := fs.Int("sims", 10, "SIMs the first start makes")
	logFile := fs.String("log", "", `file for the JSON logs; "-" means standard error; default <data>/mobileid.log`)
	a := up.DefaultAddrs
	fs.StringVar(&a.Console, "console", a.Console, "listen address of the landing page")
	fs.StringVar(&a.SMPP, "smpp", a.SMPP, "listen address of the SMSC (SMPP)")
	fs.StringVar(&a.Phones, "phones", a.Phones, "listen address of the phone console")
	fs.StringVar(&a.CA, "ca", a.CA, "listen address of the CA (certificates, CRL, OCSP, TSA); on the first start it goes into the certificates")
	fs.StringVar(&a.MSSP, "mssp", a.MSSP, "listen address of the Signature Server (HTTPS)")
	fs.StringVar(&a.Registration, "registration", a.Registration, "listen address of the registration desk and API")
	fs.StringVar(&a.IDServer, "idserver", a.IDServer, "listen address of the ID Server (MID REST API, OpenID Connect)")
	fs.StringVar(&a.Bank, "bank", a.Bank, "listen address of the demo bank; on the first start it goes into the bank's OpenID Connect redirect URI")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	logOut := e.stderr
	if *logFile != "-" {
		if *logFile == "" {
			*logFile = filepath.Join(*data, "mobileid.log")
		}
		if err := os.MkdirAll(filepath.Dir(*logFile), 0o700); err != nil {
			return fmt.Errorf("log file %s: %w", *logFile, err)
		}
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("log file %s: %w", *logFile, err)
		}
		defer f.Close()
		logOut = f
	}
	logger := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	start := time.Now()
	sys, err := up.Start(ctx, up.Config{DataDir: *data, Addrs: a, Phones: *sims, Logger: logger, Out: e.stdout})
	if err != nil {
		return err
	}
	printBanner(e, sys, time.Since(start), *logFile)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-sys.Err():
		fmt.Fprintf(e.stderr, "mobileid up: %v\n", runErr)
	}
	fmt.Fprintln(e.stdout, "Stopping…")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sys.Stop(sctx); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "Stopped.")
	return runErr
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func printBanner(e *env, sys *up.System, took time.Duration, logFile string) {
	u := sys.URLs
	w := e.stdout
	fmt.Fprintf(w, "\nmobileid is up (%.1f s).\n\n", took.Seconds())
	fmt.Fprintf(w, "  Start here        %s\n", u.Console)
	fmt.Fprintf(w, "  Demo Bank         %s\n", u.Bank)
	fmt.Fprintf(w, "  Phones            %s\n", u.Phones)
	fmt.Fprintf(w, "  Registration desk %s  (officer / %s)\n", u.Desk, sys.OfficerPassword)
	fmt.Fprintf(w, "  MID REST API      %s\n", u.MIDAPI)
	fmt.Fprintf(w, "  OpenID issuer     %s\n", u.Issuer)
	fmt.Fprintf(w, "  ETSI TS 102 204   %s\n", u.MSSP)
	fmt.Fprintf(w, "  CA, OCSP, TSA     %s\n\n", u.CA)
	for _, p := range sys.People {
		fmt.Fprintf(w, "  %-18s %s  (%s)\n", p.Name, p.MSISDN, p.State)
	}
	if logFile != "-" {
		fmt.Fprintf(w, "\nLogs: %s. Ctrl-C stops.\n", logFile)
	} else {
		fmt.Fprintln(w, "\nCtrl-C stops.")
	}
}
