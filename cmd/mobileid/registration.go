package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"

	"mobileid/internal/ca"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/registration"
	"mobileid/internal/store"
	"mobileid/internal/up"
)

// registrationFlags are the flags the registration commands share.
type registrationFlags struct {
	dataDir, dsn string
}

func (f *registrationFlags) openDB(ctx context.Context) (*store.DB, error) {
	if d := os.Getenv("MOBILEID_DSN"); d != "" {
		f.dsn = d
	}
	return store.Open(ctx, store.Config{DSN: f.dsn, DataDir: f.dataDir})
}

func runRegistrationOfficerAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "registration officer add", "USERNAME",
		"Adds a registration officer who may log in to the desk and the JSON API. The password comes from\n"+
			"$MOBILEID_OFFICER_PASSWORD (10 to 72 characters), never from the command line.")
	var f registrationFlags
	fs.StringVar(&f.dataDir, "data", "data", "data directory of the embedded database")
	fs.StringVar(&f.dsn, "dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	name := fs.String("name", "", "the officer's full name")
	desk := fs.String("desk", "", "the registration desk, e.g. \"Tallinn 1\"")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one username")
	}
	pw := os.Getenv("MOBILEID_OFFICER_PASSWORD")
	if pw == "" {
		return usagef("no password: set $MOBILEID_OFFICER_PASSWORD")
	}
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	logger := slog.New(slog.DiscardHandler)
	srv, err := registration.New(registration.Config{APID: "unused"}, db, nil, nil, nil, logger, logger, time.Now)
	if err != nil {
		return err
	}
	if err := srv.AddOfficer(ctx, pos[0], *name, *desk, pw); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "added officer %s (%s, %s)\n", pos[0], *name, *desk)
	return nil
}

func runRegistration(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "registration", "",
		"Runs the Registration Server: the registration desk (/desk/) and its JSON API (/api/v1/). It reaches the\n"+
			"Signature Server over ETSI TS 102 204 as an AP and the CA over its internal API.")
	var f registrationFlags
	fs.StringVar(&f.dataDir, "data", "data", "data directory of the embedded database")
	fs.StringVar(&f.dsn, "dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	listen := fs.String("listen", "127.0.0.1:8084", "listen address of the desk and the API")
	var ms msspFlagsAP
	ms.register(fs)
	apID := fs.String("ap-id", "http://mobileid.dev/registration", "AP_ID of the Registration Server at the MSSP")
	caURL := fs.String("ca", "http://127.0.0.1:8083", "base URL of the CA's internal API")
	caChain := fs.String("ca-chain", "data/ca/issuing.pem", "PEM file of the issuing CA, to ask its OCSP responder about certificates shown at the desk; empty disables it")
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
	mssp, err := ms.client(10 * time.Minute)
	if err != nil {
		return err
	}
	issuer := &ca.Client{BaseURL: strings.TrimSuffix(*caURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}

	logger := roleLogger(e, "registration")
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	srv, err := registration.New(registration.Config{APID: *apID, APPassword: apPwd}, db, mssp, issuer, nil, logger, logger.With("log", "audit"), time.Now)
	if err != nil {
		return err
	}
	if *caChain != "" {
		chain, err := up.ReadCertsFile(*caChain)
		if err != nil {
			return usagef("--ca-chain: %v", err)
		}
		srv.CertStatus = ocspStatus(issuer, chain[0], &http.Client{Timeout: 5 * time.Second})
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", srv.APIHandler())
	mux.Handle("/desk/", http.StripPrefix("/desk", srv.DeskHandler()))
	mux.Handle("GET /{$}", http.RedirectHandler("/desk/", http.StatusFound))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	hs := newHTTPServer(up.WithHealth(mux, up.NewRegistry(), up.Always), logger)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger.Info("registration up", "desk", "http://"+ln.Addr().String()+"/desk/", "mssp", ms.url, "ca", *caURL)
	err = runUntilDone(ctx, []*http.Server{hs}, cancel,
		func() error { return hs.Serve(ln) },
		func() error { return srv.Run(rctx) })
	if err != nil {
		return err
	}
	logger.Info("registration stopped")
	return nil
}

// ocspStatus returns the desk's certificate status function: it fetches
// the certificate from the CA and asks the OCSP responder named in it, as
// a relying party would, and reports "good", "revoked" (with the reason)
// or "unknown".
func ocspStatus(issuer ca.Issuer, issuing *x509.Certificate, client *http.Client) func(ctx context.Context, serialHex string) (string, error) {
	return func(ctx context.Context, serialHex string) (string, error) {
		n, ok := new(big.Int).SetString(serialHex, 16)
		if !ok {
			return "", fmt.Errorf("bad serial %q", serialHex)
		}
		c, err := issuer.Get(ctx, n)
		if err != nil {
			return "", err
		}
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			return "", err
		}
		if len(cert.OCSPServer) == 0 {
			return "", errors.New("the certificate names no OCSP responder")
		}
		req, err := ocsp.CreateRequest(cert, issuing, nil)
		if err != nil {
			return "", err
		}
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, cert.OCSPServer[0], bytes.NewReader(req))
		if err != nil {
			return "", err
		}
		hreq.Header.Set("Content-Type", "application/ocsp-request")
		resp, err := client.Do(hreq)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		der, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return "", err
		}
		r, err := ocsp.ParseResponseForCert(der, cert, issuing)
		if err != nil {
			return "", err
		}
		switch r.Status {
		case ocsp.Good:
			return "good (OCSP)", nil
		case ocsp.Revoked:
			if r.RevocationReason == ocsp.CertificateHold {
				return "on hold (OCSP)", nil
			}
			return fmt.Sprintf("revoked (OCSP, reason %d)", r.RevocationReason), nil
		}
		return "unknown (OCSP)", nil
	}
}

// msspFlagsAP are the flags of a role that is an AP of the MSSP: where the
// MSSP is and how to reach it over (mutual) TLS.
type msspFlagsAP struct {
	url, caFile, certFile, keyFile string
}

func (f *msspFlagsAP) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "mssp", "https://127.0.0.1:8443", "base URL of the Signature Server")
	fs.StringVar(&f.caFile, "mssp-ca", "data/mssp-tls.crt", "PEM file of the CA (or the self-signed certificate) of the MSSP's TLS certificate")
	fs.StringVar(&f.certFile, "client-cert", "", "PEM client certificate for mutual TLS with the MSSP")
	fs.StringVar(&f.keyFile, "client-key", "", "PEM key of --client-cert")
}

// client returns the ETSI TS 102 204 client the flags describe, with
// timeout for each exchange.
func (f *msspFlagsAP) client(timeout time.Duration) (*etsiclient.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.caFile != "" {
		certs, err := up.ReadCertsFile(f.caFile)
		if err != nil {
			return nil, usagef("--mssp-ca: %v", err)
		}
		tlsCfg.RootCAs = certPool(certs)
	}
	if f.certFile != "" {
		c, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, usagef("--client-cert: %v", err)
		}
		tlsCfg.Certificates = []tls.Certificate{c}
	}
	// Many idle connections: every request goes to the one MSSP, and
	// with Go's default of two a busy AP opens a new TLS connection for
	// most of them.
	return &etsiclient.Client{BaseURL: strings.TrimSuffix(f.url, "/"),
		HTTP: &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, MaxIdleConnsPerHost: 256}, Timeout: timeout}}, nil
}
