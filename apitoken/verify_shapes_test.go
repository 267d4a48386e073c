package apitoken_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Found by FuzzVerify: a JWT with a header segment of this deployment (any
// of its JWTs shows one) and a signature longer than 86 characters made the
// hand-written fast path that Verify once had decode past its 64-byte buffer
// and panic. Verify now has golang-jwt's parser only; the case stays.
func TestVerify_OverlongSignatureUnderAKnownHeaderIsRefusedWithoutPanic(t *testing.T) {
	for name, k := range map[string]apitoken.Key{"HS512": testKey(t, 1), "EdDSA": edKey(t, 1)} {
		s := newSigner(t, issuer, func() time.Time { return t0 }, k)
		jwt, err := s.Issue(testToken(apitoken.Expiry30d), "jti", t0)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(jwt, ".")
		for _, sig := range []string{
			parts[2] + "A", parts[2] + "AA", parts[2] + "AAAA", strings.Repeat("0", 87), strings.Repeat("A", 8000), "",
			parts[2][:85], parts[2] + "=", parts[2] + "==",
		} {
			for _, payload := range []string{parts[1], ""} {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("%s: Verify panicked on a %d-character signature: %v", name, len(sig), r)
						}
					}()
					v, err := s.Verify(parts[0] + "." + payload + "." + sig)
					if err == nil || !errors.Is(err, apitoken.ErrMalformedJWT) || v != nil {
						t.Errorf("%s: a %d-character signature: %v, %v", name, len(sig), v, err)
					}
				}()
			}
		}
	}
}
