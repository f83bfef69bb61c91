package etsi

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// statusXML is the decoding form of Status.
type statusXML struct {
	StatusCode struct {
		Value  Code `xml:"Value,attr"`
		Detail *struct {
			Value int `xml:"Value,attr"`
		} `xml:"StatusCode"`
	} `xml:"StatusCode"`
	StatusMessage string `xml:"StatusMessage"`
	StatusDetail  *struct {
		Text   string              `xml:",chardata"`
		Result *RegistrationResult `xml:"http://mobileid.dev/ns/registration/v1# Result"`
	} `xml:"StatusDetail"`
}

// UnmarshalXML decodes a Status element, including a nested detail
// StatusCode and an mreg:Result in StatusDetail.
func (s *Status) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var w statusXML
	if err := d.DecodeElement(&w, &start); err != nil {
		return err
	}
	*s = Status{StatusCode: StatusCode{Value: w.StatusCode.Value}, StatusMessage: w.StatusMessage}
	if dc := w.StatusCode.Detail; dc != nil {
		s.DetailCode = dc.Value
	}
	if sd := w.StatusDetail; sd != nil {
		s.StatusDetail = sd.Text
		if sd.Result != nil {
			// Next to an element, the text is mostly indentation.
			s.StatusDetail = strings.TrimSpace(sd.Text)
			s.Registration = sd.Result
		}
	}
	return nil
}

func statusNode(s *Status) *node {
	if s == nil {
		return nil
	}
	code := el("mss:StatusCode").attr("Value", strconv.Itoa(int(s.StatusCode.Value)))
	if s.DetailCode != 0 {
		code.add(el("mss:StatusCode").attr("Value", strconv.Itoa(s.DetailCode)))
	}
	n := el("mss:Status", code).add(optText("mss:StatusMessage", s.StatusMessage))
	if s.Registration != nil {
		return n.add(textEl("mss:StatusDetail", s.StatusDetail).add(registrationResultNode(s.Registration)))
	}
	return n.add(optText("mss:StatusDetail", s.StatusDetail))
}

type jsonStatusCode struct {
	Value      Code            `json:"Value,string"`
	StatusCode *jsonStatusCode `json:"StatusCode,omitempty"`
}

type jsonStatus struct {
	StatusCode    jsonStatusCode  `json:"StatusCode"`
	StatusMessage string          `json:"StatusMessage,omitempty"`
	StatusDetail  json.RawMessage `json:"StatusDetail,omitempty"`
}

// jsonStatusDetail is the object form of StatusDetail, as Kiuru writes it
// when StatusDetail holds more than text.
type jsonStatusDetail struct {
	StatusDetail       string              `json:"StatusDetail,omitempty"`
	RegistrationResult *RegistrationResult `json:"RegistrationResult,omitempty"`
}

// MarshalJSON encodes s as {"StatusCode":{"Value":"209","StatusCode":
// {"Value":"2093"}},"StatusMessage":…,"StatusDetail":…}. StatusDetail is a
// string, or {"StatusDetail":…,"RegistrationResult":{…}} when s carries a
// registration result.
func (s Status) MarshalJSON() ([]byte, error) {
	j := jsonStatus{StatusCode: jsonStatusCode{Value: s.StatusCode.Value}, StatusMessage: s.StatusMessage}
	if s.DetailCode != 0 {
		j.StatusCode.StatusCode = &jsonStatusCode{Value: Code(s.DetailCode)}
	}
	var err error
	switch {
	case s.Registration != nil:
		j.StatusDetail, err = json.Marshal(jsonStatusDetail{s.StatusDetail, s.Registration})
	case s.StatusDetail != "":
		j.StatusDetail, err = json.Marshal(s.StatusDetail)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the shape written by MarshalJSON.
func (s *Status) UnmarshalJSON(b []byte) error {
	var j jsonStatus
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decoding Status: %w", err)
	}
	*s = Status{StatusCode: StatusCode{Value: j.StatusCode.Value}, StatusMessage: j.StatusMessage}
	if dc := j.StatusCode.StatusCode; dc != nil {
		s.DetailCode = int(dc.Value)
	}
	raw := bytes.TrimSpace(j.StatusDetail)
	switch {
	case len(raw) == 0 || bytes.Equal(raw, []byte("null")):
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &s.StatusDetail); err != nil {
			return fmt.Errorf("decoding StatusDetail: %w", err)
		}
	default:
		var d jsonStatusDetail
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("decoding StatusDetail: %w", err)
		}
		s.StatusDetail, s.Registration = d.StatusDetail, d.RegistrationResult
	}
	return nil
}
