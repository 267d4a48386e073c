package apitoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// MinKeyLen is the shortest HMAC signing key accepted, in bytes.
const MinKeyLen = 64

// The signing algorithms a deployment may choose. A Signer accepts only its
// own: a JWT of the other is refused whatever its key.
const (
	// AlgHS512 is HMAC-SHA512: one shared secret signs and verifies. The
	// default.
	AlgHS512 = "HS512"
	// AlgEdDSA is Ed25519: the private key signs, the public key verifies,
	// so instances that only verify never hold the signing secret.
	AlgEdDSA = "EdDSA"
)

// Key is a signing or verifying key and its id.
type Key struct {
	// ID is derived from the key (the first 16 hex digits of the SHA-256 of
	// the HMAC secret, or of the Ed25519 public key), so every instance that
	// holds the same key names it the same way.
	ID string
	// Alg is AlgHS512 (also when empty) or AlgEdDSA.
	Alg string
	// Secret is the HMAC key (HS512).
	Secret []byte
	// Private is the Ed25519 private key (EdDSA); nil on a verify-only key.
	Private ed25519.PrivateKey
	// Public is the Ed25519 public key (EdDSA).
	Public ed25519.PublicKey
}

// Algorithm is the key's algorithm.
func (k Key) Algorithm() string {
	if k.Alg == "" {
		return AlgHS512
	}
	return k.Alg
}

// CanSign reports whether the key holds what signing needs.
func (k Key) CanSign() bool {
	if k.Algorithm() == AlgEdDSA {
		return len(k.Private) == ed25519.PrivateKeySize
	}
	return len(k.Secret) >= MinKeyLen
}

// CheckAlg refuses an algorithm name other than AlgHS512 and AlgEdDSA.
func CheckAlg(alg string) error {
	if alg != AlgHS512 && alg != AlgEdDSA {
		return Errorf(ErrInvalid, "signing algorithm %q is not supported; use %s (a shared secret) or %s (Ed25519)", alg, AlgHS512, AlgEdDSA)
	}
	return nil
}

func keyID(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// NewKey checks an HMAC secret and derives its id.
func NewKey(secret []byte) (Key, error) {
	if len(secret) < MinKeyLen {
		return Key{}, Errorf(ErrInvalid, "signing key is %d bytes; it must be at least %d random bytes (base64-encoded in the config)", len(secret), MinKeyLen)
	}
	return Key{ID: keyID(secret), Alg: AlgHS512, Secret: secret}, nil
}

// NewEd25519Key makes a signing key of an Ed25519 private key. Its id is
// that of its public key, so a verify-only instance names it the same way.
func NewEd25519Key(priv ed25519.PrivateKey) (Key, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Key{}, Errorf(ErrInvalid, "Ed25519 private key is %d bytes; it must be %d", len(priv), ed25519.PrivateKeySize)
	}
	// A 64-byte private key is seed || public key: rebuild it from the seed
	// so a key whose second half was tampered with is caught.
	clean := ed25519.NewKeyFromSeed(priv.Seed())
	if string(clean) != string(priv) {
		return Key{}, Errorf(ErrInvalid, "Ed25519 private key: its public half does not belong to its seed")
	}
	pub := clean.Public().(ed25519.PublicKey)
	return Key{ID: keyID(pub), Alg: AlgEdDSA, Private: clean, Public: pub}, nil
}

// NewEd25519PublicKey makes a verify-only key of an Ed25519 public key.
func NewEd25519PublicKey(pub ed25519.PublicKey) (Key, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Key{}, Errorf(ErrInvalid, "Ed25519 public key is %d bytes; it must be %d", len(pub), ed25519.PublicKeySize)
	}
	pub = append(ed25519.PublicKey(nil), pub...)
	return Key{ID: keyID(pub), Alg: AlgEdDSA, Public: pub}, nil
}

// decodeBase64 decodes standard or URL base64, padded or not.
func decodeBase64(encoded string) ([]byte, bool) {
	encoded = strings.TrimSpace(encoded)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(encoded); err == nil {
			return b, true
		}
	}
	return nil, false
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) HMAC
// key.
func ParseKey(encoded string) (Key, error) {
	secret, ok := decodeBase64(encoded)
	if !ok {
		return Key{}, Errorf(ErrInvalid, "signing key is not valid base64; generate one with: openssl rand -base64 64")
	}
	return NewKey(secret)
}

// ParseSigningKey decodes the base64 signing key of alg. For HS512 it is the
// raw secret (ParseKey). For EdDSA it is the 32-byte seed, the 64-byte
// private key (seed || public key), or a PKCS #8 DER private key, as
// `openssl genpkey -algorithm ed25519 -outform DER | base64 -w0` writes it.
func ParseSigningKey(alg, encoded string) (Key, error) {
	if err := CheckAlg(alg); err != nil {
		return Key{}, err
	}
	if alg == AlgHS512 {
		return ParseKey(encoded)
	}
	b, ok := decodeBase64(encoded)
	if !ok {
		return Key{}, Errorf(ErrInvalid, "Ed25519 signing key is not valid base64")
	}
	switch len(b) {
	case ed25519.SeedSize:
		return NewEd25519Key(ed25519.NewKeyFromSeed(b))
	case ed25519.PrivateKeySize:
		return NewEd25519Key(b)
	}
	if k, err := x509.ParsePKCS8PrivateKey(b); err == nil {
		if priv, ok := k.(ed25519.PrivateKey); ok {
			return NewEd25519Key(priv)
		}
		return Key{}, Errorf(ErrInvalid, "signing key is a %T, not an Ed25519 private key", k)
	}
	return Key{}, Errorf(ErrInvalid, "Ed25519 signing key is %d bytes: give the 32-byte seed, the 64-byte private key or PKCS #8 DER, base64-encoded", len(b))
}

// ParseVerifyKey decodes the base64 verify-only key of alg: for EdDSA, the
// 32-byte public key or its DER SubjectPublicKeyInfo, as
// `openssl pkey -in key.pem -pubout -outform DER | base64 -w0` writes it.
// HS512 has no verify-only keys: its one secret both signs and verifies.
func ParseVerifyKey(alg, encoded string) (Key, error) {
	if err := CheckAlg(alg); err != nil {
		return Key{}, err
	}
	if alg != AlgEdDSA {
		return Key{}, Errorf(ErrInvalid, "verify keys are for %s; an %s key is a secret that both signs and verifies: give it as another signing_key", AlgEdDSA, alg)
	}
	b, ok := decodeBase64(encoded)
	if !ok {
		return Key{}, Errorf(ErrInvalid, "Ed25519 verify key is not valid base64")
	}
	if len(b) == ed25519.PublicKeySize {
		return NewEd25519PublicKey(b)
	}
	if k, err := x509.ParsePKIXPublicKey(b); err == nil {
		if pub, ok := k.(ed25519.PublicKey); ok {
			return NewEd25519PublicKey(pub)
		}
		return Key{}, Errorf(ErrInvalid, "verify key is a %T, not an Ed25519 public key", k)
	}
	return Key{}, Errorf(ErrInvalid, "Ed25519 verify key is %d bytes: give the 32-byte public key or its DER SubjectPublicKeyInfo, base64-encoded", len(b))
}

// GenerateKeySecret returns a new random key of MinKeyLen bytes, base64-encoded.
func GenerateKeySecret() string {
	b := make([]byte, MinKeyLen)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.StdEncoding.EncodeToString(b)
}

// GenerateKey returns a new random signing key of alg and its base64 form,
// as ParseSigningKey reads it (the HMAC secret, or the Ed25519 seed).
func GenerateKey(alg string) (Key, string, error) {
	if err := CheckAlg(alg); err != nil {
		return Key{}, "", err
	}
	var encoded string
	if alg == AlgHS512 {
		encoded = GenerateKeySecret()
	} else {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
		encoded = base64.StdEncoding.EncodeToString(seed)
	}
	k, err := ParseSigningKey(alg, encoded)
	return k, encoded, err
}
