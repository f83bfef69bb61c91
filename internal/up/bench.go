package up

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"mobileid/internal/mssp"
)

// AddAP registers an application provider with the running system's MSSP,
// without a client certificate and allowed every profile, or gives an AP
// already registered under id this name and password. It is for clients in
// the same process, such as a load generator acting as a bank.
func (s *System) AddAP(ctx context.Context, id, name, password string) error {
	// The registry is the database's: the MSSP's own instance reads the
	// new row at its first request from the AP.
	aps, err := mssp.NewAPs(s.db, time.Now, 0)
	if err != nil {
		return fmt.Errorf("add AP %s: %w", id, err)
	}
	cfg := mssp.APConfig{AP: mssp.AP{ID: id, Name: name}, Password: password}
	if _, err := aps.Get(ctx, id); errors.Is(err, mssp.ErrUnknownAP) {
		err = aps.Add(ctx, cfg)
	} else if err == nil {
		err = aps.Update(ctx, cfg)
	}
	if err != nil {
		return fmt.Errorf("add AP %s: %w", id, err)
	}
	return nil
}

// MSSPCertFile returns the path of the MSSP's self-signed TLS certificate
// (PEM), which clients of the MSSP trust.
func (s *System) MSSPCertFile() string { return filepath.Join(s.cfg.DataDir, "mssp-tls.crt") }
