package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/handset"
	"mobileid/internal/messaging"
	"mobileid/internal/ota"
	"mobileid/internal/simbatch"
	"mobileid/internal/simfactory"
	"mobileid/internal/smsc"
	"mobileid/internal/store"
	"mobileid/internal/store/storetest"
	"mobileid/internal/vmac"
)

const (
	serviceNumber = "3725000"
	systemID      = "mssp"
	password      = "mssp-pw"
)

// world is a running network: SIM batch, phones, SMSC on loopback TCP.
type world struct {
	dir    string
	recs   map[string]simbatch.Record // by MSISDN
	phones *handset.Network
	smsc   *smsc.SMSC
	addr   string
}

// newWorld issues n SIMs and starts the network around them.
func newWorld(t testing.TB, n int, faults smsc.Faults) *world {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sims")
	f, err := simfactory.NewFactory("test SIM vendor")
	if err != nil {
		t.Fatal(err)
	}
	if err := simfactory.IssueBatch(context.Background(), f, dir, big.NewInt(37250000001), 11, n, simfactory.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(filepath.Join(dir, simfactory.OperatorFile))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	list, err := simbatch.Read(fh)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{dir: dir, recs: map[string]simbatch.Record{}}
	for _, r := range list {
		w.recs[r.MSISDN] = r
	}
	logger := slog.New(slog.DiscardHandler)
	w.phones, err = handset.LoadNetwork(dir, handset.Config{Logger: logger, SubmitBackoff: 20 * time.Millisecond, SubmitAttempts: 8})
	if err != nil {
		t.Fatal(err)
	}
	w.smsc, err = smsc.New(smsc.Config{
		Accounts: []smsc.Account{{SystemID: systemID, Password: password, Addresses: []string{serviceNumber}}},
		RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Faults: faults,
	}, w.phones, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w.phones.SetUplink(handset.UplinkFunc(w.smsc.SubmitMO))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	go w.smsc.Serve(ln)
	t.Cleanup(func() {
		w.smsc.Close()
		w.phones.Close()
	})
	return w
}

// withPlus writes a number as the SIM records key it: SMPP peers often
// leave out the +.
func withPlus(s string) string { return "+" + strings.TrimPrefix(s, "+") }

// smscNoFaults is a radio without faults.
var smscNoFaults = smsc.Faults{}

// collector is the Messaging Server's Handler in these tests: it hands
// every MO to a channel.
type collector struct {
	mos chan *messaging.MO
}

func (c *collector) HandleMO(ctx context.Context, tx *sql.Tx, mo *messaging.MO) error {
	select {
	case c.mos <- mo:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (c *collector) HandleReceipt(ctx context.Context, tx *sql.Tx, r *messaging.Receipt) error {
	return nil
}

// startMessaging runs a Messaging Server on db bound to the world's SMSC.
func startMessaging(t testing.TB, w *world, db *store.DB) (*messaging.Server, *collector) {
	t.Helper()
	c := &collector{mos: make(chan *messaging.MO, 1024)}
	srv, err := messaging.New(messaging.Config{
		Binds:         []messaging.Bind{{Addr: w.addr, SystemID: systemID, Password: password}},
		ServiceNumber: serviceNumber,
		ReconnectMin:  10 * time.Millisecond,
	}, db, c, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return srv, c
}

// vmacSPI is the security the platform uses toward the VMAC applet.
var vmacSPI = ota.SPI{Integrity: ota.CC, Ciphered: true, Counter: ota.CounterHigher,
	PoR: ota.PoRAlways, PoRIntegrity: ota.CC, PoRCiphered: true, PoRSubmit: true}

// operator wraps VMAC commands for the world's SIMs with rising counters
// and matches responses to the commands it sent, as the Signature Server
// will: a response counts only if it is secured, opens with the SIM's keys
// and echoes the counter of a command still waiting.
type operator struct {
	mu       sync.Mutex
	w        *world
	counters map[string]uint64
	pending  map[string]*ota.Command // by MSISDN + counter
	answered map[string]int
	ignored  int
}

func newOperator(w *world) *operator {
	return &operator{w: w, counters: map[string]uint64{}, pending: map[string]*ota.Command{}, answered: map[string]int{}}
}

func key(msisdn string, counter uint64) string { return fmt.Sprintf("%s/%d", msisdn, counter) }

func (o *operator) wrap(t testing.TB, msisdn string, c vmac.Command) []byte {
	t.Helper()
	rec := o.w.recs[msisdn]
	data, err := vmac.MarshalCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.counters[msisdn]++
	cmd := &ota.Command{SPI: vmacSPI, KIc: rec.KIc, KID: rec.KID, TAR: rec.TAR, Counter: o.counters[msisdn], Data: data}
	pkt, err := ota.WrapCommand(cmd, ota.Keys{KIc: rec.KIcKey, KID: rec.KIDKey})
	if err != nil {
		t.Fatal(err)
	}
	o.pending[key(msisdn, cmd.Counter)] = cmd
	return pkt
}

// accept returns the VMAC response an MO carries, or nil when the MO is
// not an answer to a waiting command (a replayed command's error report,
// or a second copy of an answer already taken).
func (o *operator) accept(t testing.TB, mo *messaging.MO) vmac.Response {
	t.Helper()
	msisdn := withPlus(mo.From)
	rec, ok := o.w.recs[msisdn]
	if !ok {
		t.Fatalf("MO from unknown %q", mo.From)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for k, cmd := range o.pending {
		if k[:len(msisdn)+1] != msisdn+"/" {
			continue
		}
		r, err := ota.OpenResponse(mo.Packet, cmd, ota.Keys{KIc: rec.KIcKey, KID: rec.KIDKey})
		if err != nil || !r.Secured || r.Counter != cmd.Counter {
			continue
		}
		vr, err := vmac.ParseResponse(r.Data)
		if err != nil {
			t.Fatalf("VMAC response from %s: %v", msisdn, err)
		}
		delete(o.pending, k)
		o.answered[k]++
		return vr
	}
	o.ignored++
	return nil
}

// TestOTAInfoThroughNetwork sends an OTA-secured INFO command to every SIM
// through messaging → SMSC (SMPP over loopback) → handset → SIM and checks
// the verified answers, on both database engines.
func TestOTAInfoThroughNetwork(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		w := newWorld(t, 3, smsc.Faults{})
		srv, c := startMessaging(t, w, db)
		op := newOperator(w)
		ctx := context.Background()
		for msisdn := range w.recs {
			if _, err := srv.SendPacket(ctx, msisdn[1:], op.wrap(t, msisdn, &vmac.Info{Ref: 7}), time.Minute); err != nil {
				t.Fatalf("SendPacket(%s): %v", msisdn, err)
			}
		}
		for got := 0; got < len(w.recs); {
			select {
			case mo := <-c.mos:
				r := op.accept(t, mo)
				if r == nil {
					t.Fatalf("unexpected MO from %s", mo.From)
				}
				info, ok := r.(*vmac.InfoResponse)
				if !ok || info.Result != vmac.StatusOK || info.ICCID != w.recs[withPlus(mo.From)].ICCID {
					t.Fatalf("INFO answer from %s = %#v", mo.From, r)
				}
				got++
			case <-time.After(20 * time.Second):
				t.Fatalf("got %d of %d answers", got, len(w.recs))
			}
		}
	})
}

// TestOTAWithLossAndDuplication runs INFO commands through a network that
// loses and duplicates 10 % of the radio traffic, one command at a time
// per SIM as the Signature Server sends them (a SIM counter must rise, so
// a later command overtaking an earlier one would void it). Every command
// must be answered exactly once; copies must be recognised and ignored.
func TestOTAWithLossAndDuplication(t *testing.T) {
	w := newWorld(t, 4, smsc.Faults{LossPercent: 10, DuplicatePercent: 10})
	db, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, c := startMessaging(t, w, db)
	op := newOperator(w)
	ctx := context.Background()
	const perPhone = 10
	answers := make(map[string]chan vmac.Response)
	for msisdn := range w.recs {
		answers[msisdn] = make(chan vmac.Response, 1)
	}
	// Route accepted answers to the phone's sender.
	go func() {
		for mo := range c.mos {
			if r := op.accept(t, mo); r != nil {
				answers[withPlus(mo.From)] <- r
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, len(w.recs))
	for msisdn := range w.recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perPhone; i++ {
				if _, err := srv.SendPacket(ctx, msisdn[1:], op.wrap(t, msisdn, &vmac.Info{Ref: uint32(i)}), time.Minute); err != nil {
					errs <- err
					return
				}
				select {
				case r := <-answers[msisdn]:
					if r.Status() != vmac.StatusOK || r.TxRef() != uint32(i) {
						errs <- fmt.Errorf("%s command %d: answer %v for %d", msisdn, i, r.Status(), r.TxRef())
						return
					}
				case <-time.After(30 * time.Second):
					errs <- fmt.Errorf("%s command %d: no answer", msisdn, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Late copies must not be taken as answers.
	time.Sleep(300 * time.Millisecond)
	op.mu.Lock()
	defer op.mu.Unlock()
	for k, n := range op.answered {
		if n != 1 {
			t.Errorf("command %s answered %d times", k, n)
		}
	}
	if n := len(op.answered); n != perPhone*len(w.recs) {
		t.Errorf("%d commands answered, want %d", n, perPhone*len(w.recs))
	}
	st := w.smsc.Stats()
	if st.Lost == 0 || st.Duplicated == 0 {
		t.Errorf("fault model idle: %+v", st)
	}
	t.Logf("SMSC: lost %d, duplicated %d, retried %d; copies ignored by the operator: %d", st.Lost, st.Duplicated, st.Retried, op.ignored)
}
