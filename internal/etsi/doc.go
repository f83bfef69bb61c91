// Package etsi is the message codec for ETSI TS 102 204 (Mobile Signature
// Service: Web Service Interface).
//
// It models the MSS_Signature, MSS_StatusQuery, MSS_Receipt,
// MSS_ProfileQuery and MSS_Registration request/response pairs, the
// MSS_Notification callback of asynchServerServer mode (an MSS_StatusResp
// from the MSSP, answered by an MSS_ReceiptReq from the AP), the TS 102 204
// status code table with the FiCom four-digit detail codes, and two wire
// bindings:
//
//   - SOAP 1.2 (DecodeRequest, DecodeResponse, EncodeRequest, EncodeResponse,
//     EncodeFault, DecodeFault, and EncodeNotification, DecodeNotification
//     and their responses). The encoder writes the conventional prefixes
//     env:, mss:, fi: and mreg: by hand so that field clients matching text
//     such as <mss:StatusCode Value="502"/> keep working. The decoder
//     accepts any prefixes, the rpc operation wrapper in any namespace, and
//     the unqualified part accessor that rpc/literal toolkits generate.
//     WSDL returns the matching service description.
//   - The Kiuru/Swisscom REST JSON mirror (DecodeJSONRequest,
//     DecodeJSONResponse, EncodeJSON, EncodeJSONFault), where the single root
//     key (e.g. "MSS_SignatureReq") selects the operation.
//
// Beyond the standard it carries the FiCom additional-service parameters
// (fi:EventID, fi:NoSpamCode, fi:UserLang) and this MSSP's registration
// extension (namespace RegistrationNamespace): an mreg:Operation in
// MSS_RegistrationReq, and its mreg:Result in Status/StatusDetail of
// MSS_RegistrationResp or of a later MSS_StatusResp.
//
// Decoders are hardened for untrusted input: bodies are size limited, DOCTYPE
// and entity declarations are rejected, messages are checked against the
// FiCom field limits (Validate), and every failure is reported as a *Fault
// carrying the ETSI status code the server should answer with.
//
// The package does no I/O of its own; the SOAP client is in
// mobileid/internal/etsi/etsiclient.
package etsi
