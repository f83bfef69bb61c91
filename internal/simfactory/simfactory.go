// Package simfactory writes and reads the batch directory of a SIM
// personalisation run: the operator's file, the sealed card images, the
// factory key, the SIM vendor CA and the subscribers' PUK mailers. It is
// the file-system side of sim.Factory, which itself does no I/O; like the
// handsets, it is on the SIM's side of the air interface, and no
// operator-side package imports it.
package simfactory

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mobileid/internal/sim"
	"mobileid/internal/simbatch"
)

// Files of a batch directory.
const (
	OperatorFile   = "operator.csv"
	MailerFile     = "puk-mailers.csv"
	FactoryKeyFile = "factory.key"
	VendorCertFile = "vendor-ca.pem"
	VendorKeyFile  = "vendor-ca.key"
	CardsDir       = "cards"
)

// NewFactory makes a factory with a fresh factory key and vendor CA.
func NewFactory(name string) (*sim.Factory, error) {
	f := &sim.Factory{FactoryKey: make([]byte, 32)}
	if _, err := rand.Read(f.FactoryKey); err != nil {
		return nil, err
	}
	var err error
	if f.CA, err = sim.NewVendorCA(name, time.Now()); err != nil {
		return nil, err
	}
	return f, nil
}

// LoadFactory reads the factory key and the vendor CA of an earlier batch
// directory, so that a new batch is sealed and attested by the same
// factory.
func LoadFactory(f *sim.Factory, dir string) error {
	keyHex, err := os.ReadFile(filepath.Join(dir, FactoryKeyFile))
	if err != nil {
		return fmt.Errorf("load factory: %w", err)
	}
	if f.FactoryKey, err = hex.DecodeString(strings.TrimSpace(string(keyHex))); err != nil || len(f.FactoryKey) != 32 {
		return fmt.Errorf("load factory: %s is not 32 bytes of hex", FactoryKeyFile)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, VendorCertFile))
	if err != nil {
		return fmt.Errorf("load factory: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, VendorKeyFile))
	if err != nil {
		return fmt.Errorf("load factory: %w", err)
	}
	f.CA, err = sim.LoadVendorCA(certPEM, keyPEM, f.FactoryKey)
	return err
}

// Options control IssueBatch.
type Options struct {
	// Workers is the number of cards made in parallel; zero means one.
	Workers int
	// Progress, when set, is called after every 1000 cards of a batch of
	// 1000 or more.
	Progress func(done, total int)
}

// IssueBatch personalises count cards in parallel, numbered from first
// (an MSISDN of width digits without the +), and writes the batch
// directory dir, which must not exist or be empty. On failure it removes
// what it wrote.
func IssueBatch(ctx context.Context, f *sim.Factory, dir string, first *big.Int, width, count int, opts Options) (err error) {
	defer func() {
		if err != nil {
			os.RemoveAll(dir) // a half-written batch is worse than none
		}
	}()
	workers := max(opts.Workers, 1)
	cards := filepath.Join(dir, CardsDir)
	if err := os.MkdirAll(cards, 0o700); err != nil {
		return err
	}
	sealed, err := f.CA.SealedKeyPEM(f.FactoryKey)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		FactoryKeyFile: []byte(hex.EncodeToString(f.FactoryKey) + "\n"),
		VendorCertFile: f.CA.CertPEM(),
		VendorKeyFile:  sealed,
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
				if n := done.Add(1); opts.Progress != nil && count >= 1000 && n%1000 == 0 {
					opts.Progress(int(n), count)
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
	if err := writeOperatorFile(filepath.Join(dir, OperatorFile), recs); err != nil {
		return err
	}
	return writeMailers(filepath.Join(dir, MailerFile), recs, puks)
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
