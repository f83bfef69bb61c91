// Package ca is the Certificate Authority core: the key ceremony, the two
// end-entity certificate profiles, issuance for keys generated on SIM
// cards, revocation and suspension, and the CRL. The OCSP responder and the
// time-stamping authority are separate packages that take their keys from
// [Load] and, for OCSP, statuses from [CA.CertStatus].
//
// # Hierarchy
//
//	Root CA           ECDSA P-384, self-signed, 20 years, offline
//	└── Issuing CA    ECDSA P-384, pathLenConstraint 0, 10 years, anyPolicy
//	    ├── OCSP responder   ECDSA P-256, id-kp-OCSPSigning, ocsp-nocheck, 1 year
//	    ├── TSA              ECDSA P-384, id-kp-timeStamping (critical), 5 years
//	    └── end entities     authentication and signing profiles, 3 years
//
// The root key signs only the issuing CA certificate, at the ceremony; the
// running CA never reads it, so it can be moved offline right after. The
// OCSP responder certificate is short-lived because ocsp-nocheck means
// nobody checks its status: [RenewOCSPResponder] makes a new one with the
// issuing key.
//
// # Files and key protection
//
// [Init] (the `mobileid ca init` command) writes into one directory:
//
//	root.pem     root certificate          root.key     root key (see InitOptions.RootKeyDir)
//	issuing.pem  issuing CA certificate    issuing.key  issuing CA key
//	ocsp.pem     OCSP responder            ocsp.key     its key
//	tsa.pem      TSA certificate           tsa.key      its key
//
// Certificates are PEM. Each key is its PKCS #8 DER encrypted with
// AES-256-GCM under a 32-byte key-encryption key (KEK), with the key's role
// ("root", "issuing", "ocsp", "tsa") as additional authenticated data, in a
// PEM block of type "MOBILEID ENCRYPTED PRIVATE KEY" ([KeyPEMType]). The KEK
// comes from configuration, the environment variable MOBILEID_CA_KEY ([KEKEnv],
// 64 hex digits, [ParseKEK]); it is never stored next to the keys. A wrong
// KEK fails with [ErrWrongKEK]. [Init] never overwrites an existing
// ceremony ([ErrCeremonyExists]). A PKCS #11 HSM is the production
// alternative: [Keys] holds crypto.Signer values for that reason.
//
// # Profiles
//
// Both profiles (built with crypto/x509) have: subject C, CN, SN, GN,
// serialNumber in that order (ETSI EN 319 412-1 natural person), where CN
// is "SURNAME,GIVENNAME" with the names as given (e.g. "JÕEORG,JAAK-KRISTJAN")
// and serialNumber is the semantics identifier "PNO" + country + "-" +
// national ID (e.g. "PNOEE-38001085718"); a 16-byte random serial number
// that is unique in the store; authorityInfoAccess with OCSP
// <base>/ocsp and caIssuers <base>/ca/issuing.crt; cRLDistributionPoints
// <base>/crl/issuing.crl; subject and authority key identifiers; a
// certificate policy; a validity of Config.Validity (3 years). Then:
//
//   - authentication ([ProfileAuthentication], card key 1): keyUsage
//     digitalSignature, plus keyAgreement for an EC key; extKeyUsage
//     clientAuth (1.3.6.1.5.5.7.3.2); policy
//     1.3.6.1.4.1.32473.1.1.
//   - signing ([ProfileSigning], card key 2): keyUsage contentCommitment
//     (nonRepudiation) only; policy
//     1.3.6.1.4.1.32473.1.2; and the ETSI
//     EN 319 412-5 qcStatements extension (1.3.6.1.5.5.7.1.3) with
//     QcCompliance (0.4.0.1862.1.1), QcSSCD (0.4.0.1862.1.4), QcType
//     (0.4.0.1862.1.6) = id-etsi-qct-esign (0.4.0.1862.1.6.1) and QcPDS
//     (0.4.0.1862.1.5) with Config.PDSURL in language "en".
//
// The default policy OIDs lie under the documentation enterprise number of
// RFC 5612 ([PolicyArc]), with small arcs that every relying party can
// hold. They differ by profile so that a relying party can tell from the policy which
// key produced a signature; Config can replace them.
//
// # Issuance
//
// [CA.Issue] (and POST /ca/issue, see [CA.Handler]) takes an [IssueRequest]
// built by the registration server from the card's REGISTER response
// (docs/vmac-protocol.md) and the identity the registration desk checked.
// It signs only if all of these hold, and otherwise returns a
// [*RefusalError] (HTTP 422) having signed and stored nothing:
//
//   - the profile is authentication or signing, and the key reference is
//     the card key that profile certifies (1 or 2);
//   - the subject has a two-capital-letter country, non-empty names without
//     commas or control characters, and a national ID of digits and capital
//     letters;
//   - the key is ECDSA P-256 or RSA-2048 in canonical DER;
//   - the challenge has 16–32 bytes and the proof of possession, the key's
//     signature over SHA-256(vmac.PoPMessage(challenge, key reference,
//     SPKI)), verifies;
//   - an attestation, if present (required with Config.RequireAttestation),
//     has a certificate issued by one of Config.TrustedVendorRoots for an
//     ECDSA P-256 key, its signature over SHA-256(vmac.AttestationMessage)
//     verifies, and it covers the very key being certified.
//
// The issuance endpoint is internal: anyone who can reach it can have a
// certificate issued for any name, so it must be reachable only by the
// registration server (a loopback listener now, mutual TLS later), while
// [CA.PublicHandler] serves the certificates and CRL to everyone.
//
// # Revocation, suspension and the CRL
//
// [CA.Revoke] takes an RFC 5280 reason; certificateHold (6) suspends and
// [CA.Release] lifts the suspension. Each regenerates the CRL in the same
// transaction (so a committed revocation is always on the newest CRL), then
// calls the [CA.OnRevoke] callbacks. The CRL is signed by the issuing CA,
// carries an increasing cRLNumber kept in the store, thisUpdate and
// nextUpdate = thisUpdate + Config.CRLPeriod, and per entry the revocation
// date, the reason code (certificateHold for suspended certificates) and,
// for revocations, the invalidity date given to Revoke. Released
// certificates simply leave the CRL. [CA.Run] reissues it every
// CRLPeriod/2. Revoked certificates stay on the CRL after they expire, so
// that old signatures can still be judged.
//
// # Audit
//
// Every issuance, refusal, revocation, hold and release is one record on
// the audit logger given to [New] (separate from the operational log),
// with the serial, profile, subject and reason, never key material.
package ca
