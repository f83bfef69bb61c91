package vmac

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"mobileid/internal/sms"
)

func seq(n int, start byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestCommandRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
	}{
		{"register minimal", &Register{Ref: 0, AuthAlg: AlgECDSAP256, SignAlg: AlgRSA2048, Challenge: seq(16, 1)}},
		{"register text", &Register{Ref: 0xFFFFFFFF, AuthAlg: AlgRSA2048, SignAlg: AlgECDSAP256, Challenge: seq(32, 1), DisplayText: "Choose PIN1 {4–8} €"}},
		{"sign digest sha256", &Sign{Ref: 1, Key: KeyAuth, Hash: HashSHA256, Digest: seq(32, 0)}},
		{"sign digest sha384", &Sign{Ref: 2, Key: KeySign, Hash: HashSHA384, Digest: seq(48, 0), VerificationCode: "0000"}},
		{"sign digest sha512 all text", &Sign{Ref: 3, Key: KeySign, Hash: HashSHA512, Digest: seq(64, 0),
			DisplayText: strings.Repeat("x", 200), RPName: strings.Repeat("[", 16), VerificationCode: "9909"}},
		{"sign data 1", &Sign{Ref: 4, Key: KeyAuth, Hash: HashSHA256, Data: []byte{0}}},
		{"sign data 1024", &Sign{Ref: 5, Key: KeySign, Hash: HashSHA512, Data: seq(1024, 7), DisplayText: strings.Repeat("ж", 100), RPName: strings.Repeat("ж", 16)}},
		{"sign 7 septets", &Sign{Ref: 6, Key: KeyAuth, Hash: HashSHA256, Digest: seq(32, 0), DisplayText: "1234567", RPName: "A"}},
		{"display", &Display{Ref: 7, Text: "Hello\r\nWorld"}},
		{"display wait", &Display{Ref: 8, Text: "Ärge jagage PIN-koodi", WaitForOK: true}},
		{"display ucs2", &Display{Ref: 9, Text: "Ära jaga PIN-koodi õigel ajal"}},
		{"info", &Info{Ref: 10}},
		{"reset", &Reset{Ref: 11, Scope: ResetKeysAndPINs}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalCommand(tc.cmd)
			if err != nil {
				t.Fatalf("MarshalCommand(%+v): %v", tc.cmd, err)
			}
			got, err := ParseCommand(b)
			if err != nil {
				t.Fatalf("ParseCommand(%x): %v", b, err)
			}
			if diff := cmp.Diff(tc.cmd, got); diff != "" {
				t.Errorf("ParseCommand(%x) mismatch (-want +got):\n%s", b, diff)
			}
			if ref, ok := PeekTxRef(b); !ok || ref != tc.cmd.TxRef() {
				t.Errorf("PeekTxRef(%x) = %d, %v, want %d, true", b, ref, ok, tc.cmd.TxRef())
			}
		})
	}
}

func TestResponseRoundTrip(t *testing.T) {
	pki := newTestPKI(t, "Round Trip Vendor")
	reg := pki.register(t, 42, seq(16, 9), "89372", fixedECKey(t, "a"), newRSAKey(t))
	tests := []struct {
		name string
		resp Response
	}{
		{"generic with ref", &GenericResponse{Ref: 5, HasRef: true, Result: StatusUnsupported}},
		{"generic without ref", &GenericResponse{Result: StatusBadRequest}},
		{"generic unknown status", &GenericResponse{Result: Status(0x42)}},
		{"register ok ecdsa+rsa", reg},
		{"register 20-digit ICCID", &RegisterResponse{Ref: 1, AuthKey: KeyEntry{AlgECDSAP256, []byte{0x30}, seq(64, 0)},
			SignKey: KeyEntry{AlgRSA2048, []byte{0x30, 0}, seq(256, 0)}, ICCID: "89372012345678901234",
			AttestationSignature: seq(64, 1), AttestationCert: []byte{0x30, 0x00}}},
		{"register cancelled", &RegisterResponse{Ref: 1, Result: StatusUserCancel}},
		{"sign ok ecdsa", &SignResponse{Ref: 2, Signature: seq(64, 0)}},
		{"sign ok rsa with tries", &SignResponse{Ref: 2, Signature: seq(256, 0), TriesLeft: ptr[uint8](3)}},
		{"sign wrong pin then cancel", &SignResponse{Ref: 2, Result: StatusUserCancel, TriesLeft: ptr[uint8](1)}},
		{"sign no key", &SignResponse{Ref: 2, Result: StatusNoKey}},
		{"display ok", &DisplayResponse{Ref: 3}},
		{"display timeout", &DisplayResponse{Ref: 3, Result: StatusTimeout}},
		{"info no keys", &InfoResponse{Ref: 4, VersionMajor: 1, ICCID: "1", State: StatePersonalised, PIN1TriesLeft: 3, PIN2TriesLeft: 3, PUKTriesLeft: 10}},
		{"info sign key only", &InfoResponse{Ref: 4, VersionMajor: 1, VersionMinor: 7, ICCID: "12345678901234567890", State: StateBlocked, SignKeyAlg: AlgRSA2048}},
		{"info busy", &InfoResponse{Ref: 4, Result: StatusBusy}},
		{"reset ok", &ResetResponse{Ref: 5}},
		{"reset internal error", &ResetResponse{Ref: 5, Result: StatusInternalError}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := MarshalResponse(tc.resp)
			if err != nil {
				t.Fatalf("MarshalResponse(%+v): %v", tc.resp, err)
			}
			got, err := ParseResponse(b)
			if err != nil {
				t.Fatalf("ParseResponse(%x): %v", b, err)
			}
			if diff := cmp.Diff(tc.resp, got); diff != "" {
				t.Errorf("ParseResponse(%x) mismatch (-want +got):\n%s", b, diff)
			}
			if got.Status() != tc.resp.Status() || got.TxRef() != tc.resp.TxRef() {
				t.Errorf("ParseResponse(%x) = TxRef %d status %v, want %d %v", b, got.TxRef(), got.Status(), tc.resp.TxRef(), tc.resp.Status())
			}
		})
	}
}

// TestParseDoesNotAlias guards against results that change when the
// caller reuses its receive buffer.
func TestParseDoesNotAlias(t *testing.T) {
	b, err := MarshalCommand(&Sign{Ref: 1, Key: KeyAuth, Hash: HashSHA256, Digest: seq(32, 0)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xEE
	}
	if got := c.(*Sign).Digest; !bytes.Equal(got, seq(32, 0)) {
		t.Errorf("Digest changed with the input buffer: %x", got)
	}
}

func TestMarshalErrors(t *testing.T) {
	okDigest := seq(32, 0)
	tests := []struct {
		name        string
		msg         any
		want        string
		unsupported bool
	}{
		{"nil register", (*Register)(nil), "nil", false},
		{"nil command", Command(nil), "nil", false},
		{"register bad auth alg", &Register{AuthAlg: 3, SignAlg: 1, Challenge: seq(16, 0)}, "authentication key algorithm", true},
		{"register bad sign alg", &Register{AuthAlg: 1, SignAlg: 0, Challenge: seq(16, 0)}, "signing key algorithm", true},
		{"register short challenge", &Register{AuthAlg: 1, SignAlg: 1, Challenge: seq(15, 0)}, "challenge length 15", false},
		{"register long challenge", &Register{AuthAlg: 1, SignAlg: 1, Challenge: seq(33, 0)}, "challenge length 33", false},
		{"register long text", &Register{AuthAlg: 1, SignAlg: 1, Challenge: seq(16, 0), DisplayText: strings.Repeat("€", 101)}, "202 GSM 7-bit septets", false},
		{"sign bad key", &Sign{Key: 3, Hash: HashSHA256, Digest: okDigest}, "want 1 or 2", false},
		{"sign bad hash", &Sign{Key: KeyAuth, Hash: 4, Digest: okDigest}, "hash", true},
		{"sign both", &Sign{Key: KeyAuth, Hash: HashSHA256, Digest: okDigest, Data: []byte{1}}, "both", false},
		{"sign neither", &Sign{Key: KeyAuth, Hash: HashSHA256}, "needs Digest or Data", false},
		{"sign digest length", &Sign{Key: KeyAuth, Hash: HashSHA384, Digest: okDigest}, "digest length 32, want 48 for SHA-384", false},
		{"sign data too long", &Sign{Key: KeyAuth, Hash: HashSHA256, Data: seq(1025, 0)}, "data length 1025", false},
		{"sign code letters", &Sign{Key: KeyAuth, Hash: HashSHA256, Digest: okDigest, VerificationCode: "12a4"}, "non-digit", false},
		{"sign code short", &Sign{Key: KeyAuth, Hash: HashSHA256, Digest: okDigest, VerificationCode: "123"}, "want 4 digits", false},
		{"sign rp too long gsm", &Sign{Key: KeyAuth, Hash: HashSHA256, Digest: okDigest, RPName: strings.Repeat("a", 33)}, "33 GSM 7-bit septets", false},
		{"sign rp too long ucs2", &Sign{Key: KeyAuth, Hash: HashSHA256, Digest: okDigest, RPName: strings.Repeat("ж", 17)}, "17 UCS-2 characters", false},
		{"sign text outside BMP", &Sign{Key: KeyAuth, Hash: HashSHA256, Digest: okDigest, DisplayText: "OK 👍"}, "Basic Multilingual Plane", false},
		{"sign text invalid utf8", &Sign{Key: KeyAuth, Hash: HashSHA256, Digest: okDigest, DisplayText: "\xff"}, "UTF-8", false},
		{"display empty", &Display{Ref: 1}, "needs a text", false},
		{"reset scope", &Reset{Scope: 2}, "scope 2", true},
		{"generic ok", &GenericResponse{Result: StatusOK}, "status OK", false},
		{"generic ref without flag", &GenericResponse{Ref: 1, Result: StatusBadRequest}, "HasRef", false},
		{"register failed with keys", &RegisterResponse{Result: StatusTimeout, ICCID: "1"}, "must not carry results", false},
		{"register bad iccid", &RegisterResponse{AuthKey: KeyEntry{1, []byte{1}, seq(64, 0)}, SignKey: KeyEntry{1, []byte{1}, seq(64, 0)},
			ICCID: "89F", AttestationSignature: seq(64, 0), AttestationCert: []byte{1}}, "non-digit", false},
		{"register iccid too long", &RegisterResponse{AuthKey: KeyEntry{1, []byte{1}, seq(64, 0)}, SignKey: KeyEntry{1, []byte{1}, seq(64, 0)},
			ICCID: "123456789012345678901", AttestationSignature: seq(64, 0), AttestationCert: []byte{1}}, "21 digits", false},
		{"register pop length", &RegisterResponse{AuthKey: KeyEntry{AlgRSA2048, []byte{1}, seq(64, 0)}, SignKey: KeyEntry{1, []byte{1}, seq(64, 0)},
			ICCID: "1", AttestationSignature: seq(64, 0), AttestationCert: []byte{1}}, "length 64, want 256", false},
		{"register key alg", &RegisterResponse{AuthKey: KeyEntry{1, []byte{1}, seq(64, 0)}, SignKey: KeyEntry{9, []byte{1}, seq(64, 0)},
			ICCID: "1", AttestationSignature: seq(64, 0), AttestationCert: []byte{1}}, "signing key algorithm", true},
		{"register no spki", &RegisterResponse{AuthKey: KeyEntry{1, nil, seq(64, 0)}, SignKey: KeyEntry{1, []byte{1}, seq(64, 0)},
			ICCID: "1", AttestationSignature: seq(64, 0), AttestationCert: []byte{1}}, "SubjectPublicKeyInfo", false},
		{"register no cert", &RegisterResponse{AuthKey: KeyEntry{1, []byte{1}, seq(64, 0)}, SignKey: KeyEntry{1, []byte{1}, seq(64, 0)},
			ICCID: "1", AttestationSignature: seq(64, 0)}, "attestation certificate", false},
		{"register too big", &RegisterResponse{AuthKey: KeyEntry{1, []byte{1}, seq(64, 0)}, SignKey: KeyEntry{1, []byte{1}, seq(64, 0)},
			ICCID: "1", AttestationSignature: seq(64, 0), AttestationCert: make([]byte, 4000)}, "limit is 4096", false},
		{"sign response failed with signature", &SignResponse{Result: StatusUserCancel, Signature: seq(64, 0)}, "must not carry results", false},
		{"sign response ok without signature", &SignResponse{}, "signature length 0", false},
		{"sign response bad signature length", &SignResponse{Signature: seq(65, 0)}, "signature length 65", false},
		{"info failed with data", &InfoResponse{Result: StatusBusy, State: StateRegistered}, "must not carry results", false},
		{"info bad state", &InfoResponse{ICCID: "1", State: 4}, "state", false},
		{"info no iccid", &InfoResponse{State: StateRegistered}, "ICCID", false},
		{"info bad key alg", &InfoResponse{ICCID: "1", State: StateRegistered, AuthKeyAlg: 7}, "key algorithm", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			var err error
			if c, ok := tc.msg.(Command); ok || tc.msg == nil {
				b, err = MarshalCommand(c)
			} else {
				b, err = MarshalResponse(tc.msg.(Response))
			}
			if err == nil {
				t.Fatalf("Marshal(%+v) = %x, want error containing %q", tc.msg, b, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "vmac: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Marshal(%+v) error = %q, want \"vmac: \" and %q", tc.msg, err, tc.want)
			}
			if got := errors.Is(err, ErrUnsupported); got != tc.unsupported {
				t.Errorf("Marshal(%+v) error %q: errors.Is(ErrUnsupported) = %v, want %v", tc.msg, err, got, tc.unsupported)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	const (
		info  = "A4 06 80 04 00000001"
		ref   = "80 04 00000001"
		st    = "90 01 00"
		dig32 = "83 20 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
	)
	// w wraps body in tag with the right length, so that each case breaks
	// only the rule it is named after.
	w := func(tag string, body string) string {
		return hex.EncodeToString(appendTLV(nil, mustHex(t, tag)[0], mustHex(t, body)))
	}
	tests := []struct {
		name        string
		resp        bool // ParseResponse instead of ParseCommand
		hex         string
		want        string
		unsupported bool
	}{
		// Framing.
		{"empty", false, "", "missing tag", false},
		{"tag only", false, "A4", "missing length", false},
		{"non-minimal 81", false, "A4 81 06" + ref, "81 06 is not minimal", false},
		{"non-minimal 82", false, "A4 82 0006" + ref, "82 0006 is not minimal", false},
		{"non-minimal 82 for 255", false, "A2 82 00FF" + strings.Repeat("00", 255), "82 00FF is not minimal", false},
		{"indefinite", false, "A4 80" + ref + "0000", "indefinite length", false},
		{"length form 83", false, "A4 83 000006" + ref, "length form 83", false},
		{"length form 84", false, "A4 84 00000006" + ref, "length form 84", false},
		{"truncated 81", false, "A4 81", "truncated length", false},
		{"truncated 82", false, "A4 82 01", "truncated length", false},
		{"inner non-minimal", false, "A4 07 80 81 04 00000001", "not minimal", false},
		{"inner indefinite", false, "A4 06 80 80 00000001", "indefinite", false},
		{"trailing byte", false, info + "00", "1 trailing bytes", false},
		{"two messages", false, info + info, "8 trailing bytes", false},
		{"truncated value", false, "A4 06 80 04 000000", "length 6 exceeds the 5 bytes left", false},
		{"inner truncated", false, "A4 05 80 04 000000", "length 4 exceeds the 3 bytes left", false},
		{"too large", false, "A2 82 0FFD" + strings.Repeat("00", 4093), "message is 4097 bytes", false},
		{"primitive top level", false, ref, "not constructed", false},
		{"multi-byte top tag", false, "BF 01 00", "multi-byte tag", false},
		{"multi-byte inner tag", false, "A4 09 80 04 00000001 9F 01 00", "multi-byte tag", false},
		{"padding inner", false, "A4 08 80 04 00000001 00 00", "padding", false},
		{"padding top", false, "FF 00", "padding", false},
		// Container rules.
		{"unknown tag", false, w("A4", ref+"8C 01 00"), "unknown tag 8C in A4", false},
		{"unknown constructed tag", false, w("A4", ref+"A8 00"), "unknown tag A8 in A4", false},
		{"duplicate tag", false, w("A4", ref+"80 04 00000002"), "duplicate tag 80 in A4", false},
		{"duplicate non-adjacent", false, w("A5", ref+"8B 01 01 80 01 00"), "duplicate tag 80", false},
		{"descending order", false, "A5 09 8B 01 01" + ref, "tag 80 after 8B in A5", false},
		{"missing txref", false, "A5 03 8B 01 01", "A5 lacks mandatory tag 80 (TxRef)", false},
		{"missing scope", false, w("A5", ref), "A5 lacks mandatory tag 8B (scope)", false},
		{"empty info", false, "A4 00", "lacks mandatory tag 80", false},
		{"txref length", false, "A4 05 80 03 000001", "tag 80 TxRef length 3, want 4", false},
		{"response as command", false, w("B4", ref), "not a command", false},
		{"command as response", true, info, "not a response", false},
		{"reserved command", false, w("A7", ref), "command tag A7", true},
		{"reserved response", true, w("B7", ref), "response tag B7", true},
		// REGISTER.
		{"register unknown auth alg", false, w("A1", ref+"81 01 31 82 10 000102030405060708090A0B0C0D0E0F"), "authentication key algorithm 3", true},
		{"register unknown sign alg", false, w("A1", ref+"81 01 10 82 10 000102030405060708090A0B0C0D0E0F"), "signing key algorithm 0", true},
		{"register algs length", false, w("A1", ref+"81 02 1100 82 10 000102030405060708090A0B0C0D0E0F"), "algorithms length 2, want 1", false},
		{"register short challenge", false, w("A1", ref+"81 01 11 82 0F 000102030405060708090A0B0C0D0E"), "challenge length 15, want 16–32", false},
		// SIGN.
		{"sign digest 31", false, w("A2", ref+"81 01 11 83 1F 000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E"), "vmac: tag 83 digest length 31, want 32 for SHA-256", false},
		{"sign digest for sha512", false, w("A2", ref+"81 01 13"+dig32), "digest length 32, want 64 for SHA-512", false},
		{"sign unknown hash", false, w("A2", ref+"81 01 14"+dig32), "hash algorithm 4", true},
		{"sign key 0", false, w("A2", ref+"81 01 01"+dig32), "key reference 0", false},
		{"sign key 3", false, w("A2", ref+"81 01 31"+dig32), "key reference 3", false},
		{"sign digest and data", false, w("A2", ref+"81 01 11"+dig32+"84 01 00"), "mutually exclusive", false},
		{"sign no digest", false, w("A2", ref+"81 01 11"), "needs tag 83 (digest) or 84 (data)", false},
		{"sign empty data", false, w("A2", ref+"81 01 11 84 00"), "data length 0", false},
		{"sign gsm and ucs2", false, w("A2", ref+"81 01 11"+dig32+"85 02 01 41 86 02 0416"), "85 and 86 (display text) are mutually exclusive", false},
		{"sign rp gsm and ucs2", false, w("A2", ref+"81 01 11"+dig32+"87 02 01 41 88 02 0416"), "87 and 88 (RP name) are mutually exclusive", false},
		{"sign code not bcd", false, w("A2", ref+"81 01 11"+dig32+"89 02 1A62"), "not BCD", false},
		{"sign code length", false, w("A2", ref+"81 01 11"+dig32+"89 01 14"), "verification code length 1, want 2", false},
		{"sign text count 0", false, w("A2", ref+"81 01 11"+dig32+"85 02 00 00"), "0 septets pack into 0 octets, got 1", false},
		{"sign text only count", false, w("A2", ref+"81 01 11"+dig32+"85 01 00"), "want a septet count", false},
		{"sign text packed too long", false, w("A2", ref+"81 01 11"+dig32+"85 03 01 41 00"), "1 septets pack into 1 octets, got 2", false},
		{"sign text packed too short", false, w("A2", ref+"81 01 11"+dig32+"85 02 02 41"), "2 septets pack into 2 octets, got 1", false},
		{"sign text spare bits", false, w("A2", ref+"81 01 11"+dig32+"85 02 01 C1"), "spare bits", false},
		{"sign text lone escape", false, w("A2", ref+"81 01 11"+dig32+"85 02 01 1B"), "lone escape", false},
		{"sign text bad escape", false, w("A2", ref+"81 01 11"+dig32+"85 03 02 9B 20"), "escape sequence", false},
		{"sign text over limit", false, w("A2", ref+"81 01 11"+dig32+"87 1E 21"+strings.Repeat("00", 29)), "33 septets, limit is 32", false},
		{"sign ucs2 for gsm text", false, w("A2", ref+"81 01 11"+dig32+"86 02 0041"), "representable in GSM 7-bit and must use tag 85", false},
		{"sign ucs2 odd", false, w("A2", ref+"81 01 11"+dig32+"86 03 041600"), "non-zero even length", false},
		{"sign ucs2 empty", false, w("A2", ref+"81 01 11"+dig32+"86 00"), "non-zero even length", false},
		{"sign ucs2 surrogates", false, w("A2", ref+"81 01 11"+dig32+"86 04 D83DDC4D"), "surrogate D83D", false},
		{"sign rp ucs2 over limit", false, w("A2", ref+"81 01 11"+dig32+"88 22"+strings.Repeat("0416", 17)), "17 UCS-2 characters, limit is 16", false},
		// DISPLAY and RESET.
		{"display no text", false, w("A3", ref+"8A 01 01"), "display text", false},
		{"display flags 00", false, w("A3", ref+"85 02 01 41 8A 01 00"), "flags 00 must be omitted", false},
		{"display reserved flag", false, w("A3", ref+"85 02 01 41 8A 01 03"), "reserved bits", true},
		{"reset scope 2", false, w("A5", ref+"8B 01 02"), "scope 2", true},
		{"reset scope length", false, w("A5", ref+"8B 02 0100"), "scope length 2", false},
		// Responses.
		{"response no status", true, w("B3", ref), "B3 lacks mandatory tag 90 (status)", false},
		{"response status length", true, w("B3", ref+"90 02 0000"), "status length 2", false},
		{"generic ok", true, w("B0", st), "status OK", false},
		{"generic no status", true, w("B0", ref), "lacks mandatory tag 90", false},
		{"generic extra", true, w("B0", ref+st+"91 01 00"), "unknown tag 91", false},
		{"failed register with data", true, w("B1", ref+"90 01 01 9C 00"), "tag 9C is not allowed in B1 with status USER_CANCEL", false},
		{"register ok missing keys", true, w("B1", ref+st), "lacks mandatory tag 9A", false},
		{"sign ok no signature", true, w("B2", ref+st), "lacks mandatory tag 9E", false},
		{"sign ok short signature", true, w("B2", ref+st+"9E 01 00"), "signature length 1, want 64 or 256", false},
		{"sign failed with signature", true, w("B2", ref+"90 01 01 9E 40"+strings.Repeat("00", 64)), "9E is not allowed", false},
		{"sign tries length", true, w("B2", ref+"90 01 02 91 02 0000"), "tries left length 2", false},
		{"info bad iccid padding", true, w("B4", ref+st+"9C 0A 98F30221436587092133 C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "not F-padded BCD", false},
		{"info bad iccid digit", true, w("B4", ref+st+"9C 0A 9A730221436587092133 C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "not F-padded BCD", false},
		{"info empty iccid", true, w("B4", ref+st+"9C 0A FFFFFFFFFFFFFFFFFFFF C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "no digits", false},
		{"info iccid length", true, w("B4", ref+st+"9C 09 987302214365870921 C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "ICCID length 9, want 10", false},
		{"info state 0", true, w("B4", ref+st+"9C 0A 987302214365870921F3 C0 02 0100 C1 01 00 C2 01 03 C3 01 03 C4 01 0A"), "state 0", false},
		{"info missing puk", true, w("B4", ref+st+"9C 0A 987302214365870921F3 C0 02 0100 C1 01 02 C2 01 03 C3 01 03"), "lacks mandatory tag C4", false},
		{"info version length", true, w("B4", ref+st+"9C 0A 987302214365870921F3 C0 01 01 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "applet version length 1, want 2", false},
		{"info key wrong ref", true, w("B4", ref+st+"9C 0A 987302214365870921F3 A8 06 81 01 02 82 01 01 C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "key reference 2 in A8, want 1", false},
		{"info key unknown alg", true, w("B4", ref+st+"9C 0A 987302214365870921F3 A9 06 81 01 02 82 01 05 C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "key algorithm 5 in A9", true},
		{"info key with spki", true, w("B4", ref+st+"9C 0A 987302214365870921F3 A8 09 81 01 01 82 01 01 83 01 30 C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "unknown tag 83 in A8", false},
		{"info key order", true, w("B4", ref+st+"9C 0A 987302214365870921F3 A8 06 82 01 01 81 01 01 C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "tag 81 after 82 in A8", false},
		{"info keys swapped", true, w("B4", ref+st+"9C 0A 987302214365870921F3 A9 06 81 01 02 82 01 01 A8 06 81 01 01 82 01 01 C0 02 0100 C1 01 02 C2 01 03 C3 01 03 C4 01 0A"), "tag A8 after A9", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustHex(t, tc.hex)
			var got any
			var err error
			fn := "ParseCommand"
			if tc.resp {
				fn = "ParseResponse"
				got, err = ParseResponse(b)
			} else {
				got, err = ParseCommand(b)
			}
			if err == nil {
				t.Fatalf("%s(%x) = %+v, want error containing %q", fn, b, got, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "vmac: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s(%x) error = %q, want \"vmac: \" and %q", fn, b, err, tc.want)
			}
			if u := errors.Is(err, ErrUnsupported); u != tc.unsupported {
				t.Errorf("%s(%x) error %q: errors.Is(ErrUnsupported) = %v, want %v", fn, b, err, u, tc.unsupported)
			}
		})
	}
}

// TestParseAcceptsLengthForms checks the other side of the length rules:
// each form is accepted exactly at its lower bound.
func TestParseAcceptsLengthForms(t *testing.T) {
	for _, n := range []int{1, 127, 128, 255, 256, 1024} {
		c := &Sign{Ref: 1, Key: KeyAuth, Hash: HashSHA256, Data: seq(n, 0)}
		b, err := MarshalCommand(c)
		if err != nil {
			t.Fatalf("MarshalCommand(data %d): %v", n, err)
		}
		got, err := ParseCommand(b)
		if err != nil {
			t.Fatalf("ParseCommand(%x) (data %d): %v", b, n, err)
		}
		if diff := cmp.Diff(Command(c), got); diff != "" {
			t.Errorf("data %d: (-want +got)\n%s", n, diff)
		}
	}
}

// TestOneSMS checks the sizes the transport budget in the spec relies on.
func TestOneSMS(t *testing.T) {
	const maxCommand, maxResponse = 98, 113
	if n, ok := sms.GSM7Len(exampleSignText); !ok || n != 40 {
		t.Fatalf("example text is %d septets (GSM %v), want 40", n, ok)
	}
	cmd := &Sign{Ref: 0xFFFFFFFF, Key: KeyAuth, Hash: HashSHA256, Digest: exampleDigest(),
		DisplayText: exampleSignText, VerificationCode: exampleVerCode, RPName: exampleRPName}
	b, err := MarshalCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > maxCommand {
		t.Errorf("SIGN command is %d bytes, want ≤ %d", len(b), maxCommand)
	}
	t.Logf("SIGN command: %d bytes (budget %d)", len(b), maxCommand)
	for _, r := range []*SignResponse{
		{Ref: 0xFFFFFFFF, Signature: seq(64, 0)},
		{Ref: 0xFFFFFFFF, Signature: seq(64, 0), TriesLeft: ptr[uint8](2)},
	} {
		b, err := MarshalResponse(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxResponse {
			t.Errorf("SIGN response %+v is %d bytes, want ≤ %d", r, len(b), maxResponse)
		}
		t.Logf("SIGN response (tries left %v): %d bytes (budget %d)", r.TriesLeft != nil, len(b), maxResponse)
	}
}

func TestPeekTxRef(t *testing.T) {
	tests := []struct {
		name   string
		hex    string
		want   uint32
		wantOK bool
	}{
		{"short form", "A4 06 80 04 01020304", 0x01020304, true},
		{"81 form", "A2 81 90 80 04 01020304", 0x01020304, true},
		{"82 form", "A2 82 0101 80 04 01020304", 0x01020304, true},
		{"truncated after txref", "A2 60 80 04 01020304 81", 0x01020304, true},
		{"non-minimal still readable", "A9 81 06 80 04 01020304", 0x01020304, true},
		{"empty", "", 0, false},
		{"header only", "A4 06", 0, false},
		{"txref truncated", "A4 06 80 04 010203", 0, false},
		{"first field not txref", "A5 09 8B 01 01 80 04 01020304", 0, false},
		{"txref wrong length", "A4 05 80 03 010203", 0, false},
		{"indefinite", "A4 80 80 04 01020304", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustHex(t, tc.hex)
			got, ok := PeekTxRef(b)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("PeekTxRef(%x) = %#x, %v, want %#x, %v", b, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestStatusString(t *testing.T) {
	want := []string{"OK", "USER_CANCEL", "PIN_BLOCKED", "CARD_BLOCKED", "NO_KEY", "TIMEOUT",
		"BAD_REQUEST", "UNSUPPORTED", "ALREADY_REGISTERED", "INTERNAL_ERROR", "BUSY"}
	for i, w := range want {
		if got := Status(i).String(); got != w {
			t.Errorf("Status(%#x).String() = %q, want %q", i, got, w)
		}
	}
	for _, tc := range []struct {
		s    Status
		want string
	}{{0x0B, "STATUS_0x0B"}, {0xFF, "STATUS_0xFF"}, {0x6A, "STATUS_0x6A"}} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Status(%#x).String() = %q, want %q", byte(tc.s), got, tc.want)
		}
	}
}

func TestHashAlg(t *testing.T) {
	tests := []struct {
		h    HashAlg
		size int
		name string
	}{{HashSHA256, 32, "SHA-256"}, {HashSHA384, 48, "SHA-384"}, {HashSHA512, 64, "SHA-512"}, {0, 0, "HashAlg(0)"}, {4, 0, "HashAlg(4)"}}
	for _, tc := range tests {
		if tc.h.Size() != tc.size || tc.h.String() != tc.name {
			t.Errorf("HashAlg(%d): Size %d String %q, want %d %q", tc.h, tc.h.Size(), tc.h.String(), tc.size, tc.name)
		}
		if tc.size != 0 && tc.h.Hash().Size() != tc.size {
			t.Errorf("HashAlg(%d).Hash().Size() = %d, want %d", tc.h, tc.h.Hash().Size(), tc.size)
		}
		if tc.size == 0 && tc.h.Hash() != 0 {
			t.Errorf("HashAlg(%d).Hash() = %v, want 0", tc.h, tc.h.Hash())
		}
	}
}

func TestICCIDEncoding(t *testing.T) {
	tests := []struct {
		iccid, hex string
	}{
		{"8937201234567890123", "98 73 02 21 43 65 87 09 21 F3"},
		{"89372012345678901234", "98 73 02 21 43 65 87 09 21 43"},
		{"1", "F1 FF FF FF FF FF FF FF FF FF"},
		{"12", "21 FF FF FF FF FF FF FF FF FF"},
	}
	for _, tc := range tests {
		got, err := encodeICCID(tc.iccid)
		want := mustHex(t, tc.hex)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("encodeICCID(%q) = %x, %v, want %x", tc.iccid, got, err, want)
		}
		back, err := decodeICCID(want)
		if err != nil || back != tc.iccid {
			t.Errorf("decodeICCID(%x) = %q, %v, want %q", want, back, err, tc.iccid)
		}
	}
}
