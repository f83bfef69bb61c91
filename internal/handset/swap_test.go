package handset

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/ota"
	"mobileid/internal/sim"
	"mobileid/internal/simbatch"
	"mobileid/internal/vmac"
)

// swapBatch is a batch directory of replacement cards for numbers that
// already have a SIM: new ICCIDs and keys, sealed with a factory key of
// its own, as a later personalisation run makes them.
func swapBatch(t testing.TB, series int, msisdns ...string) *batch {
	t.Helper()
	f := &sim.Factory{CA: factory(t).CA, FactoryKey: bytes.Repeat([]byte{byte(0xA0 + series)}, 32)}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, cardsDir), 0o700); err != nil {
		t.Fatal(err)
	}
	b := &batch{dir: dir, issued: make(map[string]*sim.Issued)}
	var mailers bytes.Buffer
	w := csv.NewWriter(&mailers)
	w.Write([]string{"iccid", "msisdn", "puk"})
	for _, msisdn := range msisdns {
		body := fmt.Sprintf("89999%02d", series) + msisdn[len(msisdn)-11:]
		iccid := body + string(simbatch.LuhnDigit(body))
		is, err := f.Issue(iccid, fmt.Sprintf("00102%02d", series)+msisdn[len(msisdn)-8:], msisdn)
		if err != nil {
			t.Fatalf("Issue(%s): %v", msisdn, err)
		}
		if err := os.WriteFile(filepath.Join(dir, cardsDir, iccid+cardExt), is.Image, 0o600); err != nil {
			t.Fatal(err)
		}
		w.Write([]string{iccid, msisdn, is.PUK})
		b.issued[msisdn] = is
		b.msisdn = append(b.msisdn, msisdn)
	}
	w.Flush()
	if err := os.WriteFile(filepath.Join(dir, mailerFile), mailers.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, factoryKeyFile), []byte(hex.EncodeToString(f.FactoryKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

func iccidOf(b *batch, msisdn string) string { return b.issued[msisdn].Record.ICCID }

// cardOnDisk opens the newest stored state of a card of batch b.
func cardOnDisk(t *testing.T, b *batch, key []byte, iccid string) *sim.Card {
	t.Helper()
	imgs, _, err := readImages(filepath.Join(b.dir, cardsDir, iccid+cardExt))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.Open(imgs[0], key, sim.Options{})
	if err != nil {
		t.Fatalf("open stored card %s: %v", iccid, err)
	}
	return c
}

func TestSwapSIM(t *testing.T) {
	b := newBatch(t, 2)
	msisdn := b.msisdn[0]
	repl := swapBatch(t, 2, msisdn)
	up := newUplink()
	n := b.load(t, Config{Uplink: up})
	o := newOperator(t, n, up, b, msisdn)
	p := mustPhone(t, n, msisdn)
	o.register()
	o.do(&vmac.Display{Ref: 2, Text: "Your Mobile ID is ready."})
	if s := p.Screen(); s.Text == "" {
		t.Fatalf("screen after DISPLAY = %+v, want its text", s)
	}
	oldPUK, err := p.mailerPUK()
	if err != nil {
		t.Fatal(err)
	}

	// A card working on a command stays in the phone.
	p.SetBehaviour(Behaviour{Action: Console})
	cmd, tpdus := o.wrap(&vmac.Display{Ref: 3, Text: "Still there?", WaitForOK: true})
	o.deliver(tpdus...)
	waitFor(t, func() bool { return p.Screen().Waiting })
	if err := n.SwapSIM(repl.dir, iccidOf(repl, msisdn)); !errors.Is(err, ErrPhoneBusy) {
		t.Fatalf("SwapSIM(busy phone) = %v, want ErrPhoneBusy", err)
	}
	if err := p.PressCancel(); err != nil {
		t.Fatal(err)
	}
	if r, _ := o.await(cmd); r.Status() != vmac.StatusUserCancel {
		t.Fatalf("DISPLAY answer = %v, want user cancel", r.Status())
	}
	waitFor(t, func() bool { return p.State().Sessions == 0 })
	p.SetBehaviour(Behaviour{})

	// The first part of a long command: its rest arrives after the swap.
	_, parts := o.wrap(&vmac.Display{Ref: 4, Text: strings.Repeat("long text ", 15)})
	if len(parts) < 2 {
		t.Fatalf("long command in %d SMS, want several", len(parts))
	}
	o.deliver(parts[0])

	if err := n.SwapSIM(repl.dir, iccidOf(repl, msisdn)); err != nil {
		t.Fatalf("SwapSIM() = %v", err)
	}
	if got := p.ICCID(); got != iccidOf(repl, msisdn) {
		t.Errorf("ICCID after swap = %s, want %s", got, iccidOf(repl, msisdn))
	}
	if s := p.Screen(); s != (Screen{}) {
		t.Errorf("screen after swap = %+v, want blank", s)
	}
	if puk, err := p.mailerPUK(); err != nil || puk != repl.issued[msisdn].PUK || puk == oldPUK {
		t.Errorf("PUK after swap: %v; want the new card's", err)
	}
	// The rest of the command meant for the old card completes nothing.
	o.deliver(parts[1:]...)
	up.none(t, 50*time.Millisecond)

	// The old card left with its state stored: registered, at its
	// counter.
	old := cardOnDisk(t, b, factory(t).FactoryKey, iccidOf(b, msisdn))
	if st := old.Status(); !st.Registered || st.Counter != o.counter-1 {
		t.Errorf("old card on disk = %+v, want registered at counter %d", st, o.counter-1)
	}

	// The new card answers with its own keys, from counter 1, and is not
	// registered; the other phone keeps its card.
	o2 := newOperator(t, n, up, repl, msisdn)
	want := &vmac.InfoResponse{Ref: 5, Result: vmac.StatusOK, VersionMajor: vmac.ProtocolMajor, VersionMinor: vmac.ProtocolMinor,
		ICCID: iccidOf(repl, msisdn), State: vmac.StatePersonalised, PUKTriesLeft: sim.PUKTries}
	if diff := cmp.Diff(want, o2.do(&vmac.Info{Ref: 5})); diff != "" {
		t.Errorf("INFO of the new card (-want +got):\n%s", diff)
	}
	if st := cardOnDisk(t, repl, bytes.Repeat([]byte{0xA2}, 32), iccidOf(repl, msisdn)).Status(); st.Counter != 1 || st.Registered {
		t.Errorf("new card on disk = %+v, want unregistered at counter 1", st)
	}
	if st := p.State(); st.ICCID != iccidOf(repl, msisdn) || !st.HasPUK || st.Card.Registered {
		t.Errorf("phone state after swap = ICCID %s, PUK %v, card %+v", st.ICCID, st.HasPUK, st.Card)
	}
	other := mustPhone(t, n, b.msisdn[1])
	if got := other.ICCID(); got != iccidOf(b, b.msisdn[1]) {
		t.Errorf("other phone's ICCID = %s, want %s", got, iccidOf(b, b.msisdn[1]))
	}
	// A command for the old card does not open on the new one.
	cmd, tpdus = o.wrap(&vmac.Info{Ref: 6})
	o.deliver(tpdus...)
	pkt, _ := o.receive()
	if r, err := ota.OpenResponse(pkt, cmd, o.keys()); err != nil || r.Secured || r.Status == ota.StatusOK {
		t.Errorf("answer to a command for the old card = %+v, %v; want an unsecured error PoR", r, err)
	}
	if r, _ := o2.do(&vmac.Info{Ref: 7}).(*vmac.InfoResponse); r == nil || r.ICCID != iccidOf(repl, msisdn) {
		t.Errorf("INFO of the new card after a stray command = %+v", r)
	}
}

func TestSwapSIMErrors(t *testing.T) {
	b := newBatch(t, 1)
	msisdn := b.msisdn[0]
	repl := swapBatch(t, 2, msisdn, "+37259999999")
	n := b.load(t, Config{Uplink: newUplink()})
	if err := n.SwapSIM(repl.dir, iccidOf(repl, msisdn)); err != nil {
		t.Fatalf("SwapSIM() = %v", err)
	}
	wrongKey := swapBatch(t, 3, msisdn)
	if err := os.WriteFile(filepath.Join(wrongKey.dir, factoryKeyFile), []byte(hex.EncodeToString(bytes.Repeat([]byte{1}, 32))), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, iccid string
	}{
		{"card in the phone already", repl.dir, iccidOf(repl, msisdn)},
		{"number without a phone", repl.dir, iccidOf(repl, "+37259999999")},
		{"not an ICCID", repl.dir, "../" + iccidOf(repl, msisdn)},
		{"no such card", repl.dir, iccidOf(b, msisdn)},
		{"other factory key", wrongKey.dir, iccidOf(wrongKey, msisdn)},
		{"no batch", t.TempDir(), iccidOf(repl, msisdn)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := n.SwapSIM(tc.dir, tc.iccid); err == nil {
				t.Fatalf("SwapSIM(%s, %s) succeeded", tc.dir, tc.iccid)
			}
			if got := mustPhone(t, n, msisdn).ICCID(); got != iccidOf(repl, msisdn) {
				t.Errorf("ICCID after a refused swap = %s, want %s", got, iccidOf(repl, msisdn))
			}
		})
	}
	n.Close()
	third := swapBatch(t, 4, msisdn)
	if err := n.SwapSIM(third.dir, iccidOf(third, msisdn)); !errors.Is(err, ErrClosed) {
		t.Errorf("SwapSIM() on a closed network = %v, want ErrClosed", err)
	}
}

// TestSwapSIMConcurrent swaps a phone's card back and forth while commands
// keep arriving for it and the other phone works on: every swap either
// happens or finds the phone busy, and the other phone answers each of its
// commands. Run with -race.
func TestSwapSIMConcurrent(t *testing.T) {
	b := newBatch(t, 2)
	msisdn, otherMSISDN := b.msisdn[0], b.msisdn[1]
	cards := []*batch{swapBatch(t, 2, msisdn), swapBatch(t, 3, msisdn)}
	up := newUplink()
	otherUp := newUplink()
	n := b.load(t, Config{Uplink: UplinkFunc(func(ctx context.Context, from string, tpdu []byte) error {
		if from == otherMSISDN {
			return otherUp.SubmitMO(ctx, from, tpdu)
		}
		return up.SubmitMO(ctx, from, tpdu)
	})})
	ops := []*operator{newOperator(t, n, up, cards[0], msisdn), newOperator(t, n, up, cards[1], msisdn)}
	other := newOperator(t, n, otherUp, b, otherMSISDN)

	var wg sync.WaitGroup
	swapped, busy := 0, 0
	wg.Go(func() {
		next := 0
		for i := range 20 {
			c := cards[next]
			err := n.SwapSIM(c.dir, iccidOf(c, msisdn))
			switch {
			case err == nil:
				swapped++
				next = 1 - next
			case errors.Is(err, ErrPhoneBusy):
				busy++
			default:
				t.Errorf("SwapSIM(%d) = %v", i, err)
			}
		}
	})
	wg.Go(func() {
		for i := range 20 {
			_, tpdus := ops[i%2].wrap(&vmac.Info{Ref: uint32(i)})
			for _, tpdu := range tpdus {
				if err := n.DeliverSMS(t.Context(), msisdn, tpdu); err != nil {
					t.Errorf("DeliverSMS() = %v", err)
				}
			}
		}
	})
	for i := range 5 {
		if r := other.do(&vmac.Info{Ref: uint32(i)}); r.Status() != vmac.StatusOK {
			t.Errorf("INFO %d of the other phone = %v", i, r.Status())
		}
	}
	wg.Wait()
	if swapped == 0 {
		t.Errorf("no swap happened")
	}
	t.Logf("%d swaps, %d refused as busy", swapped, busy)
	if got := mustPhone(t, n, otherMSISDN).ICCID(); got != iccidOf(b, otherMSISDN) {
		t.Errorf("other phone's ICCID = %s, want %s", got, iccidOf(b, otherMSISDN))
	}
}
