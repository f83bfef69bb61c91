// Package cms builds and verifies CMS (RFC 5652) SignedData in the CAdES-BES
// profile (ETSI EN 319 122-1) for signatures whose private key lives on a SIM.
//
// Signing has two phases because the server never holds the key:
//
//  1. [Prepare] computes the message digest and builds the signed attributes
//     (content-type, message-digest, signing-time and
//     signing-certificate-v2, RFC 5035). [Pending.Digest] is the hash of
//     their DER SET OF encoding; that is what the SIM signs, with the hash
//     [Pending.Hash] names.
//  2. [Pending.Finish] takes the SIM's signature (a DER ECDSA-Sig-Value, see
//     vmac.SignatureToASN1, or a PKCS #1 v1.5 signature), checks it against
//     the signer's public key and returns the DER ContentInfo carrying the
//     SignedData.
//
// [AddTimestamp] upgrades such a signature to CAdES-T by adding an RFC 3161
// time-stamp token as the signature-time-stamp unsigned attribute, and
// [Verify] checks a SignedData produced here or by another DER-encoding
// implementation: message digest, the signature over the signed attributes,
// and the signer's chain.
//
// Only DER input is accepted (no indefinite-length BER), a SignedData must
// carry exactly one SignerInfo, and the signer must be identified by
// issuerAndSerialNumber.
package cms
