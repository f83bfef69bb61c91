// This file keeps the OpenID provider's ID token signing keys: ECDSA P-256
// keys, sealed with AES-256-GCM under the key encryption key of
// OIDCConfig before they reach the database.

package idserver

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"mobileid/internal/store"
)

// publishedKeys is how many of the newest signing keys the JWKS lists:
// the current one and the one before it, whose ID tokens are still within
// their lifetime after a rotation.
const publishedKeys = 2

// signingKey is an unsealed signing key.
type signingKey struct {
	id  string
	key *ecdsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

// publicKey is a published verification key.
type publicKey struct {
	id  string
	key *ecdsa.PublicKey
}

func (k *publicKey) ID() string                         { return k.id }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k *publicKey) Use() string                        { return "sig" }
func (k *publicKey) Key() any                           { return k.key }

var (
	_ op.SigningKey = (*signingKey)(nil)
	_ op.Key        = (*publicKey)(nil)
)

// keyStore reads and writes the sealed signing keys. It caches unsealed
// keys by ID; keys are never changed once written.
type keyStore struct {
	db   *store.DB
	aead cipher.AEAD
	now  func() int64

	mu    sync.Mutex
	cache map[string]*ecdsa.PrivateKey
}

func newKeyStore(db *store.DB, kek [32]byte, now func() int64) (*keyStore, error) {
	block, err := aes.NewCipher(kek[:])
	if err != nil {
		return nil, fmt.Errorf("create key encryption cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("create key encryption cipher: %w", err)
	}
	return &keyStore{db: db, aead: aead, now: now, cache: map[string]*ecdsa.PrivateKey{}}, nil
}

// additionalData binds a sealed key to its ID, so that keys cannot be
// swapped in the database.
func additionalData(id string) []byte { return []byte("mobileid oidc signing key " + id) }

// rotate generates a new signing key and stores it sealed; it signs from
// then on.
func (ks *keyStore) rotate(ctx context.Context) (*signingKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	id := newUUID()
	nonce := make([]byte, ks.aead.NonceSize())
	rand.Read(nonce)
	sealed := ks.aead.Seal(nonce, nonce, der, additionalData(id))
	if _, err := ks.db.ExecContext(ctx, `INSERT INTO idserver_oidc_keys (id, sealed, created_at) VALUES ($1, $2, $3)`,
		id, sealed, ks.now()); err != nil {
		return nil, fmt.Errorf("store signing key: %w", err)
	}
	ks.mu.Lock()
	ks.cache[id] = priv
	ks.mu.Unlock()
	return &signingKey{id: id, key: priv}, nil
}

// newest returns up to n keys, the newest first.
func (ks *keyStore) newest(ctx context.Context, n int) ([]*signingKey, error) {
	rows, err := ks.db.QueryContext(ctx, `SELECT id, sealed FROM idserver_oidc_keys ORDER BY created_at DESC, id LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	defer rows.Close()
	var out []*signingKey
	for rows.Next() {
		var id string
		var sealed []byte
		if err := rows.Scan(&id, &sealed); err != nil {
			return nil, fmt.Errorf("read signing keys: %w", err)
		}
		priv, err := ks.unseal(id, sealed)
		if err != nil {
			return nil, err
		}
		out = append(out, &signingKey{id: id, key: priv})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	return out, nil
}

func (ks *keyStore) unseal(id string, sealed []byte) (*ecdsa.PrivateKey, error) {
	ks.mu.Lock()
	priv, ok := ks.cache[id]
	ks.mu.Unlock()
	if ok {
		return priv, nil
	}
	ns := ks.aead.NonceSize()
	if len(sealed) < ns {
		return nil, fmt.Errorf("unseal signing key %s: too short", id)
	}
	der, err := ks.aead.Open(nil, sealed[:ns], sealed[ns:], additionalData(id))
	if err != nil {
		// The usual cause is a key encryption key other than the one
		// the key was sealed with.
		return nil, fmt.Errorf("unseal signing key %s: %w", id, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", id, err)
	}
	priv, ok = k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s is not an ECDSA P-256 key", id)
	}
	ks.mu.Lock()
	ks.cache[id] = priv
	ks.mu.Unlock()
	return priv, nil
}

// errNoKey means the database holds no signing key yet.
var errNoKey = errors.New("no signing key")

// current returns the newest signing key, or errNoKey.
func (ks *keyStore) current(ctx context.Context) (*signingKey, error) {
	keys, err := ks.newest(ctx, 1)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errNoKey
	}
	return keys[0], nil
}
