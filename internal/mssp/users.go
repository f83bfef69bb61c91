package mssp

import (
	"bytes"
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"mobileid/internal/store"
	"mobileid/internal/vmac"
)

// ErrUnknownUser means the MSSP holds no registered keys for the MSISDN.
var ErrUnknownUser = errors.New("mssp: no registered user")

// UserState is where a user is in registration.
type UserState string

// User states.
const (
	// UserKeys: the SIM generated the keys; the certificates are not
	// bound yet, so the user cannot sign.
	UserKeys UserState = "keys"
	// UserActive: both certificates are bound.
	UserActive UserState = "active"
)

// User is a mobile user as the MSSP knows them.
type User struct {
	MSISDN    string
	ICCID     string
	State     UserState
	Auth      UserKey // the authentication key (PIN1)
	Sign      UserKey // the signing key (PIN2)
	NoSpam    string  // the user's no-spam code, "" when none
	UpdatedAt time.Time
}

// UserKey is one of a user's keys on the SIM.
type UserKey struct {
	Alg  vmac.KeyAlg
	SPKI []byte
	// Cert is the certificate bound to the key, nil before binding.
	Cert *x509.Certificate
}

// Key returns the key ref names.
func (u *User) Key(ref vmac.KeyRef) *UserKey {
	if ref == vmac.KeySign {
		return &u.Sign
	}
	return &u.Auth
}

// userCacheTTL bounds how long another node's change to a user (a new
// binding) can go unseen here. Revocation does not depend on it: every
// signature's certificate is checked with OCSP.
const userCacheTTL = 10 * time.Second

// maxCachedUsers bounds the cache of users: about 2 KB each.
const maxCachedUsers = 100_000

// Users is the MSSP's registry of users' keys and certificates.
type Users struct {
	db  *store.DB
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedUser
}

type cachedUser struct {
	u     *User
	until time.Time
}

// NewUsers returns the registry on db, creating its tables if needed.
func NewUsers(db *store.DB, now func() time.Time) (*Users, error) {
	if now == nil {
		now = time.Now
	}
	sub, err := fs.Sub(migrationsFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("mssp: %w", err)
	}
	if err := db.Migrate(context.Background(), component, sub); err != nil {
		return nil, fmt.Errorf("mssp: %w", err)
	}
	return &Users{db: db, now: now, cache: map[string]cachedUser{}}, nil
}

const userColumns = `msisdn, iccid, state, auth_alg, auth_spki, auth_cert, sign_alg, sign_spki, sign_cert, nospam, updated_at`

// Get returns the user with msisdn, or ErrUnknownUser.
func (us *Users) Get(ctx context.Context, msisdn string) (*User, error) {
	now := us.now()
	us.mu.Lock()
	c, ok := us.cache[msisdn]
	us.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.u, nil
	}
	u, err := scanUser(us.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM mssp_users WHERE msisdn = $1`, msisdn))
	if err != nil {
		return nil, err
	}
	us.mu.Lock()
	if len(us.cache) >= maxCachedUsers {
		// Entries live seconds; starting over costs one read each.
		clear(us.cache)
	}
	us.cache[msisdn] = cachedUser{u, now.Add(userCacheTTL)}
	us.mu.Unlock()
	return u, nil
}

// forget drops msisdn from the cache after a change.
func (us *Users) forget(msisdn string) {
	us.mu.Lock()
	delete(us.cache, msisdn)
	us.mu.Unlock()
}

func scanUser(row *sql.Row) (*User, error) {
	var (
		u                  User
		state              string
		authAlg, signAlg   int64
		authCert, signCert []byte
		updated            int64
	)
	err := row.Scan(&u.MSISDN, &u.ICCID, &state, &authAlg, &u.Auth.SPKI, &authCert, &signAlg, &u.Sign.SPKI, &signCert, &u.NoSpam, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrUnknownUser
	}
	if err != nil {
		return nil, fmt.Errorf("mssp: read user: %w", err)
	}
	u.State = UserState(state)
	u.Auth.Alg, u.Sign.Alg = vmac.KeyAlg(authAlg), vmac.KeyAlg(signAlg)
	u.UpdatedAt = time.UnixMicro(updated)
	for _, k := range []struct {
		der []byte
		key *UserKey
	}{{authCert, &u.Auth}, {signCert, &u.Sign}} {
		if len(k.der) == 0 {
			continue
		}
		c, err := x509.ParseCertificate(k.der)
		if err != nil {
			return nil, fmt.Errorf("mssp: user %s: stored certificate: %w", u.MSISDN, err)
		}
		k.key.Cert = c
	}
	return &u, nil
}

// saveKeys records the keys a SIM generated at registration, replacing
// any earlier keys and certificates of msisdn, in tx.
func (us *Users) saveKeys(ctx context.Context, tx *sql.Tx, msisdn, iccid string, auth, sign vmac.KeyEntry) error {
	_, err := tx.ExecContext(ctx, `DELETE FROM mssp_users WHERE msisdn = $1`, msisdn)
	if err == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO mssp_users (msisdn, iccid, state, auth_alg, auth_spki, sign_alg, sign_spki, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			msisdn, iccid, string(UserKeys), int64(auth.Alg), auth.SPKI, int64(sign.Alg), sign.SPKI, us.now().UnixMicro())
	}
	if err != nil {
		return fmt.Errorf("mssp: save keys of %s: %w", msisdn, err)
	}
	us.forget(msisdn)
	return nil
}

// remove forgets msisdn's keys and certificates, in tx.
func (us *Users) remove(ctx context.Context, tx *sql.Tx, msisdn string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM mssp_users WHERE msisdn = $1`, msisdn); err != nil {
		return fmt.Errorf("mssp: remove user %s: %w", msisdn, err)
	}
	us.forget(msisdn)
	return nil
}

// ErrCertificateMismatch means a certificate offered for binding does not
// certify either of the user's registered keys.
var ErrCertificateMismatch = errors.New("mssp: certificate does not match a registered key")

// BindCertificates binds certificates to msisdn's registered keys: each
// certificate's public key must be the user's authentication or signing
// key. Once both keys have a certificate the user is active. A later
// binding replaces the earlier certificate of the same key (renewal).
func (us *Users) BindCertificates(ctx context.Context, msisdn string, certs []*x509.Certificate) (*User, error) {
	if len(certs) == 0 {
		return nil, errors.New("mssp: bind certificates: none given")
	}
	err := us.db.InTx(ctx, func(tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM mssp_users WHERE msisdn = $1`, msisdn))
		if err != nil {
			return err
		}
		for _, c := range certs {
			switch {
			case bytes.Equal(c.RawSubjectPublicKeyInfo, u.Auth.SPKI):
				u.Auth.Cert = c
			case bytes.Equal(c.RawSubjectPublicKeyInfo, u.Sign.SPKI):
				u.Sign.Cert = c
			default:
				return fmt.Errorf("%w: %s, serial %s", ErrCertificateMismatch, c.Subject, c.SerialNumber.Text(16))
			}
		}
		state := UserKeys
		if u.Auth.Cert != nil && u.Sign.Cert != nil {
			state = UserActive
		}
		raw := func(c *x509.Certificate) []byte {
			if c == nil {
				return nil
			}
			return c.Raw
		}
		_, err = tx.ExecContext(ctx, `UPDATE mssp_users SET auth_cert = $1, sign_cert = $2, state = $3, updated_at = $4 WHERE msisdn = $5`,
			raw(u.Auth.Cert), raw(u.Sign.Cert), string(state), us.now().UnixMicro(), msisdn)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mssp: bind certificates of %s: %w", msisdn, err)
	}
	us.forget(msisdn)
	return us.Get(ctx, msisdn)
}

// SetNoSpam sets the user's no-spam code, which APs that ask for it to be
// verified must know.
func (us *Users) SetNoSpam(ctx context.Context, msisdn, code string) error {
	res, err := us.db.ExecContext(ctx, `UPDATE mssp_users SET nospam = $1, updated_at = $2 WHERE msisdn = $3`, code, us.now().UnixMicro(), msisdn)
	if err != nil {
		return fmt.Errorf("mssp: set no-spam code of %s: %w", msisdn, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrUnknownUser
	}
	us.forget(msisdn)
	return nil
}
