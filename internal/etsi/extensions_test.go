package etsi

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func notification() *MSSStatusResp {
	return &MSSStatusResp{
		MessageAbstract: abstract(), MSSPTransID: "M42",
		MobileUser:   MobileUser{MSISDN: "+358401234567"},
		MSSSignature: &Signature{Base64Signature: Base64("\x30\x82cms")},
		Status:       NewStatus(CodeValidSignature),
	}
}

func notificationAck() *MSSReceiptReq {
	return &MSSReceiptReq{
		MessageAbstract: abstract(), MSSPTransID: "M42",
		MobileUser: MobileUser{MSISDN: "+358401234567"},
		Status:     &Status{StatusCode: StatusCode{Value: CodeRequestOK}, StatusMessage: "REQUEST_OK"},
	}
}

func TestNotificationGolden(t *testing.T) {
	t.Run("MSS_Notification", func(t *testing.T) {
		var b bytes.Buffer
		if err := EncodeNotification(&b, notification()); err != nil {
			t.Fatal(err)
		}
		want := golden(t, "MSS_Notification.xml", b.Bytes())
		if !bytes.Contains(want, []byte(`<env:Body><MSS_Notification><mss:MSS_StatusResp `)) {
			t.Errorf("notification is not an rpc MSS_Notification:\n%s", want)
		}
		got, err := DecodeNotification(bytes.NewReader(want), 0)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(notification(), got, cmpOpts); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
		// The same MSS_StatusResp is not a status query answer, nor a
		// request.
		if _, err := DecodeResponse(bytes.NewReader(want), 0); faultCode(err) != CodeWrongParam {
			t.Errorf("DecodeResponse(notification) = %v, want code 101", err)
		}
		if _, err := DecodeRequest(bytes.NewReader(want), 0); faultCode(err) != CodeWrongParam {
			t.Errorf("DecodeRequest(notification) = %v, want code 101", err)
		}
	})
	t.Run("MSS_NotificationResponse", func(t *testing.T) {
		var b bytes.Buffer
		if err := EncodeNotificationResponse(&b, notificationAck()); err != nil {
			t.Fatal(err)
		}
		want := golden(t, "MSS_NotificationResponse.xml", b.Bytes())
		got, err := DecodeNotificationResponse(bytes.NewReader(want), 0)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(notificationAck(), got, cmpOpts); d != "" {
			t.Errorf("round trip (-want +got):\n%s", d)
		}
		if _, err := DecodeRequest(bytes.NewReader(want), 0); faultCode(err) != CodeWrongParam {
			t.Errorf("DecodeRequest(notification response) = %v, want code 101", err)
		}
	})
}

func TestNotificationErrors(t *testing.T) {
	n := notification()
	n.MSSPTransID = ""
	if err := EncodeNotification(io.Discard, n); err == nil {
		t.Error("EncodeNotification without MSSP_TransID succeeded")
	}
	if err := EncodeNotification(io.Discard, nil); err == nil {
		t.Error("EncodeNotification(nil) succeeded")
	}
	if err := EncodeNotificationResponse(io.Discard, nil); err == nil {
		t.Error("EncodeNotificationResponse(nil) succeeded")
	}
	// A status query answer (no MSSP_TransID) is not a notification.
	var b bytes.Buffer
	if err := EncodeResponse(&b, fixtures()["MSS_StatusResp"]); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeNotification(&b, 0); faultCode(err) != CodeWrongParam {
		t.Errorf("DecodeNotification(status response) = %v, want code 101", err)
	}
	bare := strings.Replace(strings.Replace(string(mustRead(t, "testdata/MSS_Notification.xml")),
		"<MSS_Notification>", "", 1), "</MSS_Notification>", "", 1)
	if _, err := DecodeNotification(strings.NewReader(bare), 0); err != nil {
		t.Errorf("DecodeNotification(unwrapped) = %v", err)
	}
	noID := strings.Replace(bare, ` MSSP_TransID="M42"`, "", 1)
	if _, err := DecodeNotification(strings.NewReader(noID), 0); faultCode(err) != CodeMissingParam {
		t.Errorf("DecodeNotification(no MSSP_TransID) = %v, want code 102", err)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// faultCode returns the code of err's *Fault, or 0.
func faultCode(err error) Code {
	var f *Fault
	if errors.As(err, &f) {
		return f.Code
	}
	return 0
}

func TestFaultDetailCode(t *testing.T) {
	f := NewDetailedFault(CodeWrongParam, DetailInvalidNoSpamCode, "NoSpamCode mismatch")
	if got, want := f.Error(), "etsi: 101 WRONG_PARAM (1011): NoSpamCode mismatch"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var b bytes.Buffer
	if err := EncodeFault(&b, f); err != nil {
		t.Fatal(err)
	}
	want := golden(t, "fault_detail.xml", b.Bytes())
	nested := `<env:Subcode><env:Value>mss:_101</env:Value><env:Subcode><env:Value>mss:_1011</env:Value></env:Subcode></env:Subcode>`
	if !bytes.Contains(want, []byte(nested)) {
		t.Errorf("fault lacks %s", nested)
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
	want = golden(t, "fault_detail.json", b.Bytes())
	if s := `"SubCode":{"Value":"_101","ValueNs":"http://uri.etsi.org/TS102204/v1.1.2#","SubCode":{"Value":"_1011"`; !bytes.Contains(want, []byte(s)) {
		t.Errorf("JSON fault lacks %s", s)
	}
	got, err = DecodeJSONFault(bytes.NewReader(want), 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(f, got); d != "" {
		t.Errorf("JSON fault round trip (-want +got):\n%s", d)
	}
}

func TestDecodeFaultDetailForms(t *testing.T) {
	const tmpl = `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:fi="http://mss.ficom.fi/TS102204/v1.0.0#"><e:Body><e:Fault>` +
		`<e:Code><e:Value>e:Sender</e:Value><e:Subcode><e:Value>fi:_101</e:Value>SUB</e:Subcode></e:Code>` +
		`<e:Reason><e:Text xml:lang="en">WRONG_PARAM</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>`
	cases := []struct {
		name, sub string
		want      int
		ok        bool
	}{
		{"none", "", 0, true},
		{"underscore", `<e:Subcode><e:Value>fi:_1014</e:Value></e:Subcode>`, 1014, true},
		{"bare digits", `<e:Subcode><e:Value>fi:1014</e:Value></e:Subcode>`, 1014, true},
		{"not a number", `<e:Subcode><e:Value>fi:_abc</e:Value></e:Subcode>`, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := DecodeFault(strings.NewReader(strings.Replace(tmpl, "SUB", c.sub, 1)), 0)
			if (err == nil) != c.ok {
				t.Fatalf("DecodeFault err = %v, want ok %v", err, c.ok)
			}
			if err == nil && (f.Code != CodeWrongParam || f.DetailCode != c.want) {
				t.Errorf("DecodeFault = %+v, want 101/%d", f, c.want)
			}
		})
	}
	const j = `{"Fault":{"Code":{"Value":"Receiver","SubCode":{"Value":"_209","SubCode":{"Value":"2093"}}},"Reason":"OTA_ERROR"}}`
	f, err := DecodeJSONFault(strings.NewReader(j), 0)
	if err != nil || f.Code != CodeOTAError || f.DetailCode != DetailMECommunicationError {
		t.Errorf("DecodeJSONFault = %+v, %v; want 209/2093", f, err)
	}
}

// A request as an rpc/literal toolkit writes it from the WSDL: the wrapper
// in the target namespace, the part accessor unqualified, and the FiCom
// parameter in the message's namespace.
const rpcToolkitReq = `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:mss="http://uri.etsi.org/TS102204/v1.1.2#"><soap:Body>` +
	`<mss:MSS_Signature><MSS_SignatureReq MajorVersion="1" MinorVersion="1" MessagingMode="asynchClientServer" TimeOut="80">` +
	`<mss:AP_Info AP_ID="http://ap" AP_TransID="A1" AP_PWD="pw" Instant="2026-03-01T12:00:00Z"></mss:AP_Info>` +
	`<mss:MSSP_Info><mss:MSSP_ID><mss:URI>http://mssp</mss:URI></mss:MSSP_ID></mss:MSSP_Info>` +
	`<mss:MobileUser><mss:MSISDN>+358401234567</mss:MSISDN></mss:MobileUser>` +
	`<mss:DataToBeSigned MimeType="text/plain" Encoding="UTF-8">hello</mss:DataToBeSigned>` +
	`<mss:AdditionalServices><mss:Service><mss:Description><mss:mssURI>http://mss.ficom.fi/TS102204/v1.0.0#userLang</mss:mssURI></mss:Description>` +
	`<mss:UserLang>EN</mss:UserLang></mss:Service></mss:AdditionalServices>` +
	`</MSS_SignatureReq></mss:MSS_Signature></soap:Body></soap:Envelope>`

func TestDecodeRPCToolkitForms(t *testing.T) {
	want := &MSSSignatureReq{
		MessageAbstract: MessageAbstract{
			MajorVersion: 1, MinorVersion: 1,
			APInfo:   APInfo{APID: "http://ap", APTransID: "A1", APPWD: "pw", Instant: t0},
			MSSPInfo: MSSPInfo{MSSPID: MeshMember{URI: "http://mssp"}},
		},
		TimeOut: 80, MessagingMode: AsynchClientServer,
		MobileUser:         MobileUser{MSISDN: "+358401234567"},
		DataToBeSigned:     Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "hello"},
		AdditionalServices: []Service{{Description: MSSURI{URI: ServiceUserLang}, UserLang: "EN"}},
	}
	cases := []struct {
		name string
		in   string
	}{
		{"unqualified part", rpcToolkitReq},
		{"part in wrapper namespace", strings.NewReplacer("<mss:MSS_Signature>", `<w:MSS_Signature xmlns:w="urn:w">`,
			"</mss:MSS_Signature>", "</w:MSS_Signature>", "<MSS_SignatureReq ", "<w:MSS_SignatureReq ",
			"</MSS_SignatureReq>", "</w:MSS_SignatureReq>").Replace(rpcToolkitReq)},
		{"UserLang Value attribute", strings.Replace(rpcToolkitReq, "<mss:UserLang>EN</mss:UserLang>",
			`<fi:UserLang xmlns:fi="http://mss.ficom.fi/TS102204/v1.0.0#" Value="EN"/>`, 1)},
		{"UserLang text wins", strings.Replace(rpcToolkitReq, "<mss:UserLang>EN</mss:UserLang>",
			`<fi:UserLang xmlns:fi="http://mss.ficom.fi/TS102204/v1.0.0#" Value="DE"> EN </fi:UserLang>`, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := DecodeRequest(strings.NewReader(c.in), 0)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, got, cmpOpts); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	bad := []struct {
		name string
		in   string
		want Code
	}{
		{"unqualified without wrapper", strings.NewReplacer("<mss:MSS_Signature>", "", "</mss:MSS_Signature>", "").Replace(rpcToolkitReq), CodeIncompatibleInterface},
		{"part in foreign namespace", strings.Replace(rpcToolkitReq, "<MSS_SignatureReq ", `<MSS_SignatureReq xmlns="urn:other" `, 1), CodeIncompatibleInterface},
		{"wrong operation", strings.NewReplacer("mss:MSS_Signature>", "mss:MSS_StatusQuery>").Replace(rpcToolkitReq), CodeWrongParam},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeRequest(strings.NewReader(c.in), 0)
			if got := faultCode(err); got != c.want {
				t.Errorf("DecodeRequest err = %v, want code %d", err, c.want)
			}
		})
	}
}

func TestDecodeJSONVariants(t *testing.T) {
	const req = `{"MSS_SignatureReq":{"MajorVersion":"1","MinorVersion":"2","AP_Info":{"AP_ID":"mid://ap","AP_PWD":"x","AP_TransID":"ID-1","Instant":"2026-03-01T12:00:00Z"},` +
		`"MSSP_Info":{"MSSP_ID":{"URI":"http://mid.swisscom.ch/"}},"MobileUser":{"MSISDN":"41790000000"},"DataToBeSigned":{"Data":"d"},"MessagingMode":"asynch",` +
		`"AdditionalServices":[{"Description":"http://mss.ficom.fi/TS102204/v1.0.0#userLang","UserLang":"de"},{"Description":"http://mss.ficom.fi/TS102204/v1.0.0#eventId","EventID":{"Value":"ZX12"}}]}}`
	v, err := DecodeJSONRequest(strings.NewReader(req), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(*MSSSignatureReq).AdditionalServices
	want := []Service{{Description: MSSURI{URI: ServiceUserLang}, UserLang: "de"}, {Description: MSSURI{URI: ServiceEventID}, EventID: "ZX12"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("services (-want +got):\n%s", d)
	}

	// Kiuru writes StatusDetail as an object even when it holds text only.
	const resp = `{"MSS_ReceiptResp":{"MajorVersion":"1","MinorVersion":"1","AP_Info":{"AP_ID":"a","AP_TransID":"b","AP_PWD":"","Instant":"2026-03-01T12:00:00Z"},` +
		`"MSSP_Info":{"MSSP_ID":{"URI":"u"}},"Status":{"StatusCode":{"Value":"100"},"StatusDetail":{"StatusDetail":"Operation Succeeded"}}}}`
	v, err = DecodeJSONResponse(strings.NewReader(resp), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.(*MSSReceiptResp).Status, (Status{StatusCode: StatusCode{Value: CodeRequestOK}, StatusDetail: "Operation Succeeded"}); !cmp.Equal(got, want) {
		t.Errorf("Status = %+v, want %+v", got, want)
	}
}

func TestStatusDetailWhitespace(t *testing.T) {
	// Indentation around mreg:Result is not StatusDetail text.
	in := strings.Replace(string(mustRead(t, "testdata/MSS_RegistrationResp.xml")), "keys generated<mreg:Result", "\n   keys generated\n   <mreg:Result", 1)
	v, err := DecodeResponse(strings.NewReader(in), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.(*MSSRegistrationResp).Status.StatusDetail; got != "keys generated" {
		t.Errorf("StatusDetail = %q, want %q", got, "keys generated")
	}
}

func TestValidate(t *testing.T) {
	sig := func(mod func(*MSSSignatureReq)) any {
		m := fixtures()["MSS_SignatureReq.ficom"].(*MSSSignatureReq)
		mod(m)
		return m
	}
	svc := func(s Service) any { return sig(func(m *MSSSignatureReq) { m.AdditionalServices = []Service{s} }) }
	reg := func(mod func(*MSSRegistrationReq)) any {
		m := fixtures()["MSS_RegistrationReq.bind"].(*MSSRegistrationReq)
		mod(m)
		return m
	}
	regResp := func(mod func(*MSSRegistrationResp)) any {
		m := fixtures()["MSS_RegistrationResp"].(*MSSRegistrationResp)
		mod(m)
		return m
	}
	cases := []struct {
		name       string
		msg        any
		code       Code
		detailCode int
	}{
		{"valid ficom", sig(func(*MSSSignatureReq) {}), 0, 0},
		{"AP_TransID 32", sig(func(m *MSSSignatureReq) { m.APInfo.APTransID = "_" + strings.Repeat("a", 31) }), 0, 0},
		{"AP_TransID 33", sig(func(m *MSSSignatureReq) { m.APInfo.APTransID = strings.Repeat("a", 33) }), CodeWrongParam, 0},
		{"AP_TransID digit first", sig(func(m *MSSSignatureReq) { m.APInfo.APTransID = "1abc" }), CodeWrongParam, 0},
		{"AP_TransID colon", sig(func(m *MSSSignatureReq) { m.APInfo.APTransID = "a:b" }), CodeWrongParam, 0},
		{"AP_TransID unicode", sig(func(m *MSSSignatureReq) { m.APInfo.APTransID = "tässä-1.x" }), 0, 0},
		{"AP_ID 128", sig(func(m *MSSSignatureReq) { m.APInfo.APID = strings.Repeat("a", 128) }), 0, 0},
		{"AP_ID 129", sig(func(m *MSSSignatureReq) { m.APInfo.APID = strings.Repeat("a", 129) }), CodeWrongParam, 0},
		{"MSISDN missing", sig(func(m *MSSSignatureReq) { m.MobileUser.MSISDN = "" }), CodeMissingParam, 0},
		{"MSISDN 21", sig(func(m *MSSSignatureReq) { m.MobileUser.MSISDN = "+" + strings.Repeat("1", 20) }), CodeWrongParam, 0},
		{"comparison maximum", sig(func(m *MSSSignatureReq) { m.SignatureProfileComparison = "maximum" }), CodeWrongParam, 0},
		{"EventID short", svc(Service{Description: MSSURI{ServiceEventID}, EventID: "A1B"}), CodeWrongParam, 0},
		{"EventID long", svc(Service{Description: MSSURI{ServiceEventID}, EventID: "A1B2C3D4E"}), CodeWrongParam, 0},
		{"EventID punctuation", svc(Service{Description: MSSURI{ServiceEventID}, EventID: "A1-B2"}), CodeWrongParam, 0},
		{"EventID 8", svc(Service{Description: MSSURI{ServiceEventID}, EventID: "A1B2C3D4"}), 0, 0},
		{"EventID missing", svc(Service{Description: MSSURI{ServiceEventID}}), CodeMissingParam, 0},
		{"NoSpamCode short", svc(Service{Description: MSSURI{ServiceNoSpam}, NoSpamCode: &NoSpamCode{Value: "ab"}}), CodeWrongParam, DetailInvalidNoSpamCode},
		{"NoSpamCode digit first", svc(Service{Description: MSSURI{ServiceNoSpam}, NoSpamCode: &NoSpamCode{Value: "1abc"}}), CodeWrongParam, DetailInvalidNoSpamCode},
		{"NoSpamCode 17", svc(Service{Description: MSSURI{ServiceNoSpam}, NoSpamCode: &NoSpamCode{Value: "a" + strings.Repeat("b", 16)}}), CodeWrongParam, DetailInvalidNoSpamCode},
		{"NoSpamCode 16 no verify", svc(Service{Description: MSSURI{ServiceNoSpam}, NoSpamCode: &NoSpamCode{Value: "ä" + strings.Repeat("b", 15), Verify: "no"}}), 0, 0},
		{"NoSpamCode bad verify", svc(Service{Description: MSSURI{ServiceNoSpam}, NoSpamCode: &NoSpamCode{Value: "abc", Verify: "maybe"}}), CodeWrongParam, DetailInvalidNoSpamCode},
		{"NoSpamCode missing", svc(Service{Description: MSSURI{ServiceNoSpam}}), CodeWrongParam, DetailMissingNoSpamCode},
		{"UserLang missing", svc(Service{Description: MSSURI{ServiceUserLang}}), CodeMissingParam, 0},
		{"service URI missing", svc(Service{UserLang: "en"}), CodeMissingParam, 0},
		{"StatusReq without MSSP_TransID", &MSSStatusReq{MessageAbstract: abstract()}, CodeMissingParam, 0},
		{"ReceiptReq without MSSP_TransID", &MSSReceiptReq{MessageAbstract: abstract(), MobileUser: MobileUser{MSISDN: "+1"}}, CodeMissingParam, 0},
		{"ProfileReq without MSISDN", &MSSProfileReq{MessageAbstract: abstract()}, CodeMissingParam, 0},
		{"valid registration", reg(func(*MSSRegistrationReq) {}), 0, 0},
		{"registration without MSISDN", reg(func(m *MSSRegistrationReq) { m.MobileUser.MSISDN = "" }), CodeMissingParam, 0},
		{"registration without Operation", reg(func(m *MSSRegistrationReq) { m.Operation = nil }), 0, 0},
		{"operation type missing", reg(func(m *MSSRegistrationReq) { m.Operation.Type = "" }), CodeMissingParam, 0},
		{"operation type unknown", reg(func(m *MSSRegistrationReq) { m.Operation.Type = "Format" }), CodeWrongParam, 0},
		{"bad AuthKeyAlg", reg(func(m *MSSRegistrationReq) { m.Operation.AuthKeyAlg = "DSA-1024" }), CodeWrongParam, 0},
		{"bad SignKeyAlg", reg(func(m *MSSRegistrationReq) { m.Operation.SignKeyAlg = "ecdsa-p256" }), CodeWrongParam, 0},
		{"bind without certificates", reg(func(m *MSSRegistrationReq) { m.Operation.Certificates = nil }), CodeMissingParam, 0},
		{"certificate usage unknown", reg(func(m *MSSRegistrationReq) { m.Operation.Certificates[0].KeyUsage = "encryption" }), CodeWrongParam, 0},
		{"certificate empty", reg(func(m *MSSRegistrationReq) { m.Operation.Certificates[1].DER = nil }), CodeMissingParam, 0},
		{"valid registration response", regResp(func(*MSSRegistrationResp) {}), 0, 0},
		{"key ref unknown", regResp(func(m *MSSRegistrationResp) { m.Status.Registration.Keys[0].Ref = "x" }), CodeWrongParam, 0},
		{"key alg unknown", regResp(func(m *MSSRegistrationResp) { m.Status.Registration.Keys[0].Alg = "x" }), CodeWrongParam, 0},
		{"key without SPKI", regResp(func(m *MSSRegistrationResp) { m.Status.Registration.Keys[1].SPKI = nil }), CodeMissingParam, 0},
		{"attestation without signature", regResp(func(m *MSSRegistrationResp) { m.Status.Registration.Attestation.Signature = nil }), CodeMissingParam, 0},
		{"negative tries", regResp(func(m *MSSRegistrationResp) { m.Status.Registration.PUKTriesLeft = ptr(-1) }), CodeWrongParam, 0},
		{"negative detail code", regResp(func(m *MSSRegistrationResp) { m.Status.DetailCode = -1 }), CodeWrongParam, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.msg)
			if c.code == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("Validate = %v, want *Fault", err)
			}
			if f.Code != c.code || f.DetailCode != c.detailCode {
				t.Errorf("Validate = %v, want code %d detail %d", err, c.code, c.detailCode)
			}
		})
	}
}

func TestWSDL(t *testing.T) {
	ports := []string{"MSS_SignaturePort", "MSS_StatusQueryPort", "MSS_ReceiptPort", "MSS_ProfilePort", "MSS_RegistrationPort"}
	var doc struct {
		TargetNamespace string `xml:"targetNamespace,attr"`
		Services        []struct {
			Name string `xml:"name,attr"`
			Port struct {
				Name    string `xml:"name,attr"`
				Address struct {
					Location string `xml:"location,attr"`
				} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ address"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/ port"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ service"`
		PortTypes []struct {
			Name string `xml:"name,attr"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ portType"`
		Bindings []struct {
			Binding struct {
				Style string `xml:"style,attr"`
			} `xml:"http://schemas.xmlsoap.org/wsdl/soap12/ binding"`
		} `xml:"http://schemas.xmlsoap.org/wsdl/ binding"`
	}
	w := WSDL("https://mssp.example.com:8443/")
	if err := xml.Unmarshal(w, &doc); err != nil {
		t.Fatalf("WSDL is not XML: %v", err)
	}
	if doc.TargetNamespace != Namespace {
		t.Errorf("targetNamespace = %q, want %q", doc.TargetNamespace, Namespace)
	}
	if len(doc.Services) != len(ports) {
		t.Fatalf("WSDL has %d services, want %d", len(doc.Services), len(ports))
	}
	for i, s := range doc.Services {
		if s.Port.Name != ports[i] {
			t.Errorf("service %s port = %s, want %s", s.Name, s.Port.Name, ports[i])
		}
		if want := strings.TrimSuffix(ports[i], "Port") + "Service"; s.Name != want {
			t.Errorf("service name = %s, want %s", s.Name, want)
		}
		if got, want := s.Port.Address.Location, "https://mssp.example.com:8443/soap/services/"+ports[i]; got != want {
			t.Errorf("%s location = %q, want %q", ports[i], got, want)
		}
	}
	hasNotification := false
	for _, p := range doc.PortTypes {
		hasNotification = hasNotification || p.Name == "MSS_NotificationType"
	}
	if !hasNotification {
		t.Error("WSDL lacks the MSS_NotificationType port type")
	}
	for _, b := range doc.Bindings {
		if b.Binding.Style != "rpc" {
			t.Errorf("binding style %q, want rpc", b.Binding.Style)
		}
	}
	if bytes.Contains(w, []byte("mssp.invalid")) {
		t.Error("WSDL still holds placeholder addresses")
	}
	// A base URL is data, never markup.
	evil := WSDL(`http://h/"><x a="`)
	doc.Services = nil
	if err := xml.Unmarshal(evil, &doc); err != nil {
		t.Fatalf("WSDL with quotes in base URL is not XML: %v", err)
	}
	if got, want := doc.Services[0].Port.Address.Location, `http://h/"><x a="/soap/services/MSS_SignaturePort`; got != want {
		t.Errorf("location = %q, want %q", got, want)
	}
}
