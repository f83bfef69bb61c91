package registration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mobileid/internal/ca"
	"mobileid/internal/etsi"
	"mobileid/internal/store"
	"mobileid/internal/vmac"
)

//go:embed migrations
var migrationsFS embed.FS

const component = "registration"

// MSSP is what the Registration Server needs of the Signature Server: the
// ETSI TS 102 204 operations MSS_Registration, MSS_ProfileQuery and
// MSS_Receipt. *etsiclient.Client implements it.
type MSSP interface {
	Registration(ctx context.Context, req *etsi.MSSRegistrationReq) (*etsi.MSSRegistrationResp, error)
	Profile(ctx context.Context, req *etsi.MSSProfileReq) (*etsi.MSSProfileResp, error)
	Receipt(ctx context.Context, req *etsi.MSSReceiptReq) (*etsi.MSSReceiptResp, error)
}

// Config configures a Server.
type Config struct {
	// APID and APPassword are the Registration Server's credentials as an
	// AP of the MSSP; the AP must be allowed the registration profile.
	APID, APPassword string
	// MSSPID is the MSSP_ID URI put in requests.
	MSSPID string
	// Timeout is how long the user has to choose the PINs. Default 300 s.
	Timeout time.Duration
	// ReadyText is shown on the phone once the Mobile ID works.
	ReadyText string
	// RetryPause is how long a step that failed for a passing reason (the
	// MSSP or the CA unreachable) waits before it is tried again.
	// Default 5 s.
	RetryPause time.Duration
}

// States of a Mobile ID.
const (
	StateRegistering = "registering"
	StateActive      = "active"
	StateSuspended   = "suspended"
	StateRevoked     = "revoked"
	StateFailed      = "failed"
)

// Steps of a registration, in order.
const (
	StepReset        = "reset"        // renewal: the SIM's old keys and PINs are erased
	StepKeys         = "keys"         // the SIM asks the user for PINs and makes the keys
	StepCertificates = "certificates" // the CA certifies both keys
	StepBind         = "bind"         // the MSSP learns of the certificates
	StepSupersede    = "supersede"    // renewal: the old certificates are revoked
	StepNotify       = "notify"       // the phone is told the Mobile ID is ready
	StepDone         = "done"
)

// Server is the Registration Server: it records identities checked at a
// desk, runs each registration to its end — through a restart — and the
// lifecycle actions after it.
type Server struct {
	// CertStatus, when set before the desk is served, reports a
	// certificate's status ("good", "on_hold", "revoked") by its serial in
	// hex, for the desk's Mobile ID page.
	CertStatus func(ctx context.Context, serialHex string) (string, error)

	cfg    Config
	db     *store.DB
	mssp   MSSP
	ca     ca.Issuer
	ids    *NationalIDs
	log    *slog.Logger
	audit  *slog.Logger
	now    func() time.Time
	wake   chan struct{}
	mu     sync.Mutex
	active map[int64]bool // registrations being advanced by this process
	subs   map[chan struct{}]bool

	dummyOnce sync.Once
	dummy     []byte
	salt      [32]byte
	logins    map[[32]byte]time.Time // verified passwords, see Login
	keyAlg    etsi.KeyAlgorithm      // see SetKeyAlgorithm; guarded by mu
}

// SetKeyAlgorithm chooses the type of both keys that the key generations
// sent from now on ask the SIM for: etsi.KeyAlgRSA2048, or
// etsi.KeyAlgECDSAP256. The empty value, the default, leaves the choice to
// the MSSP, whose default is ECDSA P-256.
func (s *Server) SetKeyAlgorithm(alg etsi.KeyAlgorithm) {
	s.mu.Lock()
	s.keyAlg = alg
	s.mu.Unlock()
}

// New returns a Registration Server on db, migrating its tables.
func New(cfg Config, db *store.DB, mssp MSSP, issuer ca.Issuer, ids *NationalIDs, logger, audit *slog.Logger, now func() time.Time) (*Server, error) {
	if cfg.APID == "" {
		return nil, errors.New("registration: no AP_ID for the MSSP")
	}
	if cfg.MSSPID == "" {
		cfg.MSSPID = "http://mobileid.dev/mssp"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 300 * time.Second
	}
	if cfg.ReadyText == "" {
		cfg.ReadyText = "Your Mobile ID is ready. Use PIN1 to log in and PIN2 to sign."
	}
	if cfg.RetryPause <= 0 {
		cfg.RetryPause = 5 * time.Second
	}
	if ids == nil {
		ids = DefaultNationalIDs()
	}
	if now == nil {
		now = time.Now
	}
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("registration: %w", err)
	}
	if err := db.Migrate(context.Background(), component, sub); err != nil {
		return nil, fmt.Errorf("registration: %w", err)
	}
	var salt [32]byte
	rand.Read(salt[:])
	return &Server{
		cfg: cfg, db: db, mssp: mssp, ca: issuer, ids: ids,
		log: logger.With("component", component), audit: audit.With("component", component), now: now,
		wake: make(chan struct{}, 1), active: map[int64]bool{}, subs: map[chan struct{}]bool{},
		salt: salt, logins: map[[32]byte]time.Time{},
	}, nil
}

// Officer is a registration officer as authenticated.
type Officer struct {
	Username string
	Name     string
	Desk     string
}

// Event is a step of a registration or an action, with its time.
type Event struct {
	At      time.Time
	Step    string
	Message string
}

// MobileID is a person's Mobile ID on one MSISDN.
type MobileID struct {
	ID         int64
	PersonID   int64
	Person     Person
	Document   Document
	MSISDN     string
	ICCID      string
	State      string
	Step       string
	Status     string // the latest message for the officer
	Officer    string
	Desk       string
	AuthSerial string // hex serial of the authentication certificate
	SignSerial string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Events     []Event
}

// ErrNotFound means there is no such Mobile ID or person.
var ErrNotFound = errors.New("registration: not found")

// ErrState means the action does not apply to the Mobile ID in its state.
var ErrState = errors.New("registration: not possible in this state")

const dateLayout = "2006-01-02"

// Register records a person identified at a desk and starts the
// registration of their Mobile ID on id.MSISDN. It returns FieldErrors for
// a form when the identity is invalid, the national ID is registered with
// other personal data, the number has a Mobile ID already, or the operator
// has no SIM with the number; nothing is recorded then.
func (s *Server) Register(ctx context.Context, o Officer, id Identity) (*MobileID, error) {
	id.Normalize()
	now := s.now()
	if err := id.Validate(s.ids, now); err != nil {
		return nil, err
	}
	if err := s.checkSIM(ctx, id.MSISDN); err != nil {
		return nil, err
	}
	var mid int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		pid, err := s.person(ctx, tx, &id.Person, now)
		if err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO registration_mobileid (person_id, msisdn, state, step, status, doc_type, doc_number,
				doc_issuer, doc_expires, officer, desk, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id`,
			pid, id.MSISDN, StateRegistering, StepKeys, "Waiting for the user to choose PIN1 and PIN2 on the phone.",
			string(id.Document.Type), id.Document.Number, id.Document.Issuer, id.Document.Expires.Format(dateLayout),
			o.Username, o.Desk, now.UnixMicro()).Scan(&mid)
		if store.IsUniqueViolation(err) {
			return FieldErrors{"msisdn": "This number already has a Mobile ID in use."}
		}
		if err != nil {
			return fmt.Errorf("registration: record Mobile ID: %w", err)
		}
		if err := s.event(ctx, tx, mid, "identified", fmt.Sprintf("Identity checked by %s at %s (%s %s).", o.Username, o.Desk, id.Document.Type, id.Document.Number), now); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, o, "register", mid, id.Country+" "+id.NationalID+" "+id.MSISDN, now)
	})
	if err != nil {
		return nil, err
	}
	s.kick()
	return s.Get(ctx, mid)
}

// person finds or records the person; a national ID already known with
// other personal data is refused.
func (s *Server) person(ctx context.Context, tx *sql.Tx, p *Person, now time.Time) (int64, error) {
	var (
		id                int64
		given, sur, birth string
	)
	err := tx.QueryRowContext(ctx, `SELECT id, given_names, surname, date_of_birth FROM registration_person WHERE country = $1 AND national_id = $2`,
		p.Country, p.NationalID).Scan(&id, &given, &sur, &birth)
	switch {
	case err == nil:
		if given != p.GivenNames || sur != p.Surname || birth != p.DateOfBirth.Format(dateLayout) {
			return 0, FieldErrors{"national_id": fmt.Sprintf("This national ID is registered for %s %s, born %s.", given, sur, birth)}
		}
		return id, nil
	case !errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("registration: find person: %w", err)
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO registration_person (country, national_id, given_names, surname, date_of_birth, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		p.Country, p.NationalID, p.GivenNames, p.Surname, p.DateOfBirth.Format(dateLayout), now.UnixMicro()).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("registration: record person: %w", err)
	}
	return id, nil
}

// checkSIM asks the MSSP whether the operator has a SIM with msisdn and
// whether it is free: MSS_ProfileQuery answers 105 with detail 1052 for a
// number without a SIM and 1053 for a SIM without a Mobile ID.
func (s *Server) checkSIM(ctx context.Context, msisdn string) error {
	_, err := s.mssp.Profile(ctx, &etsi.MSSProfileReq{MessageAbstract: s.abstract(newAPTransID("P")), MobileUser: etsi.MobileUser{MSISDN: msisdn}})
	var f *etsi.Fault
	switch {
	case err == nil:
		return FieldErrors{"msisdn": "The SIM of this number already has a Mobile ID."}
	case errors.As(err, &f) && f.Code == etsi.CodeUnknownClient && f.DetailCode == 1053:
		return nil
	case errors.As(err, &f) && f.Code == etsi.CodeUnknownClient:
		return FieldErrors{"msisdn": "The operator has no SIM with this number."}
	}
	return fmt.Errorf("registration: ask the MSSP about %s: %w", msisdn, err)
}

// abstract is the header of a request to the MSSP.
func (s *Server) abstract(apTransID string) etsi.MessageAbstract {
	return etsi.MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo:   etsi.APInfo{APID: s.cfg.APID, APPWD: s.cfg.APPassword, APTransID: apTransID, Instant: s.now().UTC().Truncate(time.Second)},
		MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: s.cfg.MSSPID}},
	}
}

// newAPTransID returns a fresh AP_TransID with a prefix saying what it is.
func newAPTransID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return fmt.Sprintf("RS%s%x", prefix, b)
}

func (s *Server) event(ctx context.Context, tx *sql.Tx, id int64, step, msg string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO registration_event (mobileid_id, at, step, message) VALUES ($1, $2, $3, $4)`,
		id, at.UnixMicro(), step, msg); err != nil {
		return fmt.Errorf("registration: record event: %w", err)
	}
	return nil
}

func (s *Server) auditTx(ctx context.Context, tx *sql.Tx, o Officer, action string, id int64, detail string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO registration_audit (at, officer, desk, action, mobileid_id, detail) VALUES ($1, $2, $3, $4, $5, $6)`,
		at.UnixMicro(), o.Username, o.Desk, action, id, detail); err != nil {
		return fmt.Errorf("registration: audit: %w", err)
	}
	s.audit.Info("officer action", "officer", o.Username, "desk", o.Desk, "action", action, "mobileid", id, "detail", detail)
	return nil
}

const mobileIDColumns = `m.id, m.person_id, p.country, p.national_id, p.given_names, p.surname, p.date_of_birth, m.doc_type, m.doc_number,
	m.doc_issuer, m.doc_expires, m.msisdn, m.iccid, m.state, m.step, m.status, m.officer, m.desk, m.auth_serial, m.sign_serial,
	m.created_at, m.updated_at`

func scanMobileID(sc interface{ Scan(...any) error }) (*MobileID, error) {
	var (
		m                        MobileID
		dob, docType, docExpires string
		created, updated         int64
	)
	err := sc.Scan(&m.ID, &m.PersonID, &m.Person.Country, &m.Person.NationalID, &m.Person.GivenNames, &m.Person.Surname, &dob,
		&docType, &m.Document.Number, &m.Document.Issuer, &docExpires, &m.MSISDN, &m.ICCID, &m.State, &m.Step, &m.Status,
		&m.Officer, &m.Desk, &m.AuthSerial, &m.SignSerial, &created, &updated)
	if err != nil {
		return nil, err
	}
	m.Person.DateOfBirth, _ = time.Parse(dateLayout, dob)
	m.Document.Type = DocumentType(docType)
	m.Document.Expires, _ = time.Parse(dateLayout, docExpires)
	m.CreatedAt, m.UpdatedAt = time.UnixMicro(created), time.UnixMicro(updated)
	return &m, nil
}

// Get returns a Mobile ID with its events.
func (s *Server) Get(ctx context.Context, id int64) (*MobileID, error) {
	m, err := scanMobileID(s.db.QueryRowTx(ctx, nil, `SELECT `+mobileIDColumns+` FROM registration_mobileid m
		JOIN registration_person p ON p.id = m.person_id WHERE m.id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("registration: read Mobile ID %d: %w", id, err)
	}
	rows, err := s.db.QueryTx(ctx, nil, `SELECT at, step, message FROM registration_event WHERE mobileid_id = $1 ORDER BY at`, id)
	if err != nil {
		return nil, fmt.Errorf("registration: read events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&at, &e.Step, &e.Message); err != nil {
			return nil, err
		}
		e.At = time.UnixMicro(at)
		m.Events = append(m.Events, e)
	}
	return m, rows.Err()
}

// Search finds Mobile IDs by national ID, MSISDN or name (a case-blind
// part of the given names or surname), newest first, at most 100.
func (s *Server) Search(ctx context.Context, q string) ([]*MobileID, error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return nil, nil
	}
	like := "%" + strings.ToLower(q) + "%"
	rows, err := s.db.QueryContext(ctx, `SELECT `+mobileIDColumns+` FROM registration_mobileid m
		JOIN registration_person p ON p.id = m.person_id
		WHERE p.national_id = $1 OR m.msisdn = $1 OR m.msisdn = $2 OR LOWER(p.given_names) LIKE $3 OR LOWER(p.surname) LIKE $3
		ORDER BY m.id DESC LIMIT 100`, strings.ToUpper(q), "+"+strings.TrimPrefix(q, "+"), like)
	if err != nil {
		return nil, fmt.Errorf("registration: search: %w", err)
	}
	defer rows.Close()
	var out []*MobileID
	for rows.Next() {
		m, err := scanMobileID(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Lookup returns the Mobile ID in use (active or suspended) on msisdn, or
// ErrNotFound. It is the directory the ID Server reads.
func (s *Server) Lookup(ctx context.Context, msisdn string) (*MobileID, error) {
	var id int64
	// The first state term repeats the condition of the partial index on
	// msisdn, word for word: only then does SQLite use the index rather
	// than scan every Mobile ID.
	err := s.db.QueryRowTx(ctx, nil, `SELECT id FROM registration_mobileid
		WHERE msisdn = $1 AND state IN ('registering', 'active', 'suspended') AND state IN ($2, $3)`,
		msisdn, StateActive, StateSuspended).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("registration: look up %s: %w", msisdn, err)
	}
	return s.Get(ctx, id)
}

// Subscribe returns a channel that receives a value whenever any Mobile ID
// changes in this process, for live views; cancel stops it.
func (s *Server) Subscribe() (ch <-chan struct{}, cancel func()) {
	c := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[c] = true
	s.mu.Unlock()
	return c, func() {
		s.mu.Lock()
		delete(s.subs, c)
		s.mu.Unlock()
	}
}

func (s *Server) changed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

func (s *Server) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// AddOfficer records an officer who may log in to the desk.
func (s *Server) AddOfficer(ctx context.Context, username, name, desk, password string) error {
	switch {
	case username == "" || len(username) > 64 || strings.ContainsAny(username, " \t\r\n:"):
		return errors.New("registration: the username must be 1 to 64 characters without spaces or colons")
	case name == "" || desk == "":
		return errors.New("registration: an officer needs a name and a desk")
	case len(password) < 10 || len(password) > 72:
		return errors.New("registration: the password must be 10 to 72 characters")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("registration: hash password: %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO registration_officer (username, name, desk, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
		username, name, desk, hash, s.now().UnixMicro())
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("registration: officer %q exists", username)
	}
	if err != nil {
		return fmt.Errorf("registration: add officer: %w", err)
	}
	return nil
}

// ErrLogin means an unknown officer or a wrong password.
var ErrLogin = errors.New("registration: unknown officer or wrong password")

// Login checks an officer's password.
func (s *Server) Login(ctx context.Context, username, password string) (*Officer, error) {
	var o Officer
	var hash []byte
	err := s.db.QueryRowContext(ctx, `SELECT username, name, desk, password_hash FROM registration_officer WHERE username = $1`, username).
		Scan(&o.Username, &o.Name, &o.Desk, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		bcrypt.CompareHashAndPassword(s.dummyHash(), []byte(password))
		return nil, ErrLogin
	}
	if err != nil {
		return nil, fmt.Errorf("registration: login: %w", err)
	}
	// The JSON API checks the password of every request; a successful
	// check is remembered for a while, by a salted digest of the password
	// and the stored hash, so that a changed password is checked afresh.
	key := s.loginKey(username, password, hash)
	s.mu.Lock()
	until, ok := s.logins[key]
	s.mu.Unlock()
	if ok && s.now().Before(until) {
		return &o, nil
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return nil, ErrLogin
	}
	s.mu.Lock()
	if len(s.logins) > 10000 {
		clear(s.logins)
	}
	s.logins[key] = s.now().Add(loginCacheTTL)
	s.mu.Unlock()
	return &o, nil
}

// loginCacheTTL is how long a verified officer password is remembered.
const loginCacheTTL = 5 * time.Minute

// loginKey is the cache key of a verified login.
func (s *Server) loginKey(username, password string, hash []byte) [32]byte {
	h := sha256.New()
	h.Write(s.salt[:])
	fmt.Fprintf(h, "%d:%s:%d:", len(username), username, len(password))
	h.Write([]byte(password))
	h.Write(hash)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// dummyHash returns a hash that a login with an unknown username is
// checked against, so that it takes as long as one with a wrong password.
func (s *Server) dummyHash() []byte {
	s.dummyOnce.Do(func() {
		s.dummy, _ = bcrypt.GenerateFromPassword([]byte("not a password of anyone"), bcrypt.DefaultCost)
	})
	return s.dummy
}

// serialHex formats a certificate serial as stored.
func serialHex(n *big.Int) string { return n.Text(16) }

func parseSerial(s string) (*big.Int, bool) { return new(big.Int).SetString(s, 16) }

// keysOf returns the stored GenerateKeys result.
func keysOf(b []byte) (*etsi.RegistrationResult, error) {
	var r etsi.RegistrationResult
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("registration: stored keys: %w", err)
	}
	return &r, nil
}

// keyRef maps the registration extension's key usage to the card's key.
func keyRef(u etsi.KeyUsage) (vmac.KeyRef, ca.Profile) {
	if u == etsi.KeyUsageSigning {
		return vmac.KeySign, ca.ProfileSigning
	}
	return vmac.KeyAuth, ca.ProfileAuthentication
}
