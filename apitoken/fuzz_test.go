package apitoken_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// FuzzVerify: Signer.Verify never panics and never accepts a JWT that its
// keys did not sign. Whatever it accepts (or reports as merely expired) is
// checked again here by an independent reading: exactly three segments in
// strict base64url, a header of exactly {alg, typ: JWT, kid} naming the
// signer's algorithm and one of its keys, and a signature by that key over
// the first two segments, as they are.
//
//	go test -run '^$' -fuzz FuzzVerify -fuzztime 15s ./apitoken/
func FuzzVerify(f *testing.F) {
	hs, hs2 := testKey(f, 1), testKey(f, 2)
	ed, ed2 := edKey(f, 1), edKey(f, 2)
	now := func() time.Time { return t0 }
	signers := map[string]*apitoken.Signer{
		apitoken.AlgHS512: newSigner(f, issuer, now, hs, hs2),
		apitoken.AlgEdDSA: newSigner(f, issuer, now, ed, publicOnly(f, ed2)),
	}
	keys := map[string]apitoken.Key{hs.ID: hs, hs2.ID: hs2, ed.ID: ed, ed2.ID: ed2}
	// Seeds: JWTs each signer accepts, and hostile shapes around them.
	for _, s := range signers {
		for _, exp := range []apitoken.Expiry{apitoken.Expiry1d, apitoken.ExpiryNever} {
			jwt, err := s.Issue(testToken(exp), "jti-seed", t0.Add(-time.Hour))
			if err != nil {
				f.Fatal(err)
			}
			parts := strings.Split(jwt, ".")
			f.Add(jwt)
			f.Add(parts[0] + "." + parts[1] + ".")
			f.Add(parts[0] + "." + parts[1])
			f.Add(jwt + ".")
			f.Add(strings.Repeat(".", 200))
		}
	}
	f.Add(forge(f, goodHeader(hs.ID), goodClaims(), "HS512", hs.Secret))
	f.Add(forge(f, `{ "typ": "JWT", "kid": "`+hs.ID+`", "alg": "HS512" }`, goodClaims(), "HS512", hs.Secret))
	f.Add(forge(f, with(goodHeader(hs.ID), "alg", "none"), goodClaims(), "none", nil))
	f.Add(forge(f, with(goodHeader(hs.ID), "alg", "HS256"), goodClaims(), "HS256", hs.Secret))
	f.Add(forge(f, with(edHeader(ed.ID), "alg", "HS512"), goodClaims(), "HS512", ed.Public))
	f.Add(forgeEd(f, edHeader(ed.ID), goodClaims(), ed.Private))
	f.Add(forgeEd(f, `{"kid":"`+ed.ID+`","alg":"EdDSA","typ":"JWT"}`, with(goodClaims(), "exp", t0.Add(-time.Hour).Unix()), ed.Private))
	f.Add(`{"payload":"e30","signatures":[{"protected":"e30","signature":""}]}`)
	f.Add("")

	f.Fuzz(func(t *testing.T, raw string) {
		for alg, s := range signers {
			v, err := s.Verify(raw)
			if err != nil && !errors.Is(err, apitoken.ErrJWTExpired) {
				if v != nil {
					t.Fatalf("%s: refused with claims %+v", alg, *v)
				}
				if !errors.Is(err, apitoken.ErrMalformedJWT) {
					t.Fatalf("%s: refused with %v, want ErrMalformedJWT or ErrJWTExpired", alg, err)
				}
				continue
			}
			if v == nil || v.TokenID == "" || v.Subject == "" {
				t.Fatalf("%s: accepted (%v) without the claims the state check needs: %+v", alg, err, v)
			}
			if why := signedBy(s, alg, raw, keys); why != "" {
				t.Fatalf("%s: accepted a JWT its keys did not sign (%s): %q", alg, why, raw)
			}
		}
	})
}

// signedBy checks raw independently of Verify; it returns why raw is not a
// JWT of s's keys, or "".
func signedBy(s *apitoken.Signer, alg, raw string, keys map[string]apitoken.Key) string {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "not three segments"
	}
	dec := base64.RawURLEncoding.Strict()
	hb, err := dec.DecodeString(parts[0])
	if err != nil {
		return "header is not strict base64url"
	}
	if _, err := dec.DecodeString(parts[1]); err != nil {
		return "payload is not strict base64url"
	}
	sig, err := dec.DecodeString(parts[2])
	if err != nil {
		return "signature is not strict base64url"
	}
	var h map[string]any
	d := json.NewDecoder(bytes.NewReader(hb))
	if err := d.Decode(&h); err != nil || len(h) != 3 || h["alg"] != alg || h["typ"] != "JWT" {
		return "header is not exactly {alg, typ: JWT, kid}"
	}
	kid, _ := h["kid"].(string)
	known := false
	for _, id := range s.KeyIDs() {
		known = known || id == kid
	}
	if !known {
		return "unknown kid"
	}
	signing := []byte(parts[0] + "." + parts[1])
	k := keys[kid]
	switch {
	case alg == apitoken.AlgHS512 && k.Algorithm() == alg:
		m := hmac.New(sha512.New, k.Secret)
		m.Write(signing)
		if hmac.Equal(m.Sum(nil), sig) {
			return ""
		}
	case alg == apitoken.AlgEdDSA && k.Algorithm() == alg:
		if ed25519.Verify(k.Public, signing, sig) {
			return ""
		}
	}
	return "the signature is not the key's"
}
