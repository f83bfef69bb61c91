package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"
)

// CRL is a signed certificate revocation list of the issuing CA.
type CRL struct {
	Number     int64 // cRLNumber; every CRL gets the next one
	ThisUpdate time.Time
	NextUpdate time.Time
	DER        []byte
}

// generateCRL signs a new CRL from the certificates revoked or on hold as
// tx sees them and stores it. Taking the next number with an UPDATE locks
// the CRL row (on SQLite the whole database) until tx ends, so CRLs are
// numbered in the order they commit and each lists every revocation that
// committed before it, also across CA processes.
func (c *CA) generateCRL(ctx context.Context, tx *sql.Tx) (*CRL, error) {
	var number int64
	if err := tx.QueryRowContext(ctx, `UPDATE ca_crl SET number = number + 1 WHERE id = 1 RETURNING number`).Scan(&number); err != nil {
		return nil, fmt.Errorf("take CRL number: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT serial, revoked_at, reason, invalid_since FROM ca_certificate
		WHERE status <> 'good' ORDER BY revoked_at, serial`)
	if err != nil {
		return nil, fmt.Errorf("read revoked certificates: %w", err)
	}
	defer rows.Close()
	var entries []x509.RevocationListEntry
	for rows.Next() {
		var (
			serial       string
			revokedAt    int64
			reason       int
			invalidSince sql.NullInt64
		)
		if err := rows.Scan(&serial, &revokedAt, &reason, &invalidSince); err != nil {
			return nil, fmt.Errorf("read revoked certificates: %w", err)
		}
		sn, ok := new(big.Int).SetString(serial, 16)
		if !ok {
			return nil, fmt.Errorf("read revoked certificates: bad serial %q", serial)
		}
		e := x509.RevocationListEntry{SerialNumber: sn, RevocationTime: time.UnixMicro(revokedAt), ReasonCode: reason}
		if invalidSince.Valid {
			v, err := asn1.MarshalWithParams(time.UnixMicro(invalidSince.Int64).UTC(), "generalized")
			if err != nil {
				return nil, fmt.Errorf("encode invalidity date: %w", err)
			}
			e.ExtraExtensions = []pkix.Extension{{Id: oidInvalidityDate, Value: v}}
		}
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read revoked certificates: %w", err)
	}
	thisUpdate := c.now().Truncate(time.Second)
	crl := &CRL{Number: number, ThisUpdate: thisUpdate, NextUpdate: thisUpdate.Add(c.cfg.CRLPeriod)}
	crl.DER, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(number),
		ThisUpdate:                crl.ThisUpdate,
		NextUpdate:                crl.NextUpdate,
		RevokedCertificateEntries: entries,
	}, c.keys.Issuing, c.keys.IssuingKey)
	if err != nil {
		return nil, fmt.Errorf("sign CRL: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE ca_crl SET this_update = $1, next_update = $2, der = $3 WHERE id = 1`,
		crl.ThisUpdate.UnixMicro(), crl.NextUpdate.UnixMicro(), crl.DER); err != nil {
		return nil, fmt.Errorf("store CRL: %w", err)
	}
	return crl, nil
}

// crlCommitted caches a CRL whose transaction committed, unless a newer
// one is cached already.
func (c *CA) crlCommitted(crl *CRL) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crlCached == nil || crl.Number > c.crlCached.Number {
		c.crlCached = crl
		c.m.crlNumber.Set(float64(crl.Number))
	}
	c.log.Debug("CRL issued", "number", crl.Number, "next_update", crl.NextUpdate)
}

// UpdateCRL issues a new CRL now, whether or not anything changed.
func (c *CA) UpdateCRL(ctx context.Context) (*CRL, error) {
	var crl *CRL
	err := c.db.InTx(ctx, func(tx *sql.Tx) error {
		var err error
		crl, err = c.generateCRL(ctx, tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("update CRL: %w", err)
	}
	c.crlCommitted(crl)
	return crl, nil
}

// LatestCRL returns the newest CRL in the store, which another CA process
// may have issued. If there is none yet or it has passed its nextUpdate
// (Run is not running anywhere), it issues one, so what it returns is
// always current.
func (c *CA) LatestCRL(ctx context.Context) (*CRL, error) {
	c.mu.Lock()
	cached := c.crlCached
	c.mu.Unlock()
	var have int64 = -1
	if cached != nil {
		have = cached.Number
	}
	// The DER only crosses the connection when it is not cached.
	var (
		number, thisUpdate, nextUpdate int64
		der                            []byte
	)
	err := c.db.QueryRowContext(ctx, `SELECT number, this_update, next_update, CASE WHEN number = $1 THEN NULL ELSE der END
		FROM ca_crl WHERE id = 1`, have).Scan(&number, &thisUpdate, &nextUpdate, &der)
	if err != nil {
		return nil, fmt.Errorf("read CRL: %w", err)
	}
	if number == 0 || !c.now().Before(time.UnixMicro(nextUpdate)) {
		return c.UpdateCRL(ctx)
	}
	if number == have {
		return cached, nil
	}
	crl := &CRL{Number: number, ThisUpdate: time.UnixMicro(thisUpdate), NextUpdate: time.UnixMicro(nextUpdate), DER: der}
	c.crlCommitted(crl)
	return crl, nil
}

// Run issues a new CRL whenever the newest one is CRLPeriod/2 old (or
// dated in the future), so that relying parties always fetch one well
// before the one they hold runs out, until ctx is done; then it returns
// nil. Several processes may
// run it on one database: each looks at the newest CRL before issuing.
func (c *CA) Run(ctx context.Context) error {
	half := c.cfg.CRLPeriod / 2
	for {
		wait := half
		crl, err := c.LatestCRL(ctx)
		if err == nil {
			// A CRL from the future (another process's clock is ahead)
			// is replaced at once: relying parties would reject it as
			// not yet valid.
			if age := c.now().Sub(crl.ThisUpdate); age >= half || age < 0 {
				_, err = c.UpdateCRL(ctx)
			} else {
				wait = half - age
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.log.Error("cannot issue CRL", "err", err)
			wait = min(half, time.Minute)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
