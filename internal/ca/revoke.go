package ca

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"mobileid/internal/store"
)

// RFC 5280 §5.3.1 reason codes.
const (
	ReasonUnspecified          = 0
	ReasonKeyCompromise        = 1
	ReasonCACompromise         = 2
	ReasonAffiliationChanged   = 3
	ReasonSuperseded           = 4
	ReasonCessationOfOperation = 5
	ReasonCertificateHold      = 6
	ReasonRemoveFromCRL        = 8
	ReasonPrivilegeWithdrawn   = 9
	ReasonAACompromise         = 10
)

// reasonNames are the reasons Revoke accepts, by their RFC 5280 names
// (also the metric labels). cACompromise and aACompromise concern CA and
// attribute authority keys, not end entities, and removeFromCRL is only
// meaningful in delta CRLs, which this CA does not issue: Release is how
// a hold ends.
var reasonNames = map[int]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonCertificateHold:      "certificateHold",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
}

// Certificate statuses as CertStatus reports them; the values are those
// of RFC 6960's CertStatus choice (and golang.org/x/crypto/ocsp).
const (
	CertStatusGood    = 0
	CertStatusRevoked = 1 // includes on hold, with ReasonCertificateHold
	CertStatusUnknown = 2 // not issued by this CA
)

// Revoke implements Issuer. Reason ReasonCertificateHold suspends a good
// certificate; any other accepted reason revokes it for good, also one on
// hold (the revocation date stays that of the hold, as X.509 prescribes).
// The CRL is regenerated in the same transaction, so a committed
// revocation is always on the current CRL; then OnRevoke callbacks run.
func (c *CA) Revoke(ctx context.Context, serial *big.Int, reason int, at time.Time) error {
	name, ok := reasonNames[reason]
	if !ok {
		return fmt.Errorf("revoke certificate: %w: %d", ErrBadReason, reason)
	}
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("revoke certificate: %w", ErrNotFound)
	}
	now := c.now()
	switch {
	case at.IsZero():
		at = now
	case at.After(now.Add(maxClockSkew)):
		return fmt.Errorf("revoke certificate: %w: %s", ErrFutureRevocation, at.UTC().Format(time.RFC3339))
	case at.After(now):
		at = now
	}
	// X.509 times have whole seconds; storing them so keeps the store,
	// the CRL and OCSP answers identical.
	revokedAt, invalidSince := now.Truncate(time.Second), at.Truncate(time.Second)
	key := serialKey(serial)
	var event string
	var crl *CRL
	err := c.db.InTx(ctx, func(tx *sql.Tx) error {
		status, err := c.lockStatus(ctx, tx, key)
		if err != nil {
			return err
		}
		var res sql.Result
		switch {
		case status == StatusRevoked:
			return ErrAlreadyRevoked
		case status == StatusOnHold && reason == ReasonCertificateHold:
			return ErrAlreadyOnHold
		case status == StatusOnHold:
			event = "revoke"
			res, err = tx.ExecContext(ctx, `UPDATE ca_certificate SET status = 'revoked', reason = $2, invalid_since = $3
				WHERE serial = $1`, key, reason, invalidSince.UnixMicro())
		case reason == ReasonCertificateHold:
			event = "hold"
			res, err = tx.ExecContext(ctx, `UPDATE ca_certificate SET status = 'on_hold', revoked_at = $2, reason = $3, invalid_since = NULL
				WHERE serial = $1`, key, revokedAt.UnixMicro(), reason)
		default:
			event = "revoke"
			res, err = tx.ExecContext(ctx, `UPDATE ca_certificate SET status = 'revoked', revoked_at = $2, reason = $3, invalid_since = $4
				WHERE serial = $1`, key, revokedAt.UnixMicro(), reason, invalidSince.UnixMicro())
		}
		if err := oneRow(res, err); err != nil {
			return err
		}
		crl, err = c.generateCRL(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", key, err)
	}
	c.crlCommitted(crl)
	c.m.revoked.WithLabelValues(name).Inc()
	msg := "certificate revoked"
	attrs := []slog.Attr{
		slog.String("event", event),
		slog.String("serial", key),
		slog.Int("reason", reason),
		slog.String("reason_name", name),
		slog.Int64("crl_number", crl.Number),
	}
	if event == "hold" {
		msg = "certificate put on hold"
	} else {
		attrs = append(attrs, slog.Time("invalid_since", invalidSince))
	}
	c.audit.LogAttrs(ctx, slog.LevelInfo, msg, attrs...)
	c.notify(serial)
	return nil
}

// Release implements Issuer: a certificate on hold becomes good again
// and disappears from the next CRL, which is issued at once.
func (c *CA) Release(ctx context.Context, serial *big.Int) error {
	if serial == nil || serial.Sign() <= 0 {
		return fmt.Errorf("release certificate: %w", ErrNotFound)
	}
	key := serialKey(serial)
	var crl *CRL
	err := c.db.InTx(ctx, func(tx *sql.Tx) error {
		status, err := c.lockStatus(ctx, tx, key)
		if err != nil {
			return err
		}
		if status != StatusOnHold {
			return ErrNotOnHold
		}
		res, err := tx.ExecContext(ctx, `UPDATE ca_certificate SET status = 'good', revoked_at = NULL, reason = NULL, invalid_since = NULL
			WHERE serial = $1`, key)
		if err := oneRow(res, err); err != nil {
			return err
		}
		crl, err = c.generateCRL(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("release certificate %s: %w", key, err)
	}
	c.crlCommitted(crl)
	c.m.released.Inc()
	c.audit.LogAttrs(ctx, slog.LevelInfo, "certificate released from hold",
		slog.String("event", "release"),
		slog.String("serial", key),
		slog.Int64("crl_number", crl.Number))
	c.notify(serial)
	return nil
}

// lockStatus reads a certificate's status and, on PostgreSQL, locks its
// row until tx ends so that two concurrent revocations cannot both see it
// good. On SQLite the transaction already holds the database's write lock.
func (c *CA) lockStatus(ctx context.Context, tx *sql.Tx, key string) (Status, error) {
	q := `SELECT status FROM ca_certificate WHERE serial = $1`
	if c.db.Dialect() == store.Postgres {
		q += ` FOR UPDATE`
	}
	var s string
	err := tx.QueryRowContext(ctx, q, key).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read status: %w", err)
	}
	return Status(s), nil
}

func oneRow(res sql.Result, err error) error {
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update status: %d rows changed (%v)", n, err)
	}
	return nil
}

// OnRevoke registers f to be called with the serial number after each
// revocation, hold and release has committed, so that an OCSP responder
// in this process can drop a cached answer at once. f runs on the caller's
// goroutine and must be quick. Responders in other processes are not
// told: they must bound how long they cache answers.
func (c *CA) OnRevoke(f func(serial *big.Int)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onRevoke = append(c.onRevoke, f)
}

func (c *CA) notify(serial *big.Int) {
	c.mu.Lock()
	fs := c.onRevoke
	c.mu.Unlock()
	for _, f := range fs {
		f(new(big.Int).Set(serial))
	}
}

// CertStatus is the lookup the OCSP responder makes: CertStatusGood,
// CertStatusRevoked (with the revocation time and reason; a certificate
// on hold is revoked with ReasonCertificateHold) or CertStatusUnknown for a
// serial number this CA never issued. Expired certificates keep their
// status. err is only for a failing store.
func (c *CA) CertStatus(ctx context.Context, serial *big.Int) (status int, revokedAt time.Time, reason int, err error) {
	if serial == nil || serial.Sign() <= 0 {
		return CertStatusUnknown, time.Time{}, 0, nil
	}
	var st string
	var at, rs sql.NullInt64
	err = c.db.QueryRowContext(ctx, `SELECT status, revoked_at, reason FROM ca_certificate WHERE serial = $1`,
		serialKey(serial)).Scan(&st, &at, &rs)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return CertStatusUnknown, time.Time{}, 0, nil
	case err != nil:
		return 0, time.Time{}, 0, fmt.Errorf("look up certificate status: %w", err)
	case Status(st) == StatusGood:
		return CertStatusGood, time.Time{}, 0, nil
	}
	return CertStatusRevoked, time.UnixMicro(at.Int64), int(rs.Int64), nil
}

// WatchRevocations makes revocations committed by other processes visible
// to this one's OnRevoke callbacks within about every interval: every
// revocation, hold and release issues a new CRL, so a cheap look at the
// CRL number tells whether anything changed, and only then are the
// certificates revoked since the last look read. It returns when ctx is
// done.
func (c *CA) WatchRevocations(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		interval = time.Second
	}
	var lastNumber int64 = -1
	var since int64
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var number int64
		err := c.db.QueryRowContext(ctx, `SELECT number FROM ca_crl WHERE id = 1`).Scan(&number)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case err != nil:
			c.log.Warn("cannot read the CRL number", "err", err)
		case lastNumber < 0:
			// First look: what is revoked now is already in the store and
			// no answer about it is cached yet.
			lastNumber, since = number, c.now().Add(-time.Minute).UnixMicro()
		case number != lastNumber:
			if next, err := c.notifySince(ctx, since); err != nil {
				c.log.Warn("cannot read revocations", "err", err)
			} else {
				lastNumber, since = number, next
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// notifySince calls the OnRevoke callbacks for every certificate revoked,
// held or released since the given time (Unix microseconds), with a margin
// for the clocks of other processes, and returns where to look from next.
func (c *CA) notifySince(ctx context.Context, since int64) (int64, error) {
	const margin = int64(time.Minute / time.Microsecond)
	rows, err := c.db.QueryContext(ctx, `SELECT serial, revoked_at FROM ca_certificate WHERE revoked_at >= $1`, since-margin)
	if err != nil {
		return since, err
	}
	defer rows.Close()
	next := since
	for rows.Next() {
		var key string
		var at int64
		if err := rows.Scan(&key, &at); err != nil {
			return since, err
		}
		if serial, ok := new(big.Int).SetString(key, 16); ok {
			c.notify(serial)
		}
		next = max(next, at)
	}
	if err := rows.Err(); err != nil {
		return since, err
	}
	return max(next, c.now().Add(-time.Minute).UnixMicro()), nil
}
