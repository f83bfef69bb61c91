// Package vmac implements version 1.0 of the VMAC protocol, the command set
// the operator's Signature Server (MSSP) uses to drive the Mobile ID applet
// on the SIM. The protocol is specified in docs/vmac-protocol.md; this
// package is its reference implementation for both ends.
//
// A command travels as the secured data of one TS 102 225 command packet
// addressed to the applet's TAR, and the applet's answer travels as the
// additional data of the response packet (PoR). The OTA layer that builds
// and checks those packets lives elsewhere; this package only sees the
// plaintext and does no I/O.
//
// Every message is a single BER-TLV with one-byte tags and definite lengths.
// The decoder is deliberately strict: fields must appear once, in ascending
// tag order, with minimal length encodings, known tags and exact sizes, so
// that every value has exactly one encoding and Marshal(Parse(b)) == b for
// every b that parses. Strictness keeps the card's parser small and makes
// the bytes that signatures and logs refer to unambiguous.
//
// Besides the codec, the package defines the byte strings that the card's
// proof-of-possession and attestation signatures cover ([PoPMessage],
// [AttestationMessage]) and the checks the MSSP runs on a registration
// ([VerifyRegistration]) and on signatures returned by SIGN
// ([VerifyDigest]).
package vmac
