package idserver

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/etsi"
)

func TestVerificationCode(t *testing.T) {
	vector, _ := hex.DecodeString("2f665f6a6999e0ef0752e00ec9f453adf59d8cb6")
	max := make([]byte, 32)
	for i := range max {
		max[i] = 0xff
	}
	cases := []struct {
		hash []byte
		want string
	}{
		{vector, "1462"}, // MID README §2.4.1
		{make([]byte, 32), "0000"},
		{max, "8191"},
		{append([]byte{0x03}, append(make([]byte, 30), 0x80)...), "0000"}, // only the ignored bits set
		{append([]byte{0x04}, append(make([]byte, 30), 0x01)...), "0129"},
		{make([]byte, 19), "0000"}, // too short, as SK's client
	}
	for _, c := range cases {
		if got := VerificationCode(c.hash); got != c.want {
			t.Errorf("VerificationCode(%x) = %s, want %s", c.hash, got, c.want)
		}
	}
}

func validBody() map[string]any {
	return map[string]any{
		"relyingPartyUUID": "00000000-0000-0000-0000-000000000000", "relyingPartyName": "DEMO",
		"phoneNumber": "+37200000766", "nationalIdentityNumber": "60001019906",
		"hash": "AE7S1QxYjqtVv+Tgukv2bMMi9gDCbc9ca2vy/iIG6ug=", "hashType": "SHA256",
		"language": "EST", "displayText": "войти", "displayTextFormat": "UCS-2",
	}
}

func TestParseSession(t *testing.T) {
	hash, _ := base64.StdEncoding.DecodeString("AE7S1QxYjqtVv+Tgukv2bMMi9gDCbc9ca2vy/iIG6ug=")
	b, _ := json.Marshal(validBody())
	got, err := parseSession(b)
	if err != nil {
		t.Fatalf("parseSession(SK's UCS-2 example) = %v", err)
	}
	want := &sessionRequest{
		identRequest: identRequest{UUID: "00000000-0000-0000-0000-000000000000", RPName: "DEMO", Phone: "+37200000766", NationalID: "60001019906"},
		Hash:         hash, HashType: "SHA256", Language: "EST", DisplayText: "войти", DisplayFormat: FormatUCS2,
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(sessionRequest{})); d != "" {
		t.Errorf("parseSession (-want +got):\n%s", d)
	}

	cases := []struct {
		name  string
		field string
		value any // nil deletes the field
		msg   string
	}{
		{"no UUID", "relyingPartyUUID", nil, "relyingPartyUUID must not be null"},
		{"null UUID", "relyingPartyUUID", json.RawMessage("null"), "relyingPartyUUID must not be null"},
		{"UUID not canonical", "relyingPartyUUID", "00000000000000000000000000000000", "relyingPartyUUID must be a UUID in lower case"},
		{"no name", "relyingPartyName", nil, "relyingPartyName must not be null"},
		{"no phone", "phoneNumber", nil, "phoneNumber must not be null"},
		{"phone with 00", "phoneNumber", "0037200000766", "phoneNumber must be + and 8 to 15 digits"},
		{"phone with spaces", "phoneNumber", "+372 000 00766", "phoneNumber must be + and 8 to 15 digits"},
		{"phone too short", "phoneNumber", "+3720000", "phoneNumber must be + and 8 to 15 digits"},
		{"national ID", "nationalIdentityNumber", "6000-1019906", "nationalIdentityNumber must be 4 to 20 letters and digits"},
		{"no hash", "hash", nil, "hash must not be null"},
		{"no hash type", "hashType", nil, "hashType must not be null"},
		{"hash type lower case", "hashType", "sha256", "hashType must be SHA256, SHA384 or SHA512"},
		{"hash URL alphabet", "hash", "AE7S1QxYjqtVv-Tgukv2bMMi9gDCbc9ca2vy_iIG6ug=", "Hash must be Base64 encoded"},
		{"hash without padding", "hash", "AE7S1QxYjqtVv+Tgukv2bMMi9gDCbc9ca2vy/iIG6ug", "Hash must be Base64 encoded"},
		{"hash SHA-1 length", "hash", base64.StdEncoding.EncodeToString(make([]byte, 20)), "The length of the hash must match the type of hash"},
		{"no language", "language", nil, "language must not be null"},
		{"language lower case", "language", "est", "language must be EST, ENG, RUS or LIT"},
		{"format", "displayTextFormat", "UCS2", "displayTextFormat must be GSM-7 or UCS-2"},
		{"wrong type", "hash", 12, "Request body must be a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := validBody()
			if c.value == nil {
				delete(body, c.field)
			} else {
				body[c.field] = c.value
			}
			b, _ := json.Marshal(body)
			_, err := parseSession(b)
			if err == nil || err.status != http.StatusBadRequest || err.msg != c.msg {
				t.Errorf("parseSession with %s = %v, want 400 %q", c.field, err, c.msg)
			}
		})
	}

	for _, body := range []string{"", "[]", `{"a":1} {"b":2}`, "null x"} {
		if _, err := parseSession([]byte(body)); err == nil || err.status != http.StatusBadRequest {
			t.Errorf("parseSession(%q) = %v, want 400", body, err)
		}
	}
}

func TestParseSessionIgnoresUnknownFields(t *testing.T) {
	body := validBody()
	body["certificateLevel"] = "QUALIFIED"
	b, _ := json.Marshal(body)
	if _, err := parseSession(b); err != nil {
		t.Errorf("parseSession with an unknown field = %v", err)
	}
}

func TestDisplayText(t *testing.T) {
	cases := []struct {
		in, format string
		want       string
		ok         bool
	}{
		{"Log in?", FormatGSM7, "Log in?", true},
		{"Õnne! Pay 5€", FormatGSM7, " nne! Pay 5€", true}, // Õ is not GSM-7
		{"Привет", FormatGSM7, "      ", true},             // every letter becomes a space
		{"a\tb\rc\nd", FormatGSM7, "a b c\nd", true},       // controls but LF
		{strings.Repeat("a", 100), FormatGSM7, strings.Repeat("a", 100), true},
		{strings.Repeat("a", 101), FormatGSM7, "", false},
		{strings.Repeat("ж", 101), FormatGSM7, "", false}, // counted after replacement
		{"[]{}€", FormatGSM7, "[]{}€", true},              // five from the extension table
		{"[]{}€|", FormatGSM7, "", false},                 // six
		{strings.Repeat("€", 5) + strings.Repeat("a", 95), FormatGSM7, strings.Repeat("€", 5) + strings.Repeat("a", 95), true},
		{"войти", FormatUCS2, "войти", true},
		{strings.Repeat("ž", 50), FormatUCS2, strings.Repeat("ž", 50), true},
		{strings.Repeat("ž", 51), FormatUCS2, "", false},
		{"ok 😀", FormatUCS2, "ok  ", true}, // outside the BMP
		{"", FormatGSM7, "", true},
		{"x", "UTF-8", "", false},
	}
	for _, c := range cases {
		got, err := displayText(c.in, c.format)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("displayText(%q, %s) = %q, %v; want %q, ok=%v", c.in, c.format, got, err, c.want, c.ok)
		}
	}
}

func TestPollTimeout(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 10 * time.Second},
		{"x", 10 * time.Second},
		{"0", time.Second},
		{"-5", time.Second},
		{"999", time.Second},
		{"30000", 30 * time.Second},
		{"120000", 120 * time.Second},
		{"120001", 120 * time.Second},
		{"9223372036854775807", 120 * time.Second},
	}
	for _, c := range cases {
		if got := pollTimeout(c.in); got != c.want {
			t.Errorf("pollTimeout(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestResultOf(t *testing.T) {
	cases := []struct {
		code   etsi.Code
		detail int
		want   string
	}{
		{etsi.CodeUserCancel, 4011, ResultUserCancelled},
		{etsi.CodeExpiredTransaction, 2082, ResultTimeout},
		{etsi.CodeOTAError, etsi.DetailMECommunicationError, ResultPhoneAbsent},
		{etsi.CodeOTAError, etsi.DetailOTAUnknown, ResultDeliveryError},
		{etsi.CodeOTAError, 0, ResultDeliveryError},
		{etsi.CodeInternalError, etsi.DetailSIMApplicationError, ResultSIMError},
		{etsi.CodeInternalError, 0, ""},
		{etsi.CodePINNrBlocked, 4021, ResultSIMError},
		{etsi.CodeCardBlocked, 4031, ResultSIMError},
		{etsi.CodeNoKeyFound, 4041, ResultSIMError},
		{etsi.CodeInvalidSignature, 0, ResultSignatureHashMismatch},
		{etsi.CodeUnknownClient, 1052, ResultNotMIDClient},
		{etsi.CodeNoCertFound, 0, ResultNotMIDClient},
		{etsi.CodeRevokedCertificate, 0, ResultNotMIDClient},
		{etsi.CodeWrongParam, 0, ""},
		{etsi.CodeUnauthorizedAccess, 0, ""},
		{etsi.CodePBSignatureProcess, 0, ""},
		{etsi.CodeConstraintMismatch, 0, ""},
		{etsi.CodeCRLPB, 0, ""},
	}
	for _, c := range cases {
		if got := resultOf(c.code, c.detail); got != c.want {
			t.Errorf("resultOf(%v, %d) = %q, want %q", c.code, c.detail, got, c.want)
		}
	}
}

func TestDisplayed(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"Test Bank", "Log in?", "Test Bank: Log in?"},
		{"Test Bank", "", "Test Bank"},
		{"Test Bank", "   ", "Test Bank"},
	}
	for _, c := range cases {
		if got := displayed(c.name, c.text); got != c.want {
			t.Errorf("displayed(%q, %q) = %q, want %q", c.name, c.text, got, c.want)
		}
	}
}
