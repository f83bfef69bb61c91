package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/store"
	"mobileid/internal/vmac"
)

//go:embed migrations
var migrationsFS embed.FS

// component is the name under which the store records our migrations.
const component = "ca"

// Config configures the CA. The zero value of each optional field means
// its default.
type Config struct {
	// BaseURL is where the public endpoints are reachable, without a
	// trailing slash, e.g. "http://ca.example.org". Certificates point to
	// BaseURL+"/ocsp" (OCSP), BaseURL+"/ca/issuing.crt" (caIssuers) and
	// BaseURL+"/crl/issuing.crl" (CRL). Required.
	BaseURL string
	// Validity of end-entity certificates; default 3 years. Certificates
	// never outlive the issuing CA: notAfter is cut at its notAfter.
	Validity time.Duration
	// CRLPeriod is the distance between a CRL's thisUpdate and
	// nextUpdate; default 24 h. Run issues a new CRL every CRLPeriod/2.
	CRLPeriod time.Duration
	// RequireAttestation refuses requests without a card attestation.
	RequireAttestation bool
	// TrustedVendorRoots are the SIM vendors' CAs an attestation
	// certificate must be issued by (directly: no intermediates are
	// carried). Without them every attestation is refused.
	TrustedVendorRoots *x509.CertPool
	// PDSURL is the PKI Disclosure Statement in English, written into
	// the signing profile's QcPDS statement; default BaseURL+"/pds/en.pdf".
	PDSURL string
	// AuthenticationPolicy and SigningPolicy are the certificate policy
	// OIDs of the two profiles; default DefaultAuthenticationPolicy and
	// DefaultSigningPolicy.
	AuthenticationPolicy x509.OID
	SigningPolicy        x509.OID
}

// Defaults.
const (
	DefaultCRLPeriod = 24 * time.Hour
	// maxClockSkew is how far in the future a revocation time may be
	// (it is then taken as now): the caller's clock may run ahead of ours.
	maxClockSkew = time.Minute
)

func (cfg Config) withDefaults() (Config, error) {
	u, err := normaliseBaseURL(cfg.BaseURL)
	if err != nil {
		return cfg, err
	}
	cfg.BaseURL = u
	if cfg.Validity < 0 || cfg.CRLPeriod < 0 {
		return cfg, errors.New("negative validity or CRL period")
	}
	if cfg.CRLPeriod == 0 {
		cfg.CRLPeriod = DefaultCRLPeriod
	}
	if cfg.PDSURL == "" {
		cfg.PDSURL = cfg.BaseURL + "/pds/en.pdf"
	}
	if err := isIA5URL(cfg.PDSURL); err != nil {
		return cfg, fmt.Errorf("PDS URL: %w", err)
	}
	if cfg.AuthenticationPolicy.Equal(x509.OID{}) {
		cfg.AuthenticationPolicy = DefaultAuthenticationPolicy
	}
	if cfg.SigningPolicy.Equal(x509.OID{}) {
		cfg.SigningPolicy = DefaultSigningPolicy
	}
	if cfg.AuthenticationPolicy.Equal(cfg.SigningPolicy) {
		return cfg, errors.New("authentication and signing certificates must have different policy OIDs")
	}
	if cfg.RequireAttestation && cfg.TrustedVendorRoots == nil {
		return cfg, errors.New("attestation is required but no trusted vendor roots are configured")
	}
	return cfg, nil
}

// normaliseBaseURL checks that u is an absolute http(s) URL of ASCII
// characters (it goes into IA5Strings) and drops a trailing slash.
func normaliseBaseURL(u string) (string, error) {
	u = strings.TrimSuffix(u, "/")
	if err := isIA5URL(u); err != nil {
		return "", fmt.Errorf("base URL: %w", err)
	}
	p, _ := url.Parse(u)
	if p.RawQuery != "" || p.Fragment != "" {
		return "", fmt.Errorf("base URL %q has a query or fragment", u)
	}
	return u, nil
}

func isIA5URL(u string) error {
	p, err := url.Parse(u)
	switch {
	case u == "":
		return errors.New("empty URL")
	case err != nil:
		return err
	case p.Scheme != "http" && p.Scheme != "https" || p.Host == "":
		return fmt.Errorf("%q is not an absolute http or https URL", u)
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x21 || u[i] > 0x7e {
			return fmt.Errorf("%q has characters outside printable ASCII", u)
		}
	}
	return nil
}

// IssueRequest asks for a certificate for a card key. The registration
// server builds it from the card's REGISTER response and the person's
// identity as checked at the registration desk. Byte fields are base64
// (standard alphabet, padded) in JSON.
type IssueRequest struct {
	Profile Profile `json:"profile"` // ProfileAuthentication or ProfileSigning
	Subject Subject `json:"subject"`
	// PublicKey is the key's SubjectPublicKeyInfo, DER, exactly as the
	// card sent it: ECDSA P-256 or RSA-2048.
	PublicKey []byte `json:"public_key"`
	// Challenge is the nonce (16–32 bytes) the proof of possession and
	// the attestation cover, the one the MSSP sent in REGISTER.
	Challenge []byte `json:"challenge"`
	// KeyRef is the card key: vmac.KeyAuth (1) for the authentication
	// profile, vmac.KeySign (2) for the signing profile.
	KeyRef vmac.KeyRef `json:"key_ref"`
	// ProofOfPossession is the key's signature over
	// SHA-256(vmac.PoPMessage(Challenge, KeyRef, PublicKey)): raw r‖s for
	// ECDSA, PKCS #1 v1.5 for RSA.
	ProofOfPossession []byte `json:"proof_of_possession"`
	// Attestation is the card's statement that the key lives in its
	// secure element; optional unless Config.RequireAttestation.
	Attestation *Attestation `json:"attestation,omitempty"`
}

// Attestation is the card attestation from a REGISTER response. Signature
// is the raw ECDSA P-256 signature r‖s over SHA-256(vmac.AttestationMessage(
// Challenge, ICCID, AuthSPKI, SignSPKI)) by the key of Certificate (DER),
// which a trusted SIM vendor CA issued. The request's PublicKey must be
// AuthSPKI (KeyRef 1) or SignSPKI (KeyRef 2).
type Attestation struct {
	ICCID       string `json:"iccid"`
	AuthSPKI    []byte `json:"auth_spki"`
	SignSPKI    []byte `json:"sign_spki"`
	Signature   []byte `json:"signature"`
	Certificate []byte `json:"certificate"`
}

// Status is a certificate's revocation status in the store.
type Status string

// Statuses. A certificate on hold is suspended: it is listed on the CRL
// with reason certificateHold until Release or a final revocation.
const (
	StatusGood    Status = "good"
	StatusRevoked Status = "revoked"
	StatusOnHold  Status = "on_hold"
)

// Certificate is the CA's record of a certificate it issued.
type Certificate struct {
	Serial     *big.Int
	Profile    Profile
	SubjectCN  string
	Country    string // of the national ID; the CA's own for service certificates
	NationalID string // empty for service certificates
	ICCID      string // from the attestation; empty without one
	DER        []byte
	NotBefore  time.Time
	NotAfter   time.Time
	IssuedAt   time.Time
	Status     Status
	// RevokedAt is when the CA revoked or suspended the certificate (the
	// CRL's revocationDate); zero while good. A hold that becomes a
	// revocation keeps the time of the hold.
	RevokedAt time.Time
	// InvalidSince is the time given to Revoke (the CRL entry's
	// invalidityDate); zero unless revoked.
	InvalidSince time.Time
	// Reason is the RFC 5280 reason code; meaningful unless Status is
	// StatusGood.
	Reason int
}

// ListFilter selects certificates for List. Empty fields match anything.
type ListFilter struct {
	Country    string
	NationalID string
	ICCID      string
	Profile    Profile
	Status     Status
	// Limit caps the result (newest first); 0 means 100, at most 1000.
	Limit int
}

// Issuer is the CA as the registration server uses it. *CA implements it
// in process, and *Client over the internal HTTP API.
type Issuer interface {
	// Issue checks the request (subject, key, proof of possession,
	// attestation) and signs and stores a certificate. A request it will
	// not sign gets a *RefusalError and leaves no trace but an audit
	// record.
	Issue(ctx context.Context, req *IssueRequest) (*Certificate, error)
	// Revoke revokes a certificate with an RFC 5280 reason code, or
	// suspends it with certificateHold (6). at is when the certificate
	// became invalid (at most now; zero means now). Revoking a revoked
	// certificate is ErrAlreadyRevoked; only a hold can be turned into a
	// final revocation.
	Revoke(ctx context.Context, serial *big.Int, reason int, at time.Time) error
	// Release lifts a hold: the certificate is good again and leaves the
	// CRL.
	Release(ctx context.Context, serial *big.Int) error
	// Get returns one certificate, or ErrNotFound.
	Get(ctx context.Context, serial *big.Int) (*Certificate, error)
	// List returns certificates matching filter, newest first.
	List(ctx context.Context, filter ListFilter) ([]*Certificate, error)
}

var _ Issuer = (*CA)(nil)

// CA is the certificate authority: it issues, revokes and suspends
// end-entity certificates under the issuing CA key and keeps the CRL. It
// is safe for concurrent use, and several CA processes may share one
// database.
type CA struct {
	cfg   Config
	keys  *Keys
	db    *store.DB
	log   *slog.Logger
	audit *slog.Logger
	m     *metrics
	now   func() time.Time

	qcStatements pkix.Extension
	// newSerial is randomSerial; tests replace it to force collisions.
	newSerial func() (*big.Int, error)

	mu        sync.Mutex
	onRevoke  []func(*big.Int)
	crlCached *CRL
}

// New returns a CA that issues with keys (from Load) and keeps its state
// in db, whose tables it creates or migrates (component "ca"). logger gets
// operational messages; audit gets one record per issuance, refusal,
// revocation, hold and release, and is required. reg, if not nil, gets the
// metrics mobileid_ca_issued_total{profile}, mobileid_ca_refused_total{code},
// mobileid_ca_revoked_total{reason}, mobileid_ca_released_total and
// mobileid_ca_crl_number. now is the clock (nil means time.Now).
//
// New also records the OCSP responder and TSA certificates of keys in the
// store, so that CertStatus answers for them and they can be revoked.
func New(cfg Config, keys *Keys, db *store.DB, logger, audit *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*CA, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("configure CA: %w", err)
	}
	if err := keys.check(); err != nil {
		return nil, fmt.Errorf("configure CA keys: %w", err)
	}
	if db == nil {
		return nil, errors.New("configure CA: no database")
	}
	if audit == nil {
		return nil, errors.New("configure CA: no audit logger")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	qc, err := qcStatementsExtension(cfg.PDSURL)
	if err != nil {
		return nil, fmt.Errorf("configure CA: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &CA{
		cfg: cfg, keys: keys, db: db, log: logger, audit: audit, m: m, now: now,
		qcStatements: qc, newSerial: randomSerial,
	}
	ctx := context.Background()
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, component, sub); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		p    Profile
		cert *x509.Certificate
	}{{ProfileOCSPResponder, keys.OCSP}, {ProfileTimeStamping, keys.TSA}} {
		if s.cert != nil {
			if err := c.recordServiceCert(ctx, s.p, s.cert); err != nil {
				return nil, err
			}
		}
	}
	var number int64
	if err := db.QueryRowContext(ctx, `SELECT number FROM ca_crl WHERE id = 1`).Scan(&number); err != nil {
		return nil, fmt.Errorf("read CRL number: %w", err)
	}
	m.crlNumber.Set(float64(number))
	return c, nil
}

// recordServiceCert stores one of the CA's own service certificates once.
func (c *CA) recordServiceCert(ctx context.Context, p Profile, cert *x509.Certificate) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO ca_certificate
		(serial, profile, subject_cn, country, national_id, iccid, der, not_before, not_after, issued_at, status)
		VALUES ($1, $2, $3, $4, '', '', $5, $6, $7, $8, 'good')
		ON CONFLICT (serial) DO NOTHING`,
		serialKey(cert.SerialNumber), string(p), cert.Subject.CommonName, firstOr(cert.Subject.Country, ""),
		cert.Raw, cert.NotBefore.UnixMicro(), cert.NotAfter.UnixMicro(), cert.NotBefore.UnixMicro())
	if err != nil {
		return fmt.Errorf("record %s certificate: %w", p, err)
	}
	return nil
}

// serialKey is the store's key for a serial number: lower-case hex
// without leading zeros.
func serialKey(s *big.Int) string { return s.Text(16) }

// Issue implements Issuer. The checks, in order: profile; subject; key
// (ECDSA P-256 or RSA-2048 in canonical DER); key reference matching the
// profile; challenge length; proof of possession; attestation (when
// present or required). Only then is anything signed.
func (c *CA) Issue(ctx context.Context, req *IssueRequest) (*Certificate, error) {
	key, refusal := c.check(req)
	if refusal != nil {
		c.m.refused.WithLabelValues(string(refusal.Code)).Inc()
		attrs := []slog.Attr{slog.String("event", "refuse"), slog.String("code", string(refusal.Code)), slog.String("reason", refusal.Reason)}
		if req != nil {
			attrs = append(attrs, slog.String("profile", string(req.Profile)), slog.String("country", req.Subject.Country),
				slog.String("national_id", req.Subject.NationalID))
		}
		c.audit.LogAttrs(ctx, slog.LevelWarn, "certificate request refused", attrs...)
		return nil, refusal
	}
	now := c.now()
	tmpl, err := c.leafTemplate(req.Profile, req.Subject, key, req.PublicKey, now)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	iccid := ""
	if req.Attestation != nil {
		iccid = req.Attestation.ICCID
	}
	rec := &Certificate{
		Profile:    req.Profile,
		SubjectCN:  req.Subject.CommonName(),
		Country:    req.Subject.Country,
		NationalID: req.Subject.NationalID,
		ICCID:      iccid,
		NotBefore:  tmpl.NotBefore,
		NotAfter:   tmpl.NotAfter,
		IssuedAt:   now,
		Status:     StatusGood,
	}
	// The serial is unique in the store by its primary key. A collision
	// of 128 random bits does not happen by chance, but if it does the
	// certificate just signed is thrown away unseen and signed anew.
	const attempts = 5
	for i := 0; ; i++ {
		if tmpl.SerialNumber, err = c.newSerial(); err != nil {
			return nil, fmt.Errorf("issue certificate: %w", err)
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, c.keys.Issuing, key.pub, c.keys.IssuingKey)
		if err != nil {
			return nil, fmt.Errorf("sign certificate: %w", err)
		}
		rec.Serial, rec.DER = tmpl.SerialNumber, der
		err = c.insert(ctx, rec)
		if err == nil {
			break
		}
		if !store.IsUniqueViolation(err) || i == attempts-1 {
			return nil, fmt.Errorf("store certificate: %w", err)
		}
		c.log.Warn("serial number collision, signing again", "serial", serialKey(rec.Serial))
	}
	c.m.issued.WithLabelValues(string(rec.Profile)).Inc()
	c.audit.LogAttrs(ctx, slog.LevelInfo, "certificate issued",
		slog.String("event", "issue"),
		slog.String("serial", serialKey(rec.Serial)),
		slog.String("profile", string(rec.Profile)),
		slog.String("subject_cn", rec.SubjectCN),
		slog.String("country", rec.Country),
		slog.String("national_id", rec.NationalID),
		slog.String("key", key.name),
		slog.String("key_sha256", fmt.Sprintf("%x", sha256.Sum256(req.PublicKey))),
		slog.Bool("attested", req.Attestation != nil),
		slog.String("iccid", rec.ICCID),
		slog.Time("not_before", rec.NotBefore),
		slog.Time("not_after", rec.NotAfter))
	return rec, nil
}

func (c *CA) insert(ctx context.Context, r *Certificate) error {
	_, err := c.db.ExecContext(ctx, `INSERT INTO ca_certificate
		(serial, profile, subject_cn, country, national_id, iccid, der, not_before, not_after, issued_at, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'good')`,
		serialKey(r.Serial), string(r.Profile), r.SubjectCN, r.Country, r.NationalID, r.ICCID, r.DER,
		r.NotBefore.UnixMicro(), r.NotAfter.UnixMicro(), r.IssuedAt.UnixMicro())
	return err
}

// check validates an issuance request and returns the parsed key.
func (c *CA) check(req *IssueRequest) (userKey, *RefusalError) {
	if req == nil {
		return userKey{}, refuse(RefusedProfile, "no request")
	}
	wantRef, ok := req.Profile.keyRef()
	if !ok {
		return userKey{}, refuse(RefusedProfile, fmt.Sprintf("profile %q: want %q or %q", req.Profile, ProfileAuthentication, ProfileSigning))
	}
	if r := req.Subject.validate(); r != nil {
		return userKey{}, r
	}
	key, r := parseUserKey(req.PublicKey)
	if r != nil {
		return userKey{}, r
	}
	if req.KeyRef != wantRef {
		return userKey{}, refuse(RefusedKeyRef, fmt.Sprintf("the %s profile certifies card key %d (%v), not %d", req.Profile, wantRef, wantRef, req.KeyRef))
	}
	if n := len(req.Challenge); n < 16 || n > 32 {
		return userKey{}, refuse(RefusedChallenge, fmt.Sprintf("challenge of %d bytes: want 16–32", n))
	}
	digest := sha256.Sum256(vmac.PoPMessage(req.Challenge, req.KeyRef, req.PublicKey))
	if err := vmac.VerifyDigest(key.pub, crypto.SHA256, digest[:], req.ProofOfPossession); err != nil {
		return userKey{}, refuse(RefusedProofOfPossession, "proof of possession does not verify under the key for this challenge and key reference")
	}
	if req.Attestation == nil {
		if c.cfg.RequireAttestation {
			return userKey{}, refuse(RefusedAttestationRequired, "a card attestation is required")
		}
		return key, nil
	}
	if r := c.checkAttestation(req); r != nil {
		return userKey{}, r
	}
	return key, nil
}

// checkAttestation applies vmac-protocol.md §7.4 steps 3 and 4 to the
// attestation and checks that it names the key being certified.
func (c *CA) checkAttestation(req *IssueRequest) *RefusalError {
	a := req.Attestation
	bad := func(format string, args ...any) *RefusalError {
		return refuse(RefusedAttestation, "attestation: "+fmt.Sprintf(format, args...))
	}
	covered := a.AuthSPKI
	if req.KeyRef == vmac.KeySign {
		covered = a.SignSPKI
	}
	if string(covered) != string(req.PublicKey) {
		return bad("does not cover the key to be certified (it attests a different %v key)", req.KeyRef)
	}
	if string(a.AuthSPKI) == string(a.SignSPKI) {
		return bad("authentication and signing keys are the same key")
	}
	if c.cfg.TrustedVendorRoots == nil {
		return bad("no trusted SIM vendor roots are configured")
	}
	cert, err := x509.ParseCertificate(a.Certificate)
	if err != nil {
		return bad("certificate does not parse")
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       c.cfg.TrustedVendorRoots,
		CurrentTime: c.now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return bad("certificate does not chain to a trusted SIM vendor: %v", err)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return bad("certificate does not allow digital signatures")
	}
	attKey, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || attKey.Curve != elliptic.P256() {
		return bad("certified key is not ECDSA P-256")
	}
	msg, err := vmac.AttestationMessage(req.Challenge, a.ICCID, a.AuthSPKI, a.SignSPKI)
	if err != nil {
		return bad("%v", err)
	}
	digest := sha256.Sum256(msg)
	if err := vmac.VerifyDigest(attKey, crypto.SHA256, digest[:], a.Signature); err != nil {
		return bad("signature does not verify")
	}
	return nil
}

// Get implements Issuer.
func (c *CA) Get(ctx context.Context, serial *big.Int) (*Certificate, error) {
	if serial == nil || serial.Sign() <= 0 {
		return nil, ErrNotFound
	}
	row := c.db.QueryRowTx(ctx, nil, `SELECT `+certColumns+` FROM ca_certificate WHERE serial = $1`, serialKey(serial))
	r, err := scanCert(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get certificate: %w", err)
	}
	return r, nil
}

// List implements Issuer.
func (c *CA) List(ctx context.Context, f ListFilter) ([]*Certificate, error) {
	var where []string
	var args []any
	add := func(col, v string) {
		if v != "" {
			args = append(args, v)
			where = append(where, fmt.Sprintf("%s = $%d", col, len(args)))
		}
	}
	add("country", f.Country)
	add("national_id", f.NationalID)
	add("iccid", f.ICCID)
	add("profile", string(f.Profile))
	add("status", string(f.Status))
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	q := `SELECT ` + certColumns + ` FROM ca_certificate`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(` ORDER BY issued_at DESC, serial LIMIT %d`, limit)
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	var out []*Certificate
	for rows.Next() {
		r, err := scanCert(rows)
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return out, nil
}

const certColumns = `serial, profile, subject_cn, country, national_id, iccid, der,
	not_before, not_after, issued_at, status, revoked_at, reason, invalid_since`

func scanCert(s interface{ Scan(...any) error }) (*Certificate, error) {
	var (
		r                               Certificate
		serial, profile, status         string
		notBefore, notAfter, issuedAt   int64
		revokedAt, reason, invalidSince sql.NullInt64
	)
	if err := s.Scan(&serial, &profile, &r.SubjectCN, &r.Country, &r.NationalID, &r.ICCID, &r.DER,
		&notBefore, &notAfter, &issuedAt, &status, &revokedAt, &reason, &invalidSince); err != nil {
		return nil, err
	}
	var ok bool
	if r.Serial, ok = new(big.Int).SetString(serial, 16); !ok {
		return nil, fmt.Errorf("bad serial %q in store", serial)
	}
	r.Profile, r.Status = Profile(profile), Status(status)
	r.NotBefore, r.NotAfter, r.IssuedAt = time.UnixMicro(notBefore), time.UnixMicro(notAfter), time.UnixMicro(issuedAt)
	if revokedAt.Valid {
		r.RevokedAt = time.UnixMicro(revokedAt.Int64)
	}
	if invalidSince.Valid {
		r.InvalidSince = time.UnixMicro(invalidSince.Int64)
	}
	r.Reason = int(reason.Int64)
	return &r, nil
}
