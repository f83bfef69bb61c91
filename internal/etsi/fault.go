package etsi

import (
	"fmt"
	"time"
)

// Fault is a TS 102 204 fault: a status code and a free-form detail. All
// decoder errors are *Fault values so a server can answer in ETSI terms.
type Fault struct {
	// Code is the status code, e.g. CodeWrongParam.
	Code Code
	// Detail is an English explanation placed in env:Detail.
	Detail string
}

// NewFault returns a *Fault with a formatted detail.
func NewFault(c Code, format string, args ...any) *Fault {
	return &Fault{Code: c, Detail: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (f *Fault) Error() string {
	if f.Detail == "" {
		return "etsi: " + f.Code.String()
	}
	return "etsi: " + f.Code.String() + ": " + f.Detail
}

func validateAbstract(m *MessageAbstract, request bool) error {
	if m.MajorVersion == 0 {
		return NewFault(CodeMissingParam, "MajorVersion missing")
	}
	if m.MajorVersion != 1 {
		return NewFault(CodeIncompatibleInterface, "unsupported MajorVersion %d", m.MajorVersion)
	}
	if m.MinorVersion < 0 {
		return NewFault(CodeIncompatibleInterface, "unsupported MinorVersion %d", m.MinorVersion)
	}
	if !request {
		return nil
	}
	a := &m.APInfo
	switch {
	case a.APID == "":
		return NewFault(CodeMissingParam, "AP_ID missing")
	case a.APTransID == "":
		return NewFault(CodeMissingParam, "AP_TransID missing")
	case a.Instant.IsZero():
		return NewFault(CodeMissingParam, "Instant missing")
	}
	return nil
}

func validateTime(t time.Time, name string) error {
	if t.IsZero() {
		return nil
	}
	if _, err := t.MarshalText(); err != nil {
		return NewFault(CodeWrongParam, "invalid %s", name)
	}
	return nil
}

func validateSignature(s *Signature) error {
	if s == nil {
		return nil
	}
	if (len(s.Base64Signature) > 0) == (s.PKCS1 != nil) {
		return NewFault(CodeWrongParam, "MSS_Signature must hold exactly one of Base64Signature and PKCS1")
	}
	if s.PKCS1 != nil && len(s.PKCS1.SignatureValue) == 0 {
		return NewFault(CodeMissingParam, "PKCS1 SignatureValue missing")
	}
	return nil
}

func validateStatus(s *Status) error {
	if s.StatusCode.Value <= 0 {
		return NewFault(CodeMissingParam, "StatusCode missing")
	}
	return nil
}

func validateMSSURI(u *MSSURI, name string) error {
	if u != nil && u.URI == "" {
		return NewFault(CodeMissingParam, "%s mssURI missing", name)
	}
	return nil
}

// Validate checks the mandatory fields and value ranges of a message (a
// pointer to one of the message types), returning a *Fault.
func Validate(v any) error {
	var abs *MessageAbstract
	req := false
	var checks []error
	switch m := v.(type) {
	case *MSSSignatureReq:
		abs, req = &m.MessageAbstract, true
		switch {
		case m.MessagingMode == "":
			return NewFault(CodeMissingParam, "MessagingMode missing")
		case !m.MessagingMode.valid():
			return NewFault(CodeWrongParam, "illegal MessagingMode %q", m.MessagingMode)
		case m.TimeOut < 0:
			return NewFault(CodeWrongParam, "TimeOut must be positive")
		case m.MobileUser.MSISDN == "":
			return NewFault(CodeMissingParam, "MSISDN missing")
		case m.DataToBeSigned.Value == "":
			return NewFault(CodeMissingParam, "DataToBeSigned missing")
		}
		checks = append(checks, validateTime(m.ValidityDate, "ValidityDate"),
			validateMSSURI(m.SignatureProfile, "SignatureProfile"), validateMSSURI(m.MSSFormat, "MSS_Format"))
		for i := range m.AdditionalServices {
			checks = append(checks, validateMSSURI(&m.AdditionalServices[i].Description, "Service Description"))
		}
	case *MSSSignatureResp:
		abs = &m.MessageAbstract
		if m.MSSPTransID == "" {
			return NewFault(CodeMissingParam, "MSSP_TransID missing")
		}
		checks = append(checks, validateSignature(m.MSSSignature), validateMSSURI(m.SignatureProfile, "SignatureProfile"), validateStatus(&m.Status))
	case *MSSStatusReq:
		abs, req = &m.MessageAbstract, true
		if m.MSSPTransID == "" {
			return NewFault(CodeMissingParam, "MSSP_TransID missing")
		}
	case *MSSStatusResp:
		abs = &m.MessageAbstract
		checks = append(checks, validateSignature(m.MSSSignature), validateStatus(&m.Status))
	case *MSSReceiptReq:
		abs, req = &m.MessageAbstract, true
		if m.MSSPTransID == "" {
			return NewFault(CodeMissingParam, "MSSP_TransID missing")
		}
		if m.Status != nil {
			checks = append(checks, validateStatus(m.Status))
		}
	case *MSSReceiptResp:
		abs = &m.MessageAbstract
		checks = append(checks, validateStatus(&m.Status))
	case *MSSProfileReq:
		abs, req = &m.MessageAbstract, true
		if m.MobileUser.MSISDN == "" {
			return NewFault(CodeMissingParam, "MSISDN missing")
		}
	case *MSSProfileResp:
		abs = &m.MessageAbstract
		for i := range m.SignatureProfile {
			checks = append(checks, validateMSSURI(&m.SignatureProfile[i], "SignatureProfile"))
		}
		checks = append(checks, validateStatus(&m.Status))
	default:
		return NewFault(CodeInternalError, "unsupported message type %T", v)
	}
	if err := validateAbstract(abs, req); err != nil {
		return err
	}
	checks = append(checks, validateTime(abs.APInfo.Instant, "AP_Info Instant"), validateTime(abs.MSSPInfo.Instant, "MSSP_Info Instant"))
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	return nil
}
