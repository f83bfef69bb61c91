package registration

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"mobileid/internal/ca"
	"mobileid/internal/etsi"
	"mobileid/internal/store"
)

// Revocation reasons an officer chooses, with the RFC 5280 reason the CA
// records.
var RevocationReasons = map[string]int{
	"lost":    ca.ReasonKeyCompromise, // someone else may hold the phone
	"stolen":  ca.ReasonKeyCompromise,
	"death":   ca.ReasonCessationOfOperation,
	"request": ca.ReasonCessationOfOperation, // the person no longer wants it
}

// transition changes a Mobile ID's state under the officer's name, after
// act (the CA's part) succeeded. from lists the states it applies to.
func (s *Server) transition(ctx context.Context, o Officer, id int64, action, to, msg string, from []string, act func(m *MobileID) error) (*MobileID, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ok := false
	for _, st := range from {
		ok = ok || m.State == st
	}
	if !ok {
		return nil, fmt.Errorf("%w: cannot %s a Mobile ID that is %s", ErrState, action, m.State)
	}
	if act != nil {
		if err := act(m); err != nil {
			return nil, err
		}
	}
	now := s.now()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE registration_mobileid SET state = $1, status = $2, updated_at = $3 WHERE id = $4 AND state = $5`,
			to, msg, now.UnixMicro(), id, m.State)
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("%w: the number has another Mobile ID in use", ErrState)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: the Mobile ID changed meanwhile", ErrState)
		}
		if err := s.event(ctx, tx, id, action, msg, now); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, o, action, id, msg, now)
	})
	if err != nil {
		return nil, err
	}
	s.changed()
	return s.Get(ctx, id)
}

// certificates calls f for each certificate serial of m.
func certificates(m *MobileID, f func(serial *big.Int) error) error {
	for _, h := range []string{m.AuthSerial, m.SignSerial} {
		if h == "" {
			continue
		}
		n, ok := parseSerial(h)
		if !ok {
			return fmt.Errorf("registration: bad serial %q", h)
		}
		if err := f(n); err != nil {
			return err
		}
	}
	return nil
}

// Suspend puts both certificates on hold: signatures fail (501) until
// Resume.
func (s *Server) Suspend(ctx context.Context, o Officer, id int64, why string) (*MobileID, error) {
	return s.transition(ctx, o, id, "suspend", StateSuspended, "Suspended: "+why, []string{StateActive}, func(m *MobileID) error {
		return certificates(m, func(n *big.Int) error {
			err := s.ca.Revoke(ctx, n, ca.ReasonCertificateHold, time.Time{})
			if errors.Is(err, ca.ErrAlreadyOnHold) {
				return nil
			}
			return err
		})
	})
}

// Resume releases the holds of a suspended Mobile ID.
func (s *Server) Resume(ctx context.Context, o Officer, id int64) (*MobileID, error) {
	return s.transition(ctx, o, id, "resume", StateActive, "Resumed.", []string{StateSuspended}, func(m *MobileID) error {
		return certificates(m, func(n *big.Int) error { return s.ca.Release(ctx, n) })
	})
}

// Revoke revokes both certificates for reason (a key of
// RevocationReasons) and takes the Mobile ID out of the directory. It
// cannot be undone.
func (s *Server) Revoke(ctx context.Context, o Officer, id int64, reason string) (*MobileID, error) {
	code, ok := RevocationReasons[reason]
	if !ok {
		return nil, fmt.Errorf("registration: unknown revocation reason %q", reason)
	}
	return s.transition(ctx, o, id, "revoke", StateRevoked, "Revoked: "+reason+".", []string{StateActive, StateSuspended}, func(m *MobileID) error {
		return certificates(m, func(n *big.Int) error {
			err := s.ca.Revoke(ctx, n, code, time.Time{})
			if errors.Is(err, ca.ErrAlreadyRevoked) {
				// A hold is turned into the final revocation by Revoke;
				// only a certificate revoked already gets here.
				return nil
			}
			return err
		})
	})
}

// Retry continues a failed registration from the step that failed; a
// failed key generation asks the user again.
func (s *Server) Retry(ctx context.Context, o Officer, id int64) (*MobileID, error) {
	m, err := s.transition(ctx, o, id, "retry", StateRegistering, "Retrying.", []string{StateFailed}, nil)
	if err == nil {
		s.kick()
	}
	return m, err
}

// ResetSIM erases the Mobile ID keys and PINs on the SIM of a failed or
// revoked Mobile ID, through the MSSP, so that the number can be
// registered again: after a PUK block, or when the SIM still has keys of
// an earlier registration.
func (s *Server) ResetSIM(ctx context.Context, o Officer, id int64) (*MobileID, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.State != StateFailed && m.State != StateRevoked {
		return nil, fmt.Errorf("%w: revoke the Mobile ID before resetting its SIM", ErrState)
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+30*time.Second)
	defer cancel()
	_, err = s.mssp.Registration(rctx, &etsi.MSSRegistrationReq{
		MessageAbstract: s.abstract(newAPTransID("X")), MobileUser: etsi.MobileUser{MSISDN: m.MSISDN},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegReset},
	})
	if err != nil {
		return nil, s.mapFault(err)
	}
	now := s.now()
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		// A failed registration starts its keys again; its earlier
		// keys are gone.
		if _, err := tx.ExecContext(ctx, `UPDATE registration_mobileid SET step = CASE WHEN state = $1 THEN $2 ELSE step END,
				keys_trans_id = '', keys_result = NULL, auth_serial = '', sign_serial = '', updated_at = $3 WHERE id = $4`,
			StateFailed, StepKeys, now.UnixMicro(), id); err != nil {
			return err
		}
		if err := s.event(ctx, tx, id, "reset", "The SIM's Mobile ID keys and PINs were erased.", now); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, o, "reset-sim", id, m.MSISDN, now)
	})
	if err != nil {
		return nil, err
	}
	s.changed()
	return s.Get(ctx, id)
}

// Renew gives an active Mobile ID new keys on the same SIM and new
// certificates: the SIM's keys and PINs are erased, the user chooses new
// PINs, the CA certifies the new keys, and only once the MSSP has them are
// the old certificates revoked (superseded). Until the new keys exist the
// old certificates stay valid, but the SIM no longer has their keys.
func (s *Server) Renew(ctx context.Context, o Officer, id int64) (*MobileID, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.State != StateActive {
		return nil, fmt.Errorf("%w: only an active Mobile ID is renewed", ErrState)
	}
	now := s.now()
	msg := "Renewing: erasing the SIM's keys."
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE registration_mobileid SET state = $1, step = $2, status = $3,
				old_auth_serial = auth_serial, old_sign_serial = sign_serial, auth_serial = '', sign_serial = '',
				keys_trans_id = '', keys_result = NULL, updated_at = $4
			WHERE id = $5 AND state = $6`,
			StateRegistering, StepReset, msg, now.UnixMicro(), id, StateActive)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: the Mobile ID changed meanwhile", ErrState)
		}
		if err := s.event(ctx, tx, id, "renew", msg, now); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, o, "renew", id, m.MSISDN, now)
	})
	if err != nil {
		return nil, err
	}
	s.changed()
	s.kick()
	return s.Get(ctx, id)
}

// PINGuidance is what an officer tells a user whose PIN is blocked.
const PINGuidance = "A blocked PIN1 or PIN2 is unblocked on the phone with the PUK from the PIN letter that came with the SIM. " +
	"If the PUK is blocked too, the SIM's keys are unusable: revoke the Mobile ID, reset the SIM and register again."

// SwapSIM moves an active or suspended Mobile ID to a new SIM for the same
// number, which the operator issued because the person's card was lost or
// broken or changes format. The operator's own swap, at the MSSP and in
// the network, comes first: the registration that follows reaches the SIM
// the MSSP knows for the number.
//
// Both certificates are revoked at once, as key compromise when lost is
// true (the old card may be in someone else's hands) and as superseded
// otherwise; unlike a renewal, nothing waits for the new keys, which the
// old certificates do not certify. The Mobile ID then registers again from
// the key step: the new SIM makes keys as the user chooses PINs, its ICCID
// is recorded, the CA certifies the keys, the MSSP learns of the
// certificates and the phone is told.
func (s *Server) SwapSIM(ctx context.Context, o Officer, id int64, lost bool) (*MobileID, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.State != StateActive && m.State != StateSuspended {
		return nil, fmt.Errorf("%w: cannot swap the SIM of a Mobile ID that is %s", ErrState, m.State)
	}
	reason, why := ca.ReasonSuperseded, "replaced"
	if lost {
		reason, why = ca.ReasonKeyCompromise, "lost"
	}
	err = certificates(m, func(n *big.Int) error {
		err := s.ca.Revoke(ctx, n, reason, time.Time{})
		if errors.Is(err, ca.ErrAlreadyRevoked) {
			// A hold becomes the revocation; only a certificate revoked
			// already, by an earlier attempt, gets here.
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("registration: revoke the certificates of the old SIM: %w", err)
	}
	now := s.now()
	msg := fmt.Sprintf("New SIM: the old one (%s) was %s and its certificates are revoked. Waiting for the user to choose PIN1 and PIN2 on the phone.",
		cmp.Or(m.ICCID, "unknown"), why)
	err = s.db.InTx(ctx, func(tx *sql.Tx) error {
		// The old card's ICCID, keys and certificates go: the flow
		// records the new card's as it makes them.
		res, err := tx.ExecContext(ctx, `UPDATE registration_mobileid SET state = $1, step = $2, status = $3, iccid = '',
				keys_trans_id = '', keys_mssp_id = '', keys_result = NULL, auth_serial = '', sign_serial = '',
				old_auth_serial = '', old_sign_serial = '', updated_at = $4
			WHERE id = $5 AND state = $6`,
			StateRegistering, StepKeys, msg, now.UnixMicro(), id, m.State)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: the Mobile ID changed meanwhile", ErrState)
		}
		if err := s.event(ctx, tx, id, "swap-sim", msg, now); err != nil {
			return err
		}
		return s.auditTx(ctx, tx, o, "swap-sim", id, fmt.Sprintf("%s old SIM %s %s", m.MSISDN, cmp.Or(m.ICCID, "unknown"), why), now)
	})
	if err != nil {
		return nil, err
	}
	s.changed()
	s.kick()
	return s.Get(ctx, id)
}
