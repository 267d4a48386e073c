package apitoken_test

import (
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// BenchmarkVerifyFirstSeenEdDSA is BenchmarkVerifyFirstSeen for an Ed25519
// deployment: a verification costs an Ed25519 check instead of an HMAC, on
// a JWT not yet cached (repeat use is the same map lookup as with HS512).
func BenchmarkVerifyFirstSeenEdDSA(b *testing.B) {
	k := edKey(b, 1)
	s := newSigner(b, issuer, func() time.Time { return t0.Add(time.Minute) }, publicOnly(b, k))
	issuing := newSigner(b, issuer, func() time.Time { return t0 }, k)
	raw, err := issuing.Issue(testToken(apitoken.Expiry30d), "jti-bench", t0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(raw); err != nil {
			b.Fatal(err)
		}
	}
}
