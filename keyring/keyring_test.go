package keyring_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/keyring"
)

func keyringPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "apitokens", "signing_keys.json")
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newSigner(t *testing.T, keys ...apitoken.Key) *apitoken.Signer {
	t.Helper()
	s, err := apitoken.NewSigner("https://reports.example.com", keys, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func issue(t *testing.T, s *apitoken.Signer, jti string) string {
	t.Helper()
	jwt, err := s.Issue(&apitoken.Token{ID: "tok_x", Owner: "alice", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry30d}, jti, t0)
	if err != nil {
		t.Fatal(err)
	}
	return jwt
}

// kid is the kid of a JWT's header.
func kid(t *testing.T, jwt string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	var h struct{ Kid string }
	if err == nil {
		err = json.Unmarshal(b, &h)
	}
	if err != nil {
		t.Fatal(err)
	}
	return h.Kid
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
			path := keyringPath(t)
			first, err := keyring.LoadOrCreate(path, alg)
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
			again, err := keyring.LoadOrCreate(path, alg)
			if err != nil || len(again) != 1 || again[0].ID != first[0].ID {
				t.Fatalf("second load gave %v, %v; want %s", ids(again), err, first[0].ID)
			}
			if after, _ := os.ReadFile(path); string(after) != string(content) {
				t.Error("loading rewrote the keyring")
			}
		})
	}
}

func TestKeyring_LoadersStartingAtOnceAgreeOnOneKey(t *testing.T) {
	path := keyringPath(t)
	const n = 8
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys, err := keyring.LoadOrCreate(path, apitoken.AlgHS512)
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

func TestKeyring_KeepsTheKeysOfAnotherAlgorithmForASwitchBack(t *testing.T) {
	path := keyringPath(t)
	old, err := keyring.LoadOrCreate(path, apitoken.AlgHS512)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.LoadOrCreate(path, apitoken.AlgEdDSA)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Algorithm() != apitoken.AlgEdDSA {
		t.Fatalf("keys of EdDSA: %v", ids(keys))
	}
	list, _ := keyring.List(path)
	if len(list) != 2 || list[1].ID != old[0].ID || list[1].Alg != apitoken.AlgHS512 {
		t.Fatalf("keyring lists %+v, want the new EdDSA key then the old HS512 one", list)
	}
	// Switching back to HS512 finds the old key.
	back, err := keyring.LoadOrCreate(path, apitoken.AlgHS512)
	if err != nil || len(back) != 1 || back[0].ID != old[0].ID {
		t.Fatalf("back to HS512: %v, %v", ids(back), err)
	}
}

func TestKeyring_RotateSignsWithTheNewKeyAndRetireRemovesTheOld(t *testing.T) {
	for _, alg := range []string{apitoken.AlgHS512, apitoken.AlgEdDSA} {
		t.Run(alg, func(t *testing.T) {
			path := keyringPath(t)
			first, err := keyring.LoadOrCreate(path, alg)
			if err != nil {
				t.Fatal(err)
			}
			s := newSigner(t, first...)
			oldJWT := issue(t, s, "jti-old")

			k, keys, err := keyring.Rotate(path, alg)
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
			newJWT := issue(t, s, "jti-new")
			if got := kid(t, newJWT); got != k.ID {
				t.Errorf("signed with kid %v, want the new key %s", got, k.ID)
			}
			for name, jwt := range map[string]string{"old": oldJWT, "new": newJWT} {
				if _, err := s.Verify(jwt); err != nil {
					t.Errorf("during rotation the %s key's JWT: %v", name, err)
				}
			}
			// A reload reads the same.
			if again, err := keyring.LoadOrCreate(path, alg); err != nil || strings.Join(ids(again), " ") != strings.Join(ids(keys), " ") {
				t.Fatalf("reload gave %v, %v", ids(again), err)
			}

			if _, err := keyring.Retire(path, k.ID, alg); !errors.Is(err, apitoken.ErrConflict) {
				t.Errorf("retiring the signing key: %v, want ErrConflict", err)
			}
			if _, err := keyring.Retire(path, "0123456789abcdef", alg); !errors.Is(err, apitoken.ErrNotFound) {
				t.Errorf("retiring an unknown key: %v, want ErrNotFound", err)
			}
			left, err := keyring.Retire(path, first[0].ID, alg)
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
	path := keyringPath(t)
	keys, err := keyring.LoadOrCreate(path, apitoken.AlgHS512)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(path)

	os.Chmod(path, 0o640)
	if _, err := keyring.LoadOrCreate(path, apitoken.AlgHS512); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable keyring: %v", err)
	}
	if _, _, err := keyring.Rotate(path, apitoken.AlgHS512); err == nil {
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
		if _, err := keyring.LoadOrCreate(path, apitoken.AlgHS512); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Errorf("%s: the refused keyring was rewritten", name)
		}
	}
	os.WriteFile(path, good, 0o600)
	if again, err := keyring.LoadOrCreate(path, apitoken.AlgHS512); err != nil || again[0].ID != keys[0].ID {
		t.Fatalf("control: %v, %v", again, err)
	}
}
