package mssp

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"time"

	"mobileid/internal/etsi"
)

// queueNotification records, in tx, that transaction id's AP must be
// told of its end (asynchServerServer).
func (e *Engine) queueNotification(ctx context.Context, tx *sql.Tx, id int64, now time.Time) error {
	if _, err := e.db.ExecTx(ctx, tx, `INSERT INTO mssp_notify (tx_id, next_at) VALUES ($1, $2) ON CONFLICT (tx_id) DO NOTHING`,
		id, now.UnixMicro()); err != nil {
		return fmt.Errorf("mssp: queue notification: %w", err)
	}
	return nil
}

// notifyLease is how long a node that claimed a callback has to deliver
// it before another node may try.
const notifyLease = time.Minute

// notifyBackoff is the pause after the n-th failed attempt: 1 s doubling
// up to 5 min.
func notifyBackoff(n int) time.Duration {
	d := time.Second << min(n, 9)
	return min(d, 5*time.Minute)
}

func (e *Engine) notifyLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		if err := e.Notify(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("notifications failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.notifyWake:
		}
	}
}

// Notify delivers the MSS_Notification callbacks that are due, each to its
// transaction's AP_URL, and schedules failed ones again with back-off.
// After Config.NotifyAttempts failures a callback is given up and the
// audit log records 405 NO_URL_FOUND; the AP can still ask with
// MSS_StatusQuery.
func (e *Engine) Notify(ctx context.Context) error {
	if e.cfg.Notification == nil {
		return nil
	}
	now := e.now()
	rows, err := e.db.QueryContext(ctx, `SELECT tx_id, attempts FROM mssp_notify WHERE next_at <= $1 ORDER BY next_at LIMIT 100`, now.UnixMicro())
	if err != nil {
		return fmt.Errorf("mssp: list notifications: %w", err)
	}
	type due struct {
		id       int64
		attempts int
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.attempts); err != nil {
			rows.Close()
			return err
		}
		list = append(list, d)
	}
	rows.Close()
	for _, d := range list {
		// Claim it, so that another node does not post it too.
		res, err := e.db.ExecContext(ctx, `UPDATE mssp_notify SET next_at = $1 WHERE tx_id = $2 AND next_at <= $3`,
			now.Add(notifyLease).UnixMicro(), d.id, now.UnixMicro())
		if err != nil {
			return fmt.Errorf("mssp: claim notification: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue
		}
		r, err := e.load(ctx, e.db, d.id)
		if err != nil {
			return err
		}
		postErr := e.post(ctx, &r.Transaction)
		if postErr == nil {
			_, err = e.db.ExecContext(ctx, `DELETE FROM mssp_notify WHERE tx_id = $1`, d.id)
			e.audit.Info("notification delivered", "tx", r.TransID, "ap", r.APID, "url", r.APURL, "attempts", d.attempts+1)
		} else if d.attempts+1 >= e.cfg.NotifyAttempts {
			_, err = e.db.ExecContext(ctx, `DELETE FROM mssp_notify WHERE tx_id = $1`, d.id)
			e.audit.Warn("notification given up", "tx", r.TransID, "ap", r.APID, "url", r.APURL,
				"status", int(etsi.CodeNoURLFound), "attempts", d.attempts+1, "err", postErr)
		} else {
			_, err = e.db.ExecContext(ctx, `UPDATE mssp_notify SET attempts = $1, next_at = $2, last_err = $3 WHERE tx_id = $4`,
				d.attempts+1, e.now().Add(notifyBackoff(d.attempts)).UnixMicro(), postErr.Error(), d.id)
		}
		if err != nil {
			return fmt.Errorf("mssp: record notification: %w", err)
		}
	}
	return nil
}

// post sends one callback; any 2xx answer acknowledges it.
func (e *Engine) post(ctx context.Context, t *Transaction) error {
	body, ctype, err := e.cfg.Notification(t)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.APURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := e.cfg.NotifyClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("AP answered %s", resp.Status)
	}
	return nil
}
