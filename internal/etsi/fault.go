package etsi

import (
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Fault is a TS 102 204 fault: a status code and a free-form detail. All
// decoder errors are *Fault values so a server can answer in ETSI terms.
type Fault struct {
	// Code is the status code, e.g. CodeWrongParam.
	Code Code
	// Detail is an English explanation placed in env:Detail.
	Detail string
	// DetailCode is the FiCom four-digit detail code (e.g.
	// DetailInvalidNoSpamCode under CodeWrongParam), or 0. It is sent as a
	// second-level env:Subcode.
	DetailCode int
}

// NewFault returns a *Fault with a formatted detail.
func NewFault(c Code, format string, args ...any) *Fault {
	return &Fault{Code: c, Detail: fmt.Sprintf(format, args...)}
}

// NewDetailedFault is NewFault with a FiCom detail code.
func NewDetailedFault(c Code, detailCode int, format string, args ...any) *Fault {
	return &Fault{Code: c, Detail: fmt.Sprintf(format, args...), DetailCode: detailCode}
}

// Error implements error.
func (f *Fault) Error() string {
	s := "etsi: " + f.Code.String()
	if f.DetailCode != 0 {
		s += " (" + strconv.Itoa(f.DetailCode) + ")"
	}
	if f.Detail == "" {
		return s
	}
	return s + ": " + f.Detail
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
	case utf8.RuneCountInString(a.APID) > maxAPID:
		return NewFault(CodeWrongParam, "AP_ID longer than %d characters", maxAPID)
	case a.APTransID == "":
		return NewFault(CodeMissingParam, "AP_TransID missing")
	case utf8.RuneCountInString(a.APTransID) > maxAPTransID:
		return NewFault(CodeWrongParam, "AP_TransID longer than %d characters", maxAPTransID)
	case !isNCName(a.APTransID):
		return NewFault(CodeWrongParam, "AP_TransID is not an NCName")
	case a.Instant.IsZero():
		return NewFault(CodeMissingParam, "Instant missing")
	}
	return nil
}

// Field limits of the FiCom profile. The MSISDN limit is only a sanity
// bound: the number itself is checked where the user is looked up.
const (
	maxAPID      = 128
	maxAPTransID = 32
	maxMSISDN    = 20
)

// isNCName reports whether s is an XML NCName: a name without colons that
// starts with a letter or underscore.
func isNCName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (r == '-' || r == '.' || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r)):
		default:
			return false
		}
	}
	return s != ""
}

func validateMobileUser(u *MobileUser, required bool) error {
	switch {
	case u.MSISDN == "" && required:
		return NewFault(CodeMissingParam, "MSISDN missing")
	case utf8.RuneCountInString(u.MSISDN) > maxMSISDN:
		return NewFault(CodeWrongParam, "MSISDN longer than %d characters", maxMSISDN)
	}
	return nil
}

func isAlnum(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}

// validateService checks a service URI and the FiCom parameters: EventID
// is 4 to 8 alphanumerics, NoSpamCode 3 to 16 characters starting with a
// letter. The services that need a parameter must have it.
func validateService(s *Service) error {
	if err := validateMSSURI(&s.Description, "Service Description"); err != nil {
		return err
	}
	if s.EventID != "" && (len(s.EventID) < 4 || len(s.EventID) > 8 || !isAlnum(s.EventID)) {
		return NewFault(CodeWrongParam, "EventID must be 4 to 8 letters and digits")
	}
	if c := s.NoSpamCode; c != nil {
		first, _ := utf8.DecodeRuneInString(c.Value)
		if n := utf8.RuneCountInString(c.Value); n < 3 || n > 16 || !unicode.IsLetter(first) {
			return NewDetailedFault(CodeWrongParam, DetailInvalidNoSpamCode, "NoSpamCode must be 3 to 16 characters starting with a letter")
		}
		if c.Verify != "" && c.Verify != "yes" && c.Verify != "no" {
			return NewDetailedFault(CodeWrongParam, DetailInvalidNoSpamCode, "NoSpamCode verify must be yes or no")
		}
	}
	switch s.Description.URI {
	case ServiceEventID:
		if s.EventID == "" {
			return NewFault(CodeMissingParam, "EventID missing")
		}
	case ServiceNoSpam:
		if s.NoSpamCode == nil {
			return NewDetailedFault(CodeWrongParam, DetailMissingNoSpamCode, "NoSpamCode missing")
		}
	case ServiceUserLang:
		if s.UserLang == "" {
			return NewFault(CodeMissingParam, "UserLang missing")
		}
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
	if s.DetailCode < 0 {
		return NewFault(CodeWrongParam, "negative detail StatusCode")
	}
	return validateRegistrationResult(s.Registration)
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
			return NewDetailedFault(CodeWrongParam, DetailIllegalMessagingMode, "illegal MessagingMode %q", m.MessagingMode)
		case m.TimeOut < 0:
			return NewFault(CodeWrongParam, "TimeOut must be positive")
		case m.DataToBeSigned.Value == "":
			return NewDetailedFault(CodeMissingParam, DetailDTBSMissing, "DataToBeSigned missing")
		case !m.SignatureProfileComparison.valid():
			return NewFault(CodeWrongParam, "illegal SignatureProfileComparison %q", m.SignatureProfileComparison)
		}
		checks = append(checks, validateMobileUser(&m.MobileUser, true), validateTime(m.ValidityDate, "ValidityDate"),
			validateMSSURI(m.SignatureProfile, "SignatureProfile"), validateMSSURI(m.MSSFormat, "MSS_Format"))
		for i := range m.AdditionalServices {
			checks = append(checks, validateService(&m.AdditionalServices[i]))
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
		checks = append(checks, validateMobileUser(&m.MobileUser, false))
		if m.Status != nil {
			checks = append(checks, validateStatus(m.Status))
		}
	case *MSSReceiptResp:
		abs = &m.MessageAbstract
		checks = append(checks, validateStatus(&m.Status))
	case *MSSProfileReq:
		abs, req = &m.MessageAbstract, true
		checks = append(checks, validateMobileUser(&m.MobileUser, true))
	case *MSSProfileResp:
		abs = &m.MessageAbstract
		for i := range m.SignatureProfile {
			checks = append(checks, validateMSSURI(&m.SignatureProfile[i], "SignatureProfile"))
		}
		checks = append(checks, validateStatus(&m.Status))
	case *MSSRegistrationReq:
		abs, req = &m.MessageAbstract, true
		checks = append(checks, validateMobileUser(&m.MobileUser, true), validateRegistrationOperation(m.Operation))
	case *MSSRegistrationResp:
		abs = &m.MessageAbstract
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
