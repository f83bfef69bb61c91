// Package mssp is the Signature Server (MSSP) of the Mobile ID platform: the
// operator-side service that sends signature requests to the VMAC applet on
// the subscriber's SIM as OTA command packets and opens the cards' answers.
//
// This file is its SIM registry ([SIMs]): the SIMs imported from the vendor's
// personalisation batch (package simbatch), their OTA keys, kept encrypted at
// rest, and the per-SIM OTA counter. The signature transactions built on it
// follow in later files.
package mssp

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"mobileid/internal/ota"
	"mobileid/internal/simbatch"
	"mobileid/internal/store"
)

// component is the name the MSSP's migrations are recorded under.
const component = "mssp"

//go:embed migrations
var migrationsFS embed.FS

// Errors returned, possibly wrapped, by SIMs.
var (
	// ErrUnknownSIM means no SIM with that MSISDN has been imported.
	ErrUnknownSIM = errors.New("mssp: unknown SIM")
	// ErrCounterExhausted means the SIM's OTA counter has reached
	// ota.MaxCounter: the card can no longer be sent a command.
	ErrCounterExhausted = errors.New("mssp: OTA counter exhausted")
	// ErrImportConflict means a record of a batch has the ICCID or MSISDN
	// of a known SIM but differs from it (other keys, number or TAR), or,
	// for [SIMs.Swap], that the new SIM's ICCID is known already.
	ErrImportConflict = errors.New("mssp: SIM conflicts with a known one")
	// ErrResponseMismatch means a response does not answer the command:
	// its counter or TAR is not the command's.
	ErrResponseMismatch = errors.New("mssp: response does not match the command")
)

// commandSPI is the SPI of every command the MSSP sends, 16 39: ciphered,
// with a CC, processed only if the counter is higher than the card's; PoR
// always, with a CC, ciphered, sent by SMS-SUBMIT. It is the VMAC applet's
// minimum security level (docs/ota.md).
var commandSPI = ota.SPI{
	Integrity:    ota.CC,
	Ciphered:     true,
	Counter:      ota.CounterHigher,
	PoR:          ota.PoRAlways,
	PoRIntegrity: ota.CC,
	PoRCiphered:  true,
	PoRSubmit:    true,
}

// SIMs is the MSSP's registry of SIMs: imported from the vendor's batch file,
// OTA keys encrypted at rest under a key-encryption key from configuration,
// and the per-SIM OTA counter, which never repeats.
//
// The keys are sealed with AES-256-GCM and the ICCID as additional data, so a
// key row copied to another SIM does not open. They are never logged nor
// returned: [SIM] has no key fields, and SIMs formats without its internals.
// A SIMs is safe for concurrent use.
type SIMs struct {
	db  *store.DB
	kek cipher.AEAD
	now func() time.Time
}

// SIM is a registered SIM, without its keys.
type SIM struct {
	ICCID      string
	IMSI       string
	MSISDN     string
	TAR        ota.TAR
	KIc        byte // KIc octet of the OTA key set
	KID        byte // KID octet of the OTA key set
	ImportedAt time.Time
}

// NewSIMs returns the registry stored in db, migrating the "mssp" tables.
// kek is the 32-byte key-encryption key the OTA keys are sealed with; it is
// not kept, only the cipher made from it. now is the clock (time.Now when
// nil).
func NewSIMs(db *store.DB, kek []byte, now func() time.Time) (*SIMs, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("mssp: key-encryption key of %d bytes, want 32", len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("mssp: key-encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("mssp: key-encryption key: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("mssp: %w", err)
	}
	if err := db.Migrate(context.Background(), component, sub); err != nil {
		return nil, fmt.Errorf("mssp: %w", err)
	}
	return &SIMs{db: db, kek: aead, now: now}, nil
}

// String describes s without its internals (the database handle and the
// key-encryption cipher).
func (s *SIMs) String() string { return "mssp.SIMs" }

// GoString is String, so that %#v does not dump the internals either.
func (s *SIMs) GoString() string { return s.String() }

// seal encrypts a SIM's key pair: nonce || GCM(len(kic) || kic || kid) with
// the ICCID as additional data.
func (s *SIMs) seal(iccid string, k ota.Keys) ([]byte, error) {
	plain := make([]byte, 0, 1+len(k.KIc)+len(k.KID))
	plain = append(append(append(plain, byte(len(k.KIc))), k.KIc...), k.KID...)
	defer clear(plain)
	nonce := make([]byte, s.kek.NonceSize(), s.kek.NonceSize()+len(plain)+s.kek.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("mssp: %w", err)
	}
	return s.kek.Seal(nonce, nonce, plain, []byte(iccid)), nil
}

// open decrypts what seal made for iccid.
func (s *SIMs) open(iccid string, sealed []byte) (ota.Keys, error) {
	ns := s.kek.NonceSize()
	if len(sealed) < ns+s.kek.Overhead() {
		return ota.Keys{}, fmt.Errorf("mssp: SIM %s: sealed keys are truncated", iccid)
	}
	plain, err := s.kek.Open(nil, sealed[:ns], sealed[ns:], []byte(iccid))
	if err != nil {
		return ota.Keys{}, fmt.Errorf("mssp: SIM %s: keys do not open under the key-encryption key", iccid)
	}
	if len(plain) < 1 || int(plain[0]) > len(plain)-1 {
		clear(plain)
		return ota.Keys{}, fmt.Errorf("mssp: SIM %s: sealed keys are malformed", iccid)
	}
	n := int(plain[0])
	return ota.Keys{KIc: plain[1 : 1+n : 1+n], KID: plain[1+n:]}, nil
}

// clearKeys overwrites key material once it is no longer needed.
func clearKeys(k ota.Keys) {
	clear(k.KIc)
	clear(k.KID)
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const simColumns = `iccid, imsi, msisdn, tar, kic, kid, keys, imported_at`

// scanSIM reads a row of simColumns.
func scanSIM(row *sql.Row) (*SIM, []byte, error) {
	var (
		sim           SIM
		tar           string
		kic, kid, imp int64
		sealed        []byte
	)
	if err := row.Scan(&sim.ICCID, &sim.IMSI, &sim.MSISDN, &tar, &kic, &kid, &sealed, &imp); err != nil {
		return nil, nil, err
	}
	t, err := ota.ParseTAR(tar)
	if err != nil {
		return nil, nil, fmt.Errorf("mssp: SIM %s: stored TAR: %w", sim.ICCID, err)
	}
	sim.TAR, sim.KIc, sim.KID = t, byte(kic), byte(kid)
	sim.ImportedAt = time.UnixMicro(imp)
	return &sim, sealed, nil
}

// lookup finds a SIM by column (iccid or msisdn); it returns nil when there
// is none.
func lookup(ctx context.Context, q querier, column, value string) (*SIM, []byte, error) {
	sim, sealed, err := scanSIM(q.QueryRowContext(ctx,
		`SELECT `+simColumns+` FROM mssp_sims WHERE `+column+` = $1`, value))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("mssp: look up SIM by %s: %w", column, err)
	}
	return sim, sealed, nil
}

// Import adds a batch of SIMs, all in one transaction, with their counters
// at 0. A record identical to a known SIM (same ICCID, IMSI, MSISDN, TAR and
// keys) is skipped, so a batch may be imported again. A record that shares
// its ICCID or MSISDN with a known SIM (or an earlier record of the batch)
// but differs from it is an [ErrImportConflict], and then, as for an invalid
// record, nothing is imported.
func (s *SIMs) Import(ctx context.Context, recs []simbatch.Record) (added, skipped int, err error) {
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return 0, 0, fmt.Errorf("mssp: import record %d: %w", i+1, err)
		}
	}
	now := s.now().UnixMicro()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		added, skipped = 0, 0
		for i := range recs {
			r := &recs[i]
			known, err := s.known(ctx, tx, r)
			if err != nil {
				return fmt.Errorf("mssp: import record %d: %w", i+1, err)
			}
			if known {
				skipped++
				continue
			}
			sealed, err := s.seal(r.ICCID, ota.Keys{KIc: r.KIcKey, KID: r.KIDKey})
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO mssp_sims (`+simColumns+`, counter)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)`,
				r.ICCID, r.IMSI, r.MSISDN, r.TAR.String(), int64(r.KIc), int64(r.KID), sealed, now)
			if store.IsUniqueViolation(err) {
				return fmt.Errorf("mssp: import record %d: ICCID %s or MSISDN %s: %w", i+1, r.ICCID, r.MSISDN, ErrImportConflict)
			}
			if err != nil {
				return fmt.Errorf("mssp: import record %d: %w", i+1, err)
			}
			added++
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return added, skipped, nil
}

// known reports whether r is already registered, identically; a SIM with
// r's ICCID or MSISDN that differs from r is an ErrImportConflict.
func (s *SIMs) known(ctx context.Context, tx *sql.Tx, r *simbatch.Record) (bool, error) {
	sim, sealed, err := lookup(ctx, tx, "iccid", r.ICCID)
	if err != nil {
		return false, err
	}
	if sim != nil && strings.HasPrefix(sim.MSISDN, retiredPrefix) {
		// The batch file still lists a SIM that a swap has replaced since:
		// it stays retired, and the record is known if it is the one the
		// SIM was imported with.
		var former string
		if err := tx.QueryRowContext(ctx, `SELECT retired_msisdn FROM mssp_sims WHERE iccid = $1`, r.ICCID).Scan(&former); err != nil {
			return false, fmt.Errorf("look up retired SIM %s: %w", r.ICCID, err)
		}
		sim.MSISDN = former
	}
	if sim == nil {
		other, _, err := lookup(ctx, tx, "msisdn", r.MSISDN)
		if err != nil {
			return false, err
		}
		if other != nil {
			return false, fmt.Errorf("MSISDN %s belongs to SIM %s, not %s: %w", r.MSISDN, other.ICCID, r.ICCID, ErrImportConflict)
		}
		return false, nil
	}
	if sim.IMSI != r.IMSI || sim.MSISDN != r.MSISDN || sim.TAR != r.TAR || sim.KIc != r.KIc || sim.KID != r.KID {
		return false, fmt.Errorf("ICCID %s is known with other details: %w", r.ICCID, ErrImportConflict)
	}
	k, err := s.open(sim.ICCID, sealed)
	if err != nil {
		return false, err
	}
	defer clearKeys(k)
	if !bytes.Equal(k.KIc, r.KIcKey) || !bytes.Equal(k.KID, r.KIDKey) {
		return false, fmt.Errorf("ICCID %s is known with other keys: %w", r.ICCID, ErrImportConflict)
	}
	return true, nil
}

// ByMSISDN returns the SIM with that number, or [ErrUnknownSIM].
func (s *SIMs) ByMSISDN(ctx context.Context, msisdn string) (*SIM, error) {
	if err := simbatch.ValidMSISDN(msisdn); err != nil {
		return nil, fmt.Errorf("mssp: %w", err)
	}
	sim, _, err := lookup(ctx, s.db, "msisdn", msisdn)
	if err != nil {
		return nil, err
	}
	if sim == nil {
		return nil, fmt.Errorf("%w: MSISDN %s", ErrUnknownSIM, msisdn)
	}
	return sim, nil
}

// Wrap allocates the SIM's next OTA counter and wraps data as a command
// packet to it (from CPL onward, without the 02 70 00 user data header),
// with SPI 16 39 and the SIM's TAR and key set. It returns the packet and
// the command, which [SIMs.Open] needs to open the card's response.
//
// The counter is incremented in the database before the packet exists, so
// no two packets ever carry the same counter. When tx is not nil the
// increment is made in it and commits, or rolls back, with the caller's
// other work; a rolled-back counter is reused, which is safe only because
// the packet must not be sent before the commit. When tx is nil the
// increment commits on its own. A SIM whose counter has reached
// ota.MaxCounter gets [ErrCounterExhausted].
func (s *SIMs) Wrap(ctx context.Context, tx *sql.Tx, msisdn string, data []byte) (pkt []byte, cmd *ota.Command, err error) {
	if err := simbatch.ValidMSISDN(msisdn); err != nil {
		return nil, nil, fmt.Errorf("mssp: %w", err)
	}
	var (
		sim     *SIM
		sealed  []byte
		counter int64
	)
	next := func(tx *sql.Tx) error {
		var err error
		sim, sealed, counter, err = nextCounter(ctx, s.db, tx, msisdn)
		return err
	}
	if tx != nil {
		err = next(tx)
	} else {
		err = s.db.InTx(ctx, next)
	}
	if err != nil {
		return nil, nil, err
	}
	k, err := s.open(sim.ICCID, sealed)
	if err != nil {
		return nil, nil, err
	}
	defer clearKeys(k)
	cmd = &ota.Command{
		SPI:     commandSPI,
		KIc:     sim.KIc,
		KID:     sim.KID,
		TAR:     sim.TAR,
		Counter: uint64(counter),
		Data:    bytes.Clone(data),
	}
	pkt, err = ota.WrapCommand(cmd, k)
	if err != nil {
		return nil, nil, fmt.Errorf("mssp: wrap command to %s: %w", msisdn, err)
	}
	return pkt, cmd, nil
}

// nextCounter increments msisdn's counter in tx and returns the SIM, its
// sealed keys and the new counter.
func nextCounter(ctx context.Context, db *store.DB, tx *sql.Tx, msisdn string) (*SIM, []byte, int64, error) {
	var (
		sim           SIM
		tar           string
		kic, kid, imp int64
		sealed        []byte
		counter       int64
	)
	err := db.QueryRowTx(ctx, tx, `UPDATE mssp_sims SET counter = counter + 1
		WHERE msisdn = $1 AND counter < $2
		RETURNING counter, `+simColumns, msisdn, int64(ota.MaxCounter)).
		Scan(&counter, &sim.ICCID, &sim.IMSI, &sim.MSISDN, &tar, &kic, &kid, &sealed, &imp)
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mssp_sims WHERE msisdn = $1`, msisdn).Scan(&n); err != nil {
			return nil, nil, 0, fmt.Errorf("mssp: allocate OTA counter for %s: %w", msisdn, err)
		}
		if n == 0 {
			return nil, nil, 0, fmt.Errorf("%w: MSISDN %s", ErrUnknownSIM, msisdn)
		}
		return nil, nil, 0, fmt.Errorf("%w: MSISDN %s", ErrCounterExhausted, msisdn)
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("mssp: allocate OTA counter for %s: %w", msisdn, err)
	}
	t, err := ota.ParseTAR(tar)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("mssp: SIM %s: stored TAR: %w", sim.ICCID, err)
	}
	sim.TAR, sim.KIc, sim.KID = t, byte(kic), byte(kid)
	sim.ImportedAt = time.UnixMicro(imp)
	return &sim, sealed, counter, nil
}

// Open opens resp, the card's response packet (from RPL onward, or with the
// 02 71 00 header in front) to cmd, which [SIMs.Wrap] made for msisdn, with
// that SIM's keys. A secured response must echo cmd's counter and TAR, or
// the error is [ErrResponseMismatch]. An unsecured response, which
// ota.OpenResponse accepts only for an error status, is returned as is
// (Secured false): its counter is not authenticated, and the caller treats
// its non-zero status as a failure anyway.
func (s *SIMs) Open(ctx context.Context, msisdn string, cmd *ota.Command, resp []byte) (*ota.Response, error) {
	return s.OpenTx(ctx, nil, msisdn, cmd, resp)
}

// OpenTx is Open reading the SIM's keys with tx when it is not nil: a
// caller that holds a write transaction must not wait for another
// connection.
func (s *SIMs) OpenTx(ctx context.Context, tx *sql.Tx, msisdn string, cmd *ota.Command, resp []byte) (*ota.Response, error) {
	if cmd == nil {
		return nil, errors.New("mssp: open response: no command")
	}
	if err := simbatch.ValidMSISDN(msisdn); err != nil {
		return nil, fmt.Errorf("mssp: %w", err)
	}
	sim, sealed, err := scanSIM(s.db.QueryRowTx(ctx, tx, `SELECT `+simColumns+` FROM mssp_sims WHERE msisdn = $1`, msisdn))
	if errors.Is(err, sql.ErrNoRows) {
		sim, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if sim == nil {
		return nil, fmt.Errorf("%w: MSISDN %s", ErrUnknownSIM, msisdn)
	}
	if cmd.TAR != sim.TAR || cmd.KIc != sim.KIc || cmd.KID != sim.KID {
		return nil, fmt.Errorf("mssp: open response from %s: the command was not made for this SIM", msisdn)
	}
	k, err := s.open(sim.ICCID, sealed)
	if err != nil {
		return nil, err
	}
	defer clearKeys(k)
	r, err := ota.OpenResponse(resp, cmd, k)
	if err != nil {
		return nil, fmt.Errorf("mssp: open response from %s: %w", msisdn, err)
	}
	if !r.Secured {
		return r, nil
	}
	if r.Counter != cmd.Counter {
		return nil, fmt.Errorf("%w: counter %d, sent %d to %s", ErrResponseMismatch, r.Counter, cmd.Counter, msisdn)
	}
	if r.TAR != cmd.TAR {
		return nil, fmt.Errorf("%w: TAR %s, sent %s to %s", ErrResponseMismatch, r.TAR, cmd.TAR, msisdn)
	}
	return r, nil
}

// retiredPrefix starts the msisdn column of a SIM that [SIMs.Swap]
// replaced. It is followed by the SIM's ICCID, which keeps the column
// unique, and can never be a valid MSISDN, so that no lookup by number
// finds the SIM again.
const retiredPrefix = "retired:"

// Swap replaces the SIM that has r.MSISDN with r, a new card for the same
// number (the person's SIM was lost or broken, or changes format), in one
// transaction. The old SIM is retired, not deleted: its row stays for
// audit but no lookup by number finds it, so [SIMs.Wrap], [SIMs.Open] and
// [SIMs.ByMSISDN] use r from then on, starting again from counter 1 with
// r's keys and TAR. The MSSP's user of the number is deleted as well:
// their keys were on the old card, so they must register again on the new
// one. Swap returns the retired SIM.
//
// When no SIM has r.MSISDN, r is simply imported and old is nil. A record
// whose ICCID is known already, in use or retired, is an
// [ErrImportConflict].
//
// A [Users] registry, of this process or another, may serve the deleted
// user from its cache for up to userCacheTTL more; a signature request
// made meanwhile reaches the new card, which has no keys and refuses it.
func (s *SIMs) Swap(ctx context.Context, r simbatch.Record) (old *SIM, err error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("mssp: swap SIM: %w", err)
	}
	now := s.now().UnixMicro()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		old = nil
		known, _, err := lookup(ctx, tx, "iccid", r.ICCID)
		if err != nil {
			return fmt.Errorf("mssp: swap SIM %s: %w", r.ICCID, err)
		}
		if known != nil {
			return fmt.Errorf("mssp: swap SIM %s: the ICCID is known already: %w", r.ICCID, ErrImportConflict)
		}
		prev, _, err := lookup(ctx, tx, "msisdn", r.MSISDN)
		if err != nil {
			return fmt.Errorf("mssp: swap SIM %s: %w", r.ICCID, err)
		}
		if prev != nil {
			res, err := tx.ExecContext(ctx, `UPDATE mssp_sims SET msisdn = $1, retired_msisdn = $2, retired_at = $3
				WHERE iccid = $4 AND msisdn = $2`,
				retiredPrefix+prev.ICCID, r.MSISDN, now, prev.ICCID)
			if err != nil {
				return fmt.Errorf("mssp: retire SIM %s: %w", prev.ICCID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("mssp: retire SIM %s: %w", prev.ICCID, err)
			}
			if n != 1 {
				// Another swap of the number retired it first.
				return fmt.Errorf("mssp: swap SIM %s: SIM %s of %s retired meanwhile: %w", r.ICCID, prev.ICCID, r.MSISDN, ErrImportConflict)
			}
			// The keys the user registered are on the old card.
			if _, err := tx.ExecContext(ctx, `DELETE FROM mssp_users WHERE msisdn = $1`, r.MSISDN); err != nil {
				return fmt.Errorf("mssp: remove user %s: %w", r.MSISDN, err)
			}
		}
		sealed, err := s.seal(r.ICCID, ota.Keys{KIc: r.KIcKey, KID: r.KIDKey})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO mssp_sims (`+simColumns+`, counter)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0)`,
			r.ICCID, r.IMSI, r.MSISDN, r.TAR.String(), int64(r.KIc), int64(r.KID), sealed, now)
		if store.IsUniqueViolation(err) {
			// Another swap or import of the number won the race.
			return fmt.Errorf("mssp: swap SIM %s: ICCID or MSISDN %s taken meanwhile: %w", r.ICCID, r.MSISDN, ErrImportConflict)
		}
		if err != nil {
			return fmt.Errorf("mssp: swap SIM %s: %w", r.ICCID, err)
		}
		old = prev
		return nil
	})
	if err != nil {
		return nil, err
	}
	return old, nil
}
