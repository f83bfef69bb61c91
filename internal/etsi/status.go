package etsi

import "strconv"

// Code is a TS 102 204 status code (the StatusCode Value attribute, or the
// _NNN fault subcode).
type Code int

// Status codes of TS 102 204 §9 as profiled by FiCom 2.1 Appendix C.
const (
	CodeRequestOK              Code = 100
	CodeWrongParam             Code = 101
	CodeMissingParam           Code = 102
	CodeWrongDataLength        Code = 103
	CodeUnauthorizedAccess     Code = 104
	CodeUnknownClient          Code = 105
	CodeInappropriateData      Code = 107
	CodeIncompatibleInterface  Code = 108
	CodeUnsupportedProfile     Code = 109
	CodeExpiredTransaction     Code = 208
	CodeOTAError               Code = 209
	CodeUserCancel             Code = 401
	CodePINNrBlocked           Code = 402
	CodeCardBlocked            Code = 403
	CodeNoKeyFound             Code = 404
	CodeNoURLFound             Code = 405
	CodePBSignatureProcess     Code = 406
	CodeRegistrationNOK        Code = 407
	CodeNoCertFound            Code = 422
	CodeCRLPB                  Code = 423
	CodeCRLExpired             Code = 424
	CodeErrorCertificate       Code = 425
	CodeSignature              Code = 500
	CodeRevokedCertificate     Code = 501
	CodeValidSignature         Code = 502
	CodeInvalidSignature       Code = 503
	CodeOutstandingTransaction Code = 504
	CodeConstraintMismatch     Code = 505
	CodeInternalError          Code = 900
)

type codeInfo struct {
	name, message string
	// faultClass is "" for non-fault codes, else "Sender" or "Receiver".
	faultClass string
}

var codeTable = map[Code]codeInfo{
	CodeRequestOK:              {"REQUEST_OK", "Request accepted", ""},
	CodeWrongParam:             {"WRONG_PARAM", "Error among the arguments of the request", "Sender"},
	CodeMissingParam:           {"MISSING_PARAM", "An argument in the request is missing", "Sender"},
	CodeWrongDataLength:        {"WRONG_DATA_LENGTH", "The DataToBeSigned are too large", "Sender"},
	CodeUnauthorizedAccess:     {"UNAUTHORIZED_ACCESS", "The AP is unknown or the password is wrong", "Sender"},
	CodeUnknownClient:          {"UNKNOWN_CLIENT", "The end user is unknown", "Sender"},
	CodeInappropriateData:      {"INAPPROPRIATE_DATA", "The MSSP cannot handle the given data", "Sender"},
	CodeIncompatibleInterface:  {"INCOMPATIBLE_INTERFACE", "The minor or major version parameter is inappropriate", "Sender"},
	CodeUnsupportedProfile:     {"UNSUPPORTED_PROFILE", "The AP has specified a mobile signature profile that the MSSP does not support", "Receiver"},
	CodeExpiredTransaction:     {"EXPIRED_TRANSACTION", "The transaction timed out", "Receiver"},
	CodeOTAError:               {"OTA_ERROR", "A problem related to the MSSP internal Over-The-Air process", "Receiver"},
	CodeUserCancel:             {"USER_CANCEL", "The client has cancelled the transaction", "Receiver"},
	CodePINNrBlocked:           {"PIN_NR_BLOCKED", "The mobile user PIN is blocked", "Receiver"},
	CodeCardBlocked:            {"CARD_BLOCKED", "The mobile user card is blocked", "Receiver"},
	CodeNoKeyFound:             {"NO_KEY_FOUND", "The mobile user does not have a key matching the request", "Receiver"},
	CodeNoURLFound:             {"NO_URL_FOUND", "The AP cannot be reached", "Receiver"},
	CodePBSignatureProcess:     {"PB_SIGNATURE_PROCESS", "A problem occurred during the signature process", "Receiver"},
	CodeRegistrationNOK:        {"REGISTRATION_NOK", "The registration failed", "Receiver"},
	CodeNoCertFound:            {"NO_CERT_FOUND", "The mobile user does not have a valid certificate", "Receiver"},
	CodeCRLPB:                  {"CRL_PB", "Error retrieving the revocation information", "Receiver"},
	CodeCRLExpired:             {"CRL_EXPIRED", "The revocation information has expired", "Receiver"},
	CodeErrorCertificate:       {"ERROR_CERTIFICATE", "Error in the certificate", "Receiver"},
	CodeSignature:              {"SIGNATURE", "The mobile signature was made but not validated", ""},
	CodeRevokedCertificate:     {"REVOKED_CERTIFICATE", "The certificate is revoked", ""},
	CodeValidSignature:         {"VALID_SIGNATURE", "The mobile signature was made and is valid", ""},
	CodeInvalidSignature:       {"INVALID_SIGNATURE", "The mobile signature is invalid or the certificate expired", ""},
	CodeOutstandingTransaction: {"OUTSTANDING_TRANSACTION", "The transaction is still pending", ""},
	CodeConstraintMismatch:     {"CONSTRAINT_MISMATCH", "The certificate does not meet the profile constraints", ""},
	CodeInternalError:          {"INTERNAL_ERROR", "An unknown error occurred", "Receiver"},
}

// Known reports whether c is in the status code table.
func (c Code) Known() bool { _, ok := codeTable[c]; return ok }

// Name returns the symbolic TS 102 204 name of c (e.g. "WRONG_PARAM"), or
// "UNKNOWN_NNN" for codes outside the table.
func (c Code) Name() string {
	if i, ok := codeTable[c]; ok {
		return i.name
	}
	return "UNKNOWN_" + strconv.Itoa(int(c))
}

// String returns "NNN NAME".
func (c Code) String() string { return strconv.Itoa(int(c)) + " " + c.Name() }

// Message returns a human-readable English description of c.
func (c Code) Message() string {
	if i, ok := codeTable[c]; ok {
		return i.message
	}
	return "Unknown status code"
}

// IsFault reports whether c is reported as a SOAP fault rather than in a
// Status element.
func (c Code) IsFault() bool { return codeTable[c].faultClass != "" }

// FaultSubcode returns the SOAP 1.2 fault Code/Value (env:Sender or
// env:Receiver) and Subcode/Value (mss:_NNN) for a fault-class code. ok is
// false for codes that are not faults (100, 5xx). Unknown codes map to
// env:Receiver.
func (c Code) FaultSubcode() (code, subcode string, ok bool) {
	i, known := codeTable[c]
	class := i.faultClass
	if known && class == "" {
		return "", "", false
	}
	if !known {
		class = "Receiver"
	}
	return "env:" + class, "mss:_" + strconv.Itoa(int(c)), true
}

// faultClass returns "Sender" or "Receiver" for use in faults.
func (c Code) faultClass() string {
	if i := codeTable[c]; i.faultClass != "" {
		return i.faultClass
	}
	return "Receiver"
}
