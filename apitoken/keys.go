package apitoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
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

// LoadOrCreateKeyFile reads the base64 key kept at path, or, when there is no
// file yet, generates one and writes it with mode 0600 (its folder 0700). The
// file is created exclusively, so two processes starting at once agree on one
// key. A file readable by group or others is refused.
//
// It is the single-key file of earlier versions; LoadOrCreateKeyring reads it
// once to migrate it.
func LoadOrCreateKeyFile(path string) (Key, error) {
	if k, err := readKeyFile(path); !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Key{}, fmt.Errorf("creating key folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readKeyFile(path)
	}
	if err != nil {
		return Key{}, fmt.Errorf("creating signing key file: %w", err)
	}
	secret := GenerateKeySecret()
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		os.Remove(path)
		return Key{}, fmt.Errorf("writing signing key file: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return Key{}, fmt.Errorf("writing signing key file: %w", err)
	}
	return ParseKey(secret)
}

// readOwnerOnly reads a file that must be readable by its owner only.
func readOwnerOnly(path, what string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %v; it must be readable by its owner only (chmod 600)", what, path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return b, nil
}

func readKeyFile(path string) (Key, error) {
	b, err := readOwnerOnly(path, "signing key file")
	if err != nil {
		return Key{}, err
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("signing key file %s: %w", path, err)
	}
	return k, nil
}

// A keyring is the file of generated signing keys kept in Caddy's data
// directory when the config names none: JSON, mode 0600, newest key first.
// The newest key of the configured algorithm signs; every key of that
// algorithm verifies until it is retired (removed). Keys of another
// algorithm are kept but unused, so switching signing_alg back and forth
// loses nothing.
type keyringFile struct {
	Keys []keyringEntry `json:"keys"`
}

type keyringEntry struct {
	// KID is the key's id, as derived from the key; a mismatch means the
	// file was damaged and is refused.
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	Key       string    `json:"key"` // base64: the HMAC secret, or the Ed25519 seed
	CreatedAt time.Time `json:"created_at"`
}

// keyringMu serialises the changes this process makes to keyring files.
// Separate processes (a CLI next to a running server) must not change one
// keyring at the same moment: each write is atomic, but the later one wins.
var keyringMu sync.Mutex

// LoadOrCreateKeyring reads the keyring at path and returns the keys of alg,
// the signing one first. Without a keyring it creates one (0600, its folder
// 0700): with the key of the single-key file at legacyPath if there is one
// (which is then removed, so a retired key does not linger there), and a new
// key of alg if none is of alg. A file readable by group or others is
// refused.
func LoadOrCreateKeyring(path, legacyPath, alg string) ([]Key, error) {
	if err := CheckAlg(alg); err != nil {
		return nil, err
	}
	keyringMu.Lock()
	defer keyringMu.Unlock()
	for attempt := 0; ; attempt++ {
		keys, err := loadOrCreateKeyring(path, legacyPath, alg)
		if errors.Is(err, fs.ErrExist) && attempt == 0 {
			continue // another process created it first: read theirs
		}
		return keys, err
	}
}

func loadOrCreateKeyring(path, legacyPath, alg string) ([]Key, error) {
	ring, err := readKeyring(path)
	exists, migrated := err == nil, false
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ring = &keyringFile{}
		if legacyPath != "" {
			k, err := readKeyFile(legacyPath)
			switch {
			case err == nil:
				ring.Keys = append(ring.Keys, keyringEntry{KID: k.ID, Alg: AlgHS512, Key: base64.StdEncoding.EncodeToString(k.Secret), CreatedAt: fileTime(legacyPath)})
				migrated = true
			case !errors.Is(err, fs.ErrNotExist):
				return nil, err
			}
		}
	case err != nil:
		return nil, err
	}
	keys, err := ring.keys(alg)
	if err != nil {
		return nil, fmt.Errorf("signing keyring %s: %w", path, err)
	}
	if exists && len(keys) > 0 {
		return keys, nil
	}
	if len(keys) == 0 {
		if _, err := ring.add(alg); err != nil {
			return nil, err
		}
	}
	// A new keyring is created exclusively, so two processes starting at
	// once agree on one.
	if err := writeKeyring(path, ring, !exists); err != nil {
		return nil, err
	}
	if migrated {
		if err := os.Remove(legacyPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("removing the migrated signing key file: %w", err)
		}
	}
	return ring.keys(alg)
}

// RotateKeyring adds a new key of alg to the keyring at path, which from now
// on signs, and returns it with every key of alg (the new one first). The
// keys it replaces keep verifying until they are retired.
func RotateKeyring(path, alg string) (Key, []Key, error) {
	if err := CheckAlg(alg); err != nil {
		return Key{}, nil, err
	}
	keyringMu.Lock()
	defer keyringMu.Unlock()
	ring, err := readKeyring(path)
	if err != nil {
		return Key{}, nil, err
	}
	k, err := ring.add(alg)
	if err != nil {
		return Key{}, nil, err
	}
	if err := writeKeyring(path, ring, false); err != nil {
		return Key{}, nil, err
	}
	keys, err := ring.keys(alg)
	return k, keys, err
}

// RetireKeyringKey removes the key kid from the keyring at path, for good,
// and returns the keys of alg that remain. JWTs signed with it stop
// verifying. The key that signs (the newest of alg) cannot be retired:
// rotate first. An unknown kid is ErrNotFound.
func RetireKeyringKey(path, kid, alg string) ([]Key, error) {
	if err := CheckAlg(alg); err != nil {
		return nil, err
	}
	keyringMu.Lock()
	defer keyringMu.Unlock()
	ring, err := readKeyring(path)
	if err != nil {
		return nil, err
	}
	keys, err := ring.keys(alg)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 && keys[0].ID == kid {
		return nil, Errorf(ErrConflict, "key %s signs new tokens; rotate to a new key first, then retire this one", kid)
	}
	kept := ring.Keys[:0:0]
	for _, e := range ring.Keys {
		if e.KID != kid {
			kept = append(kept, e)
		}
	}
	if len(kept) == len(ring.Keys) {
		return nil, Errorf(ErrNotFound, "no signing key %q in the keyring", kid)
	}
	ring.Keys = kept
	if err := writeKeyring(path, ring, false); err != nil {
		return nil, err
	}
	return ring.keys(alg)
}

// KeyringInfo is what may be shown of a key of the keyring: never the key.
type KeyringInfo struct {
	ID        string
	Alg       string
	CreatedAt time.Time
}

// ListKeyring lists the keys of the keyring at path, newest first.
func ListKeyring(path string) ([]KeyringInfo, error) {
	keyringMu.Lock()
	defer keyringMu.Unlock()
	ring, err := readKeyring(path)
	if err != nil {
		return nil, err
	}
	out := make([]KeyringInfo, len(ring.Keys))
	for i, e := range ring.Keys {
		out[i] = KeyringInfo{ID: e.KID, Alg: e.Alg, CreatedAt: e.CreatedAt}
	}
	return out, nil
}

// keys parses the entries of alg, newest first, checking every entry.
func (r *keyringFile) keys(alg string) ([]Key, error) {
	var out []Key
	seen := make(map[string]bool, len(r.Keys))
	for i, e := range r.Keys {
		if err := CheckAlg(e.Alg); err != nil {
			return nil, fmt.Errorf("key #%d: %s", i+1, Message(err))
		}
		k, err := ParseSigningKey(e.Alg, e.Key)
		if err != nil {
			return nil, fmt.Errorf("key #%d: %s", i+1, Message(err))
		}
		if k.ID != e.KID {
			return nil, fmt.Errorf("key #%d is recorded as %q but is key %s: the file is damaged", i+1, e.KID, k.ID)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("key %s is listed twice", k.ID)
		}
		seen[k.ID] = true
		if e.Alg == alg {
			out = append(out, k)
		}
	}
	return out, nil
}

// add puts a new key of alg first.
func (r *keyringFile) add(alg string) (Key, error) {
	k, encoded, err := GenerateKey(alg)
	if err != nil {
		return Key{}, err
	}
	e := keyringEntry{KID: k.ID, Alg: alg, Key: encoded, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	r.Keys = append([]keyringEntry{e}, r.Keys...)
	return k, nil
}

func readKeyring(path string) (*keyringFile, error) {
	b, err := readOwnerOnly(path, "signing keyring")
	if err != nil {
		return nil, err
	}
	var ring keyringFile
	if err := json.Unmarshal(b, &ring); err != nil {
		return nil, fmt.Errorf("signing keyring %s is not valid JSON: %w", path, err)
	}
	return &ring, nil
}

// writeKeyring replaces the keyring at path atomically: a new 0600 file in
// the same folder, synced, then renamed over the old one. With create, the
// keyring must not exist yet (an error wrapping fs.ErrExist otherwise).
func writeKeyring(path string, ring *keyringFile, create bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating key folder: %w", err)
	}
	b, err := json.MarshalIndent(ring, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".signing-keys-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("writing signing keyring: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing signing keyring: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing signing keyring: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing signing keyring: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing signing keyring: %w", err)
	}
	if create {
		// A hard link fails if path exists: create-if-absent, atomically.
		err = os.Link(tmp, path)
	} else {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("writing signing keyring: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // make the rename durable; not every platform can
		d.Close()
	}
	return nil
}

func fileTime(path string) time.Time {
	if info, err := os.Stat(path); err == nil {
		return info.ModTime().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}
