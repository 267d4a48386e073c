package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/keyring"
)

// loadKeys reads the configured keys, signing keys first, or, when the
// config names none, the keyring in Caddy's data directory.
func (a *App) loadKeys() ([]apitoken.Key, error) {
	if len(a.SigningKeys) == 0 && len(a.VerifyKeys) == 0 {
		dir := filepath.Join(caddy.AppDataDir(), "apitokens")
		a.keyFile = filepath.Join(dir, keyringName)
		keys, err := keyring.LoadOrCreate(a.keyFile, a.SigningAlg)
		if err != nil {
			return nil, fmt.Errorf("api_tokens: signing keys: %w", err)
		}
		return keys, nil
	}
	repl := caddy.NewReplacer()
	keys := make([]apitoken.Key, 0, len(a.SigningKeys)+len(a.VerifyKeys))
	seen := map[string]bool{}
	add := func(option string, i int, enc string, parse func(alg, enc string) (apitoken.Key, error)) error {
		enc = repl.ReplaceKnown(enc, "")
		if strings.TrimSpace(enc) == "" {
			return fmt.Errorf("api_tokens: %s #%d is empty once its placeholders are replaced (is the environment variable set?)", option, i+1)
		}
		k, err := parse(a.SigningAlg, enc)
		if err != nil {
			return fmt.Errorf("api_tokens: %s #%d: %s", option, i+1, apitoken.Message(err))
		}
		if seen[k.ID] {
			return fmt.Errorf("api_tokens: %s #%d repeats key %s", option, i+1, k.ID)
		}
		seen[k.ID] = true
		keys = append(keys, k)
		return nil
	}
	for i, enc := range a.SigningKeys {
		if err := add("signing_key", i, enc, apitoken.ParseSigningKey); err != nil {
			return nil, err
		}
	}
	for i, enc := range a.VerifyKeys {
		if err := add("verify_key", i, enc, apitoken.ParseVerifyKey); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// keyringName is the keyring's file in the apitokens folder of Caddy's data
// directory.
const keyringName = "signing_keys.json"

// keyChange serialises keyring changes with the signer updates that follow
// them, so two rotations at once cannot leave the signer with an older key
// set than the file.
var keyChange sync.Mutex

// ErrKeysConfigured is returned by RotateSigningKey and RetireSigningKey
// when the config names the keys: they rotate by editing the config.
var ErrKeysConfigured = errors.New("api_tokens: the signing keys are named in the config (signing_key, verify_key): " +
	"rotate by putting a new signing_key first and reloading, and retire a key by removing it and reloading")

// RotateSigningKey generates a new signing key into the keyring in Caddy's
// data directory and signs with it from now on, on this instance at once;
// the keys it replaces keep verifying until retired. It returns the new
// key's id. Other processes using the same data directory see the change
// when they next load their config. With keys named in the config it
// returns ErrKeysConfigured.
func (a *App) RotateSigningKey(ctx context.Context) (kid string, err error) {
	if a.keyFile == "" {
		return "", ErrKeysConfigured
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	keyChange.Lock() // the file and the signer change together
	defer keyChange.Unlock()
	k, keys, err := keyring.Rotate(a.keyFile, a.SigningAlg)
	if err != nil {
		return "", fmt.Errorf("api_tokens: rotating the signing key: %w", err)
	}
	if err := a.signer.SetKeys(keys); err != nil {
		return "", fmt.Errorf("api_tokens: rotating the signing key: %w", err)
	}
	a.logger.Info("signing key rotated", zap.String("key_id", k.ID), zap.Strings("key_ids", a.signer.KeyIDs()))
	return k.ID, nil
}

// RetireSigningKey removes the key kid from the keyring in Caddy's data
// directory for good: on this instance, JWTs signed with it stop working at
// once, cached or not. The key that signs cannot be retired (rotate first;
// an error wrapping apitoken.ErrConflict), and an unknown kid is an error
// wrapping apitoken.ErrNotFound. With keys named in the config it returns
// ErrKeysConfigured.
func (a *App) RetireSigningKey(ctx context.Context, kid string) error {
	if a.keyFile == "" {
		return ErrKeysConfigured
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	keyChange.Lock()
	defer keyChange.Unlock()
	keys, err := keyring.Retire(a.keyFile, kid, a.SigningAlg)
	if err != nil {
		return fmt.Errorf("api_tokens: retiring signing key %s: %w", kid, err)
	}
	if err := a.signer.SetKeys(keys); err != nil {
		return fmt.Errorf("api_tokens: retiring signing key %s: %w", kid, err)
	}
	a.logger.Info("signing key retired", zap.String("key_id", kid), zap.Strings("key_ids", a.signer.KeyIDs()))
	return nil
}

// SigningKeyIDs lists the ids of the keys this instance verifies with, the
// signing one first.
func (a *App) SigningKeyIDs() []string { return a.signer.KeyIDs() }
