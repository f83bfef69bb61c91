package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"mobileid/internal/ca"
	"mobileid/internal/idserver"
	"mobileid/internal/registration"
	"mobileid/internal/up"
)

// newUUID returns a random (version 4) UUID in lower case.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func runIDServerRPAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "idserver rp add", "",
		"Registers a relying party with the ID Server and prints its relyingPartyUUID, the shared secret it\n"+
			"sends with every request, once. Its name is what the user sees on the phone.")
	var f registrationFlags
	fs.StringVar(&f.dataDir, "data", "data", "data directory of the embedded database")
	fs.StringVar(&f.dsn, "dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	name := fs.String("name", "", "the relyingPartyName, shown on the phone")
	services := fs.String("services", "certificate,authentication,signature", "allowed services, comma-separated: certificate, authentication, signature, etsi")
	ips := fs.String("ips", "", "allowed client addresses, comma-separated CIDRs; empty means any")
	rate := fs.Float64("rate", 0, "requests per second; 0 means unlimited")
	apID := fs.String("ap-id", "", "the RP's AP_ID (a URI) in the ETSI pass-through; required with the etsi service, whose AP_PWD is the relyingPartyUUID")
	confirmation := fs.String("confirmation", "", `text sent to the phone after a success, e.g. "You logged in to {{.RP}}"`)
	clientID := fs.String("oidc-client-id", "", "also register the RP as this OpenID Connect client_id; its client secret is the relyingPartyUUID")
	redirects := fs.String("redirect-uris", "", "the OpenID Connect client's redirect URIs, comma-separated")
	ciba := fs.Bool("ciba", false, "allow the OpenID Connect client CIBA (poll mode), for channels without a browser")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *name == "" {
		return usagef("--name is required")
	}
	var client *idserver.OIDCClient
	if *clientID != "" {
		client = &idserver.OIDCClient{ID: *clientID, CIBA: *ciba}
		for _, u := range strings.Split(*redirects, ",") {
			if u = strings.TrimSpace(u); u != "" {
				client.RedirectURIs = append(client.RedirectURIs, u)
			}
		}
		if err := client.Check(); err != nil {
			return usagef("--oidc-client-id, --redirect-uris: %v", err)
		}
	} else if *redirects != "" || *ciba {
		return usagef("--redirect-uris and --ciba need --oidc-client-id")
	}
	rp := idserver.RP{Name: *name, RateLimit: *rate, Confirmation: *confirmation, APID: *apID}
	for _, s := range strings.Split(*services, ",") {
		if s = strings.TrimSpace(s); s != "" {
			rp.Services = append(rp.Services, idserver.Service(s))
		}
	}
	for _, c := range strings.Split(*ips, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return usagef("--ips: %v", err)
		}
		rp.AllowedIPs = append(rp.AllowedIPs, p)
	}
	if client != nil && !rp.Allows(idserver.ServiceAuthentication) {
		return usagef("an OpenID Connect client needs the authentication service")
	}
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	rps, err := idserver.NewRPs(db, time.Now)
	if err != nil {
		return err
	}
	uuid := newUUID()
	if client != nil {
		err = rps.AddWithOIDCClient(ctx, idserver.RPConfig{RP: rp, UUID: uuid}, *client)
	} else {
		err = rps.Add(ctx, idserver.RPConfig{RP: rp, UUID: uuid})
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "added relying party %q\nrelyingPartyUUID: %s\n(shown once; give it to the relying party over a secure channel)\n", *name, uuid)
	if rp.APID != "" {
		fmt.Fprintf(e.stdout, "ETSI AP_ID: %s (AP_PWD: the relyingPartyUUID)\n", rp.APID)
	}
	if client != nil {
		fmt.Fprintf(e.stdout, "OpenID Connect client_id: %s (client_secret: the relyingPartyUUID)\n", client.ID)
	}
	return nil
}

func runIDServer(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "idserver", "",
		"Runs the ID Server: the Mobile-ID REST API (/mid-api/, compatible with SK ID Solutions' MID REST v5)\n"+
			"for relying parties, and the ETSI TS 102 204 pass-through (/soap/services/, /rest/service/) for\n"+
			"those with the etsi service. It asks the Signature Server over ETSI TS 102 204 as an AP, reads the\n"+
			"Registration Server's directory from the shared database, and the certificates from the CA.")
	var f registrationFlags
	fs.StringVar(&f.dataDir, "data", "data", "data directory of the embedded database")
	fs.StringVar(&f.dsn, "dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	listen := fs.String("listen", "127.0.0.1:8085", "listen address of the MID REST API")
	var ms msspFlagsAP
	ms.register(fs)
	apID := fs.String("ap-id", "http://mobileid.dev/idserver", "AP_ID of the ID Server at the MSSP")
	caURL := fs.String("ca", "http://127.0.0.1:8083", "base URL of the CA's internal API")
	caRoots := fs.String("ca-roots", "data/ca/root.pem", "PEM file of the CA roots user certificates must chain to")
	caChain := fs.String("ca-chain", "data/ca/issuing.pem", "PEM file of the issuing CA certificates")
	issuerURL := fs.String("issuer", "", "OpenID Connect issuer URL, e.g. https://id.example.com; empty means no OpenID provider.\n"+
		"http is allowed for a loopback host only. Needs $MOBILEID_OIDC_KEK and $MOBILEID_OIDC_SUBJECT_KEY (hex)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	apPwd := os.Getenv("MOBILEID_AP_PASSWORD")
	if apPwd == "" {
		return usagef("no AP password: set $MOBILEID_AP_PASSWORD")
	}
	roots, err := up.ReadCertsFile(*caRoots)
	if err != nil {
		return usagef("--ca-roots: %v", err)
	}
	chain, err := up.ReadCertsFile(*caChain)
	if err != nil {
		return usagef("--ca-chain: %v", err)
	}
	// A synch MSS_Signature passed through waits for the user for up to
	// the MSSP's longest TimeOut, 600 s.
	mssp, err := ms.client(11 * time.Minute)
	if err != nil {
		return err
	}
	issuer := &ca.Client{BaseURL: strings.TrimSuffix(*caURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}

	logger := roleLogger(e, "idserver")
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	// Only the Registration Server's records are read here; it sends
	// nothing from this process.
	reg, err := registration.New(registration.Config{APID: "directory"}, db, nil, nil, nil, logger, logger, time.Now)
	if err != nil {
		return err
	}
	rps, err := idserver.NewRPs(db, time.Now)
	if err != nil {
		return err
	}
	srv, err := idserver.New(idserver.Config{
		APID: *apID, APPassword: apPwd, Roots: certPool(roots), Intermediates: certPool(chain),
	}, db, rps, &up.Directory{RS: reg, CA: issuer}, mssp, logger, time.Now)
	if err != nil {
		return err
	}
	var handler http.Handler = srv.Handler()
	if *issuerURL != "" {
		if handler, err = mountOIDC(ctx, srv, handler, *issuerURL); err != nil {
			return err
		}
	}
	handler = mountETSI(srv.ETSIHandler(), handler)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	hs := newHTTPServer(up.WithHealth(handler, up.NewRegistry(), up.Always), logger)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger.Info("ID Server up", "mid_api", "http://"+ln.Addr().String()+"/mid-api", "etsi", "http://"+ln.Addr().String()+idserver.ETSIPathSignature,
		"mssp", ms.url, "issuer", *issuerURL)
	err = runUntilDone(ctx, []*http.Server{hs}, cancel,
		func() error { return hs.Serve(ln) },
		func() error { return srv.Run(rctx) })
	if err != nil {
		return err
	}
	logger.Info("ID Server stopped")
	return nil
}

// mountETSI returns a handler that serves the ETSI pass-through on the
// MSSP's paths and everything else with rest.
func mountETSI(etsiAPI, rest http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/soap/services/", etsiAPI)
	mux.Handle("/rest/service/", etsiAPI)
	mux.Handle("/", rest)
	return mux
}

// mountOIDC returns a handler that serves the OpenID provider of srv
// under the issuer's path beside the MID REST API.
// oidcKEK reads the OpenID provider's key encryption key from
// $MOBILEID_OIDC_KEK.
func oidcKEK() ([32]byte, error) {
	var k [32]byte
	b, err := hex.DecodeString(os.Getenv("MOBILEID_OIDC_KEK"))
	if err != nil || len(b) != len(k) {
		return k, usagef("$MOBILEID_OIDC_KEK must be 64 hex digits (an AES-256 key)")
	}
	copy(k[:], b)
	return k, nil
}

func runIDServerRotateKey(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "idserver rotate-key", "",
		"Makes a new ID token signing key for the OpenID Connect provider, sealed under $MOBILEID_OIDC_KEK.\n"+
			"Every node signs with it from its next token on; the JWKS keeps the previous key.")
	var f registrationFlags
	fs.StringVar(&f.dataDir, "data", "data", "data directory of the embedded database")
	fs.StringVar(&f.dsn, "dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	kek, err := oidcKEK()
	if err != nil {
		return err
	}
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	id, err := idserver.RotateOIDCSigningKey(ctx, db, kek)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "new signing key %s\n", id)
	return nil
}

func mountOIDC(ctx context.Context, srv *idserver.Server, midAPI http.Handler, issuer string) (http.Handler, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, usagef("--issuer: %v", err)
	}
	host := u.Hostname()
	ip, _ := netip.ParseAddr(host)
	insecure := u.Scheme == "http" && (host == "localhost" || ip.IsLoopback())
	kek, err := oidcKEK()
	if err != nil {
		return nil, err
	}
	subj, err := hex.DecodeString(os.Getenv("MOBILEID_OIDC_SUBJECT_KEY"))
	if err != nil || len(subj) < 32 {
		return nil, usagef("$MOBILEID_OIDC_SUBJECT_KEY must be at least 64 hex digits")
	}
	cfg := idserver.OIDCConfig{Issuer: issuer, Insecure: insecure, SubjectKey: subj, KeyEncryptionKey: kek}
	o, err := idserver.NewOIDC(ctx, srv, cfg)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/mid-api/", midAPI)
	if p := strings.TrimSuffix(u.Path, "/"); p != "" {
		mux.Handle(p+"/", http.StripPrefix(p, o.Handler()))
		mux.Handle("/", midAPI) // its JSON 404
	} else {
		mux.Handle("/", o.Handler())
	}
	return mux, nil
}
