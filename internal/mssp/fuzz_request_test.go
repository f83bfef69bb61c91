package mssp

import (
	"crypto"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"mobileid/internal/etsi"
	"mobileid/internal/sms"
	"mobileid/internal/vmac"
)

// FuzzParseSign feeds arbitrary data, display text, profile and format to
// parseSign. It must never panic, must return exactly one of a request and
// a *etsi.Fault, and an accepted request must be one the SIGN command can
// carry.
func FuzzParseSign(f *testing.F) {
	type seed struct {
		dtbsMime, dtbsEnc, dtbs     string
		hasDTBD                     bool
		dtbdMime, dtbdEnc, dtbd     string
		profile, comparison, format string
	}
	for _, s := range []seed{
		{"text/plain", "UTF-8", "Log in?", false, "", "", "", "", "", ""},
		{"application/x-sha256", "base64", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", true, "text/plain", "UTF-8", "Sign?", profileSign, "", formatPKCS7},
		{"application/octet-stream", "base64", "MDEwDQYJYIZIAWUDBAIBBQAEIJ+G0IGITH1lmi/qoMVa0BWjv08bKwuCLNFdbBWw8AoI", true, "", "", "Пожалуйста подпишите", "http://alauda.mobi/nonRepudiation", "minimum", "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1"},
		{"application/x-sha512", "", "AAAA", true, "", "", "€€€", "mss:mobileid.dev:sign:loa1:UICC", "better", ""},
		{"application/x-sha1", "base64", "", false, "", "", "", "mss:mobileid.dev:consent:loa4:UICC", "maximum", "x"},
		{"", "", " \n", false, "", "", "", profileConsent, "exact", ""},
		{"text/plain", "utf-8", "OK 👍", true, "text/html", "", "\xff", "mss:", "lesser", ""},
		{"", "\"0\x93\x86" + strings.Repeat("\xee", 80), "x", true, strings.Repeat("\x80", 100), strings.Repeat("\x00", 100), "y", "", "", ""},
	} {
		f.Add(s.dtbsMime, s.dtbsEnc, s.dtbs, s.hasDTBD, s.dtbdMime, s.dtbdEnc, s.dtbd, s.profile, s.comparison, s.format)
	}
	lim := DefaultLimits()
	f.Fuzz(func(t *testing.T, dtbsMime, dtbsEnc, dtbs string, hasDTBD bool, dtbdMime, dtbdEnc, dtbd, profile, comparison, format string) {
		in := baseSignInput()
		in.DTBS = etsi.Data{MimeType: dtbsMime, Encoding: dtbsEnc, Value: dtbs}
		if hasDTBD {
			in.DTBD = &etsi.Data{MimeType: dtbdMime, Encoding: dtbdEnc, Value: dtbd}
		}
		in.Profile, in.Comparison, in.Format = profile, comparison, format
		r, err := parseSign(in, parseSignNow, lim)
		if err != nil {
			var fault *etsi.Fault
			if !errors.As(err, &fault) {
				t.Fatalf("parseSign() error = %v (%T), want *etsi.Fault", err, err)
			}
			if r != nil {
				t.Fatalf("parseSign() = %+v with fault %v", r, err)
			}
			if !fault.Code.Known() || !fault.Code.IsFault() {
				t.Fatalf("parseSign() fault code %d is not a known fault", fault.Code)
			}
			if !utf8.ValidString(fault.Detail) || len(fault.Detail) > 300 {
				t.Fatalf("parseSign() fault detail %q is not short valid UTF-8", fault.Detail)
			}
			return
		}
		if r == nil {
			t.Fatal("parseSign() = nil, nil")
		}
		if r.Profile == nil || r.Format == 0 || r.FormatURI == "" {
			t.Fatalf("parseSign() = %+v: profile or format missing", r)
		}
		if (r.Text == nil) == (r.Digest == nil) {
			t.Fatalf("parseSign() = %+v: want exactly one of Text and Digest", r)
		}
		switch r.Hash {
		case crypto.SHA256, crypto.SHA384, crypto.SHA512:
		default:
			t.Fatalf("parseSign() hash = %v", r.Hash)
		}
		if r.Digest != nil && len(r.Digest) != r.Hash.Size() {
			t.Fatalf("parseSign() digest of %d bytes for %v", len(r.Digest), r.Hash)
		}
		if len(r.Text) > lim.MaxTextBytes {
			t.Fatalf("parseSign() text of %d bytes", len(r.Text))
		}
		if r.Display == "" {
			t.Fatal("parseSign() accepted a request with nothing to display")
		}
		if n, ok := sms.GSM7Len(r.Display); ok && n > lim.DisplaySeptets {
			t.Fatalf("parseSign() display of %d septets", n)
		}
		// The SIGN command the MSSP builds from the request must encode.
		sign := &vmac.Sign{Ref: 1, Key: r.Profile.Key, DisplayText: r.Display, Digest: r.Digest, Data: r.Text}
		switch r.Hash {
		case crypto.SHA256:
			sign.Hash = vmac.HashSHA256
		case crypto.SHA384:
			sign.Hash = vmac.HashSHA384
		case crypto.SHA512:
			sign.Hash = vmac.HashSHA512
		}
		if _, err := vmac.MarshalCommand(sign); err != nil {
			t.Fatalf("parseSign() = %+v, but its SIGN command does not encode: %v", r, err)
		}
	})
}
