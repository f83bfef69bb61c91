package idserver

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/store"
)

//go:embed migrations
var migrationsFS embed.FS

const component = "idserver"

func migrate(db *store.DB) error {
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return fmt.Errorf("idserver: %w", err)
	}
	if err := db.Migrate(context.Background(), component, sub); err != nil {
		return fmt.Errorf("idserver: %w", err)
	}
	return nil
}

// SessionLifetime is how long a session can be read after it was created,
// as in MID: afterwards its status is 404.
const SessionLifetime = 5 * time.Minute

// Defaults of Config.
const (
	DefaultTimeOut      = 120 * time.Second
	DefaultPollInterval = time.Second
	// DefaultFirstPoll is Config.FirstPoll's default.
	DefaultFirstPoll  = 100 * time.Millisecond
	DefaultStatusRate = 1000
	DefaultMSSPID     = "http://mobileid.dev/mssp"
	DefaultVersion    = "1.0.0"
)

// Signature profiles the ID Server asks the MSSP for (docs/mssp-profiles.md).
const (
	ProfileAuthentication = "mss:mobileid.dev:authn:loa3:UICC"
	ProfileSigning        = "mss:mobileid.dev:sign:loa3:UICC"
)

// ErrNotFound is what a Directory returns for a number without an active
// Mobile ID.
var ErrNotFound = errors.New("idserver: not found")

// Person is a Mobile ID holder as the directory knows them.
type Person struct {
	// Country is the ISO 3166-1 alpha-2 country of the national ID.
	Country string
	// NationalID is the national identity number, in capital letters and
	// digits.
	NationalID string
	// GivenNames and Surname are the person's names.
	GivenNames, Surname string
	// AuthCert and SignCert are the DER authentication and signing
	// certificates.
	AuthCert, SignCert []byte
}

// Directory finds the person who holds the Mobile ID of a phone number.
// The wiring implements it over the Registration Server's Lookup and the
// CA's certificates.
type Directory interface {
	// Find returns the holder of the active Mobile ID of phone (E.164
	// with +), or an error wrapping ErrNotFound.
	Find(ctx context.Context, phone string) (*Person, error)
}

// MSSP is the ETSI TS 102 204 interface of the Signature Server, as the
// ID Server uses it; *etsiclient.Client implements it. Faults are
// returned as *etsi.Fault.
type MSSP interface {
	Sign(ctx context.Context, req *etsi.MSSSignatureReq) (*etsi.MSSSignatureResp, error)
	Status(ctx context.Context, req *etsi.MSSStatusReq) (*etsi.MSSStatusResp, error)
	Receipt(ctx context.Context, req *etsi.MSSReceiptReq) (*etsi.MSSReceiptResp, error)
}

// Config configures a Server.
type Config struct {
	// APID and APPassword are the ID Server's credentials at the MSSP.
	APID, APPassword string
	// MSSPID is the MSSP_ID URI sent in requests; empty means
	// DefaultMSSPID.
	MSSPID string
	// Roots and Intermediates are the CA certificates user certificates
	// must chain to. Roots is required.
	Roots, Intermediates *x509.CertPool
	// OCSPClient sends OCSP requests; nil means a client with a 10-s
	// time-out.
	OCSPClient *http.Client
	// OCSPMaxAge is how long a good OCSP answer is reused; 0 means
	// DefaultOCSPMaxAge, a negative value not at all.
	OCSPMaxAge time.Duration
	// TimeOut is the MSS TimeOut: how long the user has to answer; 0
	// means DefaultTimeOut. The MSSP accepts 10 s to 600 s, and a session
	// can be read for SessionLifetime only.
	TimeOut time.Duration
	// PollInterval is how often a running MSSP transaction's status is
	// asked for; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// FirstPoll is when the status is first asked for after the MSSP
	// accepted the request; the pause then doubles up to PollInterval.
	// 0 means DefaultFirstPoll.
	FirstPoll time.Duration
	// StatusRate bounds the MSS_StatusQuery requests per second of all
	// the sessions of this node together; 0 means DefaultStatusRate. When
	// more sessions wait than PollInterval and the rate allow, they are
	// asked about in turn, each less often, rather than the MSSP and this
	// node spend their time on status queries: 10,000 users who have not
	// answered yet would otherwise cost 10,000 requests a second.
	StatusRate float64
	// Version and Built are reported by GET /mid-api/version; empty
	// Version means DefaultVersion, zero Built the time New was called.
	Version string
	Built   time.Time
}

// Server is the ID Server: the MID REST API over the MSSP. Create it with
// New, serve Handler, and call Run. It is safe for concurrent use; several
// nodes may share one database.
type Server struct {
	cfg    Config
	db     *store.DB
	rps    *RPs
	dir    Directory
	mssp   MSSP
	log    *slog.Logger
	now    func() time.Time
	ocsp   *ocspChecker
	chains chainCache
	commit committer
	pace   *pacer          // of the status queries
	ctx    context.Context // of the workers; cancelled when Run ends
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	watches map[string]*watch
	// running holds the sessions with a worker in this process, as they
	// were when it started.
	running map[string]*session
	rpCache map[string]cachedRP // by key, for status requests
}

// New returns a Server. now is the clock (time.Now when nil).
func New(cfg Config, db *store.DB, rps *RPs, dir Directory, mssp MSSP, logger *slog.Logger, now func() time.Time) (*Server, error) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.APID == "":
		return nil, errors.New("idserver: no AP_ID configured")
	case cfg.Roots == nil:
		return nil, errors.New("idserver: no CA roots configured")
	case rps == nil || dir == nil || mssp == nil:
		return nil, errors.New("idserver: the RP registry, directory and MSSP client are required")
	case cfg.TimeOut != 0 && (cfg.TimeOut < 10*time.Second || cfg.TimeOut > SessionLifetime):
		return nil, fmt.Errorf("idserver: TimeOut %v is outside 10s..%v", cfg.TimeOut, SessionLifetime)
	}
	if cfg.MSSPID == "" {
		cfg.MSSPID = DefaultMSSPID
	}
	if cfg.OCSPMaxAge == 0 {
		cfg.OCSPMaxAge = DefaultOCSPMaxAge
	}
	if cfg.TimeOut == 0 {
		cfg.TimeOut = DefaultTimeOut
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.FirstPoll <= 0 {
		cfg.FirstPoll = DefaultFirstPoll
	}
	if !(cfg.StatusRate > 0) {
		cfg.StatusRate = DefaultStatusRate
	}
	if cfg.Version == "" {
		cfg.Version = DefaultVersion
	}
	if cfg.Built.IsZero() {
		cfg.Built = now()
	}
	if err := migrate(db); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, db: db, rps: rps, dir: dir, mssp: mssp, log: logger, now: now,
		ocsp:   newOCSPChecker(cfg.OCSPClient, now, cfg.OCSPMaxAge),
		commit: committer{db: db},
		pace:   newPacer(cfg.StatusRate),
		ctx:    ctx, cancel: cancel,
		watches: map[string]*watch{}, running: map[string]*session{}, rpCache: map[string]cachedRP{},
	}, nil
}

// Run resumes the sessions a stopped process left running, prunes expired
// sessions every minute, and returns when ctx is done, after the workers
// of this process have stopped.
func (s *Server) Run(ctx context.Context) error {
	defer func() {
		s.cancel()
		s.wg.Wait()
	}()
	if err := s.resume(ctx); err != nil {
		s.log.Error("resume sessions", "err", err)
	}
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.prune(ctx); err != nil {
				s.log.Error("prune sessions", "err", err)
			}
		}
	}
}

// prune deletes sessions that can no longer be read.
func (s *Server) prune(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM idserver_sessions WHERE expires_at <= $1`, s.now().UnixMicro())
	return err
}

// resume starts a worker for every running session that has not expired.
// Several nodes may do this after a restart of all of them; a session's
// result is written only while it is RUNNING, so a second worker's
// result is dropped.
func (s *Server) resume(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionColumns+` FROM idserver_sessions WHERE state = $1 AND expires_at > $2`,
		StateRunning, s.now().UnixMicro())
	if err != nil {
		return err
	}
	var list []*session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			rows.Close()
			return err
		}
		list = append(list, sess)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, sess := range list {
		s.start(sess)
	}
	return nil
}

// Session states and the result that stands for an internal error.
const (
	StateRunning  = "RUNNING"
	StateComplete = "COMPLETE"
	// ResultInternalError is stored for a session that ended with an
	// error of the service; its status is answered with HTTP 500.
	ResultInternalError = "INTERNAL_ERROR"
)

// MID end results.
const (
	ResultOK                    = "OK"
	ResultTimeout               = "TIMEOUT"
	ResultNotMIDClient          = "NOT_MID_CLIENT"
	ResultUserCancelled         = "USER_CANCELLED"
	ResultSignatureHashMismatch = "SIGNATURE_HASH_MISMATCH"
	ResultPhoneAbsent           = "PHONE_ABSENT"
	ResultDeliveryError         = "DELIVERY_ERROR"
	ResultSIMError              = "SIM_ERROR"
)

// session is a stored authentication or signature session.
type session struct {
	ID            string
	RPKey         string
	Kind          string
	Phone         string
	NationalID    string
	Hash          []byte
	HashType      string
	Language      string
	DisplayText   string
	DisplayFormat string
	VC            string
	APTransID     string
	MSSPTransID   string
	State         string
	Result        string
	SigValue      []byte
	SigAlg        string
	Cert          []byte
	Created       time.Time
	Expires       time.Time
	Finished      time.Time
}

const sessionColumns = `id, rp_key, kind, phone, national_id, hash, hash_type, language, display_text, display_format, vc,
	ap_trans_id, mssp_trans_id, state, result, sig_value, sig_alg, cert, created_at, expires_at, finished_at`

// The statements of a session's life, prepared once (store.DB.Stmt): on
// SQLite parsing a short statement costs more than running it.
const (
	insertSessionSQL = `INSERT INTO idserver_sessions (` + sessionColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`
	selectSessionSQL   = `SELECT ` + sessionColumns + ` FROM idserver_sessions WHERE id = $1`
	setMSSPTransIDSQL  = `UPDATE idserver_sessions SET mssp_trans_id = $1 WHERE id = $2`
	completeSessionSQL = `UPDATE idserver_sessions SET state = $1, result = $2, sig_value = $3, sig_alg = $4, cert = $5, finished_at = $6
		WHERE id = $7 AND state = $8`
)

func scanSession(row scanner) (*session, error) {
	var x session
	var created, expires, finished int64
	if err := row.Scan(&x.ID, &x.RPKey, &x.Kind, &x.Phone, &x.NationalID, &x.Hash, &x.HashType, &x.Language,
		&x.DisplayText, &x.DisplayFormat, &x.VC, &x.APTransID, &x.MSSPTransID, &x.State, &x.Result,
		&x.SigValue, &x.SigAlg, &x.Cert, &created, &expires, &finished); err != nil {
		return nil, err
	}
	x.Created, x.Expires = time.UnixMicro(created), time.UnixMicro(expires)
	if finished != 0 {
		x.Finished = time.UnixMicro(finished)
	}
	return &x, nil
}

// newUUID returns a random version 4 UUID in lower case.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// createSession stores a new running session for req and starts its
// worker.
func (s *Server) createSession(ctx context.Context, rp *RP, kind string, req *sessionRequest) (*session, error) {
	now := s.now()
	var tid [12]byte
	rand.Read(tid[:])
	sess := &session{
		ID: newUUID(), RPKey: rp.key, Kind: kind, Phone: req.Phone, NationalID: req.NationalID,
		Hash: req.Hash, HashType: req.HashType, Language: req.Language,
		DisplayText: req.DisplayText, DisplayFormat: req.DisplayFormat, VC: VerificationCode(req.Hash),
		APTransID: "ID" + hex.EncodeToString(tid[:]), State: StateRunning,
		Created: now, Expires: now.Add(SessionLifetime),
	}
	_, err := s.exec(ctx, insertSessionSQL,
		sess.ID, sess.RPKey, sess.Kind, sess.Phone, sess.NationalID, sess.Hash, sess.HashType, sess.Language,
		sess.DisplayText, sess.DisplayFormat, sess.VC, sess.APTransID, "", sess.State, "",
		[]byte{}, "", []byte{}, sess.Created.UnixMicro(), sess.Expires.UnixMicro(), int64(0))
	if err != nil {
		return nil, fmt.Errorf("idserver: store session: %w", err)
	}
	s.startWith(sess, rp)
	return sess, nil
}

// exec runs a prepared write statement and returns the number of rows it
// changed, once committed.
func (s *Server) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return s.commit.exec(ctx, query, args...)
}

// getSession returns a session, or nil if there is none.
func (s *Server) getSession(ctx context.Context, id string) (*session, error) {
	sess, err := scanSession(s.db.QueryRowTx(ctx, nil, selectSessionSQL, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("idserver: read session: %w", err)
	}
	return sess, nil
}

// complete records a session's end, if it is still running, and wakes
// its long polls, handing them the session as recorded.
func (s *Server) complete(ctx context.Context, sess *session, result string, sig []byte, alg string, cert []byte) error {
	if sig == nil {
		sig = []byte{}
	}
	if cert == nil {
		cert = []byte{}
	}
	now := s.now()
	n, err := s.exec(ctx, completeSessionSQL, StateComplete, result, sig, alg, cert, now.UnixMicro(), sess.ID, StateRunning)
	if err != nil {
		return fmt.Errorf("idserver: complete session %s: %w", sess.ID, err)
	}
	var final *session
	if n == 1 {
		s.log.Info("session complete", "session", sess.ID, "rp", sess.RPKey[:16], "kind", sess.Kind, "result", result)
		f := *sess
		f.State, f.Result, f.SigValue, f.SigAlg, f.Cert, f.Finished = StateComplete, result, sig, alg, cert, time.UnixMicro(now.UnixMicro())
		final = &f
	}
	// Without a final state (another node ended the session first) the
	// polls read it.
	s.notify(sess.ID, final)
	return nil
}

// start runs a session's worker in this process, unless it runs already.
func (s *Server) start(sess *session) { s.startWith(sess, nil) }

// startWith is start with the session's RP, when the caller has it.
func (s *Server) startWith(sess *session, rp *RP) {
	s.mu.Lock()
	if s.running[sess.ID] != nil {
		s.mu.Unlock()
		return
	}
	snapshot := *sess
	s.running[sess.ID] = &snapshot
	s.mu.Unlock()
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.running, sess.ID)
			s.mu.Unlock()
			// Its long polls no longer hear of the session from a worker
			// here, and must look at the database.
			s.notify(sess.ID, nil)
		}()
		ctx, cancel := context.WithDeadline(s.ctx, sess.Expires)
		defer cancel()
		s.work(ctx, sess, rp)
	})
}

// runsHere reports whether session id has a worker in this process,
// which wakes its long polls when the session ends.
func (s *Server) runsHere(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[id] != nil
}

// runningSession returns session id as it was when its worker in this
// process started, or nil when it has none here. Such a session is
// RUNNING until the worker records its end and says so (notify); only
// after a restart of several nodes could another node end it first, and
// then the worker's attempt says so too.
func (s *Server) runningSession(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[id]
}

// cachedRP is an RP as read for status requests, and until when it may
// be used.
type cachedRP struct {
	rp    *RP
	until time.Time
}

// rpCacheTTL is how long status requests use an RP as read, as the MSSP
// does with its APs: a long poll's check of the RP's address allow-list
// need not read the registry every time.
const rpCacheTTL = time.Second

// statusRP returns the RP with the given key for a status request.
func (s *Server) statusRP(ctx context.Context, key string) (*RP, error) {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.rpCache[key]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.rp, nil
	}
	rp, err := s.rps.byKey(ctx, key)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.rpCache) >= 10000 {
		clear(s.rpCache)
	}
	s.rpCache[key] = cachedRP{rp: rp, until: now.Add(rpCacheTTL)}
	s.mu.Unlock()
	return rp, nil
}

// work takes a session from the directory look-up to its result. rp is
// the session's RP, or nil to look it up.
func (s *Server) work(ctx context.Context, sess *session, rp *RP) {
	result, sig, alg, cert, err := s.run(ctx, sess, rp)
	if err != nil {
		if s.ctx.Err() != nil {
			return // stopping: another run resumes the session
		}
		s.log.Error("session failed", "session", sess.ID, "kind", sess.Kind, "err", err)
		result, sig, alg, cert = ResultInternalError, nil, "", nil
	}
	// The result is recorded even if the session's own deadline has
	// passed, so that a node does not leave it RUNNING.
	if err := s.complete(context.WithoutCancel(ctx), sess, result, sig, alg, cert); err != nil {
		s.log.Error("record session result", "session", sess.ID, "err", err)
		return
	}
	if result == ResultOK {
		s.confirm(ctx, sess, rp)
	}
}

// run does the work of a session and returns its result, or an error for
// an internal error.
func (s *Server) run(ctx context.Context, sess *session, rp *RP) (result string, sig []byte, alg string, cert []byte, err error) {
	p, err := s.dir.Find(ctx, sess.Phone)
	if errors.Is(err, ErrNotFound) {
		return ResultNotMIDClient, nil, "", nil, nil
	}
	if err != nil {
		return "", nil, "", nil, fmt.Errorf("find %s in the directory: %w", sess.Phone, err)
	}
	// The same answer whether the number or the national ID is wrong.
	if p.NationalID != sess.NationalID {
		return ResultNotMIDClient, nil, "", nil, nil
	}
	want := p.AuthCert
	if sess.Kind == KindSignature {
		want = p.SignCert
	}
	if sess.MSSPTransID == "" {
		if rp == nil {
			if rp, err = s.rps.byKey(ctx, sess.RPKey); err != nil {
				return "", nil, "", nil, err
			}
		}
		resp, err := s.mssp.Sign(ctx, s.signRequest(sess, rp))
		if f := (*etsi.Fault)(nil); errors.As(err, &f) {
			return mapStatus(f.Code, f.DetailCode)
		}
		if err != nil {
			return "", nil, "", nil, fmt.Errorf("MSS_Signature: %w", err)
		}
		if resp.Status.StatusCode.Value != etsi.CodeRequestOK || resp.MSSPTransID == "" {
			return mapStatus(resp.Status.StatusCode.Value, resp.Status.DetailCode)
		}
		sess.MSSPTransID = resp.MSSPTransID
		if _, err := s.exec(ctx, setMSSPTransIDSQL, sess.MSSPTransID, sess.ID); err != nil {
			return "", nil, "", nil, fmt.Errorf("record MSSP_TransID: %w", err)
		}
	}
	st, err := s.poll(ctx, sess)
	if f := (*etsi.Fault)(nil); errors.As(err, &f) {
		return mapStatus(f.Code, f.DetailCode)
	}
	if err != nil {
		return "", nil, "", nil, err
	}
	code := st.Status.StatusCode.Value
	if code != etsi.CodeValidSignature && code != etsi.CodeSignature {
		return mapStatus(code, st.Status.DetailCode)
	}
	if st.MSSSignature == nil || st.MSSSignature.PKCS1 == nil {
		return "", nil, "", nil, errors.New("the MSSP returned no PKCS1 signature")
	}
	pk := st.MSSSignature.PKCS1
	c, err := s.validate(ctx, sess, want, pk.SignatureValue, pk.X509Certificate)
	switch {
	case errors.Is(err, errSignature):
		return ResultSignatureHashMismatch, nil, "", nil, nil
	case errors.Is(err, errIdentity):
		return ResultNotMIDClient, nil, "", nil, nil
	case err != nil:
		return "", nil, "", nil, fmt.Errorf("validate signature: %w", err)
	}
	return ResultOK, pk.SignatureValue, signatureAlgorithm(c, sess.HashType), c.Raw, nil
}

// poll asks for the status of the session's MSSP transaction until it
// is no longer outstanding: PollInterval after the previous answer, when
// its turn among the node's status queries comes.
func (s *Server) poll(ctx context.Context, sess *session) (*etsi.MSSStatusResp, error) {
	// The first question comes soon and the pause doubles up to
	// PollInterval: a phone that answers at once is not kept waiting for
	// a whole interval, and one whose user takes seconds costs a few
	// questions more.
	wait := min(s.cfg.FirstPoll, s.cfg.PollInterval)
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for MSSP transaction %s: %w", sess.MSSPTransID, ctx.Err())
		case <-t.C:
		}
		if err := s.pace.wait(ctx); err != nil {
			return nil, fmt.Errorf("wait for MSSP transaction %s: %w", sess.MSSPTransID, err)
		}
		st, err := s.mssp.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: s.abstract(), MSSPTransID: sess.MSSPTransID})
		if err != nil {
			return nil, err
		}
		if st.Status.StatusCode.Value != etsi.CodeOutstandingTransaction {
			return st, nil
		}
		wait = min(2*wait, s.cfg.PollInterval)
		t.Reset(wait)
	}
}

// abstract returns the header of a request to the MSSP.
func (s *Server) abstract() etsi.MessageAbstract {
	var tid [12]byte
	rand.Read(tid[:])
	return s.abstractWith("ID" + hex.EncodeToString(tid[:]))
}

func (s *Server) abstractWith(apTransID string) etsi.MessageAbstract {
	return etsi.MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo:   etsi.APInfo{APID: s.cfg.APID, APPWD: s.cfg.APPassword, APTransID: apTransID, Instant: s.now().UTC().Truncate(time.Second)},
		MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: s.cfg.MSSPID}},
	}
}

// displayed returns the DataToBeDisplayed of a session: the RP's name,
// then ": " and the display text when there is one.
func displayed(rpName, text string) string {
	if strings.TrimSpace(text) == "" {
		return rpName
	}
	return rpName + ": " + text
}

// signRequest is the MSS_SignatureReq of a session.
func (s *Server) signRequest(sess *session, rp *RP) *etsi.MSSSignatureReq {
	profile := ProfileAuthentication
	if sess.Kind == KindSignature {
		profile = ProfileSigning
	}
	return &etsi.MSSSignatureReq{
		MessageAbstract: s.abstractWith(sess.APTransID),
		TimeOut:         int(s.cfg.TimeOut / time.Second),
		MessagingMode:   etsi.AsynchClientServer,
		MobileUser:      etsi.MobileUser{MSISDN: sess.Phone},
		DataToBeSigned: etsi.Data{MimeType: hashTypes[sess.HashType].mime, Encoding: "base64",
			Value: base64.StdEncoding.EncodeToString(sess.Hash)},
		DataToBeDisplayed: &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: displayed(rp.Name, sess.DisplayText)},
		SignatureProfile:  &etsi.MSSURI{URI: profile},
		MSSFormat:         &etsi.MSSURI{URI: etsi.FormatFiComPKCS1},
		AdditionalServices: []etsi.Service{
			{Description: etsi.MSSURI{URI: etsi.ServiceEventID}, EventID: sess.VC},
			{Description: etsi.MSSURI{URI: etsi.ServiceUserLang}, UserLang: languages[sess.Language]},
		},
	}
}

// mapStatus maps an MSSP status or fault code other than a signature to
// a MID result; codes that are the service's problem are internal errors.
func mapStatus(code etsi.Code, detail int) (string, []byte, string, []byte, error) {
	switch r := resultOf(code, detail); r {
	case "":
		return "", nil, "", nil, fmt.Errorf("the MSSP answered %v (detail %d)", code, detail)
	default:
		return r, nil, "", nil, nil
	}
}

// resultOf returns the MID result for an MSSP status, or "" for an
// internal error.
func resultOf(code etsi.Code, detail int) string {
	switch code {
	case etsi.CodeUserCancel:
		return ResultUserCancelled
	case etsi.CodeExpiredTransaction:
		return ResultTimeout
	case etsi.CodeOTAError:
		if detail == etsi.DetailMECommunicationError {
			return ResultPhoneAbsent
		}
		return ResultDeliveryError
	case etsi.CodeInternalError:
		if detail == etsi.DetailSIMApplicationError {
			return ResultSIMError
		}
	case etsi.CodePINNrBlocked, etsi.CodeCardBlocked, etsi.CodeNoKeyFound:
		return ResultSIMError
	case etsi.CodeInvalidSignature:
		return ResultSignatureHashMismatch
	case etsi.CodeUnknownClient, etsi.CodeNoCertFound, etsi.CodeRevokedCertificate:
		return ResultNotMIDClient
	}
	return ""
}

// confirm sends the RP's confirmation message, if it has one, to the
// phone of a successful session with MSS_Receipt. A failure is logged: the
// session's result stands. rp is the session's RP, or nil to look it up.
func (s *Server) confirm(ctx context.Context, sess *session, rp *RP) {
	if rp == nil {
		var err error
		if rp, err = s.rps.byKey(ctx, sess.RPKey); err != nil {
			s.log.Error("confirmation", "session", sess.ID, "err", err)
			return
		}
	}
	text, err := rp.confirmation(sess.Kind)
	if err != nil || text == "" {
		if err != nil {
			s.log.Error("confirmation", "session", sess.ID, "err", err)
		}
		return
	}
	if _, err := s.mssp.Receipt(ctx, &etsi.MSSReceiptReq{
		MessageAbstract: s.abstract(), MSSPTransID: sess.MSSPTransID,
		MobileUser: etsi.MobileUser{MSISDN: sess.Phone},
		Message:    &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: text},
	}); err != nil {
		s.log.Warn("confirmation not delivered", "session", sess.ID, "err", err)
	}
}

// watch is how long polls of a session learn of its changes in this
// process.
type watch struct {
	changed chan struct{} // closed on the next change
	// final is the session as recorded at its end, set before changed
	// is closed, so that the polls need not read it back.
	final *session
	poll  chan struct{} // closed when a newer poll of the session arrives
	refs  int
}

// watchSession registers a long poll of session id. changed is closed
// when the session changes, superseded when a newer poll arrives; done
// must be called at the end.
func (s *Server) watchSession(id string) (changed, superseded <-chan struct{}, done func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watches[id]
	if w == nil {
		w = &watch{changed: make(chan struct{})}
		s.watches[id] = w
	}
	if w.poll != nil {
		close(w.poll)
	}
	mine := make(chan struct{})
	w.poll = mine
	w.refs++
	return w.changed, mine, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.poll == mine {
			w.poll = nil
		}
		if w.refs--; w.refs == 0 && s.watches[id] == w {
			delete(s.watches, id)
		}
	}
}

// notify wakes the long polls of session id in this process. final is
// the session as just recorded at its end, or nil when the polls must
// read it.
func (s *Server) notify(id string, final *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.watches[id]; w != nil {
		if final != nil {
			w.final = final // an ended session does not change again
		}
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// rewatch returns, after the change channel old of a watched session
// fired, the current change channel and the session's final state if the
// change handed one over.
func (s *Server) rewatch(id string, old <-chan struct{}) (<-chan struct{}, *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.watches[id]; w != nil {
		return w.changed, w.final
	}
	return old, nil
}
