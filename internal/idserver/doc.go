// Package idserver is the ID Server: the service relying parties (banks,
// e-services) integrate with to authenticate their users and have them
// sign, with a Mobile ID.
//
// Its API is that of SK ID Solutions' Mobile-ID REST API v5 (MID), so an
// RP that uses an existing MID client only changes the base URL: POST
// /mid-api/certificate, /authentication and /signature, and a long-polled
// GET …/session/{id}. Behind it the ID Server is an application provider
// of the Signature Server (MSSP), which it reaches only through the ETSI
// TS 102 204 interface ([MSSP]); who holds a phone number's Mobile ID it
// learns from a [Directory]. It checks every signature the MSSP returns
// itself — the signature over the RP's hash, the certificate against the
// directory, the chain and OCSP — before it reports OK.
//
// Relying parties are registered in [RPs]; sessions are stored in the
// database, so that they survive a restart and any node can answer a
// long poll. See docs/idserver.md and docs/api/mid-rest.md.
package idserver
