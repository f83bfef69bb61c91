package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"mobileid/internal/messaging"
	"mobileid/internal/store"
	"mobileid/internal/up"
)

func runMessaging(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "messaging", "",
		"Runs the Messaging Server on its own: an SMPP 3.4 ESME bound to one or more SMSCs, with its durable\n"+
			"outbox and inbox in the database. Until a Signature Server shares its database, MO messages and\n"+
			"delivery receipts are logged (never their content) and marked handled.")
	smscs := fs.String("smsc", "127.0.0.1:2775", "SMSC addresses, comma-separated; one bind each")
	systemID := fs.String("system-id", "mssp", "SMPP system_id")
	password := fs.String("password", "mssp-pw", "SMPP password; $MOBILEID_SMSC_PASSWORD overrides it")
	service := fs.String("service-number", "3725000", "our number: source of MT, destination of the SIMs' answers")
	dataDir := fs.String("data", "data", "data directory of the embedded database")
	dsn := fs.String("dsn", "", "database DSN (postgres://…); empty means SQLite in --data; $MOBILEID_DSN overrides it")
	metricsAddr := fs.String("metrics", "127.0.0.1:9102", "/metrics listen address; empty disables it")
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
	if d := os.Getenv("MOBILEID_DSN"); d != "" {
		*dsn = d
	}
	cfg := messaging.Config{ServiceNumber: *service}
	for _, a := range strings.Split(*smscs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Binds = append(cfg.Binds, messaging.Bind{Addr: a, SystemID: *systemID, Password: *password})
		}
	}
	if len(cfg.Binds) == 0 {
		return usagef("--smsc: want at least one address")
	}
	logger := roleLogger(e, "messaging")
	db, err := store.Open(ctx, store.Config{DSN: *dsn, DataDir: *dataDir})
	if err != nil {
		return err
	}
	defer db.Close()
	reg := up.NewRegistry()
	srv, err := messaging.New(cfg, db, logHandler{logger}, logger, reg, time.Now)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("listen for metrics: %w", err)
		}
		hs := newHTTPServer(up.WithHealth(http.NotFoundHandler(), reg, up.Always), logger)
		go hs.Serve(ln)
		defer hs.Close()
	}
	logger.Info("messaging up", "binds", len(cfg.Binds), "service_number", *service, "database", db.Dialect().String())
	if err := srv.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("messaging stopped")
	return nil
}

// logHandler is the Handler of a Messaging Server that runs alone: it
// records that something arrived, and nothing of what it said.
type logHandler struct{ logger *slog.Logger }

func (h logHandler) HandleMO(ctx context.Context, tx *sql.Tx, mo *messaging.MO) error {
	h.logger.Info("MO received", "id", mo.ID, "from", mo.From, "to", mo.To, "packet_octets", len(mo.Packet), "text_chars", len([]rune(mo.Text)))
	return nil
}

func (h logHandler) HandleReceipt(ctx context.Context, tx *sql.Tx, r *messaging.Receipt) error {
	h.logger.Info("receipt", "message", r.MessageID, "msisdn", r.MSISDN, "outcome", r.Outcome.String())
	return nil
}
