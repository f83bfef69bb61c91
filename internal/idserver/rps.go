// This file is the registry of relying parties ([RPs]): the banks and other
// services that call the MID REST API or the ETSI pass-through, with what
// each may do.

package idserver

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"mobileid/internal/sms"
	"mobileid/internal/store"
)

// Service is an operation of the MID REST API, or the ETSI pass-through,
// an RP may be allowed.
type Service string

// The services.
const (
	ServiceCertificate    Service = "certificate"
	ServiceAuthentication Service = "authentication"
	ServiceSignature      Service = "signature"
	// ServiceETSI is the ETSI TS 102 204 pass-through ([Server.ETSIHandler]):
	// the RP is an AP of the ID Server, with its AP_ID and its UUID as
	// AP_PWD.
	ServiceETSI Service = "etsi"
)

// maxAPIDLen is the longest AP_ID in characters, FiCom's limit, which
// the ETSI codec also enforces on requests.
const maxAPIDLen = 128

// maxRPNameLen is the longest RP name in characters. The name is shown on
// the phone before the display text, and 32 characters keep the two
// within what the MSSP accepts as DataToBeDisplayed (docs/idserver.md).
const maxRPNameLen = 32

// maxConfirmationLen bounds a confirmation template; the text it makes
// must also pass the MSSP's display text rules.
const maxConfirmationLen = 160

// Errors returned, possibly wrapped, by RPs.
var (
	// ErrUnknownRP means no RP has that UUID.
	ErrUnknownRP = errors.New("idserver: unknown relying party")
	// ErrRPExists means an RP with that UUID is already registered.
	ErrRPExists = errors.New("idserver: relying party already exists")
	// ErrAPIDExists means another RP is registered with that AP_ID.
	ErrAPIDExists = errors.New("idserver: AP_ID already in use by another relying party")
)

// uuidPattern is a lower-case UUID in the canonical 8-4-4-4-12 form, as
// MID hands out relyingPartyUUIDs.
var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// validUUID reports whether s is a lower-case canonical UUID.
func validUUID(s string) bool { return uuidPattern.MatchString(s) }

// RP is a relying party as registered. It never holds the UUID, which is
// a shared secret kept only as a hash.
type RP struct {
	// ID identifies the RP in logs and lists without revealing its UUID:
	// the first 16 hex digits of the SHA-256 of the UUID.
	ID string
	// Name is shown on the phone; the relyingPartyName of a request must
	// equal it without regard to case.
	Name string
	// Services are the operations the RP may use.
	Services []Service
	// AllowedIPs are the networks requests must come from; empty means
	// any.
	AllowedIPs []netip.Prefix
	// RateLimit is the sustained rate in requests per second each node
	// allows the RP; 0 means unlimited.
	RateLimit float64
	// Burst is the size of the RP's token bucket; with a RateLimit, 0
	// means max(1, ceil(RateLimit)).
	Burst int
	// Confirmation is a text/template shown on the phone after a
	// successful authentication or signature, e.g. "You logged in to
	// {{.RP}}"; empty means none. See [ConfirmationData].
	Confirmation string
	// APID is the RP's AP_ID in the ETSI pass-through: an absolute URI,
	// unique among RPs. It is required with ServiceETSI and must be empty
	// without it.
	APID string
	// CreatedAt is when the RP was added; Add ignores it.
	CreatedAt time.Time

	key  string // hex SHA-256 of the UUID
	tmpl *template.Template
}

// ConfirmationData is what a confirmation template is executed with.
type ConfirmationData struct {
	// RP is the RP's name.
	RP string
	// Kind is "authentication" or "signature".
	Kind string
}

// Allows reports whether the RP may use s.
func (rp *RP) Allows(s Service) bool { return slices.Contains(rp.Services, s) }

// AllowsIP reports whether a request from addr passes the RP's
// allow-list.
func (rp *RP) AllowsIP(addr netip.Addr) bool {
	if len(rp.AllowedIPs) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range rp.AllowedIPs {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// confirmation returns the confirmation text for a completed session of
// kind, or "" when the RP has none.
func (rp *RP) confirmation(kind string) (string, error) {
	if rp.tmpl == nil {
		return "", nil
	}
	var b strings.Builder
	if err := rp.tmpl.Execute(&b, ConfirmationData{RP: rp.Name, Kind: kind}); err != nil {
		return "", fmt.Errorf("execute confirmation template of RP %s: %w", rp.ID, err)
	}
	return b.String(), nil
}

// RPConfig is an RP with its UUID, as given to [RPs.Add]. It formats with
// the UUID redacted.
type RPConfig struct {
	RP
	// UUID is the relyingPartyUUID: a lower-case canonical UUID.
	UUID string
}

// String returns the configuration without the UUID.
func (c RPConfig) String() string {
	return fmt.Sprintf("RPConfig{Name: %q, Services: %v, UUID: [redacted]}", c.Name, c.Services)
}

// GoString is String, so that %#v does not print the UUID either.
func (c RPConfig) GoString() string { return c.String() }

// RPs is the registry of relying parties, shared by all nodes through the
// database, with a token bucket per RP in each node. It is safe for
// concurrent use.
type RPs struct {
	db  *store.DB
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket // by RP key
}

// NewRPs returns the registry on db, creating its tables if needed. now is
// the clock (time.Now when nil).
func NewRPs(db *store.DB, now func() time.Time) (*RPs, error) {
	if now == nil {
		now = time.Now
	}
	if err := migrate(db); err != nil {
		return nil, err
	}
	return &RPs{db: db, now: now, buckets: map[string]*bucket{}}, nil
}

// uuidKey returns the hex SHA-256 of a UUID, the form the registry keeps.
func uuidKey(uuid string) string {
	h := sha256.Sum256([]byte(uuid))
	return hex.EncodeToString(h[:])
}

func checkRP(c *RPConfig) error {
	if !validUUID(c.UUID) {
		return errors.New("the UUID must be a lower-case UUID such as de305d54-75b4-431b-adb2-eb6b9e546014")
	}
	if n := utf8.RuneCountInString(c.Name); n == 0 || n > maxRPNameLen || strings.TrimSpace(c.Name) != c.Name {
		return fmt.Errorf("the name must be 1 to %d characters without leading or trailing spaces", maxRPNameLen)
	}
	// A GSM-7 name keeps the phone's text in GSM-7 whenever the RP's
	// display text is, and so within the MSSP's 200 septets.
	if _, ok := sms.GSM7Len(c.Name); !ok || strings.ContainsAny(c.Name, "\r\n\f") {
		return errors.New("the name must be in the GSM 7-bit alphabet, on one line")
	}
	if len(c.Services) == 0 {
		return errors.New("at least one service is needed")
	}
	for _, s := range c.Services {
		switch s {
		case ServiceCertificate, ServiceAuthentication, ServiceSignature, ServiceETSI:
		default:
			return fmt.Errorf("unknown service %q", s)
		}
	}
	if err := checkAPID(c.APID, c.Allows(ServiceETSI)); err != nil {
		return err
	}
	for _, p := range c.AllowedIPs {
		if !p.IsValid() {
			return errors.New("invalid network in the IP allow-list")
		}
	}
	if c.RateLimit < 0 || math.IsNaN(c.RateLimit) || math.IsInf(c.RateLimit, 0) || c.Burst < 0 {
		return errors.New("the rate limit and burst must not be negative")
	}
	if len(c.Confirmation) > maxConfirmationLen {
		return fmt.Errorf("the confirmation template is longer than %d bytes", maxConfirmationLen)
	}
	if c.Confirmation != "" {
		t, err := template.New("confirmation").Option("missingkey=error").Parse(c.Confirmation)
		if err != nil {
			return fmt.Errorf("confirmation template: %w", err)
		}
		c.tmpl = t
		if _, err := c.RP.confirmation(string(ServiceAuthentication)); err != nil {
			return err
		}
	}
	return nil
}

// checkAPID checks an RP's AP_ID: an absolute URI of at most maxAPIDLen
// characters without spaces, present exactly when the RP has the etsi
// service, so that the pass-through never finds an RP that may not use it.
func checkAPID(apID string, etsi bool) error {
	switch {
	case apID == "" && etsi:
		return errors.New("the etsi service needs an AP_ID")
	case apID == "":
		return nil
	case !etsi:
		return errors.New("an AP_ID is only for an RP with the etsi service")
	case utf8.RuneCountInString(apID) > maxAPIDLen || !utf8.ValidString(apID):
		return fmt.Errorf("the AP_ID must be at most %d characters of UTF-8", maxAPIDLen)
	case strings.ContainsFunc(apID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return errors.New("the AP_ID must not contain spaces or control characters")
	}
	u, err := url.Parse(apID)
	if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		return fmt.Errorf("the AP_ID %q is not an absolute URI such as http://bank.example/mid", apID)
	}
	return nil
}

// Add registers an RP.
func (r *RPs) Add(ctx context.Context, c RPConfig) error {
	if err := checkRP(&c); err != nil {
		return fmt.Errorf("idserver: add relying party %q: %w", c.Name, err)
	}
	if c.RateLimit > 0 && c.Burst == 0 {
		c.Burst = max(1, int(math.Ceil(c.RateLimit)))
	}
	services, _ := json.Marshal(c.Services)
	ips := make([]string, len(c.AllowedIPs))
	for i, p := range c.AllowedIPs {
		ips[i] = p.Masked().String()
	}
	ipsJSON, _ := json.Marshal(ips)
	_, err := r.db.ExecContext(ctx, `INSERT INTO idserver_rps (rp_key, name, services, allowed_ips, rate_limit, burst, confirmation, created_at, ap_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		uuidKey(c.UUID), c.Name, string(services), string(ipsJSON), c.RateLimit, c.Burst, c.Confirmation, r.now().UnixMicro(), c.APID)
	if store.IsUniqueViolation(err) {
		// Two unique keys: say which one was taken.
		if c.APID != "" {
			var n int
			qerr := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM idserver_rps WHERE ap_id = $1`, c.APID).Scan(&n)
			if qerr == nil && n > 0 {
				return fmt.Errorf("idserver: add relying party %q: %w", c.Name, ErrAPIDExists)
			}
		}
		return fmt.Errorf("idserver: add relying party %q: %w", c.Name, ErrRPExists)
	}
	if err != nil {
		return fmt.Errorf("idserver: add relying party %q: %w", c.Name, err)
	}
	return nil
}

const rpColumns = `rp_key, name, services, allowed_ips, rate_limit, burst, confirmation, created_at, ap_id`

// Get returns the RP whose UUID is uuid, or ErrUnknownRP.
func (r *RPs) Get(ctx context.Context, uuid string) (*RP, error) {
	key := uuidKey(uuid)
	rp, err := scanRP(r.db.QueryRowContext(ctx, `SELECT `+rpColumns+` FROM idserver_rps WHERE rp_key = $1`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownRP
	}
	if err != nil {
		return nil, fmt.Errorf("idserver: look up relying party: %w", err)
	}
	// The database compares the hashes with memcmp; the comparison that
	// decides is this constant-time one.
	if subtle.ConstantTimeCompare([]byte(rp.key), []byte(key)) != 1 {
		return nil, ErrUnknownRP
	}
	return rp, nil
}

// GetAP returns the RP whose AP_ID is apID and whose UUID is password, the
// credentials of the ETSI pass-through, or ErrUnknownRP when either is
// wrong. As in Get, the comparison that decides is a constant-time one of
// the UUID's hash.
func (r *RPs) GetAP(ctx context.Context, apID, password string) (*RP, error) {
	key := uuidKey(password)
	if apID == "" {
		return nil, ErrUnknownRP
	}
	rp, err := scanRP(r.db.QueryRowContext(ctx, `SELECT `+rpColumns+` FROM idserver_rps WHERE ap_id = $1`, apID))
	if errors.Is(err, sql.ErrNoRows) {
		// The same comparison as for a known AP_ID, so that the time
		// taken tells less about which AP_IDs exist.
		subtle.ConstantTimeCompare([]byte(key), []byte(unknownAPKey))
		return nil, ErrUnknownRP
	}
	if err != nil {
		return nil, fmt.Errorf("idserver: look up relying party by AP_ID: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(rp.key), []byte(key)) != 1 {
		return nil, ErrUnknownRP
	}
	return rp, nil
}

// unknownAPKey is compared with when no RP has the AP_ID asked for.
var unknownAPKey = uuidKey("00000000-0000-0000-0000-000000000000")

// byKey returns the RP with the given key, for sessions that name it.
func (r *RPs) byKey(ctx context.Context, key string) (*RP, error) {
	rp, err := scanRP(r.db.QueryRowContext(ctx, `SELECT `+rpColumns+` FROM idserver_rps WHERE rp_key = $1`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownRP
	}
	if err != nil {
		return nil, fmt.Errorf("idserver: look up relying party %.16s: %w", key, err)
	}
	return rp, nil
}

// List returns every RP, by name.
func (r *RPs) List(ctx context.Context) ([]*RP, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+rpColumns+` FROM idserver_rps ORDER BY name, rp_key`)
	if err != nil {
		return nil, fmt.Errorf("idserver: list relying parties: %w", err)
	}
	defer rows.Close()
	var out []*RP
	for rows.Next() {
		rp, err := scanRP(rows)
		if err != nil {
			return nil, fmt.Errorf("idserver: list relying parties: %w", err)
		}
		out = append(out, rp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("idserver: list relying parties: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(...any) error }

func scanRP(row scanner) (*RP, error) {
	var (
		rp                  RP
		services, ips       string
		burst, created      int64
		confirmation, sname string
	)
	if err := row.Scan(&rp.key, &sname, &services, &ips, &rp.RateLimit, &burst, &confirmation, &created, &rp.APID); err != nil {
		return nil, err
	}
	rp.Name, rp.Burst, rp.Confirmation, rp.CreatedAt = sname, int(burst), confirmation, time.UnixMicro(created)
	rp.ID = rp.key[:min(16, len(rp.key))]
	if err := json.Unmarshal([]byte(services), &rp.Services); err != nil {
		return nil, fmt.Errorf("services of RP %s: %w", rp.ID, err)
	}
	var list []string
	if err := json.Unmarshal([]byte(ips), &list); err != nil {
		return nil, fmt.Errorf("allowed IPs of RP %s: %w", rp.ID, err)
	}
	for _, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("allowed IPs of RP %s: %w", rp.ID, err)
		}
		rp.AllowedIPs = append(rp.AllowedIPs, p)
	}
	if confirmation != "" {
		t, err := template.New("confirmation").Option("missingkey=error").Parse(confirmation)
		if err != nil {
			return nil, fmt.Errorf("confirmation template of RP %s: %w", rp.ID, err)
		}
		rp.tmpl = t
	}
	return &rp, nil
}

// Allow takes a token from the RP's bucket in this node and reports
// whether there was one.
func (r *RPs) Allow(rp *RP) bool {
	if rp.RateLimit <= 0 {
		return true
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.buckets[rp.key]
	if !ok || b.rate != rp.RateLimit || b.burst != float64(rp.Burst) {
		b = &bucket{rate: rp.RateLimit, burst: float64(rp.Burst), tokens: float64(rp.Burst), at: now}
		r.buckets[rp.key] = b
	}
	return b.take(now)
}

// bucket is a token bucket.
type bucket struct {
	rate, burst, tokens float64
	at                  time.Time
}

func (b *bucket) take(now time.Time) bool {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
