package mssp

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"mobileid/internal/etsi"
	"mobileid/internal/sms"
)

// signInput is what parseSign needs from an MSS_SignatureReq.
type signInput struct {
	MSISDN       string
	DTBS         etsi.Data
	DTBD         *etsi.Data
	Profile      string // SignatureProfile URI, "" = default
	Comparison   string // SignatureProfileComparison: "", "exact", "minimum", "better", "maximum"
	Format       string // MSS_Format URI, "" = default
	Services     []serviceInput
	TimeOut      int       // seconds, 0 = default
	ValidityDate time.Time // zero = none
	Mode         etsi.MessagingMode
	APURL        string
}

// serviceInput is one AdditionalServices/Service entry with the parameters
// of the services we support.
type serviceInput struct {
	URI, EventID, NoSpamCode, NoSpamVerify, UserLang string
}

// signRequest is a checked and normalised MSS_SignatureReq: everything the
// MSSP needs to build a vmac.Sign and to answer the AP.
type signRequest struct {
	MSISDN    string // "+" and 8 to 15 digits
	Profile   *Profile
	Format    Format
	FormatURI string // as requested, or the ETSI PKCS7 URI by default
	// Text is the text/plain DataToBeSigned as UTF-8, nil for a digest.
	Text []byte
	// Digest is the digest to sign when the DataToBeSigned is a digest or
	// a DigestInfo, nil for text.
	Digest []byte
	// Hash is the hash of Digest, or the hash the card applies to Text.
	Hash crypto.Hash
	// Display is what the phone shows, checked to fit its screen.
	Display      string
	EventID      string
	NoSpam       string
	NoSpamVerify bool
	UserLang     string // lower-case ISO 639-1, "" = none
	Validate     bool
	Timestamp    bool
	TimeOut      time.Duration
	Mode         etsi.MessagingMode // never etsi.Asynch
	APURL        string             // set in asynchServerServer mode only
}

// Limits bounds what a signature request may ask of the phone and of the
// MSSP. A field that is zero or negative takes its value from DefaultLimits.
type Limits struct {
	// MaxTextBytes is the longest text/plain DataToBeSigned in bytes of
	// UTF-8: the card hashes at most 1024 bytes itself (VMAC SIGN).
	MaxTextBytes int
	// DisplaySeptets is the longest display text the phone shows when
	// the GSM 7-bit alphabet can carry it, counting extension characters
	// twice.
	DisplaySeptets int
	// DisplayUCS2 is the longest display text in UCS-2 characters, used
	// when GSM 7-bit cannot carry it.
	DisplayUCS2 int
	// DefaultTimeOut applies when a request gives no TimeOut.
	DefaultTimeOut time.Duration
	// MaxTimeOut is the longest TimeOut a request may give.
	MaxTimeOut time.Duration
}

// DefaultLimits returns the limits of the VMAC applet (1024 bytes of data,
// 200 septets or 100 UCS-2 characters of display text) and the FiCom
// default time-out of 5 minutes, with at most 10 minutes on request.
func DefaultLimits() Limits {
	return Limits{
		MaxTextBytes:   1024,
		DisplaySeptets: 200,
		DisplayUCS2:    100,
		DefaultTimeOut: 300 * time.Second,
		MaxTimeOut:     600 * time.Second,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = d.MaxTextBytes
	}
	if l.DisplaySeptets <= 0 {
		l.DisplaySeptets = d.DisplaySeptets
	}
	if l.DisplayUCS2 <= 0 {
		l.DisplayUCS2 = d.DisplayUCS2
	}
	if l.DefaultTimeOut <= 0 {
		l.DefaultTimeOut = d.DefaultTimeOut
	}
	if l.MaxTimeOut <= 0 {
		l.MaxTimeOut = d.MaxTimeOut
	}
	return l
}

// minTimeOut is the shortest time a user is given: less cannot cover the
// SMS round trip and a PIN entry.
const minTimeOut = 10 * time.Second

// fault returns a *etsi.Fault with a FiCom detail code (0 for none).
func fault(code etsi.Code, detailCode int, format string, args ...any) *etsi.Fault {
	return faultDetail(code, detailCode, format, args...)
}

// detailCodeOf returns the FiCom detail code of a fault, or 0.
func detailCodeOf(err error) int {
	var f *etsi.Fault
	if !errors.As(err, &f) {
		return 0
	}
	return f.DetailCode
}

// quote returns s quoted for a fault detail, cut to about 64 bytes so that
// a hostile request cannot inflate the answer. Invalid UTF-8 is escaped
// byte by byte, as strconv.Quote does.
func quote(s string) string {
	const max = 64
	b := []byte{'"'}
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		q := strconv.Quote(s[i : i+n])
		q = q[1 : len(q)-1]
		if len(b)+len(q) > max {
			return string(b) + `"…`
		}
		b = append(b, q...)
		i += n
	}
	return string(append(b, '"'))
}

// parseSign checks an MSS_SignatureReq and normalises it. now is the
// current time, against which ValidityDate is measured. The error is always
// a *etsi.Fault; the checks run in a fixed order (MSISDN, messaging mode,
// time-out, profile, format, data to be signed, display text, additional
// services) and the first failure is reported.
func parseSign(in *signInput, now time.Time, lim Limits) (*signRequest, error) {
	lim = lim.withDefaults()
	r := new(signRequest)
	var err error
	if r.MSISDN, err = parseMSISDN(in.MSISDN); err != nil {
		return nil, err
	}
	if err := parseMode(in, r); err != nil {
		return nil, err
	}
	if r.TimeOut, err = parseTimeOut(in.TimeOut, in.ValidityDate, now, lim); err != nil {
		return nil, err
	}
	if r.Profile, err = resolveProfile(in.Profile, in.Comparison); err != nil {
		return nil, err
	}
	if r.Format, r.FormatURI, err = parseFormat(in.Format); err != nil {
		return nil, err
	}
	if err := parseDTBS(&in.DTBS, lim, r); err != nil {
		return nil, err
	}
	if err := parseDisplay(in.DTBD, lim, r); err != nil {
		return nil, err
	}
	if err := parseServices(in.Services, r); err != nil {
		return nil, err
	}
	return r, nil
}

// parseMSISDN accepts an international number with or without its "+".
// The number is personal data, so faults do not repeat it.
func parseMSISDN(s string) (string, error) {
	if s == "" {
		return "", fault(etsi.CodeMissingParam, 0, "MSISDN is missing")
	}
	d := strings.TrimPrefix(s, "+")
	if len(d) < 8 || len(d) > 15 || d[0] == '0' || strings.ContainsFunc(d, func(r rune) bool { return r < '0' || r > '9' }) {
		return "", fault(etsi.CodeUnknownClient, 1051, "malformed MSISDN: want an international number of 8 to 15 digits, optionally after a \"+\"")
	}
	return "+" + d, nil
}

func parseMode(in *signInput, r *signRequest) error {
	switch in.Mode {
	case "":
		return fault(etsi.CodeMissingParam, 0, "MessagingMode is missing")
	case etsi.Synch, etsi.AsynchClientServer:
		r.Mode = in.Mode
	case etsi.Asynch:
		r.Mode = etsi.AsynchClientServer
	case etsi.AsynchServerServer:
		if in.APURL == "" {
			return fault(etsi.CodeMissingParam, 0, "AP_URL is required in asynchServerServer mode")
		}
		u, err := url.Parse(in.APURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
			return fault(etsi.CodeWrongParam, 0, "AP_URL must be an absolute http or https URL without user information or fragment")
		}
		r.Mode, r.APURL = in.Mode, in.APURL
	default:
		return fault(etsi.CodeWrongParam, 1013, "MessagingMode %s is not supported", quote(string(in.Mode)))
	}
	return nil
}

// parseTimeOut returns how long the user has: TimeOut seconds (the default
// if 0), cut short by ValidityDate.
func parseTimeOut(secs int, validity, now time.Time, lim Limits) (time.Duration, error) {
	d := min(lim.DefaultTimeOut, lim.MaxTimeOut)
	if secs != 0 {
		maxSecs := int(lim.MaxTimeOut / time.Second)
		switch {
		case secs < int(minTimeOut/time.Second):
			return 0, fault(etsi.CodeWrongParam, 0, "TimeOut %d s is below the minimum of %d s", secs, int(minTimeOut/time.Second))
		case secs > maxSecs:
			return 0, fault(etsi.CodeWrongParam, 0, "TimeOut %d s exceeds the maximum of %d s", secs, maxSecs)
		}
		d = time.Duration(secs) * time.Second
	}
	if !validity.IsZero() {
		left := validity.Sub(now)
		switch {
		case left <= 0:
			return 0, fault(etsi.CodeWrongParam, 0, "ValidityDate %s is in the past", validity.UTC().Format(time.RFC3339))
		case left < minTimeOut:
			return 0, fault(etsi.CodeWrongParam, 0, "ValidityDate %s leaves less than the minimum of %d s", validity.UTC().Format(time.RFC3339), int(minTimeOut/time.Second))
		}
		d = min(d, left)
	}
	return d, nil
}

// Media types and encodings of DataType.
const (
	mimeText        = "text/plain"
	mimeOctetStream = "application/octet-stream"
	mimeSHA1        = "application/x-sha1"
	encodingUTF8    = "UTF-8"
	encodingBase64  = "base64"
)

// digestMimeTypes are the MimeTypes of a bare digest.
var digestMimeTypes = [...]struct {
	mime string
	hash crypto.Hash
}{
	{"application/x-sha256", crypto.SHA256},
	{"application/x-sha384", crypto.SHA384},
	{"application/x-sha512", crypto.SHA512},
}

// digestInfoPrefixes are the DER encodings of DigestInfo up to the digest,
// with the NULL parameters and without. DER has one encoding per value, so
// comparing bytes is a complete parse (as crypto/rsa does).
var digestInfoPrefixes = [...]struct {
	prefix []byte
	hash   crypto.Hash
}{
	{[]byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}, crypto.SHA256},
	{[]byte{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30}, crypto.SHA384},
	{[]byte{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40}, crypto.SHA512},
	{[]byte{0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20}, crypto.SHA256},
	{[]byte{0x30, 0x3f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x04, 0x30}, crypto.SHA384},
	{[]byte{0x30, 0x4f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x04, 0x40}, crypto.SHA512},
}

// parseDigestInfo returns the hash and digest of a DER DigestInfo.
func parseDigestInfo(der []byte) (crypto.Hash, []byte, bool) {
	for _, p := range digestInfoPrefixes {
		if len(der) == len(p.prefix)+p.hash.Size() && bytes.HasPrefix(der, p.prefix) {
			return p.hash, der[len(p.prefix):], true
		}
	}
	return 0, nil, false
}

// isText reports whether a DataType is text/plain in UTF-8, the defaults
// of an absent MimeType and Encoding.
func isText(d *etsi.Data) (mimeOK, encodingOK bool) {
	mimeOK = d.MimeType == "" || strings.EqualFold(d.MimeType, mimeText)
	encodingOK = d.Encoding == "" || strings.EqualFold(d.Encoding, encodingUTF8)
	return mimeOK, encodingOK
}

func parseDTBS(d *etsi.Data, lim Limits, r *signRequest) error {
	if d.Value == "" {
		return fault(etsi.CodeMissingParam, 1022, "DataToBeSigned is missing")
	}
	if mimeOK, encOK := isText(d); mimeOK {
		if !encOK {
			return fault(etsi.CodeWrongParam, 1016, "Encoding %s is not supported with text/plain; use UTF-8", quote(d.Encoding))
		}
		if err := checkText(d.Value, "DataToBeSigned"); err != nil {
			return err
		}
		if len(d.Value) > lim.MaxTextBytes {
			return fault(etsi.CodeWrongDataLength, 0, "DataToBeSigned is %d bytes of UTF-8, limit is %d", len(d.Value), lim.MaxTextBytes)
		}
		r.Text, r.Hash = []byte(d.Value), crypto.SHA256
		return nil
	}
	var hash crypto.Hash
	switch {
	case strings.EqualFold(d.MimeType, mimeSHA1):
		return fault(etsi.CodeWrongParam, 1016, "SHA-1 is not supported; use application/x-sha256, x-sha384 or x-sha512")
	case strings.EqualFold(d.MimeType, mimeOctetStream):
	default:
		for _, m := range digestMimeTypes {
			if strings.EqualFold(d.MimeType, m.mime) {
				hash = m.hash
			}
		}
		if hash == 0 {
			return fault(etsi.CodeWrongParam, 1016, "MimeType %s is not supported", quote(d.MimeType))
		}
	}
	if d.Encoding != "" && !strings.EqualFold(d.Encoding, encodingBase64) {
		return fault(etsi.CodeWrongParam, 1016, "Encoding %s is not supported with %s; use base64", quote(d.Encoding), d.MimeType)
	}
	b, err := decodeBase64(d.Value)
	if err != nil {
		return fault(etsi.CodeWrongParam, 0, "DataToBeSigned is not valid base64")
	}
	if hash == 0 {
		h, digest, ok := parseDigestInfo(b)
		if !ok {
			return fault(etsi.CodeWrongParam, 1016, "application/octet-stream DataToBeSigned must be a DER DigestInfo of SHA-256, SHA-384 or SHA-512")
		}
		r.Digest, r.Hash = digest, h
		return nil
	}
	if len(b) != hash.Size() {
		return fault(etsi.CodeWrongDataLength, 0, "DataToBeSigned is %d bytes, a %s digest is %d", len(b), hash, hash.Size())
	}
	r.Digest, r.Hash = b, hash
	return nil
}

// decodeBase64 decodes standard base64 with padding, ignoring white space,
// which XML producers insert to wrap lines.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
	return base64.StdEncoding.Strict().DecodeString(s)
}

// checkText rejects text the phone cannot show faithfully: invalid UTF-8
// and control characters, of which only the line feed is allowed.
func checkText(s, field string) error {
	if !utf8.ValidString(s) {
		return fault(etsi.CodeWrongParam, 0, "%s is not valid UTF-8", field)
	}
	for i, c := range s {
		if c != '\n' && unicode.IsControl(c) {
			return fault(etsi.CodeWrongParam, 0, "%s contains the control character %U at byte %d; only line feeds are allowed", field, c, i)
		}
	}
	return nil
}

// parseDisplay chooses the display text and checks that the phone can show
// it, with the rule vmac uses to pick the coding: GSM 7-bit whenever the
// default alphabet and its extension table carry the whole text, else UCS-2.
func parseDisplay(dtbd *etsi.Data, lim Limits, r *signRequest) error {
	var s string
	switch {
	case dtbd != nil:
		if dtbd.Value == "" {
			return fault(etsi.CodeMissingParam, 1021, "DataToBeDisplayed is empty")
		}
		if mimeOK, encOK := isText(dtbd); !mimeOK || !encOK {
			return fault(etsi.CodeWrongParam, 1016, "DataToBeDisplayed must be text/plain in UTF-8, not %s in %s", quote(dtbd.MimeType), quote(dtbd.Encoding))
		}
		if err := checkText(dtbd.Value, "DataToBeDisplayed"); err != nil {
			return err
		}
		s = dtbd.Value
	case r.Text != nil:
		s = string(r.Text)
	default:
		return fault(etsi.CodeMissingParam, 1021, "DataToBeDisplayed is required with a digest")
	}
	if n, ok := sms.GSM7Len(s); ok {
		if n > lim.DisplaySeptets {
			return fault(etsi.CodeWrongDataLength, 0, "display text needs %d GSM 7-bit septets, limit is %d", n, lim.DisplaySeptets)
		}
	} else {
		n := 0
		for _, c := range s {
			if c > 0xFFFF {
				return fault(etsi.CodeWrongParam, 0, "display text contains %U, which is outside the Basic Multilingual Plane and cannot be shown", c)
			}
			n++
		}
		if n > lim.DisplayUCS2 {
			return fault(etsi.CodeWrongDataLength, 0, "display text needs %d UCS-2 characters, limit is %d", n, lim.DisplayUCS2)
		}
	}
	if r.Profile.operation() == operationConsent && strings.TrimSpace(s) == "" {
		return fault(etsi.CodeMissingParam, 1021, "the consent profile requires a text to display")
	}
	r.Display = s
	return nil
}

func parseServices(services []serviceInput, r *signRequest) error {
	seen := make(map[string]bool, len(services))
	for _, s := range services {
		if s.URI == "" {
			return fault(etsi.CodeMissingParam, 0, "AdditionalService Description is missing")
		}
		if seen[s.URI] {
			return fault(etsi.CodeWrongParam, 0, "AdditionalService %s is requested twice", quote(s.URI))
		}
		seen[s.URI] = true
		switch s.URI {
		case serviceValidate:
			r.Validate = true
		case serviceTimestamp:
			if r.Format != FormatCMS {
				return fault(etsi.CodeWrongParam, 1014, "the timestamp service needs a CMS signature, not %s", r.Format)
			}
			r.Timestamp = true
		case serviceEventID:
			if !validEventID(s.EventID) {
				return fault(etsi.CodeWrongParam, 0, "EventID must be 4 to 8 ASCII letters and digits")
			}
			r.EventID = s.EventID
		case serviceNoSpam:
			if s.NoSpamCode == "" {
				return fault(etsi.CodeWrongParam, 1012, "NoSpamCode is missing")
			}
			if !validNoSpamCode(s.NoSpamCode) {
				return fault(etsi.CodeWrongParam, 1011, "NoSpamCode must be 3 to 16 letters and digits, the first a letter")
			}
			switch s.NoSpamVerify {
			case "", "yes":
				r.NoSpamVerify = true
			case "no":
			default:
				return fault(etsi.CodeWrongParam, 1011, "NoSpamCode verify must be \"yes\" or \"no\", not %s", quote(s.NoSpamVerify))
			}
			r.NoSpam = s.NoSpamCode
		case serviceUserLang:
			l := strings.ToLower(s.UserLang)
			if len(s.UserLang) != 2 || !slices.Contains(userLangs[:], l) {
				return fault(etsi.CodeWrongParam, 0, "UserLang %s is not supported; use one of %s", quote(s.UserLang), strings.Join(userLangs[:], ", "))
			}
			r.UserLang = l
		default:
			return fault(etsi.CodeWrongParam, 1014, "AdditionalService %s is not supported", quote(s.URI))
		}
	}
	return nil
}

// validEventID reports whether s is a FiCom EventID: 4 to 8 ASCII letters
// and digits, shown on both the AP's screen and the phone.
func validEventID(s string) bool {
	if len(s) < 4 || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// validNoSpamCode reports whether s is a FiCom NoSpamCode: 3 to 16
// characters, the first a letter. We also insist on letters and digits of
// the Basic Multilingual Plane so that the phone can show the code.
func validNoSpamCode(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	n := 0
	for i, c := range s {
		if c > 0xFFFF || !unicode.IsLetter(c) && !(i > 0 && unicode.IsDigit(c)) {
			return false
		}
		n++
	}
	return n >= 3 && n <= 16
}
