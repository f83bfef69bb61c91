package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"mobileid/internal/up"
)

// newHTTPServer returns a server for h with the limits every role uses
// (a client that is slow to send its headers cannot hold a connection),
// logging each request with its ID to logger.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{Handler: up.WithRequestLog(h, logger), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
}

// runUntilDone runs each fn (a server's Serve loop, a background job) in
// its own goroutine until ctx is done or one of them returns. Then it
// gives the HTTP servers five seconds to finish their requests, calls
// stop for whatever else must end, and returns the error that ended the
// run, unless it is the normal result of shutting down.
func runUntilDone(ctx context.Context, servers []*http.Server, stop func(), fns ...func() error) error {
	errc := make(chan error, len(fns))
	for _, fn := range fns {
		go func() { errc <- fn() }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(sctx)
	}
	if stop != nil {
		stop()
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// roleLogger returns a server role's logger: JSON lines on standard error,
// from level info, each with the role's name, for a log collector to read.
func roleLogger(e *env, role string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("role", role)
}
