package up

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"mobileid/internal/bank"
	"mobileid/internal/ca"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/handset"
	"mobileid/internal/idserver"
	"mobileid/internal/messaging"
	"mobileid/internal/mssp"
	"mobileid/internal/ocsp"
	"mobileid/internal/ops"
	"mobileid/internal/registration"
	"mobileid/internal/simbatch"
	"mobileid/internal/simfactory"
	"mobileid/internal/smsc"
	"mobileid/internal/store"
	"mobileid/internal/tsa"
)

// Config says where the system keeps its state and listens.
type Config struct {
	// DataDir holds the database, the CA's keys, the SIM batch and the
	// secrets. Default "data".
	DataDir string
	// Addrs are the listen addresses; empty ones get DefaultAddrs'.
	Addrs Addrs
	// Phones is how many SIMs the first start makes; default 10, at
	// least 4 (three demo people and a free SIM for the desk).
	Phones int
	// Logger receives the components' structured logs; nil discards
	// them.
	Logger *slog.Logger
	// Out receives what a person at the terminal reads: progress of the
	// first start, the demo credentials and the URLs. nil discards it.
	Out io.Writer
}

// Addrs are the listen addresses (host:port) of the parts of the system.
// Each part has its own, as it would as a separate process, so that the
// URLs are the same in both deployments.
type Addrs struct {
	Console      string // landing page, health
	SMPP         string // the SMSC
	Phones       string // the phone console
	CA           string // certificates, CRL, OCSP, TSA
	MSSP         string // ETSI TS 102 204 over HTTPS
	Registration string // the registration desk and its API
	IDServer     string // MID REST API and OpenID Connect
	Bank         string // the demo bank
}

// DefaultAddrs are the addresses `mobileid up` listens on, the same as the
// separate roles' defaults.
var DefaultAddrs = Addrs{
	Console:      "127.0.0.1:8080",
	SMPP:         "127.0.0.1:2775",
	Phones:       "127.0.0.1:8081",
	CA:           "127.0.0.1:8082",
	MSSP:         "127.0.0.1:8443",
	Registration: "127.0.0.1:8084",
	IDServer:     "127.0.0.1:8085",
	Bank:         "127.0.0.1:8086",
}

// Identities and names of the embedded system.
const (
	registrationAPID = "http://mobileid.dev/registration"
	idserverAPID     = "http://mobileid.dev/idserver"
	smscSystemID     = "mssp"
	serviceNumber    = "3725000"
	firstMSISDN      = "+37250000001"
	officerUser      = "officer"
	bankClientID     = "demo-bank"
	// BankAPID is the demo bank's AP_ID in the ID Server's ETSI
	// pass-through; its AP_PWD is its relyingPartyUUID.
	BankAPID = "http://mobileid.dev/demo-bank"
	bankName = "Demo Bank"
)

// tsaPolicy is the default TSA policy, under the documentation enterprise
// number of RFC 5612 like the CA's default certificate policies.
var tsaPolicy = []int{1, 3, 6, 1, 4, 1, 32473, 1, 3161}

// URLs are where a person finds the parts of a running system; the
// console serves them as JSON at /api/urls.
type URLs struct {
	Console         string `json:"console"`
	Phones          string `json:"phones"`
	Desk            string `json:"desk"`
	RegistrationAPI string `json:"registration_api"`
	CA              string `json:"ca"`
	MSSP            string `json:"mssp"`
	MIDAPI          string `json:"mid_api"`
	Issuer          string `json:"issuer"`
	Bank            string `json:"bank"`
}

// System is the platform running in this process. Stop it with Stop.
type System struct {
	// URLs are the running system's addresses.
	URLs URLs
	// People are the demo people, registered.
	People []DemoPerson
	// BankRPUUID is the demo relying party's relyingPartyUUID.
	BankRPUUID string
	// OfficerPassword is the password of the desk's demo officer.
	OfficerPassword string
	// Phones is the simulated network's phones.
	Phones *handset.Network
	// RS is the Registration Server.
	RS *registration.Server

	cfg     Config
	log     *slog.Logger
	out     io.Writer
	lock    *os.File
	db      *store.DB
	closers []func() error // run after the parts have stopped
	sc      *smsc.SMSC
	servers []*http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errc    chan error
	ready   chan struct{}
	once    sync.Once
}

// listener is one of the system's listening sockets.
type listener struct {
	name, addr string
	ln         net.Listener
}

// Start makes the system on its first start, or opens it, starts every
// part and returns once the demo people are registered and everything
// answers. On an error nothing keeps running.
func Start(ctx context.Context, cfg Config) (*System, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.Phones == 0 {
		cfg.Phones = 10
	}
	if cfg.Phones < len(demoPeople)+1 || cfg.Phones > 100000 {
		return nil, fmt.Errorf("the number of phones must be %d to 100000", len(demoPeople)+1)
	}
	fillAddrs(&cfg.Addrs)
	s := &System{
		cfg: cfg, log: cfg.Logger, out: cfg.Out,
		errc: make(chan error, 16), ready: make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.out == nil {
		s.out = io.Discard
	}
	// Nothing is written before every check that can fail cheaply has
	// passed: the data directory, then every port.
	if err := s.lockDataDir(); err != nil {
		return nil, err
	}
	lns, err := listenAll(cfg.Addrs)
	if err != nil {
		s.unlock()
		return nil, err
	}
	if err := s.start(ctx, lns); err != nil {
		for _, l := range lns {
			l.ln.Close()
		}
		s.Stop(context.Background())
		return nil, err
	}
	return s, nil
}

func fillAddrs(a *Addrs) {
	for _, f := range []struct {
		v *string
		d string
	}{
		{&a.Console, DefaultAddrs.Console}, {&a.SMPP, DefaultAddrs.SMPP}, {&a.Phones, DefaultAddrs.Phones},
		{&a.CA, DefaultAddrs.CA}, {&a.MSSP, DefaultAddrs.MSSP}, {&a.Registration, DefaultAddrs.Registration},
		{&a.IDServer, DefaultAddrs.IDServer}, {&a.Bank, DefaultAddrs.Bank},
	} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
}

// lockDataDir makes the data directory if needed, checks that it can be
// written, and takes a lock on it, so that two systems never share one.
func (s *System) lockDataDir() error {
	dir := s.cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", dir, unwrapPath(err))
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, unwrapPath(err))
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("data directory %s is in use by another mobileid process", dir)
	}
	s.lock = f
	return nil
}

func (s *System) unlock() {
	if s.lock != nil {
		syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
		s.lock = nil
	}
}

// unwrapPath drops the path an *os.PathError repeats.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// listenAll opens every listening socket, or none.
func listenAll(a Addrs) ([]listener, error) {
	lns := []listener{
		{name: "the console", addr: a.Console}, {name: "the SMSC (SMPP)", addr: a.SMPP},
		{name: "the phone console", addr: a.Phones}, {name: "the CA", addr: a.CA},
		{name: "the MSSP", addr: a.MSSP}, {name: "the Registration Server", addr: a.Registration},
		{name: "the ID Server", addr: a.IDServer}, {name: "the demo bank", addr: a.Bank},
	}
	for i := range lns {
		ln, err := net.Listen("tcp", lns[i].addr)
		if err != nil {
			for _, l := range lns[:i] {
				l.ln.Close()
			}
			var se *os.SyscallError
			if errors.As(err, &se) {
				err = se.Err
			}
			return nil, fmt.Errorf("cannot listen on %s for %s: %w", lns[i].addr, lns[i].name, err)
		}
		lns[i].ln = ln
	}
	return lns, nil
}

// httpURL returns the base URL of a listener's address.
func httpURL(scheme string, ln net.Listener) string {
	return scheme + "://" + ln.Addr().String()
}

func (s *System) start(ctx context.Context, lns []listener) error {
	dir := s.cfg.DataDir
	// The secrets are read and the database opened before anything is
	// written, so that a corrupt file stops the start with nothing
	// changed.
	sec, fresh, changed, err := loadSecrets(dir)
	if err != nil {
		return err
	}
	s.db, err = store.Open(ctx, store.Config{DataDir: dir})
	if err != nil {
		return fmt.Errorf("database in %s: %w", dir, err)
	}
	if changed {
		if err := sec.save(dir); err != nil {
			return err
		}
	}
	if fresh {
		fmt.Fprintf(s.out, "First start: making the system in %s.\n", dir)
	}
	s.BankRPUUID, s.OfficerPassword = sec.BankRPUUID, sec.OfficerPassword
	consoleLn, smppLn, phonesLn, caLn, msspLn, regLn, idLn, bankLn := lns[0].ln, lns[1].ln, lns[2].ln, lns[3].ln, lns[4].ln, lns[5].ln, lns[6].ln, lns[7].ln
	s.URLs = URLs{
		Console: httpURL("http", consoleLn) + "/", Phones: httpURL("http", phonesLn) + "/phones/",
		Desk: httpURL("http", regLn) + "/desk/", RegistrationAPI: httpURL("http", regLn) + "/api/v1/",
		CA: httpURL("http", caLn), MSSP: httpURL("https", msspLn),
		MIDAPI: httpURL("http", idLn) + "/mid-api", Issuer: httpURL("http", idLn),
		Bank: httpURL("http", bankLn),
	}
	now := time.Now
	log, audit := s.log, s.log.With("log", "audit")

	// The CA's key ceremony, once. Its base URL goes into every
	// certificate.
	caDir := filepath.Join(dir, "ca")
	if _, err := os.Stat(filepath.Join(caDir, "root.pem")); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(s.out, "  CA key ceremony (root, issuing CA, OCSP responder, TSA)…\n")
		if err := ca.Init(caDir, key(sec.CAKEK), ca.InitOptions{Organization: "mobileid demo", Country: "EE", BaseURL: s.URLs.CA}); err != nil {
			return fmt.Errorf("CA key ceremony: %w", err)
		}
	}
	keys, err := ca.Load(caDir, key(sec.CAKEK))
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	// A SIM batch from the SIM vendor, once.
	simDir := filepath.Join(dir, "sims")
	if _, err := os.Stat(filepath.Join(simDir, simfactory.OperatorFile)); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(s.out, "  SIM factory: %d SIMs from %s…\n", s.cfg.Phones, firstMSISDN)
		f, err := simfactory.NewFactory("mobileid demo SIM vendor CA")
		if err != nil {
			return err
		}
		first, _ := new(big.Int).SetString(firstMSISDN[1:], 10)
		if err := simfactory.IssueBatch(ctx, f, simDir, first, len(firstMSISDN)-1, s.cfg.Phones, simfactory.Options{Workers: 2}); err != nil {
			return fmt.Errorf("SIM factory: %w", err)
		}
	}
	vendor, err := ReadCertsFile(filepath.Join(simDir, simfactory.VendorCertFile))
	if err != nil {
		return fmt.Errorf("SIM vendor CA: %w", err)
	}

	run, cancel := context.WithCancel(context.Background())
	s.cancel = cancel

	// The CA, its OCSP responder and TSA.
	caReg := NewRegistry()
	c, err := ca.New(ca.Config{BaseURL: s.URLs.CA, TrustedVendorRoots: certPool(vendor...)}, keys, s.db, log, audit, caReg, now)
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	responder, err := ocsp.New(ocsp.Config{Issuer: keys.Issuing, Cert: keys.OCSP, Key: keys.OCSPKey}, c, log, caReg, now)
	if err != nil {
		return fmt.Errorf("OCSP responder: %w", err)
	}
	c.OnRevoke(responder.Invalidate)
	stamper, err := tsa.New(tsa.Config{Cert: keys.TSA, Key: keys.TSAKey, Chain: []*x509.Certificate{keys.Issuing}, Policy: tsaPolicy}, log, caReg, now)
	if err != nil {
		return fmt.Errorf("TSA: %w", err)
	}
	caMux := http.NewServeMux()
	caMux.Handle("/ca/", c.PublicHandler())
	caMux.Handle("/crl/", c.PublicHandler())
	caMux.Handle("/ocsp", responder)
	caMux.Handle("/ocsp/", http.StripPrefix("/ocsp", responder))
	caMux.Handle("/tsa", stamper)
	s.serve(caLn, WithHealth(caMux, caReg, s.isReady), nil)
	s.goRun("CA", func() error { return c.Run(run) })

	// The simulated network: the phones and the SMSC.
	pins := demoPINs(key(sec.DemoPINKey))
	phones, err := handset.LoadNetwork(simDir, handset.Config{Logger: log, Default: handset.Behaviour{Action: handset.Console}, PINs: pins})
	if err != nil {
		return fmt.Errorf("phones: %w", err)
	}
	s.Phones = phones
	netReg := NewRegistry()
	traffic := ops.NewRecorder(ops.DefaultRecorderSize)
	s.goRun("operations console", func() error { return traffic.Run(run) })
	s.sc, err = smsc.New(smsc.Config{Accounts: []smsc.Account{{SystemID: smscSystemID, Password: sec.SMSCPassword, Addresses: []string{serviceNumber}}},
		Tap: smscTap(traffic)}, phones, log, netReg)
	if err != nil {
		return fmt.Errorf("SMSC: %w", err)
	}
	phones.SetUplink(handset.UplinkFunc(s.sc.SubmitMO))
	s.goRun("SMSC", func() error { return s.sc.Serve(smppLn) })
	phoneMux := http.NewServeMux()
	phoneMux.Handle("/phones/", http.StripPrefix("/phones", phones.Handler()))
	phoneMux.Handle("GET /{$}", http.RedirectHandler("/phones/", http.StatusFound))
	s.serve(phonesLn, WithHealth(phoneMux, netReg, s.isReady), nil)

	// The MSSP and its Messaging Server, with the batch's SIMs.
	msspReg := NewRegistry()
	sims, err := mssp.NewSIMs(s.db, key(sec.MSSPKEK), now)
	if err != nil {
		return fmt.Errorf("MSSP: %w", err)
	}
	recs, err := readOperatorFile(filepath.Join(simDir, simfactory.OperatorFile))
	if err != nil {
		return err
	}
	if _, _, err := sims.Import(ctx, recs); err != nil {
		return fmt.Errorf("MSSP: import SIMs: %w", err)
	}
	users, err := mssp.NewUsers(s.db, now)
	if err != nil {
		return fmt.Errorf("MSSP: %w", err)
	}
	aps, err := mssp.NewAPs(s.db, now, 0)
	if err != nil {
		return fmt.Errorf("MSSP: %w", err)
	}
	for _, ap := range []mssp.APConfig{
		{AP: mssp.AP{ID: registrationAPID, Name: "Mobile ID registration"}, Password: sec.RegistrationAPPW},
		{AP: mssp.AP{ID: idserverAPID, Name: "Mobile ID"}, Password: sec.IDServerAPPW},
	} {
		if _, err := aps.Get(ctx, ap.ID); errors.Is(err, mssp.ErrUnknownAP) {
			err = aps.Add(ctx, ap)
		}
		if err != nil {
			return fmt.Errorf("MSSP: AP %s: %w", ap.ID, err)
		}
	}
	engine, err := mssp.NewEngine(mssp.Config{
		VendorRoots: certPool(vendor...),
		CAChain:     []*x509.Certificate{keys.Issuing},
		Validator: &mssp.Validator{
			Roots: certPool(keys.Root), Intermediates: certPool(keys.Issuing),
			Revocation: mssp.NewOCSPChecker(&http.Client{Timeout: 5 * time.Second}, now, time.Minute),
			Now:        now,
		},
		Timestamper: &mssp.HTTPTimestamper{URL: s.URLs.CA + "/tsa", Client: &http.Client{Timeout: 10 * time.Second}},
	}, s.db, sims, users, log, audit, msspReg, now)
	if err != nil {
		return fmt.Errorf("MSSP: %w", err)
	}
	msg, err := messaging.New(messaging.Config{
		ServiceNumber: serviceNumber,
		Binds:         []messaging.Bind{{Addr: smppLn.Addr().String(), SystemID: smscSystemID, Password: sec.SMSCPassword}},
	}, s.db, engine, log, msspReg, now)
	if err != nil {
		return fmt.Errorf("messaging: %w", err)
	}
	engine.SetSender(msg)
	tlsCert, err := loadOrMakeTLS(filepath.Join(dir, "mssp-tls.crt"), filepath.Join(dir, "mssp-tls.key"), msspLn.Addr().String())
	if err != nil {
		return fmt.Errorf("MSSP TLS certificate: %w", err)
	}
	api := mssp.NewServer(engine, aps, users, log, s.URLs.MSSP)
	msspMux := http.NewServeMux()
	msspMux.Handle("/", api.Handler())
	s.serve(msspLn, WithHealth(msspMux, msspReg, s.isReady), &tls.Config{
		Certificates: []tls.Certificate{tlsCert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert,
	})
	s.goRun("MSSP", func() error { return engine.Run(run) })
	s.goRun("messaging", func() error { return msg.Run(run) })
	leaf, _ := x509.ParseCertificate(tlsCert.Certificate[0])
	msspClient := func(timeout time.Duration) *etsiclient.Client {
		return &etsiclient.Client{BaseURL: s.URLs.MSSP, HTTP: &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: certPool(leaf), MinVersion: tls.VersionTLS12},
		}}}
	}

	// The Registration Server, with the desk's demo officer.
	rs, err := registration.New(registration.Config{APID: registrationAPID, APPassword: sec.RegistrationAPPW},
		s.db, msspClient(10*time.Minute), c, nil, log, audit, now)
	if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	rs.CertStatus = func(ctx context.Context, serialHex string) (string, error) {
		return certStatus(ctx, c, serialHex)
	}
	s.RS = rs
	if _, err := rs.Login(ctx, officerUser, sec.OfficerPassword); errors.Is(err, registration.ErrLogin) {
		err = rs.AddOfficer(ctx, officerUser, "Demo Officer", "Demo desk", sec.OfficerPassword)
		if err != nil {
			return fmt.Errorf("registration: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	regMux := http.NewServeMux()
	regMux.Handle("/api/v1/", rs.APIHandler())
	regMux.Handle("/desk/", http.StripPrefix("/desk", rs.DeskHandler()))
	regMux.Handle("GET /{$}", http.RedirectHandler("/desk/", http.StatusFound))
	s.serve(regLn, WithHealth(regMux, NewRegistry(), s.isReady), nil)
	s.goRun("registration", func() error { return rs.Run(run) })

	// The ID Server and its OpenID provider, with the demo bank as a
	// relying party.
	rps, err := idserver.NewRPs(s.db, now)
	if err != nil {
		return fmt.Errorf("ID Server: %w", err)
	}
	ids, err := idserver.New(idserver.Config{
		APID: idserverAPID, APPassword: sec.IDServerAPPW,
		Roots: certPool(keys.Root), Intermediates: certPool(keys.Issuing),
	}, s.db, rps, &Directory{RS: rs, CA: c}, msspClient(11*time.Minute), log, now)
	if err != nil {
		return fmt.Errorf("ID Server: %w", err)
	}
	provider, err := idserver.NewOIDC(ctx, ids, idserver.OIDCConfig{
		Issuer: s.URLs.Issuer, Insecure: true, KeyEncryptionKey: key32(sec.OIDCKEK), SubjectKey: key(sec.OIDCSubjectKey),
	})
	if err != nil {
		return fmt.Errorf("ID Server: %w", err)
	}
	if err := s.demoRP(ctx, rps); err != nil {
		return err
	}
	idMux := http.NewServeMux()
	idMux.Handle("/mid-api/", ids.Handler())
	idMux.Handle("/soap/services/", ids.ETSIHandler())
	idMux.Handle("/rest/service/", ids.ETSIHandler())
	idMux.Handle("/", provider.Handler())
	s.serve(idLn, WithHealth(idMux, NewRegistry(), s.isReady), nil)
	s.goRun("ID Server", func() error { return ids.Run(run) })

	// The demo bank: a relying party of its own, with its own database,
	// that reaches the ID Server over HTTP like any bank.
	bankDB, err := store.Open(ctx, store.Config{DataDir: filepath.Join(dir, "bank")})
	if err != nil {
		return fmt.Errorf("demo bank: database: %w", err)
	}
	s.closers = append(s.closers, bankDB.Close)
	bk, err := bank.New(bank.Config{
		PublicURL: s.URLs.Bank, Issuer: s.URLs.Issuer, ClientID: bankClientID, ClientSecret: s.BankRPUUID,
		MIDURL: s.URLs.MIDAPI, RPName: bankName, RPUUID: s.BankRPUUID,
		Roots: certPool(keys.Root), Intermediates: certPool(keys.Issuing),
	}, bankDB, log.With("role", "bank"), now)
	if err != nil {
		return fmt.Errorf("demo bank: %w", err)
	}
	s.serve(bankLn, WithHealth(bk.Handler(), NewRegistry(), s.isReady), nil)

	// The landing page and the operations console.
	console, err := newOpsConsole(engine, c, traffic, log, caReg, netReg, msspReg)
	if err != nil {
		return err
	}
	s.serve(consoleLn, WithHealth(withOps(s.landing(), console), NewRegistry(), s.isReady), nil)

	// The demo people, registered through the real flow.
	if err := s.registerDemoPeople(ctx, rs, phones, pins); err != nil {
		return err
	}
	close(s.ready)
	return nil
}

// demoRP registers the demo bank with the ID Server, once: the MID REST
// API with its UUID, and the OpenID Connect client demo-bank.
func (s *System) demoRP(ctx context.Context, rps *idserver.RPs) error {
	if _, err := rps.Get(ctx, s.BankRPUUID); err == nil {
		return nil
	} else if !errors.Is(err, idserver.ErrUnknownRP) {
		return fmt.Errorf("ID Server: %w", err)
	}
	err := rps.AddWithOIDCClient(ctx, idserver.RPConfig{UUID: s.BankRPUUID, RP: idserver.RP{
		Name: bankName,
		Services: []idserver.Service{idserver.ServiceCertificate, idserver.ServiceAuthentication, idserver.ServiceSignature,
			idserver.ServiceETSI},
		APID:         BankAPID,
		Confirmation: "{{.RP}}: done. Thank you.",
	}}, idserver.OIDCClient{ID: bankClientID, RedirectURIs: []string{s.URLs.Bank + "/callback"}, CIBA: true})
	if err != nil {
		return fmt.Errorf("ID Server: demo relying party: %w", err)
	}
	return nil
}

// serve serves h on ln (with TLS when cfg is not nil) until Stop.
func (s *System) serve(ln net.Listener, h http.Handler, cfg *tls.Config) {
	hs := &http.Server{Handler: WithRequestLog(h, s.log), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	s.servers = append(s.servers, hs)
	s.goRun("HTTP "+ln.Addr().String(), func() error {
		var err error
		if cfg != nil {
			hs.TLSConfig = cfg
			err = hs.ServeTLS(ln, "", "")
		} else {
			err = hs.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
}

// goRun runs f until Stop; an error ends the system.
func (s *System) goRun(name string, f func() error) {
	s.wg.Go(func() {
		if err := f(); err != nil && !errors.Is(err, context.Canceled) {
			select {
			case s.errc <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	})
}

// Err returns a channel that receives the first failure of a part of the
// system.
func (s *System) Err() <-chan error { return s.errc }

// isReady reports whether the first start is complete.
func (s *System) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// Stop shuts the system down: the HTTP servers finish the requests under
// way (until ctx is done), then every part stops, and the database is
// closed, so that nothing is lost.
func (s *System) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		for _, hs := range s.servers {
			if e := hs.Shutdown(ctx); e != nil && !errors.Is(e, context.Canceled) {
				hs.Close()
			}
		}
		if s.cancel != nil {
			s.cancel()
		}
		if s.sc != nil {
			s.sc.Close()
		}
		s.wg.Wait()
		if s.Phones != nil {
			s.Phones.Close()
		}
		for _, c := range s.closers {
			c()
		}
		if s.db != nil {
			err = s.db.Close()
		}
		s.unlock()
	})
	return err
}

// readOperatorFile reads the SIM batch's operator file.
func readOperatorFile(path string) ([]simbatch.Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("SIM batch: %w", err)
	}
	defer f.Close()
	recs, err := simbatch.Read(f)
	if err != nil {
		return nil, fmt.Errorf("SIM batch %s: %w", path, err)
	}
	return recs, nil
}

// certStatus is the desk's certificate status, asked of the CA in
// process.
func certStatus(ctx context.Context, c *ca.CA, serialHex string) (string, error) {
	n, ok := new(big.Int).SetString(serialHex, 16)
	if !ok {
		return "", fmt.Errorf("bad serial %q", serialHex)
	}
	st, _, reason, err := c.CertStatus(ctx, n)
	if err != nil {
		return "", err
	}
	switch {
	case st == ca.CertStatusGood:
		return "good", nil
	case st == ca.CertStatusRevoked && reason == ca.ReasonCertificateHold:
		return "on hold", nil
	case st == ca.CertStatusRevoked:
		return fmt.Sprintf("revoked (reason %d)", reason), nil
	}
	return "unknown", nil
}

func certPool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}
