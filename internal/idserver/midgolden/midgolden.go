// Package midgolden compares answers of the MID REST API with golden JSON
// files written from SK ID Solutions' public description of the API
// (internal/idserver/testdata/mid). The ID Server's unit tests and the
// end-to-end tests use it on the same files, so that both hold the server
// to one description.
//
// A golden file is the JSON the description shows. Values that differ on
// every call are written as placeholders, which are checked for their
// shape only:
//
//	"<uuid>"     a lower-case canonical UUID, 8-4-4-4-12 hex digits
//	"<base64>"   non-empty standard base64 with padding
//	"<cert>"     "<base64>" of a DER X.509 certificate that parses
//	"<time>"     UTC to the second without a zone, 2006-01-02T15:04:05
//	"<traceId>"  16 lower-case hex digits
//	"<any>"      any value of any JSON type, as long as it is there
//
// Everything else must be equal, and both sides must have the same
// fields: a field the golden file does not list is a difference, so an
// answer cannot grow fields the description does not document unnoticed.
package midgolden

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// TimeLayout is MID's "time" field: UTC to the second, without a zone.
const TimeLayout = "2006-01-02T15:04:05"

var (
	uuidPattern  = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	tracePattern = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// placeholders check a string value for the shape their placeholder
// stands for and return what is wrong with it, or "".
var placeholders = map[string]func(string) string{
	"<uuid>": func(s string) string {
		if !uuidPattern.MatchString(s) {
			return "is not a lower-case UUID"
		}
		return ""
	},
	"<base64>": func(s string) string {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) == 0 {
			return "is not non-empty standard base64"
		}
		return ""
	},
	"<cert>": func(s string) string {
		der, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return "is not standard base64"
		}
		if _, err := x509.ParseCertificate(der); err != nil {
			return fmt.Sprintf("is not a DER certificate: %v", err)
		}
		return ""
	},
	"<time>": func(s string) string {
		if _, err := time.Parse(TimeLayout, s); err != nil {
			return "is not a time like " + TimeLayout
		}
		return ""
	},
	"<traceId>": func(s string) string {
		if !tracePattern.MatchString(s) {
			return "is not 16 lower-case hex digits"
		}
		return ""
	},
}

// anyValue is the placeholder that matches a value of any type.
const anyValue = "<any>"

// Compare compares a JSON answer with a golden file's JSON, field by
// field, and returns one message per difference, such as
// `field "result" = "TIMEOUT", want "OK"`; nil means they match. A
// golden file that is not valid JSON, or uses an unknown placeholder, is
// reported as a difference too.
func Compare(got, golden []byte) []string {
	want, err := decode(golden)
	if err != nil {
		return []string{fmt.Sprintf("golden file: %v", err)}
	}
	g, err := decode(got)
	if err != nil {
		return []string{fmt.Sprintf("answer: %v", err)}
	}
	var diffs []string
	compare(&diffs, "", g, want)
	return diffs
}

// decode decodes one JSON value, keeping numbers as written.
func decode(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	return v, nil
}

// compare appends the differences between got and want at path to diffs.
func compare(diffs *[]string, path string, got, want any) {
	name := path
	if name == "" {
		name = "the answer"
	} else {
		name = fmt.Sprintf("field %q", path)
	}
	if s, ok := want.(string); ok && isPlaceholder(s) {
		if s == anyValue {
			return
		}
		check, known := placeholders[s]
		if !known {
			*diffs = append(*diffs, fmt.Sprintf("golden file: %s: unknown placeholder %q", name, s))
			return
		}
		gs, ok := got.(string)
		if !ok {
			*diffs = append(*diffs, fmt.Sprintf("%s is %s, want a string %s", name, typeName(got), s))
			return
		}
		if msg := check(gs); msg != "" {
			*diffs = append(*diffs, fmt.Sprintf("%s = %q %s, want %s", name, gs, msg, s))
		}
		return
	}
	if typeName(got) != typeName(want) {
		*diffs = append(*diffs, fmt.Sprintf("%s is %s %s, want %s %s", name, typeName(got), show(got), typeName(want), show(want)))
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for _, k := range sortedKeys(w) {
			if _, ok := g[k]; !ok {
				*diffs = append(*diffs, fmt.Sprintf("field %q is missing, want %s", join(path, k), show(w[k])))
				continue
			}
			compare(diffs, join(path, k), g[k], w[k])
		}
		for _, k := range sortedKeys(g) {
			if _, ok := w[k]; !ok {
				*diffs = append(*diffs, fmt.Sprintf("field %q = %s is not in the golden file", join(path, k), show(g[k])))
			}
		}
	case []any:
		g := got.([]any)
		if len(g) != len(w) {
			*diffs = append(*diffs, fmt.Sprintf("%s has %d elements, want %d", name, len(g), len(w)))
			return
		}
		for i := range w {
			compare(diffs, fmt.Sprintf("%s[%d]", path, i), g[i], w[i])
		}
	default:
		// Strings, numbers as written, booleans and null.
		if show(got) != show(want) {
			*diffs = append(*diffs, fmt.Sprintf("%s = %s, want %s", name, show(got), show(want)))
		}
	}
}

func isPlaceholder(s string) bool {
	return strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// typeName is the JSON type of a decoded value, with its article.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// show formats a decoded value as JSON for a message.
func show(v any) string {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false) // placeholders are written with < and >
	if err := e.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
