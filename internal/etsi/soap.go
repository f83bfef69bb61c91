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

// prescan rejects DTDs, entity declarations and processing instructions
// other than the XML declaration before any structured decoding happens.
// It looks at the markup only, without tokenizing the document: "<" always
// starts markup in well-formed XML (it cannot appear in text or attribute
// values), and comments and CDATA sections are skipped whole. Whether the
// document is well-formed is then checked by the decoder, which reads it to
// the end.
func prescan(data []byte) error {
	for i := 0; ; {
		j := bytes.IndexByte(data[i:], '<')
		if j < 0 {
			return nil
		}
		i += j
		rest := data[i:]
		var end int
		switch {
		case bytes.HasPrefix(rest, commentStart):
			end = skipPast(rest[len(commentStart):], commentEnd, len(commentStart))
		case bytes.HasPrefix(rest, cdataStart):
			end = skipPast(rest[len(cdataStart):], cdataEnd, len(cdataStart))
		case bytes.HasPrefix(rest, piStart):
			end = skipPast(rest[len(piStart):], piEnd, len(piStart))
			if end > 0 {
				target := rest[len(piStart) : end-len(piEnd)]
				if k := bytes.IndexAny(target, " \t\r\n"); k >= 0 {
					target = target[:k]
				}
				if string(target) != "xml" {
					return NewFault(CodeWrongParam, "processing instructions are not allowed")
				}
			}
		case bytes.HasPrefix(rest, directiveStart):
			return NewFault(CodeWrongParam, "DOCTYPE and entity declarations are not allowed")
		default:
			end = 1
		}
		if end < 0 {
			return NewFault(CodeWrongParam, "malformed XML: unterminated comment, CDATA section or processing instruction")
		}
		i += end
	}
}

var (
	commentStart, commentEnd = []byte("<!--"), []byte("-->")
	cdataStart, cdataEnd     = []byte("<![CDATA["), []byte("]]>")
	piStart, piEnd           = []byte("<?"), []byte("?>")
	directiveStart           = []byte("<!")
)

// skipPast returns the offset just past the first end in b, plus skip, or
// -1 when end does not occur.
func skipPast(b, end []byte, skip int) int {
	k := bytes.Index(b, end)
	if k < 0 {
		return -1
	}
	return skip + k + len(end)
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

// envelopeKind says which messages a SOAP body may carry.
type envelopeKind int

const (
	kindRequest              envelopeKind = iota // AP → MSSP requests
	kindResponse                                 // MSSP → AP responses
	kindNotification                             // MSSP → AP: MSS_StatusResp in MSS_Notification
	kindNotificationResponse                     // AP → MSSP: MSS_ReceiptReq answering it
)

// notificationOperation is the operation of the asynchServerServer
// callback. It has no messages of its own: the MSSP sends an
// MSS_StatusResp and the AP answers with an MSS_ReceiptReq (Laverca's
// MSS_NotificationPortType).
const notificationOperation = "MSS_Notification"

// accepts reports whether a body of kind k may carry message m, and under
// which operation.
func (k envelopeKind) accepts(m msgInfo) (operation string, ok bool) {
	switch k {
	case kindRequest:
		return m.operation, m.request
	case kindResponse:
		return m.operation, !m.request
	case kindNotification:
		return notificationOperation, m.element == "MSS_StatusResp"
	case kindNotificationResponse:
		return notificationOperation, m.element == "MSS_ReceiptReq"
	}
	return "", false
}

// decodeSOAP decodes a request or response message from a SOAP 1.2
// envelope.
func decodeSOAP(r io.Reader, max int64, wantRequest bool) (any, error) {
	if wantRequest {
		return decodeEnvelope(r, max, kindRequest)
	}
	return decodeEnvelope(r, max, kindResponse)
}

// decodeEnvelope decodes one message of kind k from a SOAP 1.2 envelope.
func decodeEnvelope(r io.Reader, max int64, k envelopeKind) (any, error) {
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
	// The WSDL rpc style wraps the message in an operation element (e.g.
	// <MSS_Signature>), which toolkits put in no namespace, in the
	// WSDL's target namespace or in any other; accept them all.
	var wrapper *xml.StartElement
	wrapperOp, isWrapper := operationOf(op.Name.Local)
	if isWrapper {
		depth, wrapper = 1, op
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
	// In rpc/literal the part accessor inside the wrapper is unqualified
	// (WSDL 1.1 §3.5); some toolkits give it the wrapper's namespace.
	if ns := op.Name.Space; ns != Namespace && (wrapper == nil || ns != "" && ns != wrapper.Name.Space) {
		return nil, NewFault(CodeIncompatibleInterface, "unsupported namespace %q for %s", op.Name.Space, op.Name.Local)
	}
	operation, ok := k.accepts(info)
	if !ok {
		return nil, NewFault(CodeWrongParam, "unexpected message %s", op.Name.Local)
	}
	if isWrapper && wrapperOp != operation {
		return nil, NewFault(CodeWrongParam, "operation %s does not carry %s", wrapper.Name.Local, op.Name.Local)
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
	if k == kindNotification && v.(*MSSStatusResp).MSSPTransID == "" {
		return nil, NewFault(CodeMissingParam, "MSSP_TransID missing")
	}
	return v, nil
}

// DecodeRequest decodes a SOAP 1.2 request envelope holding MSS_SignatureReq,
// MSS_StatusReq, MSS_ReceiptReq, MSS_ProfileReq or MSS_RegistrationReq
// (optionally wrapped in its rpc operation element) and returns the
// corresponding pointer (*MSSSignatureReq, ...). Bodies larger than max
// bytes (DefaultMaxBody when max <= 0) are rejected. Every error is a
// *Fault.
func DecodeRequest(r io.Reader, max int64) (any, error) { return decodeSOAP(r, max, true) }

// DecodeResponse is DecodeRequest for the five response messages.
func DecodeResponse(r io.Reader, max int64) (any, error) { return decodeSOAP(r, max, false) }

// DecodeNotification decodes the MSS_Notification an MSSP sends to the
// AP_URL of an asynchServerServer request: an MSS_StatusResp, which must
// carry MSSP_TransID, in an <MSS_Notification> element. Limits and errors
// are as for DecodeRequest.
func DecodeNotification(r io.Reader, max int64) (*MSSStatusResp, error) {
	v, err := decodeEnvelope(r, max, kindNotification)
	if err != nil {
		return nil, err
	}
	return v.(*MSSStatusResp), nil
}

// DecodeNotificationResponse decodes the AP's answer to MSS_Notification:
// an MSS_ReceiptReq in an <MSS_NotificationResponse> element.
func DecodeNotificationResponse(r io.Reader, max int64) (*MSSReceiptReq, error) {
	v, err := decodeEnvelope(r, max, kindNotificationResponse)
	if err != nil {
		return nil, err
	}
	return v.(*MSSReceiptReq), nil
}

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

// EncodeNotification writes the MSS_Notification an MSSP posts to the
// AP_URL of an asynchServerServer request: n in an <MSS_Notification>
// element. n.MSSPTransID names the transaction and must be set.
func EncodeNotification(w io.Writer, n *MSSStatusResp) error {
	if n == nil {
		return errors.New("etsi: nil notification")
	}
	if n.MSSPTransID == "" {
		return errors.New("etsi: notification without MSSP_TransID")
	}
	node, err := messageNode(n)
	if err != nil {
		return err
	}
	return writeEnvelope(w, notificationOperation, node)
}

// EncodeNotificationResponse writes the AP's answer to MSS_Notification: an
// MSS_ReceiptReq in an <MSS_NotificationResponse> element.
func EncodeNotificationResponse(w io.Writer, ack *MSSReceiptReq) error {
	if ack == nil {
		return errors.New("etsi: nil notification response")
	}
	node, err := messageNode(ack)
	if err != nil {
		return err
	}
	return writeEnvelope(w, notificationOperation+"Response", node)
}

// EncodeFault writes a SOAP 1.2 Fault envelope for f: env:Sender or
// env:Receiver with subcode mss:_NNN, a nested subcode mss:_DDDD when f has
// a detail code, the status name as reason and the detail text in
// env:Detail/mss:StatusDetail.
func EncodeFault(w io.Writer, f *Fault) error {
	if f == nil {
		return errors.New("etsi: nil fault")
	}
	sub := el("env:Subcode", textEl("env:Value", "mss:_"+strconv.Itoa(int(f.Code))))
	if f.DetailCode != 0 {
		sub.add(el("env:Subcode", textEl("env:Value", "mss:_"+strconv.Itoa(f.DetailCode))))
	}
	fault := el("env:Fault",
		el("env:Code", textEl("env:Value", "env:"+f.Code.faultClass()), sub),
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
			Value   string `xml:"http://www.w3.org/2003/05/soap-envelope Value"`
			Subcode *struct {
				Value string `xml:"http://www.w3.org/2003/05/soap-envelope Value"`
			} `xml:"http://www.w3.org/2003/05/soap-envelope Subcode"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Subcode"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Code"`
	Detail struct {
		Inner string `xml:",innerxml"`
		Text  string `xml:"StatusDetail"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Detail"`
}

// DecodeFault decodes a SOAP 1.2 Fault envelope produced by an MSSP (client
// side). The code is taken from the _NNN subcode and the detail code from a
// nested subcode (_DDDD, or DDDD as some MSSPs write it).
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
	sc := &env.Fault.Code.Subcode
	n, ok := parseSubcode(sc.Value, true)
	if !ok {
		return nil, fmt.Errorf("etsi: fault subcode %q is not an ETSI status code", sc.Value)
	}
	f := &Fault{Code: Code(n), Detail: env.Fault.Detail.Text}
	if f.Detail == "" {
		f.Detail = strings.TrimSpace(env.Fault.Detail.Inner)
	}
	if sc.Subcode != nil {
		if f.DetailCode, ok = parseSubcode(sc.Subcode.Value, false); !ok {
			return nil, fmt.Errorf("etsi: fault detail subcode %q is not a detail code", sc.Subcode.Value)
		}
	}
	return f, nil
}

// parseSubcode parses a subcode QName such as mss:_101. The underscore,
// which makes the local part an NCName, is required when strict.
func parseSubcode(qname string, strict bool) (int, bool) {
	s := strings.TrimSpace(qname)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	digits := strings.TrimPrefix(s, "_")
	if strict && digits == s {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil
}
