package apitoken_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// t0 is the fixed start of every test clock: all times in the tests are
// derived from it, never from the wall clock.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is an injected clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testKey is a deterministic 64-byte key: seed tells keys apart.
func testKey(t testing.TB, seed byte) apitoken.Key {
	t.Helper()
	k, err := apitoken.NewKey(bytes.Repeat([]byte{seed, seed ^ 0x5a, 0xc3, seed + 1}, 16))
	if err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	return k
}

func newSigner(t testing.TB, issuer string, now func() time.Time, keys ...apitoken.Key) *apitoken.Signer {
	t.Helper()
	s, err := apitoken.NewSigner(issuer, keys, now)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jsonSeg renders a header or claims segment: a string or json.RawMessage is
// taken as raw JSON, anything else is marshalled.
func jsonSeg(t testing.TB, v any) string {
	t.Helper()
	switch v := v.(type) {
	case string:
		return b64([]byte(v))
	case json.RawMessage:
		return b64(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b64(b)
}

// forge builds a JWT by hand: header and claims as given, signed with key
// under alg (HS256, HS384, HS512; "none" for no signature at all).
func forge(t testing.TB, header, claims any, alg string, key []byte) string {
	t.Helper()
	signing := jsonSeg(t, header) + "." + jsonSeg(t, claims)
	return signing + "." + signature(t, alg, key, signing)
}

func signature(t testing.TB, alg string, key []byte, signing string) string {
	t.Helper()
	var h func() hash.Hash
	switch alg {
	case "none":
		return ""
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	case "HS512":
		h = sha512.New
	default:
		t.Fatalf("forge: unknown alg %q", alg)
	}
	m := hmac.New(h, key)
	m.Write([]byte(signing))
	return b64(m.Sum(nil))
}

// segments decodes the header and claims of a JWT into maps.
func segments(t testing.TB, jwt string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d segments, want 3", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("segment %d is not base64url: %v", i, err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(dst); err != nil {
			t.Fatalf("segment %d is not a JSON object: %v", i, err)
		}
	}
	return header, claims
}

// wantKind fails unless err wraps kind.
func wantKind(t testing.TB, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want one wrapping %v", err, kind)
	}
}

func ptr[T any](v T) *T { return &v }
