package midgolden

import (
	"slices"
	"testing"
)

func TestCompare(t *testing.T) {
	cases := []struct {
		name, got, golden string
		want              []string
	}{
		{"equal", `{"result":"OK","n":1,"b":true,"z":null}`, `{"n":1,"result":"OK","z":null,"b":true}`, nil},
		{"value", `{"result":"TIMEOUT"}`, `{"result":"OK"}`, []string{`field "result" = "TIMEOUT", want "OK"`}},
		{"missing", `{}`, `{"result":"OK"}`, []string{`field "result" is missing, want "OK"`}},
		{"extra", `{"result":"OK","ocsp":"x"}`, `{"result":"OK"}`, []string{`field "ocsp" = "x" is not in the golden file`}},
		{"type", `{"n":"1"}`, `{"n":1}`, []string{`field "n" is a string "1", want a number 1`}},
		{"nested", `{"signature":{"value":"AA==","algorithm":"x"}}`, `{"signature":{"value":"<base64>","algorithm":"y"}}`,
			[]string{`field "signature.algorithm" = "x", want "y"`}},
		{"array", `{"a":[1,2]}`, `{"a":[1]}`, []string{`field "a" has 2 elements, want 1`}},
		{"uuid", `{"sessionID":"1b4e28ba-2fa1-41d2-883f-0016d3cca427"}`, `{"sessionID":"<uuid>"}`, nil},
		{"uuid upper case", `{"sessionID":"1B4E28BA-2FA1-41D2-883F-0016D3CCA427"}`, `{"sessionID":"<uuid>"}`,
			[]string{`field "sessionID" = "1B4E28BA-2FA1-41D2-883F-0016D3CCA427" is not a lower-case UUID, want <uuid>`}},
		{"base64", `{"v":"not base64"}`, `{"v":"<base64>"}`, []string{`field "v" = "not base64" is not non-empty standard base64, want <base64>`}},
		{"empty base64", `{"v":""}`, `{"v":"<base64>"}`, []string{`field "v" = "" is not non-empty standard base64, want <base64>`}},
		{"cert", `{"cert":"AAAA"}`, `{"cert":"<cert>"}`, []string{`field "cert" = "AAAA" is not a DER certificate: x509: malformed certificate, want <cert>`}},
		{"time", `{"time":"2026-03-01T12:00:05"}`, `{"time":"<time>"}`, nil},
		{"time with zone", `{"time":"2026-03-01T12:00:05Z"}`, `{"time":"<time>"}`,
			[]string{`field "time" = "2026-03-01T12:00:05Z" is not a time like 2006-01-02T15:04:05, want <time>`}},
		{"trace", `{"traceId":"5ffc28098bb14341"}`, `{"traceId":"<traceId>"}`, nil},
		{"trace short", `{"traceId":"5ffc2809"}`, `{"traceId":"<traceId>"}`, []string{`field "traceId" = "5ffc2809" is not 16 lower-case hex digits, want <traceId>`}},
		{"placeholder on a number", `{"traceId":5}`, `{"traceId":"<traceId>"}`, []string{`field "traceId" is a number, want a string <traceId>`}},
		{"any", `{"x":[1,{"y":2}]}`, `{"x":"<any>"}`, nil},
		{"any still required", `{}`, `{"x":"<any>"}`, []string{`field "x" is missing, want "<any>"`}},
		{"unknown placeholder", `{"x":"a"}`, `{"x":"<what>"}`, []string{`golden file: field "x": unknown placeholder "<what>"`}},
		{"not JSON", `{`, `{}`, []string{`answer: not JSON: unexpected EOF`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Compare([]byte(c.got), []byte(c.golden)); !slices.Equal(got, c.want) {
				t.Errorf("Compare(%s, %s) = %q, want %q", c.got, c.golden, got, c.want)
			}
		})
	}
}
