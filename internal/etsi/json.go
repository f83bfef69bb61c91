package etsi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// decodeJSON decodes {"<element>": {...}} in the Kiuru/Swisscom REST style.
func decodeJSON(r io.Reader, max int64, wantRequest bool) (any, error) {
	data, err := readLimited(r, max)
	if err != nil {
		return nil, err
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(data, &root); err != nil {
		return nil, NewFault(CodeWrongParam, "malformed JSON: %v", err)
	}
	if len(root) != 1 {
		return nil, NewFault(CodeWrongParam, "JSON body must hold exactly one message, got %d keys", len(root))
	}
	for name, raw := range root {
		info, ok := lookupElement(name)
		if !ok {
			return nil, NewFault(CodeWrongParam, "unknown operation %q", name)
		}
		if info.request != wantRequest {
			return nil, NewFault(CodeWrongParam, "unexpected message %s", name)
		}
		if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
			return nil, NewFault(CodeMissingParam, "%s is null", name)
		}
		v := info.new()
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, NewFault(CodeWrongParam, "decoding %s: %v", name, err)
		}
		if err := Validate(v); err != nil {
			return nil, err
		}
		return v, nil
	}
	panic("unreachable")
}

// DecodeJSONRequest decodes a REST/JSON request such as
// {"MSS_SignatureReq": {...}}; the root key selects the operation. Limits
// and errors are as for DecodeRequest.
func DecodeJSONRequest(r io.Reader, max int64) (any, error) { return decodeJSON(r, max, true) }

// DecodeJSONResponse is DecodeJSONRequest for the five response messages.
func DecodeJSONResponse(r io.Reader, max int64) (any, error) { return decodeJSON(r, max, false) }

// EncodeJSON writes msg (any of the ten message pointers) as
// {"<element>": {...}} followed by a newline.
func EncodeJSON(w io.Writer, msg any) error {
	name, ok := elementName(msg)
	if !ok {
		return fmt.Errorf("etsi: unsupported message type %T", msg)
	}
	b, err := json.Marshal(map[string]any{name: msg})
	if err != nil {
		return fmt.Errorf("etsi: encoding %s: %w", name, err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("etsi: writing %s: %w", name, err)
	}
	return nil
}

type jsonSubCode struct {
	Value   string       `json:"Value"`
	ValueNs string       `json:"ValueNs"`
	SubCode *jsonSubCode `json:"SubCode,omitempty"`
}

type jsonFault struct {
	Fault struct {
		Code struct {
			Value   string      `json:"Value"`
			ValueNs string      `json:"ValueNs"`
			SubCode jsonSubCode `json:"SubCode"`
		} `json:"Code"`
		Reason string `json:"Reason"`
		Detail string `json:"Detail,omitempty"`
	} `json:"Fault"`
}

// EncodeJSONFault writes f in the Swisscom REST fault shape:
// {"Fault":{"Code":{"Value":"Sender","ValueNs":...,"SubCode":{"Value":"_101",
// "ValueNs":...}},"Reason":"WRONG_PARAM","Detail":"..."}}. A detail code
// becomes a SubCode of the SubCode, as in Kiuru's nested fault codes.
func EncodeJSONFault(w io.Writer, f *Fault) error {
	if f == nil {
		return fmt.Errorf("etsi: nil fault")
	}
	var jf jsonFault
	jf.Fault.Code.Value = f.Code.faultClass()
	jf.Fault.Code.ValueNs = SOAPNamespace
	jf.Fault.Code.SubCode = jsonSubCode{Value: "_" + strconv.Itoa(int(f.Code)), ValueNs: Namespace}
	if f.DetailCode != 0 {
		jf.Fault.Code.SubCode.SubCode = &jsonSubCode{Value: "_" + strconv.Itoa(f.DetailCode), ValueNs: Namespace}
	}
	jf.Fault.Reason = f.Code.Name()
	jf.Fault.Detail = f.Detail
	b, err := json.Marshal(jf)
	if err != nil {
		return fmt.Errorf("etsi: encoding fault: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("etsi: writing fault: %w", err)
	}
	return nil
}

// DecodeJSONFault decodes a Swisscom-style JSON fault (client side).
func DecodeJSONFault(r io.Reader, max int64) (*Fault, error) {
	data, err := readLimited(r, max)
	if err != nil {
		return nil, err
	}
	var jf jsonFault
	if err := json.Unmarshal(data, &jf); err != nil {
		return nil, fmt.Errorf("etsi: decoding JSON fault: %w", err)
	}
	sc := &jf.Fault.Code.SubCode
	n, ok := parseSubcode(sc.Value, true)
	if !ok {
		return nil, fmt.Errorf("etsi: fault subcode %q is not an ETSI status code", sc.Value)
	}
	f := &Fault{Code: Code(n), Detail: jf.Fault.Detail}
	if sc.SubCode != nil {
		if f.DetailCode, ok = parseSubcode(sc.SubCode.Value, false); !ok {
			return nil, fmt.Errorf("etsi: fault detail subcode %q is not a detail code", sc.SubCode.Value)
		}
	}
	return f, nil
}
