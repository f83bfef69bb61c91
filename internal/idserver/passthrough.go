// This file is the ETSI pass-through: relying parties with the etsi
// service send ETSI TS 102 204 requests to the ID Server, which passes
// them on to the MSSP as its own AP (docs/idserver.md, "ETSI
// pass-through").

package idserver

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/store"
)

// The paths of the ETSI pass-through: those of the MSSP, so that an ETSI
// client only changes its base URL. Any message is accepted on any of
// them, as at the MSSP.
const (
	ETSIPathSignature    = "/soap/services/MSS_SignaturePort"
	ETSIPathStatusQuery  = "/soap/services/MSS_StatusQueryPort"
	ETSIPathReceipt      = "/soap/services/MSS_ReceiptPort"
	ETSIPathProfile      = "/soap/services/MSS_ProfilePort"
	ETSIPathRegistration = "/soap/services/MSS_RegistrationPort"
	ETSIPathRESTSign     = "/rest/service/sign"
	ETSIPathRESTStatus   = "/rest/service/status"
	ETSIPathRESTReceipt  = "/rest/service/receipt"
	ETSIPathRESTProfile  = "/rest/service/profile"
	ETSIPathRESTRegister = "/rest/service/registration"
)

// ETSIMaxBody is the largest ETSI request body accepted, the MSSP's
// limit.
const ETSIMaxBody = 64 << 10

// ETSIInstantSkew is how far a pass-through request's Instant may be from
// the ID Server's clock, the MSSP's default. Together with the stored
// AP_TransIDs it bounds replays.
const ETSIInstantSkew = 5 * time.Minute

// ETSIRetention is how long used AP_TransIDs and the owners of MSSP
// transactions are kept, as long as the MSSP keeps AP_TransIDs.
const ETSIRetention = 30 * 24 * time.Hour

// etsiPruneInterval is how often a node deletes expired pass-through rows.
const etsiPruneInterval = time.Hour

// Fault details the pass-through gives. etsiFaultCredentials and
// etsiFaultUnknownTransID are the MSSP's own texts, so that an RP learns no
// more from the ID Server than an AP learns from the MSSP.
const (
	etsiFaultCredentials    = "unknown AP or wrong password"
	etsiFaultRateLimit      = "rate limit exceeded"
	etsiFaultUnknownTransID = "unknown MSSP_TransID %q"
	etsiFaultDuplicate      = "AP_TransID %q already used"
	etsiFaultRegistration   = "MSS_Registration is not offered to relying parties"
	etsiFaultServerServer   = "asynchServerServer is not offered by the ID Server; use asynchClientServer and MSS_StatusQuery"
)

// profileQuerier is the MSS_ProfileQuery part of an MSSP client;
// *etsiclient.Client has it. An MSSP without it answers profile queries
// with an internal error.
type profileQuerier interface {
	Profile(ctx context.Context, req *etsi.MSSProfileReq) (*etsi.MSSProfileResp, error)
}

// passThrough serves the ETSI pass-through of a Server.
type passThrough struct {
	s         *Server
	lastPrune atomic.Int64 // Unix microseconds
}

// ETSIHandler returns the ETSI TS 102 204 pass-through: SOAP 1.2 on
// /soap/services/MSS_*Port and its JSON mirror on /rest/service/*, the
// MSSP's paths. An RP with the etsi service authenticates with its AP_ID
// and, as AP_PWD, its relyingPartyUUID; MSS_Signature, MSS_StatusQuery,
// MSS_Receipt and MSS_ProfileQuery are passed on to the MSSP with the ID
// Server's own AP_Info, and the MSSP's answers and faults come back with
// the RP's. MSS_Registration and the asynchServerServer mode are refused.
// The wiring mounts the handler beside Handler.
func (s *Server) ETSIHandler() http.Handler {
	p := &passThrough{s: s}
	mux := http.NewServeMux()
	for _, path := range []string{ETSIPathSignature, ETSIPathStatusQuery, ETSIPathReceipt, ETSIPathProfile, ETSIPathRegistration} {
		mux.HandleFunc("POST "+path, p.serveSOAP)
	}
	for _, path := range []string{ETSIPathRESTSign, ETSIPathRESTStatus, ETSIPathRESTReceipt, ETSIPathRESTProfile, ETSIPathRESTRegister} {
		mux.HandleFunc("POST "+path, p.serveJSON)
	}
	return mux
}

func (p *passThrough) serveSOAP(w http.ResponseWriter, r *http.Request) {
	msg, err := etsi.DecodeRequest(http.MaxBytesReader(w, r.Body, ETSIMaxBody+1), ETSIMaxBody)
	var resp any
	if err == nil {
		resp, err = p.dispatch(r, msg)
	}
	var buf bytes.Buffer
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	if err != nil {
		etsi.EncodeFault(&buf, p.fault(err))
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(buf.Bytes())
		return
	}
	if err := etsi.EncodeResponse(&buf, resp); err != nil {
		p.s.log.Error("etsi: cannot encode response", "err", err)
		buf.Reset()
		etsi.EncodeFault(&buf, etsiInternalFault())
		w.WriteHeader(http.StatusInternalServerError)
	}
	w.Write(buf.Bytes())
}

func (p *passThrough) serveJSON(w http.ResponseWriter, r *http.Request) {
	msg, err := etsi.DecodeJSONRequest(http.MaxBytesReader(w, r.Body, ETSIMaxBody+1), ETSIMaxBody)
	var resp any
	if err == nil {
		resp, err = p.dispatch(r, msg)
	}
	var buf bytes.Buffer
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if err != nil {
		etsi.EncodeJSONFault(&buf, p.fault(err))
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(buf.Bytes())
		return
	}
	if err := etsi.EncodeJSON(&buf, resp); err != nil {
		p.s.log.Error("etsi: cannot encode response", "err", err)
		buf.Reset()
		etsi.EncodeJSONFault(&buf, etsiInternalFault())
		w.WriteHeader(http.StatusInternalServerError)
	}
	w.Write(buf.Bytes())
}

// etsiInternalFault is what the RP gets for any error that is not an ETSI
// fault: 900 without details, which are logged instead.
func etsiInternalFault() *etsi.Fault { return &etsi.Fault{Code: etsi.CodeInternalError} }

// fault turns an error into the fault the RP gets.
func (p *passThrough) fault(err error) *etsi.Fault {
	var f *etsi.Fault
	if errors.As(err, &f) {
		return f
	}
	p.s.log.Error("etsi: request failed", "err", err)
	return etsiInternalFault()
}

func (p *passThrough) dispatch(r *http.Request, msg any) (any, error) {
	var abs *etsi.MessageAbstract
	switch m := msg.(type) {
	case *etsi.MSSSignatureReq:
		abs = &m.MessageAbstract
	case *etsi.MSSStatusReq:
		abs = &m.MessageAbstract
	case *etsi.MSSReceiptReq:
		abs = &m.MessageAbstract
	case *etsi.MSSProfileReq:
		abs = &m.MessageAbstract
	case *etsi.MSSRegistrationReq:
		abs = &m.MessageAbstract
	default:
		return nil, etsi.NewFault(etsi.CodeWrongParam, "unsupported message %T", msg)
	}
	rp, err := p.authenticate(r, abs)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	switch m := msg.(type) {
	case *etsi.MSSSignatureReq:
		return p.sign(ctx, rp, m)
	case *etsi.MSSStatusReq:
		return p.status(ctx, rp, m)
	case *etsi.MSSReceiptReq:
		return p.receipt(ctx, rp, m)
	case *etsi.MSSProfileReq:
		return p.profile(ctx, rp, m)
	}
	p.s.log.Info("etsi: MSS_Registration refused", "rp", rp.ID, "ap_trans_id", abs.APInfo.APTransID)
	return nil, etsi.NewFault(etsi.CodeUnauthorizedAccess, etsiFaultRegistration)
}

// authenticate finds the RP of a request by its AP_ID and AP_PWD and
// checks that it may use the pass-through from the request's address, has
// a token left, and sent a current Instant. Every refusal of the
// credentials, the service or the address is the same 104.
func (p *passThrough) authenticate(r *http.Request, m *etsi.MessageAbstract) (*RP, error) {
	rp, err := p.s.rps.GetAP(r.Context(), m.APInfo.APID, m.APInfo.APPWD)
	if errors.Is(err, ErrUnknownRP) {
		return nil, etsi.NewFault(etsi.CodeUnauthorizedAccess, etsiFaultCredentials)
	}
	if err != nil {
		return nil, err
	}
	if !rp.Allows(ServiceETSI) || !rp.AllowsIP(remoteAddr(r)) {
		p.s.log.Info("etsi: RP refused", "rp", rp.ID)
		return nil, etsi.NewFault(etsi.CodeUnauthorizedAccess, etsiFaultCredentials)
	}
	if !p.s.rps.Allow(rp) {
		return nil, etsi.NewFault(etsi.CodeUnauthorizedAccess, etsiFaultRateLimit)
	}
	// Sub saturates, so a far-off Instant cannot overflow.
	if d := p.s.now().Sub(m.APInfo.Instant); d > ETSIInstantSkew || d < -ETSIInstantSkew {
		return nil, etsi.NewFault(etsi.CodeWrongParam, "Instant %s is more than %v from the server's time",
			m.APInfo.Instant.UTC().Format(time.RFC3339), ETSIInstantSkew)
	}
	return rp, nil
}

// echoAPInfo returns the header of the answer to a request with header
// m: the MSSP's answer h with the RP's own AP_Info, without its password,
// in place of the ID Server's.
func echoAPInfo(h etsi.MessageAbstract, m *etsi.MessageAbstract) etsi.MessageAbstract {
	h.MinorVersion = m.MinorVersion
	h.APInfo = m.APInfo
	h.APInfo.APPWD = ""
	return h
}

// forward reports the outcome of a request passed on to the MSSP: an ETSI
// fault goes back to the RP unchanged, except 104, which at this point
// is about the ID Server's own credentials and is an internal error for
// the RP; any other error is an internal error.
func (p *passThrough) forward(rp *RP, op string, err error) error {
	var f *etsi.Fault
	if errors.As(err, &f) && f.Code != etsi.CodeUnauthorizedAccess {
		p.s.log.Info("etsi: "+op, "rp", rp.ID, "fault", f.Code.String(), "detail_code", f.DetailCode)
		return f
	}
	p.s.log.Error("etsi: "+op+" not passed on", "rp", rp.ID, "err", err)
	return etsiInternalFault()
}

// refusedByMSSP reports whether a fault from the MSSP means the request
// never became a transaction there: a fault of the request itself
// (101–109), after which the MSSP lets the AP use its AP_TransID again.
func refusedByMSSP(err error) bool {
	var f *etsi.Fault
	return errors.As(err, &f) && f.Code >= etsi.CodeWrongParam && f.Code <= etsi.CodeUnsupportedProfile
}

func (p *passThrough) sign(ctx context.Context, rp *RP, m *etsi.MSSSignatureReq) (any, error) {
	if m.MessagingMode == etsi.AsynchServerServer {
		return nil, etsi.NewDetailedFault(etsi.CodeWrongParam, etsi.DetailIllegalMessagingMode, etsiFaultServerServer)
	}
	p.prune(ctx)
	if err := p.reserve(ctx, rp, m.APInfo.APTransID); err != nil {
		return nil, err
	}
	req := *m
	req.MessageAbstract = p.s.abstract() // a fresh AP_TransID of the ID Server's
	req.DataToBeDisplayed = displayData(rp.Name, m)
	resp, err := p.s.mssp.Sign(ctx, &req)
	if err != nil {
		if refusedByMSSP(err) {
			p.release(rp, m.APInfo.APTransID)
		}
		return nil, p.forward(rp, "MSS_Signature", err)
	}
	if resp.MSSPTransID != "" {
		if _, err := p.s.db.ExecContext(ctx, `INSERT INTO idserver_etsi_tx (mssp_trans_id, rp_key, ap_trans_id, id_ap_trans_id, msisdn, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, resp.MSSPTransID, rp.key, m.APInfo.APTransID, req.APInfo.APTransID, m.MobileUser.MSISDN, p.s.now().UnixMicro()); err != nil {
			return nil, fmt.Errorf("record MSSP_TransID %s of RP %s: %w", resp.MSSPTransID, rp.ID, err)
		}
	}
	p.s.log.Info("etsi: MSS_Signature", "rp", rp.ID, "ap_trans_id", m.APInfo.APTransID, "mode", string(m.MessagingMode),
		"mssp_trans_id", resp.MSSPTransID, "status", resp.Status.StatusCode.Value.String())
	resp.MessageAbstract = echoAPInfo(resp.MessageAbstract, &m.MessageAbstract)
	return resp, nil
}

// displayData returns the DataToBeDisplayed passed on for a request: the
// RP's name, then ": " and the RP's display text, or its DataToBeSigned
// when that is a text and there is no display text, so that the phone
// shows who asks. The RP's MimeType and Encoding are kept, for the MSSP
// to check.
func displayData(rpName string, m *etsi.MSSSignatureReq) *etsi.Data {
	if d := m.DataToBeDisplayed; d != nil {
		return &etsi.Data{MimeType: d.MimeType, Encoding: d.Encoding, Value: displayed(rpName, d.Value)}
	}
	d := &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: rpName}
	if dtbs := m.DataToBeSigned; isPlainText(&dtbs) {
		d.Value = displayed(rpName, dtbs.Value)
	}
	return d
}

// isPlainText reports whether d is UTF-8 text, as the MSSP reads a
// DataToBeSigned without MimeType or Encoding.
func isPlainText(d *etsi.Data) bool {
	return (d.MimeType == "" || strings.EqualFold(d.MimeType, "text/plain")) &&
		(d.Encoding == "" || strings.EqualFold(d.Encoding, "UTF-8"))
}

// reserve records that the RP has used apTransID; a second use is the
// MSSP's fault for a repeated AP_TransID.
func (p *passThrough) reserve(ctx context.Context, rp *RP, apTransID string) error {
	res, err := p.s.db.ExecContext(ctx, `INSERT INTO idserver_etsi_transids (rp_key, ap_trans_id, created_at)
		VALUES ($1, $2, $3) ON CONFLICT (rp_key, ap_trans_id) DO NOTHING`, rp.key, apTransID, p.s.now().UnixMicro())
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if store.IsUniqueViolation(err) || (err == nil && n == 0) {
		p.s.log.Info("etsi: AP_TransID repeated", "rp", rp.ID, "ap_trans_id", apTransID)
		return etsi.NewFault(etsi.CodeWrongParam, etsiFaultDuplicate, apTransID)
	}
	if err != nil {
		return fmt.Errorf("reserve AP_TransID of RP %s: %w", rp.ID, err)
	}
	return nil
}

// release gives an AP_TransID back after the MSSP refused the request it
// came with. It runs even if the RP has gone, so that the RP may repeat
// the request with the same AP_TransID, as at the MSSP.
func (p *passThrough) release(rp *RP, apTransID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := p.s.db.ExecContext(ctx, `DELETE FROM idserver_etsi_transids WHERE rp_key = $1 AND ap_trans_id = $2`, rp.key, apTransID); err != nil {
		p.s.log.Error("etsi: release AP_TransID", "rp", rp.ID, "ap_trans_id", apTransID, "err", err)
	}
}

// owned checks that the MSSP transaction transID was started by the RP
// through the pass-through; any other is, for the RP, unknown.
func (p *passThrough) owned(ctx context.Context, rp *RP, transID string) error {
	var key string
	err := p.s.db.QueryRowContext(ctx, `SELECT rp_key FROM idserver_etsi_tx WHERE mssp_trans_id = $1`, transID).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && key != rp.key) {
		p.s.log.Info("etsi: MSSP_TransID unknown to RP", "rp", rp.ID, "mssp_trans_id", transID)
		return etsi.NewFault(etsi.CodeWrongParam, etsiFaultUnknownTransID, transID)
	}
	if err != nil {
		return fmt.Errorf("look up MSSP_TransID %q: %w", transID, err)
	}
	return nil
}

func (p *passThrough) status(ctx context.Context, rp *RP, m *etsi.MSSStatusReq) (any, error) {
	if err := p.owned(ctx, rp, m.MSSPTransID); err != nil {
		return nil, err
	}
	resp, err := p.s.mssp.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: p.s.abstract(), MSSPTransID: m.MSSPTransID})
	if err != nil {
		return nil, p.forward(rp, "MSS_StatusQuery", err)
	}
	resp.MessageAbstract = echoAPInfo(resp.MessageAbstract, &m.MessageAbstract)
	return resp, nil
}

func (p *passThrough) receipt(ctx context.Context, rp *RP, m *etsi.MSSReceiptReq) (any, error) {
	if err := p.owned(ctx, rp, m.MSSPTransID); err != nil {
		return nil, err
	}
	// The MSSP holds an AP to one use of an AP_TransID for receipts too.
	if err := p.reserve(ctx, rp, m.APInfo.APTransID); err != nil {
		return nil, err
	}
	req := *m
	req.MessageAbstract = p.s.abstract()
	resp, err := p.s.mssp.Receipt(ctx, &req)
	if err != nil {
		if refusedByMSSP(err) {
			p.release(rp, m.APInfo.APTransID)
		}
		return nil, p.forward(rp, "MSS_Receipt", err)
	}
	p.s.log.Info("etsi: MSS_Receipt", "rp", rp.ID, "ap_trans_id", m.APInfo.APTransID, "mssp_trans_id", m.MSSPTransID)
	resp.MessageAbstract = echoAPInfo(resp.MessageAbstract, &m.MessageAbstract)
	return resp, nil
}

func (p *passThrough) profile(ctx context.Context, rp *RP, m *etsi.MSSProfileReq) (any, error) {
	q, ok := p.s.mssp.(profileQuerier)
	if !ok {
		return nil, p.forward(rp, "MSS_ProfileQuery", errors.New("the MSSP client cannot send MSS_ProfileQuery"))
	}
	resp, err := q.Profile(ctx, &etsi.MSSProfileReq{MessageAbstract: p.s.abstract(), MobileUser: m.MobileUser})
	if err != nil {
		return nil, p.forward(rp, "MSS_ProfileQuery", err)
	}
	resp.MessageAbstract = echoAPInfo(resp.MessageAbstract, &m.MessageAbstract)
	return resp, nil
}

// prune deletes, at most once an interval in this node, the AP_TransIDs
// and transaction owners older than ETSIRetention. Server.Run knows
// nothing of the pass-through, so requests do it.
func (p *passThrough) prune(ctx context.Context) {
	now := p.s.now()
	last := p.lastPrune.Load()
	if now.Sub(time.UnixMicro(last)) < etsiPruneInterval || !p.lastPrune.CompareAndSwap(last, now.UnixMicro()) {
		return
	}
	cutoff := now.Add(-ETSIRetention).UnixMicro()
	for _, table := range []string{"idserver_etsi_transids", "idserver_etsi_tx"} {
		if _, err := p.s.db.ExecContext(ctx, `DELETE FROM `+table+` WHERE created_at < $1`, cutoff); err != nil {
			p.s.log.Error("etsi: prune", "table", table, "err", err)
		}
	}
}
