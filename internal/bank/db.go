package bank

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Money of a new account.
const (
	demoBalance = 250000 // cents: 2,500.00
	currency    = "EUR"
	// bankCode is the bank's code in its IBANs (EE, 2 digits).
	bankCode = "99"
)

// Payment states.
const (
	statePending = "pending"
	stateBooked  = "booked"
	stateFailed  = "failed"
)

// customer is a customer with their account, as a session names them.
type customer struct {
	ID         int64
	Subject    string
	Name       string
	GivenName  string
	FamilyName string
	Phone      string
	NationalID string
	Country    string
	AccountID  int64
	IBAN       string
	Currency   string
	Balance    int64 // cents
}

// identity is what an ID token tells of a customer.
type identity struct {
	Subject, Name, GivenName, FamilyName, Phone, NationalID, Country string
}

// payment is a row of bank_payments.
type payment struct {
	ID        string
	AccountID int64
	State     string
	Result    string
	PayeeName string
	PayeeIBAN string
	Amount    int64
	Currency  string
	Reference string
	Document  []byte
	Hash      []byte
	VC        string
	Session   string
	Cert      []byte
	Signature []byte
	Algorithm string
	Signer    string
	Created   time.Time
	Completed time.Time
}

// randomToken returns 32 random bytes in base64url, for cookies.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenHash is how a cookie's value is stored: whoever reads the database
// cannot use the rows to log in.
func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// accountIBAN returns the IBAN of the bank's account number n.
func accountIBAN(n int64) string {
	return makeIBAN("EE", fmt.Sprintf("%s%014d", bankCode, n))
}

const customerColumns = `c.id, c.subject, c.name, c.given_name, c.family_name, c.phone, c.national_id, c.national_id_country,
	a.id, a.iban, a.currency, a.balance`

// logIn records the customer an ID token names, with the claims of this
// login, opens their account at the first login, and starts a session.
// It returns the session cookie's value.
func (b *Bank) logIn(ctx context.Context, id identity) (string, error) {
	now := b.now()
	token := randomToken()
	err := b.db.InTx(ctx, func(tx *sql.Tx) error {
		var cid int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM bank_customers WHERE subject = $1`, id.Subject).Scan(&cid)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			err = tx.QueryRowContext(ctx, `INSERT INTO bank_customers
				(subject, name, given_name, family_name, phone, national_id, national_id_country, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`,
				id.Subject, id.Name, id.GivenName, id.FamilyName, id.Phone, id.NationalID, id.Country, now.UnixMicro()).Scan(&cid)
			if err != nil {
				return fmt.Errorf("insert customer: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO bank_accounts (customer_id, iban, currency, balance, created_at)
				VALUES ($1, $2, $3, $4, $5)`, cid, accountIBAN(cid), currency, demoBalance, now.UnixMicro()); err != nil {
				return fmt.Errorf("open account: %w", err)
			}
		case err != nil:
			return fmt.Errorf("find customer: %w", err)
		default:
			// Names and numbers change; the bank keeps the latest.
			if _, err := tx.ExecContext(ctx, `UPDATE bank_customers SET name = $1, given_name = $2, family_name = $3,
				phone = $4, national_id = $5, national_id_country = $6, updated_at = $7 WHERE id = $8`,
				id.Name, id.GivenName, id.FamilyName, id.Phone, id.NationalID, id.Country, now.UnixMicro(), cid); err != nil {
				return fmt.Errorf("update customer: %w", err)
			}
		}
		// Sessions that ended are dropped where new ones begin.
		if _, err := tx.ExecContext(ctx, `DELETE FROM bank_sessions WHERE expires_at <= $1`, now.UnixMicro()); err != nil {
			return fmt.Errorf("delete expired sessions: %w", err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO bank_sessions (id_hash, customer_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			tokenHash(token), cid, now.UnixMicro(), now.Add(sessionIdle).UnixMicro())
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("log in: %w", err)
	}
	return token, nil
}

// sessionCustomer returns the customer of a live session, or nil for an
// unknown or expired one. A session lives sessionIdle from its last use;
// the expiry is moved on at most once a minute, to spare the database a
// write per page.
func (b *Bank) sessionCustomer(ctx context.Context, token string) (*customer, error) {
	now := b.now()
	h := tokenHash(token)
	var expires int64
	row := b.db.QueryRowContext(ctx, `SELECT `+customerColumns+`, s.expires_at
		FROM bank_sessions s JOIN bank_customers c ON c.id = s.customer_id JOIN bank_accounts a ON a.customer_id = c.id
		WHERE s.id_hash = $1`, h)
	var c customer
	err := row.Scan(&c.ID, &c.Subject, &c.Name, &c.GivenName, &c.FamilyName, &c.Phone, &c.NationalID, &c.Country,
		&c.AccountID, &c.IBAN, &c.Currency, &c.Balance, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read session: %w", err)
	}
	if now.UnixMicro() >= expires {
		if _, err := b.db.ExecContext(ctx, `DELETE FROM bank_sessions WHERE id_hash = $1`, h); err != nil {
			return nil, fmt.Errorf("delete expired session: %w", err)
		}
		return nil, nil
	}
	if next := now.Add(sessionIdle).UnixMicro(); next-expires >= time.Minute.Microseconds() {
		if _, err := b.db.ExecContext(ctx, `UPDATE bank_sessions SET expires_at = $1 WHERE id_hash = $2 AND expires_at < $1`, next, h); err != nil {
			return nil, fmt.Errorf("extend session: %w", err)
		}
	}
	return &c, nil
}

// logOut ends a session.
func (b *Bank) logOut(ctx context.Context, token string) error {
	if _, err := b.db.ExecContext(ctx, `DELETE FROM bank_sessions WHERE id_hash = $1`, tokenHash(token)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// login is an OpenID Connect login under way.
type login struct {
	State, Nonce, Verifier string
}

// startLogin records a login and returns the login cookie's value.
func (b *Bank) startLogin(ctx context.Context, l login) (string, error) {
	now := b.now()
	token := randomToken()
	err := b.db.InTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM bank_logins WHERE expires_at <= $1`, now.UnixMicro()); err != nil {
			return fmt.Errorf("delete expired logins: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO bank_logins (id_hash, state, nonce, verifier, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			tokenHash(token), l.State, l.Nonce, l.Verifier, now.Add(loginLife).UnixMicro())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("start login: %w", err)
	}
	return token, nil
}

// takeLogin returns the live login of the cookie and deletes it: a login
// completes once. It returns nil for an unknown or expired one.
func (b *Bank) takeLogin(ctx context.Context, token string) (*login, error) {
	var (
		l       login
		expires int64
		found   bool
	)
	h := tokenHash(token)
	err := b.db.InTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT state, nonce, verifier, expires_at FROM bank_logins WHERE id_hash = $1`, h).
			Scan(&l.State, &l.Nonce, &l.Verifier, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		_, err = tx.ExecContext(ctx, `DELETE FROM bank_logins WHERE id_hash = $1`, h)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("take login: %w", err)
	}
	if !found || b.now().UnixMicro() >= expires {
		return nil, nil
	}
	return &l, nil
}

const paymentColumns = `id, account_id, state, result, payee_name, payee_iban, amount, currency, reference,
	document, hash, vc, mid_session, cert, signature, sig_algorithm, signer_name, created_at, completed_at`

func scanPayment(row interface{ Scan(...any) error }) (*payment, error) {
	var (
		p                  payment
		created, completed int64
	)
	err := row.Scan(&p.ID, &p.AccountID, &p.State, &p.Result, &p.PayeeName, &p.PayeeIBAN, &p.Amount, &p.Currency, &p.Reference,
		&p.Document, &p.Hash, &p.VC, &p.Session, &p.Cert, &p.Signature, &p.Algorithm, &p.Signer, &created, &completed)
	if err != nil {
		return nil, err
	}
	p.Created = time.UnixMicro(created)
	if completed != 0 {
		p.Completed = time.UnixMicro(completed)
	}
	return &p, nil
}

// insertPayment records a payment whose signature session has started.
func (b *Bank) insertPayment(ctx context.Context, p *payment) error {
	_, err := b.db.ExecContext(ctx, `INSERT INTO bank_payments
		(id, account_id, state, payee_name, payee_iban, amount, currency, reference, document, hash, vc, mid_session, cert, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		p.ID, p.AccountID, p.State, p.PayeeName, p.PayeeIBAN, p.Amount, p.Currency, p.Reference,
		p.Document, p.Hash, p.VC, p.Session, p.Cert, p.Created.UnixMicro())
	if err != nil {
		return fmt.Errorf("insert payment: %w", err)
	}
	return nil
}

// payment returns a payment of the account, or nil.
func (b *Bank) payment(ctx context.Context, accountID int64, id string) (*payment, error) {
	p, err := scanPayment(b.db.QueryRowContext(ctx, `SELECT `+paymentColumns+` FROM bank_payments WHERE id = $1 AND account_id = $2`, id, accountID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read payment: %w", err)
	}
	return p, nil
}

// maxListed is how many payments the account page lists.
const maxListed = 50

// payments returns the account's latest payments, newest first.
func (b *Bank) payments(ctx context.Context, accountID int64) ([]*payment, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT `+paymentColumns+` FROM bank_payments WHERE account_id = $1
		ORDER BY created_at DESC, id LIMIT $2`, accountID, maxListed)
	if err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	defer rows.Close()
	var out []*payment
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, fmt.Errorf("list payments: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list payments: %w", err)
	}
	return out, nil
}

// failPayment ends a pending payment without booking it.
func (b *Bank) failPayment(ctx context.Context, id, result string) error {
	_, err := b.db.ExecContext(ctx, `UPDATE bank_payments SET state = $1, result = $2, completed_at = $3 WHERE id = $4 AND state = $5`,
		stateFailed, result, b.now().UnixMicro(), id, statePending)
	if err != nil {
		return fmt.Errorf("fail payment: %w", err)
	}
	return nil
}

// bookPayment books a pending payment whose signature verified: the
// balance goes down by the amount and the payment keeps the signature.
// A balance that no longer covers the amount (another payment was booked
// meanwhile) fails the payment instead. A payment no longer pending is
// left as it is: another request completed it first.
func (b *Bank) bookPayment(ctx context.Context, p *payment, sig []byte, algorithm, signer string) error {
	now := b.now().UnixMicro()
	err := b.db.InTx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, `SELECT state FROM bank_payments WHERE id = $1`, p.ID).Scan(&state)
		if err != nil {
			return fmt.Errorf("read payment: %w", err)
		}
		if state != statePending {
			return nil
		}
		res, err := tx.ExecContext(ctx, `UPDATE bank_accounts SET balance = balance - $1 WHERE id = $2 AND balance >= $1`, p.Amount, p.AccountID)
		if err != nil {
			return fmt.Errorf("debit account: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("debit account: %w", err)
		} else if n == 0 {
			_, err := tx.ExecContext(ctx, `UPDATE bank_payments SET state = $1, result = $2, completed_at = $3 WHERE id = $4`,
				stateFailed, resultInsufficientFunds, now, p.ID)
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE bank_payments SET state = $1, result = $2, signature = $3, sig_algorithm = $4,
			signer_name = $5, completed_at = $6 WHERE id = $7`, stateBooked, resultOK, sig, algorithm, signer, now, p.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("book payment: %w", err)
	}
	return nil
}
