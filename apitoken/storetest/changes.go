package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// changeTests check the change sequence, by which every process on a store
// learns what the others changed.
var changeTests = []struct {
	name string
	fn   func(t *testing.T, s apitoken.Store)
}{
	{"EveryCommittedTokenAndUserWriteIsOneChangeInOrder", testChangesInOrder},
	{"AReaderFollowingTheSequenceMissesNoConcurrentChange", testChangesFollowedConcurrently},
}

func changesAfter(t *testing.T, s apitoken.Store, after int64, limit int) []apitoken.Change {
	t.Helper()
	cs, err := s.Changes(t.Context(), after, limit)
	if err != nil {
		t.Fatalf("Changes(%d, %d): %v", after, limit, err)
	}
	return cs
}

func lastChange(t *testing.T, s apitoken.Store) int64 {
	t.Helper()
	n, err := s.LastChange(t.Context())
	if err != nil {
		t.Fatalf("LastChange: %v", err)
	}
	return n
}

func testChangesInOrder(t *testing.T, s apitoken.Store) {
	if n := lastChange(t, s); n != 0 {
		t.Fatalf("LastChange of an empty store = %d, want 0", n)
	}
	putUser(t, s, "alice", t0, apitoken.RoleAPITokens)
	tok := createToken(t, s, newToken("alice", "t", t0)) // creating adds none
	generate(t, s, tok.ID, t0)
	recordAuth(t, s, okAt(tok.ID, t0, "192.0.2.1")) // nor do audit writes
	if _, err := s.UpdateToken(t.Context(), tok.ID, func(*apitoken.Token) (apitoken.Log, error) { return apitoken.Log{}, errBoom }); err == nil {
		t.Fatal("UpdateToken with a failing fn succeeded")
	}
	if _, err := s.UpdateUser(t.Context(), "alice", func(*apitoken.User, bool) ([]apitoken.Log, error) { return nil, errBoom }); err == nil {
		t.Fatal("UpdateUser with a failing fn succeeded")
	}
	revoke(t, s, tok.ID, t0)

	got := changesAfter(t, s, 0, 100)
	want := []apitoken.Change{{UserID: "alice"}, {TokenID: tok.ID}, {TokenID: tok.ID}}
	if len(got) != len(want) {
		t.Fatalf("changes = %+v, want %d: the user, the generation, the revocation", got, len(want))
	}
	for i := range got {
		if got[i].TokenID != want[i].TokenID || got[i].UserID != want[i].UserID {
			t.Errorf("change %d = %+v, want %+v", i, got[i], want[i])
		}
		if i > 0 && got[i].Seq <= got[i-1].Seq {
			t.Errorf("change %d numbered %d after %d: numbers must increase", i, got[i].Seq, got[i-1].Seq)
		}
	}
	if n := lastChange(t, s); n != got[2].Seq {
		t.Errorf("LastChange = %d, want %d", n, got[2].Seq)
	}
	if rest := changesAfter(t, s, got[0].Seq, 1); len(rest) != 1 || rest[0] != got[1] {
		t.Errorf("Changes(after the first, limit 1) = %+v, want [%+v]", rest, got[1])
	}
	if rest := changesAfter(t, s, got[2].Seq, 100); len(rest) != 0 {
		t.Errorf("Changes(after the last) = %+v, want none", rest)
	}
}

// Writers on several connections commit while a reader follows the
// sequence from the last number it saw: it must see every change. (Numbers
// handed out in the order transactions ask, not the order they commit,
// would let a reader pass a change that commits late.)
func testChangesFollowedConcurrently(t *testing.T, s apitoken.Store) {
	const writers, each = 4, 25
	for w := range writers {
		putUser(t, s, fmt.Sprintf("user%d", w), t0)
	}
	start := lastChange(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seen := map[string]int{}
	readerDone := make(chan error)
	go func() {
		after := start
		for {
			cs, err := s.Changes(ctx, after, 7)
			if err != nil {
				readerDone <- err
				return
			}
			for _, c := range cs {
				seen[c.UserID]++
				after = c.Seq
			}
			if seen["done"] > 0 {
				readerDone <- nil
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("user%d", w)
			for i := range each {
				if _, err := s.UpdateUser(ctx, id, func(u *apitoken.User, _ bool) ([]apitoken.Log, error) {
					u.Email = fmt.Sprintf("%d@example.com", i)
					return nil, nil
				}); err != nil {
					t.Errorf("UpdateUser %s: %v", id, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	putUser(t, s, "done", t0)
	if err := <-readerDone; err != nil {
		t.Fatalf("Changes: %v", err)
	}
	for w := range writers {
		if n := seen[fmt.Sprintf("user%d", w)]; n != each {
			t.Errorf("the reader saw %d changes of user%d, want %d", n, w, each)
		}
	}
}
