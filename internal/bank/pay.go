package bank

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"time"
)

const (
	// pollWait is how long one status request of the payment page waits
	// for the MID session to end.
	pollWait = 5 * time.Second
	// pendingLimit is when the bank gives up on a payment whose session
	// it cannot learn the end of: the ID Server keeps sessions 5 minutes.
	pendingLimit = 6 * time.Minute
	// maxForm bounds the payment form's body.
	maxForm = 8 << 10
)

// Results of payments besides MID's own (OK, USER_CANCELLED, TIMEOUT,
// NOT_MID_CLIENT, PHONE_ABSENT, DELIVERY_ERROR, SIM_ERROR,
// SIGNATURE_HASH_MISMATCH).
const (
	resultOK                = "OK"
	resultInternal          = "INTERNAL_ERROR"
	resultExpired           = "EXPIRED"
	resultNotVerified       = "NOT_VERIFIED"
	resultInsufficientFunds = "INSUFFICIENT_FUNDS"
)

// resultMessages tell the customer why a payment was not made.
var resultMessages = map[string]string{
	"USER_CANCELLED":          "You cancelled the payment on your phone.",
	"TIMEOUT":                 "The PIN was not entered in time.",
	"NOT_MID_CLIENT":          "Your Mobile ID is not active: its certificates may be suspended or revoked.",
	"PHONE_ABSENT":            "Your phone could not be reached. Check that it is switched on and has a signal.",
	"DELIVERY_ERROR":          "The request could not be delivered to your phone.",
	"SIM_ERROR":               "Your SIM card could not sign. If your PIN2 is blocked, unblock it with the PUK.",
	"SIGNATURE_HASH_MISMATCH": "The phone's signature does not match the payment order.",
	resultInternal:            "The Mobile ID service had an error.",
	resultExpired:             "The payment was not confirmed in time.",
	resultNotVerified:         "The signature could not be verified.",
	resultInsufficientFunds:   "The balance no longer covers the payment.",
}

// resultMessage returns the customer's message for a failed payment.
func resultMessage(result string) string {
	if m, ok := resultMessages[result]; ok {
		return m + " Nothing was paid."
	}
	return "The payment was not confirmed (" + result + "). Nothing was paid."
}

// payForm is the payment form as typed.
type payForm struct {
	Payee, IBAN, Amount, Reference string
}

// validPayment is a payment form that passed validation.
type validPayment struct {
	Payee, IBAN, Reference string
	Amount                 int64 // cents
}

// validate checks every field of the form for the customer c, and returns
// the payment or the messages by field name.
func (f *payForm) validate(c *customer) (*validPayment, map[string]string) {
	errs := map[string]string{}
	var v validPayment
	if s, ok := cleanText(f.Payee); !ok {
		errs["payee"] = "The name may not contain control characters."
	} else if s == "" {
		errs["payee"] = "Enter the payee's name."
	} else if n := len([]rune(s)); n > maxPayeeName {
		errs["payee"] = "The name is too long: at most 70 characters."
	} else {
		v.Payee = s
	}
	if iban, err := parseIBAN(f.IBAN); err != nil {
		errs["iban"] = err.Error()
	} else if iban == c.IBAN {
		errs["iban"] = "This is your own account."
	} else {
		v.IBAN = iban
	}
	if cents, err := parseAmount(f.Amount); err != nil {
		errs["amount"] = err.Error()
	} else if cents > c.Balance {
		errs["amount"] = "The amount is more than your balance, " + formatMoney(c.Balance) + " " + c.Currency + "."
	} else {
		v.Amount = cents
	}
	if s, ok := cleanText(f.Reference); !ok {
		errs["reference"] = "The reference may not contain control characters."
	} else if len([]rune(s)) > maxReference {
		errs["reference"] = "The reference is too long: at most 140 characters."
	} else {
		v.Reference = s
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &v, nil
}

// paymentView is a payment as pages show it.
type paymentView struct {
	*payment
	Status  string // booked, failed or pending
	Message string // why a failed payment failed
	Text    string // the document as text

	// Of the signing certificate.
	Subject, Issuer, Serial string
	NotBefore, NotAfter     time.Time
}

func (b *Bank) view(p *payment) *paymentView {
	v := &paymentView{payment: p, Status: p.State, Text: string(p.Document)}
	if p.State == stateFailed {
		v.Message = resultMessage(p.Result)
	}
	if cert, err := x509.ParseCertificate(p.Cert); err == nil {
		v.Subject, v.Issuer, v.Serial = dn(cert.Subject), dn(cert.Issuer), certSerial(cert)
		v.NotBefore, v.NotAfter = cert.NotBefore, cert.NotAfter
	}
	return v
}

func (b *Bank) servePayForm(w http.ResponseWriter, r *http.Request, c *customer) {
	b.render(w, http.StatusOK, "pay", &page{Title: "New payment", Customer: c})
}

// servePay takes the payment form: it builds the payment order, asks the
// MID API for the customer's signing certificate and starts the signature
// session over the order's hash, then shows the payment's waiting page.
func (b *Bank) servePay(w http.ResponseWriter, r *http.Request, c *customer) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		b.errorPage(w, r, http.StatusBadRequest, nil, "The form could not be read.")
		return
	}
	f := payForm{Payee: r.PostForm.Get("payee"), IBAN: r.PostForm.Get("iban"), Amount: r.PostForm.Get("amount"), Reference: r.PostForm.Get("reference")}
	pg := &page{Title: "New payment", Customer: c, Form: f}
	v, errs := f.validate(c)
	if errs != nil {
		pg.Fields, pg.Error = errs, "Correct the fields marked below; nothing was paid."
		b.render(w, http.StatusBadRequest, "pay", pg)
		return
	}
	var raw [16]byte
	rand.Read(raw[:])
	order := &paymentOrder{
		ID: hex.EncodeToString(raw[:]), Created: b.now(), Bank: b.cfg.RPName,
		PayerName: c.Name, PayerCountry: c.Country, PayerNationalID: c.NationalID, PayerIBAN: c.IBAN,
		PayeeName: v.Payee, PayeeIBAN: v.IBAN, Amount: v.Amount, Currency: c.Currency, Reference: v.Reference,
	}
	doc := order.document()
	hash := sha256.Sum256(doc)
	ctx, cancel := context.WithTimeout(r.Context(), httpTimeout)
	defer cancel()
	result, cert, err := b.mid.certificate(ctx, c.Phone, c.NationalID)
	switch {
	case err != nil:
		b.log.Error("payment: signing certificate", "err", err)
		pg.Error = "Mobile ID cannot be reached just now; nothing was paid. Please try again in a moment."
		b.render(w, http.StatusBadGateway, "pay", pg)
		return
	case result == "NOT_ACTIVE":
		pg.Error = "Your Mobile ID signing certificate is suspended or revoked, so you cannot sign payments; nothing was paid."
		b.render(w, http.StatusConflict, "pay", pg)
		return
	case cert == nil:
		pg.Error = "Your phone number has no active Mobile ID to sign payments with; nothing was paid."
		b.render(w, http.StatusConflict, "pay", pg)
		return
	}
	session, err := b.mid.startSignature(ctx, c.Phone, c.NationalID, hash[:], displayText(v.Amount, c.Currency, v.Payee))
	if err != nil {
		b.log.Error("payment: start signature", "err", err)
		pg.Error = "Mobile ID could not ask your phone just now; nothing was paid. Please try again in a moment."
		b.render(w, http.StatusBadGateway, "pay", pg)
		return
	}
	p := &payment{
		ID: order.ID, AccountID: c.AccountID, State: statePending,
		PayeeName: v.Payee, PayeeIBAN: v.IBAN, Amount: v.Amount, Currency: c.Currency, Reference: v.Reference,
		Document: doc, Hash: hash[:], VC: verificationCode(hash[:]), Session: session, Cert: cert.Raw, Created: order.Created,
	}
	if err := b.insertPayment(r.Context(), p); err != nil {
		b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
		return
	}
	b.log.Info("payment started", "payment", p.ID, "session", session)
	b.redirect(w, r, "payments/"+p.ID)
}

// customerPayment returns the customer's payment in the path, or nil
// after answering 404.
func (b *Bank) customerPayment(w http.ResponseWriter, r *http.Request, c *customer) *payment {
	p, err := b.payment(r.Context(), c.AccountID, r.PathValue("id"))
	if err != nil {
		b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
		return nil
	}
	if p == nil {
		b.errorPage(w, r, http.StatusNotFound, nil, "There is no such payment.")
	}
	return p
}

// servePayment shows a payment: while it is pending, the verification
// code and the part that polls for the end; then the result.
func (b *Bank) servePayment(w http.ResponseWriter, r *http.Request, c *customer) {
	if p := b.customerPayment(w, r, c); p != nil {
		b.render(w, http.StatusOK, "payment", &page{Title: "Payment", Customer: c, P: b.view(p)})
	}
}

// servePaymentStatus is what the waiting page polls: it long-polls the
// MID session, completes the payment when the session ends, and then
// sends the browser to the payment's page; meanwhile it answers the
// waiting part again.
func (b *Bank) servePaymentStatus(w http.ResponseWriter, r *http.Request, c *customer) {
	p := b.customerPayment(w, r, c)
	if p == nil {
		return
	}
	if p.State == statePending {
		b.advance(r.Context(), p, c)
		var err error
		if p, err = b.payment(r.Context(), c.AccountID, p.ID); err != nil || p == nil {
			b.errorPage(w, r, http.StatusInternalServerError, err, msgInternal)
			return
		}
	}
	if p.State == statePending && r.Header.Get("HX-Request") == "true" {
		b.render(w, http.StatusOK, "wait", &page{P: b.view(p)})
		return
	}
	b.redirect(w, r, "payments/"+p.ID)
}

// advance asks the MID API how the payment's session is doing and, when
// it has ended, books or fails the payment. Errors that may pass (the
// ID Server unreachable a moment) leave the payment pending.
func (b *Bank) advance(ctx context.Context, p *payment, c *customer) {
	st, err := b.mid.signatureStatus(ctx, p.Session, pollWait)
	var result string
	switch {
	case errors.Is(err, errSessionNotFound):
		result = resultExpired
	case errors.Is(err, errMIDInternal):
		result = resultInternal
	case err != nil:
		if ctx.Err() != nil {
			return // the browser left
		}
		b.log.Warn("payment: session status", "payment", p.ID, "err", err)
		if b.now().Sub(p.Created) < pendingLimit {
			return
		}
		result = resultExpired
	case st.State != "COMPLETE":
		return
	case st.Result != resultOK:
		result = st.Result
	}
	// The session has ended: what follows is written even if the browser
	// leaves now, so that a signed payment is not left pending.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), httpTimeout)
	defer cancel()
	if result != "" {
		b.log.Info("payment failed", "payment", p.ID, "result", result)
		if err := b.failPayment(ctx, p.ID, result); err != nil {
			b.log.Error("payment: record failure", "payment", p.ID, "err", err)
		}
		return
	}
	sig, signer, err := b.check(p, c, st)
	if err != nil {
		b.log.Warn("payment: signature not verified", "payment", p.ID, "err", err)
		if err := b.failPayment(ctx, p.ID, resultNotVerified); err != nil {
			b.log.Error("payment: record failure", "payment", p.ID, "err", err)
		}
		return
	}
	if err := b.bookPayment(ctx, p, sig, st.Signature.Algorithm, signer); err != nil {
		b.log.Error("payment: book", "payment", p.ID, "err", err)
		return
	}
	b.log.Info("payment signed", "payment", p.ID, "signer", signer)
}

// check verifies the signature of an OK session over the payment's hash
// with the signing certificate, the certificate's chain, and that the
// certificate is the customer's, and returns the signature and the
// signer's name.
func (b *Bank) check(p *payment, c *customer, st *sessionStatus) ([]byte, string, error) {
	sig, err := base64.StdEncoding.DecodeString(st.Signature.Value)
	if err != nil {
		return nil, "", errBadSignature
	}
	cert, err := x509.ParseCertificate(p.Cert)
	if err != nil {
		return nil, "", errCertificate
	}
	if err := verifySignature(cert, p.Hash, sig, st.Signature.Algorithm, b.cfg.Roots, b.cfg.Intermediates, b.now()); err != nil {
		return nil, "", err
	}
	// The MID API found the certificate by the customer's phone number
	// and national ID; its subject must say so too.
	if cert.Subject.SerialNumber != semanticsID(c.Country, c.NationalID) {
		return nil, "", errors.New("the certificate's subject is not the customer")
	}
	return sig, signerName(cert), nil
}
