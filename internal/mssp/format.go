package mssp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/digitorus/timestamp"

	"mobileid/internal/cms"
	"mobileid/internal/etsi"
	"mobileid/internal/vmac"
)

// Format is the signature format of a response, the MSS_Format an
// application provider asked for.
type Format int

// Signature formats.
const (
	// FormatCMS is a CMS SignedData in the CAdES-BES profile (CAdES-T when
	// the time-stamp service is wanted), returned as MSS_Signature's
	// Base64Signature: the ETSI PKCS7 and CMS-Signature formats.
	FormatCMS Format = iota + 1
	// FormatPKCS1 is the FiCom fi:PKCS1 format: the card's signature value
	// and the signer's certificate.
	FormatPKCS1
)

// String returns "CMS", "PKCS1" or Format(n).
func (f Format) String() string {
	switch f {
	case FormatCMS:
		return "CMS"
	case FormatPKCS1:
		return "PKCS1"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// toSign is the input of a signature: exactly one of Text (the DTBS text,
// UTF-8) and Digest (with Hash) is set.
type toSign struct {
	Format Format
	Text   []byte
	Digest []byte
	// Hash is the hash of Digest; for Text it is SHA-256 or zero, which
	// means SHA-256.
	Hash crypto.Hash
	// Cert is the user's registered certificate for the key that signs.
	Cert *x509.Certificate
	// Chain is the issuing CA (and optionally the root), included in a CMS
	// signature.
	Chain []*x509.Certificate
	// SigningTime is fixed when the request is accepted and stored with
	// it, so that the digest can be recomputed after a restart. A CMS
	// signature needs it; it is truncated to the second.
	SigningTime time.Time
	// Verified says that the caller has verified the card's signature
	// over digestToSign(in) with Cert's key (the Validator does), so
	// assemble does not verify it again. Otherwise assemble refuses a
	// signature that does not verify.
	Verified bool
}

// check validates in and returns the hash of its message digest.
func (in *toSign) check() (crypto.Hash, error) {
	if in == nil || in.Cert == nil {
		return 0, errors.New("mssp: no signer certificate")
	}
	if _, err := keyAlg(in.Cert.PublicKey); err != nil {
		return 0, err
	}
	switch {
	case in.Text != nil && in.Digest != nil:
		return 0, errors.New("mssp: both text and digest to sign")
	case in.Text != nil:
		if in.Hash != 0 && in.Hash != crypto.SHA256 {
			return 0, fmt.Errorf("mssp: text is signed with SHA-256, not %v", in.Hash)
		}
		return crypto.SHA256, nil
	case in.Digest != nil:
		switch in.Hash {
		case crypto.SHA256, crypto.SHA384, crypto.SHA512:
		default:
			return 0, fmt.Errorf("mssp: unsupported digest hash %v", in.Hash)
		}
		if len(in.Digest) != in.Hash.Size() {
			return 0, fmt.Errorf("mssp: digest of %d bytes, want %d for %v", len(in.Digest), in.Hash.Size(), in.Hash)
		}
		return in.Hash, nil
	}
	return 0, errors.New("mssp: nothing to sign")
}

// keyAlg maps a certificate key to the card's key algorithm: only the
// keys a card makes are accepted.
func keyAlg(pub crypto.PublicKey) (vmac.KeyAlg, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return vmac.AlgECDSAP256, nil
		}
	case *rsa.PublicKey:
		if k.N.BitLen() == 2048 {
			return vmac.AlgRSA2048, nil
		}
	}
	return 0, fmt.Errorf("mssp: signer key %T is neither ECDSA P-256 nor RSA-2048", pub)
}

// prepare builds the CAdES-BES signed attributes of a CMS signature.
func (in *toSign) prepare(hash crypto.Hash) (*cms.Pending, error) {
	if in.SigningTime.IsZero() {
		// cms.Prepare would take the current time, and the digest could
		// not be recomputed.
		return nil, errors.New("mssp: CMS signature without a signing time")
	}
	req := &cms.Request{Signer: in.Cert, Chain: in.Chain, SigningTime: in.SigningTime}
	if in.Digest != nil {
		req.Digest, req.Detached = in.Digest, true
	} else {
		req.Content = in.Text
	}
	p, err := cms.Prepare(req)
	if err != nil {
		return nil, fmt.Errorf("mssp: prepare CMS signature: %w", err)
	}
	if p.Hash() != hash {
		// cms infers the hash from the digest length, which check has
		// tied to hash; a mismatch would sign under the wrong algorithm.
		return nil, fmt.Errorf("mssp: CMS signature hash %v, want %v", p.Hash(), hash)
	}
	return p, nil
}

// digestToSign returns what the SIM signs and with which hash. For CMS it
// is the digest of the CAdES-BES signed attributes: with the text as
// attached content, or detached with the message-digest attribute equal to
// Digest (and then Digest's hash, since CMS has one digest algorithm per
// signer). For PKCS1 it is SHA-256(Text) or Digest. The result depends on
// in alone, so the engine can recompute it after a restart and compare it
// with what it sent.
func digestToSign(in *toSign) (digest []byte, hash crypto.Hash, err error) {
	hash, err = in.check()
	if err != nil {
		return nil, 0, err
	}
	switch in.Format {
	case FormatCMS:
		p, err := in.prepare(hash)
		if err != nil {
			return nil, 0, err
		}
		return p.Digest(), p.Hash(), nil
	case FormatPKCS1:
		if in.Digest != nil {
			return bytes.Clone(in.Digest), hash, nil
		}
		sum := sha256.Sum256(in.Text)
		return sum[:], crypto.SHA256, nil
	}
	return nil, 0, fmt.Errorf("mssp: unsupported signature format %v", in.Format)
}

// assemble turns the card's signature rawSig over digestToSign(in) into
// the response's MSS_Signature. It fails if rawSig does not verify with
// the certificate's key, so that an invalid signature is never delivered.
//
// CMS: the SignedData is finished with the signature converted to the DER
// ECDSA-Sig-Value that CMS requires (RSA signatures are unchanged); when ts
// is not nil, an RFC 3161 time stamp over the SHA-256 of the signature
// value is added as the signature-time-stamp attribute (CAdES-T).
//
// PKCS1: SignatureValue is the signature exactly as the card returned it,
// as FiCom relying parties expect: the raw r‖s (64 bytes) for ECDSA P-256,
// the PKCS #1 v1.5 signature (256 bytes) for RSA-2048. X509Certificate is
// the signer's certificate.
func assemble(ctx context.Context, in *toSign, rawSig []byte, ts Timestamper) (*etsi.Signature, error) {
	hash, err := in.check()
	if err != nil {
		return nil, err
	}
	switch in.Format {
	case FormatCMS:
		p, err := in.prepare(hash)
		if err != nil {
			return nil, err
		}
		alg, err := keyAlg(in.Cert.PublicKey)
		if err != nil {
			return nil, err
		}
		sig, err := vmac.SignatureToASN1(alg, rawSig)
		if err != nil {
			return nil, fmt.Errorf("mssp: convert card signature: %w", err)
		}
		finish := p.Finish
		if in.Verified {
			finish = p.FinishVerified
		}
		der, err := finish(sig)
		if err != nil {
			return nil, fmt.Errorf("mssp: finish CMS signature: %w", err)
		}
		if ts != nil {
			sum := sha256.Sum256(sig)
			token, err := ts.Timestamp(ctx, crypto.SHA256, sum[:])
			if err != nil {
				return nil, fmt.Errorf("mssp: time-stamp signature: %w", err)
			}
			if der, err = cms.AddTimestamp(der, token); err != nil {
				return nil, fmt.Errorf("mssp: add time stamp: %w", err)
			}
		}
		return &etsi.Signature{Base64Signature: der}, nil
	case FormatPKCS1:
		digest, _, err := digestToSign(in)
		if err != nil {
			return nil, err
		}
		if !in.Verified {
			if err := vmac.VerifyDigest(in.Cert.PublicKey, hash, digest, rawSig); err != nil {
				return nil, fmt.Errorf("mssp: check card signature: %w", err)
			}
		}
		return &etsi.Signature{PKCS1: &etsi.PKCS1{
			SignatureValue:  bytes.Clone(rawSig),
			X509Certificate: bytes.Clone(in.Cert.Raw),
		}}, nil
	}
	return nil, fmt.Errorf("mssp: unsupported signature format %v", in.Format)
}

// Timestamper gets an RFC 3161 time-stamp token for a digest.
type Timestamper interface {
	// Timestamp returns a TimeStampToken (the DER ContentInfo carrying
	// the SignedData over a TSTInfo) whose message imprint is digest,
	// computed with hash.
	Timestamp(ctx context.Context, hash crypto.Hash, digest []byte) ([]byte, error)
}

// maxTimestampReply bounds the size of a time-stamp reply: a token with a
// certificate chain is a few kilobytes.
const maxTimestampReply = 1 << 20

// HTTPTimestamper is a Timestamper that asks a time-stamping authority over
// HTTP (RFC 3161 §3.4).
type HTTPTimestamper struct {
	// URL is where TimeStampReqs are POSTed.
	URL string
	// Client sends the requests; nil means http.DefaultClient, in which
	// case only the context bounds a request.
	Client *http.Client
}

// Timestamp posts a TimeStampReq for digest with a random nonce and certReq
// set, and checks the reply: the status is granted, the token's message
// imprint and nonce are the request's, and the token's signature verifies
// with the TSA certificate it carries. Whether that certificate is one to
// trust is left to whoever verifies the signature later, as for the
// signer's own chain.
func (h *HTTPTimestamper) Timestamp(ctx context.Context, hash crypto.Hash, digest []byte) ([]byte, error) {
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return nil, fmt.Errorf("make nonce: %w", err)
	}
	// A leading zero bit would be dropped in DER; setting the top bit
	// keeps every nonce 64 bits long.
	nonce.SetBit(nonce, 63, 1)
	treq := timestamp.Request{HashAlgorithm: hash, HashedMessage: digest, Certificates: true, Nonce: nonce}
	query, err := treq.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode time-stamp query: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(query))
	if err != nil {
		return nil, fmt.Errorf("make time-stamp request: %w", err)
	}
	req.Header.Set("Content-Type", "application/timestamp-query")
	req.Header.Set("Accept", "application/timestamp-reply")
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("post time-stamp query: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("post time-stamp query: HTTP status %s", resp.Status)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/timestamp-reply" {
		return nil, fmt.Errorf("read time-stamp reply: Content-Type %q", resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTimestampReply+1))
	if err != nil {
		return nil, fmt.Errorf("read time-stamp reply: %w", err)
	}
	if len(body) > maxTimestampReply {
		return nil, fmt.Errorf("read time-stamp reply: longer than %d bytes", maxTimestampReply)
	}
	// ParseResponse refuses a status other than granted and, for a token
	// that carries certificates, checks its signature.
	tok, err := timestamp.ParseResponse(body)
	if err != nil {
		return nil, fmt.Errorf("parse time-stamp reply: %w", err)
	}
	switch {
	case len(tok.Certificates) == 0:
		return nil, errors.New("check time-stamp token: no TSA certificate, so its signature cannot be checked")
	case tok.HashAlgorithm != hash || !bytes.Equal(tok.HashedMessage, digest):
		return nil, errors.New("check time-stamp token: message imprint is not the requested one")
	case tok.Nonce == nil || tok.Nonce.Cmp(nonce) != 0:
		return nil, errors.New("check time-stamp token: nonce is not the requested one")
	}
	return tok.RawToken, nil
}
