package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MinKeyLen is the shortest HMAC signing key accepted, in bytes.
const MinKeyLen = 64

// Key is an HMAC signing key and its id.
type Key struct {
	// ID is derived from the key (the first 16 hex digits of its SHA-256),
	// so every instance that holds the same key names it the same way.
	ID     string
	Secret []byte
}

// NewKey checks secret and derives its id.
func NewKey(secret []byte) (Key, error) {
	if len(secret) < MinKeyLen {
		return Key{}, Errorf(ErrInvalid, "signing key is %d bytes; it must be at least %d random bytes (base64-encoded in the config)", len(secret), MinKeyLen)
	}
	sum := sha256.Sum256(secret)
	return Key{ID: hex.EncodeToString(sum[:8]), Secret: secret}, nil
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) key.
func ParseKey(encoded string) (Key, error) {
	encoded = strings.TrimSpace(encoded)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if secret, err := enc.DecodeString(encoded); err == nil {
			return NewKey(secret)
		}
	}
	return Key{}, Errorf(ErrInvalid, "signing key is not valid base64; generate one with: openssl rand -base64 64")
}

// GenerateKeySecret returns a new random key of MinKeyLen bytes, base64-encoded.
func GenerateKeySecret() string {
	b := make([]byte, MinKeyLen)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.StdEncoding.EncodeToString(b)
}

// LoadOrCreateKeyFile reads the base64 key kept at path, or, when there is no
// file yet, generates one and writes it with mode 0600 (its folder 0700). The
// file is created exclusively, so two processes starting at once agree on one
// key. A file readable by group or others is refused.
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

func readKeyFile(path string) (Key, error) {
	info, err := os.Stat(path)
	if err != nil {
		return Key{}, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("signing key file %s has mode %v; it must be readable by its owner only (chmod 600)", path, info.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("reading signing key file: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("signing key file %s: %w", path, err)
	}
	return k, nil
}
