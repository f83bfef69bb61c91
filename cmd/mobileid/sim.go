package main

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mobileid/internal/sim"
	"mobileid/internal/simbatch"
)

// Files of a personalisation batch directory.
const (
	batchOperatorFile = "operator.csv"
	batchMailerFile   = "puk-mailers.csv"
	batchFactoryKey   = "factory.key"
	batchVendorCert   = "vendor-ca.pem"
	batchVendorKey    = "vendor-ca.key"
	batchCardsDir     = "cards"
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

	var f sim.Factory
	if *factoryDir != "" {
		if err := loadFactory(&f, *factoryDir); err != nil {
			return err
		}
	} else {
		f.FactoryKey = make([]byte, 32)
		if _, err := rand.Read(f.FactoryKey); err != nil {
			return err
		}
		if f.CA, err = sim.NewVendorCA("mobileid SIM vendor CA", time.Now()); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := issueBatch(ctx, e, &f, *out, first, width, *count, *workers); err != nil {
		os.RemoveAll(*out) // a half-written batch is worse than none
		return err
	}
	fmt.Fprintf(e.stderr, "issued %d SIMs in %.1fs into %s\n", *count, time.Since(start).Seconds(), *out)
	return nil
}

func loadFactory(f *sim.Factory, dir string) error {
	keyHex, err := os.ReadFile(filepath.Join(dir, batchFactoryKey))
	if err != nil {
		return fmt.Errorf("--factory: %w", err)
	}
	if f.FactoryKey, err = hex.DecodeString(strings.TrimSpace(string(keyHex))); err != nil || len(f.FactoryKey) != 32 {
		return fmt.Errorf("--factory: %s is not 32 bytes of hex", batchFactoryKey)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, batchVendorCert))
	if err != nil {
		return fmt.Errorf("--factory: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, batchVendorKey))
	if err != nil {
		return fmt.Errorf("--factory: %w", err)
	}
	f.CA, err = sim.LoadVendorCA(certPEM, keyPEM, f.FactoryKey)
	return err
}

// issueBatch personalises count cards in parallel and writes the batch
// directory.
func issueBatch(ctx context.Context, e *env, f *sim.Factory, dir string, first *big.Int, width, count, workers int) error {
	cards := filepath.Join(dir, batchCardsDir)
	if err := os.MkdirAll(cards, 0o700); err != nil {
		return err
	}
	sealed, err := f.CA.SealedKeyPEM(f.FactoryKey)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		batchFactoryKey: []byte(hex.EncodeToString(f.FactoryKey) + "\n"),
		batchVendorCert: f.CA.CertPEM(),
		batchVendorKey:  sealed,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}

	recs := make([]simbatch.Record, count)
	puks := make([]string, count)
	var next, done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	fail := func(err error) { errOnce.Do(func() { firstErr = err }) }
	var wg sync.WaitGroup
	for range min(workers, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= count || ctx.Err() != nil {
					return
				}
				msisdn := "+" + leftPad(new(big.Int).Add(first, big.NewInt(int64(i))).String(), width)
				digits := leftPad(msisdn[1:], 11)
				iccidBody := "8999901" + digits[len(digits)-11:]
				iccid := iccidBody + string(simbatch.LuhnDigit(iccidBody))
				imsi := "00101" + digits[len(digits)-10:]
				is, err := f.Issue(iccid, imsi, msisdn)
				if err != nil {
					fail(fmt.Errorf("issue SIM %s: %w", msisdn, err))
					return
				}
				if err := os.WriteFile(filepath.Join(cards, iccid+".card"), is.Image, 0o600); err != nil {
					fail(err)
					return
				}
				recs[i], puks[i] = is.Record, is.PUK
				if n := done.Add(1); count >= 1000 && n%1000 == 0 {
					fmt.Fprintf(e.stderr, "issued %d/%d SIMs\n", n, count)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := writeOperatorFile(filepath.Join(dir, batchOperatorFile), recs); err != nil {
		return err
	}
	return writeMailers(filepath.Join(dir, batchMailerFile), recs, puks)
}

func leftPad(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return strings.Repeat("0", n-len(s)) + s
}

func writeOperatorFile(path string, recs []simbatch.Record) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w, err := simbatch.NewWriter(fh)
	if err != nil {
		fh.Close()
		return err
	}
	for i := range recs {
		if err := w.Write(&recs[i]); err != nil {
			fh.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}

// writeMailers writes the PUK of every card for its subscriber, the
// equivalent of the PIN mailer printed with a real SIM.
func writeMailers(path string, recs []simbatch.Record, puks []string) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	w := csv.NewWriter(fh)
	w.Write([]string{"iccid", "msisdn", "puk"})
	for i := range recs {
		w.Write([]string{recs[i].ICCID, recs[i].MSISDN, puks[i]})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
