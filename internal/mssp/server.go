package mssp

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"mobileid/internal/etsi"
	"mobileid/internal/vmac"
)

// The endpoints, on the paths field clients use (Swisscom, Kiuru).
const (
	PathSignature    = "/soap/services/MSS_SignaturePort"
	PathStatusQuery  = "/soap/services/MSS_StatusQueryPort"
	PathReceipt      = "/soap/services/MSS_ReceiptPort"
	PathProfile      = "/soap/services/MSS_ProfilePort"
	PathRegistration = "/soap/services/MSS_RegistrationPort"
	PathRESTSign     = "/rest/service/sign"
	PathRESTStatus   = "/rest/service/status"
	PathRESTReceipt  = "/rest/service/receipt"
	PathRESTProfile  = "/rest/service/profile"
	PathRESTRegister = "/rest/service/registration"
	PathWSDL         = "/wsdl"
)

// MaxBody is the largest request body accepted: a DTBS of 1 KiB in base64
// inside its envelope fits many times over.
const MaxBody = 64 << 10

// Server is the MSSP's transport toward APs: TS 102 204 over SOAP 1.2 and
// its JSON mirror. It authenticates the AP, checks the request, and hands
// it to the Engine; the Engine knows nothing of HTTP.
type Server struct {
	e       *Engine
	aps     *APs
	users   *Users
	log     *slog.Logger
	baseURL string
	now     func() time.Time
}

// NewServer returns the transport. baseURL is the public URL of the
// endpoints, written into the served WSDL.
func NewServer(e *Engine, aps *APs, users *Users, logger *slog.Logger, baseURL string) *Server {
	s := &Server{e: e, aps: aps, users: users, log: logger.With("component", component), baseURL: strings.TrimSuffix(baseURL, "/"), now: e.now}
	e.cfg.Notification = s.notification
	return s
}

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{PathSignature, PathStatusQuery, PathReceipt, PathProfile, PathRegistration} {
		mux.HandleFunc("POST "+p, s.serveSOAP)
		mux.HandleFunc("GET "+p, s.serveWSDL)
	}
	for _, p := range []string{PathRESTSign, PathRESTStatus, PathRESTReceipt, PathRESTProfile, PathRESTRegister} {
		mux.HandleFunc("POST "+p, s.serveJSON)
	}
	mux.HandleFunc("GET "+PathWSDL, s.serveWSDL)
	return mux
}

func (s *Server) serveWSDL(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(etsi.WSDL(s.baseURL))
}

func (s *Server) serveSOAP(w http.ResponseWriter, r *http.Request) {
	msg, err := etsi.DecodeRequest(http.MaxBytesReader(w, r.Body, MaxBody+1), MaxBody)
	var resp any
	if err == nil {
		resp, err = s.dispatch(r, msg)
	}
	var buf bytes.Buffer
	if err != nil {
		f := s.fault(err)
		etsi.EncodeFault(&buf, f)
		w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(buf.Bytes())
		return
	}
	if err := etsi.EncodeResponse(&buf, resp); err != nil {
		s.log.Error("cannot encode response", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/soap+xml; charset=utf-8")
	w.Write(buf.Bytes())
}

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request) {
	msg, err := etsi.DecodeJSONRequest(http.MaxBytesReader(w, r.Body, MaxBody+1), MaxBody)
	var resp any
	if err == nil {
		resp, err = s.dispatch(r, msg)
	}
	var buf bytes.Buffer
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if err != nil {
		etsi.EncodeJSONFault(&buf, s.fault(err))
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(buf.Bytes())
		return
	}
	if err := etsi.EncodeJSON(&buf, resp); err != nil {
		s.log.Error("cannot encode response", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Write(buf.Bytes())
}

// fault turns any error into the fault the AP gets; internal errors are
// logged and reported as 900 without their text.
func (s *Server) fault(err error) *etsi.Fault {
	var f *etsi.Fault
	if errors.As(err, &f) {
		return f
	}
	s.log.Error("request failed", "err", err)
	return etsi.NewFault(etsi.CodeInternalError, "internal error")
}

// authenticate checks the AP's credentials, its client certificate and
// the request's Instant.
func (s *Server) authenticate(r *http.Request, m *etsi.MessageAbstract) (*AP, error) {
	var peerCerts []*x509.Certificate
	if r.TLS != nil {
		peerCerts = r.TLS.PeerCertificates
	}
	ap, err := s.aps.Authenticate(r.Context(), m.APInfo.APID, m.APInfo.APPWD, peerCerts)
	if err != nil {
		return nil, err
	}
	if err := s.aps.CheckInstant(m.APInfo.Instant); err != nil {
		return nil, err
	}
	return ap, nil
}

// abstract returns the header of a response to a request with header m:
// the AP's identifiers without its password, and ours.
func (s *Server) abstract(m *etsi.MessageAbstract) etsi.MessageAbstract {
	a := etsi.MessageAbstract{MajorVersion: 1, MinorVersion: m.MinorVersion, APInfo: m.APInfo}
	a.APInfo.APPWD = ""
	a.MSSPInfo = etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: s.e.cfg.MSSPID}, Instant: s.now().UTC().Truncate(time.Second)}
	return a
}

func (s *Server) dispatch(r *http.Request, msg any) (any, error) {
	if err := etsi.Validate(msg); err != nil {
		return nil, err
	}
	switch m := msg.(type) {
	case *etsi.MSSSignatureReq:
		return s.sign(r, m)
	case *etsi.MSSStatusReq:
		return s.status(r, m)
	case *etsi.MSSReceiptReq:
		return s.receipt(r, m)
	case *etsi.MSSProfileReq:
		return s.profile(r, m)
	case *etsi.MSSRegistrationReq:
		return s.registration(r, m)
	}
	return nil, etsi.NewFault(etsi.CodeWrongParam, "unsupported message %T", msg)
}

func uriOf(u *etsi.MSSURI) string {
	if u == nil {
		return ""
	}
	return u.URI
}

func (s *Server) sign(r *http.Request, m *etsi.MSSSignatureReq) (any, error) {
	ap, err := s.authenticate(r, &m.MessageAbstract)
	if err != nil {
		return nil, err
	}
	in := &signInput{
		MSISDN: m.MobileUser.MSISDN, DTBS: m.DataToBeSigned, DTBD: m.DataToBeDisplayed,
		Profile: uriOf(m.SignatureProfile), Comparison: string(m.SignatureProfileComparison), Format: uriOf(m.MSSFormat),
		TimeOut: m.TimeOut, ValidityDate: m.ValidityDate, Mode: m.MessagingMode, APURL: m.APInfo.APURL,
	}
	for _, sv := range m.AdditionalServices {
		si := serviceInput{URI: sv.Description.URI, EventID: sv.EventID, UserLang: sv.UserLang}
		if sv.NoSpamCode != nil {
			si.NoSpamCode, si.NoSpamVerify = sv.NoSpamCode.Value, sv.NoSpamCode.Verify
		}
		in.Services = append(in.Services, si)
	}
	req, err := parseSign(in, s.now(), s.e.cfg.Limits)
	if err != nil {
		return nil, err
	}
	if req.Mode == etsi.AsynchServerServer && !ap.AllowsURL(req.APURL) {
		return nil, faultDetail(etsi.CodeNoURLFound, 0, "AP_URL %q is not registered for this AP", req.APURL)
	}
	t, err := s.e.Sign(r.Context(), s.aps, &SignRequest{AP: ap, APTransID: m.APInfo.APTransID, Instant: m.APInfo.Instant, Req: req})
	if err != nil {
		return nil, err
	}
	resp := &etsi.MSSSignatureResp{
		MessageAbstract: s.abstract(&m.MessageAbstract), MSSPTransID: t.TransID,
		MobileUser: etsi.MobileUser{MSISDN: t.MSISDN}, SignatureProfile: &etsi.MSSURI{URI: req.Profile.URI},
	}
	if req.Mode != etsi.Synch {
		resp.Status = etsi.NewStatus(etsi.CodeRequestOK)
		return resp, nil
	}
	t, err = s.waitFinal(r.Context(), t)
	if err != nil {
		return nil, err
	}
	if f := t.Fault(); f != nil {
		return nil, f
	}
	resp.MSSSignature, resp.Status = t.Signature, statusOf(t)
	return resp, nil
}

// waitFinal waits for a synchronous transaction to end: until its
// deadline, and a little longer for the sweep that ends it then.
func (s *Server) waitFinal(ctx context.Context, t *Transaction) (*Transaction, error) {
	if t.Final() {
		return t, nil
	}
	ctx, cancel := context.WithDeadline(ctx, t.Deadline.Add(2*s.e.cfg.SweepInterval+time.Second))
	defer cancel()
	got, err := s.e.Wait(ctx, t)
	if err != nil {
		return nil, err
	}
	if !got.Final() {
		return nil, faultDetail(etsi.CodeExpiredTransaction, DetailServerTimeout, "the transaction did not end in time")
	}
	return got, nil
}

// statusOf is the Status element of a transaction that did not end in a
// fault.
func statusOf(t *Transaction) etsi.Status {
	st := etsi.NewStatus(t.Status)
	if t.Message != "" && t.Kind != kindTest {
		st.StatusDetail = t.Message
	}
	st.DetailCode = t.Detail
	return st
}

func (s *Server) status(r *http.Request, m *etsi.MSSStatusReq) (any, error) {
	ap, err := s.authenticate(r, &m.MessageAbstract)
	if err != nil {
		return nil, err
	}
	t, err := s.e.Lookup(r.Context(), ap.ID, m.MSSPTransID)
	if err != nil {
		return nil, err
	}
	resp := &etsi.MSSStatusResp{MessageAbstract: s.abstract(&m.MessageAbstract), MSSPTransID: t.TransID, MobileUser: etsi.MobileUser{MSISDN: t.MSISDN}}
	if !t.Final() {
		resp.Status = etsi.NewStatus(etsi.CodeOutstandingTransaction)
		return resp, nil
	}
	if f := t.Fault(); f != nil {
		return nil, f
	}
	resp.MSSSignature, resp.Status = t.Signature, statusOf(t)
	if t.Registration != nil {
		resp.Status.Registration = registrationResult(t.Registration)
	}
	return resp, nil
}

func (s *Server) receipt(r *http.Request, m *etsi.MSSReceiptReq) (any, error) {
	ap, err := s.authenticate(r, &m.MessageAbstract)
	if err != nil {
		return nil, err
	}
	rr := &ReceiptRequest{AP: ap, APTransID: m.APInfo.APTransID, Instant: m.APInfo.Instant, TransID: m.MSSPTransID, MSISDN: m.MobileUser.MSISDN}
	if m.Message != nil {
		if mt := m.Message.MimeType; mt != "" && !strings.HasPrefix(mt, "text/plain") {
			return nil, faultDetail(etsi.CodeWrongParam, 1016, "receipt Message must be text/plain")
		}
		rr.Text = m.Message.Value
	}
	if err := checkReceiptText(rr.Text, s.e.cfg.Limits); err != nil {
		return nil, err
	}
	if _, err := s.e.Receipt(r.Context(), s.aps, rr); err != nil {
		return nil, err
	}
	return &etsi.MSSReceiptResp{MessageAbstract: s.abstract(&m.MessageAbstract), Status: etsi.NewStatus(etsi.CodeRequestOK)}, nil
}

func (s *Server) profile(r *http.Request, m *etsi.MSSProfileReq) (any, error) {
	if _, err := s.authenticate(r, &m.MessageAbstract); err != nil {
		return nil, err
	}
	msisdn, err := parseMSISDN(m.MobileUser.MSISDN)
	if err != nil {
		return nil, err
	}
	resp := &etsi.MSSProfileResp{MessageAbstract: s.abstract(&m.MessageAbstract), Status: etsi.NewStatus(etsi.CodeRequestOK)}
	if _, ok := TestNumberStatus(msisdn); ok {
		for _, p := range Profiles() {
			resp.SignatureProfile = append(resp.SignatureProfile, etsi.MSSURI{URI: p.URI})
		}
		return resp, nil
	}
	u, err := s.users.Get(r.Context(), msisdn)
	if errors.Is(err, ErrUnknownUser) {
		if sim, err := s.e.sims.ByMSISDN(r.Context(), msisdn); err == nil && sim != nil {
			return nil, faultDetail(etsi.CodeUnknownClient, 1053, "the SIM of %s has no Mobile ID", msisdn)
		}
		return nil, faultDetail(etsi.CodeUnknownClient, 1052, "%s is not a Mobile ID user", msisdn)
	}
	if err != nil {
		return nil, err
	}
	for _, p := range Profiles() {
		if u.State == UserActive && u.Key(p.Key).Cert != nil {
			resp.SignatureProfile = append(resp.SignatureProfile, etsi.MSSURI{URI: p.URI})
		}
	}
	if len(resp.SignatureProfile) == 0 {
		return nil, faultDetail(etsi.CodeUnknownClient, 1053, "the Mobile ID of %s is not active", msisdn)
	}
	return resp, nil
}

// notification encodes the MSS_Notification callback of a finished
// transaction.
func (s *Server) notification(t *Transaction) ([]byte, string, error) {
	n := &etsi.MSSStatusResp{
		MessageAbstract: etsi.MessageAbstract{MajorVersion: 1, MinorVersion: 1,
			APInfo:   etsi.APInfo{APID: t.APID, APTransID: t.APTransID, Instant: t.CreatedAt.UTC().Truncate(time.Second), APURL: t.APURL},
			MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: s.e.cfg.MSSPID}, Instant: s.now().UTC().Truncate(time.Second)}},
		MSSPTransID: t.TransID, MobileUser: etsi.MobileUser{MSISDN: t.MSISDN},
	}
	if f := t.Fault(); f != nil {
		n.Status = etsi.NewStatus(f.Code)
		n.Status.StatusDetail, n.Status.DetailCode = f.Detail, f.DetailCode
	} else {
		n.MSSSignature, n.Status = t.Signature, statusOf(t)
	}
	var buf bytes.Buffer
	if err := etsi.EncodeNotification(&buf, n); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), "application/soap+xml; charset=utf-8", nil
}

// checkReceiptText checks a receipt's message as a display text: the
// phone shows it the same way.
func checkReceiptText(text string, lim Limits) error {
	if text == "" {
		return fault(etsi.CodeMissingParam, 0, "the receipt Message is missing")
	}
	r := signRequest{Profile: lookupProfile(defaultProfile)}
	return parseDisplay(&etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: text}, lim.withDefaults(), &r)
}

// keyAlgs maps the registration extension's algorithm names.
var keyAlgs = map[etsi.KeyAlgorithm]vmac.KeyAlg{
	"":                   0,
	etsi.KeyAlgECDSAP256: vmac.AlgECDSAP256,
	etsi.KeyAlgRSA2048:   vmac.AlgRSA2048,
}

func algName(a vmac.KeyAlg) etsi.KeyAlgorithm {
	for n, v := range keyAlgs {
		if v == a && n != "" {
			return n
		}
	}
	return etsi.KeyAlgorithm(a.String())
}

func (s *Server) registration(r *http.Request, m *etsi.MSSRegistrationReq) (any, error) {
	ap, err := s.authenticate(r, &m.MessageAbstract)
	if err != nil {
		return nil, err
	}
	msisdn, err := parseMSISDN(m.MobileUser.MSISDN)
	if err != nil {
		return nil, err
	}
	op := m.Operation
	if op == nil {
		return nil, fault(etsi.CodeMissingParam, 0, "the registration Operation is missing")
	}
	if op.Type == etsi.RegResult {
		return s.registrationResult(r, m, ap, msisdn)
	}
	rr := &RegistrationRequest{
		AP: ap, APTransID: m.APInfo.APTransID, Instant: m.APInfo.Instant, MSISDN: msisdn,
		Operation: string(op.Type), Challenge: op.Challenge, DisplayText: op.DisplayText,
	}
	var ok bool
	if rr.AuthAlg, ok = keyAlgs[op.AuthKeyAlg]; !ok {
		return nil, fault(etsi.CodeWrongParam, 0, "unknown key algorithm %s", quote(string(op.AuthKeyAlg)))
	}
	if rr.SignAlg, ok = keyAlgs[op.SignKeyAlg]; !ok {
		return nil, fault(etsi.CodeWrongParam, 0, "unknown key algorithm %s", quote(string(op.SignKeyAlg)))
	}
	ders := make([][]byte, 0, len(op.Certificates)+1)
	for _, c := range op.Certificates {
		ders = append(ders, c.DER)
	}
	if len(m.X509Certificate) > 0 {
		ders = append(ders, m.X509Certificate)
	}
	for _, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fault(etsi.CodeWrongParam, 0, "certificate: %v", err)
		}
		rr.Certificates = append(rr.Certificates, c)
	}
	t, err := s.e.Register(r.Context(), s.aps, rr)
	if err != nil {
		return nil, err
	}
	if t, err = s.waitFinal(r.Context(), t); err != nil {
		return nil, err
	}
	if f := t.Fault(); f != nil {
		return nil, f
	}
	resp := &etsi.MSSRegistrationResp{MessageAbstract: s.abstract(&m.MessageAbstract), MSSPTransID: t.TransID, Status: statusOf(t)}
	resp.Status.Registration = registrationResult(t.Registration)
	return resp, nil
}

// registrationResult is the registration extension's form of an outcome.
func registrationResult(o *RegistrationOutcome) *etsi.RegistrationResult {
	if o == nil || (o.Operation != OpGenerateKeys && o.Operation != OpInfo) {
		return nil
	}
	res := &etsi.RegistrationResult{ICCID: o.ICCID, Challenge: o.Challenge, State: o.State}
	for _, k := range []struct {
		ref etsi.KeyUsage
		key *RegisteredKey
	}{{etsi.KeyUsageAuthentication, o.AuthKey}, {etsi.KeyUsageSigning, o.SignKey}} {
		if k.key != nil {
			res.Keys = append(res.Keys, etsi.RegisteredKey{Ref: k.ref, Alg: algName(k.key.Alg), SPKI: k.key.SPKI, PoP: k.key.PoP})
		}
	}
	if len(o.AttestationSignature) > 0 {
		res.Attestation = &etsi.Attestation{Signature: o.AttestationSignature, Certificates: []etsi.Base64{o.AttestationCert}}
	}
	if o.Operation == OpInfo {
		p1, p2, pk := o.PIN1TriesLeft, o.PIN2TriesLeft, o.PUKTriesLeft
		res.PIN1TriesLeft, res.PIN2TriesLeft, res.PUKTriesLeft = &p1, &p2, &pk
	}
	return res
}

// registrationResult answers a Result operation: the state of an earlier
// registration operation of the same AP and MSISDN. It starts nothing.
func (s *Server) registrationResult(r *http.Request, m *etsi.MSSRegistrationReq, ap *AP, msisdn string) (any, error) {
	t, err := s.e.LookupAP(r.Context(), ap.ID, m.Operation.APTransID)
	if err != nil {
		return nil, err
	}
	if t.Kind != kindRegister || t.MSISDN != msisdn {
		return nil, fault(etsi.CodeWrongParam, 0, "AP_TransID %s is not a registration for this MobileUser", quote(m.Operation.APTransID))
	}
	resp := &etsi.MSSRegistrationResp{MessageAbstract: s.abstract(&m.MessageAbstract), MSSPTransID: t.TransID}
	if !t.Final() {
		resp.Status = etsi.NewStatus(etsi.CodeOutstandingTransaction)
		return resp, nil
	}
	if f := t.Fault(); f != nil {
		return nil, f
	}
	resp.Status = statusOf(t)
	resp.Status.Registration = registrationResult(t.Registration)
	return resp, nil
}
