// This file is the MSSP's registry of application providers ([APs]): the
// banks, the ID Server and other services that send TS 102 204 requests, and
// the checks every request passes before any state changes: AP_ID and
// AP_PWD, the TLS client certificate, the AP's rate limit, the Instant and
// the uniqueness of AP_TransID.

package mssp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"mobileid/internal/etsi"
	"mobileid/internal/store"
)

const (
	// DefaultInstantSkew is how far a request's Instant may be from the
	// server's clock when NewAPs is given no skew.
	DefaultInstantSkew = 5 * time.Minute
	// TransIDRetention is how long the server keeps used AP_TransIDs before
	// pruning them with [APs.PruneTransIDs]. FiCom's acquiring entity checks
	// AP_TransID uniqueness over about a month.
	TransIDRetention = 30 * 24 * time.Hour
)

// Limits on what an AP may be registered with.
const (
	maxAPIDLen     = 128 // characters, as for FiCom's AP_ID
	maxAPNameLen   = 32  // characters, shown on the phone
	maxPasswordLen = 72  // bytes: bcrypt ignores the rest
	maxTransIDLen  = 128 // bytes; FiCom's 32 characters are for the codec to enforce
	maxCallbackLen = 2048
)

const (
	// maxVerifiedPasswords bounds the cache of verified passwords. Only
	// correct passwords enter it, so it holds about one entry per AP; the
	// bound only matters if APs are updated very often.
	maxVerifiedPasswords = 4096
	// transIDPruneBatch is how many AP_TransIDs PruneTransIDs deletes per
	// statement, so that a large backlog does not hold SQLite's write lock
	// for long.
	transIDPruneBatch = 10000
)

// Errors returned, possibly wrapped, by APs.
var (
	// ErrUnknownAP means no AP with that AP_ID is registered.
	ErrUnknownAP = errors.New("mssp: unknown AP")
	// ErrAPExists means an AP with that AP_ID is already registered.
	ErrAPExists = errors.New("mssp: AP already exists")
)

// Fault details of Authenticate. Unknown, disabled and wrong-password
// attempts share one, so that a client cannot learn which AP_IDs exist.
const (
	faultCredentials = "unknown AP or wrong password"
	faultClientCert  = "client certificate not allowed for this AP"
	faultRateLimit   = "rate limit exceeded"
)

// AP is an application provider as registered.
type AP struct {
	// ID is the AP_ID, e.g. "http://bank.example/mid": 1 to 128 characters
	// without spaces.
	ID string
	// Name is the display name shown to the user on the phone: 1 to 32
	// characters.
	Name string
	// ClientCerts are the SHA-256 fingerprints of the DER client
	// certificates the AP may present. Empty means that the AP is not
	// required to present one, which is meant for tests and development
	// only.
	ClientCerts [][32]byte
	// Profiles are the signature profile URIs the AP may request; empty
	// means all.
	Profiles []string
	// RateLimit is the AP's sustained rate in requests per second; 0 means
	// unlimited.
	RateLimit float64
	// Burst is the size of the AP's token bucket: how many requests it may
	// send at once after a pause. With a RateLimit, 0 means
	// max(1, ceil(RateLimit)), which is what the registry then stores and
	// returns.
	Burst int
	// URLPrefixes are the prefixes the AP_URL of an asynchServerServer
	// request must start with (see [AP.AllowsURL]); empty means that such
	// callbacks are refused.
	URLPrefixes []string
	// Disabled makes every request of the AP fail authentication.
	Disabled bool
	// CreatedAt is when the AP was added; Add and Update ignore it.
	CreatedAt time.Time
}

// APConfig is an AP with its password (AP_PWD), as given to [APs.Add] and
// [APs.Update]. Only a bcrypt hash of the password is stored, and APConfig
// formats with the password redacted.
type APConfig struct {
	AP
	Password string
}

// Format formats c like a struct, for any verb, with the password replaced
// by "REDACTED", so that a logged configuration does not disclose it.
func (c APConfig) Format(f fmt.State, verb rune) {
	type redacted APConfig // without the Format method
	r := redacted(c)
	if r.Password != "" {
		r.Password = "REDACTED"
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), r)
}

// AllowsProfile reports whether the AP may request the signature profile
// uri: true when the AP has no list of profiles or uri is on it, compared
// exactly.
func (ap *AP) AllowsProfile(uri string) bool {
	return len(ap.Profiles) == 0 || slices.Contains(ap.Profiles, uri)
}

// AllowsURL reports whether u may be the AP_URL the result of an
// asynchServerServer request is sent to. u must be an absolute http or https
// URL without user information, fragment, spaces, backslashes or "." and
// ".." path segments, and must start with one of the AP's URLPrefixes, the
// match ending at the end of the prefix, at a "/" or "?" that follows it, or
// after a prefix that ends in "/". So "https://bank.example" allows
// "https://bank.example/mss" but not "https://bank.example.evil/".
func (ap *AP) AllowsURL(u string) bool {
	if len(ap.URLPrefixes) == 0 || checkCallbackURL(u) != nil {
		return false
	}
	for _, p := range ap.URLPrefixes {
		if p == "" || !strings.HasPrefix(u, p) {
			continue
		}
		if len(u) == len(p) || strings.HasSuffix(p, "/") || u[len(p)] == '/' || u[len(p)] == '?' {
			return true
		}
	}
	return false
}

// checkCallbackURL checks the form of an AP_URL or URL prefix: what the
// prefix comparison in AllowsURL relies on.
func checkCallbackURL(s string) error {
	if len(s) > maxCallbackLen {
		return fmt.Errorf("URL of %d bytes, want at most %d", len(s), maxCallbackLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return fmt.Errorf("URL %q contains a space, control character or backslash", s)
		}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("URL %q: %w", s, err)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("URL %q is not an http or https URL", s)
	case u.Host == "" || u.Opaque != "":
		return fmt.Errorf("URL %q has no host", s)
	case u.User != nil:
		return fmt.Errorf("URL %q has user information", s)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("URL %q has a fragment", s)
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("URL %q has a dot segment", s)
		}
	}
	return nil
}

// APs is the MSSP's registry of application providers and the checks of
// their requests. It is safe for concurrent use, also by several nodes
// sharing a database: every check reads the AP's current row.
//
// Passwords are stored as bcrypt hashes. A bcrypt verification takes tens of
// milliseconds, far too long for every request, so each APs remembers which
// password it has verified for which version of an AP, under a salted
// SHA-256 of the AP_ID and password that is useless outside the process. An
// AP's version grows with every Update and SetDisabled, on any node, which
// invalidates the entry. Wrong passwords are never remembered, and at most
// half the CPUs verify bcrypt hashes at once, so that a flood of wrong
// passwords leaves the others to requests that authenticate from the cache.
// Requests with the same AP_ID and password that arrive while their
// password is being verified wait for that one verification.
type APs struct {
	db   *store.DB
	now  func() time.Time
	skew time.Duration
	cost int // bcrypt cost of new hashes
	salt [32]byte
	slow chan struct{} // one token per concurrent bcrypt verification

	dummyOnce sync.Once
	dummy     []byte // hash verified against for unknown APs

	mu       sync.Mutex
	verified map[[32]byte]verifiedPassword
	checking map[checkKey]*passwordCheck // bcrypt verifications under way
	buckets  map[string]*apBucket
	rows     map[string]apRow // recently read APs, by ID

	hashChecks atomic.Int64 // bcrypt verifications run, for tests
}

// checkKey names a password verification: the cache key and the AP's
// version it is for.
type checkKey struct {
	key     [32]byte
	version int64
}

// passwordCheck is a bcrypt verification that concurrent requests with
// the same AP_ID and password wait for, rather than each running their
// own: an AP's first requests after a start arrive together.
type passwordCheck struct {
	done    chan struct{}
	ok      bool
	aborted bool // the request running it was given up before the check ran
}

// apRow is an AP as read from the database, kept for apRowTTL so that
// authentication does not read the same row for every request. A change
// made on another node reaches this one within apRowTTL; one made here at
// once.
type apRow struct {
	ap      *AP
	hash    []byte
	version int64
	until   time.Time
}

// apRowTTL is how long a read AP row is used.
const apRowTTL = time.Second

// verifiedPassword is an entry of the cache of verified passwords.
type verifiedPassword struct {
	apID    string
	version int64
}

// apBucket is an AP's token bucket.
type apBucket struct {
	tokens float64
	last   time.Time
}

// NewAPs returns the registry stored in db, migrating the "mssp" tables. now
// is the clock (time.Now when nil), for Instant checks, rate limits and
// timestamps. skew is how far a request's Instant may be from now;
// 0 means [DefaultInstantSkew].
func NewAPs(db *store.DB, now func() time.Time, skew time.Duration) (*APs, error) {
	if skew < 0 {
		return nil, fmt.Errorf("mssp: negative Instant skew %v", skew)
	}
	if skew == 0 {
		skew = DefaultInstantSkew
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
	a := &APs{
		db:       db,
		now:      now,
		skew:     skew,
		cost:     bcrypt.DefaultCost,
		slow:     make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
		verified: make(map[[32]byte]verifiedPassword),
		checking: make(map[checkKey]*passwordCheck),
		buckets:  make(map[string]*apBucket),
	}
	if _, err := rand.Read(a.salt[:]); err != nil {
		return nil, fmt.Errorf("mssp: %w", err)
	}
	return a, nil
}

// String describes a without its internals.
func (a *APs) String() string { return "mssp.APs" }

// GoString is String, so that %#v does not dump the internals either.
func (a *APs) GoString() string { return a.String() }

// checkAP checks ap as given to Add or Update and returns it with its
// defaults filled in.
func checkAP(ap AP) (AP, error) {
	if err := checkAPText(ap.ID, maxAPIDLen, false); err != nil {
		return AP{}, fmt.Errorf("mssp: AP_ID: %w", err)
	}
	if err := checkAPText(ap.Name, maxAPNameLen, true); err != nil {
		return AP{}, fmt.Errorf("mssp: AP %s: name: %w", ap.ID, err)
	}
	for _, p := range ap.Profiles {
		if err := checkAPText(p, 1024, false); err != nil {
			return AP{}, fmt.Errorf("mssp: AP %s: profile: %w", ap.ID, err)
		}
	}
	for _, p := range ap.URLPrefixes {
		if err := checkCallbackURL(p); err != nil {
			return AP{}, fmt.Errorf("mssp: AP %s: URL prefix: %w", ap.ID, err)
		}
		if u, _ := url.Parse(p); u.RawQuery != "" || u.ForceQuery {
			return AP{}, fmt.Errorf("mssp: AP %s: URL prefix %q has a query", ap.ID, p)
		}
	}
	if math.IsNaN(ap.RateLimit) || math.IsInf(ap.RateLimit, 0) || ap.RateLimit < 0 {
		return AP{}, fmt.Errorf("mssp: AP %s: rate limit %v, want a number ≥ 0", ap.ID, ap.RateLimit)
	}
	if ap.Burst < 0 {
		return AP{}, fmt.Errorf("mssp: AP %s: burst %d, want ≥ 0", ap.ID, ap.Burst)
	}
	if ap.Burst == 0 && ap.RateLimit > 0 {
		ap.Burst = int(max(1, math.Ceil(ap.RateLimit)))
	}
	return ap, nil
}

// checkAPText checks that s is valid UTF-8 of 1 to n characters without
// control characters and, unless spaces is set, without white space.
func checkAPText(s string, n int, spaces bool) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if l := utf8.RuneCountInString(s); l < 1 || l > n {
		return fmt.Errorf("%q has %d characters, want 1 to %d", s, l, n)
	}
	for _, r := range s {
		if unicode.IsControl(r) || (!spaces && unicode.IsSpace(r)) {
			return fmt.Errorf("%q contains %U", s, r)
		}
	}
	return nil
}

// hashPassword checks and hashes an AP's password. Its errors do not
// contain the password.
func (a *APs) hashPassword(id, password string) (string, error) {
	if password == "" || len(password) > maxPasswordLen {
		return "", fmt.Errorf("mssp: AP %s: password of %d bytes, want 1 to %d", id, len(password), maxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), a.cost)
	if err != nil {
		return "", fmt.Errorf("mssp: AP %s: hash password: %w", id, err)
	}
	return string(h), nil
}

// encodeAPLists encodes an AP's lists as the JSON arrays stored.
func encodeAPLists(ap *AP) (certs, profiles, prefixes string, err error) {
	fps := make([]string, len(ap.ClientCerts))
	for i, fp := range ap.ClientCerts {
		fps[i] = hex.EncodeToString(fp[:])
	}
	enc := func(v []string) (string, error) {
		if v == nil {
			v = []string{}
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	if certs, err = enc(fps); err != nil {
		return "", "", "", err
	}
	if profiles, err = enc(ap.Profiles); err != nil {
		return "", "", "", err
	}
	if prefixes, err = enc(ap.URLPrefixes); err != nil {
		return "", "", "", err
	}
	return certs, profiles, prefixes, nil
}

// Add registers an AP with cfg's password, enabled unless cfg.Disabled.
// An AP with the same ID is an [ErrAPExists].
func (a *APs) Add(ctx context.Context, cfg APConfig) error {
	ap, err := checkAP(cfg.AP)
	if err != nil {
		return err
	}
	hash, err := a.hashPassword(ap.ID, cfg.Password)
	if err != nil {
		return err
	}
	certs, profiles, prefixes, err := encodeAPLists(&ap)
	if err != nil {
		return fmt.Errorf("mssp: add AP %s: %w", ap.ID, err)
	}
	_, err = a.db.ExecContext(ctx, `INSERT INTO mssp_aps (id, name, password_hash, version,
		client_certs, profiles, rate_limit, burst, url_prefixes, disabled, created_at)
		VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10)`,
		ap.ID, ap.Name, hash, certs, profiles, ap.RateLimit, int64(ap.Burst), prefixes,
		sqlBool(ap.Disabled), a.now().UnixMicro())
	if store.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %s", ErrAPExists, ap.ID)
	}
	if err != nil {
		return fmt.Errorf("mssp: add AP %s: %w", ap.ID, err)
	}
	return nil
}

// Update replaces the registration of the AP cfg.ID with cfg, except for its
// creation time and, when cfg.Password is empty, its password. An AP that
// is not registered is an [ErrUnknownAP]. The passwords verified for the AP
// must be verified again.
func (a *APs) Update(ctx context.Context, cfg APConfig) error {
	ap, err := checkAP(cfg.AP)
	if err != nil {
		return err
	}
	certs, profiles, prefixes, err := encodeAPLists(&ap)
	if err != nil {
		return fmt.Errorf("mssp: update AP %s: %w", ap.ID, err)
	}
	query := `UPDATE mssp_aps SET name = $2, client_certs = $3, profiles = $4, rate_limit = $5,
		burst = $6, url_prefixes = $7, disabled = $8, version = version + 1`
	args := []any{ap.ID, ap.Name, certs, profiles, ap.RateLimit, int64(ap.Burst), prefixes, sqlBool(ap.Disabled)}
	if cfg.Password != "" {
		hash, err := a.hashPassword(ap.ID, cfg.Password)
		if err != nil {
			return err
		}
		query += `, password_hash = $9`
		args = append(args, hash)
	}
	res, err := a.db.ExecContext(ctx, query+` WHERE id = $1`, args...)
	if err != nil {
		return fmt.Errorf("mssp: update AP %s: %w", ap.ID, err)
	}
	return a.changed(res, ap.ID)
}

// SetDisabled disables or enables the AP id; an AP that is not registered is
// an [ErrUnknownAP]. The passwords verified for the AP must be verified
// again.
func (a *APs) SetDisabled(ctx context.Context, id string, disabled bool) error {
	res, err := a.db.ExecContext(ctx, `UPDATE mssp_aps SET disabled = $2, version = version + 1 WHERE id = $1`,
		id, sqlBool(disabled))
	if err != nil {
		return fmt.Errorf("mssp: set AP %s disabled: %w", id, err)
	}
	return a.changed(res, id)
}

// changed finishes an update of the AP id: it checks that there was one and
// forgets the passwords verified for it.
func (a *APs) changed(res sql.Result, id string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("mssp: update AP %s: %w", id, err)
	}
	// The version check alone would ignore the entries; dropping them keeps
	// the cache small.
	a.mu.Lock()
	for k, v := range a.verified {
		if v.apID == id {
			delete(a.verified, k)
		}
	}
	delete(a.rows, id)
	a.mu.Unlock()
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrUnknownAP, id)
	}
	return nil
}

func sqlBool(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

const apColumns = `id, name, client_certs, profiles, rate_limit, burst, url_prefixes, disabled, created_at`

// apRowScanner is what both *sql.Row and *sql.Rows offer.
type apRowScanner interface {
	Scan(dest ...any) error
}

// scanAP reads a row of apColumns followed by extra columns.
func scanAP(row apRowScanner, extra ...any) (*AP, error) {
	var (
		ap                        AP
		certs, profiles, prefixes string
		burst, disabled, created  int64
	)
	dest := append([]any{&ap.ID, &ap.Name, &certs, &profiles, &ap.RateLimit, &burst, &prefixes, &disabled, &created}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	var fps []string
	for _, l := range []struct {
		s string
		v *[]string
	}{{certs, &fps}, {profiles, &ap.Profiles}, {prefixes, &ap.URLPrefixes}} {
		if err := json.Unmarshal([]byte(l.s), l.v); err != nil {
			return nil, fmt.Errorf("mssp: AP %s: stored list: %w", ap.ID, err)
		}
		if len(*l.v) == 0 {
			*l.v = nil
		}
	}
	for _, s := range fps {
		var fp [32]byte
		if n, err := hex.Decode(fp[:], []byte(s)); err != nil || n != len(fp) || len(s) != 2*len(fp) {
			return nil, fmt.Errorf("mssp: AP %s: stored fingerprint %q is malformed", ap.ID, s)
		}
		ap.ClientCerts = append(ap.ClientCerts, fp)
	}
	ap.Burst = int(burst)
	ap.Disabled = disabled != 0
	ap.CreatedAt = time.UnixMicro(created)
	return &ap, nil
}

// Get returns the AP id, or [ErrUnknownAP].
func (a *APs) Get(ctx context.Context, id string) (*AP, error) {
	ap, err := scanAP(a.db.QueryRowContext(ctx, `SELECT `+apColumns+` FROM mssp_aps WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownAP, id)
	}
	if err != nil {
		return nil, fmt.Errorf("mssp: get AP %s: %w", id, err)
	}
	return ap, nil
}

// List returns every registered AP, disabled ones too, in AP_ID order.
func (a *APs) List(ctx context.Context) ([]*AP, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT `+apColumns+` FROM mssp_aps ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("mssp: list APs: %w", err)
	}
	defer rows.Close()
	var aps []*AP
	for rows.Next() {
		ap, err := scanAP(rows)
		if err != nil {
			return nil, fmt.Errorf("mssp: list APs: %w", err)
		}
		aps = append(aps, ap)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mssp: list APs: %w", err)
	}
	return aps, nil
}

// Authenticate checks that a request comes from the AP it names and may be
// served now. It checks, in this order:
//
//   - that the AP apID is registered and not disabled, and
//   - that password is its AP_PWD, else, for both, a 104
//     UNAUTHORIZED_ACCESS fault "unknown AP or wrong password";
//   - when the AP has ClientCerts, that the leaf of peerCerts (the TLS
//     peer's chain, as in http.Request.TLS.PeerCertificates) has one of
//     their fingerprints, else a 104 fault "client certificate not allowed
//     for this AP";
//   - that the AP is within its rate limit, else a 104 fault "rate limit
//     exceeded". TS 102 204 has no status code for throttling; 104 refuses
//     the request for this AP without blaming its content. The token bucket
//     is kept in memory by each APs, so n nodes together let an AP through
//     at up to n times its rate.
//
// Only a request that passes every check takes a token from the bucket.
// A database failure is returned as an error that is not an [*etsi.Fault].
func (a *APs) Authenticate(ctx context.Context, apID, password string, peerCerts []*x509.Certificate) (*AP, error) {
	ap, hash, version, err := a.credentials(ctx, apID)
	if err != nil {
		return nil, err
	}
	if ap == nil || ap.Disabled {
		// As long as for a known AP, so that timing does not tell either.
		if plausiblePassword(password) {
			a.verifyHash(ctx, a.dummyHash(), password)
		}
		return nil, etsi.NewFault(etsi.CodeUnauthorizedAccess, faultCredentials)
	}
	if !a.verifyPassword(ctx, apID, password, hash, version) {
		return nil, etsi.NewFault(etsi.CodeUnauthorizedAccess, faultCredentials)
	}
	if len(ap.ClientCerts) > 0 && !certAllowed(ap.ClientCerts, peerCerts) {
		return nil, etsi.NewFault(etsi.CodeUnauthorizedAccess, faultClientCert)
	}
	if !a.allow(ap) {
		return nil, etsi.NewFault(etsi.CodeUnauthorizedAccess, faultRateLimit)
	}
	return ap, nil
}

// credentials reads the AP apID with its password hash and version; the AP
// is nil when there is none.
func (a *APs) credentials(ctx context.Context, apID string) (*AP, []byte, int64, error) {
	if apID == "" || len(apID) > 4*maxAPIDLen {
		return nil, nil, 0, nil
	}
	now := a.now()
	a.mu.Lock()
	row, ok := a.rows[apID]
	a.mu.Unlock()
	if ok && now.Before(row.until) {
		c := *row.ap
		return &c, row.hash, row.version, nil
	}
	var (
		hash    []byte
		version int64
	)
	ap, err := scanAP(a.db.QueryRowContext(ctx,
		`SELECT `+apColumns+`, password_hash, version FROM mssp_aps WHERE id = $1`, apID), &hash, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, 0, nil
	}
	if err != nil {
		return nil, nil, 0, fmt.Errorf("mssp: authenticate AP %s: %w", apID, err)
	}
	a.mu.Lock()
	if a.rows == nil || len(a.rows) >= maxVerifiedPasswords {
		a.rows = map[string]apRow{}
	}
	c := *ap
	a.rows[apID] = apRow{ap: &c, hash: hash, version: version, until: now.Add(apRowTTL)}
	a.mu.Unlock()
	return ap, hash, version, nil
}

// cacheKey is the key of password for apID in the cache of verified
// passwords: SHA-256(salt || len(apID) || apID || password), the length
// keeping ("ab", "c") and ("a", "bc") apart.
func (a *APs) cacheKey(apID, password string) [32]byte {
	h := sha256.New()
	h.Write(a.salt[:])
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(apID))))
	h.Write([]byte(apID))
	h.Write([]byte(password))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// verifyPassword reports whether password matches the hash of version
// version of the AP apID, from the cache when it has been verified before.
func (a *APs) verifyPassword(ctx context.Context, apID, password string, hash []byte, version int64) bool {
	if !plausiblePassword(password) {
		return false
	}
	key := a.cacheKey(apID, password)
	ck := checkKey{key, version}
	a.mu.Lock()
	v, ok := a.verified[key]
	// A hit is this AP's password (the apID comparison only guards against
	// a mistake in the key); it is valid if no update has happened since.
	if ok && v.apID == apID && v.version == version {
		a.mu.Unlock()
		return true
	}
	if c, ok := a.checking[ck]; ok {
		a.mu.Unlock()
		select {
		case <-c.done:
			if c.aborted {
				return a.verifyPassword(ctx, apID, password, hash, version)
			}
			return c.ok
		case <-ctx.Done():
			return false
		}
	}
	c := &passwordCheck{done: make(chan struct{})}
	a.checking[ck] = c
	a.mu.Unlock()
	c.ok, c.aborted = a.verifyHash(ctx, hash, password)
	a.mu.Lock()
	delete(a.checking, ck)
	if c.ok {
		if len(a.verified) >= maxVerifiedPasswords {
			clear(a.verified)
		}
		a.verified[key] = verifiedPassword{apID: apID, version: version}
	}
	a.mu.Unlock()
	close(c.done)
	return c.ok
}

// plausiblePassword reports whether password could be an AP's: no stored
// hash is of an empty or longer password.
func plausiblePassword(password string) bool {
	return password != "" && len(password) <= maxPasswordLen
}

// verifyHash compares password with a bcrypt hash, waiting for a free slot
// among the concurrent verifications. aborted reports that ctx ended before
// a slot was free, and so that nothing was compared.
func (a *APs) verifyHash(ctx context.Context, hash []byte, password string) (ok, aborted bool) {
	select {
	case a.slow <- struct{}{}:
	case <-ctx.Done():
		return false, true
	}
	defer func() { <-a.slow }()
	a.hashChecks.Add(1)
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil, false
}

// dummyHash returns a hash that no password matches, made once at the cost
// of real ones.
func (a *APs) dummyHash() []byte {
	a.dummyOnce.Do(func() {
		var pw [maxPasswordLen]byte
		rand.Read(pw[:])
		// Only a bad cost fails, and then so does every Add; the nil hash
		// left then matches no password either.
		a.dummy, _ = bcrypt.GenerateFromPassword(pw[:], a.cost)
	})
	return a.dummy
}

// certAllowed reports whether the leaf of peerCerts has one of the
// fingerprints.
func certAllowed(fingerprints [][32]byte, peerCerts []*x509.Certificate) bool {
	if len(peerCerts) == 0 || peerCerts[0] == nil {
		return false
	}
	sum := sha256.Sum256(peerCerts[0].Raw)
	ok := 0
	for _, fp := range fingerprints {
		ok |= subtle.ConstantTimeCompare(sum[:], fp[:])
	}
	return ok == 1
}

// allow takes a token from ap's bucket, if it has one. The bucket refills at
// ap.RateLimit tokens per second, by the clock now, up to ap.Burst tokens;
// a new bucket is full. The rate and burst are the AP's current ones, so an
// update applies at once.
func (a *APs) allow(ap *AP) bool {
	if ap.RateLimit <= 0 {
		return true
	}
	burst := float64(ap.Burst)
	if burst < 1 {
		burst = max(1, math.Ceil(ap.RateLimit))
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.buckets[ap.ID]
	if b == nil {
		b = &apBucket{tokens: burst, last: now}
		a.buckets[ap.ID] = b
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens += d.Seconds() * ap.RateLimit
		b.last = now
	}
	b.tokens = min(b.tokens, burst)
	// A token that is short only by rounding still counts.
	if b.tokens < 1-1e-9 {
		return false
	}
	b.tokens = max(0, b.tokens-1)
	return true
}

// CheckInstant checks a request's Instant against the server's clock: it
// returns a 101 WRONG_PARAM fault when instant is further than the allowed
// skew from now, in either direction, and nil otherwise.
func (a *APs) CheckInstant(instant time.Time) error {
	// Sub saturates, so a zero or far-off instant cannot overflow.
	d := a.now().Sub(instant)
	if d > a.skew || d < -a.skew {
		return etsi.NewFault(etsi.CodeWrongParam, "Instant %s is more than %v from the server's time",
			instant.UTC().Format(time.RFC3339), a.skew)
	}
	return nil
}

// ReserveTransID records that the AP apID has used apTransID, in tx, so that
// the reservation commits or rolls back with the request it belongs to. A
// pair that is already recorded, by any node and until PruneTransIDs removes
// it, is a 101 WRONG_PARAM fault "AP_TransID … already used"; so is an empty
// AP_TransID or one longer than 128 bytes.
//
// The insert relies on the table's unique key: on PostgreSQL, a concurrent
// transaction reserving the same pair waits for this one and fails if it
// commits. A duplicate does not abort tx. When tx is nil the reservation
// commits on its own.
func (a *APs) ReserveTransID(ctx context.Context, tx *sql.Tx, apID, apTransID string, instant time.Time) error {
	if apTransID == "" || len(apTransID) > maxTransIDLen {
		return etsi.NewFault(etsi.CodeWrongParam, "AP_TransID of %d bytes, want 1 to %d", len(apTransID), maxTransIDLen)
	}
	reserve := func(tx *sql.Tx) error {
		res, err := a.db.ExecTx(ctx, tx, `INSERT INTO mssp_ap_transids (ap_id, trans_id, instant, reserved_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (ap_id, trans_id) DO NOTHING`,
			apID, apTransID, instant.UnixMicro(), a.now().UnixMicro())
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if store.IsUniqueViolation(err) || (err == nil && n == 0) {
			return etsi.NewFault(etsi.CodeWrongParam, "AP_TransID %q already used", apTransID)
		}
		if err != nil {
			return fmt.Errorf("mssp: reserve AP_TransID for %s: %w", apID, err)
		}
		return nil
	}
	if tx != nil {
		return reserve(tx)
	}
	return a.db.InTx(ctx, reserve)
}

// PruneTransIDs deletes the AP_TransID reservations made before olderThan,
// normally now minus [TransIDRetention], and returns how many it deleted. It
// is called periodically by the server. Reservations younger than twice the
// Instant skew are kept whatever olderThan says: a request could still be
// replayed with them.
func (a *APs) PruneTransIDs(ctx context.Context, olderThan time.Time) (int64, error) {
	cutoff := olderThan
	if floor := a.now().Add(-2 * a.skew); cutoff.After(floor) {
		cutoff = floor
	}
	var total int64
	for {
		res, err := a.db.ExecContext(ctx, `DELETE FROM mssp_ap_transids WHERE (ap_id, trans_id) IN
			(SELECT ap_id, trans_id FROM mssp_ap_transids WHERE reserved_at < $1 LIMIT $2)`,
			cutoff.UnixMicro(), transIDPruneBatch)
		if err != nil {
			return total, fmt.Errorf("mssp: prune AP_TransIDs: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("mssp: prune AP_TransIDs: %w", err)
		}
		total += n
		if n < transIDPruneBatch {
			return total, nil
		}
	}
}
