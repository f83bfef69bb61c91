package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/etsi"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/handset"
	"mobileid/internal/idserver"
	"mobileid/internal/vmac"
)

// The RPs of the ETSI pass-through and the ID Server's own AP_ID at the
// MSSP (see newIDServer).
const (
	etsiBankUUID   = "8c0d5d3e-7f31-4b7e-9a53-2f1c6f0b9d11"
	etsiBankAPID   = "http://bank.example/etsi"
	etsiShopUUID   = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
	etsiShopAPID   = "urn:example:shop"
	etsiFormerUUID = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
	etsiFormerAPID = "http://former.example/etsi"
	idServerAPID   = "http://idserver.example/mid"
)

// etsiPassThrough is the ID Server of newIDServer with its ETSI
// pass-through served, three RPs of it, and the real ETSI client pointed
// at it.
type etsiPassThrough struct {
	*idServer
	url    string
	client *etsiclient.Client
	tx     atomic.Int64
}

func newETSIPassThrough(t *testing.T) *etsiPassThrough {
	t.Helper()
	ctx := context.Background()
	x := &etsiPassThrough{idServer: newIDServer(t)}
	for _, c := range []idserver.RPConfig{
		{UUID: etsiBankUUID, RP: idserver.RP{Name: "ETSI Bank", Services: []idserver.Service{idserver.ServiceETSI}, APID: etsiBankAPID}},
		{UUID: etsiShopUUID, RP: idserver.RP{Name: "ETSI Shop", Services: []idserver.Service{idserver.ServiceETSI}, APID: etsiShopAPID}},
		{UUID: etsiFormerUUID, RP: idserver.RP{Name: "Former", Services: []idserver.Service{idserver.ServiceETSI}, APID: etsiFormerAPID}},
	} {
		if err := x.rps.Add(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// An RP whose etsi service was withdrawn in the database.
	if _, err := x.p.db.ExecContext(ctx, `UPDATE idserver_rps SET services = '["authentication"]' WHERE ap_id = $1`, etsiFormerAPID); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(x.srv.ETSIHandler())
	t.Cleanup(hs.Close)
	x.url = hs.URL
	x.client = &etsiclient.Client{BaseURL: hs.URL, HTTP: &http.Client{Timeout: time.Minute}}
	return x
}

// abstract is a request header of an RP with a fresh AP_TransID.
func (x *etsiPassThrough) abstract(apID, pwd string) etsi.MessageAbstract {
	return etsi.MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo:   etsi.APInfo{APID: apID, APPWD: pwd, APTransID: fmt.Sprintf("RP%d", x.tx.Add(1)), Instant: time.Now().UTC().Truncate(time.Second)},
		MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: "http://mobileid.dev/mssp"}},
	}
}

// signReq is an MSS_SignatureReq of ETSI Bank for a SHA-256 digest in the
// FiCom PKCS1 format.
func (x *etsiPassThrough) signReq(mode etsi.MessagingMode, profile string, digest []byte, text string) *etsi.MSSSignatureReq {
	return &etsi.MSSSignatureReq{
		MessageAbstract: x.abstract(etsiBankAPID, etsiBankUUID), MessagingMode: mode, TimeOut: 60,
		MobileUser:        etsi.MobileUser{MSISDN: x.msisdn},
		DataToBeSigned:    etsi.Data{MimeType: "application/x-sha256", Encoding: "base64", Value: base64.StdEncoding.EncodeToString(digest)},
		DataToBeDisplayed: &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: text},
		SignatureProfile:  &etsi.MSSURI{URI: profile},
		MSSFormat:         &etsi.MSSURI{URI: etsi.FormatFiComPKCS1},
	}
}

// etsiEchoed checks that an answer carries the RP's own AP_Info, without its
// password.
func etsiEchoed(t *testing.T, got, req etsi.MessageAbstract) {
	t.Helper()
	want := req.APInfo
	want.APPWD = ""
	if d := cmp.Diff(want, got.APInfo); d != "" {
		t.Errorf("AP_Info of the answer (-want +got):\n%s", d)
	}
}

// ownedByIDServer checks that the MSSP knows the transaction as one of
// the ID Server's.
func (x *etsiPassThrough) ownedByIDServer(t *testing.T, transID string) {
	t.Helper()
	if n := rows(t, x.p.db, `SELECT COUNT(*) FROM mssp_tx WHERE trans_id = $1 AND ap_id = $2 AND ap_trans_id LIKE 'ID%'`, transID, idServerAPID); n != 1 {
		t.Errorf("MSSP transaction %s is not the ID Server's", transID)
	}
}

// waitStatus asks for the status of transID until it is no longer
// outstanding.
func (x *etsiPassThrough) waitStatus(t *testing.T, apID, pwd, transID string) *etsi.MSSStatusResp {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req := &etsi.MSSStatusReq{MessageAbstract: x.abstract(apID, pwd), MSSPTransID: transID}
		st, err := x.client.Status(context.Background(), req)
		if err != nil {
			t.Fatalf("MSS_StatusQuery: %v", err)
		}
		etsiEchoed(t, st.MessageAbstract, req.MessageAbstract)
		if st.Status.StatusCode.Value != etsi.CodeOutstandingTransaction {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction %s still outstanding", transID)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkPKCS1 checks a PKCS1 signature over digest as an AP must: with the
// certificate the directory has for the user.
func (x *etsiPassThrough) checkPKCS1(t *testing.T, sig *etsi.Signature, signing bool, digest []byte) {
	t.Helper()
	if sig == nil || sig.PKCS1 == nil {
		t.Fatalf("MSS_Signature = %+v, want PKCS1", sig)
	}
	auth, sign := x.directoryCerts(t)
	cert := auth
	if signing {
		cert = sign
	}
	if !bytes.Equal(sig.PKCS1.X509Certificate, cert.Raw) {
		t.Errorf("the certificate is not the user's %s certificate", map[bool]string{true: "signing", false: "authentication"}[signing])
	}
	if err := vmac.VerifyDigest(cert.PublicKey, crypto.SHA256, digest, sig.PKCS1.SignatureValue); err != nil {
		t.Errorf("the signature does not verify: %v", err)
	}
}

// etsiPassThroughTables are the tables a refused request must not change: the
// pass-through's, and the MSSP's transactions and SMS.
var etsiPassThroughTables = []string{"idserver_etsi_transids", "idserver_etsi_tx", "mssp_tx", "mssp_ap_transids", "messaging_outbox"}

func (x *etsiPassThrough) tableCounts(t *testing.T) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, tbl := range etsiPassThroughTables {
		n[tbl] = rows(t, x.p.db, `SELECT COUNT(*) FROM `+tbl)
	}
	return n
}

// TestIDServerETSIPassThrough runs the ETSI pass-through against the whole
// platform with the real ETSI client: an RP of the ID Server uses the
// MSSP's interface through it.
func TestIDServerETSIPassThrough(t *testing.T) {
	x := newETSIPassThrough(t)
	ctx := context.Background()
	var bankTx string // an MSSP transaction of ETSI Bank
	var usedTransID string

	t.Run("synch signature", func(t *testing.T) {
		x.phone.SetBehaviour(handset.ThinkTime(300 * time.Millisecond))
		defer x.phone.SetBehaviour(handset.Behaviour{Action: handset.Approve})
		digest := sha256.Sum256([]byte("contract " + t.Name()))
		req := x.signReq(etsi.Synch, idserver.ProfileSigning, digest[:], "Pay 10 EUR")
		screens := x.watchScreen(t)
		resp, err := x.client.Sign(ctx, req)
		texts := screens()
		if err != nil {
			t.Fatalf("MSS_Signature: %v", err)
		}
		etsiEchoed(t, resp.MessageAbstract, req.MessageAbstract)
		if resp.Status.StatusCode.Value != etsi.CodeValidSignature || resp.MobileUser.MSISDN != x.msisdn {
			t.Errorf("MSS_SignatureResp status %v for %s, want 502", resp.Status.StatusCode.Value, resp.MobileUser.MSISDN)
		}
		x.checkPKCS1(t, resp.MSSSignature, true, digest[:])
		if !strings.Contains(texts, "ETSI Bank: Pay 10 EUR") {
			t.Errorf("phone screens %q, want %q", texts, "ETSI Bank: Pay 10 EUR")
		}
		x.ownedByIDServer(t, resp.MSSPTransID)
		bankTx, usedTransID = resp.MSSPTransID, req.APInfo.APTransID
	})

	t.Run("asynch signature, status and receipt", func(t *testing.T) {
		digest := sha256.Sum256([]byte("login " + t.Name()))
		req := x.signReq(etsi.AsynchClientServer, idserver.ProfileAuthentication, digest[:], "Log in?")
		resp, err := x.client.Sign(ctx, req)
		if err != nil {
			t.Fatalf("MSS_Signature: %v", err)
		}
		etsiEchoed(t, resp.MessageAbstract, req.MessageAbstract)
		if resp.Status.StatusCode.Value != etsi.CodeRequestOK || resp.MSSPTransID == "" {
			t.Fatalf("MSS_SignatureResp = %+v, want 100 with an MSSP_TransID", resp)
		}
		st := x.waitStatus(t, etsiBankAPID, etsiBankUUID, resp.MSSPTransID)
		if st.Status.StatusCode.Value != etsi.CodeValidSignature || st.MSSPTransID != resp.MSSPTransID {
			t.Fatalf("MSS_StatusResp = %v for %s, want 502", st.Status.StatusCode.Value, st.MSSPTransID)
		}
		x.checkPKCS1(t, st.MSSSignature, false, digest[:])
		x.ownedByIDServer(t, resp.MSSPTransID)

		rc := &etsi.MSSReceiptReq{MessageAbstract: x.abstract(etsiBankAPID, etsiBankUUID), MSSPTransID: resp.MSSPTransID,
			MobileUser: etsi.MobileUser{MSISDN: x.msisdn}, Message: &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "You are logged in"}}
		rr, err := x.client.Receipt(ctx, rc)
		if err != nil {
			t.Fatalf("MSS_Receipt: %v", err)
		}
		etsiEchoed(t, rr.MessageAbstract, rc.MessageAbstract)
		if rr.Status.StatusCode.Value != etsi.CodeRequestOK {
			t.Errorf("MSS_ReceiptResp status %v, want 100", rr.Status.StatusCode.Value)
		}
		pollUntil(t, 10*time.Second, "the receipt on the phone", func() bool {
			return strings.Contains(x.phone.Screen().Text, "You are logged in")
		})
	})

	t.Run("JSON", func(t *testing.T) {
		digest := sha256.Sum256([]byte("json " + t.Name()))
		req := x.signReq(etsi.Asynch, idserver.ProfileAuthentication, digest[:], "Log in with JSON?")
		var b bytes.Buffer
		etsi.EncodeJSON(&b, req)
		code, body := postRawAP(t, http.DefaultClient, x.url+idserver.ETSIPathRESTSign, "application/json", b.Bytes())
		v, err := etsi.DecodeJSONResponse(bytes.NewReader(body), 0)
		if code != http.StatusOK || err != nil {
			t.Fatalf("POST %s = %d %s (%v)", idserver.ETSIPathRESTSign, code, body, err)
		}
		resp := v.(*etsi.MSSSignatureResp)
		etsiEchoed(t, resp.MessageAbstract, req.MessageAbstract)
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			b.Reset()
			etsi.EncodeJSON(&b, &etsi.MSSStatusReq{MessageAbstract: x.abstract(etsiBankAPID, etsiBankUUID), MSSPTransID: resp.MSSPTransID})
			code, body := postRawAP(t, http.DefaultClient, x.url+idserver.ETSIPathRESTStatus, "application/json", b.Bytes())
			v, err := etsi.DecodeJSONResponse(bytes.NewReader(body), 0)
			if code != http.StatusOK || err != nil {
				t.Fatalf("POST %s = %d %s (%v)", idserver.ETSIPathRESTStatus, code, body, err)
			}
			st := v.(*etsi.MSSStatusResp)
			if st.Status.StatusCode.Value == etsi.CodeValidSignature {
				x.checkPKCS1(t, st.MSSSignature, false, digest[:])
				break
			}
			if st.Status.StatusCode.Value != etsi.CodeOutstandingTransaction || time.Now().After(deadline) {
				t.Fatalf("MSS_StatusResp = %v, want 502", st.Status.StatusCode.Value)
			}
		}
	})

	t.Run("profile query", func(t *testing.T) {
		req := &etsi.MSSProfileReq{MessageAbstract: x.abstract(etsiShopAPID, etsiShopUUID), MobileUser: etsi.MobileUser{MSISDN: x.msisdn}}
		resp, err := x.client.Profile(ctx, req)
		if err != nil {
			t.Fatalf("MSS_ProfileQuery: %v", err)
		}
		etsiEchoed(t, resp.MessageAbstract, req.MessageAbstract)
		got := map[string]bool{}
		for _, p := range resp.SignatureProfile {
			got[p.URI] = true
		}
		if !got[idserver.ProfileAuthentication] || !got[idserver.ProfileSigning] {
			t.Errorf("profiles = %v, want the authentication and the signing profile", resp.SignatureProfile)
		}
		// The MSSP's fault for a SIM without a Mobile ID comes back as
		// it is, with its detail code.
		_, err = x.client.Profile(ctx, &etsi.MSSProfileReq{MessageAbstract: x.abstract(etsiShopAPID, etsiShopUUID), MobileUser: etsi.MobileUser{MSISDN: x.p.phones()[1]}})
		wantMSSPFault(t, err, etsi.CodeUnknownClient, etsi.DetailUserNotRegistered)
	})

	t.Run("MSSP faults", func(t *testing.T) {
		digest := sha256.Sum256([]byte("test number"))
		req := x.signReq(etsi.Synch, idserver.ProfileSigning, digest[:], "Pay 1 EUR")
		req.MobileUser.MSISDN = testMSISDN(etsi.CodeUserCancel)
		_, err := x.client.Sign(ctx, req)
		wantMSSPFault(t, err, etsi.CodeUserCancel, 0)
	})

	t.Run("bad input", func(t *testing.T) {
		if bankTx == "" {
			t.Fatal("no transaction of the bank: the synch signature failed")
		}
		// A transaction of the ID Server's own, for the MID API.
		hash := sha256.Sum256([]byte("mid " + t.Name()))
		id := x.start(t, "authentication", x.request(hash[:], "SHA256"))
		if out := x.wait(t, "authentication", id); out["result"] != "OK" {
			t.Fatalf("MID authentication = %v", out)
		}
		var midTx string
		if err := x.p.db.QueryRowContext(ctx, `SELECT mssp_trans_id FROM idserver_sessions WHERE id = $1`, id).Scan(&midTx); err != nil || midTx == "" {
			t.Fatalf("MSSP_TransID of the MID session: %q, %v", midTx, err)
		}

		digest := sha256.Sum256([]byte("refused"))
		sign := func(edit func(r *etsi.MSSSignatureReq)) func() (any, error) {
			return func() (any, error) {
				r := x.signReq(etsi.Synch, idserver.ProfileSigning, digest[:], "Pay 2 EUR")
				edit(r)
				return x.client.Sign(ctx, r)
			}
		}
		status := func(apID, pwd, transID string) func() (any, error) {
			return func() (any, error) {
				return x.client.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: x.abstract(apID, pwd), MSSPTransID: transID})
			}
		}
		// The MSSP's answer for a transaction it does not know, which
		// the pass-through must give for one the RP may not see.
		_, err := x.p.client.Status(ctx, &etsi.MSSStatusReq{MessageAbstract: x.p.abstract(), MSSPTransID: bankTx})
		wantMSSPFault(t, err, etsi.CodeWrongParam, 0)
		unknown := func(transID string) string {
			return strings.Replace(err.(*etsi.Fault).Detail, bankTx, transID, 1)
		}
		cases := []struct {
			name   string
			call   func() (any, error)
			code   etsi.Code
			detail int
			text   string // the fault's detail text, if it matters
		}{
			{"wrong password", sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APPWD = etsiShopUUID }), etsi.CodeUnauthorizedAccess, 0, ""},
			{"unknown AP_ID", sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APID = "http://nobody.example/etsi" }), etsi.CodeUnauthorizedAccess, 0, ""},
			{"the ID Server's AP_ID", sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APID = idServerAPID }), etsi.CodeUnauthorizedAccess, 0, ""},
			{"RP without the etsi service", sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APID, r.APInfo.APPWD = etsiFormerAPID, etsiFormerUUID }), etsi.CodeUnauthorizedAccess, 0, ""},
			{"MID RP", sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APPWD = bankUUID }), etsi.CodeUnauthorizedAccess, 0, ""},
			{"duplicate AP_TransID", sign(func(r *etsi.MSSSignatureReq) { r.APInfo.APTransID = usedTransID }), etsi.CodeWrongParam, 0, ""},
			{"asynchServerServer", sign(func(r *etsi.MSSSignatureReq) {
				r.MessagingMode, r.APInfo.APURL = etsi.AsynchServerServer, "http://127.0.0.1/cb"
			}), etsi.CodeWrongParam, etsi.DetailIllegalMessagingMode, ""},
			{"status of another RP's transaction", status(etsiShopAPID, etsiShopUUID, bankTx), etsi.CodeWrongParam, 0, unknown(bankTx)},
			{"status of the ID Server's own transaction", status(etsiBankAPID, etsiBankUUID, midTx), etsi.CodeWrongParam, 0, unknown(midTx)},
			{"receipt on another RP's transaction", func() (any, error) {
				return x.client.Receipt(ctx, &etsi.MSSReceiptReq{MessageAbstract: x.abstract(etsiShopAPID, etsiShopUUID), MSSPTransID: bankTx,
					Message: &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Hello"}})
			}, etsi.CodeWrongParam, 0, unknown(bankTx)},
			{"MSS_Registration", func() (any, error) {
				return x.client.Registration(ctx, &etsi.MSSRegistrationReq{MessageAbstract: x.abstract(etsiBankAPID, etsiBankUUID),
					MobileUser: etsi.MobileUser{MSISDN: x.msisdn}, Operation: &etsi.RegistrationOperation{Type: etsi.RegInfo}})
			}, etsi.CodeUnauthorizedAccess, 0, ""},
		}
		before := x.tableCounts(t)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				v, err := c.call()
				if err == nil {
					t.Fatalf("answer %+v, want fault %v", v, c.code)
				}
				wantMSSPFault(t, err, c.code, c.detail)
				if f := err.(*etsi.Fault); c.text != "" && f.Detail != c.text {
					t.Errorf("fault detail %q, want %q", f.Detail, c.text)
				}
			})
		}
		raw := []struct {
			name, path, contentType, body string
		}{
			{"malformed XML", idserver.ETSIPathSignature, etsiclient.ContentType, `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><MSS_Signature>`},
			{"DTD", idserver.ETSIPathSignature, etsiclient.ContentType, `<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`},
			{"malformed JSON", idserver.ETSIPathRESTSign, "application/json", `{"MSS_SignatureReq": {"AP_Info": `},
		}
		for _, c := range raw {
			t.Run(c.name, func(t *testing.T) {
				code, body := postRawAP(t, http.DefaultClient, x.url+c.path, c.contentType, []byte(c.body))
				checkRawFault(t, c.contentType == "application/json", code, body, etsi.CodeWrongParam, 0)
			})
		}
		if after := x.tableCounts(t); !cmp.Equal(after, before) {
			t.Errorf("refused requests changed the tables: %v, before %v", after, before)
		}
	})
}
