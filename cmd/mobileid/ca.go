package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/ca"
	"mobileid/internal/ocsp"
	"mobileid/internal/store"
	"mobileid/internal/tsa"
	"mobileid/internal/up"
)

// defaultTSAPolicy is the TSA policy OID when none is configured: an arc
// under the PEN that RFC 5612 reserves for documentation, so that nobody
// mistakes it for a production policy. Operators set their own with
// --tsa-policy.
const defaultTSAPolicy = "1.3.6.1.4.1.32473.1.3161"

// parseOID reads a dotted OID that fits encoding/asn1.
func parseOID(s string) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || strconv.Itoa(n) != p {
			return nil, fmt.Errorf("OID %q: bad arc %q", s, p)
		}
		oid = append(oid, n)
	}
	if len(oid) < 2 {
		return nil, fmt.Errorf("OID %q: too short", s)
	}
	return oid, nil
}

// caKEK returns the key-encryption key of the CA's private keys: from
// $MOBILEID_CA_KEY, or from --kek-file (see loadKEK).
func caKEK(e *env, file string, create bool) ([]byte, error) {
	return loadKEK(e, ca.KEKEnv, file, create)
}

// loadKEK returns a key-encryption key: from the environment variable
// envName (64 hex digits), or from file. With create, a missing file is
// made with a fresh key — a convenience for a laptop; in production the
// key comes from the environment (or an HSM) and never sits beside the
// keys it protects.
func loadKEK(e *env, envName, file string, create bool) ([]byte, error) {
	if v := os.Getenv(envName); v != "" {
		k, err := ca.ParseKEK(v)
		if err != nil {
			return nil, usagef("$%s: want 64 hex digits", envName)
		}
		return k, nil
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) && create {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(file, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(e.stderr, "wrote a new key-encryption key to %s; in production set $%s instead and keep the key elsewhere\n", file, envName)
		return k, nil
	}
	if err != nil {
		return nil, usagef("no key-encryption key: set $%s or give --kek-file (%v)", envName, err)
	}
	k, err := ca.ParseKEK(string(b))
	if err != nil {
		return nil, usagef("--kek-file %s: want 64 hex digits", file)
	}
	return k, nil
}

func runCAInit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ca init", "",
		"Runs the key ceremony: a root CA (ECDSA P-384), an issuing CA (P-384, path length 0), a delegated OCSP\n"+
			"responder and a TSA certificate, with every private key sealed under the key-encryption key.\n"+
			"root.key is written separately; the running CA never reads it, so move it offline.")
	dir := fs.String("dir", filepath.Join("data", "ca"), "ceremony directory")
	kekFile := fs.String("kek-file", filepath.Join("data", "ca.kek"), "key-encryption key file, used when $MOBILEID_CA_KEY is unset (created if missing)")
	org := fs.String("org", "mobileid", "organisation name in the CA certificates")
	country := fs.String("country", "EE", "country of the CA")
	base := fs.String("base-url", "http://127.0.0.1:8082", "public base URL of the CA (AIA, CRL, OCSP)")
	rootDir := fs.String("root-key-dir", "", "write root.key here instead of --dir")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	kek, err := caKEK(e, *kekFile, true)
	if err != nil {
		return err
	}
	if err := ca.Init(*dir, kek, ca.InitOptions{Organization: *org, Country: *country, BaseURL: *base, RootKeyDir: *rootDir}); err != nil {
		if errors.Is(err, ca.ErrCeremonyExists) {
			return usageError{err}
		}
		return err
	}
	fmt.Fprintf(e.stderr, "CA ceremony done in %s; move root.key offline: the running CA does not need it\n", *dir)
	return nil
}

// caFlags are the flags every CA command shares.
type caFlags struct {
	dir, kekFile, dataDir, dsn, base string
	vendorRoots                      string
	requireAttestation               bool
}

func (f *caFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&f.dir, "dir", filepath.Join("data", "ca"), "ceremony directory (see 'mobileid ca init')")
	fs.StringVar(&f.kekFile, "kek-file", filepath.Join("data", "ca.kek"), "key-encryption key file, when $MOBILEID_CA_KEY is unset")
	fs.StringVar(&f.dataDir, "data", "data", "data directory of the embedded database")
	fs.StringVar(&f.dsn, "dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	fs.StringVar(&f.base, "base-url", "http://127.0.0.1:8082", "public base URL of the CA, as given to 'ca init'")
}

// open loads the keys and the database and makes the CA.
func (f *caFlags) open(ctx context.Context, e *env, logger *slog.Logger, reg prometheus.Registerer) (*ca.CA, *ca.Keys, *store.DB, error) {
	cfg := ca.Config{BaseURL: f.base}
	if f.vendorRoots != "" {
		roots, err := up.ReadCertsFile(f.vendorRoots)
		if err != nil {
			return nil, nil, nil, usagef("--vendor-roots: %v", err)
		}
		cfg.TrustedVendorRoots = certPool(roots)
	}
	cfg.RequireAttestation = f.requireAttestation
	if cfg.RequireAttestation && cfg.TrustedVendorRoots == nil {
		return nil, nil, nil, usagef("--require-attestation needs --vendor-roots")
	}
	kek, err := caKEK(e, f.kekFile, false)
	if err != nil {
		return nil, nil, nil, err
	}
	keys, err := ca.Load(f.dir, kek)
	if err != nil {
		return nil, nil, nil, err
	}
	dsn := f.dsn
	if d := os.Getenv("MOBILEID_DSN"); d != "" {
		dsn = d
	}
	db, err := store.Open(ctx, store.Config{DSN: dsn, DataDir: f.dataDir})
	if err != nil {
		return nil, nil, nil, err
	}
	audit := logger.With("log", "audit")
	c, err := ca.New(cfg, keys, db, logger, audit, reg, time.Now)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return c, keys, db, nil
}

func runCA(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ca", "",
		"Serves the CA: CA certificates and the CRL, the OCSP responder (/ocsp) and the RFC 3161 TSA (/tsa) on\n"+
			"the public address, and the issuance API (POST /ca/issue) on the internal one.")
	var f caFlags
	f.register(fs)
	fs.StringVar(&f.vendorRoots, "vendor-roots", "", "PEM file of the SIM vendor CAs whose card attestations are trusted (e.g. a batch's vendor-ca.pem)")
	fs.BoolVar(&f.requireAttestation, "require-attestation", false, "issue only for keys with a card attestation that chains to --vendor-roots")
	public := fs.String("listen", "127.0.0.1:8082", "public listen address")
	internal := fs.String("internal", "127.0.0.1:8083", "internal listen address (issuance API, /metrics); keep it private")
	policy := fs.String("tsa-policy", defaultTSAPolicy, "TSA policy OID")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	tsaPolicy, err := parseOID(*policy)
	if err != nil {
		return usagef("--tsa-policy: %v", err)
	}
	logger := roleLogger(e, "ca")
	reg := up.NewRegistry()
	c, keys, db, err := f.open(ctx, e, logger, reg)
	if err != nil {
		return err
	}
	defer db.Close()
	responder, err := ocsp.New(ocsp.Config{Issuer: keys.Issuing, Cert: keys.OCSP, Key: keys.OCSPKey}, c, logger, reg, time.Now)
	if err != nil {
		return err
	}
	c.OnRevoke(responder.Invalidate)
	stamper, err := tsa.New(tsa.Config{Cert: keys.TSA, Key: keys.TSAKey, Chain: []*x509.Certificate{keys.Issuing}, Policy: tsaPolicy}, logger, reg, time.Now)
	if err != nil {
		return err
	}
	pub := http.NewServeMux()
	pub.Handle("/ca/", c.PublicHandler())
	pub.Handle("/crl/", c.PublicHandler())
	pub.Handle("/ocsp", responder)
	pub.Handle("/ocsp/", http.StripPrefix("/ocsp", responder))
	pub.Handle("/tsa", stamper)
	priv := http.NewServeMux()
	priv.Handle("/ca/", c.Handler())

	pl, err := net.Listen("tcp", *public)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *public, err)
	}
	il, err := net.Listen("tcp", *internal)
	if err != nil {
		pl.Close()
		return fmt.Errorf("listen on %s: %w", *internal, err)
	}
	// Metrics only on the internal listener; health on both.
	ps, is := newHTTPServer(up.WithHealth(pub, nil, up.Always), logger), newHTTPServer(up.WithHealth(priv, reg, up.Always), logger)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Revocations by `mobileid ca revoke` or other CA nodes reach this
	// responder's cache within a second.
	go c.WatchRevocations(rctx, time.Second)
	logger.Info("CA up", "public", "http://"+pl.Addr().String(), "internal", "http://"+il.Addr().String(), "issuer", keys.Issuing.Subject.CommonName)
	err = runUntilDone(ctx, []*http.Server{ps, is}, cancel,
		func() error { return ps.Serve(pl) },
		func() error { return is.Serve(il) },
		func() error { return c.Run(rctx) })
	if err != nil {
		return err
	}
	logger.Info("CA stopped")
	return nil
}

// reasons are the RFC 5280 reason names operators type.
var reasons = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3, "superseded": 4,
	"cessationOfOperation": 5, "certificateHold": 6, "privilegeWithdrawn": 9, "aACompromise": 10,
}

func runCARevoke(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ca revoke", "SERIAL",
		"Revokes a certificate (SERIAL in hex, as 'ca list' shows it) and publishes a new CRL; the OCSP responder\n"+
			"of a running CA answers revoked at once. certificateHold suspends it ('ca release' lifts a hold).")
	var f caFlags
	f.register(fs)
	reason := fs.String("reason", "unspecified", "RFC 5280 reason: keyCompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, …")
	at := fs.String("at", "", "when the key became invalid (RFC 3339); default now")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one SERIAL")
	}
	serial, ok := new(big.Int).SetString(strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(pos[0], ":", "")), "0x"), 16)
	if !ok || serial.Sign() <= 0 {
		return usagef("SERIAL %q: want a positive hex number", pos[0])
	}
	code, ok := reasons[*reason]
	if !ok {
		return usagef("--reason %q: not an RFC 5280 reason name", *reason)
	}
	when := time.Now()
	if *at != "" {
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			return usagef("--at %q: want RFC 3339, e.g. 2026-11-29T10:00:00Z", *at)
		}
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, _, db, err := f.open(ctx, e, logger, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer db.Close()
	if err := c.Revoke(ctx, serial, code, when); err != nil {
		if errors.Is(err, ca.ErrNotFound) || errors.Is(err, ca.ErrAlreadyRevoked) || errors.Is(err, ca.ErrBadReason) || errors.Is(err, ca.ErrFutureRevocation) {
			return usageError{err}
		}
		return err
	}
	fmt.Fprintf(e.stdout, "revoked %x (%s)\n", serial, *reason)
	return nil
}

func runCAList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ca list", "", "Lists issued certificates, newest first, as JSON lines.")
	var f caFlags
	f.register(fs)
	status := fs.String("status", "", "only good, revoked or on_hold")
	id := fs.String("national-id", "", "only this national ID")
	limit := fs.Int("limit", 100, "at most this many (up to 1000)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	switch ca.Status(*status) {
	case "", ca.StatusGood, ca.StatusRevoked, ca.StatusOnHold:
	default:
		return usagef("--status %q: want good, revoked or on_hold", *status)
	}
	logger := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, _, db, err := f.open(ctx, e, logger, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer db.Close()
	certs, err := c.List(ctx, ca.ListFilter{Status: ca.Status(*status), NationalID: *id, Limit: *limit})
	if err != nil {
		return err
	}
	for _, ct := range certs {
		line := map[string]any{
			"serial": fmt.Sprintf("%x", ct.Serial), "profile": ct.Profile, "subject": ct.SubjectCN,
			"national_id": ct.NationalID, "status": ct.Status,
			"not_before": ct.NotBefore.UTC().Format(time.RFC3339), "not_after": ct.NotAfter.UTC().Format(time.RFC3339),
		}
		if ct.Status != ca.StatusGood {
			line["revoked_at"] = ct.RevokedAt.UTC().Format(time.RFC3339)
			line["reason"] = ct.Reason
		}
		if err := printJSON(e, line); err != nil {
			return err
		}
	}
	return nil
}
