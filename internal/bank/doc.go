// Package bank is the demo bank: a small online bank that is an ordinary
// relying party of the ID Server. Its customers log in with "Log in with
// Mobile ID" over OpenID Connect (authorization code flow with PKCE), and
// confirm each payment with a Mobile ID signature over the MID REST API:
// the bank signs the SHA-256 of a canonical payment order, shows the
// verification code while the phone asks for PIN2, verifies the signature
// and the certificate chain itself, and only then books the payment.
//
// It uses only the ID Server's public HTTP APIs, as any bank would, and
// imports no other component of the platform: only internal/store for its
// own tables (bank_*) and internal/webassets for the consoles' shared look.
// See docs/bank.md.
package bank
