package etsi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
)

// Additional service URIs (the mssURI of AdditionalServices/Service/
// Description).
const (
	// ServiceValidate asks the MSSP to validate the signature and the
	// signer's certificate (TS 102 204 §5.2.2).
	ServiceValidate = "http://uri.etsi.org/TS102204/v1.1.2#validate"
	// ServiceTimestamp asks the MSSP to time-stamp the signature.
	ServiceTimestamp = "http://uri.etsi.org/TS102204/v1.1.2#timestamp"
	// ServiceEventID is the FiCom event ID service; its parameter is
	// Service.EventID, shown on both the AP's page and the phone.
	ServiceEventID = "http://mss.ficom.fi/TS102204/v1.0.0#eventId"
	// ServiceNoSpam is the FiCom anti-spam code service; its parameter is
	// Service.NoSpamCode.
	ServiceNoSpam = "http://mss.ficom.fi/TS102204/v1.0.0#noSpam"
	// ServiceUserLang is the FiCom user language service; its parameter is
	// Service.UserLang. Swisscom Mobile ID uses the same URI (and makes it
	// mandatory), so there is no separate Swisscom constant.
	ServiceUserLang = "http://mss.ficom.fi/TS102204/v1.0.0#userLang"
)

// MSS_Format URIs: the form of the returned MSS_Signature.
const (
	// FormatPKCS7 is a PKCS#7 SignedData in Base64Signature.
	FormatPKCS7 = "http://uri.etsi.org/TS102204/v1.1.2#PKCS7"
	// FormatCMS is a CMS SignedData in Base64Signature.
	FormatCMS = "http://uri.etsi.org/TS102204/v1.1.2#CMS-Signature"
	// FormatFiComPKCS1 is a raw signature value with the signer's
	// certificate in fi:PKCS1.
	FormatFiComPKCS1 = "http://mss.ficom.fi/TS102204/v1.0.0#PKCS1"
	// FormatKiuruPKCS1 is the Kiuru MSSP name for the same raw signature.
	FormatKiuruPKCS1 = "http://www.methics.fi/KiuruMSSP/v3.2.0#PKCS1"
)

// ProfileComparison is SignatureProfileComparisonType: how the requested
// SignatureProfile is matched against the profiles the user holds.
type ProfileComparison string

// The SignatureProfileComparisonType values. The schema defines no
// "maximum".
const (
	CompareExact   ProfileComparison = "exact"
	CompareMinimum ProfileComparison = "minimum"
	CompareBetter  ProfileComparison = "better"
)

func (c ProfileComparison) valid() bool {
	switch c {
	case "", CompareExact, CompareMinimum, CompareBetter:
		return true
	}
	return false
}

// Service is one AdditionalServices/Service entry: the service URI and the
// FiCom parameters that some services take. In SOAP the parameters are
// fi:EventID, fi:NoSpamCode and fi:UserLang; in JSON they are the Kiuru and
// Swisscom objects "EventID":{"Value":…}, "NoSpamCode":{"Code":…,"Verify":…}
// and "UserLang":{"Value":…}.
type Service struct {
	Description MSSURI
	// EventID is the FiCom event ID (service ServiceEventID).
	EventID string
	// NoSpamCode is the FiCom anti-spam code (service ServiceNoSpam).
	NoSpamCode *NoSpamCode
	// UserLang is the ISO 639-1 language of the texts shown to the user
	// (service ServiceUserLang), e.g. "en" or Swisscom's "EN".
	UserLang string
}

// NoSpamCode is the FiCom fi:NoSpamCode parameter: a code the user chose,
// shown on the phone so that requests not from this AP stand out.
type NoSpamCode struct {
	// Value is the code.
	Value string
	// Verify is the verify attribute: "yes" asks the MSSP to check the
	// code against the one on record, "no" only to show it. Empty means
	// the attribute is absent, which the FiCom schema defaults to "yes".
	Verify string
}

// serviceXML is the decoding form of Service. Parameters are matched by
// local name: the FiCom schema puts them in the fi namespace, but rpc SOAP
// toolkits often qualify them with the message's namespace instead.
type serviceXML struct {
	Description MSSURI `xml:"Description"`
	EventID     string `xml:"EventID"`
	NoSpamCode  *struct {
		Value  string `xml:",chardata"`
		Verify string `xml:"verify,attr"`
	} `xml:"NoSpamCode"`
	UserLang *struct {
		Text  string `xml:",chardata"`
		Value string `xml:"Value,attr"`
	} `xml:"UserLang"`
}

// UnmarshalXML decodes a Service element. fi:UserLang is text in the FiCom
// schema and in Swisscom's SOAP examples; an element with a Value attribute,
// as in Swisscom's JSON, is accepted too.
func (s *Service) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var w serviceXML
	if err := d.DecodeElement(&w, &start); err != nil {
		return err
	}
	*s = Service{Description: w.Description, EventID: strings.TrimSpace(w.EventID)}
	if n := w.NoSpamCode; n != nil {
		s.NoSpamCode = &NoSpamCode{Value: strings.TrimSpace(n.Value), Verify: n.Verify}
	}
	if u := w.UserLang; u != nil {
		s.UserLang = strings.TrimSpace(u.Text)
		if s.UserLang == "" {
			s.UserLang = strings.TrimSpace(u.Value)
		}
	}
	return nil
}

func serviceNode(s *Service) *node {
	n := el("mss:Service", uriNode("Description", &s.Description))
	fi := func(name, text string) *node {
		return textEl("fi:"+name, text).attr("xmlns:fi", FiComNamespace)
	}
	if s.EventID != "" {
		n.add(fi("EventID", s.EventID))
	}
	if c := s.NoSpamCode; c != nil {
		n.add(fi("NoSpamCode", c.Value).optAttr("verify", c.Verify))
	}
	if s.UserLang != "" {
		n.add(fi("UserLang", s.UserLang))
	}
	return n
}

// jsonValue is the {"Value": "..."} wrapper of Kiuru's JSON parameters. It
// also accepts a bare string.
type jsonValue struct {
	Value string `json:"Value"`
}

// UnmarshalJSON accepts {"Value":"…"} or "…".
func (v *jsonValue) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &v.Value)
	}
	type plain jsonValue
	return json.Unmarshal(b, (*plain)(v))
}

type jsonNoSpam struct {
	Code   string `json:"Code"`
	Verify string `json:"Verify,omitempty"`
}

type jsonService struct {
	Description MSSURI      `json:"Description"`
	EventID     *jsonValue  `json:"EventID,omitempty"`
	NoSpamCode  *jsonNoSpam `json:"NoSpamCode,omitempty"`
	UserLang    *jsonValue  `json:"UserLang,omitempty"`
}

// MarshalJSON encodes s in the Kiuru/Swisscom shape, e.g.
// {"Description":"…#userLang","UserLang":{"Value":"EN"}}.
func (s Service) MarshalJSON() ([]byte, error) {
	j := jsonService{Description: s.Description}
	if s.EventID != "" {
		j.EventID = &jsonValue{s.EventID}
	}
	if c := s.NoSpamCode; c != nil {
		j.NoSpamCode = &jsonNoSpam{Code: c.Value, Verify: c.Verify}
	}
	if s.UserLang != "" {
		j.UserLang = &jsonValue{s.UserLang}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the shape written by MarshalJSON; EventID and
// UserLang may also be bare strings.
func (s *Service) UnmarshalJSON(b []byte) error {
	var j jsonService
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decoding Service: %w", err)
	}
	*s = Service{Description: j.Description}
	if j.EventID != nil {
		s.EventID = j.EventID.Value
	}
	if c := j.NoSpamCode; c != nil {
		s.NoSpamCode = &NoSpamCode{Value: c.Code, Verify: c.Verify}
	}
	if j.UserLang != nil {
		s.UserLang = j.UserLang.Value
	}
	return nil
}
