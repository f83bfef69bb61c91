package etsi

import "strconv"

// RegistrationNamespace is the namespace (prefix mreg) of this MSSP's
// registration extension: the mreg:Operation child of MSS_RegistrationReq
// and the mreg:Result in Status/StatusDetail.
const RegistrationNamespace = "http://mobileid.dev/ns/registration/v1#"

// MSSRegistrationReq is MSS_RegistrationReq. Of the schema's optional
// elements, EncryptedData and EncryptResponseBy are not supported; the
// schema's ##other extension point carries Operation.
type MSSRegistrationReq struct {
	MessageAbstract
	MobileUser MobileUser `xml:"MobileUser" json:"MobileUser"`
	// CertificateURI is where the MSSP may publish the user's certificate.
	CertificateURI string `xml:"CertificateURI,omitempty" json:"CertificateURI,omitempty"`
	// X509Certificate is a DER certificate to register for the user (the
	// schema allows one).
	X509Certificate Base64 `xml:"X509Certificate,omitempty" json:"X509Certificate,omitempty"`
	// Operation is the mreg:Operation to run on the user's SIM. It is
	// matched by local name on decode, because rpc SOAP toolkits qualify
	// it with the message's namespace.
	Operation *RegistrationOperation `xml:"Operation" json:"Operation,omitempty"`
}

// MSSRegistrationResp is MSS_RegistrationResp. The result of the
// registration extension is in Status.Registration.
type MSSRegistrationResp struct {
	MessageAbstract
	// MSSPTransID is not in the schema: it names the transaction to poll
	// with MSS_StatusQuery when the operation completes later, following
	// the optional MSSP_TransID that MSS_StatusResp gained for
	// notifications.
	MSSPTransID     string `xml:"MSSP_TransID,attr,omitempty" json:"MSSP_TransID,omitempty"`
	Status          Status `xml:"Status" json:"Status"`
	CertificateURI  string `xml:"CertificateURI,omitempty" json:"CertificateURI,omitempty"`
	X509Certificate Base64 `xml:"X509Certificate,omitempty" json:"X509Certificate,omitempty"`
	PublicKey       Base64 `xml:"PublicKey,omitempty" json:"PublicKey,omitempty"`
}

// RegistrationOpType is the Type attribute of mreg:Operation.
type RegistrationOpType string

// Registration operations.
const (
	// RegGenerateKeys has the SIM generate its authentication and signing
	// key pairs and return their public keys with proofs of possession.
	RegGenerateKeys RegistrationOpType = "GenerateKeys"
	// RegBindCertificates stores the certificates issued for the keys.
	RegBindCertificates RegistrationOpType = "BindCertificates"
	// RegReset erases the keys and certificates.
	RegReset RegistrationOpType = "Reset"
	// RegInfo reports the state of the SIM application and its PIN
	// counters.
	RegInfo RegistrationOpType = "Info"
	// RegResult asks for the outcome of an earlier registration operation
	// of the same AP, named by its AP_TransID: a Registration Server that
	// stopped while it waited learns what happened without starting over.
	RegResult RegistrationOpType = "Result"
)

// KeyUsage names one of the two keys of a Mobile ID SIM.
type KeyUsage string

// Key usages.
const (
	KeyUsageAuthentication KeyUsage = "authentication"
	KeyUsageSigning        KeyUsage = "signing"
)

// KeyAlgorithm names a key type the SIM can generate.
type KeyAlgorithm string

// Key algorithms.
const (
	KeyAlgECDSAP256 KeyAlgorithm = "ECDSA-P256"
	KeyAlgRSA2048   KeyAlgorithm = "RSA-2048"
)

func (t RegistrationOpType) valid() bool {
	switch t {
	case RegGenerateKeys, RegBindCertificates, RegReset, RegInfo, RegResult:
		return true
	}
	return false
}

func (u KeyUsage) valid() bool { return u == KeyUsageAuthentication || u == KeyUsageSigning }

func (a KeyAlgorithm) valid() bool { return a == KeyAlgECDSAP256 || a == KeyAlgRSA2048 }

// RegistrationOperation is mreg:Operation, the request of the registration
// extension. Which fields apply depends on Type.
type RegistrationOperation struct {
	Type RegistrationOpType `xml:"Type,attr" json:"Type"`
	// Challenge is a nonce the SIM includes in what it signs (GenerateKeys,
	// Info), so that the answer cannot be replayed.
	Challenge Base64 `xml:"Challenge,omitempty" json:"Challenge,omitempty"`
	// AuthKeyAlg and SignKeyAlg choose the key types for GenerateKeys.
	AuthKeyAlg KeyAlgorithm `xml:"AuthKeyAlg,omitempty" json:"AuthKeyAlg,omitempty"`
	SignKeyAlg KeyAlgorithm `xml:"SignKeyAlg,omitempty" json:"SignKeyAlg,omitempty"`
	// DisplayText is shown to the user while the operation runs.
	DisplayText string `xml:"DisplayText,omitempty" json:"DisplayText,omitempty"`
	// Certificates are the certificates to store (BindCertificates).
	Certificates []RegistrationCertificate `xml:"Certificate" json:"Certificate,omitempty"`
	// ICCID selects the SIM when the MSISDN alone is ambiguous.
	ICCID string `xml:"ICCID,omitempty" json:"ICCID,omitempty"`
	// APTransID names the earlier operation whose outcome Result asks for.
	APTransID string `xml:"APTransID,omitempty" json:"APTransID,omitempty"`
}

// RegistrationCertificate is mreg:Certificate: a DER certificate for one
// of the SIM's keys. In JSON it is {"KeyUsage":…,"Value":"<base64>"}.
type RegistrationCertificate struct {
	KeyUsage KeyUsage `xml:"KeyUsage,attr" json:"KeyUsage"`
	DER      Base64   `xml:",chardata" json:"Value"`
}

// RegistrationResult is mreg:Result, the outcome of a registration
// operation, carried in Status.Registration.
type RegistrationResult struct {
	ICCID string `xml:"ICCID,omitempty" json:"ICCID,omitempty"`
	// Keys are the generated public keys (GenerateKeys), normally one per
	// KeyUsage.
	Keys []RegisteredKey `xml:"Key" json:"Key,omitempty"`
	// Attestation proves that the keys were generated by a genuine SIM.
	Attestation *Attestation `xml:"Attestation" json:"Attestation,omitempty"`
	// Challenge echoes the request's challenge.
	Challenge Base64 `xml:"Challenge,omitempty" json:"Challenge,omitempty"`
	// State is the state of the SIM application (Info).
	State string `xml:"State,omitempty" json:"State,omitempty"`
	// The PIN and PUK counters (Info); nil when not reported, since 0
	// means blocked.
	PIN1TriesLeft *int `xml:"PIN1TriesLeft" json:"PIN1TriesLeft,omitempty,string"`
	PIN2TriesLeft *int `xml:"PIN2TriesLeft" json:"PIN2TriesLeft,omitempty,string"`
	PUKTriesLeft  *int `xml:"PUKTriesLeft" json:"PUKTriesLeft,omitempty,string"`
}

// RegisteredKey is mreg:Key: a public key the SIM generated.
type RegisteredKey struct {
	Ref KeyUsage     `xml:"Ref,attr" json:"Ref"`
	Alg KeyAlgorithm `xml:"Alg,attr" json:"Alg"`
	// SPKI is the DER SubjectPublicKeyInfo.
	SPKI Base64 `xml:"SPKI" json:"SPKI"`
	// PoP is the proof of possession: a signature with the new key.
	PoP Base64 `xml:"PoP,omitempty" json:"PoP,omitempty"`
}

// Attestation is mreg:Attestation: a signature over the result by a key
// the SIM vendor certified, with that key's certificate chain (leaf first).
type Attestation struct {
	Signature    Base64   `xml:"Signature" json:"Signature"`
	Certificates []Base64 `xml:"Certificate" json:"Certificate,omitempty"`
}

func registrationOperationNode(o *RegistrationOperation) *node {
	if o == nil {
		return nil
	}
	n := el("mreg:Operation").attr("xmlns:mreg", RegistrationNamespace).attr("Type", string(o.Type))
	n.add(optText("mreg:Challenge", b64(o.Challenge)),
		optText("mreg:AuthKeyAlg", string(o.AuthKeyAlg)),
		optText("mreg:SignKeyAlg", string(o.SignKeyAlg)),
		optText("mreg:DisplayText", o.DisplayText))
	for _, c := range o.Certificates {
		n.add(textEl("mreg:Certificate", b64(c.DER)).attr("KeyUsage", string(c.KeyUsage)))
	}
	return n.add(optText("mreg:ICCID", o.ICCID), optText("mreg:APTransID", o.APTransID))
}

func optInt(name string, p *int) *node {
	if p == nil {
		return nil
	}
	return textEl(name, strconv.Itoa(*p))
}

func registrationResultNode(r *RegistrationResult) *node {
	n := el("mreg:Result").attr("xmlns:mreg", RegistrationNamespace)
	n.add(optText("mreg:ICCID", r.ICCID))
	for _, k := range r.Keys {
		n.add(el("mreg:Key", textEl("mreg:SPKI", b64(k.SPKI))).
			attr("Ref", string(k.Ref)).attr("Alg", string(k.Alg)).
			add(optText("mreg:PoP", b64(k.PoP))))
	}
	if a := r.Attestation; a != nil {
		an := el("mreg:Attestation", textEl("mreg:Signature", b64(a.Signature)))
		for _, c := range a.Certificates {
			an.add(textEl("mreg:Certificate", b64(c)))
		}
		n.add(an)
	}
	return n.add(optText("mreg:Challenge", b64(r.Challenge)),
		optText("mreg:State", r.State),
		optInt("mreg:PIN1TriesLeft", r.PIN1TriesLeft),
		optInt("mreg:PIN2TriesLeft", r.PIN2TriesLeft),
		optInt("mreg:PUKTriesLeft", r.PUKTriesLeft))
}

func validateRegistrationOperation(o *RegistrationOperation) error {
	if o == nil {
		return nil
	}
	switch {
	case o.Type == "":
		return NewFault(CodeMissingParam, "Operation Type missing")
	case !o.Type.valid():
		return NewFault(CodeWrongParam, "unknown Operation Type %q", o.Type)
	case o.AuthKeyAlg != "" && !o.AuthKeyAlg.valid():
		return NewFault(CodeWrongParam, "unsupported AuthKeyAlg %q", o.AuthKeyAlg)
	case o.SignKeyAlg != "" && !o.SignKeyAlg.valid():
		return NewFault(CodeWrongParam, "unsupported SignKeyAlg %q", o.SignKeyAlg)
	case o.Type == RegBindCertificates && len(o.Certificates) == 0:
		return NewFault(CodeMissingParam, "BindCertificates without Certificate")
	case o.Type == RegResult && o.APTransID == "":
		return NewFault(CodeMissingParam, "Result without APTransID")
	}
	for _, c := range o.Certificates {
		if !c.KeyUsage.valid() {
			return NewFault(CodeWrongParam, "unknown Certificate KeyUsage %q", c.KeyUsage)
		}
		if len(c.DER) == 0 {
			return NewFault(CodeMissingParam, "empty Certificate")
		}
	}
	return nil
}

func validateRegistrationResult(r *RegistrationResult) error {
	if r == nil {
		return nil
	}
	for _, k := range r.Keys {
		switch {
		case !k.Ref.valid():
			return NewFault(CodeWrongParam, "unknown Key Ref %q", k.Ref)
		case !k.Alg.valid():
			return NewFault(CodeWrongParam, "unsupported Key Alg %q", k.Alg)
		case len(k.SPKI) == 0:
			return NewFault(CodeMissingParam, "Key SPKI missing")
		}
	}
	if a := r.Attestation; a != nil && len(a.Signature) == 0 {
		return NewFault(CodeMissingParam, "Attestation Signature missing")
	}
	for _, p := range []*int{r.PIN1TriesLeft, r.PIN2TriesLeft, r.PUKTriesLeft} {
		if p != nil && *p < 0 {
			return NewFault(CodeWrongParam, "negative tries-left counter")
		}
	}
	return nil
}
