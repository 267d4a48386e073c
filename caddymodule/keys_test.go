package caddymodule

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/keyring"
)

// defaultKeys are api_tokens options without any key: the keyring in
// Caddy's data directory is used.
const defaultKeys = "audit_window 1m"

// keyringFile is the keyring in the test's data directory; the test starts
// without it and leaves none behind.
func keyringFile(t *testing.T) string {
	t.Helper()
	ring := filepath.Join(caddy.AppDataDir(), "apitokens", keyringName)
	clean := func() { os.Remove(ring) }
	clean()
	t.Cleanup(clean)
	return ring
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	h, _ := parts(t, jwt)
	kid, _ := h["kid"].(string)
	return kid
}

func (e *hostileEnv) generate(tok apitoken.Token) string {
	e.T.Helper()
	jwt, _, err := e.svc.Generate(context.Background(), e.caller(tok.Owner), tok.ID)
	if err != nil {
		e.T.Fatal(err)
	}
	e.secret(jwt)
	return jwt
}

func TestKeys_ConfiguredKeysRotateByReload(t *testing.T) {
	keyA, keyB := apitoken.GenerateKeySecret(), apitoken.GenerateKeySecret()
	a, _ := apitoken.ParseKey(keyA)
	b, _ := apitoken.ParseKey(keyB)
	os.Setenv("APITOKENS_TEST_KEY_B", keyB)
	t.Cleanup(func() { os.Unsetenv("APITOKENS_TEST_KEY_B") })

	e := newHostileEnv(t, "", "signing_key "+keyA)
	e.secret(keyA, keyB)
	tok, oldJWT := e.live("alice", "before", apitoken.Expiry30d, apitoken.DefaultScopes)
	if kidOf(t, oldJWT) != a.ID {
		t.Fatalf("signed by %s, want key A %s", kidOf(t, oldJWT), a.ID)
	}
	if got := status(t, e, bearer(oldJWT)); got != 200 {
		t.Fatalf("key A's JWT got %d", got)
	}

	// Rotation: B signs, A still verifies. B comes from the environment.
	e.reload("signing_key {env.APITOKENS_TEST_KEY_B}\n\t\tsigning_key " + keyA)
	if ids := e.app.SigningKeyIDs(); len(ids) != 2 || ids[0] != b.ID || ids[1] != a.ID {
		t.Fatalf("key ids %v, want [B A]", ids)
	}
	if got := status(t, e, bearer(oldJWT)); got != 200 {
		t.Fatalf("during rotation key A's JWT got %d", got)
	}
	tok2, newJWT := e.live("alice", "after", apitoken.Expiry30d, apitoken.DefaultScopes)
	if kidOf(t, newJWT) != b.ID {
		t.Fatalf("during rotation new JWTs are signed by %s, want key B %s", kidOf(t, newJWT), b.ID)
	}

	// A is removed: its JWTs stop working; B's go on.
	e.reload("signing_key " + keyB)
	e.run(t, []hostileCase{{name: "key A's JWT after A is removed", header: bearer(oldJWT), status: 401, code: "invalid_token"}})
	if got := status(t, e, bearer(newJWT)); got != 200 {
		t.Fatalf("key B's JWT got %d", got)
	}
	// Regenerating the old token gives it a JWT of B.
	if j := e.generate(tok); kidOf(t, j) != b.ID || status(t, e, bearer(j)) != 200 {
		t.Fatal("a regenerated token does not work under key B")
	}
	_ = tok2

	// The keys are the config's: the keyring methods refuse.
	if _, err := e.app.RotateSigningKey(context.Background()); !errors.Is(err, ErrKeysConfigured) {
		t.Errorf("RotateSigningKey with configured keys: %v", err)
	}
	if err := e.app.RetireSigningKey(context.Background(), b.ID); !errors.Is(err, ErrKeysConfigured) {
		t.Errorf("RetireSigningKey with configured keys: %v", err)
	}
	e.noSecretsInLogs(t)
}

func TestKeys_TheDefaultKeyringRotatesAndRetiresAtOnce(t *testing.T) {
	ring := keyringFile(t)
	e := newHostileEnv(t, "", defaultKeys)
	ctx := context.Background()
	info, err := os.Stat(ring)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("keyring %v, %v; want a 0600 file", info, err)
	}
	first := e.app.SigningKeyIDs()
	if len(first) != 1 {
		t.Fatalf("key ids %v", first)
	}
	tok, oldJWT := e.live("alice", "old", apitoken.Expiry30d, apitoken.DefaultScopes)
	if got := status(t, e, bearer(oldJWT)); got != 200 { // now verified and cached
		t.Fatalf("got %d", got)
	}

	kid, err := e.app.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := e.app.SigningKeyIDs(); kid == first[0] || len(ids) != 2 || ids[0] != kid || ids[1] != first[0] {
		t.Fatalf("after rotate: new %s, ids %v", kid, ids)
	}
	if got := status(t, e, bearer(oldJWT)); got != 200 {
		t.Fatalf("the old key's JWT got %d during rotation", got)
	}
	tok2, newJWT := e.live("alice", "new", apitoken.Expiry30d, apitoken.DefaultScopes)
	if kidOf(t, newJWT) != kid {
		t.Fatalf("signed by %s after rotate, want %s", kidOf(t, newJWT), kid)
	}
	if got := status(t, e, bearer(newJWT)); got != 200 {
		t.Fatalf("the new key's JWT got %d", got)
	}

	if err := e.app.RetireSigningKey(ctx, kid); !errors.Is(err, apitoken.ErrConflict) {
		t.Errorf("retiring the signing key: %v, want ErrConflict", err)
	}
	if err := e.app.RetireSigningKey(ctx, "0000000000000000"); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("retiring an unknown key: %v, want ErrNotFound", err)
	}
	cached := e.app.Authenticator().Stats().JWTCacheLen
	if err := e.app.RetireSigningKey(ctx, first[0]); err != nil {
		t.Fatal(err)
	}
	// At once, although the old JWT is cached and its token is fine.
	e.run(t, []hostileCase{{name: "the retired key's cached JWT", header: bearer(oldJWT), status: 401, code: "invalid_token"}})
	if got := e.app.Authenticator().Stats().JWTCacheLen; got != cached-1 {
		t.Errorf("JWT cache: %d entries, had %d: the retired key's JWT is still cached", got, cached)
	}
	if got := status(t, e, bearer(newJWT)); got != 200 {
		t.Fatalf("the new key's JWT after retiring the old key got %d", got)
	}
	raw, _ := os.ReadFile(ring)
	if strings.Contains(string(raw), first[0]) {
		t.Error("the keyring still names the retired key")
	}
	if info, _ := os.Stat(ring); info.Mode().Perm() != 0o600 {
		t.Errorf("keyring mode %v after changes", info.Mode().Perm())
	}

	// A reload reads the keyring as it was left.
	e.reload("")
	if ids := e.app.SigningKeyIDs(); len(ids) != 1 || ids[0] != kid {
		t.Fatalf("after reload: %v, want [%s]", ids, kid)
	}
	e.run(t, []hostileCase{{name: "the retired key's JWT after a reload", header: bearer(oldJWT), status: 401, code: "invalid_token"}})
	if got := status(t, e, bearer(newJWT)); got != 200 {
		t.Fatalf("after reload the new key's JWT got %d", got)
	}
	if j := e.generate(tok); status(t, e, bearer(j)) != 200 {
		t.Fatal("the token regenerated under the new key does not work")
	}
	_ = tok2
	e.noSecretsInLogs(t)
}

func TestKeys_EdDSAIssuesAndVerifyOnlyInstancesNeverHoldTheSecret(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	pubB64 := base64.StdEncoding.EncodeToString(pub)
	issuing := "signing_alg EdDSA\n\t\tsigning_key " + seed
	e := newHostileEnv(t, "", issuing)
	e.secret(seed, base64.RawURLEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(priv))
	tok, jwt := e.live("alice", "ed", apitoken.Expiry30d, apitoken.DefaultScopes)
	h, c := parts(t, jwt)
	edKey, _ := apitoken.NewEd25519PublicKey(pub)
	if h["alg"] != "EdDSA" || h["kid"] != edKey.ID || len(h) != 3 {
		t.Fatalf("header %v, want EdDSA with the public key's kid %s", h, edKey.ID)
	}
	if got := status(t, e, bearer(jwt)); got != 200 {
		t.Fatalf("the EdDSA JWT got %d", got)
	}

	_, attacker, _ := ed25519.GenerateKey(rand.Reader)
	doubled := append(append([]byte(nil), pub...), pub...)
	confusion := func(t *testing.T) {
		forged := func(header map[string]any, alg string, key any) []string {
			j := forgeJWT(header, c, alg, key)
			e.secret(j)
			return bearer(j)
		}
		e.run(t, []hostileCase{
			{name: "HS512 keyed with the public key bytes", header: forged(edit(h, "alg", "HS512"), "HS512", []byte(pub)), status: 401, code: "invalid_token"},
			{name: "HS512 keyed with the public key doubled to 64 bytes", header: forged(edit(h, "alg", "HS512"), "HS512", doubled), status: 401, code: "invalid_token"},
			{name: "HS512 keyed with the base64 public key as configured", header: forged(edit(h, "alg", "HS512"), "HS512", []byte(pubB64)), status: 401, code: "invalid_token"},
			{name: "HS256 keyed with the public key", header: forged(edit(h, "alg", "HS256"), "HS256", []byte(pub)), status: 401, code: "invalid_token"},
			{name: "HS512 with the other deployment's HMAC key", header: forged(edit(h, "alg", "HS512"), "HS512", realKey(t)), status: 401, code: "invalid_token"},
			{name: "EdDSA signed by the attacker under the real kid", header: forged(h, "EdDSA", attacker), status: 401, code: "invalid_token"},
			{name: "alg none", header: forged(edit(h, "alg", "none"), "none", nil), status: 401, code: "invalid_token"},
			{name: "Ed25519 as the alg name", header: forged(edit(h, "alg", "Ed25519"), "EdDSA", priv), status: 401, code: "invalid_token"},
			{name: "a jwk header with the attacker's key", header: forged(edit(h, "jwk", map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64url(attacker.Public().(ed25519.PublicKey))}), "EdDSA", attacker), status: 401, code: "invalid_token"},
		})
	}
	t.Run("algorithm confusion on the issuing instance", confusion)

	// An instance that only verifies: the public key, no secret.
	e.reload("signing_alg EdDSA\n\t\tverify_key " + pubB64)
	if got := status(t, e, bearer(jwt)); got != 200 {
		t.Fatalf("the verify-only instance refused a good JWT: %d", got)
	}
	t.Run("algorithm confusion on a verify-only instance", confusion)
	if _, _, err := e.svc.Generate(context.Background(), e.owner, tok.ID); !errors.Is(err, apitoken.ErrConflict) || !strings.Contains(apitoken.Message(err), "only verifies") {
		t.Fatalf("generating on a verify-only instance: %v, want a conflict saying it only verifies", err)
	}
	if got := status(t, e, bearer(jwt)); got != 200 {
		t.Fatalf("the refused generation changed the token: %d", got)
	}
	// An HS512 deployment with a key never accepts the EdDSA JWT.
	e.reload("signing_key " + testKey)
	e.run(t, []hostileCase{{name: "the EdDSA JWT on an HS512 instance", header: bearer(jwt), status: 401, code: "invalid_token"}})
	e.noSecretsInLogs(t)
}

func TestKeys_DefaultKeyringWithEdDSA(t *testing.T) {
	ring := keyringFile(t)
	e := newHostileEnv(t, "", "signing_alg EdDSA\n\t\t"+defaultKeys)
	_, jwt := e.live("alice", "ed", apitoken.Expiry30d, apitoken.DefaultScopes)
	if h, _ := parts(t, jwt); h["alg"] != "EdDSA" {
		t.Fatalf("alg %v", h["alg"])
	}
	kid, err := e.app.RotateSigningKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, jwt2 := e.live("alice", "ed2", apitoken.Expiry30d, apitoken.DefaultScopes)
	if kidOf(t, jwt2) != kid {
		t.Fatal("the rotated Ed25519 key does not sign")
	}
	for _, j := range []string{jwt, jwt2} {
		if got := status(t, e, bearer(j)); got != 200 {
			t.Fatalf("got %d", got)
		}
	}
	list, err := keyring.List(ring)
	if err != nil || len(list) != 2 || list[0].Alg != apitoken.AlgEdDSA {
		t.Fatalf("keyring %+v, %v", list, err)
	}
}

func TestApp_KeyOptionsAreChecked(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	for name, a := range map[string]App{
		"an unknown algorithm":      {MaxLifetime: "1y", SigningAlg: "HS256"},
		"alg none":                  {MaxLifetime: "1y", SigningAlg: "none"},
		"a verify key with HS512":   {MaxLifetime: "1y", SigningAlg: "HS512", VerifyKeys: []string{base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))}},
		"a negative fail_limit":     {MaxLifetime: "1y", FailLimit: -1},
		"a verify key, default alg": {MaxLifetime: "1y", VerifyKeys: []string{"x"}},
	} {
		if err := a.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for name, a := range map[string]App{
		"an HMAC key as an Ed25519 key":  {SigningAlg: "EdDSA", SigningKeys: []string{testKey}},
		"an Ed25519 seed as an HMAC key": {SigningAlg: "HS512", SigningKeys: []string{base64.StdEncoding.EncodeToString(priv.Seed())}},
		"a private key as a verify key":  {SigningAlg: "EdDSA", VerifyKeys: []string{base64.StdEncoding.EncodeToString(priv)}},
		"a key twice":                    {SigningAlg: "EdDSA", SigningKeys: []string{base64.StdEncoding.EncodeToString(priv.Seed())}, VerifyKeys: []string{base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))}},
		"an unset environment variable":  {SigningAlg: "HS512", SigningKeys: []string{"{env.APITOKENS_TEST_UNSET_KEY}"}},
	} {
		if _, err := a.loadKeys(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(priv.Seed())) || strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
}

// Rotations and retirements at once (the admin endpoint serves requests
// concurrently) leave the signer with exactly the keyring's keys.
func TestKeys_ConcurrentRotationsLeaveTheSignerAsTheKeyring(t *testing.T) {
	ring := keyringFile(t)
	e := newHostileEnv(t, "", defaultKeys)
	ctx := context.Background()
	first := e.app.SigningKeyIDs()[0]
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.app.RotateSigningKey(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := e.app.RetireSigningKey(ctx, first); err != nil {
		t.Fatal(err)
	}
	list, err := keyring.List(ring)
	if err != nil {
		t.Fatal(err)
	}
	var fromFile []string
	for _, k := range list {
		fromFile = append(fromFile, k.ID)
	}
	if got := e.app.SigningKeyIDs(); strings.Join(got, " ") != strings.Join(fromFile, " ") || len(got) != 8 {
		t.Fatalf("signer keys %v, keyring %v: want the same 8", got, fromFile)
	}
	_, jwt := e.live("alice", "after the storm", apitoken.Expiry30d, apitoken.DefaultScopes)
	if kidOf(t, jwt) != fromFile[0] || status(t, e, bearer(jwt)) != 200 {
		t.Fatal("the newest key of the keyring does not sign")
	}
}
