package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mobileid/internal/messaging"
	"mobileid/internal/mssp"
	"mobileid/internal/simbatch"
	"mobileid/internal/store"
	"mobileid/internal/up"
)

// msspGCPercent is the MSSP's garbage collector target. Each transaction
// allocates a few hundred kilobytes that die young (XML, TLS records, CMS),
// and the live heap is small, so collecting at 5× the live heap instead of
// 2× costs little memory and about 15 % more transactions per second
// (docs/PERFORMANCE.md).
const msspGCPercent = 400

// msspKEKEnv names the environment variable with the key that seals the
// SIMs' OTA keys in the MSSP's database.
const msspKEKEnv = "MOBILEID_MSSP_KEY"

// msspFlags are the flags every mssp command shares: where the database
// and the key-encryption key are.
type msspFlags struct {
	dataDir, dsn, kekFile string
}

func (f *msspFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dataDir, "data", "data", "data directory of the embedded database")
	fs.StringVar(&f.dsn, "dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	fs.StringVar(&f.kekFile, "kek-file", filepath.Join("data", "mssp.kek"), "key-encryption key file of the OTA keys, when $"+msspKEKEnv+" is unset")
}

func (f *msspFlags) openDB(ctx context.Context) (*store.DB, error) {
	if d := os.Getenv("MOBILEID_DSN"); d != "" {
		f.dsn = d
	}
	return store.Open(ctx, store.Config{DSN: f.dsn, DataDir: f.dataDir})
}

func runMSSPImportSIMs(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "mssp import-sims", "FILE",
		"Imports a SIM batch's operator file (operator.csv from 'mobileid sim issue') into the MSSP: ICCID, IMSI,\n"+
			"MSISDN, TAR and the OTA keys, which are sealed under the key-encryption key. SIMs already known with the\n"+
			"same data are skipped; a conflicting SIM stops the import and nothing of the file is imported.\n\n"+
			"With --swap, the file holds new SIMs for numbers that have a SIM (a SIM swap: the card was lost or\n"+
			"broken, or changes format): the SIM a number has is retired and the new one takes its place, and the\n"+
			"number's Mobile ID user is removed from the MSSP, as their keys were on the old card; they register\n"+
			"again on the new one. The other records are imported as without --swap.")
	var f msspFlags
	f.register(fs)
	swap := fs.Bool("swap", false, "replace the SIM of a number that has another one (SIM swap)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one operator file")
	}
	fh, err := os.Open(pos[0])
	if err != nil {
		return err
	}
	defer fh.Close()
	recs, err := simbatch.Read(fh)
	if err != nil {
		return err
	}
	kek, err := loadKEK(e, msspKEKEnv, f.kekFile, true)
	if err != nil {
		return err
	}
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	sims, err := mssp.NewSIMs(db, kek, time.Now)
	if err != nil {
		return err
	}
	if !*swap {
		added, skipped, err := sims.Import(ctx, recs)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "imported %d SIMs, %d already known\n", added, skipped)
		return nil
	}
	return importSwaps(ctx, e, sims, recs)
}

// importSwaps imports recs, swapping the SIM of every number that has
// another one. The new numbers go in first, all or none, as without
// --swap; each swap is a transaction of its own, so after a failed one
// the swaps before it stay done, and running the file again finishes the
// rest.
func importSwaps(ctx context.Context, e *env, sims *mssp.SIMs, recs []simbatch.Record) error {
	var plain, swaps []simbatch.Record
	for i := range recs {
		r := recs[i]
		if err := r.Validate(); err != nil {
			return fmt.Errorf("record %d: %w", i+1, err)
		}
		sim, err := sims.ByMSISDN(ctx, r.MSISDN)
		switch {
		case errors.Is(err, mssp.ErrUnknownSIM):
			plain = append(plain, r)
		case err != nil:
			return err
		case sim.ICCID == r.ICCID:
			plain = append(plain, r)
		default:
			swaps = append(swaps, r)
		}
	}
	added, skipped, err := sims.Import(ctx, plain)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "imported %d SIMs, %d already known\n", added, skipped)
	for i, r := range swaps {
		old, err := sims.Swap(ctx, r)
		if err != nil {
			return fmt.Errorf("swap SIM of %s (%d of %d swaps done): %w", r.MSISDN, i, len(swaps), err)
		}
		was := "no SIM"
		if old != nil {
			was = "SIM " + old.ICCID
		}
		fmt.Fprintf(e.stdout, "%s: SIM %s replaces %s\n", r.MSISDN, r.ICCID, was)
	}
	fmt.Fprintf(e.stdout, "swapped %d SIMs; their numbers' users must register again\n", len(swaps))
	return nil
}

// listFlag collects a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func runMSSPAPAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "mssp ap add", "",
		"Registers an application provider (AP) with the MSSP. The password comes from $MOBILEID_AP_PASSWORD or\n"+
			"--password-file, never from the command line. Each --cert is a PEM client certificate the AP may present;\n"+
			"an AP with certificates must use mutual TLS.")
	var f msspFlags
	f.register(fs)
	id := fs.String("id", "", "AP_ID, e.g. http://bank.example/mid")
	name := fs.String("name", "", "display name shown on the phone (up to 32 characters)")
	pwFile := fs.String("password-file", "", "file holding the AP_PWD")
	var certs, profiles, urls listFlag
	fs.Var(&certs, "cert", "PEM file of a client certificate the AP may use (repeatable)")
	fs.Var(&profiles, "profiles", "signature profile URIs the AP may use, comma-separated; empty means all")
	fs.Var(&urls, "url-prefix", "allowed AP_URL prefixes for asynchServerServer callbacks (repeatable)")
	rate := fs.Float64("rate", 0, "requests per second; 0 means unlimited")
	burst := fs.Int("burst", 0, "rate-limit burst; 0 means the rate rounded up")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *id == "" || *name == "" {
		return usagef("--id and --name are required")
	}
	pw := os.Getenv("MOBILEID_AP_PASSWORD")
	if *pwFile != "" {
		b, err := os.ReadFile(*pwFile)
		if err != nil {
			return usagef("--password-file: %v", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	if pw == "" {
		return usagef("no password: set $MOBILEID_AP_PASSWORD or give --password-file")
	}
	cfg := mssp.APConfig{AP: mssp.AP{ID: *id, Name: *name, Profiles: profiles, RateLimit: *rate, Burst: *burst, URLPrefixes: urls}, Password: pw}
	for _, p := range certs {
		c, err := readCertFile(p)
		if err != nil {
			return usagef("--cert: %v", err)
		}
		cfg.ClientCerts = append(cfg.ClientCerts, sha256.Sum256(c.Raw))
	}
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	aps, err := mssp.NewAPs(db, time.Now, 0)
	if err != nil {
		return err
	}
	if err := aps.Add(ctx, cfg); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "added AP %s (%s)\n", *id, *name)
	return nil
}

func runMSSPAPList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "mssp ap list", "", "Lists the registered APs (never their passwords).")
	var f msspFlags
	f.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	aps, err := mssp.NewAPs(db, time.Now, 0)
	if err != nil {
		return err
	}
	list, err := aps.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AP_ID\tNAME\tCERTS\tPROFILES\tRATE\tDISABLED")
	for _, a := range list {
		p := "all"
		if len(a.Profiles) > 0 {
			p = strings.Join(a.Profiles, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%v\n", a.ID, a.Name, len(a.ClientCerts), p, strconv.FormatFloat(a.RateLimit, 'f', -1, 64), a.Disabled)
	}
	return tw.Flush()
}

func readCertFile(path string) (*x509.Certificate, error) {
	certs, err := up.ReadCertsFile(path)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

func runMSSP(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "mssp", "",
		"Runs the Signature Server (MSSP): ETSI TS 102 204 over SOAP 1.2 (/soap/services/MSS_*Port) and JSON\n"+
			"(/rest/service/*) on HTTPS, with the Messaging Server's SMPP binds in the same process. APs authenticate\n"+
			"with AP_ID and AP_PWD and, when registered with certificates, a TLS client certificate.")
	var f msspFlags
	f.register(fs)
	listen := fs.String("listen", "127.0.0.1:8443", "HTTPS listen address of the AP interface")
	base := fs.String("base-url", "", "public base URL written into the WSDL; default https://<listen>")
	tlsCert := fs.String("tls-cert", filepath.Join("data", "mssp-tls.crt"), "server certificate (PEM); made self-signed if it and --tls-key are missing")
	tlsKey := fs.String("tls-key", filepath.Join("data", "mssp-tls.key"), "server private key (PEM)")
	clientCA := fs.String("client-ca", "", "PEM file of the CAs that issue AP client certificates")
	caRoots := fs.String("ca-roots", filepath.Join("data", "ca", "root.pem"), "PEM file of the CA roots user certificates must chain to")
	caChain := fs.String("ca-chain", filepath.Join("data", "ca", "issuing.pem"), "PEM file of the issuing CA certificates, included in CMS signatures")
	vendorRoots := fs.String("vendor-roots", "", "PEM file of the SIM vendor CAs whose card attestations are trusted")
	tsaURL := fs.String("tsa", "http://127.0.0.1:8082/tsa", "RFC 3161 TSA URL for the timestamp service; empty disables the service")
	validateOnRequest := fs.Bool("validate-on-request", false, "check revocation only for requests with the #validate service (others end with 500 SIGNATURE)")
	smscs := fs.String("smsc", "127.0.0.1:2775", "SMSC addresses, comma-separated; one bind each")
	systemID := fs.String("system-id", "mssp", "SMPP system_id")
	password := fs.String("password", "mssp-pw", "SMPP password; $MOBILEID_SMSC_PASSWORD overrides it")
	service := fs.String("service-number", "3725000", "our number: source of MT, destination of the SIMs' answers")
	metricsAddr := fs.String("metrics", "127.0.0.1:9103", "/metrics listen address; empty disables it")
	gcPercent := fs.Int("gc-percent", msspGCPercent, "Go garbage collector target (GOGC) when $GOGC is unset")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if p := os.Getenv("MOBILEID_SMSC_PASSWORD"); p != "" {
		*password = p
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(*gcPercent)
	}
	roots, err := up.ReadCertsFile(*caRoots)
	if err != nil {
		return usagef("--ca-roots: %v", err)
	}
	chain, err := up.ReadCertsFile(*caChain)
	if err != nil {
		return usagef("--ca-chain: %v", err)
	}
	cfg := mssp.Config{
		CAChain:               chain,
		ValidateOnRequestOnly: *validateOnRequest,
		Validator: &mssp.Validator{
			Roots: certPool(roots), Intermediates: certPool(chain),
			Revocation: mssp.NewOCSPChecker(&http.Client{Timeout: 5 * time.Second}, time.Now, time.Minute),
			Now:        time.Now,
		},
	}
	if *vendorRoots != "" {
		vr, err := up.ReadCertsFile(*vendorRoots)
		if err != nil {
			return usagef("--vendor-roots: %v", err)
		}
		cfg.VendorRoots = certPool(vr)
	}
	if *tsaURL != "" {
		cfg.Timestamper = &mssp.HTTPTimestamper{URL: *tsaURL, Client: &http.Client{Timeout: 10 * time.Second}}
	}
	mcfg := messaging.Config{ServiceNumber: *service}
	for _, a := range strings.Split(*smscs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			mcfg.Binds = append(mcfg.Binds, messaging.Bind{Addr: a, SystemID: *systemID, Password: *password})
		}
	}
	if len(mcfg.Binds) == 0 {
		return usagef("--smsc: want at least one address")
	}
	kek, err := loadKEK(e, msspKEKEnv, f.kekFile, true)
	if err != nil {
		return err
	}
	cert, err := serverCert(e, *tlsCert, *tlsKey, *listen)
	if err != nil {
		return err
	}
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}
	if *clientCA != "" {
		cas, err := up.ReadCertsFile(*clientCA)
		if err != nil {
			return usagef("--client-ca: %v", err)
		}
		tlsCfg.ClientCAs, tlsCfg.ClientAuth = certPool(cas), tls.VerifyClientCertIfGiven
	}

	logger := roleLogger(e, "mssp")
	audit := logger.With("log", "audit")
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	reg := up.NewRegistry()
	srv, err := newMSSPStack(ctx, cfg, mcfg, db, kek, logger, audit, reg)
	if err != nil {
		return err
	}
	if *base == "" {
		*base = "https://" + *listen
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	api := mssp.NewServer(srv.engine, srv.aps, srv.users, logger, *base)
	// The APs' port answers health checks; metrics are on --metrics.
	hs := newHTTPServer(up.WithHealth(api.Handler(), nil, up.Always), logger)
	hs.TLSConfig = tlsCfg
	servers := []*http.Server{hs}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fns := []func() error{
		func() error { return hs.ServeTLS(ln, "", "") },
		func() error { return srv.engine.Run(rctx) },
		func() error { return srv.messaging.Run(rctx) },
		func() error { pruneTransIDs(rctx, srv.aps, logger); return nil },
	}
	if *metricsAddr != "" {
		ml, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen for metrics: %w", err)
		}
		ms := newHTTPServer(up.WithHealth(http.NotFoundHandler(), reg, up.Always), logger)
		servers = append(servers, ms)
		fns = append(fns, func() error { return ms.Serve(ml) })
	}
	logger.Info("MSSP up", "url", *base, "smsc", *smscs, "database", db.Dialect().String())
	if err := runUntilDone(ctx, servers, cancel, fns...); err != nil {
		return err
	}
	logger.Info("MSSP stopped")
	return nil
}

// msspStack is the MSSP with its Messaging Server, wired to each other.
type msspStack struct {
	engine    *mssp.Engine
	aps       *mssp.APs
	users     *mssp.Users
	sims      *mssp.SIMs
	messaging *messaging.Server
}

func newMSSPStack(ctx context.Context, cfg mssp.Config, mcfg messaging.Config, db *store.DB, kek []byte, logger, audit *slog.Logger, reg prometheus.Registerer) (*msspStack, error) {
	sims, err := mssp.NewSIMs(db, kek, time.Now)
	if err != nil {
		return nil, err
	}
	users, err := mssp.NewUsers(db, time.Now)
	if err != nil {
		return nil, err
	}
	aps, err := mssp.NewAPs(db, time.Now, 0)
	if err != nil {
		return nil, err
	}
	eng, err := mssp.NewEngine(cfg, db, sims, users, logger, audit, reg, time.Now)
	if err != nil {
		return nil, err
	}
	msg, err := messaging.New(mcfg, db, eng, logger, reg, time.Now)
	if err != nil {
		return nil, err
	}
	eng.SetSender(msg)
	return &msspStack{engine: eng, aps: aps, users: users, sims: sims, messaging: msg}, nil
}

// serverCert loads the TLS server certificate, or makes a self-signed one
// for the listen address when neither file exists, so that a laptop runs
// without a PKI; production configures its own.
func serverCert(e *env, certFile, keyFile, listen string) (tls.Certificate, error) {
	_, errC := os.Stat(certFile)
	_, errK := os.Stat(keyFile)
	if errors.Is(errC, os.ErrNotExist) && errors.Is(errK, os.ErrNotExist) {
		if err := up.WriteSelfSignedTLS(certFile, keyFile, listen); err != nil {
			return tls.Certificate{}, fmt.Errorf("make a TLS certificate: %w", err)
		}
		fmt.Fprintf(e.stderr, "wrote a self-signed TLS certificate to %s\n", certFile)
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, usagef("TLS certificate: %v", err)
	}
	return c, nil
}

// pruneTransIDs forgets, every hour, the AP_TransIDs older than
// mssp.TransIDRetention, until ctx is done.
func pruneTransIDs(ctx context.Context, aps *mssp.APs, logger *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := aps.PruneTransIDs(ctx, time.Now().Add(-mssp.TransIDRetention))
		if err != nil && ctx.Err() == nil {
			logger.Warn("cannot prune AP_TransIDs", "err", err)
		} else if n > 0 {
			logger.Info("pruned AP_TransIDs", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
