package registration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"mobileid/internal/ca"
	"mobileid/internal/etsi"
)

// Run advances every registration in progress until ctx is done: those
// started here and those a stopped process left half-way, which continue
// from their last recorded step.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.RetryPause)
	defer t.Stop()
	for {
		s.startPending(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-t.C:
		}
	}
}

// startPending starts a goroutine for each registering Mobile ID that
// none of this process's goroutines is advancing.
func (s *Server) startPending(ctx context.Context) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM registration_mobileid WHERE state = $1`, StateRegistering)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("cannot list registrations", "err", err)
		}
		return
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	for _, id := range ids {
		s.mu.Lock()
		busy := s.active[id]
		s.active[id] = true
		s.mu.Unlock()
		if busy {
			continue
		}
		go func() {
			defer func() {
				s.mu.Lock()
				delete(s.active, id)
				s.mu.Unlock()
			}()
			if err := s.advance(ctx, id); err != nil && ctx.Err() == nil {
				s.log.Warn("registration paused", "mobileid", id, "err", err)
			}
		}()
	}
}

// flow is a registering Mobile ID with what its steps need.
type flow struct {
	*MobileID
	attempt     int
	challenge   []byte
	keysTransID string
	keysMSSPID  string
	keys        []byte
	oldAuth     string
	oldSign     string
}

func (s *Server) loadFlow(ctx context.Context, id int64) (*flow, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	f := &flow{MobileID: m}
	err = s.db.QueryRowContext(ctx, `SELECT attempt, challenge, keys_trans_id, keys_mssp_id, keys_result, old_auth_serial, old_sign_serial
		FROM registration_mobileid WHERE id = $1`, id).
		Scan(&f.attempt, &f.challenge, &f.keysTransID, &f.keysMSSPID, &f.keys, &f.oldAuth, &f.oldSign)
	if err != nil {
		return nil, fmt.Errorf("registration: read flow %d: %w", id, err)
	}
	return f, nil
}

// transient is a failure that leaves the step to be tried again later:
// the MSSP or the CA could not be reached, or the SIM is busy.
type transient struct{ err error }

func (e *transient) Error() string { return e.err.Error() }
func (e *transient) Unwrap() error { return e.err }

// advance runs a registration's remaining steps. A step's outcome is
// recorded before the next begins, so that a restart continues where this
// run stopped and repeats nothing that has effects twice: the key
// generation is asked for by its AP_TransID, certificates already issued
// for the keys are found at the CA, binding is idempotent.
func (s *Server) advance(ctx context.Context, id int64) error {
	for {
		f, err := s.loadFlow(ctx, id)
		if err != nil {
			return err
		}
		if f.State != StateRegistering {
			return nil
		}
		var next string
		switch f.Step {
		case StepReset:
			err = s.stepReset(ctx, f)
			next = StepKeys
		case StepKeys:
			err = s.stepKeys(ctx, f)
			next = StepCertificates
		case StepCertificates:
			err = s.stepCertificates(ctx, f)
			next = StepBind
		case StepBind:
			err = s.stepBind(ctx, f)
			next = StepNotify
			if f.oldAuth != "" || f.oldSign != "" {
				next = StepSupersede
			}
		case StepSupersede:
			err = s.stepSupersede(ctx, f)
			next = StepNotify
		case StepNotify:
			s.stepNotify(ctx, f)
			next = StepDone
		default:
			return fmt.Errorf("registration: unknown step %q", f.Step)
		}
		var tr *transient
		switch {
		case errors.As(err, &tr):
			s.setStatus(ctx, f.ID, f.Step, "Waiting to retry: "+tr.Error())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(s.cfg.RetryPause):
			}
			continue
		case err != nil:
			s.fail(ctx, f, err)
			return nil
		}
		if err := s.moveOn(ctx, f, next); err != nil {
			return err
		}
	}
}

// stepKeys has the SIM generate the keys, or learns the outcome of the
// request an earlier run sent.
func (s *Server) stepKeys(ctx context.Context, f *flow) error {
	if f.keysTransID == "" {
		challenge := make([]byte, 32)
		rand.Read(challenge)
		f.attempt++
		f.keysTransID = fmt.Sprintf("RS%dK%d", f.ID, f.attempt)
		// Recorded before it is sent: after a restart the outcome is asked
		// for by this AP_TransID.
		if _, err := s.db.ExecContext(ctx, `UPDATE registration_mobileid SET attempt = $1, challenge = $2, keys_trans_id = $3, updated_at = $4 WHERE id = $5`,
			f.attempt, challenge, f.keysTransID, s.now().UnixMicro(), f.ID); err != nil {
			return &transient{fmt.Errorf("record the key request: %w", err)}
		}
		f.challenge = challenge
		return s.generateKeys(ctx, f)
	}
	// A run before this one sent the request (or meant to): ask for its
	// outcome.
	for {
		resp, err := s.mssp.Registration(ctx, &etsi.MSSRegistrationReq{
			MessageAbstract: s.abstract(newAPTransID("R")), MobileUser: etsi.MobileUser{MSISDN: f.MSISDN},
			Operation: &etsi.RegistrationOperation{Type: etsi.RegResult, APTransID: f.keysTransID},
		})
		var fault *etsi.Fault
		switch {
		case errors.As(err, &fault) && fault.Code == etsi.CodeWrongParam:
			// The MSSP never received it: send it now, under the same
			// AP_TransID, which it has not seen.
			return s.generateKeys(ctx, f)
		case err != nil:
			return s.mapFault(err)
		case resp.Status.StatusCode.Value == etsi.CodeOutstandingTransaction:
			s.setStatus(ctx, f.ID, StepKeys, "Waiting for the user to choose PIN1 and PIN2 on the phone.")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Second):
			}
			continue
		}
		return s.recordKeys(ctx, f, resp)
	}
}

func (s *Server) generateKeys(ctx context.Context, f *flow) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+30*time.Second)
	defer cancel()
	s.mu.Lock()
	alg := s.keyAlg
	s.mu.Unlock()
	req := &etsi.MSSRegistrationReq{
		MessageAbstract: s.abstract(f.keysTransID), MobileUser: etsi.MobileUser{MSISDN: f.MSISDN},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegGenerateKeys, Challenge: f.challenge, DisplayText: "Choose your Mobile ID PINs",
			AuthKeyAlg: alg, SignKeyAlg: alg},
	}
	resp, err := s.mssp.Registration(rctx, req)
	if err != nil {
		return s.mapFault(err)
	}
	return s.recordKeys(ctx, f, resp)
}

func (s *Server) recordKeys(ctx context.Context, f *flow, resp *etsi.MSSRegistrationResp) error {
	res := resp.Status.Registration
	if res == nil || len(res.Keys) != 2 || res.Attestation == nil || len(res.Attestation.Certificates) == 0 {
		return fmt.Errorf("the MSSP's answer has no keys (status %s)", resp.Status.StatusCode.Value)
	}
	if !bytes.Equal(res.Challenge, f.challenge) && len(res.Challenge) > 0 {
		return errors.New("the MSSP answered another key request")
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	f.keys, f.keysMSSPID, f.ICCID = b, resp.MSSPTransID, res.ICCID
	if _, err := s.db.ExecContext(ctx, `UPDATE registration_mobileid SET keys_result = $1, keys_mssp_id = $2, iccid = $3, updated_at = $4 WHERE id = $5`,
		b, resp.MSSPTransID, res.ICCID, s.now().UnixMicro(), f.ID); err != nil {
		return &transient{fmt.Errorf("record the keys: %w", err)}
	}
	return nil
}

// mapFault turns an MSSP answer into a message for the officer, or a
// transient error for what passes by itself.
func (s *Server) mapFault(err error) error {
	var f *etsi.Fault
	if !errors.As(err, &f) {
		return &transient{fmt.Errorf("the MSSP cannot be reached: %w", err)}
	}
	switch f.Code {
	case etsi.CodeUserCancel:
		return errors.New("The user cancelled the PIN choice on the phone.")
	case etsi.CodeExpiredTransaction:
		return errors.New("The phone did not answer in time: the user did not choose the PINs, or the phone was off.")
	case etsi.CodeOTAError:
		if f.DetailCode == 2093 {
			return errors.New("The phone is switched off or out of coverage.")
		}
		return errors.New("The SMS to the SIM could not be delivered.")
	case etsi.CodeRegistrationNOK:
		if f.DetailCode == 4073 {
			return errors.New("The SIM already has Mobile ID keys: reset the SIM, then register again.")
		}
		return fmt.Errorf("The SIM's keys could not be verified: %s", f.Detail)
	case etsi.CodeUnknownClient:
		return errors.New("The operator has no SIM with this number.")
	case etsi.CodePBSignatureProcess:
		return &transient{errors.New("the SIM is busy with another request")}
	case etsi.CodeUnauthorizedAccess:
		return fmt.Errorf("The MSSP refused the Registration Server's credentials: %s", f.Detail)
	}
	return fmt.Errorf("The MSSP answered %s: %s", f.Code, f.Detail)
}

// stepCertificates has the CA certify both keys. A certificate the CA
// already issued for a key — by a run that stopped before it recorded it —
// is found and used instead of a second one.
func (s *Server) stepCertificates(ctx context.Context, f *flow) error {
	res, err := keysOf(f.keys)
	if err != nil {
		return err
	}
	subject := ca.Subject{Country: f.Person.Country, GivenName: f.Person.GivenNames, Surname: f.Person.Surname, NationalID: f.Person.NationalID}
	att := &ca.Attestation{ICCID: res.ICCID, Signature: res.Attestation.Signature, Certificate: res.Attestation.Certificates[0]}
	for _, k := range res.Keys {
		if k.Ref == etsi.KeyUsageSigning {
			att.SignSPKI = k.SPKI
		} else {
			att.AuthSPKI = k.SPKI
		}
	}
	for _, k := range res.Keys {
		ref, profile := keyRef(k.Ref)
		column, have := "auth_serial", f.AuthSerial
		if profile == ca.ProfileSigning {
			column, have = "sign_serial", f.SignSerial
		}
		if have != "" {
			continue
		}
		serial, err := s.issued(ctx, subject, res.ICCID, profile, k.SPKI)
		if err != nil {
			return &transient{fmt.Errorf("the CA cannot be reached: %w", err)}
		}
		if serial == "" {
			cert, err := s.ca.Issue(ctx, &ca.IssueRequest{
				Profile: profile, Subject: subject, PublicKey: k.SPKI, Challenge: res.Challenge, KeyRef: ref,
				ProofOfPossession: k.PoP, Attestation: att,
			})
			var refusal *ca.RefusalError
			if errors.As(err, &refusal) {
				return fmt.Errorf("The CA refused the %s certificate: %s", profile, refusal.Reason)
			}
			if err != nil {
				return &transient{fmt.Errorf("the CA cannot be reached: %w", err)}
			}
			serial = serialHex(cert.Serial)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE registration_mobileid SET `+column+` = $1, updated_at = $2 WHERE id = $3`,
			serial, s.now().UnixMicro(), f.ID); err != nil {
			return &transient{fmt.Errorf("record the certificate: %w", err)}
		}
		if profile == ca.ProfileSigning {
			f.SignSerial = serial
		} else {
			f.AuthSerial = serial
		}
	}
	return nil
}

// issued returns the serial of a good certificate the CA issued for spki
// with this subject and SIM, or "".
func (s *Server) issued(ctx context.Context, subject ca.Subject, iccid string, profile ca.Profile, spki []byte) (string, error) {
	certs, err := s.ca.List(ctx, ca.ListFilter{Country: subject.Country, NationalID: subject.NationalID, ICCID: iccid, Profile: profile, Status: ca.StatusGood})
	if err != nil {
		return "", err
	}
	for _, c := range certs {
		x, err := x509.ParseCertificate(c.DER)
		if err == nil && bytes.Equal(x.RawSubjectPublicKeyInfo, spki) {
			return serialHex(c.Serial), nil
		}
	}
	return "", nil
}

// stepBind gives the MSSP the certificates.
func (s *Server) stepBind(ctx context.Context, f *flow) error {
	var bind []etsi.RegistrationCertificate
	for _, c := range []struct {
		serial string
		usage  etsi.KeyUsage
	}{{f.AuthSerial, etsi.KeyUsageAuthentication}, {f.SignSerial, etsi.KeyUsageSigning}} {
		n, ok := parseSerial(c.serial)
		if !ok {
			return fmt.Errorf("registration: bad serial %q", c.serial)
		}
		cert, err := s.ca.Get(ctx, n)
		if err != nil {
			return &transient{fmt.Errorf("the CA cannot be reached: %w", err)}
		}
		bind = append(bind, etsi.RegistrationCertificate{KeyUsage: c.usage, DER: cert.DER})
	}
	_, err := s.mssp.Registration(ctx, &etsi.MSSRegistrationReq{
		MessageAbstract: s.abstract(newAPTransID("B")), MobileUser: etsi.MobileUser{MSISDN: f.MSISDN},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegBindCertificates, Certificates: bind},
	})
	if err != nil {
		return s.mapFault(err)
	}
	return nil
}

// stepNotify tells the user, on the phone, that the Mobile ID works. A
// failure here does not undo the registration.
func (s *Server) stepNotify(ctx context.Context, f *flow) {
	_, err := s.mssp.Receipt(ctx, &etsi.MSSReceiptReq{
		MessageAbstract: s.abstract(newAPTransID("N")), MSSPTransID: f.keysMSSPID,
		MobileUser: etsi.MobileUser{MSISDN: f.MSISDN},
		Message:    &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: s.cfg.ReadyText},
	})
	if err != nil {
		s.log.Warn("cannot tell the user the Mobile ID is ready", "mobileid", f.ID, "err", err)
	}
}

// stepReset erases the SIM's keys and PINs before a renewal makes new
// ones. Erasing twice does no harm, so a restart simply asks again.
func (s *Server) stepReset(ctx context.Context, f *flow) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout+30*time.Second)
	defer cancel()
	_, err := s.mssp.Registration(rctx, &etsi.MSSRegistrationReq{
		MessageAbstract: s.abstract(newAPTransID("X")), MobileUser: etsi.MobileUser{MSISDN: f.MSISDN},
		Operation: &etsi.RegistrationOperation{Type: etsi.RegReset},
	})
	if err != nil {
		return s.mapFault(err)
	}
	return nil
}

// stepSupersede revokes the certificates a renewal replaced, now that the
// new ones work.
func (s *Server) stepSupersede(ctx context.Context, f *flow) error {
	for _, h := range []string{f.oldAuth, f.oldSign} {
		n, ok := parseSerial(h)
		if !ok {
			continue
		}
		err := s.ca.Revoke(ctx, n, ca.ReasonSuperseded, time.Time{})
		if err != nil && !errors.Is(err, ca.ErrAlreadyRevoked) {
			return &transient{fmt.Errorf("the CA cannot be reached: %w", err)}
		}
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE registration_mobileid SET old_auth_serial = '', old_sign_serial = '', updated_at = $1 WHERE id = $2`,
		s.now().UnixMicro(), f.ID); err != nil {
		return &transient{err}
	}
	return nil
}

var stepMessages = map[string]string{
	StepKeys:         "The SIM's old keys are erased. Waiting for the user to choose new PINs on the phone.",
	StepSupersede:    "The new certificates work. The old ones are being revoked.",
	StepCertificates: "The SIM made both keys. The CA is certifying them.",
	StepBind:         "Both certificates are issued. The Signature Server is learning of them.",
	StepNotify:       "The Mobile ID works. Telling the user.",
	StepDone:         "The Mobile ID is ready.",
}

// moveOn records that f's step is done and the next one begins.
func (s *Server) moveOn(ctx context.Context, f *flow, next string) error {
	now := s.now()
	state := StateRegistering
	if next == StepDone {
		state = StateActive
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE registration_mobileid SET step = $1, state = $2, status = $3, updated_at = $4 WHERE id = $5 AND state = $6`,
			next, state, stepMessages[next], now.UnixMicro(), f.ID, StateRegistering); err != nil {
			return err
		}
		return s.event(ctx, tx, f.ID, next, stepMessages[next], now)
	})
	if err != nil {
		return fmt.Errorf("registration: record step %s of %d: %w", next, f.ID, err)
	}
	s.changed()
	return nil
}

// fail ends a registration that cannot go on, with the reason for the
// officer. Its keys and certificates are left as they are: Retry continues
// from the failed step.
func (s *Server) fail(ctx context.Context, f *flow, cause error) {
	now := s.now()
	msg := cause.Error()
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		// A failed key step starts again with a new request.
		if _, err := tx.ExecContext(ctx, `UPDATE registration_mobileid SET state = $1, status = $2, updated_at = $3,
				keys_trans_id = CASE WHEN step = $4 THEN '' ELSE keys_trans_id END WHERE id = $5`,
			StateFailed, msg, now.UnixMicro(), StepKeys, f.ID); err != nil {
			return err
		}
		return s.event(ctx, tx, f.ID, "failed", msg, now)
	})
	if err != nil {
		s.log.Warn("cannot record a failed registration", "mobileid", f.ID, "err", err)
	}
	s.audit.Info("registration failed", "mobileid", f.ID, "step", f.Step, "reason", msg)
	s.changed()
}

// setStatus updates the message an officer sees while a step waits.
func (s *Server) setStatus(ctx context.Context, id int64, step, msg string) {
	s.db.ExecContext(ctx, `UPDATE registration_mobileid SET status = $1, updated_at = $2 WHERE id = $3 AND step = $4`, msg, s.now().UnixMicro(), id, step)
	s.changed()
}
