package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"mobileid/internal/bank"
	"mobileid/internal/up"
)

func runBank(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "bank", "",
		"Runs the demo bank: an online bank that is an ordinary relying party of the ID Server. Customers log\n"+
			"in with Mobile ID over OpenID Connect and confirm payments with a Mobile ID signature over the MID REST\n"+
			"API. Register it first with `mobileid idserver rp add --name \"Demo Bank\" --oidc-client-id demo-bank\n"+
			"--redirect-uris <public-url>/callback` and give it the relyingPartyUUID in $MOBILEID_BANK_RP_UUID.")
	var f registrationFlags
	fs.StringVar(&f.dataDir, "data", "data/bank", "data directory of the bank's embedded database")
	fs.StringVar(&f.dsn, "dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	listen := fs.String("listen", "127.0.0.1:8086", "listen address of the bank's web site")
	publicURL := fs.String("public-url", "http://127.0.0.1:8086", "the bank's URL as browsers reach it; the redirect URI is this + /callback")
	issuer := fs.String("issuer", "http://127.0.0.1:8085", "OpenID Connect issuer URL of the ID Server")
	midAPI := fs.String("mid-api", "http://127.0.0.1:8085/mid-api", "base URL of the ID Server's MID REST API")
	clientID := fs.String("client-id", "demo-bank", "the bank's OpenID Connect client_id")
	rpName := fs.String("rp-name", "Demo Bank", "the bank's relyingPartyName at the ID Server")
	caRoots := fs.String("ca-roots", "data/ca/root.pem", "PEM file of the CA roots signing certificates must chain to; other certificates in it count as intermediates")
	caChain := fs.String("ca-chain", "data/ca/issuing.pem", "PEM file of the issuing CA certificates (the MID API sends only the signer's); empty for none")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	uuid := os.Getenv("MOBILEID_BANK_RP_UUID")
	if uuid == "" {
		return usagef("no relyingPartyUUID: set $MOBILEID_BANK_RP_UUID")
	}
	roots, inter, err := bankCAs(*caRoots, *caChain)
	if err != nil {
		return err
	}
	logger := roleLogger(e, "bank")
	db, err := f.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := bank.New(bank.Config{
		PublicURL: *publicURL, Issuer: *issuer, ClientID: *clientID, ClientSecret: uuid,
		MIDURL: *midAPI, RPName: *rpName, RPUUID: uuid, Roots: roots, Intermediates: inter,
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	}, db, logger, time.Now)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	hs := newHTTPServer(up.WithHealth(b.Handler(), up.NewRegistry(), up.Always), logger)
	logger.Info("bank up", "url", *publicURL, "listen", ln.Addr().String(), "issuer", *issuer, "mid_api", *midAPI)
	if err := runUntilDone(ctx, []*http.Server{hs}, nil, func() error { return hs.Serve(ln) }); err != nil {
		return err
	}
	logger.Info("bank stopped")
	return nil
}

// bankCAs reads the certificates the bank verifies signing certificates
// with: the self-signed ones of rootsFile are roots, the others and those
// of chainFile (if named) intermediates.
func bankCAs(rootsFile, chainFile string) (roots, inter *x509.CertPool, err error) {
	certs, err := up.ReadCertsFile(rootsFile)
	if err != nil {
		return nil, nil, usagef("--ca-roots: %v", err)
	}
	roots, inter = x509.NewCertPool(), x509.NewCertPool()
	n := 0
	for _, c := range certs {
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			roots.AddCert(c)
			n++
		} else {
			inter.AddCert(c)
		}
	}
	if n == 0 {
		return nil, nil, usagef("--ca-roots: %s holds no self-signed certificate", rootsFile)
	}
	if strings.TrimSpace(chainFile) != "" {
		chain, err := up.ReadCertsFile(chainFile)
		if err != nil {
			return nil, nil, usagef("--ca-chain: %v", err)
		}
		for _, c := range chain {
			inter.AddCert(c)
		}
	}
	return roots, inter, nil
}
