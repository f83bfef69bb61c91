package mssp

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/vmac"
)

// faultDetail returns a fault with a FiCom detail code (0 for none).
func faultDetail(code etsi.Code, detail int, format string, args ...any) *etsi.Fault {
	f := etsi.NewFault(code, format, args...)
	setDetailCode(f, detail)
	return f
}

// setDetailCode sets f's FiCom detail code.
func setDetailCode(f *etsi.Fault, detail int) { f.DetailCode = detail }

// vmacHash returns the VMAC code of h.
func vmacHash(h crypto.Hash) (vmac.HashAlg, bool) {
	switch h {
	case crypto.SHA256:
		return vmac.HashSHA256, true
	case crypto.SHA384:
		return vmac.HashSHA384, true
	case crypto.SHA512:
		return vmac.HashSHA512, true
	}
	return 0, false
}

// SignRequest is a checked MSS_Signature request with its AP.
type SignRequest struct {
	AP        *AP
	APTransID string
	Instant   time.Time
	Req       *signRequest
}

// Sign starts an MSS_Signature transaction: it finds the user's key for
// the profile, makes the digest the SIM signs for the requested format,
// and sends the SIGN command. It returns the stored transaction or an
// *etsi.Fault; after a fault nothing is stored and nothing sent.
func (e *Engine) Sign(ctx context.Context, aps *APs, sr *SignRequest) (*Transaction, error) {
	req, ap := sr.Req, sr.AP
	if !ap.AllowsProfile(req.Profile.URI) {
		return nil, faultDetail(etsi.CodeUnauthorizedAccess, 1045, "the AP may not use profile %s", req.Profile.URI)
	}
	if req.Timestamp && e.cfg.Timestamper == nil {
		return nil, faultDetail(etsi.CodeWrongParam, 1014, "the timestamp service is not offered")
	}
	s := &start{
		ap: ap, apTransID: sr.APTransID, instant: sr.Instant, kind: kindSign, msisdn: req.MSISDN,
		mode: req.Mode, apURL: req.APURL, timeout: req.TimeOut, exclusive: true, wait: req.Mode == etsi.Synch,
		req: &txRequest{
			Profile: req.Profile.URI, Key: req.Profile.Key, Format: req.Format, FormatURI: req.FormatURI,
			Text: req.Text, Digest: req.Digest, Hash: req.Hash, Validate: req.Validate, Timestamp: req.Timestamp,
			SigningTime: e.now().UTC().Truncate(time.Second),
		},
	}
	if code, ok := TestNumberStatus(req.MSISDN); ok {
		return e.testTransaction(ctx, aps, s, code)
	}
	u, err := e.users.Get(ctx, req.MSISDN)
	if errors.Is(err, ErrUnknownUser) {
		if sim, err := e.sims.ByMSISDN(ctx, req.MSISDN); err == nil && sim != nil {
			return nil, faultDetail(etsi.CodeUnknownClient, 1053, "%s has no Mobile ID registered", req.MSISDN)
		}
		return nil, faultDetail(etsi.CodeUnknownClient, 1052, "%s is not a Mobile ID user", req.MSISDN)
	}
	if err != nil {
		return nil, err
	}
	if u.State != UserActive {
		return nil, faultDetail(etsi.CodeUnknownClient, 1053, "the Mobile ID of %s is not active yet", req.MSISDN)
	}
	key := u.Key(req.Profile.Key)
	if key.Cert == nil {
		return nil, faultDetail(etsi.CodeNoCertFound, 0, "%s has no certificate for the %s key", req.MSISDN, req.Profile.Key)
	}
	if req.NoSpamVerify && (u.NoSpam == "" || req.NoSpam != u.NoSpam) {
		return nil, faultDetail(etsi.CodeWrongParam, 1011, "invalid NoSpamCode")
	}
	s.req.Cert = key.Cert.Raw
	in := &toSign{Format: req.Format, Text: req.Text, Digest: req.Digest, Hash: req.Hash, Cert: key.Cert, Chain: e.cfg.CAChain, SigningTime: s.req.SigningTime}
	digest, hash, err := digestToSign(in)
	if err != nil {
		return nil, faultDetail(etsi.CodeInappropriateData, 0, "%v", err)
	}
	vh, ok := vmacHash(hash)
	if !ok {
		return nil, faultDetail(etsi.CodeInternalError, 9007, "hash %v is not supported by the SIM", hash)
	}
	s.req.SIMDigest = digest
	cmd := &vmac.Sign{Key: req.Profile.Key, Hash: vh, Digest: digest, RPName: ap.Name, DisplayText: req.Display}
	var prefix []string
	if req.NoSpam != "" && !req.NoSpamVerify {
		prefix = append(prefix, req.NoSpam)
	}
	switch {
	case isFourDigits(req.EventID):
		cmd.VerificationCode = req.EventID
	case req.EventID != "":
		prefix = append(prefix, req.EventID)
	}
	if len(prefix) > 0 {
		cmd.DisplayText = strings.Join(prefix, " ") + ": " + req.Display
	}
	s.command = cmd
	return e.begin(ctx, aps, s)
}

func isFourDigits(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ReceiptRequest is a checked MSS_Receipt request.
type ReceiptRequest struct {
	AP        *AP
	APTransID string
	Instant   time.Time
	TransID   string // the MSSP_TransID the receipt is about
	MSISDN    string
	Text      string
}

// Receipt shows a message on the phone of the user of an earlier
// transaction of the same AP, typically "payment done". It does not hold
// the SIM: a receipt never stands in the way of the next signature.
func (e *Engine) Receipt(ctx context.Context, aps *APs, rr *ReceiptRequest) (*Transaction, error) {
	orig, err := e.Lookup(ctx, rr.AP.ID, rr.TransID)
	if err != nil {
		return nil, err
	}
	if rr.MSISDN != "" && rr.MSISDN != orig.MSISDN {
		return nil, faultDetail(etsi.CodeWrongParam, 0, "MobileUser does not match transaction %s", rr.TransID)
	}
	if rr.Text == "" {
		return nil, faultDetail(etsi.CodeMissingParam, 0, "the receipt Message is missing")
	}
	s := &start{
		ap: rr.AP, apTransID: rr.APTransID, instant: rr.Instant, kind: kindReceipt, msisdn: orig.MSISDN,
		mode: etsi.Synch, timeout: e.cfg.Limits.DefaultTimeOut, req: &txRequest{Text: []byte(rr.Text)},
	}
	if _, ok := TestNumberStatus(orig.MSISDN); ok {
		s.final = &finalState{state: StateValidated, code: etsi.CodeRequestOK, msg: "receipt to a test number"}
		return e.begin(ctx, aps, s)
	}
	s.command = &vmac.Display{Text: rr.Text}
	return e.begin(ctx, aps, s)
}

// String describes t for logs and errors: its id, kind, state and status.
func (t *Transaction) String() string {
	return fmt.Sprintf("transaction %s (%s, %s, %s)", t.TransID, t.Kind, t.State, t.Status)
}
