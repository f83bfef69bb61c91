package mssp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/etsi"
	"mobileid/internal/messaging"
	"mobileid/internal/ota"
	"mobileid/internal/store"
	"mobileid/internal/vmac"
)

// Sender is what the engine needs of the Messaging Server: a secured
// packet queued for a SIM inside the engine's own transaction, so that the
// transaction and its SMS commit together.
type Sender interface {
	SendPacketTx(ctx context.Context, tx *sql.Tx, msisdn string, packet []byte, validity time.Duration) (int64, error)
	// Committed says that transactions with such packets committed.
	Committed()
}

// Kinds of transaction.
const (
	kindSign     = "sign"
	kindReceipt  = "receipt"
	kindRegister = "register"
	kindTest     = "test"
)

// States of a transaction. A transaction is stored and its command handed
// to the Messaging Server's outbox in one commit (sent); the SMSC's
// delivery receipt makes it delivered; the SIM's answer, opened and
// matched, makes it answered; the checks of the answer end it as validated
// or failed. Failures can end it at any earlier state too.
const (
	StateSent      = "sent"
	StateDelivered = "delivered"
	StateAnswered  = "answered"
	StateValidated = "validated"
	StateFailed    = "failed"
)

// Config configures an Engine. Zero values take the defaults given.
type Config struct {
	// MSSPID is the MSSP_ID URI put in every response.
	MSSPID string
	// VendorRoots are the SIM vendor CAs whose attestation the engine
	// accepts at registration; nil refuses every registration.
	VendorRoots *x509.CertPool
	// CAChain is the issuing CA's chain, included in CMS signatures.
	CAChain []*x509.Certificate
	// Validator checks every returned signature.
	Validator *Validator
	// Timestamper provides RFC 3161 tokens for the timestamp service; nil
	// refuses the service.
	Timestamper Timestamper
	// ValidateOnRequestOnly makes revocation checking an additional
	// service (#validate) instead of the default, which checks every
	// signature; without it a signature ends with 500 SIGNATURE.
	ValidateOnRequestOnly bool
	// Limits bound the requests.
	Limits Limits
	// Workers validate answers in parallel. They spend most of their time
	// waiting (for the OCSP responder, the TSA, the commit), so there are
	// many more than cores. Default 64.
	Workers int
	// SweepInterval is how often time-outs are looked for. Default 1s.
	SweepInterval time.Duration
	// NotifyClient posts MSS_Notification callbacks. Default a client
	// with a 10 s time-out.
	NotifyClient *http.Client
	// NotifyAttempts is how many times a callback is tried before it is
	// given up (405 NO_URL_FOUND in the audit log). Default 30: with the
	// back-off capped at 5 minutes, about two hours.
	NotifyAttempts int
	// Notification encodes the callback body of a finished transaction;
	// the transport sets it. Nil disables callbacks.
	Notification func(t *Transaction) (body []byte, contentType string, err error)
}

// Engine is the MSSP's transaction engine: it turns checked requests into
// commands to SIMs, matches the SIMs' answers, validates them and keeps
// every transaction's state in the database.
type Engine struct {
	cfg    Config
	db     *store.DB
	sims   *SIMs
	users  *Users
	sender Sender
	log    *slog.Logger
	audit  *slog.Logger
	now    func() time.Time
	m      *engineMetrics
	test   *testSigner

	commit     committer     // group commit of begin and complete
	work       chan workItem // answered transactions to complete
	notifyWake chan struct{} // callbacks due

	mu      sync.Mutex
	waiters map[string][]*waiter // by MSSP_TransID
}

// NewEngine returns an engine. audit receives one record per request and
// per result; logger the operational messages. The engine sends nothing
// until SetSender gave it the Messaging Server, which in turn takes the
// engine as its Handler.
func NewEngine(cfg Config, db *store.DB, sims *SIMs, users *Users, logger, audit *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Engine, error) {
	if cfg.Validator == nil {
		return nil, errors.New("mssp: engine: no validator")
	}
	if cfg.MSSPID == "" {
		cfg.MSSPID = "http://mobileid.dev/mssp"
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Second
	}
	if cfg.NotifyClient == nil {
		cfg.NotifyClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.NotifyAttempts <= 0 {
		cfg.NotifyAttempts = 30
	}
	if now == nil {
		now = time.Now
	}
	m, err := newEngineMetrics(reg)
	if err != nil {
		return nil, err
	}
	ts, err := newTestSigner(now())
	if err != nil {
		return nil, err
	}
	return &Engine{
		cfg: cfg, db: db, sims: sims, users: users,
		log: logger.With("component", component), audit: audit.With("component", component),
		now: now, m: m, test: ts,
		commit:     committer{db: db},
		work:       make(chan workItem, 4096),
		notifyWake: make(chan struct{}, 1),
		waiters:    map[string][]*waiter{},
	}, nil
}

// SetSender gives the engine the Messaging Server it sends commands
// through. It must be called before the engine serves requests.
func (e *Engine) SetSender(s Sender) { e.sender = s }

// Config returns the engine's configuration with defaults filled in.
func (e *Engine) Config() Config { return e.cfg }

// Transaction is a transaction as an AP sees it.
type Transaction struct {
	ID        int64
	TransID   string // MSSP_TransID
	APID      string
	APTransID string
	Kind      string
	MSISDN    string
	Mode      etsi.MessagingMode
	APURL     string
	State     string
	Status    etsi.Code
	Detail    int    // FiCom detail code, 0 when none
	Message   string // why, in English
	Profile   string // the signature profile URI
	// Signature is set when Status is 500 or 502.
	Signature *etsi.Signature
	// Registration is the result of a finished registration operation.
	Registration *RegistrationOutcome
	CreatedAt    time.Time
	Deadline     time.Time
	FinishedAt   time.Time

	// waiter is the wait begin registered for a synchronous caller.
	waiter *waiter
}

// Final reports whether the transaction has ended.
func (t *Transaction) Final() bool { return t.State == StateValidated || t.State == StateFailed }

// Fault returns the transaction's outcome as a fault when its status is a
// fault code, else nil.
func (t *Transaction) Fault() *etsi.Fault {
	if !t.Final() || !t.Status.IsFault() {
		return nil
	}
	f := etsi.NewFault(t.Status, "%s", t.Message)
	setDetailCode(f, t.Detail)
	return f
}

// txRequest is what a transaction needs to be completed after the SIM
// answers, possibly on another node or after a restart.
type txRequest struct {
	Profile   string      `json:"profile,omitempty"`
	Key       vmac.KeyRef `json:"key,omitempty"`
	Format    Format      `json:"format,omitempty"`
	FormatURI string      `json:"format_uri,omitempty"`
	Text      []byte      `json:"text,omitempty"`
	Digest    []byte      `json:"digest,omitempty"`
	Hash      crypto.Hash `json:"hash,omitempty"`
	// SigningTime is fixed at acceptance, so that the CMS signed
	// attributes, and the digest the SIM signs, can be made again.
	SigningTime time.Time `json:"signing_time,omitzero"`
	Cert        []byte    `json:"cert,omitempty"`
	SIMDigest   []byte    `json:"sim_digest,omitempty"`
	Validate    bool      `json:"validate,omitempty"`
	Timestamp   bool      `json:"timestamp,omitempty"`
	// The OTA parameters of the command, to open the response.
	TAR string `json:"tar,omitempty"`
	KIc byte   `json:"kic,omitempty"`
	KID byte   `json:"kid,omitempty"`
	// Registration.
	Operation string `json:"operation,omitempty"`
	Challenge []byte `json:"challenge,omitempty"`
	// Test numbers: the status to end with.
	TestCode etsi.Code `json:"test_code,omitempty"`
}

// txResult is a finished transaction's output.
type txResult struct {
	Signature    *etsi.Signature      `json:"signature,omitempty"`
	Registration *RegistrationOutcome `json:"registration,omitempty"`
}

// newTransID returns a fresh MSSP_TransID: an NCName of 21 characters
// that does not reveal how many transactions there were.
func newTransID() string {
	var b [13]byte
	rand.Read(b[:])
	return "T" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))[:20]
}

// newTxRef returns a random VMAC transaction reference.
func newTxRef() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// start is what begin needs to store a new transaction.
type start struct {
	ap        *AP
	apTransID string
	instant   time.Time
	kind      string
	msisdn    string
	mode      etsi.MessagingMode
	apURL     string
	timeout   time.Duration
	req       *txRequest
	// command is the VMAC command to send; nil for transactions that
	// send nothing (test numbers, which end at once with final).
	command vmac.Command
	// exclusive makes the transaction hold the user's SIM (406 for a
	// second one while it runs).
	exclusive bool
	final     *finalState
	// wait registers a waiter before the commit, for a caller that waits
	// for the end (synch mode).
	wait bool
}

// finalState ends a transaction at once.
type finalState struct {
	state  string
	code   etsi.Code
	detail int
	msg    string
	result *txResult
	// encoded is result as stored, made before the write transaction by
	// encode so that the single writer does not wait for it.
	encoded []byte
}

// encode encodes f's result for the database.
func (f *finalState) encode() error {
	if f.result == nil || f.encoded != nil {
		return nil
	}
	b, err := json.Marshal(f.result)
	if err != nil {
		return fmt.Errorf("mssp: encode result: %w", err)
	}
	f.encoded = b
	return nil
}

// begin stores a new transaction and queues its command, in one
// transaction: the AP_TransID reservation, the SIM hold, the OTA counter,
// the SMS and the row commit together or not at all.
func (e *Engine) begin(ctx context.Context, aps *APs, s *start) (*Transaction, error) {
	now := e.now()
	t := &Transaction{
		TransID: newTransID(), APID: s.ap.ID, APTransID: s.apTransID, Kind: s.kind,
		MSISDN: s.msisdn, Mode: s.mode, APURL: s.apURL, State: StateSent,
		Status: etsi.CodeOutstandingTransaction, Profile: s.req.Profile,
		CreatedAt: now, Deadline: now.Add(s.timeout),
	}
	var ref uint32
	var data []byte
	if s.command != nil {
		ref = newTxRef()
		setTxRef(s.command, ref)
		var err error
		if data, err = vmac.MarshalCommand(s.command); err != nil {
			// The request was checked against the same limits, so this
			// is what the AP's text adds up to with the RP name and
			// the event ID.
			if strings.Contains(err.Error(), "limit") {
				return nil, etsi.NewFault(etsi.CodeWrongDataLength, "%v", err)
			}
			return nil, etsi.NewFault(etsi.CodeWrongParam, "%v", err)
		}
	}
	var result []byte
	if s.final != nil {
		t.State, t.Status, t.Detail, t.Message = s.final.state, s.final.code, s.final.detail, s.final.msg
		t.FinishedAt = now
		if s.final.result != nil {
			t.Signature, t.Registration = s.final.result.Signature, s.final.result.Registration
			var err error
			if result, err = json.Marshal(s.final.result); err != nil {
				return nil, fmt.Errorf("mssp: encode result: %w", err)
			}
		}
	}
	if s.wait && s.final == nil {
		t.waiter = e.register(t.TransID)
	}
	err := e.commit.do(ctx, func(tx *sql.Tx) error {
		if err := aps.ReserveTransID(ctx, tx, s.ap.ID, s.apTransID, s.instant); err != nil {
			return err
		}
		var counter int64
		var msgID int64
		if data != nil {
			if e.sender == nil {
				return errors.New("mssp: no Messaging Server to send through")
			}
			pkt, cmd, err := e.sims.Wrap(ctx, tx, s.msisdn, data)
			if err != nil {
				if errors.Is(err, ErrUnknownSIM) {
					return faultDetail(etsi.CodeUnknownClient, 1052, "no SIM with MSISDN %s", s.msisdn)
				}
				if errors.Is(err, ErrCounterExhausted) {
					return faultDetail(etsi.CodeOTAError, 2091, "the SIM's OTA counter is exhausted")
				}
				return err
			}
			counter = int64(cmd.Counter)
			s.req.TAR, s.req.KIc, s.req.KID = cmd.TAR.String(), cmd.KIc, cmd.KID
			if msgID, err = e.sender.SendPacketTx(ctx, tx, strings.TrimPrefix(s.msisdn, "+"), pkt, s.timeout); err != nil {
				return fmt.Errorf("mssp: queue command: %w", err)
			}
		}
		reqJSON, err := json.Marshal(s.req)
		if err != nil {
			return fmt.Errorf("mssp: encode request: %w", err)
		}
		err = e.db.QueryRowTx(ctx, tx, `INSERT INTO mssp_tx (trans_id, ap_id, ap_trans_id, kind, msisdn, mode, ap_url, state, status,
				detail, message, counter, tx_ref, message_id, request, result, created_at, deadline, updated_at, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) RETURNING id`,
			t.TransID, t.APID, t.APTransID, t.Kind, t.MSISDN, string(t.Mode), t.APURL, t.State, int64(t.Status),
			t.Detail, t.Message, counter, int64(ref), msgID, reqJSON, result, now.UnixMicro(), t.Deadline.UnixMicro(), now.UnixMicro(), micros(t.FinishedAt)).Scan(&t.ID)
		if err != nil {
			return fmt.Errorf("mssp: store transaction: %w", err)
		}
		if s.exclusive {
			if _, err := e.db.ExecTx(ctx, tx, `INSERT INTO mssp_active (msisdn, tx_id) VALUES ($1, $2)`, s.msisdn, t.ID); err != nil {
				if store.IsUniqueViolation(err) {
					return faultDetail(etsi.CodePBSignatureProcess, 0, "another request to %s is still outstanding", s.msisdn)
				}
				return fmt.Errorf("mssp: hold SIM: %w", err)
			}
		}
		if s.final == nil {
			if _, err := e.db.ExecTx(ctx, tx, `INSERT INTO mssp_pending (tx_id, msisdn, message_id, deadline) VALUES ($1, $2, $3, $4)`,
				t.ID, t.MSISDN, msgID, t.Deadline.UnixMicro()); err != nil {
				return fmt.Errorf("mssp: record pending transaction: %w", err)
			}
		}
		if s.final != nil && t.Mode == etsi.AsynchServerServer {
			return e.queueNotification(ctx, tx, t.ID, now)
		}
		return nil
	})
	if err != nil {
		if t.waiter != nil {
			e.dropWaiter(t.TransID, t.waiter)
		}
		var f *etsi.Fault
		if errors.As(err, &f) {
			e.m.refused.WithLabelValues(fmt.Sprint(int(f.Code))).Inc()
			e.audit.Info("request refused", "ap", s.ap.ID, "ap_trans_id", s.apTransID, "kind", s.kind, "msisdn", s.msisdn, "status", int(f.Code), "reason", f.Detail)
		}
		return nil, err
	}
	if data != nil {
		e.sender.Committed()
	}
	e.m.started.WithLabelValues(s.kind).Inc()
	e.audit.Info("request accepted", "tx", t.TransID, "ap", t.APID, "ap_trans_id", t.APTransID, "kind", t.Kind, "msisdn", t.MSISDN, "mode", string(t.Mode), "profile", t.Profile)
	if s.final != nil {
		e.finished(t)
	}
	return t, nil
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us)
}

// setTxRef sets a command's transaction reference.
func setTxRef(c vmac.Command, ref uint32) {
	switch c := c.(type) {
	case *vmac.Register:
		c.Ref = ref
	case *vmac.Sign:
		c.Ref = ref
	case *vmac.Display:
		c.Ref = ref
	case *vmac.Info:
		c.Ref = ref
	case *vmac.Reset:
		c.Ref = ref
	}
}

// row is a stored transaction with what completing it needs.
type row struct {
	Transaction
	counter   int64
	txRef     uint32
	messageID int64
	req       txRequest
	card      []byte
}

const rowColumns = `id, trans_id, ap_id, ap_trans_id, kind, msisdn, mode, ap_url, state, status, detail, message, counter, tx_ref,
	message_id, request, card, result, created_at, deadline, finished_at`

type scanner interface{ Scan(...any) error }

func scanRow(s scanner) (*row, error) {
	var (
		r                          row
		mode                       string
		status, detail, ref        int64
		reqJSON, card, resultJSON  []byte
		created, deadline, finshed int64
	)
	if err := s.Scan(&r.ID, &r.TransID, &r.APID, &r.APTransID, &r.Kind, &r.MSISDN, &mode, &r.APURL, &r.State, &status, &detail,
		&r.Message, &r.counter, &ref, &r.messageID, &reqJSON, &card, &resultJSON, &created, &deadline, &finshed); err != nil {
		return nil, err
	}
	r.Mode, r.Status, r.Detail, r.txRef, r.card = etsi.MessagingMode(mode), etsi.Code(status), int(detail), uint32(ref), card
	r.CreatedAt, r.Deadline, r.FinishedAt = fromMicros(created), fromMicros(deadline), fromMicros(finshed)
	if err := json.Unmarshal(reqJSON, &r.req); err != nil {
		return nil, fmt.Errorf("mssp: transaction %d: stored request: %w", r.ID, err)
	}
	r.Profile = r.req.Profile
	if len(resultJSON) > 0 {
		var res txResult
		if err := json.Unmarshal(resultJSON, &res); err != nil {
			return nil, fmt.Errorf("mssp: transaction %d: stored result: %w", r.ID, err)
		}
		r.Signature, r.Registration = res.Signature, res.Registration
	}
	return &r, nil
}

// load reads transaction id.
func (e *Engine) load(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (*row, error) {
	var tx *sql.Tx
	if t, ok := q.(*sql.Tx); ok {
		tx = t
	}
	r, err := scanRow(e.db.QueryRowTx(ctx, tx, `SELECT `+rowColumns+` FROM mssp_tx WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("mssp: load transaction %d: %w", id, err)
	}
	return r, nil
}

// Lookup returns the transaction transID of AP apID. Another AP's
// transaction, or an unknown one, is a 101 WRONG_PARAM fault: an AP
// cannot learn of others' transactions.
func (e *Engine) Lookup(ctx context.Context, apID, transID string) (*Transaction, error) {
	r, err := scanRow(e.db.QueryRowTx(ctx, nil, `SELECT `+rowColumns+` FROM mssp_tx WHERE trans_id = $1`, transID))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && r.APID != apID) {
		return nil, etsi.NewFault(etsi.CodeWrongParam, "unknown MSSP_TransID %q", transID)
	}
	if err != nil {
		return nil, fmt.Errorf("mssp: look up transaction: %w", err)
	}
	return &r.Transaction, nil
}

// waiter is a caller waiting for a transaction to end. finished hands it
// the final state, so that it need not read it back.
type waiter struct {
	done  chan struct{}
	final *Transaction
}

// register adds a waiter for the transaction transID.
func (e *Engine) register(transID string) *waiter {
	w := &waiter{done: make(chan struct{})}
	e.mu.Lock()
	e.waiters[transID] = append(e.waiters[transID], w)
	e.mu.Unlock()
	return w
}

// dropWaiter removes w, unless finished already took it.
func (e *Engine) dropWaiter(transID string, w *waiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ws := e.waiters[transID]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(e.waiters, transID)
	} else {
		e.waiters[transID] = ws
	}
}

// LookupAP returns the transaction AP apID started with apTransID, or a
// 101 fault when there is none.
func (e *Engine) LookupAP(ctx context.Context, apID, apTransID string) (*Transaction, error) {
	r, err := scanRow(e.db.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM mssp_tx WHERE ap_id = $1 AND ap_trans_id = $2`, apID, apTransID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, etsi.NewFault(etsi.CodeWrongParam, "no transaction with AP_TransID %q", apTransID)
	}
	if err != nil {
		return nil, fmt.Errorf("mssp: look up transaction: %w", err)
	}
	return &r.Transaction, nil
}

// Wait waits until transaction t ends or ctx is done, and returns its
// latest state. When t was started for a synchronous caller the engine
// registered the wait before the transaction committed, so nothing is read
// back; otherwise, and for a transaction that another node ends, the state
// is read again every second.
func (e *Engine) Wait(ctx context.Context, t *Transaction) (*Transaction, error) {
	if t.Final() {
		return t, nil
	}
	w := t.waiter
	t.waiter = nil
	for {
		if w == nil {
			w = e.register(t.TransID)
			r, err := e.load(ctx, e.db, t.ID)
			if err != nil || r.Final() {
				e.dropWaiter(t.TransID, w)
				if err != nil {
					return nil, err
				}
				return &r.Transaction, nil
			}
		}
		timer := time.NewTimer(time.Second)
		select {
		case <-w.done:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		select {
		case <-w.done:
			return w.final, nil
		default:
		}
		e.dropWaiter(t.TransID, w)
		w = nil
		if ctx.Err() != nil {
			r, err := e.load(context.WithoutCancel(ctx), e.db, t.ID)
			if err != nil {
				return nil, err
			}
			return &r.Transaction, nil
		}
	}
}

// finished runs after a transaction's final state committed: it wakes
// the callers waiting for it and the notifier, and records the result.
func (e *Engine) finished(t *Transaction) {
	e.mu.Lock()
	ws := e.waiters[t.TransID]
	delete(e.waiters, t.TransID)
	e.mu.Unlock()
	for _, w := range ws {
		c := *t
		w.final = &c
		close(w.done)
	}
	if t.Mode == etsi.AsynchServerServer {
		signal(e.notifyWake)
	}
	e.m.finished.WithLabelValues(t.Kind, fmt.Sprint(int(t.Status))).Inc()
	if !t.CreatedAt.IsZero() && !t.FinishedAt.IsZero() {
		e.m.duration.WithLabelValues(t.Kind).Observe(t.FinishedAt.Sub(t.CreatedAt).Seconds())
	}
	e.audit.Info("transaction ended", "tx", t.TransID, "ap", t.APID, "ap_trans_id", t.APTransID, "kind", t.Kind,
		"msisdn", t.MSISDN, "state", t.State, "status", int(t.Status), "detail", t.Detail, "reason", t.Message)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// finish ends transaction r in tx, unless it already ended (then ok is
// false and nothing changes). The caller calls e.finished after the
// commit.
func (e *Engine) finish(ctx context.Context, tx *sql.Tx, r *row, f *finalState) (ok bool, err error) {
	now := e.now()
	if err := f.encode(); err != nil {
		return false, err
	}
	result := f.encoded
	res, err := e.db.ExecTx(ctx, tx, `UPDATE mssp_tx SET state = $1, status = $2, detail = $3, message = $4, result = $5,
			updated_at = $6, finished_at = $6
		WHERE id = $7 AND state <> $8 AND state <> $9`,
		f.state, int64(f.code), f.detail, f.msg, result, now.UnixMicro(), r.ID, StateValidated, StateFailed)
	if err != nil {
		return false, fmt.Errorf("mssp: end transaction %d: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return false, err
	}
	if _, err := e.db.ExecTx(ctx, tx, `DELETE FROM mssp_active WHERE msisdn = $1 AND tx_id = $2`, r.MSISDN, r.ID); err != nil {
		return false, fmt.Errorf("mssp: release SIM: %w", err)
	}
	if _, err := e.db.ExecTx(ctx, tx, `DELETE FROM mssp_pending WHERE tx_id = $1`, r.ID); err != nil {
		return false, fmt.Errorf("mssp: end pending transaction: %w", err)
	}
	if r.Mode == etsi.AsynchServerServer {
		if err := e.queueNotification(ctx, tx, r.ID, now); err != nil {
			return false, err
		}
	}
	r.State, r.Status, r.Detail, r.Message, r.FinishedAt = f.state, f.code, f.detail, f.msg, now
	if f.result != nil {
		r.Signature, r.Registration = f.result.Signature, f.result.Registration
	}
	return true, nil
}

// failed is a finalState for a failure.
func failed(code etsi.Code, detail int, format string, args ...any) *finalState {
	return &finalState{state: StateFailed, code: code, detail: detail, msg: fmt.Sprintf(format, args...)}
}

// HandleReceipt implements messaging.Handler: the SMSC's verdict on a
// command SMS. Delivery moves the transaction on; a failure ends it.
func (e *Engine) HandleReceipt(ctx context.Context, tx *sql.Tx, rc *messaging.Receipt) error {
	r, err := scanRow(e.db.QueryRowTx(ctx, tx, `SELECT `+rowColumns+` FROM mssp_tx
		WHERE id IN (SELECT tx_id FROM mssp_pending WHERE message_id = $1 AND message_id <> 0)`, rc.MessageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil // a text message, or a transaction of another system
	}
	if err != nil {
		return fmt.Errorf("mssp: receipt for message %d: %w", rc.MessageID, err)
	}
	if r.State != StateSent {
		return nil
	}
	var f *finalState
	switch rc.Outcome {
	case messaging.Delivered:
		if _, err := e.db.ExecTx(ctx, tx, `UPDATE mssp_tx SET state = $1, updated_at = $2, delivered_at = $2 WHERE id = $3 AND state = $4`,
			StateDelivered, e.now().UnixMicro(), r.ID, StateSent); err != nil {
			return fmt.Errorf("mssp: mark delivered: %w", err)
		}
		return nil
	case messaging.PhoneAbsent:
		f = failed(etsi.CodeOTAError, DetailPhoneAbsent, "PHONE_ABSENT: the phone is switched off or out of coverage")
	case messaging.Expired:
		f = failed(etsi.CodeExpiredTransaction, DetailServerTimeout, "the request SMS expired before it reached the phone")
	default:
		f = failed(etsi.CodeOTAError, DetailDeliveryError, "DELIVERY_ERROR: the network could not deliver the request SMS")
	}
	ok, err := e.finish(ctx, tx, r, f)
	if ok {
		t := r.Transaction
		messaging.AfterCommit(ctx, func() { e.finished(&t) })
	}
	return err
}

// FiCom detail codes the engine reports beside the status code; the ID
// Server maps them to the MID results PHONE_ABSENT, DELIVERY_ERROR and
// SIM_ERROR.
const (
	DetailServerTimeout = 2081 // the request never reached the user in time
	DetailUserTimeout   = 2082 // the user did not answer in time
	DetailOTAUnknown    = 2091 // an OTA failure the card reported
	DetailDeliveryError = 2091
	DetailPhoneAbsent   = 2093 // ME communication error: phone off or unreachable
	DetailSIMError      = 9003 // the SIM application failed
	DetailUserCancel    = 4011
	DetailPINBlocked    = 4021
	DetailPUKBlocked    = 4031
	DetailNoKey         = 4041
	DetailRegSIM        = 4073
	DetailRegServer     = 4072
)

// HandleMO implements messaging.Handler: an answer from a SIM. It is
// opened with the keys of the SIM it claims to come from and matched to
// the pending command whose counter it echoes; anything else — a late
// answer, a duplicate, garbage — is dropped.
func (e *Engine) HandleMO(ctx context.Context, tx *sql.Tx, mo *messaging.MO) error {
	if !mo.Secured || len(mo.Packet) == 0 {
		return nil
	}
	msisdn := "+" + strings.TrimPrefix(mo.From, "+")
	rows, err := e.db.QueryTx(ctx, tx, `SELECT `+rowColumns+` FROM mssp_tx
		WHERE id IN (SELECT tx_id FROM mssp_pending WHERE msisdn = $1) AND (state = $2 OR state = $3) ORDER BY counter DESC`,
		msisdn, StateSent, StateDelivered)
	if err != nil {
		return fmt.Errorf("mssp: pending transactions of %s: %w", msisdn, err)
	}
	var pending []*row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return err
		}
		pending = append(pending, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("mssp: pending transactions of %s: %w", msisdn, err)
	}
	for _, r := range pending {
		tar, err := ota.ParseTAR(r.req.TAR)
		if err != nil {
			continue
		}
		cmd := &ota.Command{SPI: commandSPI, KIc: r.req.KIc, KID: r.req.KID, TAR: tar, Counter: uint64(r.counter)}
		resp, err := e.sims.OpenTx(ctx, tx, msisdn, cmd, mo.Packet)
		if err != nil {
			continue
		}
		return e.answered(ctx, tx, r, resp)
	}
	e.m.dropped.Inc()
	e.log.Debug("MO matches no pending transaction", "msisdn", msisdn, "mo", mo.ID)
	return nil
}

// answered records the SIM's opened response to r's command.
func (e *Engine) answered(ctx context.Context, tx *sql.Tx, r *row, resp *ota.Response) error {
	var f *finalState
	switch {
	case resp.Status != ota.StatusOK:
		f = failed(etsi.CodeOTAError, DetailOTAUnknown, "the SIM refused the command: PoR status %s", resp.Status)
	case !resp.Secured:
		f = failed(etsi.CodeOTAError, DetailOTAUnknown, "the SIM answered without security")
	}
	var vr vmac.Response
	if f == nil {
		var err error
		vr, err = vmac.ParseResponse(resp.Data)
		switch {
		case err != nil:
			f = failed(etsi.CodeInternalError, DetailSIMError, "the SIM's answer does not parse: %v", err)
		case vr.TxRef() != r.txRef:
			f = failed(etsi.CodeInternalError, DetailSIMError, "the SIM answered another transaction (TxRef %d, want %d)", vr.TxRef(), r.txRef)
		case vr.Status() != vmac.StatusOK:
			f = cardFailure(vr)
		}
	}
	if f == nil && r.Kind == kindReceipt {
		f = &finalState{state: StateValidated, code: etsi.CodeRequestOK, msg: "receipt shown"}
	}
	if f == nil && r.req.Operation == OpInfo {
		f = &finalState{state: StateValidated, code: etsi.CodeRequestOK, msg: "card information read", result: &txResult{Registration: infoOutcome(vr)}}
	}
	if f == nil && r.req.Operation == OpReset {
		if err := e.users.remove(ctx, tx, r.MSISDN); err != nil {
			return err
		}
		f = &finalState{state: StateValidated, code: etsi.CodeRequestOK, msg: "keys and PINs erased on the SIM"}
	}
	if f != nil {
		ok, err := e.finish(ctx, tx, r, f)
		if ok {
			t := r.Transaction
			messaging.AfterCommit(ctx, func() { e.finished(&t) })
		}
		return err
	}
	// Checking the answer (signature validation, revocation, CMS, a
	// timestamp) takes time and may reach other servers, so it happens
	// after this transaction, in a worker.
	now := e.now().UnixMicro()
	if _, err := e.db.ExecTx(ctx, tx, `UPDATE mssp_tx SET state = $1, card = $2, updated_at = $3, answered_at = $3 WHERE id = $4`,
		StateAnswered, resp.Data, now, r.ID); err != nil {
		return fmt.Errorf("mssp: record answer: %w", err)
	}
	if _, err := e.db.ExecTx(ctx, tx, `UPDATE mssp_pending SET answered_at = $1 WHERE tx_id = $2`, now, r.ID); err != nil {
		return fmt.Errorf("mssp: record answer: %w", err)
	}
	r.State, r.card = StateAnswered, resp.Data
	messaging.AfterCommit(ctx, func() { e.enqueue(workItem{id: r.ID, r: r}) })
	return nil
}

// cardFailure maps a VMAC failure status to the status table.
func cardFailure(vr vmac.Response) *finalState {
	switch vr.Status() {
	case vmac.StatusUserCancel:
		return failed(etsi.CodeUserCancel, DetailUserCancel, "the user cancelled")
	case vmac.StatusPINBlocked:
		return failed(etsi.CodePINNrBlocked, DetailPINBlocked, "the PIN is blocked")
	case vmac.StatusCardBlocked:
		return failed(etsi.CodeCardBlocked, DetailPUKBlocked, "the PUK is blocked; the card's keys are unusable")
	case vmac.StatusNoKey:
		return failed(etsi.CodeNoKeyFound, DetailNoKey, "the SIM has no key for this request")
	case vmac.StatusTimeout:
		return failed(etsi.CodeExpiredTransaction, DetailUserTimeout, "the user did not answer in time")
	case vmac.StatusAlreadyRegistered:
		return failed(etsi.CodeRegistrationNOK, DetailRegSIM, "the SIM is already registered")
	case vmac.StatusBusy:
		return failed(etsi.CodePBSignatureProcess, 0, "the SIM is busy with another request")
	}
	return failed(etsi.CodeInternalError, DetailSIMError, "SIM_ERROR: the SIM application answered %s", vr.Status())
}

// workItem is an answered transaction to complete: its row as the
// answer left it when the node that stored the answer hands it over, or
// only its id when a sweep found it.
type workItem struct {
	id int64
	r  *row
}

// enqueue hands an answered transaction to the workers; when they are
// all busy and the queue is full the periodic scan finds it later.
func (e *Engine) enqueue(w workItem) {
	select {
	case e.work <- w:
	default:
	}
}

// Run runs the workers, the time-out sweeper and the notifier until ctx
// is done.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range e.cfg.Workers {
		wg.Go(func() { e.worker(ctx) })
	}
	wg.Go(func() { e.sweepLoop(ctx) })
	wg.Go(func() { e.notifyLoop(ctx) })
	wg.Wait()
	return nil
}

func (e *Engine) worker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-e.work:
			if err := e.complete(ctx, w); err != nil && ctx.Err() == nil {
				e.log.Warn("cannot complete transaction", "id", w.id, "err", err)
			}
		}
	}
}

func (e *Engine) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		if err := e.Sweep(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// answeredGrace is how long an answered transaction is left to the node
// that stored it before any node's sweep completes it.
const answeredGrace = 5 * time.Second

// Sweep ends the transactions whose time ran out with 208
// EXPIRED_TRANSACTION and hands answered transactions that nobody is
// completing (their node stopped) to the workers.
func (e *Engine) Sweep(ctx context.Context) error {
	now := e.now()
	rows, err := e.db.QueryContext(ctx, `SELECT `+rowColumns+` FROM mssp_tx
		WHERE id IN (SELECT tx_id FROM mssp_pending WHERE deadline <= $1 AND answered_at = 0 LIMIT 1000)`, now.UnixMicro())
	if err != nil {
		return fmt.Errorf("mssp: list expired transactions: %w", err)
	}
	var expired []*row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			rows.Close()
			return err
		}
		expired = append(expired, r)
	}
	rows.Close()
	for _, r := range expired {
		f := failed(etsi.CodeExpiredTransaction, DetailUserTimeout, "the user did not answer in time")
		if r.State == StateSent {
			f = failed(etsi.CodeExpiredTransaction, DetailServerTimeout, "the request did not reach the phone in time")
		}
		var ok bool
		err := e.db.InTx(ctx, func(tx *sql.Tx) error {
			var err error
			ok, err = e.finish(ctx, tx, r, f)
			return err
		})
		if err != nil {
			return err
		}
		if ok {
			e.finished(&r.Transaction)
		}
	}
	ids, err := e.db.QueryContext(ctx, `SELECT tx_id FROM mssp_pending WHERE answered_at > 0 AND answered_at <= $1 LIMIT 1000`,
		now.Add(-answeredGrace).UnixMicro())
	if err != nil {
		return fmt.Errorf("mssp: list answered transactions: %w", err)
	}
	defer ids.Close()
	for ids.Next() {
		var id int64
		if err := ids.Scan(&id); err != nil {
			return err
		}
		e.enqueue(workItem{id: id})
	}
	return ids.Err()
}

// complete checks an answered transaction and ends it. Another node, or
// this one twice, may complete the same transaction; finish lets only one
// of them end it.
func (e *Engine) complete(ctx context.Context, w workItem) error {
	r := w.r
	if r == nil {
		var err error
		if r, err = e.load(ctx, e.db, w.id); err != nil {
			return err
		}
	}
	id := r.ID
	if r.State != StateAnswered {
		return nil
	}
	vr, err := vmac.ParseResponse(r.card)
	if err != nil {
		return fmt.Errorf("mssp: transaction %d: stored answer: %w", id, err)
	}
	var f *finalState
	var save func(tx *sql.Tx) error
	switch resp := vr.(type) {
	case *vmac.SignResponse:
		f = e.checkSignature(ctx, r, resp)
	case *vmac.RegisterResponse:
		f, save = e.checkRegistration(ctx, r, resp)
	default:
		f = failed(etsi.CodeInternalError, DetailSIMError, "unexpected answer %T", vr)
	}
	if err := f.encode(); err != nil {
		return err
	}
	var ok bool
	err = e.commit.do(ctx, func(tx *sql.Tx) error {
		var err error
		if ok, err = e.finish(ctx, tx, r, f); err != nil || !ok {
			return err
		}
		if save != nil && f.state == StateValidated {
			return save(tx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if ok {
		e.finished(&r.Transaction)
	}
	return nil
}

// checkSignature validates a SIM's signature and builds the AP's format.
func (e *Engine) checkSignature(ctx context.Context, r *row, resp *vmac.SignResponse) *finalState {
	cert, err := x509.ParseCertificate(r.req.Cert)
	if err != nil {
		return failed(etsi.CodeInternalError, 9002, "stored certificate: %v", err)
	}
	in := &toSign{Format: r.req.Format, Text: r.req.Text, Digest: r.req.Digest, Hash: r.req.Hash, Cert: cert, Chain: e.cfg.CAChain, SigningTime: r.req.SigningTime}
	digest, hash, err := digestToSign(in)
	if err != nil || string(digest) != string(r.req.SIMDigest) {
		return failed(etsi.CodeInternalError, 9002, "cannot recompute the signed digest")
	}
	checkRevocation := !e.cfg.ValidateOnRequestOnly || r.req.Validate
	code, reason := e.cfg.Validator.Validate(ctx, cert, hash, digest, resp.Signature, r.req.Key == vmac.KeySign, checkRevocation)
	switch code {
	case etsi.CodeValidSignature, etsi.CodeSignature:
	default:
		if code.IsFault() {
			return failed(code, 0, "%s", reason)
		}
		return &finalState{state: StateFailed, code: code, msg: reason}
	}
	var ts Timestamper
	if r.req.Timestamp {
		ts = e.cfg.Timestamper
	}
	// The Validator verified the signature; every outcome that gets here
	// (500, 502) includes that check.
	in.Verified = true
	sig, err := assemble(ctx, in, resp.Signature, ts)
	if err != nil {
		return failed(etsi.CodeInternalError, 9002, "assemble the signature: %v", err)
	}
	return &finalState{state: StateValidated, code: code, msg: reason, result: &txResult{Signature: sig}}
}

// metrics

type engineMetrics struct {
	started  *prometheus.CounterVec
	refused  *prometheus.CounterVec
	finished *prometheus.CounterVec
	duration *prometheus.HistogramVec
	dropped  prometheus.Counter
}

func newEngineMetrics(reg prometheus.Registerer) (*engineMetrics, error) {
	m := &engineMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mobileid_mssp_transactions_started_total", Help: "Transactions accepted, by kind.",
		}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mobileid_mssp_requests_refused_total", Help: "Requests refused before a transaction started, by status code.",
		}, []string{"status"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mobileid_mssp_transactions_finished_total", Help: "Transactions ended, by kind and status code.",
		}, []string{"kind", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mobileid_mssp_transaction_seconds", Help: "Time from acceptance to the end of a transaction.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, []string{"kind"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mobileid_mssp_mo_dropped_total", Help: "SIM answers that matched no pending transaction (late, duplicated or forged).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.started, m.refused, m.finished, m.duration, m.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("mssp: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
