package mssp

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"mobileid/internal/etsi"
)

// ErrUnknownTransaction means no transaction has the MSSP_TransID asked
// for.
var ErrUnknownTransaction = errors.New("mssp: unknown transaction")

// TxRecord is a transaction as operations staff follow it: who asked for
// what, where it stands and when each step happened. It leaves out what
// the request carried to be signed and what the SIM answered.
type TxRecord struct {
	TransID   string // MSSP_TransID
	APID      string
	APTransID string
	Kind      string // sign, receipt, register or test
	// Operation is the registration operation, empty for other kinds.
	Operation string
	MSISDN    string
	Mode      etsi.MessagingMode
	Profile   string
	State     string
	Status    etsi.Code
	Detail    int    // FiCom detail code, 0 when none
	Message   string // why, in English
	// Counter and TAR are the OTA counter and application of the command
	// sent to the SIM; zero and empty when nothing was sent.
	Counter uint64
	TAR     string
	// The steps: stored with its command queued for the Messaging Server
	// (sent), the SMSC's receipt (delivered), the SIM's answer opened and
	// waiting to be checked (answered) and the end (validated or
	// failed). A step that did not happen is zero; an answer that ends
	// the transaction at once (a cancel, a PIN error, a card's report)
	// goes straight to Finished.
	Created, Delivered, Answered, Finished time.Time
	// Deadline is when the transaction times out.
	Deadline time.Time
}

// recentColumns are the columns of mssp_tx a TxRecord needs; request is
// read only for its profile, operation and TAR.
const recentColumns = `trans_id, ap_id, ap_trans_id, kind, msisdn, mode, state, status, detail, message, counter,
	request, created_at, delivered_at, answered_at, finished_at, deadline`

// Recent returns the latest transactions, newest first: at most limit,
// which is 50 when not positive and at most 1000.
func (e *Engine) Recent(ctx context.Context, limit int) ([]*TxRecord, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	rows, err := e.db.QueryContext(ctx, `SELECT `+recentColumns+` FROM mssp_tx ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("mssp: list transactions: %w", err)
	}
	defer rows.Close()
	var out []*TxRecord
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mssp: list transactions: %w", err)
	}
	return out, nil
}

// TransactionRecord returns the transaction with MSSP_TransID transID, of
// any AP, or ErrUnknownTransaction.
func (e *Engine) TransactionRecord(ctx context.Context, transID string) (*TxRecord, error) {
	r, err := scanRecord(e.db.QueryRowContext(ctx, `SELECT `+recentColumns+` FROM mssp_tx WHERE trans_id = $1`, transID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w %q", ErrUnknownTransaction, transID)
	}
	return r, err
}

func scanRecord(s scanner) (*TxRecord, error) {
	var (
		r                                             TxRecord
		mode                                          string
		status, detail, counter                       int64
		reqJSON                                       []byte
		created, delivered, answered, finished, until int64
	)
	if err := s.Scan(&r.TransID, &r.APID, &r.APTransID, &r.Kind, &r.MSISDN, &mode, &r.State, &status, &detail, &r.Message,
		&counter, &reqJSON, &created, &delivered, &answered, &finished, &until); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		return nil, fmt.Errorf("mssp: read transaction: %w", err)
	}
	var req struct {
		Profile   string `json:"profile"`
		Operation string `json:"operation"`
		TAR       string `json:"tar"`
	}
	if err := json.Unmarshal(reqJSON, &req); err != nil {
		return nil, fmt.Errorf("mssp: transaction %s: stored request: %w", r.TransID, err)
	}
	r.Mode, r.Status, r.Detail, r.Counter = etsi.MessagingMode(mode), etsi.Code(status), int(detail), uint64(counter)
	r.Profile, r.Operation, r.TAR = req.Profile, req.Operation, req.TAR
	r.Created, r.Delivered, r.Answered = fromMicros(created), fromMicros(delivered), fromMicros(answered)
	r.Finished, r.Deadline = fromMicros(finished), fromMicros(until)
	return &r, nil
}
