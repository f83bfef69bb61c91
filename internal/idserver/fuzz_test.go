package idserver

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseSession checks that any body either fails with a 400 or gives
// a request that keeps every rule: a hash of its type's length, a known
// language, and a display text within its format's limits.
func FuzzParseSession(f *testing.F) {
	b, _ := json.Marshal(validBody())
	f.Add(b)
	f.Add([]byte(`{"relyingPartyUUID":"00000000-0000-0000-0000-000000000000","relyingPartyName":"DEMO","phoneNumber":"+3726234566",` +
		`"nationalIdentityNumber":"38412319871","hash":"0nbgC2fVdLVQFZJdBbmG7oPoElpCYsQMtrY0c0wKYRg=","hashType":"SHA256",` +
		`"language":"ENG","displayText":"This is display text.","displayTextFormat":"GSM-7"}`))
	f.Add([]byte(`{"displayText":"\u0000€€€€€€"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseSession(body)
		if err != nil {
			if err.status != http.StatusBadRequest || err.msg == "" {
				t.Fatalf("parseSession error %v, want a 400 with a message", err)
			}
			return
		}
		if len(r.Hash) != hashTypes[r.HashType].hash.Size() {
			t.Fatalf("hash of %d bytes for %s", len(r.Hash), r.HashType)
		}
		if _, ok := languages[r.Language]; !ok || !validUUID(r.UUID) || !phonePattern.MatchString(r.Phone) {
			t.Fatalf("accepted %+v", r)
		}
		if !utf8.ValidString(r.DisplayText) {
			t.Fatalf("display text %q is not UTF-8", r.DisplayText)
		}
		for _, c := range r.DisplayText {
			if isControl(c) {
				t.Fatalf("display text %q has a control character", r.DisplayText)
			}
		}
		switch r.DisplayFormat {
		case FormatGSM7:
			if _, n, ext := gsm7Text(r.DisplayText); n > maxGSM7Chars || ext > maxGSM7Ext {
				t.Fatalf("GSM-7 display text %q too long", r.DisplayText)
			}
		case FormatUCS2:
			if n := utf8.RuneCountInString(r.DisplayText); n > maxUCS2Chars {
				t.Fatalf("UCS-2 display text of %d characters", n)
			}
		default:
			t.Fatalf("format %q", r.DisplayFormat)
		}
	})
}

// FuzzParseCertificate checks the certificate request decoder the same
// way.
func FuzzParseCertificate(f *testing.F) {
	f.Add([]byte(`{"relyingPartyUUID":"de305d54-75b4-431b-adb2-eb6b9e546014","relyingPartyName":"BANK123","phoneNumber":"+3726234566","nationalIdentityNumber":"38412319871"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseCertificate(body)
		if err != nil {
			if err.status != http.StatusBadRequest || err.msg == "" {
				t.Fatalf("parseCertificate error %v, want a 400 with a message", err)
			}
			return
		}
		if !validUUID(r.UUID) || r.RPName == "" || !phonePattern.MatchString(r.Phone) || !nationalIDPattern.MatchString(r.NationalID) {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzBindingMessage checks that a CIBA binding message is taken only as
// the phone will show it, within the display text limits.
func FuzzBindingMessage(f *testing.F) {
	for _, s := range []string{"Call 4711: log in", "Kõne 4711", "Привет", "", "a\x07b", "😀", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text, format, ok := bindingMessage(s)
		if !ok {
			return
		}
		if text != s || strings.ContainsFunc(s, isControl) || !utf8.ValidString(s) {
			t.Fatalf("bindingMessage(%q) accepted %q", s, text)
		}
		if out, err := displayText(s, format); err != nil || out != s {
			t.Fatalf("bindingMessage(%q) = %s, but displayText says %q, %v", s, format, out, err)
		}
	})
}

// FuzzMIDLanguage checks that any ui_locales gives a language the phone
// can be asked in.
func FuzzMIDLanguage(f *testing.F) {
	f.Add("et-EE en")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if _, ok := languages[midLanguage(s)]; !ok {
			t.Fatalf("midLanguage(%q) = %q", s, midLanguage(s))
		}
	})
}
