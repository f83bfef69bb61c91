package up

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/ca"
	"mobileid/internal/mssp"
	"mobileid/internal/ops"
	"mobileid/internal/smsc"
)

// newOpsConsole builds the operations console over the parts: the
// Signature Server's transactions, the SMSC's traffic as traffic records
// it, the CA's certificates and the parts' registries.
func newOpsConsole(engine *mssp.Engine, c ca.Issuer, traffic *ops.Recorder, logger *slog.Logger, caReg, netReg, msspReg prometheus.Gatherer) (*ops.Console, error) {
	console, err := ops.New(ops.Config{}, ops.Sources{
		Transactions: opsTransactions{engine},
		SMS:          traffic,
		Certificates: opsCertificates{c},
		Metrics: []ops.MetricsSource{
			{Part: "Signature Server and Messaging Server", Gatherer: msspReg},
			{Part: "SMSC and phones", Gatherer: netReg},
			{Part: "CA, OCSP responder and TSA", Gatherer: caReg},
		},
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("operations console: %w", err)
	}
	return console, nil
}

// withOps serves the operations console under /ops/ beside h.
func withOps(h http.Handler, console *ops.Console) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", console.Handler()))
	mux.Handle("/", h)
	return mux
}

// smscTap hands every segment the SMSC sees to the console's recorder,
// which never blocks the SMSC.
func smscTap(rec *ops.Recorder) func(smsc.Traffic) {
	return func(t smsc.Traffic) {
		dir := ops.MT
		switch t.Direction {
		case smsc.MO:
			dir = ops.MO
		case smsc.Receipt:
			dir = ops.Receipt
		}
		r := ops.Traffic{
			Direction: dir, Time: t.Time, Taken: t.Taken, Account: t.SystemID, MSISDN: t.MSISDN, Service: t.Service,
			MessageID: t.MessageID, Status: uint32(t.Status), StatusName: t.Status.String(),
			ESMClass: t.ESMClass, PID: t.ProtocolID, DCS: t.DataCoding, UserData: t.UserData, NetworkError: t.NetworkError,
		}
		if dir == ops.Receipt {
			r.ReceiptState = t.State.Stat()
		}
		rec.Record(r)
	}
}

// opsTransactions is the Signature Server as the console reads it.
type opsTransactions struct{ e *mssp.Engine }

// Recent implements ops.Transactions.
func (o opsTransactions) Recent(ctx context.Context, limit int) ([]ops.Transaction, error) {
	rs, err := o.e.Recent(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]ops.Transaction, len(rs))
	for i, r := range rs {
		out[i] = opsTransaction(r)
	}
	return out, nil
}

// Transaction implements ops.Transactions.
func (o opsTransactions) Transaction(ctx context.Context, transID string) (*ops.Transaction, error) {
	r, err := o.e.TransactionRecord(ctx, transID)
	if errors.Is(err, mssp.ErrUnknownTransaction) {
		return nil, fmt.Errorf("%w: %w", ops.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	t := opsTransaction(r)
	return &t, nil
}

func opsTransaction(r *mssp.TxRecord) ops.Transaction {
	return ops.Transaction{
		TransID: r.TransID, APID: r.APID, APTransID: r.APTransID, Kind: r.Kind, Operation: r.Operation, MSISDN: r.MSISDN,
		Mode: string(r.Mode), Profile: r.Profile, State: r.State, Status: int(r.Status), StatusName: r.Status.Name(),
		Detail: r.Detail, Message: r.Message, Counter: r.Counter, TAR: r.TAR,
		Created: r.Created, Delivered: r.Delivered, Answered: r.Answered, Finished: r.Finished, Deadline: r.Deadline,
	}
}

// opsCertificates is the CA as the console reads it.
type opsCertificates struct{ ca ca.Issuer }

// Certificates implements ops.Certificates.
func (o opsCertificates) Certificates(ctx context.Context, limit int) ([]ops.Certificate, error) {
	certs, err := o.ca.List(ctx, ca.ListFilter{Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]ops.Certificate, len(certs))
	for i, c := range certs {
		status := "good"
		switch {
		case c.Status == ca.StatusOnHold:
			status = "on hold"
		case c.Status == ca.StatusRevoked:
			status = "revoked"
		}
		out[i] = ops.Certificate{
			Serial: c.Serial.Text(16), Subject: c.SubjectCN, Profile: string(c.Profile), Country: c.Country,
			NationalID: c.NationalID, ICCID: c.ICCID, NotBefore: c.NotBefore, NotAfter: c.NotAfter, IssuedAt: c.IssuedAt,
			Status: status, RevokedAt: c.RevokedAt, Reason: c.Reason,
		}
	}
	return out, nil
}
