package etsi

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"time"
)

// node is a minimal XML element tree used by the hand-written encoder so the
// output carries fixed, conventional prefixes.
type node struct {
	name  string
	attrs [][2]string
	text  string
	kids  []*node
}

func el(name string, kids ...*node) *node { return &node{name: name, kids: kids} }

func (n *node) attr(name, value string) *node {
	n.attrs = append(n.attrs, [2]string{name, value})
	return n
}

// optAttr adds the attribute only when value is non-empty.
func (n *node) optAttr(name, value string) *node {
	if value != "" {
		n.attr(name, value)
	}
	return n
}

func (n *node) add(kids ...*node) *node {
	for _, k := range kids {
		if k != nil {
			n.kids = append(n.kids, k)
		}
	}
	return n
}

func textEl(name, text string) *node { return &node{name: name, text: text} }

// optText returns a text element, or nil when text is empty.
func optText(name, text string) *node {
	if text == "" {
		return nil
	}
	return textEl(name, text)
}

func escape(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // writes to a bytes.Buffer never fail
}

func (n *node) write(b *bytes.Buffer) {
	b.WriteByte('<')
	b.WriteString(n.name)
	for _, a := range n.attrs {
		b.WriteByte(' ')
		b.WriteString(a[0])
		b.WriteString(`="`)
		escape(b, a[1])
		b.WriteByte('"')
	}
	if n.text == "" && len(n.kids) == 0 {
		b.WriteString("/>")
		return
	}
	b.WriteByte('>')
	escape(b, n.text)
	for _, k := range n.kids {
		k.write(b)
	}
	b.WriteString("</")
	b.WriteString(n.name)
	b.WriteByte('>')
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	b, err := t.MarshalText()
	if err != nil {
		return ""
	}
	return string(b)
}

func fmtInt(i int) string {
	if i == 0 {
		return ""
	}
	return strconv.Itoa(i)
}

func b64(b Base64) string {
	t, _ := b.MarshalText()
	return string(t)
}

// --- message → node ---

func abstractNode(name string, m *MessageAbstract) *node {
	n := el("mss:"+name).
		attr("MajorVersion", strconv.Itoa(m.MajorVersion)).
		attr("MinorVersion", strconv.Itoa(m.MinorVersion))
	a := &m.APInfo
	ap := el("mss:AP_Info").
		attr("AP_ID", a.APID).
		attr("AP_TransID", a.APTransID).
		attr("AP_PWD", a.APPWD).
		optAttr("Instant", fmtTime(a.Instant)).
		optAttr("AP_URL", a.APURL)
	id := &m.MSSPInfo.MSSPID
	mssp := el("mss:MSSP_Info",
		el("mss:MSSP_ID").add(
			optText("mss:DNSName", id.DNSName),
			optText("mss:IPAddress", id.IPAddress),
			optText("mss:URI", id.URI),
			optText("mss:IdentifierString", id.IdentifierString),
		)).optAttr("Instant", fmtTime(m.MSSPInfo.Instant))
	return n.add(ap, mssp)
}

func mobileUserNode(u *MobileUser) *node {
	return el("mss:MobileUser").add(optText("mss:MSISDN", u.MSISDN))
}

func dataNode(name string, d *Data) *node {
	if d == nil {
		return nil
	}
	n := textEl("mss:"+name, d.Value)
	return n.optAttr("MimeType", d.MimeType).optAttr("Encoding", d.Encoding)
}

func uriNode(name string, u *MSSURI) *node {
	if u == nil {
		return nil
	}
	return el("mss:"+name, textEl("mss:mssURI", u.URI))
}

func signatureNode(s *Signature) *node {
	if s == nil {
		return nil
	}
	n := el("mss:MSS_Signature")
	if len(s.Base64Signature) > 0 {
		n.add(textEl("mss:Base64Signature", b64(s.Base64Signature)))
	}
	if p := s.PKCS1; p != nil {
		n.add(el("fi:PKCS1",
			textEl("fi:SignatureValue", b64(p.SignatureValue)),
			textEl("fi:X509Certificate", b64(p.X509Certificate)),
		).attr("xmlns:fi", FiComNamespace))
	}
	return n
}

// messageNode converts a message to its mss: element tree.
func messageNode(v any) (*node, error) {
	switch m := v.(type) {
	case *MSSSignatureReq:
		n := abstractNode("MSS_SignatureReq", &m.MessageAbstract).
			optAttr("ValidityDate", fmtTime(m.ValidityDate)).
			optAttr("TimeOut", fmtInt(m.TimeOut)).
			attr("MessagingMode", string(m.MessagingMode))
		n.add(mobileUserNode(&m.MobileUser), dataNode("DataToBeSigned", &m.DataToBeSigned),
			dataNode("DataToBeDisplayed", m.DataToBeDisplayed), uriNode("SignatureProfile", m.SignatureProfile))
		if len(m.AdditionalServices) > 0 {
			as := el("mss:AdditionalServices")
			for i := range m.AdditionalServices {
				as.add(serviceNode(&m.AdditionalServices[i]))
			}
			n.add(as)
		}
		return n.add(uriNode("MSS_Format", m.MSSFormat),
			optText("mss:SignatureProfileComparison", string(m.SignatureProfileComparison))), nil
	case *MSSSignatureResp:
		n := abstractNode("MSS_SignatureResp", &m.MessageAbstract).attr("MSSP_TransID", m.MSSPTransID)
		return n.add(mobileUserNode(&m.MobileUser), signatureNode(m.MSSSignature),
			uriNode("SignatureProfile", m.SignatureProfile), statusNode(&m.Status)), nil
	case *MSSStatusReq:
		return abstractNode("MSS_StatusReq", &m.MessageAbstract).attr("MSSP_TransID", m.MSSPTransID), nil
	case *MSSStatusResp:
		n := abstractNode("MSS_StatusResp", &m.MessageAbstract).optAttr("MSSP_TransID", m.MSSPTransID)
		return n.add(mobileUserNode(&m.MobileUser), signatureNode(m.MSSSignature), statusNode(&m.Status)), nil
	case *MSSReceiptReq:
		n := abstractNode("MSS_ReceiptReq", &m.MessageAbstract).attr("MSSP_TransID", m.MSSPTransID)
		return n.add(mobileUserNode(&m.MobileUser), statusNode(m.Status), dataNode("Message", m.Message)), nil
	case *MSSReceiptResp:
		return abstractNode("MSS_ReceiptResp", &m.MessageAbstract).add(statusNode(&m.Status)), nil
	case *MSSProfileReq:
		return abstractNode("MSS_ProfileReq", &m.MessageAbstract).add(mobileUserNode(&m.MobileUser)), nil
	case *MSSProfileResp:
		n := abstractNode("MSS_ProfileResp", &m.MessageAbstract)
		for i := range m.SignatureProfile {
			n.add(uriNode("SignatureProfile", &m.SignatureProfile[i]))
		}
		return n.add(statusNode(&m.Status)), nil
	case *MSSRegistrationReq:
		n := abstractNode("MSS_RegistrationReq", &m.MessageAbstract)
		return n.add(mobileUserNode(&m.MobileUser), optText("mss:CertificateURI", m.CertificateURI),
			optText("mss:X509Certificate", b64(m.X509Certificate)), registrationOperationNode(m.Operation)), nil
	case *MSSRegistrationResp:
		n := abstractNode("MSS_RegistrationResp", &m.MessageAbstract).optAttr("MSSP_TransID", m.MSSPTransID)
		return n.add(statusNode(&m.Status), optText("mss:CertificateURI", m.CertificateURI),
			optText("mss:X509Certificate", b64(m.X509Certificate)), optText("mss:PublicKey", b64(m.PublicKey))), nil
	}
	return nil, NewFault(CodeInternalError, "unsupported message type %T", v)
}
