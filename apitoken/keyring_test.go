package apitoken_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func keyringPaths(t *testing.T) (ring, legacy string) {
	dir := filepath.Join(t.TempDir(), "apitokens")
	return filepath.Join(dir, "signing_keys.json"), filepath.Join(dir, "signing.key")
}

func wantOwnerOnly(t *testing.T, path string) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, perm)
	}
}

func ids(keys []apitoken.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.ID
	}
	return out
}

func TestKeyring_IsCreatedOnceOwnerOnlyAndReadBack(t *testing.T) {
	for _, alg := range []string{apitoken.AlgHS512, apitoken.AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			path, legacy := keyringPaths(t)
			first, err := apitoken.LoadOrCreateKeyring(path, legacy, alg)
			if err != nil {
				t.Fatal(err)
			}
			if len(first) != 1 || first[0].Algorithm() != alg || !first[0].CanSign() {
				t.Fatalf("new keyring gave %+v, want one %s signing key", ids(first), alg)
			}
			wantOwnerOnly(t, path)
			if dir, _ := os.Stat(filepath.Dir(path)); dir.Mode().Perm()&0o077 != 0 {
				t.Errorf("key folder mode = %v", dir.Mode().Perm())
			}
			content, _ := os.ReadFile(path)
			again, err := apitoken.LoadOrCreateKeyring(path, legacy, alg)
			if err != nil || len(again) != 1 || again[0].ID != first[0].ID {
				t.Fatalf("second load gave %v, %v; want %s", ids(again), err, first[0].ID)
			}
			if after, _ := os.ReadFile(path); string(after) != string(content) {
				t.Error("loading rewrote the keyring")
			}
			if _, err := os.Stat(legacy); !errors.Is(err, fs.ErrNotExist) {
				t.Error("a single-key file was created")
			}
		})
	}
}

func TestKeyring_LoadersStartingAtOnceAgreeOnOneKey(t *testing.T) {
	path, legacy := keyringPaths(t)
	const n = 8
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys, err := apitoken.LoadOrCreateKeyring(path, legacy, apitoken.AlgHS512)
			if err == nil {
				got[i] = keys[0].ID
			}
		}()
	}
	wg.Wait()
	for i := range got {
		if got[i] == "" || got[i] != got[0] {
			t.Fatalf("loaders got keys %v, want one and the same", got)
		}
	}
}

func TestKeyring_MigratesTheSingleKeyFileAndRemovesIt(t *testing.T) {
	path, legacy := keyringPaths(t)
	old, err := apitoken.LoadOrCreateKeyFile(legacy) // what an earlier version left
	if err != nil {
		t.Fatal(err)
	}
	keys, err := apitoken.LoadOrCreateKeyring(path, legacy, apitoken.AlgHS512)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != old.ID || string(keys[0].Secret) != string(old.Secret) {
		t.Fatalf("migrated keyring holds %v, want the old key %s", ids(keys), old.ID)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the single-key file is still there (%v): a retired key would linger in it", err)
	}
	wantOwnerOnly(t, path)
	// JWTs of the old key keep verifying.
	s := newSigner(t, issuer, func() time.Time { return t0 }, keys...)
	jwt, _ := newSigner(t, issuer, nil, old).Issue(testToken(apitoken.Expiry30d), "jti", t0)
	if _, err := s.Verify(jwt); err != nil {
		t.Fatalf("a JWT of the migrated key: %v", err)
	}
}

func TestKeyring_MigratingToEdDSAKeepsTheOldKeyAndAddsAnEd25519One(t *testing.T) {
	path, legacy := keyringPaths(t)
	old, err := apitoken.LoadOrCreateKeyFile(legacy)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := apitoken.LoadOrCreateKeyring(path, legacy, apitoken.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Algorithm() != apitoken.AlgEdDSA {
		t.Fatalf("keys of EdDSA: %v", ids(keys))
	}
	list, _ := apitoken.ListKeyring(path)
	if len(list) != 2 || list[1].ID != old.ID || list[1].Alg != apitoken.AlgHS512 {
		t.Fatalf("keyring lists %+v, want the new EdDSA key then the old HS512 one", list)
	}
	// Switching back to HS512 finds the old key.
	back, err := apitoken.LoadOrCreateKeyring(path, legacy, apitoken.AlgHS512)
	if err != nil || len(back) != 1 || back[0].ID != old.ID {
		t.Fatalf("back to HS512: %v, %v", ids(back), err)
	}
}

func TestKeyring_RotateSignsWithTheNewKeyAndRetireRemovesTheOld(t *testing.T) {
	for _, alg := range []string{apitoken.AlgHS512, apitoken.AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			path, legacy := keyringPaths(t)
			first, err := apitoken.LoadOrCreateKeyring(path, legacy, alg)
			if err != nil {
				t.Fatal(err)
			}
			s := newSigner(t, issuer, func() time.Time { return t0 }, first...)
			oldJWT, _ := s.Issue(testToken(apitoken.Expiry30d), "jti-old", t0)

			k, keys, err := apitoken.RotateKeyring(path, alg)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != 2 || keys[0].ID != k.ID || keys[1].ID != first[0].ID {
				t.Fatalf("after rotate: %v, want [%s %s]", ids(keys), k.ID, first[0].ID)
			}
			wantOwnerOnly(t, path)
			if err := s.SetKeys(keys); err != nil {
				t.Fatal(err)
			}
			newJWT, _ := s.Issue(testToken(apitoken.Expiry30d), "jti-new", t0)
			if h, _ := segments(t, newJWT); h["kid"] != k.ID {
				t.Errorf("signed with kid %v, want the new key %s", h["kid"], k.ID)
			}
			for name, jwt := range map[string]string{"old": oldJWT, "new": newJWT} {
				if _, err := s.Verify(jwt); err != nil {
					t.Errorf("during rotation the %s key's JWT: %v", name, err)
				}
			}
			// A reload reads the same.
			if again, err := apitoken.LoadOrCreateKeyring(path, legacy, alg); err != nil || strings.Join(ids(again), " ") != strings.Join(ids(keys), " ") {
				t.Fatalf("reload gave %v, %v", ids(again), err)
			}

			if _, err := apitoken.RetireKeyringKey(path, k.ID, alg); !errors.Is(err, apitoken.ErrConflict) {
				t.Errorf("retiring the signing key: %v, want ErrConflict", err)
			}
			if _, err := apitoken.RetireKeyringKey(path, "0123456789abcdef", alg); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("retiring an unknown key: %v, want ErrNotFound", err)
			}
			left, err := apitoken.RetireKeyringKey(path, first[0].ID, alg)
			if err != nil || len(left) != 1 || left[0].ID != k.ID {
				t.Fatalf("after retire: %v, %v", ids(left), err)
			}
			raw, _ := os.ReadFile(path)
			if strings.Contains(string(raw), first[0].ID) {
				t.Error("the retired key is still in the file")
			}
			if err := s.SetKeys(left); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Verify(oldJWT); !errors.Is(err, apitoken.ErrMalformedJWT) {
				t.Errorf("the retired key's JWT: %v, want refused", err)
			}
			if _, err := s.Verify(newJWT); err != nil {
				t.Errorf("the new key's JWT after retiring the old: %v", err)
			}
		})
	}
}

func TestKeyring_RefusesFilesOthersCanReadOrThatAreDamaged(t *testing.T) {
	path, legacy := keyringPaths(t)
	keys, err := apitoken.LoadOrCreateKeyring(path, legacy, apitoken.AlgHS512)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)

	os.Chmod(path, 0o640)
	if _, err := apitoken.LoadOrCreateKeyring(path, legacy, apitoken.AlgHS512); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable keyring: %v", err)
	}
	if _, _, err := apitoken.RotateKeyring(path, apitoken.AlgHS512); err == nil {
		t.Error("rotate wrote through a group-readable keyring")
	}
	os.Chmod(path, 0o600)

	var ring map[string][]map[string]any
	json.Unmarshal(good, &ring)
	ring["keys"][0]["kid"] = "ffffffffffffffff"
	damaged, _ := json.Marshal(ring)
	for name, content := range map[string]string{
		"a kid that is not the key's": string(damaged),
		"not JSON":                    "signing keys",
		"a short key":                 `{"keys":[{"kid":"x","alg":"HS512","key":"c2hvcnQ="}]}`,
		"an unknown algorithm":        `{"keys":[{"kid":"x","alg":"none","key":""}]}`,
	} {
		os.WriteFile(path, []byte(content), 0o600)
		if _, err := apitoken.LoadOrCreateKeyring(path, legacy, apitoken.AlgHS512); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("%s: the refused keyring was rewritten", name)
		}
	}
	os.WriteFile(path, good, 0o600)
	if again, err := apitoken.LoadOrCreateKeyring(path, legacy, apitoken.AlgHS512); err != nil || again[0].ID != keys[0].ID {
		t.Fatalf("control: %v, %v", again, err)
	}
}

// A cached verified JWT must not outlive its key: after SetKeys retires the
// key, the next authentication verifies the JWT again and refuses it.
func TestAuthenticate_ACachedJWTOfARetiredKeyIsRefusedAtOnce(t *testing.T) {
	e := newEnv(t, apitoken.AuthConfig{CacheTTL: time.Hour})
	_, _, oldJWT := e.live("alice", apitoken.AllScopes, apitoken.Expiry30d)
	e.accepted(oldJWT) // verified and cached

	newKey := testKey(t, 2)
	if err := e.signer.SetKeys([]apitoken.Key{newKey, e.key}); err != nil {
		t.Fatal(err)
	}
	e.accepted(oldJWT) // the old key still verifies during rotation
	_, _, newJWT := e.live("bob", apitoken.AllScopes, apitoken.Expiry30d)
	if h, _ := segments(t, newJWT); h["kid"] != newKey.ID {
		t.Fatalf("new JWTs are signed by %v, want %s", h["kid"], newKey.ID)
	}
	cached := e.auth.Stats().JWTCacheLen

	if err := e.signer.SetKeys([]apitoken.Key{newKey}); err != nil {
		t.Fatal(err)
	}
	f := e.refused(oldJWT, apitoken.ReasonMalformed)
	if !errors.Is(f.Err, apitoken.ErrMalformedJWT) {
		t.Errorf("failure detail %v", f.Err)
	}
	if got := e.auth.Stats().JWTCacheLen; got != cached-1 {
		t.Errorf("the JWT cache holds %d entries after refusing the retired key's JWT, had %d: it is still cached", got, cached)
	}
	e.accepted(newJWT)
}

func TestSetKeys_RefusesBadKeysAndKeepsTheOnesInUse(t *testing.T) {
	k := testKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	jwt, _ := s.Issue(testToken(apitoken.Expiry30d), "jti", t0)
	for name, keys := range map[string][]apitoken.Key{
		"none":                 nil,
		"an EdDSA key":         {edKey(t, 1)},
		"a short key":          {{ID: "short", Secret: make([]byte, 10)}},
		"the same key twice":   {k, k},
		"HS512 then EdDSA key": {k, edKey(t, 2)},
	} {
		if err := s.SetKeys(keys); !errors.Is(err, apitoken.ErrInvalid) {
			t.Errorf("%s: SetKeys = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := s.Verify(jwt); err != nil {
		t.Fatalf("after refused SetKeys calls: %v", err)
	}
}

// Verify, Issue and Trusts run while the keys change (go test -race).
func TestSetKeys_IsSafeWhileVerifying(t *testing.T) {
	a, b := testKey(t, 1), testKey(t, 2)
	s := newSigner(t, issuer, func() time.Time { return t0 }, a, b)
	jwt, _ := s.Issue(testToken(apitoken.Expiry30d), "jti", t0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := s.Verify(jwt) // key a is in every set used below
				if err != nil {
					t.Error(err)
					return
				}
				s.Trusts(v)
				if _, err := s.Issue(testToken(apitoken.Expiry1d), "jti2", t0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 200 {
		keys := []apitoken.Key{a, b}
		if i%2 == 1 {
			keys = []apitoken.Key{b, a}
		}
		if err := s.SetKeys(keys); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
