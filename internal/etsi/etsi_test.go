package etsi

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite golden files")

var (
	t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t1 = time.Date(2026, 3, 1, 12, 0, 5, 0, time.FixedZone("", 2*3600))
)

func abstract() MessageAbstract {
	return MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo:   APInfo{APID: "http://ap.example.com", APTransID: "A123", APPWD: "secret", Instant: t0},
		MSSPInfo: MSSPInfo{MSSPID: MeshMember{URI: "http://mssp.example.com"}, Instant: t1},
	}
}

var cmpOpts = cmp.Options{cmpopts.EquateEmpty()}

func fixtures() map[string]any {
	return map[string]any{
		"MSS_SignatureReq": &MSSSignatureReq{
			MessageAbstract: abstract(), TimeOut: 80, MessagingMode: Synch, ValidityDate: t1,
			MobileUser:         MobileUser{MSISDN: "+358401234567"},
			DataToBeSigned:     Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Sign <this> & \"that\""},
			DataToBeDisplayed:  &Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Login to Bank"},
			SignatureProfile:   &MSSURI{URI: "http://mss.ficom.fi/TS102206/v1.0.0/authentication-profile.xml"},
			AdditionalServices: []Service{{Description: MSSURI{URI: "http://uri.etsi.org/TS102204/v1.1.2#validate"}}},
			MSSFormat:          &MSSURI{URI: "http://uri.etsi.org/TS102204/v1.1.2#PKCS7"},
		},
		"MSS_SignatureResp": &MSSSignatureResp{
			MessageAbstract: abstract(), MSSPTransID: "M42",
			MobileUser:       MobileUser{MSISDN: "+358401234567"},
			MSSSignature:     &Signature{Base64Signature: Base64("\x30\x82\x01\x02pkcs7")},
			SignatureProfile: &MSSURI{URI: "http://mss.ficom.fi/TS102206/v1.0.0/authentication-profile.xml"},
			Status:           NewStatus(CodeValidSignature),
		},
		"MSS_StatusReq": &MSSStatusReq{MessageAbstract: abstract(), MSSPTransID: "M42"},
		"MSS_StatusResp": &MSSStatusResp{
			MessageAbstract: abstract(),
			MobileUser:      MobileUser{MSISDN: "+358401234567"},
			MSSSignature:    &Signature{PKCS1: &PKCS1{SignatureValue: Base64("sig"), X509Certificate: Base64("cert")}},
			Status:          NewStatus(CodeSignature),
		},
		"MSS_ReceiptReq": &MSSReceiptReq{
			MessageAbstract: abstract(), MSSPTransID: "M42",
			MobileUser: MobileUser{MSISDN: "+358401234567"},
			Status:     &Status{StatusCode: StatusCode{Value: CodeRequestOK}, StatusMessage: "REQUEST_OK", StatusDetail: "ok"},
			Message:    &Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Thank you"},
		},
		"MSS_ReceiptResp": &MSSReceiptResp{MessageAbstract: abstract(), Status: NewStatus(CodeRequestOK)},
		"MSS_ProfileReq":  &MSSProfileReq{MessageAbstract: abstract(), MobileUser: MobileUser{MSISDN: "+358401234567"}},
		"MSS_ProfileResp": &MSSProfileResp{
			MessageAbstract:  abstract(),
			SignatureProfile: []MSSURI{{URI: "http://alauda.mobi/digitalSignature"}, {URI: "http://alauda.mobi/nonRepudiation"}},
			Status:           NewStatus(CodeRequestOK),
		},
		"MSS_SignatureReq.ficom": &MSSSignatureReq{
			MessageAbstract: abstract(), TimeOut: 120, MessagingMode: AsynchClientServer,
			MobileUser:       MobileUser{MSISDN: "+358401234567"},
			DataToBeSigned:   Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Pay 10 EUR"},
			SignatureProfile: &MSSURI{URI: "http://mss.ficom.fi/TS102206/v1.0.0/signature-profile.xml"},
			AdditionalServices: []Service{
				{Description: MSSURI{URI: ServiceValidate}},
				{Description: MSSURI{URI: ServiceEventID}, EventID: "A1B2"},
				{Description: MSSURI{URI: ServiceNoSpam}, NoSpamCode: &NoSpamCode{Value: "Bank1", Verify: "yes"}},
				{Description: MSSURI{URI: ServiceUserLang}, UserLang: "EN"},
			},
			MSSFormat:                  &MSSURI{URI: FormatFiComPKCS1},
			SignatureProfileComparison: CompareMinimum,
		},
		"MSS_ReceiptResp.detail": &MSSReceiptResp{MessageAbstract: abstract(), Status: Status{
			StatusCode: StatusCode{Value: CodeOTAError}, DetailCode: DetailMECommunicationError,
			StatusMessage: "OTA_ERROR", StatusDetail: "handset unreachable",
		}},
		"MSS_RegistrationReq": &MSSRegistrationReq{
			MessageAbstract: abstract(),
			MobileUser:      MobileUser{MSISDN: "+358401234567"},
			Operation: &RegistrationOperation{
				Type: RegGenerateKeys, Challenge: Base64("nonce-0123456789"),
				AuthKeyAlg: KeyAlgECDSAP256, SignKeyAlg: KeyAlgRSA2048,
				DisplayText: "Activating Mobile ID", ICCID: "8935801234567890123",
			},
		},
		"MSS_RegistrationReq.bind": &MSSRegistrationReq{
			MessageAbstract: abstract(),
			MobileUser:      MobileUser{MSISDN: "+358401234567"},
			CertificateURI:  "http://ca.example.com/certs/42",
			X509Certificate: Base64("\x30\x82sign-cert"),
			Operation: &RegistrationOperation{Type: RegBindCertificates, Certificates: []RegistrationCertificate{
				{KeyUsage: KeyUsageAuthentication, DER: Base64("\x30\x82auth-cert")},
				{KeyUsage: KeyUsageSigning, DER: Base64("\x30\x82sign-cert")},
			}},
		},
		"MSS_RegistrationResp": &MSSRegistrationResp{
			MessageAbstract: abstract(), MSSPTransID: "M43",
			Status: Status{
				StatusCode: StatusCode{Value: CodeRequestOK}, StatusMessage: "REQUEST_OK", StatusDetail: "keys generated",
				Registration: generatedKeys(),
			},
			PublicKey: Base64("\x30\x59spki"),
		},
		"MSS_RegistrationResp.info": &MSSRegistrationResp{
			MessageAbstract: abstract(),
			Status: Status{StatusCode: StatusCode{Value: CodeRequestOK}, StatusMessage: "REQUEST_OK",
				Registration: &RegistrationResult{ICCID: "8935801234567890123", State: "active",
					PIN1TriesLeft: ptr(3), PIN2TriesLeft: ptr(0), PUKTriesLeft: ptr(10)}},
		},
		"MSS_StatusResp.registration": &MSSStatusResp{
			MessageAbstract: abstract(), MSSPTransID: "M43",
			MobileUser: MobileUser{MSISDN: "+358401234567"},
			Status:     Status{StatusCode: StatusCode{Value: CodeRequestOK}, StatusMessage: "REQUEST_OK", Registration: generatedKeys()},
		},
	}
}

func ptr[T any](v T) *T { return &v }

func generatedKeys() *RegistrationResult {
	return &RegistrationResult{
		ICCID: "8935801234567890123",
		Keys: []RegisteredKey{
			{Ref: KeyUsageAuthentication, Alg: KeyAlgECDSAP256, SPKI: Base64("\x30\x59auth-spki"), PoP: Base64("auth-pop")},
			{Ref: KeyUsageSigning, Alg: KeyAlgRSA2048, SPKI: Base64("\x30\x82sign-spki"), PoP: Base64("sign-pop")},
		},
		Attestation: &Attestation{Signature: Base64("attestation"), Certificates: []Base64{Base64("vendor-leaf"), Base64("vendor-ca")}},
		Challenge:   Base64("nonce-0123456789"),
	}
}

func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch:\ngot:  %s\nwant: %s", name, got, want)
	}
	return want
}

// isRequest reports whether a fixture name (element name, optionally
// followed by "." and a variant) names a request.
func isRequest(name string) bool {
	element, _, _ := strings.Cut(name, ".")
	return strings.HasSuffix(element, "Req")
}

func TestSOAPGolden(t *testing.T) {
	for name, msg := range fixtures() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			enc, dec := EncodeResponse, DecodeResponse
			if isRequest(name) {
				enc, dec = EncodeRequest, DecodeRequest
			}
			if err := enc(&b, msg); err != nil {
				t.Fatal(err)
			}
			want := golden(t, name+".xml", b.Bytes())
			got, err := dec(bytes.NewReader(want), 0)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(msg, got, cmpOpts); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestJSONGolden(t *testing.T) {
	for name, msg := range fixtures() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := EncodeJSON(&b, msg); err != nil {
				t.Fatal(err)
			}
			want := golden(t, name+".json", b.Bytes())
			dec := DecodeJSONResponse
			if isRequest(name) {
				dec = DecodeJSONRequest
			}
			got, err := dec(bytes.NewReader(want), 0)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(msg, got, cmpOpts); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
}

func TestFaultGolden(t *testing.T) {
	f := &Fault{Code: CodeWrongParam, Detail: "Illegal msisdn"}
	var b bytes.Buffer
	if err := EncodeFault(&b, f); err != nil {
		t.Fatal(err)
	}
	want := golden(t, "fault.xml", b.Bytes())
	for _, s := range []string{`<env:Value>env:Sender</env:Value>`, `<env:Value>mss:_101</env:Value>`, `<env:Text xml:lang="en">WRONG_PARAM</env:Text>`} {
		if !bytes.Contains(want, []byte(s)) {
			t.Errorf("fault lacks %s", s)
		}
	}
	got, err := DecodeFault(bytes.NewReader(want), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(f, got); d != "" {
		t.Errorf("fault round trip (-want +got):\n%s", d)
	}
	b.Reset()
	if err := EncodeJSONFault(&b, f); err != nil {
		t.Fatal(err)
	}
	want = golden(t, "fault.json", b.Bytes())
	got, err = DecodeJSONFault(bytes.NewReader(want), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(f, got); d != "" {
		t.Errorf("JSON fault round trip (-want +got):\n%s", d)
	}
}

func TestTextualMatches(t *testing.T) {
	var b bytes.Buffer
	if err := EncodeResponse(&b, fixtures()["MSS_SignatureResp"]); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`<mss:StatusCode Value="502"/>`, `<mss:Base64Signature>`, `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"`} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("output lacks %s", s)
		}
	}
}

const anyPrefixReq = `<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope"><S:Header/><S:Body>
<MSS_StatusReq xmlns="http://uri.etsi.org/TS102204/v1.1.2#" MajorVersion="1" MinorVersion="1" MSSP_TransID="M1">
 <AP_Info AP_ID="http://ap" AP_TransID="A1" AP_PWD="p" Instant="2026-03-01T12:00:00Z"/>
 <MSSP_Info><MSSP_ID><URI>http://mssp</URI></MSSP_ID></MSSP_Info>
</MSS_StatusReq></S:Body></S:Envelope>`

func TestDecodeAnyPrefix(t *testing.T) {
	v, err := DecodeRequest(strings.NewReader(anyPrefixReq), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := &MSSStatusReq{MSSPTransID: "M1", MessageAbstract: MessageAbstract{
		MajorVersion: 1, MinorVersion: 1,
		APInfo:   APInfo{APID: "http://ap", APTransID: "A1", APPWD: "p", Instant: t0},
		MSSPInfo: MSSPInfo{MSSPID: MeshMember{URI: "http://mssp"}},
	}}
	if d := cmp.Diff(want, v); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestDecodeFaults(t *testing.T) {
	sig, err := os.ReadFile("testdata/MSS_SignatureReq.xml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(sig)
	cases := []struct {
		name string
		in   string
		max  int64
		want Code
	}{
		{"doctype", strings.Replace(s, "<env:Envelope", `<!DOCTYPE x [<!ENTITY a "b">]><env:Envelope`, 1), 0, CodeWrongParam},
		{"entity ref", strings.Replace(s, "+358401234567", "&a;", 1), 0, CodeWrongParam},
		{"too large", s, 100, CodeWrongDataLength},
		{"wrong soap ns", strings.Replace(s, SOAPNamespace, "http://schemas.xmlsoap.org/soap/envelope/", 1), 0, CodeIncompatibleInterface},
		{"wrong etsi ns", strings.Replace(s, Namespace, "http://uri.etsi.org/TS102204/v9#", 1), 0, CodeIncompatibleInterface},
		{"unknown op", strings.ReplaceAll(s, "mss:MSS_SignatureReq", "mss:MSS_FooReq"), 0, CodeWrongParam},
		{"response as request", strings.ReplaceAll(s, "mss:MSS_SignatureReq", "mss:MSS_ReceiptResp"), 0, CodeWrongParam},
		{"missing msisdn", strings.Replace(s, "+358401234567", "", 1), 0, CodeMissingParam},
		{"missing AP_ID", strings.Replace(s, `AP_ID="http://ap.example.com"`, "", 1), 0, CodeMissingParam},
		{"bad mode", strings.Replace(s, `MessagingMode="synch"`, `MessagingMode="sometimes"`, 1), 0, CodeWrongParam},
		{"bad major", strings.Replace(s, `MajorVersion="1"`, `MajorVersion="2"`, 1), 0, CodeIncompatibleInterface},
		{"bad instant", strings.Replace(s, `Instant="2026-03-01T12:00:00Z"`, `Instant="yesterday"`, 1), 0, CodeWrongParam},
		{"malformed", s[:len(s)-10], 0, CodeWrongParam},
		{"empty", "", 0, CodeWrongParam},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeRequest(strings.NewReader(c.in), c.max)
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("err = %v, want *Fault", err)
			}
			if f.Code != c.want {
				t.Errorf("code = %v, want %v (%v)", f.Code, c.want, err)
			}
			if !strings.HasPrefix(err.Error(), "etsi: ") {
				t.Errorf("error %q lacks prefix", err)
			}
		})
	}
}

func TestDecodeJSONFaults(t *testing.T) {
	cases := []struct {
		in   string
		want Code
	}{
		{`{"MSS_FooReq":{}}`, CodeWrongParam},
		{`{}`, CodeWrongParam},
		{`{"MSS_StatusReq":{},"MSS_ProfileReq":{}}`, CodeWrongParam},
		{`{"MSS_StatusReq":null}`, CodeMissingParam},
		{`{"MSS_StatusReq":{"MajorVersion":"1","MinorVersion":"2"}}`, CodeMissingParam},
		{`[1]`, CodeWrongParam},
		{`{"MSS_StatusResp":{}}`, CodeWrongParam},
	}
	for _, c := range cases {
		_, err := DecodeJSONRequest(strings.NewReader(c.in), 0)
		var f *Fault
		if !errors.As(err, &f) || f.Code != c.want {
			t.Errorf("%s: err = %v, want code %v", c.in, err, c.want)
		}
	}
	_, err := DecodeJSONRequest(strings.NewReader(`{"MSS_StatusReq":{}}`), 5)
	var f *Fault
	if !errors.As(err, &f) || f.Code != CodeWrongDataLength {
		t.Errorf("oversize: err = %v", err)
	}
}

func TestCodes(t *testing.T) {
	cases := []struct {
		c           Code
		name        string
		fault, subc string
		ok          bool
	}{
		{CodeRequestOK, "REQUEST_OK", "", "", false},
		{CodeWrongParam, "WRONG_PARAM", "env:Sender", "mss:_101", true},
		{CodeIncompatibleInterface, "INCOMPATIBLE_INTERFACE", "env:Sender", "mss:_108", true},
		{CodeUnsupportedProfile, "UNSUPPORTED_PROFILE", "env:Receiver", "mss:_109", true},
		{CodeExpiredTransaction, "EXPIRED_TRANSACTION", "env:Receiver", "mss:_208", true},
		{CodeValidSignature, "VALID_SIGNATURE", "", "", false},
		{CodeOutstandingTransaction, "OUTSTANDING_TRANSACTION", "", "", false},
		{CodeInternalError, "INTERNAL_ERROR", "env:Receiver", "mss:_900", true},
	}
	for _, c := range cases {
		if c.c.Name() != c.name {
			t.Errorf("%d name = %s", c.c, c.c.Name())
		}
		f, s, ok := c.c.FaultSubcode()
		if f != c.fault || s != c.subc || ok != c.ok {
			t.Errorf("%d FaultSubcode = %s %s %v", c.c, f, s, ok)
		}
	}
	if len(codeTable) != 29 {
		t.Errorf("code table has %d entries", len(codeTable))
	}
}
