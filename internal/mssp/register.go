package mssp

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/vmac"
)

// Registration operations, carried in MSS_RegistrationReq.
const (
	// OpGenerateKeys asks the SIM to let the user choose PIN1 and PIN2
	// and to generate both key pairs; the result has the public keys,
	// their proofs of possession and the card's attestation.
	OpGenerateKeys = "GenerateKeys"
	// OpBindCertificates gives the MSSP the certificates the CA issued
	// for the keys; the user can sign once both are bound.
	OpBindCertificates = "BindCertificates"
	// OpReset erases the keys and PINs on the SIM (before registering
	// again, e.g. after the PUK was blocked) and the MSSP's record.
	OpReset = "Reset"
	// OpInfo reads the card's state and PIN counters.
	OpInfo = "Info"
)

// RegistrationProfile is the pseudo-profile an AP must be allowed (or
// allowed every profile) to use MSS_Registration: in practice only the
// Registration Server.
const RegistrationProfile = "mss:mobileid.dev:registration"

// RegistrationRequest is a checked MSS_Registration request.
type RegistrationRequest struct {
	AP           *AP
	APTransID    string
	Instant      time.Time
	MSISDN       string
	Mode         etsi.MessagingMode
	APURL        string
	Operation    string
	Challenge    []byte
	AuthAlg      vmac.KeyAlg
	SignAlg      vmac.KeyAlg
	DisplayText  string
	Certificates []*x509.Certificate
	TimeOut      time.Duration
}

// RegisteredKey is a key the SIM generated.
type RegisteredKey struct {
	Alg  vmac.KeyAlg `json:"alg"`
	SPKI []byte      `json:"spki"`
	PoP  []byte      `json:"pop"`
}

// RegistrationOutcome is the result of a registration operation.
type RegistrationOutcome struct {
	Operation            string         `json:"operation"`
	ICCID                string         `json:"iccid,omitempty"`
	Challenge            []byte         `json:"challenge,omitempty"`
	AuthKey              *RegisteredKey `json:"auth_key,omitempty"`
	SignKey              *RegisteredKey `json:"sign_key,omitempty"`
	AttestationSignature []byte         `json:"attestation_signature,omitempty"`
	AttestationCert      []byte         `json:"attestation_cert,omitempty"`
	State                string         `json:"state,omitempty"`
	PIN1TriesLeft        int            `json:"pin1_tries_left,omitempty"`
	PIN2TriesLeft        int            `json:"pin2_tries_left,omitempty"`
	PUKTriesLeft         int            `json:"puk_tries_left,omitempty"`
}

// Register runs a registration operation for the Registration Server.
// GenerateKeys, Reset and Info talk to the SIM and hold it like a
// signature; BindCertificates ends at once.
func (e *Engine) Register(ctx context.Context, aps *APs, rr *RegistrationRequest) (*Transaction, error) {
	if !rr.AP.AllowsProfile(RegistrationProfile) {
		return nil, faultDetail(etsi.CodeUnauthorizedAccess, 1044, "the AP may not register users")
	}
	if rr.TimeOut <= 0 {
		rr.TimeOut = e.cfg.Limits.DefaultTimeOut
	}
	mode := rr.Mode
	if mode == "" {
		mode = etsi.Synch
	}
	s := &start{
		ap: rr.AP, apTransID: rr.APTransID, instant: rr.Instant, kind: kindRegister, msisdn: rr.MSISDN,
		mode: mode, apURL: rr.APURL, timeout: rr.TimeOut, exclusive: true, wait: true,
		req: &txRequest{Operation: rr.Operation, Profile: RegistrationProfile},
	}
	switch rr.Operation {
	case OpGenerateKeys:
		if n := len(rr.Challenge); n < 16 || n > 32 {
			return nil, faultDetail(etsi.CodeWrongParam, 0, "the challenge must be 16 to 32 bytes, not %d", n)
		}
		if rr.AuthAlg == 0 {
			rr.AuthAlg = vmac.AlgECDSAP256
		}
		if rr.SignAlg == 0 {
			rr.SignAlg = vmac.AlgECDSAP256
		}
		s.req.Challenge = rr.Challenge
		s.command = &vmac.Register{AuthAlg: rr.AuthAlg, SignAlg: rr.SignAlg, Challenge: rr.Challenge, DisplayText: rr.DisplayText}
	case OpReset:
		s.command = &vmac.Reset{Scope: vmac.ResetKeysAndPINs}
	case OpInfo:
		s.command = &vmac.Info{}
	case OpBindCertificates:
		if len(rr.Certificates) == 0 {
			return nil, faultDetail(etsi.CodeMissingParam, 0, "no certificates to bind")
		}
		s.exclusive = false
		_, err := e.users.BindCertificates(ctx, rr.MSISDN, rr.Certificates)
		switch {
		case errors.Is(err, ErrUnknownUser):
			return nil, faultDetail(etsi.CodeUnknownClient, 1053, "%s has no registered keys", rr.MSISDN)
		case errors.Is(err, ErrCertificateMismatch):
			return nil, faultDetail(etsi.CodeRegistrationNOK, DetailRegServer, "%v", err)
		case err != nil:
			return nil, err
		}
		s.final = &finalState{state: StateValidated, code: etsi.CodeRequestOK, msg: "certificates bound",
			result: &txResult{Registration: &RegistrationOutcome{Operation: OpBindCertificates}}}
	default:
		return nil, faultDetail(etsi.CodeWrongParam, 0, "unknown registration operation %q", rr.Operation)
	}
	if s.command != nil {
		if sim, err := e.sims.ByMSISDN(ctx, rr.MSISDN); err != nil || sim == nil {
			return nil, faultDetail(etsi.CodeUnknownClient, 1052, "no SIM with MSISDN %s", rr.MSISDN)
		}
	}
	return e.begin(ctx, aps, s)
}

// checkRegistration verifies a REGISTER answer: the proofs of
// possession, the attestation chaining to a trusted SIM vendor and the
// ICCID of the SIM the MSSP addressed. save records the keys.
func (e *Engine) checkRegistration(ctx context.Context, r *row, resp *vmac.RegisterResponse) (*finalState, func(tx *sql.Tx) error) {
	if e.cfg.VendorRoots == nil {
		return failed(etsi.CodeRegistrationNOK, DetailRegServer, "no trusted SIM vendor is configured"), nil
	}
	if err := vmac.VerifyRegistration(resp, r.req.Challenge, e.cfg.VendorRoots, e.now()); err != nil {
		return failed(etsi.CodeRegistrationNOK, DetailRegSIM, "the SIM's registration does not verify: %v", err), nil
	}
	sim, err := e.sims.ByMSISDN(ctx, r.MSISDN)
	if err != nil || sim == nil || sim.ICCID != resp.ICCID {
		return failed(etsi.CodeRegistrationNOK, DetailRegSIM, "the answering card is not the SIM registered for %s", r.MSISDN), nil
	}
	out := &RegistrationOutcome{
		Operation: OpGenerateKeys, ICCID: resp.ICCID, Challenge: r.req.Challenge,
		AuthKey:              &RegisteredKey{Alg: resp.AuthKey.Alg, SPKI: resp.AuthKey.SPKI, PoP: resp.AuthKey.PoP},
		SignKey:              &RegisteredKey{Alg: resp.SignKey.Alg, SPKI: resp.SignKey.SPKI, PoP: resp.SignKey.PoP},
		AttestationSignature: resp.AttestationSignature, AttestationCert: resp.AttestationCert,
	}
	save := func(tx *sql.Tx) error {
		return e.users.saveKeys(ctx, tx, r.MSISDN, resp.ICCID, resp.AuthKey, resp.SignKey)
	}
	return &finalState{state: StateValidated, code: etsi.CodeRequestOK, msg: "keys generated", result: &txResult{Registration: out}}, save
}

// infoOutcome reports an INFO answer.
func infoOutcome(vr vmac.Response) *RegistrationOutcome {
	info, ok := vr.(*vmac.InfoResponse)
	if !ok {
		return &RegistrationOutcome{Operation: OpInfo}
	}
	return &RegistrationOutcome{
		Operation: OpInfo, ICCID: info.ICCID, State: info.State.String(),
		PIN1TriesLeft: int(info.PIN1TriesLeft), PIN2TriesLeft: int(info.PIN2TriesLeft), PUKTriesLeft: int(info.PUKTriesLeft),
	}
}
