package bench

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"mobileid/internal/cms"
	"mobileid/internal/ota"
	"mobileid/internal/vmac"
)

// Floor is the crypto floor: how many transactions per second this
// machine could complete if a transaction cost only its cryptography.
type Floor struct {
	// TxPerSec is the rate of "transactions" of cryptography alone.
	TxPerSec float64 `json:"tx_per_sec"`
	// Goroutines ran the loop for Seconds, one per GOMAXPROCS.
	Goroutines int     `json:"goroutines"`
	Seconds    float64 `json:"seconds"`
	// TxPerSecNoChain is the rate derived without the chain validations,
	// which the MSSP caches per certificate (internal/mssp's Validator):
	// the floor of a system whose chain cache always hits.
	TxPerSecNoChain float64 `json:"tx_per_sec_without_chain"`
	// Steps is the mean time of each step per transaction, in
	// microseconds, keyed by the step's name (see floorSteps).
	Steps map[string]float64 `json:"steps_us"`
}

// Names of the floor's steps.
const (
	stepOTA    = "OTA"      // command wrap + card unwrap, PoR wrap + unwrap
	stepSIM    = "SIM"      // the card's signature
	stepVerify = "verify"   // signature verifications
	stepChain  = "chain"    // x509 chain validations
	stepCMS    = "CMS"      // CAdES-BES assembly
	stepToken  = "ID token" // the ES256 ID token of CIBA
	stepHash   = "digest"   // SHA-256 of the text, or cms.Prepare: the signed attributes and their digest
)

// floorSteps lists the steps in the order the report shows them.
var floorSteps = []string{stepHash, stepOTA, stepSIM, stepVerify, stepChain, stepCMS, stepToken}

// floorWork is the cryptography of one transaction, prepared once.
type floorWork struct {
	key       crypto.Signer
	alg       vmac.KeyAlg
	leaf      *x509.Certificate
	issuing   *x509.Certificate
	opts      x509.VerifyOptions
	otaKeys   ota.Keys
	cmd       *ota.Command
	resp      []byte // the VMAC SIGN response, of the key type's size
	cms       bool
	verifiers int // how many parties verify the signature and chain
	idToken   *ecdsa.PrivateKey
	claims    []byte
}

// newFloorWork makes the keys and certificates: a user key of type key, a
// P-384 root and issuing CA like the CA's key ceremony makes, a user
// certificate with the signing profile's key usage, AES-128 OTA keys, and
// the VMAC SIGN command and response the MSSP and the SIM exchange.
func newFloorWork(key KeyType, format Format, mode Mode) (*floorWork, error) {
	w := &floorWork{cms: format == FormatCMS, verifiers: 1}
	var err error
	if key == KeyRSA {
		w.alg = vmac.AlgRSA2048
		w.key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		w.alg = vmac.AlgECDSAP256
		w.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("crypto floor: user key: %w", err)
	}
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("crypto floor: %w", err)
	}
	issuingKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("crypto floor: %w", err)
	}
	now := time.Now().Truncate(time.Second)
	mk := func(tmpl, parent *x509.Certificate, pub any, priv crypto.Signer) (*x509.Certificate, error) {
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
		if err != nil {
			return nil, err
		}
		return x509.ParseCertificate(der)
	}
	name := func(cn string) pkix.Name {
		return pkix.Name{Country: []string{"EE"}, Organization: []string{"mobileid bench"}, CommonName: cn}
	}
	root, err := mk(&x509.Certificate{SerialNumber: big.NewInt(1), Subject: name("Root CA"), NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(20, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true}, nil, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("crypto floor: root: %w", err)
	}
	w.issuing, err = mk(&x509.Certificate{SerialNumber: big.NewInt(2), Subject: name("Issuing CA"), NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true}, root, &issuingKey.PublicKey, rootKey)
	if err != nil {
		return nil, fmt.Errorf("crypto floor: issuing CA: %w", err)
	}
	w.leaf, err = mk(&x509.Certificate{SerialNumber: big.NewInt(3),
		Subject:   pkix.Name{Country: []string{"EE"}, SerialNumber: "PNOEE-46001010002", CommonName: "TESTER,BENCH,PNOEE-46001010002"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0), KeyUsage: x509.KeyUsageContentCommitment}, w.issuing, w.key.Public(), issuingKey)
	if err != nil {
		return nil, fmt.Errorf("crypto floor: user certificate: %w", err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inter.AddCert(w.issuing)
	w.opts = x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}

	w.otaKeys = ota.Keys{KIc: make([]byte, 16), KID: make([]byte, 16)}
	rand.Read(w.otaKeys.KIc)
	rand.Read(w.otaKeys.KID)
	sum := sha256.Sum256([]byte(signText))
	data, err := vmac.MarshalCommand(&vmac.Sign{Ref: 1, Key: vmac.KeySign, Hash: vmac.HashSHA256, Digest: sum[:], RPName: benchAPName, DisplayText: signText})
	if err != nil {
		return nil, fmt.Errorf("crypto floor: %w", err)
	}
	// The MSSP's SPI: counter higher, ciphered, AES-CMAC; PoR ciphered
	// with a CC, by SMS-SUBMIT.
	w.cmd = &ota.Command{
		SPI: ota.SPI{Integrity: ota.CC, Ciphered: true, Counter: ota.CounterHigher, PoR: ota.PoRAlways, PoRIntegrity: ota.CC, PoRCiphered: true, PoRSubmit: true},
		KIc: 0x12, KID: 0x12, TAR: ota.TAR{0xb0, 0, 0x10}, Counter: 1, Data: data,
	}
	sigLen := 64
	if key == KeyRSA {
		sigLen = 256
	}
	w.resp, err = vmac.MarshalResponse(&vmac.SignResponse{Ref: 1, Result: vmac.StatusOK, Signature: make([]byte, sigLen)})
	if err != nil {
		return nil, fmt.Errorf("crypto floor: %w", err)
	}
	if mode == ModeMID || mode == ModeCIBA {
		// The ID Server checks the MSSP's answer again.
		w.verifiers = 2
	}
	if mode == ModeCIBA {
		if w.idToken, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("crypto floor: %w", err)
		}
		w.claims = make([]byte, 600) // the size of a signed ID token's header and claims
	}
	return w, nil
}

// stepTimes accumulates the time of each step in one goroutine.
type stepTimes map[string]time.Duration

// one runs the cryptography of one transaction, timing its steps.
func (w *floorWork) one(t stepTimes) error {
	t0 := time.Now()
	sum := sha256.Sum256([]byte(signText))
	digest, hash := sum[:], crypto.SHA256
	var pending *cms.Pending
	if w.cms {
		var err error
		pending, err = cms.Prepare(&cms.Request{Content: []byte(signText), Signer: w.leaf, Chain: []*x509.Certificate{w.issuing}, SigningTime: t0})
		if err != nil {
			return err
		}
		digest = pending.Digest()
	}
	t1 := time.Now()
	t[stepHash] += t1.Sub(t0)

	// MSSP → SIM: the command wrapped, then opened by the card.
	pkt, err := ota.WrapCommand(w.cmd, w.otaKeys)
	if err != nil {
		return err
	}
	p, err := ota.ParseCommandPacket(pkt)
	if err != nil {
		return err
	}
	cmd, err := p.Open(w.otaKeys)
	if err != nil {
		return err
	}
	t2 := time.Now()
	t[stepOTA] += t2.Sub(t1)

	var raw []byte
	if ek, ok := w.key.(*ecdsa.PrivateKey); ok {
		der, err := ecdsa.SignASN1(rand.Reader, ek, digest)
		if err != nil {
			return err
		}
		raw, err = vmac.SignatureFromASN1(w.alg, der)
		if err != nil {
			return err
		}
	} else if raw, err = w.key.Sign(rand.Reader, digest, hash); err != nil {
		return err
	}
	t3 := time.Now()
	t[stepSIM] += t3.Sub(t2)

	// SIM → MSSP: the PoR wrapped by the card, opened by the MSSP.
	rp, err := ota.WrapResponse(&ota.Response{TAR: cmd.TAR, Counter: cmd.Counter, Data: w.resp}, w.cmd, w.otaKeys)
	if err != nil {
		return err
	}
	if _, err := ota.OpenResponse(rp, w.cmd, w.otaKeys); err != nil {
		return err
	}
	t4 := time.Now()
	t[stepOTA] += t4.Sub(t3)

	for range w.verifiers {
		a := time.Now()
		if err := vmac.VerifyDigest(w.leaf.PublicKey, hash, digest, raw); err != nil {
			return err
		}
		b := time.Now()
		w.opts.CurrentTime = b
		if _, err := w.leaf.Verify(w.opts); err != nil {
			return err
		}
		c := time.Now()
		t[stepVerify] += b.Sub(a)
		t[stepChain] += c.Sub(b)
	}
	t5 := time.Now()
	if pending != nil {
		sig, err := vmac.SignatureToASN1(w.alg, raw)
		if err != nil {
			return err
		}
		if _, err := pending.FinishVerified(sig); err != nil {
			return err
		}
	}
	t6 := time.Now()
	t[stepCMS] += t6.Sub(t5)
	if w.idToken != nil {
		d := sha256.Sum256(w.claims)
		if _, err := ecdsa.SignASN1(rand.Reader, w.idToken, d[:]); err != nil {
			return err
		}
		t[stepToken] += time.Since(t6)
	}
	return nil
}

// measureFloor runs the cryptography of one transaction in a loop on
// GOMAXPROCS goroutines for d and returns the rate.
func measureFloor(ctx context.Context, w *floorWork, d time.Duration) (*Floor, error) {
	n := runtime.GOMAXPROCS(0)
	var (
		count atomic.Int64
		mu    sync.Mutex
		total = stepTimes{}
		ferr  error
		wg    sync.WaitGroup
	)
	// Each goroutine has a copy of the work: it sets the verification
	// options' CurrentTime.
	start := time.Now()
	end := start.Add(d)
	for range n {
		wc := *w
		c := *w.cmd
		wc.cmd = &c
		wg.Go(func() {
			t := stepTimes{}
			var err error
			for ctx.Err() == nil && time.Now().Before(end) {
				if err = wc.one(t); err != nil {
					break
				}
				count.Add(1)
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range t {
				total[k] += v
			}
			if err != nil && ferr == nil {
				ferr = fmt.Errorf("crypto floor: %w", err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ferr != nil {
		return nil, ferr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c := count.Load()
	if c == 0 {
		return nil, fmt.Errorf("crypto floor: no transaction in %v", d)
	}
	f := &Floor{TxPerSec: float64(c) / elapsed.Seconds(), Goroutines: n, Seconds: elapsed.Seconds(), Steps: map[string]float64{}}
	for k, v := range total {
		f.Steps[k] = float64(v.Microseconds()) / float64(c)
	}
	// Each goroutine spends perTx on a transaction, of which chain on
	// chain validation.
	perTx := float64(n) * elapsed.Seconds() / float64(c)
	if chain := total[stepChain].Seconds() / float64(c); perTx > chain {
		f.TxPerSecNoChain = float64(n) / (perTx - chain)
	}
	return f, nil
}
