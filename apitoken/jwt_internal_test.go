package apitoken

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"
)

// Every JWT that Issue writes must be checked on Verify's fast path: its
// header segment is one of the few the signer knows, for each algorithm.
func TestIssue_EveryIssuedHeaderIsOnTheFastPath(t *testing.T) {
	hs, err := NewKey([]byte(strings.Repeat("k", MinKeyLen)))
	if err != nil {
		t.Fatal(err)
	}
	ed, err := NewEd25519Key(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, k := range []Key{hs, ed} {
		s, err := NewSigner("iss", []Key{k}, func() time.Time { return at })
		if err != nil {
			t.Fatal(err)
		}
		for _, exp := range []Expiry{Expiry1d, ExpiryNever} {
			jwt, err := s.Issue(&Token{ID: "tok_x", Owner: "alice", Scopes: AllScopes, Expires: exp}, "jti", at)
			if err != nil {
				t.Fatal(err)
			}
			header, _, _ := strings.Cut(jwt, ".")
			if s.keys.Load().headers[header] == nil {
				t.Errorf("%s, expiry %s: the issued header %q is not on the fast path", k.Algorithm(), exp, header)
			}
			if _, err := s.Verify(jwt); err != nil {
				t.Errorf("%s: Verify: %v", k.Algorithm(), err)
			}
		}
	}
}
