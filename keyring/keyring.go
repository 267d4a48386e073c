// Package keyring keeps the signing keys that a deployment generates for
// itself, when its config names none: one JSON file in Caddy's data
// directory, readable by its owner only (0600, its folder 0700), replaced
// atomically (a synced temporary file renamed over it) on every change.
// The keys themselves, their ids and their rules are apitoken's.
package keyring

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

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

// LoadOrCreate reads the keyring at path and returns the keys of alg, the
// signing one first. Without a keyring it creates one (0600, its folder
// 0700) holding a new key of alg; a keyring without a key of alg gets one.
// A file readable by group or others is refused.
func LoadOrCreate(path, alg string) ([]apitoken.Key, error) {
	if err := apitoken.CheckAlg(alg); err != nil {
		return nil, err
	}
	keyringMu.Lock()
	defer keyringMu.Unlock()
	for attempt := 0; ; attempt++ {
		keys, err := loadOrCreate(path, alg)
		if errors.Is(err, fs.ErrExist) && attempt == 0 {
			continue // another process created it first: read theirs
		}
		return keys, err
	}
}

func loadOrCreate(path, alg string) ([]apitoken.Key, error) {
	ring, err := readKeyring(path)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ring = &keyringFile{}
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
	return ring.keys(alg)
}

// Rotate adds a new key of alg to the keyring at path, which from now
// on signs, and returns it with every key of alg (the new one first). The
// keys it replaces keep verifying until they are retired.
func Rotate(path, alg string) (apitoken.Key, []apitoken.Key, error) {
	if err := apitoken.CheckAlg(alg); err != nil {
		return apitoken.Key{}, nil, err
	}
	keyringMu.Lock()
	defer keyringMu.Unlock()
	ring, err := readKeyring(path)
	if err != nil {
		return apitoken.Key{}, nil, err
	}
	k, err := ring.add(alg)
	if err != nil {
		return apitoken.Key{}, nil, err
	}
	if err := writeKeyring(path, ring, false); err != nil {
		return apitoken.Key{}, nil, err
	}
	keys, err := ring.keys(alg)
	return k, keys, err
}

// Retire removes the key kid from the keyring at path, for good,
// and returns the keys of alg that remain. JWTs signed with it stop
// verifying. The key that signs (the newest of alg) cannot be retired:
// rotate first. An unknown kid is apitoken.ErrNotFound.
func Retire(path, kid, alg string) ([]apitoken.Key, error) {
	if err := apitoken.CheckAlg(alg); err != nil {
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
		return nil, apitoken.Errorf(apitoken.ErrConflict, "key %s signs new tokens; rotate to a new key first, then retire this one", kid)
	}
	kept := ring.Keys[:0:0]
	for _, e := range ring.Keys {
		if e.KID != kid {
			kept = append(kept, e)
		}
	}
	if len(kept) == len(ring.Keys) {
		return nil, apitoken.Errorf(apitoken.ErrNotFound, "no signing key %q in the keyring", kid)
	}
	ring.Keys = kept
	if err := writeKeyring(path, ring, false); err != nil {
		return nil, err
	}
	return ring.keys(alg)
}

// Info is what may be shown of a key of the keyring: never the key.
type Info struct {
	ID        string
	Alg       string
	CreatedAt time.Time
}

// List lists the keys of the keyring at path, newest first.
func List(path string) ([]Info, error) {
	keyringMu.Lock()
	defer keyringMu.Unlock()
	ring, err := readKeyring(path)
	if err != nil {
		return nil, err
	}
	out := make([]Info, len(ring.Keys))
	for i, e := range ring.Keys {
		out[i] = Info{ID: e.KID, Alg: e.Alg, CreatedAt: e.CreatedAt}
	}
	return out, nil
}

// keys parses the entries of alg, newest first, checking every entry.
func (r *keyringFile) keys(alg string) ([]apitoken.Key, error) {
	var out []apitoken.Key
	seen := make(map[string]bool, len(r.Keys))
	for i, e := range r.Keys {
		if err := apitoken.CheckAlg(e.Alg); err != nil {
			return nil, fmt.Errorf("key #%d: %s", i+1, apitoken.Message(err))
		}
		k, err := apitoken.ParseSigningKey(e.Alg, e.Key)
		if err != nil {
			return nil, fmt.Errorf("key #%d: %s", i+1, apitoken.Message(err))
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
func (r *keyringFile) add(alg string) (apitoken.Key, error) {
	k, encoded, err := apitoken.GenerateKey(alg)
	if err != nil {
		return apitoken.Key{}, err
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
