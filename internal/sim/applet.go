package sim

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"mobileid/internal/vmac"
)

// runApplet executes one VMAC command and returns the encoded response.
// It never fails: every problem becomes a status in the response.
func (c *Card) runApplet(ctx context.Context, data []byte, u User) []byte {
	cmd, err := vmac.ParseCommand(data)
	if err != nil {
		st := vmac.StatusBadRequest
		if errors.Is(err, vmac.ErrUnsupported) {
			st = vmac.StatusUnsupported
		}
		ref, has := vmac.PeekTxRef(data)
		return mustMarshal(&vmac.GenericResponse{Ref: ref, HasRef: has, Result: st})
	}
	ctx, cancel := context.WithTimeout(ctx, c.userTimeout)
	defer cancel()
	var resp vmac.Response
	switch cmd := cmd.(type) {
	case *vmac.Info:
		resp = c.info(cmd)
	case *vmac.Register:
		resp = c.register(ctx, cmd, u)
	case *vmac.Sign:
		resp = c.sign(ctx, cmd, u)
	case *vmac.Display:
		resp = c.display(ctx, cmd, u)
	case *vmac.Reset:
		resp = c.reset(cmd)
	default:
		resp = &vmac.GenericResponse{Ref: cmd.TxRef(), HasRef: true, Result: vmac.StatusUnsupported}
	}
	out, err := vmac.MarshalResponse(resp)
	if err != nil {
		return mustMarshal(&vmac.GenericResponse{Ref: cmd.TxRef(), HasRef: true, Result: vmac.StatusInternalError})
	}
	return out
}

func mustMarshal(r vmac.Response) []byte {
	out, err := vmac.MarshalResponse(r)
	if err != nil {
		panic("sim: cannot encode a status-only response: " + err.Error())
	}
	return out
}

// interactionStatus maps an error of the User to the applet status: a
// user who did not answer in time is TIMEOUT; anything else went wrong in
// the handset.
func interactionStatus(err error) vmac.Status {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return vmac.StatusTimeout
	}
	return vmac.StatusInternalError
}

func (c *Card) state() vmac.CardState {
	switch {
	case c.d.PUK.Tries <= 0:
		return vmac.StateBlocked
	case c.authKey != nil:
		return vmac.StateRegistered
	}
	return vmac.StatePersonalised
}

func (c *Card) info(cmd *vmac.Info) vmac.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &vmac.InfoResponse{
		Ref: cmd.Ref, Result: vmac.StatusOK,
		VersionMajor: vmac.ProtocolMajor, VersionMinor: vmac.ProtocolMinor,
		ICCID: c.d.ICCID, State: c.state(),
		PUKTriesLeft: uint8(max(c.d.PUK.Tries, 0)),
		AuthKeyAlg:   c.d.AuthAlg, SignKeyAlg: c.d.SignAlg,
	}
	if c.d.PIN1 != nil {
		r.PIN1TriesLeft, r.PIN2TriesLeft = uint8(c.d.PIN1.Tries), uint8(c.d.PIN2.Tries)
	}
	return r
}

func (c *Card) reset(cmd *vmac.Reset) vmac.Response {
	if cmd.Scope != vmac.ResetKeysAndPINs {
		return &vmac.ResetResponse{Ref: cmd.Ref, Result: vmac.StatusUnsupported}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d.AuthKey, c.d.SignKey, c.d.PIN1, c.d.PIN2 = nil, nil, nil, nil
	c.d.AuthAlg, c.d.SignAlg = 0, 0
	c.authKey, c.signKey = nil, nil
	c.d.PUK.Tries = c.d.PUK.Max
	c.changed = true
	return &vmac.ResetResponse{Ref: cmd.Ref, Result: vmac.StatusOK}
}

func (c *Card) display(ctx context.Context, cmd *vmac.Display, u User) vmac.Response {
	r := &vmac.DisplayResponse{Ref: cmd.Ref, Result: vmac.StatusOK}
	if !cmd.WaitForOK {
		u.Show(cmd.Text)
		return r
	}
	ok, err := u.Confirm(ctx, cmd.Text)
	switch {
	case err != nil:
		r.Result = interactionStatus(err)
	case !ok:
		r.Result = vmac.StatusUserCancel
	}
	return r
}

// choosePIN asks the user for a new PIN twice; three mismatches or
// malformed entries end the registration as cancelled.
func choosePIN(ctx context.Context, u User, which PINRef, purpose string) (string, vmac.Status) {
	min, max := which.lengths()
	prompt := fmt.Sprintf("Choose %v for %s (%d-%d digits)", which, purpose, min, max)
	for range 3 {
		p1, ok, err := u.AskPIN(ctx, prompt, min, max)
		if err != nil {
			return "", interactionStatus(err)
		}
		if !ok {
			return "", vmac.StatusUserCancel
		}
		if !validPIN(p1, min, max) {
			prompt = fmt.Sprintf("%v must be %d-%d digits. Choose %v for %s", which, min, max, which, purpose)
			continue
		}
		p2, ok, err := u.AskPIN(ctx, fmt.Sprintf("Repeat %v", which), min, max)
		if err != nil {
			return "", interactionStatus(err)
		}
		if !ok {
			return "", vmac.StatusUserCancel
		}
		if p1 == p2 {
			return p1, vmac.StatusOK
		}
		prompt = fmt.Sprintf("The PINs did not match. Choose %v for %s", which, purpose)
	}
	return "", vmac.StatusUserCancel
}

func (c *Card) register(ctx context.Context, cmd *vmac.Register, u User) vmac.Response {
	fail := func(st vmac.Status) vmac.Response { return &vmac.RegisterResponse{Ref: cmd.Ref, Result: st} }
	c.mu.Lock()
	st := c.state()
	c.mu.Unlock()
	switch st {
	case vmac.StateRegistered:
		return fail(vmac.StatusAlreadyRegistered)
	case vmac.StateBlocked:
		return fail(vmac.StatusCardBlocked)
	}
	if cmd.DisplayText != "" {
		ok, err := u.Confirm(ctx, cmd.DisplayText)
		if err != nil {
			return fail(interactionStatus(err))
		}
		if !ok {
			return fail(vmac.StatusUserCancel)
		}
	}
	pin1, st1 := choosePIN(ctx, u, PIN1, "authentication")
	if st1 != vmac.StatusOK {
		return fail(st1)
	}
	pin2, st2 := choosePIN(ctx, u, PIN2, "signing")
	if st2 != vmac.StatusOK {
		return fail(st2)
	}
	u.Show("Generating your Mobile ID keys…")

	// Key generation runs without the state lock: RSA takes a while and
	// the phone may read the card's status meanwhile.
	authKey, authDER, authSPKI, err := c.generate(cmd.AuthAlg)
	if err != nil {
		return fail(vmac.StatusInternalError)
	}
	signKey, signDER, signSPKI, err := c.generate(cmd.SignAlg)
	if err != nil {
		return fail(vmac.StatusInternalError)
	}
	resp := &vmac.RegisterResponse{
		Ref: cmd.Ref, Result: vmac.StatusOK,
		AuthKey:         vmac.KeyEntry{Alg: cmd.AuthAlg, SPKI: authSPKI},
		SignKey:         vmac.KeyEntry{Alg: cmd.SignAlg, SPKI: signSPKI},
		ICCID:           c.d.ICCID,
		AttestationCert: c.d.AttestationCert,
	}
	if resp.AuthKey.PoP, err = c.signMessage(authKey, cmd.AuthAlg, vmac.PoPMessage(cmd.Challenge, vmac.KeyAuth, authSPKI)); err != nil {
		return fail(vmac.StatusInternalError)
	}
	if resp.SignKey.PoP, err = c.signMessage(signKey, cmd.SignAlg, vmac.PoPMessage(cmd.Challenge, vmac.KeySign, signSPKI)); err != nil {
		return fail(vmac.StatusInternalError)
	}
	att, err := vmac.AttestationMessage(cmd.Challenge, c.d.ICCID, authSPKI, signSPKI)
	if err != nil {
		return fail(vmac.StatusInternalError)
	}
	if resp.AttestationSignature, err = c.signMessage(c.attKey, vmac.AlgECDSAP256, att); err != nil {
		return fail(vmac.StatusInternalError)
	}
	s1, err := newSecret(c.rand, pin1, PINTries)
	if err != nil {
		return fail(vmac.StatusInternalError)
	}
	s2, err := newSecret(c.rand, pin2, PINTries)
	if err != nil {
		return fail(vmac.StatusInternalError)
	}

	c.mu.Lock()
	if c.authKey != nil {
		// A RESET and another REGISTER cannot interleave with this one
		// (the session lock), so this is only a guard.
		c.mu.Unlock()
		return fail(vmac.StatusAlreadyRegistered)
	}
	c.d.AuthKey, c.d.SignKey = authDER, signDER
	c.d.AuthAlg, c.d.SignAlg = cmd.AuthAlg, cmd.SignAlg
	c.d.PIN1, c.d.PIN2 = s1, s2
	c.authKey, c.signKey = authKey, signKey
	c.changed = true
	c.mu.Unlock()
	// Replace the "Generating…" note, which would otherwise stay on the
	// idle screen. Outside the lock: the phone may read the card's status
	// while it draws.
	u.Show("Your Mobile ID keys are ready.")
	return resp
}

// generate makes a user key pair on the card.
func (c *Card) generate(alg vmac.KeyAlg) (crypto.Signer, []byte, []byte, error) {
	var k crypto.Signer
	var err error
	switch alg {
	case vmac.AlgECDSAP256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), c.rand)
	case vmac.AlgRSA2048:
		k, err = rsa.GenerateKey(c.rand, 2048)
	default:
		return nil, nil, nil, fmt.Errorf("sim: key algorithm %v", alg)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sim: generate %v key: %w", alg, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sim: encode key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sim: encode public key: %w", err)
	}
	return k, der, spki, nil
}

// signMessage signs SHA-256 of msg in the card's wire format.
func (c *Card) signMessage(k crypto.Signer, alg vmac.KeyAlg, msg []byte) ([]byte, error) {
	d := sha256.Sum256(msg)
	return c.signDigest(k, alg, crypto.SHA256, d[:])
}

// signDigest signs a digest and returns raw r‖s for ECDSA or the PKCS #1
// v1.5 signature for RSA.
func (c *Card) signDigest(k crypto.Signer, alg vmac.KeyAlg, h crypto.Hash, digest []byte) ([]byte, error) {
	if ek, ok := k.(*ecdsa.PrivateKey); ok {
		der, err := ecdsa.SignASN1(c.rand, ek, digest)
		if err != nil {
			return nil, err
		}
		return vmac.SignatureFromASN1(alg, der)
	}
	return k.Sign(c.rand, digest, h)
}

// signScreen is what the phone shows before asking for the PIN.
func signScreen(cmd *vmac.Sign) string {
	var b strings.Builder
	if cmd.RPName != "" {
		b.WriteString(cmd.RPName)
		b.WriteString("\n")
	}
	if cmd.DisplayText != "" {
		b.WriteString(cmd.DisplayText)
		b.WriteString("\n")
	}
	if cmd.VerificationCode != "" {
		b.WriteString("Verification code: ")
		b.WriteString(cmd.VerificationCode)
		b.WriteString("\n")
	}
	if cmd.Key == vmac.KeySign {
		b.WriteString("Sign with PIN2?")
	} else {
		b.WriteString("Confirm with PIN1?")
	}
	return b.String()
}

func (c *Card) sign(ctx context.Context, cmd *vmac.Sign, u User) vmac.Response {
	r := &vmac.SignResponse{Ref: cmd.Ref}
	which := PIN1
	if cmd.Key == vmac.KeySign {
		which = PIN2
	}
	c.mu.Lock()
	st := c.state()
	var tries int
	if s, err := c.pin(which); err == nil {
		tries = s.Tries
	}
	c.mu.Unlock()
	switch {
	case st == vmac.StateBlocked:
		r.Result = vmac.StatusCardBlocked
		return r
	case st != vmac.StateRegistered:
		r.Result = vmac.StatusNoKey
		return r
	case tries <= 0:
		r.Result = vmac.StatusPINBlocked
		r.TriesLeft = new(uint8)
		return r
	}
	digest := cmd.Digest
	if cmd.Data != nil {
		h := cmd.Hash.Hash().New()
		h.Write(cmd.Data)
		digest = h.Sum(nil)
	}
	ok, err := u.Confirm(ctx, signScreen(cmd))
	if err != nil {
		r.Result = interactionStatus(err)
		return r
	}
	if !ok {
		r.Result = vmac.StatusUserCancel
		return r
	}
	min, max := which.lengths()
	prompt := fmt.Sprintf("Enter %v", which)
	wrong := false
	for {
		pin, ok, err := u.AskPIN(ctx, prompt, min, max)
		if err != nil {
			r.Result = interactionStatus(err)
			break
		}
		if !ok {
			r.Result = vmac.StatusUserCancel
			break
		}
		c.mu.Lock()
		s, perr := c.pin(which)
		if perr != nil {
			// RESET cannot run meanwhile (session lock); a blocked PUK can.
			c.mu.Unlock()
			r.Result = vmac.StatusCardBlocked
			return r
		}
		good, blocked := s.verify(pin)
		c.changed = true
		left := s.Tries
		key := c.authKey
		alg := c.d.AuthAlg
		if which == PIN2 {
			key, alg = c.signKey, c.d.SignAlg
		}
		c.mu.Unlock()
		if good {
			sig, err := c.signDigest(key, alg, cmd.Hash.Hash(), digest)
			if err != nil {
				r.Result = vmac.StatusInternalError
				return r
			}
			r.Result, r.Signature = vmac.StatusOK, sig
			return r
		}
		wrong = true
		if blocked {
			r.Result = vmac.StatusPINBlocked
			r.TriesLeft = new(uint8)
			u.Show(fmt.Sprintf("%v blocked. Unblock it with your PUK.", which))
			return r
		}
		prompt = fmt.Sprintf("Wrong %v, %d tries left. Enter %v", which, left, which)
	}
	if wrong {
		c.mu.Lock()
		if s, err := c.pin(which); err == nil {
			n := uint8(s.Tries)
			r.TriesLeft = &n
		}
		c.mu.Unlock()
	}
	return r
}
