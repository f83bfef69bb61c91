package handset

import (
	"errors"
	"fmt"
	"path/filepath"

	"mobileid/internal/simbatch"
)

// ErrPhoneBusy means the phone's card is working on a command, so it
// cannot be taken out now; the swap may be tried again once the command
// has ended.
var ErrPhoneBusy = errors.New("handset: the phone's SIM is busy with a command")

// SwapSIM puts a new card into the phone that has the card's number, as a
// shop does for a SIM swap: the operator issued a new SIM for the same
// MSISDN, with a new ICCID and new OTA keys, because the person's card was
// lost or broken or changes format.
//
// The card is cards/<iccid>.card of batchDir, another batch directory than
// the one the network was loaded from, opened with that batch's factory
// key and given the PUK from its mailer file. It replaces the phone's
// card, its state file and its PUK. The old card's last state is stored
// before it leaves the phone. What the phone held for the old card goes:
// the screen, the parts of concatenated messages and a question waiting
// for the console's keys. The phone keeps its number, switches, behaviour,
// PINs, inbox and counters.
//
// It is an error when no phone has the card's number or the card is in
// the phone already, and [ErrPhoneBusy] while the phone's card is working
// on a command.
//
// The swap lasts as long as the Network: the directory it was loaded from
// is not changed, so loading it again puts the old cards back in.
func (n *Network) SwapSIM(batchDir, iccid string) error {
	if err := simbatch.ValidICCID(iccid); err != nil {
		// Checked before it becomes part of a path.
		return fmt.Errorf("handset: swap SIM: %w", err)
	}
	key, err := readFactoryKey(filepath.Join(batchDir, factoryKeyFile))
	if err != nil {
		return err
	}
	defer clear(key)
	puks, err := readPUKs(filepath.Join(batchDir, mailerFile))
	if err != nil {
		return err
	}
	puk := puks[iccid]
	clear(puks)
	cards, states, err := openCards([]string{filepath.Join(batchDir, cardsDir, iccid+cardExt)}, key, n.cfg.Card)
	if err != nil {
		return err
	}
	card, state := cards[0], states[0]
	if card.ICCID() != iccid {
		return fmt.Errorf("handset: card image %s%s holds card %s", iccid, cardExt, card.ICCID())
	}
	msisdn := card.MSISDN()
	p := n.byMSISDN[msisdn]
	if p == nil {
		return fmt.Errorf("handset: swap SIM %s: no phone has its number %s", iccid, msisdn)
	}

	// n.mu orders the swap with Close, which releases every phone's state
	// file; p.saveMu with persist, which writes the card's state; p.mu
	// with the sessions, which use the card once they are counted.
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	p.mu.Lock()
	if p.sessions > 0 {
		p.mu.Unlock()
		return fmt.Errorf("handset: swap SIM of %s: %w", msisdn, ErrPhoneBusy)
	}
	old, oldState := p.card, p.state
	if old.ICCID() == iccid {
		p.mu.Unlock()
		return fmt.Errorf("handset: swap SIM of %s: card %s is in the phone already", msisdn, iccid)
	}
	// A card leaves the phone with its last state on disk, as it would
	// if the phone had been switched off first.
	var saveErr error
	if old.Changed() || p.unsaved {
		img, err := old.Image()
		if err == nil {
			err = oldState.write(img, n.cfg.SyncWrites)
		}
		saveErr = err
	}
	p.card, p.state, p.puk, p.unsaved = card, state, puk, false
	p.dropPrompt()
	p.screen, p.lastShow = Screen{}, false
	p.resetMemory()
	p.mu.Unlock()
	oldState.close()

	if saveErr != nil {
		n.log.Error("handset: state of the card taken out not stored", "msisdn", msisdn, "iccid", old.ICCID(), "err", saveErr)
	}
	n.log.Info("handset: SIM swapped", "msisdn", msisdn, "old", old.ICCID(), "new", iccid)
	p.changed()
	return nil
}
