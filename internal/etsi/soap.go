package etsi

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DefaultMaxBody is a reasonable request size limit for callers without a
// more specific one.
const DefaultMaxBody = 64 << 10

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// readLimited reads at most max bytes from r, failing with a fault when the
// body is larger.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBody
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, NewFault(CodeWrongParam, "reading body: %v", err)
	}
	if int64(len(data)) > max {
		return nil, NewFault(CodeWrongDataLength, "body exceeds %d bytes", max)
	}
	return data, nil
}

// prescan rejects DTDs, entity declarations and other directives, and
// malformed XML, before any structured decoding happens.
func prescan(data []byte) error {
	d := xml.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return NewFault(CodeWrongParam, "malformed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return NewFault(CodeWrongParam, "DOCTYPE and entity declarations are not allowed")
		case xml.ProcInst:
			if t.Target != "xml" {
				return NewFault(CodeWrongParam, "processing instructions are not allowed")
			}
		}
	}
}

// nextStart returns the next child start element, or nil at the parent's end
// element. Comments and whitespace are skipped.
func nextStart(d *xml.Decoder) (*xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, NewFault(CodeWrongParam, "unexpected end of document")
			}
			return nil, NewFault(CodeWrongParam, "malformed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return &t, nil
		case xml.EndElement:
			return nil, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, NewFault(CodeWrongParam, "unexpected text content")
			}
		}
	}
}

// decodeSOAP decodes any of the eight message elements from a SOAP 1.2
// envelope, accepting only requests or only responses.
func decodeSOAP(r io.Reader, max int64, wantRequest bool) (any, error) {
	data, err := readLimited(r, max)
	if err != nil {
		return nil, err
	}
	if err := prescan(data); err != nil {
		return nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	env, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if env == nil || env.Name.Local != "Envelope" {
		return nil, NewFault(CodeWrongParam, "not a SOAP envelope")
	}
	if env.Name.Space != SOAPNamespace {
		return nil, NewFault(CodeIncompatibleInterface, "unsupported SOAP envelope namespace %q", env.Name.Space)
	}
	body, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if body != nil && body.Name.Space == SOAPNamespace && body.Name.Local == "Header" {
		if err := d.Skip(); err != nil {
			return nil, NewFault(CodeWrongParam, "malformed XML: %v", err)
		}
		if body, err = nextStart(d); err != nil {
			return nil, err
		}
	}
	if body == nil || body.Name.Space != SOAPNamespace || body.Name.Local != "Body" {
		return nil, NewFault(CodeWrongParam, "SOAP Body missing")
	}
	op, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if op == nil {
		return nil, NewFault(CodeMissingParam, "SOAP Body is empty")
	}
	depth := 0
	// The WSDL rpc style wraps the message in an operation element
	// (e.g. <MSS_Signature>); accept it in any namespace.
	if op.Name.Space != Namespace && isOperation(op.Name.Local) {
		depth = 1
		if op, err = nextStart(d); err != nil {
			return nil, err
		}
		if op == nil {
			return nil, NewFault(CodeMissingParam, "operation element is empty")
		}
	}
	info, ok := lookupElement(op.Name.Local)
	if !ok {
		return nil, NewFault(CodeWrongParam, "unknown operation %q", op.Name.Local)
	}
	if op.Name.Space != Namespace {
		return nil, NewFault(CodeIncompatibleInterface, "unsupported namespace %q for %s", op.Name.Space, op.Name.Local)
	}
	if info.request != wantRequest {
		return nil, NewFault(CodeWrongParam, "unexpected message %s", op.Name.Local)
	}
	v := info.new()
	if err := d.DecodeElement(v, op); err != nil {
		return nil, NewFault(CodeWrongParam, "decoding %s: %v", op.Name.Local, err)
	}
	// Consume the rest so the whole document is checked for well-formedness.
	for depth += 2; ; {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, NewFault(CodeWrongParam, "malformed XML: %v", err)
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		return nil, NewFault(CodeWrongParam, "malformed XML: unbalanced document")
	}
	if err := Validate(v); err != nil {
		return nil, err
	}
	return v, nil
}

// DecodeRequest decodes a SOAP 1.2 request envelope holding MSS_SignatureReq,
// MSS_StatusReq, MSS_ReceiptReq or MSS_ProfileReq (optionally wrapped in its
// rpc operation element) and returns the corresponding pointer
// (*MSSSignatureReq, ...). Bodies larger than max bytes (DefaultMaxBody when
// max <= 0) are rejected. Every error is a *Fault.
func DecodeRequest(r io.Reader, max int64) (any, error) { return decodeSOAP(r, max, true) }

// DecodeResponse is DecodeRequest for the four response messages.
func DecodeResponse(r io.Reader, max int64) (any, error) { return decodeSOAP(r, max, false) }

func writeEnvelope(w io.Writer, wrapper string, n *node) error {
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	env := el("env:Envelope").attr("xmlns:env", SOAPNamespace).attr("xmlns:mss", Namespace)
	if wrapper != "" {
		n = el(wrapper, n)
	}
	env.add(el("env:Body", n))
	env.write(&b)
	_, err := w.Write(b.Bytes())
	if err != nil {
		return fmt.Errorf("etsi: writing envelope: %w", err)
	}
	return nil
}

func encodeSOAP(w io.Writer, msg any, request bool) error {
	name, ok := elementName(msg)
	if !ok {
		return fmt.Errorf("etsi: unsupported message type %T", msg)
	}
	info, _ := lookupElement(name)
	if info.request != request {
		return fmt.Errorf("etsi: %s is not a %s", name, map[bool]string{true: "request", false: "response"}[request])
	}
	n, err := messageNode(msg)
	if err != nil {
		return err
	}
	wrapper := info.operation
	if !request {
		wrapper += "Response"
	}
	return writeEnvelope(w, wrapper, n)
}

// EncodeRequest writes a SOAP 1.2 envelope for a request message, wrapped in
// its rpc operation element (e.g. <MSS_Signature>).
func EncodeRequest(w io.Writer, req any) error { return encodeSOAP(w, req, true) }

// EncodeResponse writes a SOAP 1.2 envelope for a response message
// (*MSSSignatureResp, ...), wrapped in its rpc response element (e.g.
// <MSS_SignatureResponse>). Elements use the env: and mss: prefixes.
func EncodeResponse(w io.Writer, resp any) error { return encodeSOAP(w, resp, false) }

// EncodeFault writes a SOAP 1.2 Fault envelope for f: env:Sender or
// env:Receiver with subcode mss:_NNN, the status name as reason and the
// detail text in env:Detail/mss:StatusDetail.
func EncodeFault(w io.Writer, f *Fault) error {
	if f == nil {
		return errors.New("etsi: nil fault")
	}
	fault := el("env:Fault",
		el("env:Code",
			textEl("env:Value", "env:"+f.Code.faultClass()),
			el("env:Subcode", textEl("env:Value", "mss:_"+strconv.Itoa(int(f.Code))))),
		el("env:Reason", textEl("env:Text", f.Code.Name()).attr("xml:lang", "en")),
	)
	if f.Detail != "" {
		fault.add(el("env:Detail", textEl("mss:StatusDetail", f.Detail)))
	}
	var b bytes.Buffer
	b.WriteString(xmlHeader)
	el("env:Envelope", el("env:Body", fault)).
		attr("xmlns:env", SOAPNamespace).attr("xmlns:mss", Namespace).write(&b)
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("etsi: writing fault: %w", err)
	}
	return nil
}

type soapFault struct {
	Code struct {
		Value   string `xml:"http://www.w3.org/2003/05/soap-envelope Value"`
		Subcode struct {
			Value string `xml:"http://www.w3.org/2003/05/soap-envelope Value"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Subcode"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Code"`
	Detail struct {
		Inner string `xml:",innerxml"`
		Text  string `xml:"StatusDetail"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Detail"`
}

// DecodeFault decodes a SOAP 1.2 Fault envelope produced by an MSSP (client
// side). The code is taken from the _NNN subcode.
func DecodeFault(r io.Reader, max int64) (*Fault, error) {
	data, err := readLimited(r, max)
	if err != nil {
		return nil, err
	}
	if err := prescan(data); err != nil {
		return nil, err
	}
	var env struct {
		XMLName xml.Name   `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
		Fault   *soapFault `xml:"http://www.w3.org/2003/05/soap-envelope Body>Fault"`
	}
	if err := xml.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("etsi: decoding fault: %w", err)
	}
	if env.Fault == nil {
		return nil, errors.New("etsi: no SOAP fault in body")
	}
	sub := strings.TrimSpace(env.Fault.Code.Subcode.Value)
	if i := strings.IndexByte(sub, ':'); i >= 0 {
		sub = sub[i+1:]
	}
	n, err := strconv.Atoi(strings.TrimPrefix(sub, "_"))
	if err != nil || !strings.HasPrefix(sub, "_") {
		return nil, fmt.Errorf("etsi: fault subcode %q is not an ETSI status code", env.Fault.Code.Subcode.Value)
	}
	detail := env.Fault.Detail.Text
	if detail == "" {
		detail = strings.TrimSpace(env.Fault.Detail.Inner)
	}
	return &Fault{Code: Code(n), Detail: detail}, nil
}
