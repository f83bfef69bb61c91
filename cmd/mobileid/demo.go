package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mobileid/internal/cms"
	"mobileid/internal/etsi"
	"mobileid/internal/etsi/etsiclient"
	"mobileid/internal/up"
)

// The demo person: a valid Estonian personal code (female, born
// 1990-01-01), the same at every run, so that the desk knows them again.
const (
	demoGiven, demoSurname = "Kadri", "Demo"
	demoNationalID         = "49001010274"
	demoBorn               = "1990-01-01"
)

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo", "",
		"Walks through the platform against a running 'mobileid up': registers a person at the desk's API,\n"+
			"authenticates them over the MID REST API, has them sign a text with CMS output over ETSI TS 102 204\n"+
			"(the ID Server's pass-through), and revokes them, printing each hop of each transaction with its\n"+
			"time. The phone's user is played by the phone console's scripted approval. It exits non-zero if a\n"+
			"step fails, so it doubles as a smoke test.")
	data := fs.String("data", envOr("MOBILEID_DATA", "data"), "data directory of the running system (for the desk and the bank credentials)")
	console := fs.String("console", "http://"+up.DefaultAddrs.Console, "URL of the running system's landing page")
	out := fs.String("out", "demo-signature.p7s", "file for the CMS signature")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	creds, err := up.ReadCredentials(*data)
	if err != nil {
		return err
	}
	d := &demo{e: e, creds: creds, http: &http.Client{Timeout: 2 * time.Minute}, console: strings.TrimSuffix(*console, "/")}
	if err := d.getJSON(ctx, d.console+"/api/urls", &d.urls); err != nil {
		return fmt.Errorf("is mobileid up running? %w", err)
	}
	d.root, err = up.ReadCertsFile(filepath.Join(*data, "ca", "root.pem"))
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "mobileid demo against %s\n", d.urls.Console)
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"Register " + demoGiven + " " + demoSurname + " (EE " + demoNationalID + ") at the desk's API", d.register},
		{"Authenticate over the MID REST API (the demo bank as relying party)", d.authenticate},
		{"Sign a text with CMS output over ETSI TS 102 204 (the ID Server's pass-through)", func(ctx context.Context) error { return d.sign(ctx, *out) }},
		{"Revoke at the desk's API", d.revoke},
	}
	defer d.restorePhone()
	for i, s := range steps {
		fmt.Fprintf(e.stdout, "\n%d. %s\n", i+1, s.title)
		if err := s.run(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, s.title, err)
		}
	}
	fmt.Fprintf(e.stdout, "\nAll %d steps passed.\n", len(steps))
	return nil
}

// demo is a walkthrough under way.
type demo struct {
	e       *env
	creds   *up.Credentials
	http    *http.Client
	console string
	urls    up.URLs
	root    []*x509.Certificate

	msisdn   string // the demo person's phone
	phoneID  string // its ID in the phone console
	mobileID int64
}

// mobileID is the part of the desk API's Mobile ID the demo reads.
type deskMobileID struct {
	ID         int64  `json:"id"`
	MSISDN     string `json:"msisdn"`
	State      string `json:"state"`
	Status     string `json:"status"`
	AuthSerial string `json:"auth_serial"`
	SignSerial string `json:"sign_serial"`
	Person     struct {
		NationalID string `json:"national_id"`
	} `json:"person"`
}

func (d *demo) step(format string, args ...any) {
	fmt.Fprintf(d.e.stdout, "   "+format+"\n", args...)
}

// register finds a phone whose SIM has no Mobile ID, has its user approve
// (the console's scripted user chooses the PINs), and registers the demo
// person on it.
func (d *demo) register(ctx context.Context) error {
	var phones []string
	if err := d.getJSON(ctx, d.console+"/api/phones", &phones); err != nil {
		return err
	}
	for _, p := range phones {
		var found struct {
			MobileIDs []deskMobileID `json:"mobileids"`
		}
		if err := d.desk(ctx, http.MethodGet, "/mobileids?q="+url.QueryEscape(p), nil, &found); err != nil {
			return err
		}
		// A SIM keeps its keys after a revocation: only a SIM that never
		// had a Mobile ID is free.
		free := true
		for _, m := range found.MobileIDs {
			if m.MSISDN == p {
				free = false
			}
		}
		if free {
			d.msisdn = p
			break
		}
	}
	if d.msisdn == "" {
		return errors.New("every SIM has had a Mobile ID; start mobileid up on a new data directory with more --sims")
	}
	d.phoneID = strings.TrimPrefix(d.msisdn, "+")
	if err := d.phone(ctx, "behaviour", url.Values{"b": {"approve"}}); err != nil {
		return err
	}
	d.step("phone %s: its user will approve at once (phone console)", d.msisdn)
	body := map[string]any{
		"given_names": demoGiven, "surname": demoSurname, "country": "EE", "national_id": demoNationalID,
		"date_of_birth": demoBorn, "msisdn": d.msisdn,
		"document": map[string]string{"type": "id-card", "number": "DM0000001", "issuer": "EE",
			"expires": time.Now().AddDate(5, 0, 0).Format("2006-01-02")},
	}
	start := time.Now()
	var m deskMobileID
	if err := d.desk(ctx, http.MethodPost, "/registrations", body, &m); err != nil {
		return err
	}
	d.mobileID = m.ID
	d.step("%-32s %-30s %8.1f ms", "desk → Registration Server", fmt.Sprintf("Mobile ID %d recorded", m.ID), ms(time.Since(start)))
	for m.State == "registering" {
		if time.Since(start) > time.Minute {
			return fmt.Errorf("still registering after a minute: %s", m.Status)
		}
		time.Sleep(20 * time.Millisecond)
		if err := d.desk(ctx, http.MethodGet, fmt.Sprintf("/mobileids/%d", m.ID), nil, &m); err != nil {
			return err
		}
	}
	if m.State != "active" {
		return fmt.Errorf("registration ended %s: %s", m.State, m.Status)
	}
	took := time.Since(start)
	if err := d.hops(ctx, "http://mobileid.dev/registration", start); err != nil {
		return err
	}
	d.step("active after %.1f ms: authentication certificate %s, signing certificate %s", ms(took), m.AuthSerial, m.SignSerial)
	return nil
}

// authenticate runs a MID REST authentication as the demo bank.
func (d *demo) authenticate(ctx context.Context) error {
	res, err := d.midAuth(ctx)
	if err != nil {
		return err
	}
	if res["result"] != "OK" {
		return fmt.Errorf("result %v, want OK", res["result"])
	}
	return nil
}

func (d *demo) midAuth(ctx context.Context) (map[string]any, error) {
	hash := make([]byte, 32)
	rand.Read(hash)
	body := map[string]string{
		"relyingPartyUUID": d.creds.BankRPUUID, "relyingPartyName": "Demo Bank",
		"phoneNumber": d.msisdn, "nationalIdentityNumber": demoNationalID,
		"hash": base64.StdEncoding.EncodeToString(hash), "hashType": "SHA256", "language": "ENG", "displayText": "Log in",
	}
	start := time.Now()
	var started struct {
		SessionID string `json:"sessionID"`
	}
	if err := d.postJSON(ctx, d.urls.MIDAPI+"/authentication", body, &started); err != nil {
		return nil, err
	}
	d.step("%-32s %-30s %8.1f ms   verification code %s", "RP → ID Server", "POST /authentication", ms(time.Since(start)), midVC(hash))
	var res map[string]any
	if err := d.getJSON(ctx, d.urls.MIDAPI+"/authentication/session/"+started.SessionID+"?timeoutMs=60000", &res); err != nil {
		return nil, err
	}
	took := time.Since(start)
	if err := d.hops(ctx, "http://mobileid.dev/idserver", start); err != nil {
		return nil, err
	}
	d.step("%-32s %-30v %8.1f ms", "ID Server → RP", res["result"], ms(took))
	return res, nil
}

// sign has the demo person sign a text, with CMS output, over the ETSI
// pass-through, and checks the CMS against the CA's root.
func (d *demo) sign(ctx context.Context, out string) error {
	text := fmt.Sprintf("I, %s %s, agree to the demo terms (%s).", demoGiven, demoSurname, time.Now().UTC().Format(time.RFC3339))
	client := &etsiclient.Client{BaseURL: d.urls.Issuer, HTTP: d.http}
	var tid [8]byte
	rand.Read(tid[:])
	req := &etsi.MSSSignatureReq{
		MessageAbstract: etsi.MessageAbstract{
			MajorVersion: 1, MinorVersion: 1,
			APInfo:   etsi.APInfo{APID: up.BankAPID, APPWD: d.creds.BankRPUUID, APTransID: fmt.Sprintf("demo-%x", tid), Instant: time.Now().UTC().Truncate(time.Second)},
			MSSPInfo: etsi.MSSPInfo{MSSPID: etsi.MeshMember{URI: "http://mobileid.dev/mssp"}},
		},
		MessagingMode:     etsi.Synch,
		MobileUser:        etsi.MobileUser{MSISDN: d.msisdn},
		DataToBeSigned:    etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: text},
		DataToBeDisplayed: &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Agree to the demo terms?"},
		SignatureProfile:  &etsi.MSSURI{URI: "mss:mobileid.dev:sign:loa3:UICC"},
		MSSFormat:         &etsi.MSSURI{URI: etsi.FormatCMS},
	}
	start := time.Now()
	resp, err := client.Sign(ctx, req)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if err := d.hops(ctx, "http://mobileid.dev/idserver", start); err != nil {
		return err
	}
	d.step("%-32s %-30s %8.1f ms", "ID Server → AP", fmt.Sprintf("%d %s", resp.Status.StatusCode.Value, resp.Status.StatusMessage), ms(took))
	if resp.MSSSignature == nil || len(resp.MSSSignature.Base64Signature) == 0 {
		return fmt.Errorf("no CMS signature in the answer (status %d)", resp.Status.StatusCode.Value)
	}
	der := []byte(resp.MSSSignature.Base64Signature)
	signer, err := cms.Verify(der, []byte(text), certPool(d.root))
	if err != nil {
		return fmt.Errorf("the CMS signature does not verify: %w", err)
	}
	if err := os.WriteFile(out, der, 0o644); err != nil {
		return err
	}
	d.step("CMS SignedData, %d bytes, verified over the text: signer %q", len(der), signer.Subject.CommonName)
	d.step("written to %s; check it with: openssl cms -verify -inform DER -in %s -CAfile <data>/ca/root.pem", out, out)
	return nil
}

// revoke revokes the Mobile ID at the desk's API and checks that an
// authentication is refused afterwards.
func (d *demo) revoke(ctx context.Context) error {
	start := time.Now()
	var m deskMobileID
	if err := d.desk(ctx, http.MethodPost, fmt.Sprintf("/mobileids/%d/revoke", d.mobileID), map[string]string{"reason": "request"}, &m); err != nil {
		return err
	}
	if m.State != "revoked" {
		return fmt.Errorf("after revocation the Mobile ID is %s: %s", m.State, m.Status)
	}
	d.step("%-32s %-30s %8.1f ms", "desk → Registration Server → CA", "revoked", ms(time.Since(start)))
	hash := sha256.Sum256([]byte("after revocation"))
	body := map[string]string{
		"relyingPartyUUID": d.creds.BankRPUUID, "relyingPartyName": "Demo Bank",
		"phoneNumber": d.msisdn, "nationalIdentityNumber": demoNationalID,
		"hash": base64.StdEncoding.EncodeToString(hash[:]), "hashType": "SHA256", "language": "ENG", "displayText": "Log in",
	}
	var started struct {
		SessionID string `json:"sessionID"`
	}
	if err := d.postJSON(ctx, d.urls.MIDAPI+"/authentication", body, &started); err != nil {
		return err
	}
	var res map[string]any
	if err := d.getJSON(ctx, d.urls.MIDAPI+"/authentication/session/"+started.SessionID+"?timeoutMs=60000", &res); err != nil {
		return err
	}
	if res["result"] != "NOT_MID_CLIENT" {
		return fmt.Errorf("an authentication after revocation ended %v, want NOT_MID_CLIENT", res["result"])
	}
	d.step("an authentication now ends NOT_MID_CLIENT, as it must")
	return nil
}

// restorePhone gives the phone back to the network's default behaviour.
func (d *demo) restorePhone() {
	if d.phoneID != "" {
		d.phone(context.Background(), "behaviour", url.Values{"b": {"default"}})
	}
}

// opsTx is a transaction as the operations console's API gives it.
type opsTx struct {
	TransID   string `json:"trans_id"`
	APID      string `json:"ap_id"`
	Kind      string `json:"kind"`
	Operation string `json:"operation"`
	MSISDN    string `json:"msisdn"`
	Created   string `json:"created"`
	Steps     []struct {
		Name      string  `json:"step"`
		From      string  `json:"from"`
		To        string  `json:"to"`
		ElapsedMS float64 `json:"elapsed_ms"`
		Note      string  `json:"note"`
	} `json:"steps"`
}

// hops prints the steps of the MSSP transactions of apID for the demo's
// phone that started after since, from the operations console.
func (d *demo) hops(ctx context.Context, apID string, since time.Time) error {
	var list struct {
		Transactions []opsTx `json:"transactions"`
	}
	if err := d.getJSON(ctx, d.console+"/ops/api/transactions?limit=20", &list); err != nil {
		return err
	}
	txs := list.Transactions
	offset := func(created string) float64 {
		t, err := time.Parse(time.RFC3339Nano, created)
		if err != nil {
			return 0
		}
		return ms(t.Sub(since))
	}
	role := map[string]string{"http://mobileid.dev/registration": "Registration Server", "http://mobileid.dev/idserver": "ID Server"}[apID]
	for i := len(txs) - 1; i >= 0; i-- {
		tx := txs[i]
		if tx.APID != apID || tx.MSISDN != d.msisdn || offset(tx.Created) < 0 {
			continue
		}
		var full opsTx
		if err := d.getJSON(ctx, d.console+"/ops/api/transactions/"+url.PathEscape(tx.TransID), &full); err != nil {
			return err
		}
		what := full.Kind
		if full.Operation != "" {
			what += " " + full.Operation
		}
		d.step("MSSP transaction %s (%s):", full.TransID, what)
		base := offset(full.Created)
		// The segments of a concatenated SMS are one line for each hop,
		// at the time of the last.
		last := map[string]int{}
		for i, s := range full.Steps {
			if name, _, ok := strings.Cut(s.Name, " (part "); ok {
				last[s.From+s.To+name] = i
			}
		}
		for i, s := range full.Steps {
			name, part, concat := strings.Cut(s.Name, " (part ")
			if concat {
				if last[s.From+s.To+name] != i {
					continue
				}
				_, total, _ := strings.Cut(strings.TrimSuffix(part, ")"), " of ")
				s.Name = name + " (" + total + " segments)"
			}
			hop := strings.ReplaceAll(s.From+" → "+s.To, "AP", role)
			d.step("  %-30s %-30s %8.1f ms", hop, s.Name, base+s.ElapsedMS)
		}
	}
	return nil
}

// desk calls the Registration Server's API as the demo officer.
func (d *demo) desk(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(d.urls.RegistrationAPI, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("officer", d.creds.OfficerPassword)
	return d.do(req, out)
}

// phone acts on the demo phone at the phone console.
func (d *demo) phone(ctx context.Context, action string, form url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.urls.Phones+"phone/"+d.phoneID+"/"+action, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return d.do(req, nil)
}

func (d *demo) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return d.do(req, out)
}

func (d *demo) postJSON(ctx context.Context, u string, body, out any) error {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return d.do(req, out)
}

// do sends req and decodes a 2xx JSON answer into out.
func (d *demo) do(req *http.Request, out any) error {
	resp, err := d.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// midVC is MID's verification code of a hash.
func midVC(hash []byte) string {
	return fmt.Sprintf("%04d", (int(hash[0])&0xfc)<<5|int(hash[len(hash)-1])&0x7f)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
