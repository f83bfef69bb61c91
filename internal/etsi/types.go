package etsi

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Namespaces used by the codec.
const (
	// Namespace is the TS 102 204 namespace (prefix mss).
	Namespace = "http://uri.etsi.org/TS102204/v1.1.2#"
	// SOAPNamespace is the SOAP 1.2 envelope namespace (prefix env).
	SOAPNamespace = "http://www.w3.org/2003/05/soap-envelope"
	// FiComNamespace is the FiCom profile namespace (prefix fi), used for
	// fi:PKCS1 signatures.
	FiComNamespace = "http://mss.ficom.fi/TS102204/v1.0.0#"
	// XMLDSigNamespace is the XML-DSig namespace (prefix ds).
	XMLDSigNamespace = "http://www.w3.org/2000/09/xmldsig#"
)

// MessagingMode is the MessagingMode attribute of MSS_SignatureReq.
type MessagingMode string

// Messaging modes of TS 102 204 (MessagingModeType).
const (
	Synch              MessagingMode = "synch"
	AsynchClientServer MessagingMode = "asynchClientServer"
	AsynchServerServer MessagingMode = "asynchServerServer"
	// Asynch is the Swisscom REST spelling of asynchClientServer; it is
	// accepted on decode and preserved as is.
	Asynch MessagingMode = "asynch"
)

func (m MessagingMode) valid() bool {
	switch m {
	case Synch, AsynchClientServer, AsynchServerServer, Asynch:
		return true
	}
	return false
}

// MessageAbstract is the common header of every message
// (MessageAbstractType): AP_Info, MSSP_Info and the version attributes.
type MessageAbstract struct {
	MajorVersion int      `xml:"MajorVersion,attr" json:"MajorVersion,string"`
	MinorVersion int      `xml:"MinorVersion,attr" json:"MinorVersion,string"`
	APInfo       APInfo   `xml:"AP_Info" json:"AP_Info"`
	MSSPInfo     MSSPInfo `xml:"MSSP_Info" json:"MSSP_Info"`
}

// APInfo identifies the application provider and its transaction.
type APInfo struct {
	APID      string    `xml:"AP_ID,attr" json:"AP_ID"`
	APTransID string    `xml:"AP_TransID,attr" json:"AP_TransID"`
	APPWD     string    `xml:"AP_PWD,attr" json:"AP_PWD"`
	Instant   time.Time `xml:"Instant,attr" json:"Instant"`
	APURL     string    `xml:"AP_URL,attr,omitempty" json:"AP_URL,omitempty"`
}

// MSSPInfo identifies the MSSP.
type MSSPInfo struct {
	MSSPID  MeshMember `xml:"MSSP_ID" json:"MSSP_ID"`
	Instant time.Time  `xml:"Instant,attr,omitempty" json:"Instant,omitzero"`
}

// MeshMember is MeshMemberType: an MSSP identified by DNS name, IP address,
// URI or identifier string.
type MeshMember struct {
	DNSName          string `xml:"DNSName,omitempty" json:"DNSName,omitempty"`
	IPAddress        string `xml:"IPAddress,omitempty" json:"IPAddress,omitempty"`
	URI              string `xml:"URI,omitempty" json:"URI,omitempty"`
	IdentifierString string `xml:"IdentifierString,omitempty" json:"IdentifierString,omitempty"`
}

// MobileUser identifies the end user. Only MSISDN is supported.
type MobileUser struct {
	MSISDN string `xml:"MSISDN,omitempty" json:"MSISDN,omitempty"`
}

// Data is DataType, used for DataToBeSigned, DataToBeDisplayed and the
// receipt Message.
type Data struct {
	MimeType string `xml:"MimeType,attr,omitempty" json:"MimeType,omitempty"`
	Encoding string `xml:"Encoding,attr,omitempty" json:"Encoding,omitempty"`
	Value    string `xml:",chardata" json:"Data"`
}

// MSSURI is mssURIType: a URI wrapped in an mss:mssURI element (used for
// SignatureProfile, MSS_Format and service descriptions). In JSON it is a
// plain string.
type MSSURI struct {
	URI string `xml:"mssURI"`
}

// MarshalJSON encodes u as a JSON string.
func (u MSSURI) MarshalJSON() ([]byte, error) { return json.Marshal(u.URI) }

// UnmarshalJSON decodes a JSON string into u.
func (u *MSSURI) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &u.URI) }

// Base64 is binary data carried as base64 text.
type Base64 []byte

// MarshalText encodes b as standard base64.
func (b Base64) MarshalText() ([]byte, error) {
	return []byte(base64.StdEncoding.EncodeToString(b)), nil
}

// UnmarshalText decodes standard base64 (line breaks are ignored).
func (b *Base64) UnmarshalText(t []byte) error {
	v, err := base64.StdEncoding.DecodeString(string(t))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Signature is the MSS_Signature choice. Exactly one of Base64Signature
// (PKCS#7/CMS) and PKCS1 (FiCom fi:PKCS1) is set.
type Signature struct {
	Base64Signature Base64 `xml:"Base64Signature,omitempty" json:"Base64Signature,omitempty"`
	PKCS1           *PKCS1 `xml:"PKCS1" json:"PKCS1,omitempty"`
}

// PKCS1 is the FiCom fi:PKCS1 signature: a raw signature value and the
// signer certificate (DER).
type PKCS1 struct {
	SignatureValue  Base64 `xml:"SignatureValue" json:"SignatureValue"`
	X509Certificate Base64 `xml:"X509Certificate" json:"X509Certificate"`
}

// StatusCode is the StatusCode element.
type StatusCode struct {
	Value Code `xml:"Value,attr" json:"Value,string"`
}

// Status is the Status element. Its XML and JSON forms are written by hand
// (see status_detail.go) because two fields live in nested elements.
type Status struct {
	StatusCode StatusCode
	// DetailCode is the FiCom four-digit detail code refining
	// StatusCode (e.g. 2093 under 209), or 0. On the wire it is a
	// StatusCode nested in StatusCode, which StatusCodeType allows.
	DetailCode    int
	StatusMessage string
	// StatusDetail is the text content of StatusDetail.
	StatusDetail string
	// Registration is the result of an MSS_Registration, carried as
	// mreg:Result inside StatusDetail, both in MSS_RegistrationResp and in
	// an MSS_StatusResp for a registration that completed later.
	Registration *RegistrationResult
}

// NewStatus returns a Status with the code and its symbolic name as message.
func NewStatus(c Code) Status {
	return Status{StatusCode: StatusCode{Value: c}, StatusMessage: c.Name()}
}

// MSSSignatureReq is MSS_SignatureReq.
type MSSSignatureReq struct {
	MessageAbstract
	ValidityDate       time.Time     `xml:"ValidityDate,attr,omitempty" json:"ValidityDate,omitzero"`
	TimeOut            int           `xml:"TimeOut,attr,omitempty" json:"TimeOut,string,omitempty"`
	MessagingMode      MessagingMode `xml:"MessagingMode,attr" json:"MessagingMode"`
	MobileUser         MobileUser    `xml:"MobileUser" json:"MobileUser"`
	DataToBeSigned     Data          `xml:"DataToBeSigned" json:"DataToBeSigned"`
	DataToBeDisplayed  *Data         `xml:"DataToBeDisplayed" json:"DataToBeDisplayed,omitempty"`
	SignatureProfile   *MSSURI       `xml:"SignatureProfile" json:"SignatureProfile,omitempty"`
	AdditionalServices []Service     `xml:"AdditionalServices>Service" json:"AdditionalServices,omitempty"`
	MSSFormat          *MSSURI       `xml:"MSS_Format" json:"MSS_Format,omitempty"`
	// SignatureProfileComparison says how SignatureProfile is matched
	// against the profiles the user has; empty means the MSSP's default.
	SignatureProfileComparison ProfileComparison `xml:"SignatureProfileComparison,omitempty" json:"SignatureProfileComparison,omitempty"`
}

// MSSSignatureResp is MSS_SignatureResp.
type MSSSignatureResp struct {
	MessageAbstract
	MSSPTransID      string     `xml:"MSSP_TransID,attr" json:"MSSP_TransID"`
	MobileUser       MobileUser `xml:"MobileUser" json:"MobileUser"`
	MSSSignature     *Signature `xml:"MSS_Signature" json:"MSS_Signature,omitempty"`
	SignatureProfile *MSSURI    `xml:"SignatureProfile" json:"SignatureProfile,omitempty"`
	Status           Status     `xml:"Status" json:"Status"`
}

// MSSStatusReq is MSS_StatusReq (operation MSS_StatusQuery).
type MSSStatusReq struct {
	MessageAbstract
	MSSPTransID string `xml:"MSSP_TransID,attr" json:"MSSP_TransID"`
}

// MSSStatusResp is MSS_StatusResp.
type MSSStatusResp struct {
	MessageAbstract
	// MSSPTransID is optional; it is set in MSS_Notification callbacks.
	MSSPTransID  string     `xml:"MSSP_TransID,attr,omitempty" json:"MSSP_TransID,omitempty"`
	MobileUser   MobileUser `xml:"MobileUser" json:"MobileUser"`
	MSSSignature *Signature `xml:"MSS_Signature" json:"MSS_Signature,omitempty"`
	Status       Status     `xml:"Status" json:"Status"`
}

// MSSReceiptReq is MSS_ReceiptReq.
type MSSReceiptReq struct {
	MessageAbstract
	MSSPTransID string     `xml:"MSSP_TransID,attr" json:"MSSP_TransID"`
	MobileUser  MobileUser `xml:"MobileUser" json:"MobileUser"`
	Status      *Status    `xml:"Status" json:"Status,omitempty"`
	Message     *Data      `xml:"Message" json:"Message,omitempty"`
}

// MSSReceiptResp is MSS_ReceiptResp.
type MSSReceiptResp struct {
	MessageAbstract
	Status Status `xml:"Status" json:"Status"`
}

// MSSProfileReq is MSS_ProfileReq (operation MSS_ProfileQuery).
type MSSProfileReq struct {
	MessageAbstract
	MobileUser MobileUser `xml:"MobileUser" json:"MobileUser"`
}

// MSSProfileResp is MSS_ProfileResp.
type MSSProfileResp struct {
	MessageAbstract
	SignatureProfile []MSSURI `xml:"SignatureProfile" json:"SignatureProfile,omitempty"`
	Status           Status   `xml:"Status" json:"Status"`
}

// msgInfo describes one message element.
type msgInfo struct {
	element   string // e.g. MSS_SignatureReq
	operation string // e.g. MSS_Signature
	request   bool
	new       func() any
}

var messages = []msgInfo{
	{"MSS_SignatureReq", "MSS_Signature", true, func() any { return new(MSSSignatureReq) }},
	{"MSS_SignatureResp", "MSS_Signature", false, func() any { return new(MSSSignatureResp) }},
	{"MSS_StatusReq", "MSS_StatusQuery", true, func() any { return new(MSSStatusReq) }},
	{"MSS_StatusResp", "MSS_StatusQuery", false, func() any { return new(MSSStatusResp) }},
	{"MSS_ReceiptReq", "MSS_Receipt", true, func() any { return new(MSSReceiptReq) }},
	{"MSS_ReceiptResp", "MSS_Receipt", false, func() any { return new(MSSReceiptResp) }},
	{"MSS_ProfileReq", "MSS_ProfileQuery", true, func() any { return new(MSSProfileReq) }},
	{"MSS_ProfileResp", "MSS_ProfileQuery", false, func() any { return new(MSSProfileResp) }},
	{"MSS_RegistrationReq", "MSS_Registration", true, func() any { return new(MSSRegistrationReq) }},
	{"MSS_RegistrationResp", "MSS_Registration", false, func() any { return new(MSSRegistrationResp) }},
}

func lookupElement(name string) (msgInfo, bool) {
	for _, m := range messages {
		if m.element == name {
			return m, true
		}
	}
	return msgInfo{}, false
}

// operationOf returns the operation named by an rpc wrapper element
// (MSS_Signature or MSS_SignatureResponse, ...), including MSS_Notification,
// which carries messages of other operations.
func operationOf(name string) (string, bool) {
	op := strings.TrimSuffix(name, "Response")
	if op == notificationOperation {
		return op, true
	}
	for _, m := range messages {
		if m.operation == op {
			return op, true
		}
	}
	return "", false
}

// elementName returns the message element name of v (a pointer to one of the
// message types).
func elementName(v any) (string, bool) {
	switch v.(type) {
	case *MSSSignatureReq:
		return "MSS_SignatureReq", true
	case *MSSSignatureResp:
		return "MSS_SignatureResp", true
	case *MSSStatusReq:
		return "MSS_StatusReq", true
	case *MSSStatusResp:
		return "MSS_StatusResp", true
	case *MSSReceiptReq:
		return "MSS_ReceiptReq", true
	case *MSSReceiptResp:
		return "MSS_ReceiptResp", true
	case *MSSProfileReq:
		return "MSS_ProfileReq", true
	case *MSSProfileResp:
		return "MSS_ProfileResp", true
	case *MSSRegistrationReq:
		return "MSS_RegistrationReq", true
	case *MSSRegistrationResp:
		return "MSS_RegistrationResp", true
	}
	return "", false
}
