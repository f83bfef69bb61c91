package vmac

import (
	"bytes"
	"crypto"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Run "go test ./internal/vmac -run Golden -update" after an intended
// change of the wire format; it rewrites testdata/*.hex and the examples in
// the spec from the values below.
var update = flag.Bool("update", false, "rewrite testdata/*.hex and the examples in docs/vmac-protocol.md")

const specPath = "../../docs/vmac-protocol.md"

// Example values shared by the golden files, the spec and the tests.
const (
	exampleICCID       = "8937201234567890123"
	exampleSignText    = "Log in to Demo Bank? Session in Tallinn."
	exampleRPName      = "Demo Bank"
	exampleVerCode     = "1462"
	exampleAuthKeyName = "VMAC example authentication key"
	exampleSignKeyName = "VMAC example signing key"
	exampleVendorName  = "VMAC Example Vendor"
)

func exampleChallenge() []byte {
	c := make([]byte, 32)
	for i := range c {
		c[i] = byte(i)
	}
	return c
}

func exampleDigest() []byte {
	return sha256Of([]byte("Demo Bank login, session 7F3A, 2026-03-14T12:00:00Z"))
}

type goldenCase struct {
	file  string
	title string
	msg   any // Command or Response
}

// goldenCases returns one example of every message, in the order of the
// spec's appendix.
func goldenCases(t testing.TB) []goldenCase {
	pki := newTestPKI(t, exampleVendorName)
	auth := fixedECKey(t, exampleAuthKeyName)
	reg := pki.register(t, 0x00001001, exampleChallenge(), exampleICCID, auth, fixedECKey(t, exampleSignKeyName))
	return []goldenCase{
		{"register_command.hex", "REGISTER: two ECDSA P-256 keys, 32-byte challenge 00..1F,\ndisplay text \"Mobile ID: choose your PINs\".", &Register{
			Ref: 0x00001001, AuthAlg: AlgECDSAP256, SignAlg: AlgECDSAP256,
			Challenge: exampleChallenge(), DisplayText: "Mobile ID: choose your PINs",
		}},
		{"register_response.hex", "REGISTER response, OK: keys, ICCID " + exampleICCID + ", attestation.\nKeys and certificate are the deterministic test values of golden_test.go.", reg},
		{"register_response_error.hex", "REGISTER response, ALREADY_REGISTERED: TxRef and status only.", &RegisterResponse{
			Ref: 0x00001001, Result: StatusAlreadyRegistered,
		}},
		{"sign_command.hex", "SIGN: authentication key, SHA-256 digest, 40-character GSM text\n\"" + exampleSignText + "\",\nRP name \"Demo Bank\", verification code 1462. This is the one-SMS size case.", &Sign{
			Ref: 0x00001002, Key: KeyAuth, Hash: HashSHA256, Digest: exampleDigest(),
			DisplayText: exampleSignText, VerificationCode: exampleVerCode, RPName: exampleRPName,
		}},
		{"sign_response.hex", "SIGN response, OK: raw ECDSA P-256 signature r‖s over the digest above.", &SignResponse{
			Ref: 0x00001002, Result: StatusOK,
			Signature: cardSign(t, auth, crypto.SHA256, exampleDigest()),
		}},
		{"sign_command_ucs2.hex", "SIGN: signing key, SHA-256 over data, UCS-2 texts\n\"Подписать договор №42?\" and RP name \"Банк Демо\".", &Sign{
			Ref: 0x00001003, Key: KeySign, Hash: HashSHA256, Data: []byte("Loan agreement 42"),
			DisplayText: "Подписать договор №42?", RPName: "Банк Демо",
		}},
		{"sign_response_pin_blocked.hex", "SIGN response, PIN_BLOCKED with 0 tries left.", &SignResponse{
			Ref: 0x00001003, Result: StatusPINBlocked, TriesLeft: ptr[uint8](0),
		}},
		{"display_command.hex", "DISPLAY: \"Your Mobile ID is ready.\", wait for the user's OK.", &Display{
			Ref: 0x00001004, Text: "Your Mobile ID is ready.", WaitForOK: true,
		}},
		{"display_response.hex", "DISPLAY response, OK.", &DisplayResponse{Ref: 0x00001004, Result: StatusOK}},
		{"info_command.hex", "INFO.", &Info{Ref: 0x00001005}},
		{"info_response.hex", "INFO response: version 1.0, registered, both keys ECDSA P-256,\nPIN1 3, PIN2 2, PUK 10 tries left.", &InfoResponse{
			Ref: 0x00001005, Result: StatusOK, VersionMajor: 1, VersionMinor: 0,
			ICCID: exampleICCID, State: StateRegistered,
			PIN1TriesLeft: 3, PIN2TriesLeft: 2, PUKTriesLeft: 10,
			AuthKeyAlg: AlgECDSAP256, SignKeyAlg: AlgECDSAP256,
		}},
		{"reset_command.hex", "RESET: erase keys and PINs.", &Reset{Ref: 0x00001006, Scope: ResetKeysAndPINs}},
		{"reset_response.hex", "RESET response, OK.", &ResetResponse{Ref: 0x00001006, Result: StatusOK}},
		{"generic_response.hex", "Generic response to an unparsable command whose TxRef was readable:\nBAD_REQUEST.", &GenericResponse{
			Ref: 0x00001007, HasRef: true, Result: StatusBadRequest,
		}},
	}
}

func marshalAny(msg any) ([]byte, error) {
	if c, ok := msg.(Command); ok {
		return MarshalCommand(c)
	}
	return MarshalResponse(msg.(Response))
}

func parseAs(msg any, b []byte) (any, error) {
	if _, ok := msg.(Command); ok {
		return ParseCommand(b)
	}
	return ParseResponse(b)
}

// TestGolden checks that every example encodes to the bytes of its golden
// file and that those bytes decode to the example.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases(t) {
		t.Run(tc.file, func(t *testing.T) {
			got, err := marshalAny(tc.msg)
			if err != nil {
				t.Fatalf("Marshal(%+v): %v", tc.msg, err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, []byte(dumpMessage(tc.title, got)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseHexFile(string(text))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal(%+v) =\n%x\nwant (%s)\n%x", tc.msg, got, path, want)
			}
			parsed, err := parseAs(tc.msg, want)
			if err != nil {
				t.Fatalf("Parse(%x): %v", want, err)
			}
			if diff := cmp.Diff(tc.msg, parsed); diff != "" {
				t.Errorf("Parse(%x) mismatch (-want +got):\n%s", want, diff)
			}
		})
	}
}

// TestGoldenRegistrationVerifies makes sure the spec's REGISTER example is
// a genuine one, so that card implementers can test against it.
func TestGoldenRegistrationVerifies(t *testing.T) {
	text, err := os.ReadFile(filepath.Join("testdata", "register_response.hex"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := parseHexFile(string(text))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseResponse(b)
	if err != nil {
		t.Fatalf("ParseResponse(%x): %v", b, err)
	}
	pki := newTestPKI(t, exampleVendorName)
	if err := VerifyRegistration(r.(*RegisterResponse), exampleChallenge(), pki.pool, verifyTime); err != nil {
		t.Errorf("VerifyRegistration(golden) = %v, want nil", err)
	}
}

var goldenMarker = regexp.MustCompile(`<!-- golden: ([a-z0-9_]+\.hex) -->\n+` + "```" + `[a-z]*\n((?s:.*?))` + "```")

// TestSpecExamples keeps the hex examples in the spec identical to the
// golden files, so that the document cannot drift from the code.
func TestSpecExamples(t *testing.T) {
	doc, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, tc := range goldenCases(t) {
		text, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		files[tc.file] = string(text)
	}
	if *update {
		var out []byte
		last := 0
		for _, m := range goldenMarker.FindAllSubmatchIndex(doc, -1) {
			text, ok := files[string(doc[m[2]:m[3]])]
			if !ok {
				continue
			}
			out = append(append(out, doc[last:m[4]]...), text...)
			last = m[5]
		}
		doc = append(out, doc[last:]...)
		if err := os.WriteFile(specPath, doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, m := range goldenMarker.FindAllSubmatch(doc, -1) {
		name := string(m[1])
		seen[name] = true
		want, ok := files[name]
		if !ok {
			t.Errorf("spec embeds %s, which is not a golden file", name)
			continue
		}
		got, err := parseHexFile(string(m[2]))
		if err != nil {
			t.Errorf("spec example %s: %v", name, err)
			continue
		}
		wantBytes, _ := parseHexFile(want)
		if !bytes.Equal(got, wantBytes) {
			t.Errorf("spec example %s = %x, want %x (run go test -update)", name, got, wantBytes)
		}
	}
	for name := range files {
		if !seen[name] {
			t.Errorf("spec lacks the example %s (add <!-- golden: %s --> before a code block)", name, name)
		}
	}
	if n := strings.Count(string(doc), "<!-- golden:"); n != len(seen) {
		t.Errorf("spec has %d golden markers, %d of them well-formed", n, len(seen))
	}
}
