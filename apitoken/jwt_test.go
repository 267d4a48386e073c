package apitoken_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

const issuer = "https://reports.example.com"

func TestNewKey_RefusesKeysShorterThan64Bytes(t *testing.T) {
	for _, n := range []int{0, 32, 63} {
		_, err := apitoken.NewKey(bytes.Repeat([]byte{7}, n))
		if err == nil {
			t.Errorf("NewKey(%d bytes) = nil error, want a refusal", n)
			continue
		}
		wantKind(t, err, apitoken.ErrInvalid)
		if msg := apitoken.Message(err); !strings.Contains(msg, "at least 64") {
			t.Errorf("NewKey(%d bytes) message %q does not say the minimum", n, msg)
		}
	}
	if _, err := apitoken.NewKey(bytes.Repeat([]byte{7}, 64)); err != nil {
		t.Errorf("NewKey(64 bytes): %v", err)
	}
}

func TestNewKey_KidIsTheFirst16HexDigitsOfTheKeysSHA256(t *testing.T) {
	secret := bytes.Repeat([]byte("0123456789abcdef"), 4)
	k, err := apitoken.NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(secret)
	if want := hex.EncodeToString(sum[:])[:16]; k.ID != want {
		t.Errorf("kid = %q, want %q", k.ID, want)
	}
	again, _ := apitoken.NewKey(append([]byte(nil), secret...))
	if again.ID != k.ID {
		t.Errorf("the same key got kids %q and %q", k.ID, again.ID)
	}
	if other := testKey(t, 9); other.ID == k.ID {
		t.Errorf("two different keys share kid %q", k.ID)
	}
}

func TestParseKey_AcceptsStandardAndURLBase64(t *testing.T) {
	// 0xfb 0xff 0xbf encodes as "+/+/" in the standard alphabet and "-_-_"
	// in the URL one, so each encoding below is only valid in its own.
	secret := bytes.Repeat([]byte{0xfb, 0xff, 0xbf}, 22)[:64]
	want, err := apitoken.NewKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []struct {
		name string
		s    string
	}{
		{"standard, padded", base64.StdEncoding.EncodeToString(secret)},
		{"standard, unpadded", base64.RawStdEncoding.EncodeToString(secret)},
		{"URL, padded", base64.URLEncoding.EncodeToString(secret)},
		{"URL, unpadded", base64.RawURLEncoding.EncodeToString(secret)},
		{"standard with a trailing newline", base64.StdEncoding.EncodeToString(secret) + "\n"},
	} {
		k, err := apitoken.ParseKey(enc.s)
		if err != nil {
			t.Errorf("%s: ParseKey(%q): %v", enc.name, enc.s, err)
			continue
		}
		if k.ID != want.ID || !bytes.Equal(k.Secret, secret) {
			t.Errorf("%s: ParseKey gave kid %s, want %s", enc.name, k.ID, want.ID)
		}
	}
}

func TestParseKey_RefusesNonBase64AndShortKeys(t *testing.T) {
	for _, tc := range []struct{ name, s, msg string }{
		{"not base64", "this is not base64!", "not valid base64"},
		{"empty", "", "at least 64"},
		{"32 bytes", base64.StdEncoding.EncodeToString(make([]byte, 32)), "at least 64"},
	} {
		_, err := apitoken.ParseKey(tc.s)
		if err == nil {
			t.Errorf("%s: ParseKey accepted %q", tc.name, tc.s)
			continue
		}
		wantKind(t, err, apitoken.ErrInvalid)
		if msg := apitoken.Message(err); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: message %q, want it to contain %q", tc.name, msg, tc.msg)
		}
	}
}

func TestGenerateKeySecret_GivesFreshUsableKeys(t *testing.T) {
	a, b := apitoken.GenerateKeySecret(), apitoken.GenerateKeySecret()
	if a == b {
		t.Fatal("two generated secrets are equal")
	}
	k, err := apitoken.ParseKey(a)
	if err != nil || len(k.Secret) < apitoken.MinKeyLen {
		t.Fatalf("ParseKey(generated) = %d bytes, %v", len(k.Secret), err)
	}
}

func TestNewSigner_RefusesAMissingIssuerOrKeyAndShortKeys(t *testing.T) {
	k := testKey(t, 1)
	for _, tc := range []struct {
		name   string
		issuer string
		keys   []apitoken.Key
	}{
		{"no issuer", "", []apitoken.Key{k}},
		{"no keys", issuer, nil},
		{"a short verify-only key", issuer, []apitoken.Key{k, {ID: "short", Secret: make([]byte, 63)}}},
	} {
		if _, err := apitoken.NewSigner(tc.issuer, tc.keys, nil); !errors.Is(err, apitoken.ErrInvalid) {
			t.Errorf("%s: NewSigner error = %v, want ErrInvalid", tc.name, err)
		}
	}
}

func testToken(expires apitoken.Expiry) *apitoken.Token {
	return &apitoken.Token{ID: "tok_abc", Name: "nightly", Owner: "alice", Scopes: apitoken.DefaultScopes, Expires: expires, CreatedAt: t0}
}

func TestIssue_JWTCarriesExactlyTheSpecifiedHeaderAndClaims(t *testing.T) {
	k := testKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	jwt, err := s.Issue(testToken(apitoken.Expiry30d), "jti-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	header, claims := segments(t, jwt)
	wantHeader := map[string]any{"alg": "HS512", "typ": "JWT", "kid": k.ID}
	if len(header) != len(wantHeader) {
		t.Errorf("header = %v, want exactly %v", header, wantHeader)
	}
	for name, v := range wantHeader {
		if header[name] != v {
			t.Errorf("header %s = %v, want %v", name, header[name], v)
		}
	}
	wantClaims := map[string]any{
		"iss": issuer, "sub": "alice", "tid": "tok_abc", "jti": "jti-1", "scope": "meta report",
		"iat": json.Number("1740830400"), "exp": json.Number("1743422400"), // t0 and t0 + 30 days
	}
	if len(claims) != len(wantClaims) {
		t.Errorf("claims = %v, want exactly %v", claims, wantClaims)
	}
	for name, v := range wantClaims {
		if claims[name] != v {
			t.Errorf("claim %s = %v, want %v", name, claims[name], v)
		}
	}
}

func TestIssue_NeverExpiringJWTHasNoExp(t *testing.T) {
	s := newSigner(t, issuer, func() time.Time { return t0 }, testKey(t, 1))
	jwt, err := s.Issue(testToken(apitoken.ExpiryNever), "jti-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, claims := segments(t, jwt); claims["exp"] != nil {
		t.Errorf("exp = %v, want no exp claim", claims["exp"])
	}
	v, err := s.Verify(jwt)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !v.Exp.IsZero() {
		t.Errorf("Verified.Exp = %v, want zero", v.Exp)
	}
	// Still good ten years on: nothing in it expires.
	later := newSigner(t, issuer, func() time.Time { return t0.AddDate(10, 0, 0) }, testKey(t, 1))
	if _, err := later.Verify(jwt); err != nil {
		t.Errorf("Verify ten years later: %v", err)
	}
}

func TestVerify_IssuedJWTRoundTrips(t *testing.T) {
	s := newSigner(t, issuer, func() time.Time { return t0.Add(time.Minute) }, testKey(t, 1))
	tok := testToken(apitoken.Expiry7d)
	tok.Scopes = mustScopes(t, "report")
	jwt, err := s.Issue(tok, "jti-42", t0)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Verify(jwt)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := apitoken.Verified{TokenID: "tok_abc", Subject: "alice", JTIHash: apitoken.HashJTI("jti-42"),
		Scopes: mustScopes(t, "report"), Exp: t0.Add(7 * 24 * time.Hour)}
	if v.TokenID != want.TokenID || v.Subject != want.Subject || v.JTIHash != want.JTIHash || v.Scopes != want.Scopes || !v.Exp.Equal(want.Exp) {
		t.Errorf("Verify = %+v, want %+v", *v, want)
	}
	if s.Issuer() != issuer {
		t.Errorf("Issuer() = %q", s.Issuer())
	}
}

// goodClaims are claims that Verify accepts at t0 (see the control test).
func goodClaims() map[string]any {
	return map[string]any{"iss": issuer, "sub": "alice", "tid": "tok_abc", "jti": "jti-1", "scope": "meta report",
		"iat": t0.Add(-time.Hour).Unix(), "exp": t0.Add(time.Hour).Unix()}
}

func goodHeader(kid string) map[string]any {
	return map[string]any{"alg": "HS512", "typ": "JWT", "kid": kid}
}

func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

// The hostile cases below are built by the same forge as this control: if it
// were wrong, this test would fail rather than the others passing for the
// wrong reason.
func TestVerify_HandBuiltJWTIsAcceptedAsAControl(t *testing.T) {
	k := testKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	v, err := s.Verify(forge(t, goodHeader(k.ID), goodClaims(), "HS512", k.Secret))
	if err != nil {
		t.Fatalf("Verify of a well-formed hand-built JWT: %v", err)
	}
	if v.TokenID != "tok_abc" || v.Subject != "alice" || v.Scopes != apitoken.DefaultScopes {
		t.Errorf("Verify = %+v", *v)
	}
}

func TestVerify_HostileJWTsAreRefused(t *testing.T) {
	k := testKey(t, 1)
	other := testKey(t, 2)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	real := func(header, claims any) string { return forge(t, header, claims, "HS512", k.Secret) }
	good := real(goodHeader(k.ID), goodClaims())
	parts := strings.Split(good, ".")
	tamperedPayload := parts[0] + "." + jsonSeg(t, with(goodClaims(), "sub", "mallory")) + "." + parts[2]
	tamperedScope := parts[0] + "." + jsonSeg(t, with(goodClaims(), "scope", "meta report admin", "tid", "tok_other")) + "." + parts[2]

	for _, tc := range []struct {
		name string
		jwt  string
	}{
		{"alg none without a signature", forge(t, with(goodHeader(k.ID), "alg", "none"), goodClaims(), "none", nil)},
		{"alg none with the real signature", real(with(goodHeader(k.ID), "alg", "none"), goodClaims())},
		{"alg None in another case", real(with(goodHeader(k.ID), "alg", "None"), goodClaims())},
		{"HS256 signed with the real key", forge(t, with(goodHeader(k.ID), "alg", "HS256"), goodClaims(), "HS256", k.Secret)},
		{"HS384 signed with the real key", forge(t, with(goodHeader(k.ID), "alg", "HS384"), goodClaims(), "HS384", k.Secret)},
		{"RS256 header over an HMAC signature", real(with(goodHeader(k.ID), "alg", "RS256"), goodClaims())},
		{"no alg", real(with(goodHeader(k.ID), "alg", nil), goodClaims())},
		{"tampered payload under a real signature", tamperedPayload},
		{"tampered scope and tid under a real signature", tamperedScope},
		{"stripped signature", parts[0] + "." + parts[1] + "."},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(real(goodHeader(k.ID), with(goodClaims(), "jti", "x")), ".")[2]},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:40]},
		{"signed by another key of the same length under the real kid", forge(t, goodHeader(k.ID), goodClaims(), "HS512", other.Secret)},
		{"wrong issuer", real(goodHeader(k.ID), with(goodClaims(), "iss", "https://other.example.com"))},
		{"missing issuer", real(goodHeader(k.ID), with(goodClaims(), "iss", nil))},
		{"empty issuer", real(goodHeader(k.ID), with(goodClaims(), "iss", ""))},
		{"unknown kid", forge(t, goodHeader(other.ID), goodClaims(), "HS512", other.Secret)},
		{"unknown kid with the real key's signature", real(goodHeader(other.ID), goodClaims())},
		{"no kid", real(with(goodHeader(k.ID), "kid", nil), goodClaims())},
		{"a kid that is not a string", real(with(goodHeader(k.ID), "kid", 1), goodClaims())},
		{"extra header member crit", real(with(goodHeader(k.ID), "crit", []string{"exp"}), goodClaims())},
		{"extra header member jku", real(with(goodHeader(k.ID), "jku", "https://evil.example/keys"), goodClaims())},
		{"extra header member jwk", real(with(goodHeader(k.ID), "jwk", map[string]any{"kty": "oct", "k": b64(k.Secret)}), goodClaims())},
		{"extra header member x5u", real(with(goodHeader(k.ID), "x5u", "https://evil.example/cert"), goodClaims())},
		{"extra header member zip", real(with(goodHeader(k.ID), "zip", "DEF"), goodClaims())},
		{"typ replaced by cty", real(map[string]any{"alg": "HS512", "cty": "JWT", "kid": k.ID}, goodClaims())},
		{"typ not JWT", real(with(goodHeader(k.ID), "typ", "at+jwt"), goodClaims())},
		{"typ in lower case", real(with(goodHeader(k.ID), "typ", "jwt"), goodClaims())},
		{"no typ", real(with(goodHeader(k.ID), "typ", nil), goodClaims())},
		{"nbf beyond the leeway", real(goodHeader(k.ID), with(goodClaims(), "nbf", t0.Add(apitoken.Leeway+time.Second).Unix()))},
		{"iat in the future beyond the leeway", real(goodHeader(k.ID), with(goodClaims(), "iat", t0.Add(apitoken.Leeway+time.Second).Unix()))},
		{"aud as a number", real(goodHeader(k.ID), with(goodClaims(), "aud", 42))},
		{"exp as a string", real(goodHeader(k.ID), with(goodClaims(), "exp", "2099-01-01"))},
		{"iat as a string", real(goodHeader(k.ID), with(goodClaims(), "iat", "yesterday"))},
		{"sub as a number", real(goodHeader(k.ID), with(goodClaims(), "sub", 7))},
		{"scope as a list", real(goodHeader(k.ID), with(goodClaims(), "scope", []string{"meta"}))},
		{"missing tid", real(goodHeader(k.ID), with(goodClaims(), "tid", nil))},
		{"missing jti", real(goodHeader(k.ID), with(goodClaims(), "jti", nil))},
		{"missing sub", real(goodHeader(k.ID), with(goodClaims(), "sub", nil))},
		{"empty tid", real(goodHeader(k.ID), with(goodClaims(), "tid", ""))},
		{"claims that are not an object", real(goodHeader(k.ID), `["tok_abc"]`)},
		{"header that is not JSON", real(`{"alg":"HS512",`, goodClaims())},
		{"two segments", parts[0] + "." + parts[1]},
		{"four segments", good + ".x"},
		{"padded base64 signature", good + "=="},
		{"empty string", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := s.Verify(tc.jwt)
			if err == nil {
				t.Fatalf("Verify accepted a hostile JWT: %+v", *v)
			}
			if !errors.Is(err, apitoken.ErrMalformedJWT) || errors.Is(err, apitoken.ErrJWTExpired) {
				t.Errorf("Verify error = %v, want ErrMalformedJWT only", err)
			}
			if v != nil {
				t.Errorf("Verify returned claims %+v with a malformed JWT", *v)
			}
		})
	}
}

func TestVerify_TimeClaimsAllowExactlyTheLeeway(t *testing.T) {
	k := testKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	at := func(claim string, d time.Duration) string {
		return forge(t, goodHeader(k.ID), with(goodClaims(), claim, t0.Add(d).Unix()), "HS512", k.Secret)
	}
	const L = apitoken.Leeway
	for _, tc := range []struct {
		name    string
		jwt     string
		wantErr error // nil: accepted
	}{
		{"exp one second past the leeway is expired", at("exp", -L-time.Second), apitoken.ErrJWTExpired},
		{"exp within the leeway is accepted", at("exp", -L+time.Second), nil},
		{"nbf one second beyond the leeway is refused", at("nbf", L+time.Second), apitoken.ErrMalformedJWT},
		{"nbf within the leeway is accepted", at("nbf", L-time.Second), nil},
		{"iat one second beyond the leeway is refused", at("iat", L+time.Second), apitoken.ErrMalformedJWT},
		{"iat within the leeway is accepted", at("iat", L-time.Second), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Verify(tc.jwt)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Errorf("Verify: %v, want it accepted", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Errorf("Verify error = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestVerify_JWTWhoseOnlyFaultIsExpReportsExpiredWithItsClaims(t *testing.T) {
	k := testKey(t, 1)
	c := newClock()
	s := newSigner(t, issuer, c.Now, k)
	jwt, err := s.Issue(testToken(apitoken.Expiry1d), "jti-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(24*time.Hour + apitoken.Leeway)
	v, err := s.Verify(jwt)
	if !errors.Is(err, apitoken.ErrJWTExpired) || errors.Is(err, apitoken.ErrMalformedJWT) {
		t.Fatalf("Verify error = %v, want ErrJWTExpired alone", err)
	}
	if v == nil || v.TokenID != "tok_abc" || v.Subject != "alice" || !v.Exp.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("Verify returned %+v, want the claims of the expired JWT", v)
	}
}

func TestVerify_ExpiredJWTWithAnotherFaultIsMalformed(t *testing.T) {
	k := testKey(t, 1)
	other := testKey(t, 2)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	expired := with(goodClaims(), "exp", t0.Add(-time.Hour).Unix(), "iat", t0.Add(-2*time.Hour).Unix())
	for _, tc := range []struct {
		name string
		jwt  string
	}{
		{"wrong issuer", forge(t, goodHeader(k.ID), with(expired, "iss", "https://other.example.com"), "HS512", k.Secret)},
		{"missing issuer", forge(t, goodHeader(k.ID), with(expired, "iss", nil), "HS512", k.Secret)},
		{"bad signature", forge(t, goodHeader(k.ID), expired, "HS512", other.Secret)},
		{"unknown kid", forge(t, goodHeader(other.ID), expired, "HS512", other.Secret)},
		{"extra header member", forge(t, with(goodHeader(k.ID), "jku", "https://evil.example"), expired, "HS512", k.Secret)},
		{"HS256", forge(t, with(goodHeader(k.ID), "alg", "HS256"), expired, "HS256", k.Secret)},
		{"nbf in the future", forge(t, goodHeader(k.ID), with(expired, "nbf", t0.Add(time.Hour).Unix()), "HS512", k.Secret)},
		{"iat in the future", forge(t, goodHeader(k.ID), with(expired, "iat", t0.Add(time.Hour).Unix()), "HS512", k.Secret)},
		{"missing tid", forge(t, goodHeader(k.ID), with(expired, "tid", nil), "HS512", k.Secret)},
		{"aud as a number", forge(t, goodHeader(k.ID), with(expired, "aud", 1), "HS512", k.Secret)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := s.Verify(tc.jwt)
			if !errors.Is(err, apitoken.ErrMalformedJWT) || errors.Is(err, apitoken.ErrJWTExpired) {
				t.Errorf("Verify error = %v, want ErrMalformedJWT and not ErrJWTExpired", err)
			}
			if v != nil {
				t.Errorf("Verify returned claims %+v", *v)
			}
		})
	}
	// Control: the same claims, signed right, are merely expired.
	if _, err := s.Verify(forge(t, goodHeader(k.ID), expired, "HS512", k.Secret)); !errors.Is(err, apitoken.ErrJWTExpired) {
		t.Fatalf("control: Verify error = %v, want ErrJWTExpired", err)
	}
}

func TestVerify_KeyRotationSignsWithTheFirstKeyAndVerifiesWithAll(t *testing.T) {
	oldKey, newKey := testKey(t, 1), testKey(t, 2)
	now := func() time.Time { return t0 }
	before := newSigner(t, issuer, now, oldKey)
	during := newSigner(t, issuer, now, newKey, oldKey)
	after := newSigner(t, issuer, now, newKey)

	oldJWT, err := before.Issue(testToken(apitoken.Expiry30d), "jti-old", t0)
	if err != nil {
		t.Fatal(err)
	}
	newJWT, err := during.Issue(testToken(apitoken.Expiry30d), "jti-new", t0)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := segments(t, newJWT); h["kid"] != newKey.ID {
		t.Errorf("rotated signer signed with kid %v, want the new key %s", h["kid"], newKey.ID)
	}
	if ids := during.KeyIDs(); len(ids) != 2 || ids[0] != newKey.ID || ids[1] != oldKey.ID {
		t.Errorf("KeyIDs() = %v, want [%s %s]", ids, newKey.ID, oldKey.ID)
	}
	for _, tc := range []struct {
		name   string
		s      *apitoken.Signer
		jwt    string
		accept bool
	}{
		{"the old key's JWT during rotation", during, oldJWT, true},
		{"the new key's JWT during rotation", during, newJWT, true},
		{"the new key's JWT after the old key is removed", after, newJWT, true},
		{"the old key's JWT after the old key is removed", after, oldJWT, false},
		{"the new key's JWT on a signer that never had it", before, newJWT, false},
	} {
		_, err := tc.s.Verify(tc.jwt)
		if accepted := err == nil; accepted != tc.accept {
			t.Errorf("%s: accepted = %t (%v), want %t", tc.name, accepted, err, tc.accept)
		}
	}
}

func TestVerify_JWTOfAnotherIssuerWithTheSameKeyIsRefused(t *testing.T) {
	k := testKey(t, 1)
	now := func() time.Time { return t0 }
	foreign := newSigner(t, "https://other.example.com", now, k)
	jwt, err := foreign.Issue(testToken(apitoken.Expiry30d), "jti-1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSigner(t, issuer, now, k).Verify(jwt); !errors.Is(err, apitoken.ErrMalformedJWT) {
		t.Fatalf("Verify of a foreign issuer's JWT = %v, want ErrMalformedJWT", err)
	}
	if _, err := foreign.Verify(jwt); err != nil {
		t.Fatalf("control: the foreign signer refuses its own JWT: %v", err)
	}
}

func TestVerify_ErrorNeverContainsTheJWT(t *testing.T) {
	k := testKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	for _, jwt := range []string{
		forge(t, goodHeader(k.ID), with(goodClaims(), "iss", "x"), "HS512", k.Secret),
		forge(t, goodHeader(k.ID), goodClaims(), "HS512", testKey(t, 2).Secret),
		forge(t, goodHeader(k.ID), with(goodClaims(), "exp", t0.Add(-time.Hour).Unix()), "HS512", k.Secret),
	} {
		_, err := s.Verify(jwt)
		if err == nil {
			t.Fatal("Verify accepted a bad JWT")
		}
		sig := jwt[strings.LastIndexByte(jwt, '.')+1:]
		if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), jwt[:20]) {
			t.Errorf("error %q contains the JWT", err)
		}
	}
}

// The header segment Issue writes and any other spelling of a valid header
// must be judged the same way.
func TestVerify_AnotherSpellingOfAValidHeaderIsJudgedTheSame(t *testing.T) {
	k := testKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	respelled := `{ "typ": "JWT", "kid": "` + k.ID + `", "alg": "HS512" }`
	if _, err := s.Verify(forge(t, respelled, goodClaims(), "HS512", k.Secret)); err != nil {
		t.Fatalf("a respelled valid header was refused: %v", err)
	}
	for name, claims := range map[string]map[string]any{
		"wrong issuer": with(goodClaims(), "iss", "https://other.example.com"),
		"exp a string": with(goodClaims(), "exp", "2099-01-01"),
		"missing tid":  with(goodClaims(), "tid", nil),
	} {
		_, fast := s.Verify(forge(t, goodHeader(k.ID), claims, "HS512", k.Secret))
		_, slow := s.Verify(forge(t, respelled, claims, "HS512", k.Secret))
		if !errors.Is(fast, apitoken.ErrMalformedJWT) || !errors.Is(slow, apitoken.ErrMalformedJWT) {
			t.Errorf("%s: issued header %v, respelled header %v; want both refused", name, fast, slow)
		}
	}
	expired := with(goodClaims(), "exp", t0.Add(-time.Hour).Unix(), "iat", t0.Add(-2*time.Hour).Unix())
	_, fast := s.Verify(forge(t, goodHeader(k.ID), expired, "HS512", k.Secret))
	_, slow := s.Verify(forge(t, respelled, expired, "HS512", k.Secret))
	if !errors.Is(fast, apitoken.ErrJWTExpired) || !errors.Is(slow, apitoken.ErrJWTExpired) {
		t.Errorf("expired: issued header %v, respelled header %v; want both ErrJWTExpired", fast, slow)
	}
}
