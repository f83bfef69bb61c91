// Package etsi is the message codec for ETSI TS 102 204 (Mobile Signature
// Service: Web Service Interface).
//
// It models the MSS_Signature, MSS_StatusQuery, MSS_Receipt and
// MSS_ProfileQuery request/response pairs, the TS 102 204 status code table,
// and two wire bindings:
//
//   - SOAP 1.2 (DecodeRequest, DecodeResponse, EncodeRequest, EncodeResponse,
//     EncodeFault, DecodeFault). The encoder writes the conventional prefixes
//     env: and mss: by hand so that field clients matching text such as
//     <mss:StatusCode Value="502"/> keep working.
//   - The Kiuru/Swisscom REST JSON mirror (DecodeJSONRequest,
//     DecodeJSONResponse, EncodeJSON, EncodeJSONFault), where the single root
//     key (e.g. "MSS_SignatureReq") selects the operation.
//
// Decoders are hardened for untrusted input: bodies are size limited, DOCTYPE
// and entity declarations are rejected, and every failure is reported as a
// *Fault carrying the ETSI status code the server should answer with.
package etsi
