// This file decodes and checks the bodies of the MID REST requests, with
// the same field names, rules and error texts as SK's service.

package idserver

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode/utf16"

	"mobileid/internal/sms"
)

// Display text limits of MID: 100 GSM-7 characters, at most 5 of them from
// the extension table, or 50 UCS-2 characters.
const (
	maxGSM7Chars = 100
	maxGSM7Ext   = 5
	maxUCS2Chars = 50
)

// Display text formats.
const (
	FormatGSM7 = "GSM-7"
	FormatUCS2 = "UCS-2"
)

// Session kinds, which are also the path segments of the API.
const (
	KindAuthentication = "authentication"
	KindSignature      = "signature"
)

// maxBody bounds a request body. The largest valid request (a SHA-512
// hash and a 50-character UCS-2 text escaped as \uXXXX) is under 1 KiB.
const maxBody = 16 << 10

// apiError is an answer other than 200: the HTTP status and the error
// message of the MID error JSON.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

func badRequest(format string, args ...any) *apiError {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// errUnauthorized is MID's answer to an unknown RP, a wrong name, an
// address outside the allow-list and a service the RP may not use alike,
// so that a caller cannot tell which.
var errUnauthorized = &apiError{http.StatusUnauthorized, "Failed to authorize user"}

var (
	phonePattern      = regexp.MustCompile(`^\+[1-9][0-9]{7,14}$`)
	nationalIDPattern = regexp.MustCompile(`^[0-9A-Za-z]{4,20}$`)
)

// languages maps MID's languages to the ISO 639-1 codes of FiCom's
// UserLang.
var languages = map[string]string{"EST": "et", "ENG": "en", "RUS": "ru", "LIT": "lt"}

// hashTypes maps MID's hashType to the hash and the DataToBeSigned MIME
// type that carries such a digest to the MSSP.
var hashTypes = map[string]struct {
	hash crypto.Hash
	mime string
}{
	"SHA256": {crypto.SHA256, "application/x-sha256"},
	"SHA384": {crypto.SHA384, "application/x-sha384"},
	"SHA512": {crypto.SHA512, "application/x-sha512"},
}

// certificateBody is the body of POST /certificate.
type certificateBody struct {
	RelyingPartyUUID       string `json:"relyingPartyUUID"`
	RelyingPartyName       string `json:"relyingPartyName"`
	PhoneNumber            string `json:"phoneNumber"`
	NationalIdentityNumber string `json:"nationalIdentityNumber"`
}

// sessionBody is the body of POST /authentication and /signature.
type sessionBody struct {
	certificateBody
	Hash              string `json:"hash"`
	HashType          string `json:"hashType"`
	Language          string `json:"language"`
	DisplayText       string `json:"displayText"`
	DisplayTextFormat string `json:"displayTextFormat"`
}

// identRequest is a checked certificate request, and the part of a
// session request that names the RP and the person.
type identRequest struct {
	UUID, RPName, Phone, NationalID string
}

// sessionRequest is a checked authentication or signature request.
type sessionRequest struct {
	identRequest
	Hash          []byte
	HashType      string // SHA256, SHA384 or SHA512
	Language      string // EST, ENG, RUS or LIT
	DisplayText   string // as it will be shown: GSM-7 replacements done
	DisplayFormat string // GSM-7 or UCS-2
}

// decodeJSON decodes one JSON object into v. Unknown fields are ignored:
// MID adds request fields over time, and a client written for a newer
// version must still work.
func decodeJSON(body []byte, v any) *apiError {
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return badRequest("Request body must be a JSON object")
	}
	if d.More() {
		return badRequest("Request body must be a single JSON object")
	}
	return nil
}

// parseCertificate decodes and checks the body of POST /certificate.
func parseCertificate(body []byte) (*identRequest, *apiError) {
	var b certificateBody
	if err := decodeJSON(body, &b); err != nil {
		return nil, err
	}
	return checkIdent(&b)
}

func missing(field string) *apiError { return badRequest("%s must not be null", field) }

func checkIdent(b *certificateBody) (*identRequest, *apiError) {
	switch {
	case b.RelyingPartyUUID == "":
		return nil, missing("relyingPartyUUID")
	case !validUUID(b.RelyingPartyUUID):
		return nil, badRequest("relyingPartyUUID must be a UUID in lower case")
	case b.RelyingPartyName == "":
		return nil, missing("relyingPartyName")
	case b.PhoneNumber == "":
		return nil, missing("phoneNumber")
	case !phonePattern.MatchString(b.PhoneNumber):
		return nil, badRequest("phoneNumber must be + and 8 to 15 digits")
	case b.NationalIdentityNumber == "":
		return nil, missing("nationalIdentityNumber")
	case !nationalIDPattern.MatchString(b.NationalIdentityNumber):
		return nil, badRequest("nationalIdentityNumber must be 4 to 20 letters and digits")
	}
	return &identRequest{
		UUID: b.RelyingPartyUUID, RPName: b.RelyingPartyName, Phone: b.PhoneNumber,
		NationalID: strings.ToUpper(b.NationalIdentityNumber),
	}, nil
}

// parseSession decodes and checks the body of POST /authentication and
// /signature.
func parseSession(body []byte) (*sessionRequest, *apiError) {
	var b sessionBody
	if err := decodeJSON(body, &b); err != nil {
		return nil, err
	}
	id, err := checkIdent(&b.certificateBody)
	if err != nil {
		return nil, err
	}
	r := &sessionRequest{identRequest: *id}
	if b.Hash == "" {
		return nil, missing("hash")
	}
	if b.HashType == "" {
		return nil, missing("hashType")
	}
	ht, ok := hashTypes[b.HashType]
	if !ok {
		return nil, badRequest("hashType must be SHA256, SHA384 or SHA512")
	}
	h, decErr := base64.StdEncoding.Strict().DecodeString(b.Hash)
	if decErr != nil {
		return nil, badRequest("Hash must be Base64 encoded")
	}
	if len(h) != ht.hash.Size() {
		return nil, badRequest("The length of the hash must match the type of hash")
	}
	r.Hash, r.HashType = h, b.HashType
	if b.Language == "" {
		return nil, missing("language")
	}
	if _, ok := languages[b.Language]; !ok {
		return nil, badRequest("language must be EST, ENG, RUS or LIT")
	}
	r.Language = b.Language
	format := b.DisplayTextFormat
	if format == "" {
		format = FormatGSM7
	}
	text, err := displayText(b.DisplayText, format)
	if err != nil {
		return nil, err
	}
	r.DisplayText, r.DisplayFormat = text, format
	return r, nil
}

// displayText applies MID's display text rules for format and returns the
// text as the phone will show it.
//
// GSM-7: every character outside the GSM 7-bit default alphabet and its
// extension table becomes a space, as does every control character but
// the line feed (the MSSP accepts no others); then the text may have at
// most 100 characters, at most 5 of them from the extension table.
//
// UCS-2: control characters but the line feed, and characters outside the
// Basic Multilingual Plane (which UCS-2 cannot carry), become spaces; then
// the text may have at most 50 characters.
func displayText(s, format string) (string, *apiError) {
	switch format {
	case FormatGSM7:
		out, n, ext := gsm7Text(s)
		if n > maxGSM7Chars || ext > maxGSM7Ext {
			return "", badRequest("displayText must not be longer than %d GSM-7 characters, at most %d of them from the extension table", maxGSM7Chars, maxGSM7Ext)
		}
		return out, nil
	case FormatUCS2:
		var b strings.Builder
		n := 0
		for _, r := range s {
			if isControl(r) || utf16.RuneLen(r) != 1 {
				r = ' '
			}
			b.WriteRune(r)
			n++
		}
		if n > maxUCS2Chars {
			return "", badRequest("displayText must not be longer than %d UCS-2 characters", maxUCS2Chars)
		}
		return b.String(), nil
	}
	return "", badRequest("displayTextFormat must be GSM-7 or UCS-2")
}

// gsm7Text replaces what GSM-7 cannot carry with spaces and returns the
// text, its length in characters and how many of them are from the
// extension table.
func gsm7Text(s string) (out string, n, ext int) {
	var b strings.Builder
	for _, r := range s {
		septets, ok := sms.GSM7Len(string(r))
		if !ok || isControl(r) {
			r, septets = ' ', 1
		}
		if septets == 2 {
			ext++
		}
		b.WriteRune(r)
		n++
	}
	return b.String(), n, ext
}

// isControl reports whether r is a control character other than the line
// feed. The replacement character U+FFFD, which invalid UTF-8 decodes to,
// counts as one too.
func isControl(r rune) bool {
	return r != '\n' && (r < ' ' || r >= 0x7f && r < 0xa0 || r == 0xfffd)
}
