package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"runtime"
	"time"

	"mobileid/internal/sim"
	"mobileid/internal/simbatch"
	"mobileid/internal/simfactory"
)

func runSIMIssue(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "sim issue", "",
		"Personalises a batch of virtual SIM cards with the VMAC applet, as a SIM vendor does. It writes to --out:\n"+
			"  operator.csv      the operator's file: ICCID, IMSI, MSISDN, TAR and OTA keys (secret; import it into the MSSP)\n"+
			"  cards/ICCID.card  one sealed card image per SIM, for the handsets\n"+
			"  factory.key       the key that seals the card images (secret; handsets need it)\n"+
			"  vendor-ca.pem     the SIM vendor CA that certifies the cards' attestation keys\n"+
			"  vendor-ca.key     its private key, sealed under factory.key\n"+
			"  puk-mailers.csv   each card's PUK for its subscriber (secret)")
	count := fs.Int("count", 0, "number of SIMs (1 to 1,000,000)")
	from := fs.String("msisdn-from", "", "MSISDN of the first SIM, e.g. +37200000001; the others follow in order")
	out := fs.String("out", "", "batch directory to create (must not exist or be empty)")
	factoryDir := fs.String("factory", "", "an earlier batch directory whose factory key and vendor CA to reuse")
	workers := fs.Int("workers", runtime.NumCPU(), "parallel workers")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 0:
		return usagef("unexpected argument %q", pos[0])
	case *count < 1 || *count > 1_000_000:
		return usagef("--count: %d, want 1 to 1000000", *count)
	case *out == "":
		return usagef("--out is required")
	case *workers < 1:
		return usagef("--workers: %d, want at least 1", *workers)
	}
	if err := simbatch.ValidMSISDN(*from); err != nil {
		return usagef("--msisdn-from: %q: want + and 8 to 15 digits", *from)
	}
	first, _ := new(big.Int).SetString((*from)[1:], 10)
	last := new(big.Int).Add(first, big.NewInt(int64(*count-1)))
	width := len(*from) - 1
	if len(last.String()) > width {
		return usagef("--msisdn-from: %s plus %d numbers overflows %d digits", *from, *count, width)
	}
	if entries, err := os.ReadDir(*out); err == nil && len(entries) > 0 {
		return usagef("--out: %s exists and is not empty", *out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read %s: %w", *out, err)
	}

	var f *sim.Factory
	if *factoryDir != "" {
		f = &sim.Factory{}
		if err := simfactory.LoadFactory(f, *factoryDir); err != nil {
			return err
		}
	} else if f, err = simfactory.NewFactory("mobileid SIM vendor CA"); err != nil {
		return err
	}
	start := time.Now()
	err = simfactory.IssueBatch(ctx, f, *out, first, width, *count, simfactory.Options{
		Workers:  *workers,
		Progress: func(done, total int) { fmt.Fprintf(e.stderr, "issued %d/%d SIMs\n", done, total) },
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "issued %d SIMs in %.1fs into %s\n", *count, time.Since(start).Seconds(), *out)
	return nil
}
