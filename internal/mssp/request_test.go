package mssp

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/etsi"
	"mobileid/internal/vmac"
)

var parseSignNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

const signText = "Log in to Example Bank?"

// baseSignInput is a valid request; each case changes one thing.
func baseSignInput() *signInput {
	return &signInput{
		MSISDN: "+37255512345",
		DTBS:   etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: signText},
		Mode:   etsi.Synch,
	}
}

func mustProfile(t *testing.T, uri string) *Profile {
	t.Helper()
	p, ok := LookupProfile(uri)
	if !ok {
		t.Fatalf("LookupProfile(%q) found nothing", uri)
	}
	return p
}

// baseSignRequest is what parseSign makes of baseSignInput.
func baseSignRequest(t *testing.T) *signRequest {
	return &signRequest{
		MSISDN:    "+37255512345",
		Profile:   mustProfile(t, profileAuthn),
		Format:    FormatCMS,
		FormatURI: formatPKCS7,
		Text:      []byte(signText),
		Hash:      crypto.SHA256,
		Display:   signText,
		TimeOut:   300 * time.Second,
		Mode:      etsi.Synch,
	}
}

// faultCase is a request that must be refused with code and detail.
type faultCase struct {
	name   string
	mod    func(in *signInput)
	code   etsi.Code
	detail int
}

// okCase is a request that must be accepted; want adjusts the result of
// baseSignRequest.
type okCase struct {
	name string
	mod  func(in *signInput)
	want func(r *signRequest)
}

func checkFault(t *testing.T, got *signRequest, err error, code etsi.Code, detail int) {
	t.Helper()
	if got != nil {
		t.Errorf("parseSign() = %+v, want nil", got)
	}
	var f *etsi.Fault
	if !errors.As(err, &f) {
		t.Fatalf("parseSign() error = %v (%T), want *etsi.Fault", err, err)
	}
	if f.Code != code || detailCodeOf(err) != detail {
		t.Errorf("parseSign() fault = %d/%d (%v), want %d/%d", f.Code, detailCodeOf(err), err, code, detail)
	}
}

func runFaultCases(t *testing.T, cases []faultCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := baseSignInput()
			tc.mod(in)
			before := cloneSignInput(in)
			got, err := parseSign(in, parseSignNow, DefaultLimits())
			checkFault(t, got, err, tc.code, tc.detail)
			if diff := cmp.Diff(before, in); diff != "" {
				t.Errorf("parseSign() changed its input (-before +after):\n%s", diff)
			}
		})
	}
}

func runOKCases(t *testing.T, cases []okCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := baseSignInput()
			tc.mod(in)
			before := cloneSignInput(in)
			got, err := parseSign(in, parseSignNow, DefaultLimits())
			if err != nil {
				t.Fatalf("parseSign() error = %v", err)
			}
			want := baseSignRequest(t)
			tc.want(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("parseSign() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, in); diff != "" {
				t.Errorf("parseSign() changed its input (-before +after):\n%s", diff)
			}
		})
	}
}

func cloneSignInput(in *signInput) *signInput {
	c := *in
	if in.DTBD != nil {
		d := *in.DTBD
		c.DTBD = &d
	}
	c.Services = slices.Clone(in.Services)
	return &c
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// digestInfo encodes a DigestInfo with encoding/asn1, independently of the
// byte prefixes the parser compares against.
func digestInfo(t *testing.T, oid asn1.ObjectIdentifier, withNull bool, digest []byte) []byte {
	t.Helper()
	alg := pkix.AlgorithmIdentifier{Algorithm: oid}
	if withNull {
		alg.Parameters = asn1.NullRawValue
	}
	der, err := asn1.Marshal(struct {
		Alg    pkix.AlgorithmIdentifier
		Digest []byte
	}{alg, digest})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

func TestFaultDetailCode(t *testing.T) {
	for _, tc := range []struct {
		code   etsi.Code
		detail int
	}{
		{etsi.CodeWrongParam, 1016},
		{etsi.CodeMissingParam, 1022},
		{etsi.CodeUnsupportedProfile, 0},
	} {
		f := fault(tc.code, tc.detail, "something %s", "[9999] wrong")
		if f.Code != tc.code {
			t.Errorf("fault(%d, %d).Code = %d", tc.code, tc.detail, f.Code)
		}
		if got := detailCodeOf(f); got != tc.detail {
			t.Errorf("detailCodeOf(fault(%d, %d)) = %d, want %d (detail %q)", tc.code, tc.detail, got, tc.detail, f.Detail)
		}
		if !strings.Contains(f.Detail, "something [9999] wrong") {
			t.Errorf("fault detail %q lost the message", f.Detail)
		}
	}
	if got := detailCodeOf(errors.New("[1016] not a fault")); got != 0 {
		t.Errorf("detailCodeOf(non-fault) = %d, want 0", got)
	}
}

func TestParseSignMSISDN(t *testing.T) {
	t.Run("faults", func(t *testing.T) {
		runFaultCases(t, []faultCase{
			{"empty", func(in *signInput) { in.MSISDN = "" }, etsi.CodeMissingParam, 0},
			{"plus only", func(in *signInput) { in.MSISDN = "+" }, etsi.CodeUnknownClient, 1051},
			{"too short", func(in *signInput) { in.MSISDN = "+3725551" }, etsi.CodeUnknownClient, 1051},
			{"too long", func(in *signInput) { in.MSISDN = "+3725551234567890" }, etsi.CodeUnknownClient, 1051},
			{"leading zero", func(in *signInput) { in.MSISDN = "0037255512345" }, etsi.CodeUnknownClient, 1051},
			{"national", func(in *signInput) { in.MSISDN = "055512345" }, etsi.CodeUnknownClient, 1051},
			{"spaces", func(in *signInput) { in.MSISDN = "+372 5551 2345" }, etsi.CodeUnknownClient, 1051},
			{"leading space", func(in *signInput) { in.MSISDN = " +37255512345" }, etsi.CodeUnknownClient, 1051},
			{"dash", func(in *signInput) { in.MSISDN = "+372-55512345" }, etsi.CodeUnknownClient, 1051},
			{"two plus", func(in *signInput) { in.MSISDN = "++37255512345" }, etsi.CodeUnknownClient, 1051},
			{"letters", func(in *signInput) { in.MSISDN = "+3725551234a" }, etsi.CodeUnknownClient, 1051},
			{"arabic-indic digits", func(in *signInput) { in.MSISDN = "+٣٧٢٥٥٥١٢٣٤٥" }, etsi.CodeUnknownClient, 1051},
		})
	})
	t.Run("accepted", func(t *testing.T) {
		runOKCases(t, []okCase{
			{"with plus", func(in *signInput) { in.MSISDN = "+37255512345" }, func(r *signRequest) {}},
			{"without plus", func(in *signInput) { in.MSISDN = "37255512345" }, func(r *signRequest) {}},
			{"8 digits", func(in *signInput) { in.MSISDN = "37255512" }, func(r *signRequest) { r.MSISDN = "+37255512" }},
			{"15 digits", func(in *signInput) { in.MSISDN = "+372555123456789" }, func(r *signRequest) { r.MSISDN = "+372555123456789" }},
		})
	})
}

func TestParseSignDTBS(t *testing.T) {
	sum256 := sha256.Sum256([]byte("document"))
	sum384 := sha512.Sum384([]byte("document"))
	sum512 := sha512.Sum512([]byte("document"))
	dtbd := &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: "Sign contract 42?"}
	digestIn := func(mime, enc, value string) func(in *signInput) {
		return func(in *signInput) {
			in.DTBS = etsi.Data{MimeType: mime, Encoding: enc, Value: value}
			in.DTBD = dtbd
		}
	}
	digestWant := func(h crypto.Hash, digest []byte) func(r *signRequest) {
		return func(r *signRequest) {
			r.Text, r.Digest, r.Hash, r.Display = nil, digest, h, dtbd.Value
		}
	}
	t.Run("faults", func(t *testing.T) {
		runFaultCases(t, []faultCase{
			{"empty", func(in *signInput) { in.DTBS.Value = "" }, etsi.CodeMissingParam, 1022},
			{"empty digest", digestIn("application/x-sha256", "base64", ""), etsi.CodeMissingParam, 1022},
			{"text base64", func(in *signInput) { in.DTBS.Encoding = "base64" }, etsi.CodeWrongParam, 1016},
			{"text latin1", func(in *signInput) { in.DTBS.Encoding = "ISO-8859-1" }, etsi.CodeWrongParam, 1016},
			{"unknown mime", func(in *signInput) { in.DTBS.MimeType = "text/html" }, etsi.CodeWrongParam, 1016},
			{"laverca ucs2 mime", func(in *signInput) { in.DTBS.MimeType = "text/plain;ucs2" }, etsi.CodeWrongParam, 1016},
			{"hyphenated sha", digestIn("application/x-sha-256", "base64", b64(sum256[:])), etsi.CodeWrongParam, 1016},
			{"sha1", digestIn("application/x-sha1", "base64", b64(make([]byte, 20))), etsi.CodeWrongParam, 1016},
			{"sha256 utf8", digestIn("application/x-sha256", "UTF-8", b64(sum256[:])), etsi.CodeWrongParam, 1016},
			{"sha256 short", digestIn("application/x-sha256", "base64", b64(sum256[:31])), etsi.CodeWrongDataLength, 0},
			{"sha256 long", digestIn("application/x-sha256", "base64", b64(append(sum256[:], 0))), etsi.CodeWrongDataLength, 0},
			{"sha384 as sha256", digestIn("application/x-sha256", "base64", b64(sum384[:])), etsi.CodeWrongDataLength, 0},
			{"sha512 short", digestIn("application/x-sha512", "base64", b64(sum512[:48])), etsi.CodeWrongDataLength, 0},
			{"bad base64", digestIn("application/x-sha256", "base64", "not base64!"), etsi.CodeWrongParam, 0},
			{"unpadded base64", digestIn("application/x-sha256", "base64", strings.TrimRight(b64(sum256[:]), "=")), etsi.CodeWrongParam, 0},
			{"url base64", digestIn("application/x-sha256", "base64", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32))), etsi.CodeWrongParam, 0},
			{"digestinfo sha1", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA1, true, make([]byte, 20)))), etsi.CodeWrongParam, 1016},
			{"digestinfo sha224", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA224, true, make([]byte, 28)))), etsi.CodeWrongParam, 1016},
			{"digestinfo short digest", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA256, true, sum256[:31]))), etsi.CodeWrongParam, 1016},
			{"digestinfo wrong digest length", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA256, true, sum384[:]))), etsi.CodeWrongParam, 1016},
			{"digestinfo trailing byte", digestIn("application/octet-stream", "base64", b64(append(digestInfo(t, oidSHA256, true, sum256[:]), 0))), etsi.CodeWrongParam, 1016},
			{"digestinfo other params", func(in *signInput) {
				der := digestInfo(t, oidSHA256, true, sum256[:])
				der = bytes.Replace(der, []byte{0x05, 0x00}, []byte{0x04, 0x00}, 1)
				digestIn("application/octet-stream", "base64", b64(der))(in)
			}, etsi.CodeWrongParam, 1016},
			{"octet-stream raw digest", digestIn("application/octet-stream", "base64", b64(sum256[:])), etsi.CodeWrongParam, 1016},
			{"octet-stream utf8", digestIn("application/octet-stream", "UTF-8", b64(digestInfo(t, oidSHA256, true, sum256[:]))), etsi.CodeWrongParam, 1016},
			{"text too long", func(in *signInput) { in.DTBS.Value = strings.Repeat("a", 1025); in.DTBD = dtbd }, etsi.CodeWrongDataLength, 0},
			{"text too long in bytes", func(in *signInput) { in.DTBS.Value = strings.Repeat("ä", 513); in.DTBD = dtbd }, etsi.CodeWrongDataLength, 0},
			{"invalid utf8", func(in *signInput) { in.DTBS.Value = "caf\xe9" }, etsi.CodeWrongParam, 0},
			{"carriage return", func(in *signInput) { in.DTBS.Value = "line 1\r\nline 2" }, etsi.CodeWrongParam, 0},
			{"tab", func(in *signInput) { in.DTBS.Value = "a\tb" }, etsi.CodeWrongParam, 0},
			{"nul", func(in *signInput) { in.DTBS.Value = "a\x00b" }, etsi.CodeWrongParam, 0},
			{"escape", func(in *signInput) { in.DTBS.Value = "\x1b[31mred" }, etsi.CodeWrongParam, 0},
			{"c1 control", func(in *signInput) { in.DTBS.Value = "a\u0085b" }, etsi.CodeWrongParam, 0},
		})
	})
	t.Run("accepted", func(t *testing.T) {
		di256 := digestInfo(t, oidSHA256, true, sum256[:])
		runOKCases(t, []okCase{
			{"text", func(in *signInput) {}, func(r *signRequest) {}},
			{"text defaults", func(in *signInput) { in.DTBS.MimeType, in.DTBS.Encoding = "", "" }, func(r *signRequest) {}},
			{"text lower-case utf-8", func(in *signInput) { in.DTBS.Encoding = "utf-8" }, func(r *signRequest) {}},
			{"text mime case", func(in *signInput) { in.DTBS.MimeType = "Text/Plain" }, func(r *signRequest) {}},
			{"text with line feed", func(in *signInput) { in.DTBS.Value = "Pay 10 EUR\nto Shop?" }, func(r *signRequest) {
				r.Text, r.Display = []byte("Pay 10 EUR\nto Shop?"), "Pay 10 EUR\nto Shop?"
			}},
			{"text at the limit", func(in *signInput) { in.DTBS.Value = strings.Repeat("a", 1024); in.DTBD = dtbd }, func(r *signRequest) {
				r.Text, r.Display = []byte(strings.Repeat("a", 1024)), dtbd.Value
			}},
			{"sha256", digestIn("application/x-sha256", "base64", b64(sum256[:])), digestWant(crypto.SHA256, sum256[:])},
			{"sha384", digestIn("application/x-sha384", "base64", b64(sum384[:])), digestWant(crypto.SHA384, sum384[:])},
			{"sha512", digestIn("application/x-sha512", "base64", b64(sum512[:])), digestWant(crypto.SHA512, sum512[:])},
			{"sha256 upper-case encoding", digestIn("application/x-sha256", "BASE64", b64(sum256[:])), digestWant(crypto.SHA256, sum256[:])},
			{"sha256 default encoding", digestIn("application/x-sha256", "", b64(sum256[:])), digestWant(crypto.SHA256, sum256[:])},
			{"sha256 wrapped base64", digestIn("application/x-sha256", "base64", "\n  "+b64(sum256[:])[:20]+"\r\n  "+b64(sum256[:])[20:]+"\n"), digestWant(crypto.SHA256, sum256[:])},
			{"digestinfo sha256 null", digestIn("application/octet-stream", "base64", b64(di256)), digestWant(crypto.SHA256, sum256[:])},
			{"digestinfo sha256 absent", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA256, false, sum256[:]))), digestWant(crypto.SHA256, sum256[:])},
			{"digestinfo sha384 null", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA384, true, sum384[:]))), digestWant(crypto.SHA384, sum384[:])},
			{"digestinfo sha384 absent", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA384, false, sum384[:]))), digestWant(crypto.SHA384, sum384[:])},
			{"digestinfo sha512 null", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA512, true, sum512[:]))), digestWant(crypto.SHA512, sum512[:])},
			{"digestinfo sha512 absent", digestIn("application/octet-stream", "base64", b64(digestInfo(t, oidSHA512, false, sum512[:]))), digestWant(crypto.SHA512, sum512[:])},
		})
	})
}

func TestParseSignDisplay(t *testing.T) {
	sum := sha256.Sum256([]byte("document"))
	digest := func(in *signInput) {
		in.DTBS = etsi.Data{MimeType: "application/x-sha256", Encoding: "base64", Value: b64(sum[:])}
	}
	withDTBD := func(s string) func(in *signInput) {
		return func(in *signInput) { in.DTBD = &etsi.Data{MimeType: "text/plain", Encoding: "UTF-8", Value: s} }
	}
	// gsm200 is 200 septets: 198 letters and one extension character.
	gsm200 := strings.Repeat("a", 198) + "€"
	ucs100 := "Ж" + strings.Repeat("a", 99)
	t.Run("faults", func(t *testing.T) {
		runFaultCases(t, []faultCase{
			{"digest without dtbd", digest, etsi.CodeMissingParam, 1021},
			{"empty dtbd", withDTBD(""), etsi.CodeMissingParam, 1021},
			{"dtbd html", func(in *signInput) { in.DTBD = &etsi.Data{MimeType: "text/html", Value: "<b>x</b>"} }, etsi.CodeWrongParam, 1016},
			{"dtbd base64", func(in *signInput) { in.DTBD = &etsi.Data{MimeType: "text/plain", Encoding: "base64", Value: "SGk="} }, etsi.CodeWrongParam, 1016},
			{"dtbd invalid utf8", withDTBD("\xff"), etsi.CodeWrongParam, 0},
			{"dtbd control", withDTBD("a\x07b"), etsi.CodeWrongParam, 0},
			{"gsm 201 septets", withDTBD(strings.Repeat("a", 201)), etsi.CodeWrongDataLength, 0},
			{"gsm extension counts twice", withDTBD(strings.Repeat("a", 199) + "€"), etsi.CodeWrongDataLength, 0},
			{"gsm 101 extension chars", withDTBD(strings.Repeat("{", 101)), etsi.CodeWrongDataLength, 0},
			{"text dtbs too long to show", func(in *signInput) { in.DTBS.Value = strings.Repeat("a", 201) }, etsi.CodeWrongDataLength, 0},
			{"ucs2 101", withDTBD("Ж" + strings.Repeat("a", 100)), etsi.CodeWrongDataLength, 0},
			{"outside bmp", withDTBD("OK 👍"), etsi.CodeWrongParam, 0},
			{"outside bmp in dtbs", func(in *signInput) { in.DTBS.Value = "OK 👍" }, etsi.CodeWrongParam, 0},
		})
	})
	t.Run("accepted", func(t *testing.T) {
		runOKCases(t, []okCase{
			{"dtbd replaces dtbs", withDTBD("Log in?"), func(r *signRequest) { r.Display = "Log in?" }},
			{"dtbd defaults", func(in *signInput) { in.DTBD = &etsi.Data{Value: "Log in?"} }, func(r *signRequest) { r.Display = "Log in?" }},
			{"digest with dtbd", func(in *signInput) { digest(in); withDTBD("Sign?")(in) }, func(r *signRequest) {
				r.Text, r.Digest, r.Display = nil, sum[:], "Sign?"
			}},
			{"gsm 200 septets", withDTBD(gsm200), func(r *signRequest) { r.Display = gsm200 }},
			{"gsm 200 letters", withDTBD(strings.Repeat("ä", 200)), func(r *signRequest) { r.Display = strings.Repeat("ä", 200) }},
			{"gsm 100 extension chars", withDTBD(strings.Repeat("€", 100)), func(r *signRequest) { r.Display = strings.Repeat("€", 100) }},
			{"ucs2 100", withDTBD(ucs100), func(r *signRequest) { r.Display = ucs100 }},
			{"text dtbs at 200", func(in *signInput) { in.DTBS.Value = strings.Repeat("b", 200) }, func(r *signRequest) {
				r.Text, r.Display = []byte(strings.Repeat("b", 200)), strings.Repeat("b", 200)
			}},
		})
	})
	t.Run("limits", func(t *testing.T) {
		lim := DefaultLimits()
		lim.DisplaySeptets, lim.DisplayUCS2 = 10, 5
		for _, tc := range []struct {
			text string
			ok   bool
		}{
			{"abcdefghij", true},
			{"abcdefghijk", false},
			{"abcdefgh€", true},
			{"abcdefghi€", false},
			{"Жabcd", true},
			{"Жabcde", false},
		} {
			in := baseSignInput()
			in.DTBS.Value = tc.text
			_, err := parseSign(in, parseSignNow, lim)
			if (err == nil) != tc.ok {
				t.Errorf("parseSign(%q) with %d septets / %d UCS-2: error = %v, want ok = %v", tc.text, lim.DisplaySeptets, lim.DisplayUCS2, err, tc.ok)
			}
		}
	})
}

func TestParseSignProfiles(t *testing.T) {
	profile := func(uri, comparison string) func(in *signInput) {
		return func(in *signInput) { in.Profile, in.Comparison = uri, comparison }
	}
	t.Run("faults", func(t *testing.T) {
		runFaultCases(t, []faultCase{
			{"unknown", profile("http://example.com/profile", ""), etsi.CodeUnsupportedProfile, 0},
			{"swisscom any-loa4", profile("http://mid.swisscom.ch/Any-LoA4", ""), etsi.CodeUnsupportedProfile, 0},
			{"case differs", profile("MSS:mobileid.dev:authn:loa3:UICC", ""), etsi.CodeUnsupportedProfile, 0},
			{"other loa exact", profile("mss:mobileid.dev:authn:loa2:UICC", "exact"), etsi.CodeUnsupportedProfile, 0},
			{"higher loa minimum", profile("mss:mobileid.dev:sign:loa4:UICC", "minimum"), etsi.CodeUnsupportedProfile, 0},
			{"lower loa maximum", profile("mss:mobileid.dev:sign:loa2:UICC", "maximum"), etsi.CodeUnsupportedProfile, 0},
			{"other brand minimum", profile("mss:ficom.fi:authn:loa2:UICC", "minimum"), etsi.CodeUnsupportedProfile, 0},
			{"other sscd minimum", profile("mss:mobileid.dev:authn:loa2:eSE", "minimum"), etsi.CodeUnsupportedProfile, 0},
			{"unknown operation minimum", profile("mss:mobileid.dev:pay:loa2:UICC", "minimum"), etsi.CodeUnsupportedProfile, 0},
			{"unknown comparison", profile(profileSign, "lesser"), etsi.CodeWrongParam, 0},
			{"comparison case", profile(profileSign, "Exact"), etsi.CodeWrongParam, 0},
			{"consent blank display", func(in *signInput) {
				in.Profile = profileConsent
				in.DTBS.Value = " \n "
			}, etsi.CodeMissingParam, 1021},
			{"consent digest without dtbd", func(in *signInput) {
				sum := sha256.Sum256(nil)
				in.Profile = profileConsent
				in.DTBS = etsi.Data{MimeType: "application/x-sha256", Encoding: "base64", Value: b64(sum[:])}
			}, etsi.CodeMissingParam, 1021},
			{"consent blank dtbd", func(in *signInput) {
				in.Profile = profileConsent
				in.DTBD = &etsi.Data{Value: "   "}
			}, etsi.CodeMissingParam, 1021},
		})
	})
	var ok []okCase
	for _, p := range Profiles() {
		for _, uri := range append([]string{p.URI}, p.Aliases...) {
			for _, c := range []string{"", "exact", "minimum", "better", "maximum"} {
				ok = append(ok, okCase{"[" + c + "]" + uri, profile(uri, c), func(r *signRequest) { r.Profile = mustProfile(t, p.URI) }})
			}
		}
	}
	ok = append(ok,
		okCase{"default", profile("", ""), func(r *signRequest) {}},
		okCase{"default minimum", profile("", "minimum"), func(r *signRequest) {}},
		okCase{"lower loa minimum", profile("mss:mobileid.dev:sign:loa2:UICC", "minimum"), func(r *signRequest) { r.Profile = mustProfile(t, profileSign) }},
		okCase{"lower loa better", profile("mss:mobileid.dev:sign:loa1:UICC", "better"), func(r *signRequest) { r.Profile = mustProfile(t, profileSign) }},
		okCase{"higher loa maximum", profile("mss:mobileid.dev:consent:loa4:UICC", "maximum"), func(r *signRequest) { r.Profile = mustProfile(t, profileConsent) }},
		okCase{"fragment ignored", profile("mss:mobileid.dev:authn:LoA2:UICC#rsa&2048", "minimum"), func(r *signRequest) {}},
		okCase{"consent with text", profile(profileConsent, ""), func(r *signRequest) { r.Profile = mustProfile(t, profileConsent) }},
	)
	t.Run("accepted", func(t *testing.T) { runOKCases(t, ok) })
}

// TestResolveProfileOrdering checks the comparisons against a registry with
// several levels per operation, as there will be once a second LoA exists.
func TestResolveProfileOrdering(t *testing.T) {
	reg := []Profile{
		{URI: "mss:mobileid.dev:sign:loa2:UICC", Key: vmac.KeySign, LoA: 2},
		{URI: "mss:mobileid.dev:authn:loa3:UICC", Key: vmac.KeyAuth, LoA: 3},
		{URI: "mss:mobileid.dev:sign:loa3:UICC", Key: vmac.KeySign, LoA: 3, Aliases: []string{"http://alauda.mobi/nonRepudiation"}},
		{URI: "mss:mobileid.dev:sign:loa4:UICC", Key: vmac.KeySign, LoA: 4},
		{URI: "mss:mobileid.dev:sign:loa4:UICC#rsa&2048", Key: vmac.KeySign, LoA: 4},
		{URI: "mss:mobileid.dev:sign:loa4:eSIM", Key: vmac.KeySign, LoA: 4},
		{URI: "mss:mobileid.dev:sign:loa5:eSIM", Key: vmac.KeySign, LoA: 5},
	}
	for _, tc := range []struct {
		uri, comparison, want string // want "" means 109
	}{
		{"mss:mobileid.dev:sign:loa3:UICC", "exact", "mss:mobileid.dev:sign:loa3:UICC"},
		{"http://alauda.mobi/nonRepudiation", "", "mss:mobileid.dev:sign:loa3:UICC"},
		{"mss:mobileid.dev:sign:loa3:UICC", "minimum", "mss:mobileid.dev:sign:loa3:UICC"},
		{"mss:mobileid.dev:sign:loa3:UICC", "better", "mss:mobileid.dev:sign:loa4:UICC"},
		{"http://alauda.mobi/nonRepudiation", "better", "mss:mobileid.dev:sign:loa4:UICC"},
		{"mss:mobileid.dev:sign:loa3:UICC", "maximum", "mss:mobileid.dev:sign:loa3:UICC"},
		{"mss:mobileid.dev:sign:loa4:UICC", "maximum", "mss:mobileid.dev:sign:loa4:UICC"},
		{"mss:mobileid.dev:sign:loa1:UICC", "minimum", "mss:mobileid.dev:sign:loa2:UICC"},
		{"mss:mobileid.dev:sign:loa1:UICC", "better", "mss:mobileid.dev:sign:loa4:UICC"},
		{"mss:mobileid.dev:sign:loa1:UICC", "maximum", ""},
		{"mss:mobileid.dev:sign:loa5:UICC", "maximum", "mss:mobileid.dev:sign:loa4:UICC"},
		{"mss:mobileid.dev:sign:loa5:UICC", "minimum", ""},
		{"mss:mobileid.dev:sign:loa3:eSIM", "minimum", "mss:mobileid.dev:sign:loa4:eSIM"},
		{"mss:mobileid.dev:sign:loa3:eSIM", "better", "mss:mobileid.dev:sign:loa5:eSIM"},
		{"mss:mobileid.dev:sign:loa4:eSIM", "maximum", "mss:mobileid.dev:sign:loa4:eSIM"},
		{"mss:mobileid.dev:authn:loa2:UICC", "better", "mss:mobileid.dev:authn:loa3:UICC"},
		{"mss:mobileid.dev:authn:loa4:UICC", "minimum", ""},
		{"mss:mobileid.dev:sign:loa2:UICC", "exact", "mss:mobileid.dev:sign:loa2:UICC"},
		// Among equals the named profile wins, else the first registered.
		{"mss:mobileid.dev:sign:loa4:UICC#rsa&2048", "minimum", "mss:mobileid.dev:sign:loa4:UICC#rsa&2048"},
		{"mss:mobileid.dev:sign:loa4:UICC#rsa&2048", "better", "mss:mobileid.dev:sign:loa4:UICC#rsa&2048"},
		{"mss:mobileid.dev:sign:loa4:UICC#rsa&2048", "maximum", "mss:mobileid.dev:sign:loa4:UICC#rsa&2048"},
		{"mss:mobileid.dev:sign:loa4:UICC#ec", "maximum", "mss:mobileid.dev:sign:loa4:UICC"},
		{"mss:mobileid.dev:sign:loa1:UICC", "exact", ""},
	} {
		p, err := resolveProfileIn(reg, tc.uri, tc.comparison)
		switch {
		case tc.want == "":
			if f, ok := err.(*etsi.Fault); !ok || f.Code != etsi.CodeUnsupportedProfile {
				t.Errorf("resolveProfileIn(%q, %q) = %v, %v, want fault 109", tc.uri, tc.comparison, p, err)
			}
		case err != nil:
			t.Errorf("resolveProfileIn(%q, %q) error = %v, want %s", tc.uri, tc.comparison, err, tc.want)
		case p.URI != tc.want:
			t.Errorf("resolveProfileIn(%q, %q) = %s, want %s", tc.uri, tc.comparison, p.URI, tc.want)
		}
	}
}

func TestParseSignFormats(t *testing.T) {
	format := func(uri string) func(in *signInput) { return func(in *signInput) { in.Format = uri } }
	t.Run("faults", func(t *testing.T) {
		runFaultCases(t, []faultCase{
			{"unknown", format("http://example.com/format"), etsi.CodeWrongParam, 1017},
			{"xml signature", format("http://uri.etsi.org/TS102204/v1.1.2#XML-Signature"), etsi.CodeWrongParam, 1017},
			{"pkcs1 case", format("http://mss.ficom.fi/TS102204/v1.0.0#pkcs1"), etsi.CodeWrongParam, 1017},
		})
	})
	t.Run("accepted", func(t *testing.T) {
		runOKCases(t, []okCase{
			{"default", format(""), func(r *signRequest) {}},
			{"pkcs7", format("http://uri.etsi.org/TS102204/v1.1.2#PKCS7"), func(r *signRequest) {}},
			{"cms", format("http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature"), func(r *signRequest) {
				r.FormatURI = "http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature"
			}},
			{"ficom pkcs1", format("http://mss.ficom.fi/TS102204/v1.0.0#PKCS1"), func(r *signRequest) {
				r.Format, r.FormatURI = FormatPKCS1, "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1"
			}},
			{"kiuru pkcs1", format("http://www.methics.fi/KiuruMSSP/v3.2.0#PKCS1"), func(r *signRequest) {
				r.Format, r.FormatURI = FormatPKCS1, "http://www.methics.fi/KiuruMSSP/v3.2.0#PKCS1"
			}},
		})
	})
	for f, want := range map[Format]string{FormatCMS: "CMS", FormatPKCS1: "PKCS1", 0: "Format(0)"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}

func TestParseSignServices(t *testing.T) {
	services := func(s ...serviceInput) func(in *signInput) {
		return func(in *signInput) { in.Services = s }
	}
	pkcs1 := func(s ...serviceInput) func(in *signInput) {
		return func(in *signInput) { in.Services, in.Format = s, "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1" }
	}
	validate := serviceInput{URI: serviceValidate}
	timestamp := serviceInput{URI: serviceTimestamp}
	eventID := func(id string) serviceInput { return serviceInput{URI: serviceEventID, EventID: id} }
	noSpam := func(code, verify string) serviceInput {
		return serviceInput{URI: serviceNoSpam, NoSpamCode: code, NoSpamVerify: verify}
	}
	userLang := func(l string) serviceInput { return serviceInput{URI: serviceUserLang, UserLang: l} }
	t.Run("faults", func(t *testing.T) {
		runFaultCases(t, []faultCase{
			{"unknown", services(serviceInput{URI: "http://mid.swisscom.ch/as#geofencing"}), etsi.CodeWrongParam, 1014},
			{"archive", services(serviceInput{URI: "http://uri.etsi.org/TS102204/v1.1.2#archive"}), etsi.CodeWrongParam, 1014},
			{"uri case", services(serviceInput{URI: "http://uri.etsi.org/TS102204/v1.1.2#Validate"}), etsi.CodeWrongParam, 1014},
			{"empty uri", services(serviceInput{}), etsi.CodeMissingParam, 0},
			{"twice", services(validate, timestamp, validate), etsi.CodeWrongParam, 0},
			{"timestamp with pkcs1", pkcs1(timestamp), etsi.CodeWrongParam, 1014},
			{"event id missing", services(eventID("")), etsi.CodeWrongParam, 0},
			{"event id short", services(eventID("AB1")), etsi.CodeWrongParam, 0},
			{"event id long", services(eventID("ABCDE1234")), etsi.CodeWrongParam, 0},
			{"event id punctuation", services(eventID("AB-12")), etsi.CodeWrongParam, 0},
			{"event id non-ascii", services(eventID("ÄBC12")), etsi.CodeWrongParam, 0},
			{"no spam missing", services(noSpam("", "yes")), etsi.CodeWrongParam, 1012},
			{"no spam short", services(noSpam("ab", "")), etsi.CodeWrongParam, 1011},
			{"no spam long", services(noSpam("abcdefghijklmnopq", "")), etsi.CodeWrongParam, 1011},
			{"no spam digit first", services(noSpam("1abc", "")), etsi.CodeWrongParam, 1011},
			{"no spam space", services(noSpam("ab cd", "")), etsi.CodeWrongParam, 1011},
			{"no spam invalid utf8", services(noSpam("ab\xffcd", "")), etsi.CodeWrongParam, 1011},
			{"no spam verify", services(noSpam("abcd", "true")), etsi.CodeWrongParam, 1011},
			{"no spam verify case", services(noSpam("abcd", "YES")), etsi.CodeWrongParam, 1011},
			{"user lang missing", services(userLang("")), etsi.CodeWrongParam, 0},
			{"user lang unsupported", services(userLang("es")), etsi.CodeWrongParam, 0},
			{"user lang three letters", services(userLang("eng")), etsi.CodeWrongParam, 0},
			{"user lang region", services(userLang("en-GB")), etsi.CodeWrongParam, 0},
		})
	})
	t.Run("accepted", func(t *testing.T) {
		runOKCases(t, []okCase{
			{"none", services(), func(r *signRequest) {}},
			{"validate", services(validate), func(r *signRequest) { r.Validate = true }},
			{"timestamp", services(timestamp), func(r *signRequest) { r.Timestamp = true }},
			{"validate with pkcs1", pkcs1(validate), func(r *signRequest) {
				r.Validate, r.Format, r.FormatURI = true, FormatPKCS1, "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1"
			}},
			{"event id", services(eventID("AB12")), func(r *signRequest) { r.EventID = "AB12" }},
			{"event id 8", services(eventID("abcd1234")), func(r *signRequest) { r.EventID = "abcd1234" }},
			{"no spam verify default", services(noSpam("abc", "")), func(r *signRequest) { r.NoSpam, r.NoSpamVerify = "abc", true }},
			{"no spam verify yes", services(noSpam("Secret16Chars123", "yes")), func(r *signRequest) { r.NoSpam, r.NoSpamVerify = "Secret16Chars123", true }},
			{"no spam verify no", services(noSpam("Äpple7", "no")), func(r *signRequest) { r.NoSpam = "Äpple7" }},
			{"user lang", services(userLang("et")), func(r *signRequest) { r.UserLang = "et" }},
			{"user lang swisscom upper case", services(userLang("EN")), func(r *signRequest) { r.UserLang = "en" }},
			{"all", services(validate, timestamp, eventID("EV01"), noSpam("abc1", "no"), userLang("Fi")), func(r *signRequest) {
				r.Validate, r.Timestamp, r.EventID, r.NoSpam, r.UserLang = true, true, "EV01", "abc1", "fi"
			}},
		})
	})
	for _, l := range userLangs {
		in := baseSignInput()
		in.Services = []serviceInput{userLang(strings.ToUpper(l))}
		r, err := parseSign(in, parseSignNow, DefaultLimits())
		if err != nil || r.UserLang != l {
			t.Errorf("parseSign(UserLang %q) = %v, %v, want UserLang %q", strings.ToUpper(l), r, err, l)
		}
	}
}

func TestParseSignMode(t *testing.T) {
	mode := func(m etsi.MessagingMode, apURL string) func(in *signInput) {
		return func(in *signInput) { in.Mode, in.APURL = m, apURL }
	}
	t.Run("faults", func(t *testing.T) {
		runFaultCases(t, []faultCase{
			{"empty", mode("", ""), etsi.CodeMissingParam, 0},
			{"unknown", mode("asynchronous", ""), etsi.CodeWrongParam, 1013},
			{"case", mode("Synch", ""), etsi.CodeWrongParam, 1013},
			{"server-server without url", mode(etsi.AsynchServerServer, ""), etsi.CodeMissingParam, 0},
			{"server-server relative url", mode(etsi.AsynchServerServer, "/notify"), etsi.CodeWrongParam, 0},
			{"server-server ftp", mode(etsi.AsynchServerServer, "ftp://ap.example/notify"), etsi.CodeWrongParam, 0},
			{"server-server no host", mode(etsi.AsynchServerServer, "https:///notify"), etsi.CodeWrongParam, 0},
			{"server-server user info", mode(etsi.AsynchServerServer, "https://ap:secret@ap.example/notify"), etsi.CodeWrongParam, 0},
			{"server-server fragment", mode(etsi.AsynchServerServer, "https://ap.example/notify#x"), etsi.CodeWrongParam, 0},
			{"server-server garbage", mode(etsi.AsynchServerServer, "https://ap example/%zz"), etsi.CodeWrongParam, 0},
		})
	})
	t.Run("accepted", func(t *testing.T) {
		runOKCases(t, []okCase{
			{"synch", mode(etsi.Synch, ""), func(r *signRequest) {}},
			{"synch ignores url", mode(etsi.Synch, "not a url"), func(r *signRequest) {}},
			{"client-server", mode(etsi.AsynchClientServer, ""), func(r *signRequest) { r.Mode = etsi.AsynchClientServer }},
			{"asynch", mode(etsi.Asynch, ""), func(r *signRequest) { r.Mode = etsi.AsynchClientServer }},
			{"server-server https", mode(etsi.AsynchServerServer, "https://ap.example/mss/notify?x=1"), func(r *signRequest) {
				r.Mode, r.APURL = etsi.AsynchServerServer, "https://ap.example/mss/notify?x=1"
			}},
			{"server-server http port", mode(etsi.AsynchServerServer, "http://10.0.0.1:8080/notify"), func(r *signRequest) {
				r.Mode, r.APURL = etsi.AsynchServerServer, "http://10.0.0.1:8080/notify"
			}},
		})
	})
}

func TestParseSignTimeOut(t *testing.T) {
	timing := func(secs int, validity time.Duration) func(in *signInput) {
		return func(in *signInput) {
			in.TimeOut = secs
			if validity != 0 {
				in.ValidityDate = parseSignNow.Add(validity)
			}
		}
	}
	t.Run("faults", func(t *testing.T) {
		runFaultCases(t, []faultCase{
			{"negative", timing(-1, 0), etsi.CodeWrongParam, 0},
			{"9 s", timing(9, 0), etsi.CodeWrongParam, 0},
			{"601 s", timing(601, 0), etsi.CodeWrongParam, 0},
			{"huge", timing(1<<62, 0), etsi.CodeWrongParam, 0},
			{"validity past", timing(0, -time.Second), etsi.CodeWrongParam, 0},
			{"validity now", func(in *signInput) { in.ValidityDate = parseSignNow }, etsi.CodeWrongParam, 0},
			{"validity under 10 s", timing(0, 9*time.Second), etsi.CodeWrongParam, 0},
			{"validity long past", func(in *signInput) { in.ValidityDate = time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC) }, etsi.CodeWrongParam, 0},
		})
	})
	t.Run("accepted", func(t *testing.T) {
		runOKCases(t, []okCase{
			{"default", timing(0, 0), func(r *signRequest) {}},
			{"10 s", timing(10, 0), func(r *signRequest) { r.TimeOut = 10 * time.Second }},
			{"80 s", timing(80, 0), func(r *signRequest) { r.TimeOut = 80 * time.Second }},
			{"600 s", timing(600, 0), func(r *signRequest) { r.TimeOut = 600 * time.Second }},
			{"validity earlier than default", timing(0, 90*time.Second), func(r *signRequest) { r.TimeOut = 90 * time.Second }},
			{"validity earlier than timeout", timing(120, 30*time.Second+500*time.Millisecond), func(r *signRequest) {
				r.TimeOut = 30*time.Second + 500*time.Millisecond
			}},
			{"timeout earlier than validity", timing(60, time.Hour), func(r *signRequest) { r.TimeOut = 60 * time.Second }},
			{"validity exactly 10 s", timing(0, 10*time.Second), func(r *signRequest) { r.TimeOut = 10 * time.Second }},
			{"validity in another zone", func(in *signInput) {
				in.ValidityDate = parseSignNow.Add(45 * time.Second).In(time.FixedZone("EET", 2*3600))
			}, func(r *signRequest) { r.TimeOut = 45 * time.Second }},
		})
	})
}

func TestParseSignLimits(t *testing.T) {
	in := baseSignInput()
	in.DTBS.Value = strings.Repeat("a", 1025)
	in.DTBD = &etsi.Data{Value: "Sign?"}
	_, err := parseSign(in, parseSignNow, Limits{})
	checkFault(t, nil, err, etsi.CodeWrongDataLength, 0)

	in.DTBS.Value = strings.Repeat("a", 20)
	_, err = parseSign(in, parseSignNow, Limits{MaxTextBytes: 16})
	checkFault(t, nil, err, etsi.CodeWrongDataLength, 0)

	in = baseSignInput()
	r, err := parseSign(in, parseSignNow, Limits{DefaultTimeOut: time.Minute, MaxTimeOut: 2 * time.Minute})
	if err != nil || r.TimeOut != time.Minute {
		t.Errorf("parseSign() with a 1 min default = %v, %v, want TimeOut 1m0s", r, err)
	}
	in.TimeOut = 121
	_, err = parseSign(in, parseSignNow, Limits{MaxTimeOut: 2 * time.Minute})
	checkFault(t, nil, err, etsi.CodeWrongParam, 0)

	// A default above the maximum is capped by it.
	in.TimeOut = 0
	r, err = parseSign(in, parseSignNow, Limits{DefaultTimeOut: time.Hour, MaxTimeOut: 2 * time.Minute})
	if err != nil || r.TimeOut != 2*time.Minute {
		t.Errorf("parseSign() with default 1h, max 2m = %v, %v, want TimeOut 2m0s", r, err)
	}
	if diff := cmp.Diff(DefaultLimits(), Limits{}.withDefaults()); diff != "" {
		t.Errorf("zero Limits differ from DefaultLimits (-want +got):\n%s", diff)
	}
}

// TestParseSignOrder checks that the first failing check in the documented
// order is the one reported.
func TestParseSignOrder(t *testing.T) {
	steps := []faultCase{
		{"MSISDN", func(in *signInput) { in.MSISDN = "" }, etsi.CodeMissingParam, 0},
		{"MessagingMode", func(in *signInput) { in.Mode = "bad" }, etsi.CodeWrongParam, 1013},
		{"TimeOut", func(in *signInput) { in.TimeOut = 1 }, etsi.CodeWrongParam, 0},
		{"SignatureProfile", func(in *signInput) { in.Profile = "urn:unknown" }, etsi.CodeUnsupportedProfile, 0},
		{"MSS_Format", func(in *signInput) { in.Format = "urn:unknown" }, etsi.CodeWrongParam, 1017},
		{"DataToBeSigned", func(in *signInput) { in.DTBS.Value = "" }, etsi.CodeMissingParam, 1022},
		{"DataToBeDisplayed", func(in *signInput) { in.DTBD = &etsi.Data{} }, etsi.CodeMissingParam, 1021},
		{"AdditionalServices", func(in *signInput) { in.Services = []serviceInput{{URI: "urn:unknown"}} }, etsi.CodeWrongParam, 1014},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			in := baseSignInput()
			for _, later := range steps[i:] {
				later.mod(in)
			}
			got, err := parseSign(in, parseSignNow, DefaultLimits())
			checkFault(t, got, err, s.code, s.detail)
		})
	}
}

func TestParseSignFullRequest(t *testing.T) {
	sum := sha512.Sum384([]byte("contract.pdf"))
	in := &signInput{
		MSISDN:     "37255512345",
		DTBS:       etsi.Data{MimeType: "application/octet-stream", Encoding: "base64", Value: b64(digestInfo(t, oidSHA384, false, sum[:]))},
		DTBD:       &etsi.Data{MimeType: "text/plain", Encoding: "utf-8", Value: "Allkirjasta leping nr 42 – 1200 €?"},
		Profile:    "http://mss.ficom.fi/TS102206/v1.0.0/digestive-signature-profile.xml",
		Comparison: "minimum",
		Format:     "http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature",
		Services: []serviceInput{
			{URI: serviceUserLang, UserLang: "ET"},
			{URI: serviceTimestamp},
			{URI: serviceValidate},
			{URI: serviceEventID, EventID: "X7Q2"},
			{URI: serviceNoSpam, NoSpamCode: "kass", NoSpamVerify: "yes"},
		},
		TimeOut:      120,
		ValidityDate: parseSignNow.Add(100 * time.Second),
		Mode:         etsi.AsynchServerServer,
		APURL:        "https://ap.example/mss",
	}
	got, err := parseSign(in, parseSignNow, DefaultLimits())
	if err != nil {
		t.Fatalf("parseSign() error = %v", err)
	}
	want := &signRequest{
		MSISDN:       "+37255512345",
		Profile:      mustProfile(t, profileSign),
		Format:       FormatCMS,
		FormatURI:    "http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature",
		Digest:       sum[:],
		Hash:         crypto.SHA384,
		Display:      "Allkirjasta leping nr 42 – 1200 €?",
		EventID:      "X7Q2",
		NoSpam:       "kass",
		NoSpamVerify: true,
		UserLang:     "et",
		Validate:     true,
		Timestamp:    true,
		TimeOut:      100 * time.Second,
		Mode:         etsi.AsynchServerServer,
		APURL:        "https://ap.example/mss",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSign() mismatch (-want +got):\n%s", diff)
	}
	if got.Profile.Key != vmac.KeySign {
		t.Errorf("digestive signature profile key = %v, want %v", got.Profile.Key, vmac.KeySign)
	}
}

func TestFaultDetailIsBounded(t *testing.T) {
	in := baseSignInput()
	in.Profile = strings.Repeat("€", 10000)
	_, err := parseSign(in, parseSignNow, DefaultLimits())
	f, ok := err.(*etsi.Fault)
	if !ok || f.Code != etsi.CodeUnsupportedProfile {
		t.Fatalf("parseSign(long profile) error = %v, want fault 109", err)
	}
	if len(f.Detail) > 200 {
		t.Errorf("fault detail is %d bytes, want it cut short: %q", len(f.Detail), f.Detail)
	}
	// strconv.Quote escapes the bytes of a character cut in half.
	if strings.Contains(f.Detail, `\x`) {
		t.Errorf("fault detail %q splits a character", f.Detail)
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"exact", `"exact"`},
		{"a\x00\xffb", `"a\x00\xffb"`},
		{strings.Repeat("a", 62), `"` + strings.Repeat("a", 62) + `"`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 63) + `"…`},
		{strings.Repeat("€", 30), `"` + strings.Repeat("€", 21) + `"…`},
		{strings.Repeat("\xee", 30), `"` + strings.Repeat(`\xee`, 15) + `"…`},
	} {
		if got := quote(tc.in); got != tc.want {
			t.Errorf("quote(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestProfileRegistry(t *testing.T) {
	seen := map[string]bool{}
	ps := Profiles()
	if len(ps) == 0 || ps[0].URI != defaultProfile {
		t.Fatalf("Profiles()[0] is not the default %s", defaultProfile)
	}
	for _, p := range ps {
		u, ok := parseMSSURI(p.URI)
		if !ok || u.brand != profileBrand || u.loa != p.LoA {
			t.Errorf("profile %s: parseMSSURI = %+v, %v; want brand %s and LoA %d", p.URI, u, ok, profileBrand, p.LoA)
		}
		if p.Name == "" || (p.Key != vmac.KeyAuth && p.Key != vmac.KeySign) {
			t.Errorf("profile %s: name %q, key %v", p.URI, p.Name, p.Key)
		}
		for _, uri := range append([]string{p.URI}, p.Aliases...) {
			if seen[uri] {
				t.Errorf("URI %s is registered twice", uri)
			}
			seen[uri] = true
			got, ok := LookupProfile(uri)
			if !ok || got.URI != p.URI {
				t.Errorf("LookupProfile(%q) = %v, %v, want %s", uri, got, ok, p.URI)
			}
		}
	}
	wantKeys := map[string]vmac.KeyRef{profileAuthn: vmac.KeyAuth, profileSign: vmac.KeySign, profileConsent: vmac.KeySign}
	for uri, k := range wantKeys {
		if p := mustProfile(t, uri); p.Key != k {
			t.Errorf("LookupProfile(%q).Key = %v, want %v", uri, p.Key, k)
		}
	}
	if _, ok := LookupProfile("http://example.com/"); ok {
		t.Errorf("LookupProfile(unknown) found a profile")
	}

	// The results are copies: changing them must not change the registry.
	ps[0].URI, ps[0].Aliases[0] = "changed", "changed"
	p, _ := LookupProfile(profileAuthn)
	p.LoA, p.Aliases[1] = 1, "changed"
	again := Profiles()[0]
	if again.URI != profileAuthn || again.LoA != 3 || slices.Contains(again.Aliases, "changed") {
		t.Errorf("the registry changed through a returned profile: %+v", again)
	}
}

func TestParseMSSURI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mssURI
		ok   bool
	}{
		{"mss:ficom.fi:authn:loa4:UICC#rsa&2048", mssURI{"ficom.fi", "authn", "UICC", 4}, true},
		{"MSS:b:op:LOA1:x", mssURI{"b", "op", "x", 1}, true},
		{"mss:b:op:loa0:x", mssURI{}, false},
		{"mss:b:op:loa10:x", mssURI{}, false},
		{"mss:b:op:loa+3:x", mssURI{}, false},
		{"mss:b:op:level3:x", mssURI{}, false},
		{"mss:b:op:loa3", mssURI{}, false},
		{"mss:b:op:loa3:x:y", mssURI{}, false},
		{"mss::op:loa3:x", mssURI{}, false},
		{"mss:b:op:loa3:", mssURI{}, false},
		{"http://b/op", mssURI{}, false},
		{"", mssURI{}, false},
	} {
		got, ok := parseMSSURI(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseMSSURI(%q) = %+v, %v, want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestProfilesDoc checks that the integrators' documentation names every
// URI the MSSP accepts.
func TestProfilesDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "mssp-profiles.md"))
	if err != nil {
		t.Fatalf("read the profile documentation: %v", err)
	}
	var uris []string
	for _, p := range Profiles() {
		uris = append(uris, p.URI)
		uris = append(uris, p.Aliases...)
	}
	for _, f := range formatURIs {
		uris = append(uris, f.uri)
	}
	uris = append(uris, serviceURIs[:]...)
	for _, uri := range uris {
		if !bytes.Contains(doc, []byte("`"+uri+"`")) {
			t.Errorf("docs/mssp-profiles.md does not list %s", uri)
		}
	}
	for _, l := range userLangs {
		if !bytes.Contains(doc, []byte("`"+l+"`")) {
			t.Errorf("docs/mssp-profiles.md does not list the user language %s", l)
		}
	}
}
