package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// ---- helpers ----

func putUser(t testing.TB, s apitoken.Store, id string, created time.Time, roles ...apitoken.Role) apitoken.User {
	t.Helper()
	u, err := s.UpdateUser(t.Context(), id, func(u *apitoken.User, isNew bool) ([]apitoken.Log, error) {
		u.CreatedAt = created
		u.Roles = roles
		return nil, nil
	})
	if err != nil {
		t.Fatalf("UpdateUser(%q): %v", id, err)
	}
	return u
}

func newToken(owner, name string, created time.Time) apitoken.Token {
	return apitoken.Token{ID: apitoken.NewTokenID(), Name: name, Owner: owner, Scopes: apitoken.DefaultScopes,
		Expires: apitoken.Expiry30d, CreatedAt: created}
}

func createLog(tok apitoken.Token) apitoken.Log {
	return apitoken.Log{TokenID: tok.ID, TokenName: tok.Name, Activity: apitoken.ActivityCreate,
		ActivityOn: tok.CreatedAt, ActivityBy: tok.Owner, Reason: "created"}
}

func createToken(t testing.TB, s apitoken.Store, tok apitoken.Token) apitoken.Token {
	t.Helper()
	if err := s.CreateToken(t.Context(), tok, createLog(tok), 0); err != nil {
		t.Fatalf("CreateToken(%q): %v", tok.Name, err)
	}
	return tok
}

func mustGetToken(t *testing.T, s apitoken.Store, id string) apitoken.Token {
	t.Helper()
	tok, err := s.GetToken(t.Context(), id)
	if err != nil {
		t.Fatalf("GetToken(%q): %v", id, err)
	}
	return tok
}

func hash(seed string) []byte {
	h := sha256.Sum256([]byte(seed))
	return h[:]
}

// generate does what a generation does to the record: GeneratedAt, the exp
// of the new JWT (from the record's expiry unless exp is given) and its jti
// hash, and a GENERATE log.
func generate(t *testing.T, s apitoken.Store, id string, at time.Time, exp ...time.Time) apitoken.Token {
	t.Helper()
	tok, err := s.UpdateToken(t.Context(), id, func(tok *apitoken.Token) (apitoken.Log, error) {
		tok.GeneratedAt = &at
		tok.GeneratedExp = tok.Expires.ExpiresAt(at)
		if len(exp) > 0 {
			tok.GeneratedExp = &exp[0]
		}
		tok.JTIHash = hash(tok.ID + at.String())
		return apitoken.Log{Activity: apitoken.ActivityGenerate, ActivityOn: at, ActivityBy: tok.Owner}, nil
	})
	if err != nil {
		t.Fatalf("generating %q: %v", id, err)
	}
	return tok
}

func revoke(t *testing.T, s apitoken.Store, id string, at time.Time) apitoken.Token {
	t.Helper()
	tok, err := s.UpdateToken(t.Context(), id, func(tok *apitoken.Token) (apitoken.Log, error) {
		tok.RevokedAt, tok.RevokedBy = &at, "admin"
		return apitoken.Log{Activity: apitoken.ActivityRevoke, ActivityOn: at, ActivityBy: "admin"}, nil
	})
	if err != nil {
		t.Fatalf("revoking %q: %v", id, err)
	}
	return tok
}

func rename(s apitoken.Store, ctx context.Context, id, name string, at time.Time) (apitoken.Token, error) {
	return s.UpdateToken(ctx, id, func(tok *apitoken.Token) (apitoken.Log, error) {
		tok.Name = name
		return apitoken.Log{Activity: apitoken.ActivityUpdate, ActivityOn: at, ActivityBy: tok.Owner, Reason: "renamed"}, nil
	})
}

func recordAuth(t *testing.T, s apitoken.Store, records ...apitoken.AuthRecord) {
	t.Helper()
	if err := s.RecordAuth(t.Context(), "", records); err != nil {
		t.Fatalf("RecordAuth: %v", err)
	}
}

// okAt is one OK attempt of a token at a time, from ip.
func okAt(tokenID string, at time.Time, ip string) apitoken.AuthRecord {
	return apitoken.AuthRecord{TokenID: tokenID, ActivityBy: "Reports API", Result: apitoken.ResultOK, ClientIP: ip,
		UserAgent: "curl/8", Window: at.Truncate(time.Minute), First: at, Last: at, Count: 1}
}

// allLogs lists every log row matching f, following the cursors.
func allLogs(t *testing.T, s apitoken.Store, f apitoken.LogFilter) []apitoken.Log {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = apitoken.MaxPageLimit
	}
	var out []apitoken.Log
	for i := 0; ; i++ {
		logs, next, err := s.ListLogs(t.Context(), f)
		if err != nil {
			t.Fatalf("ListLogs(%+v): %v", f, err)
		}
		out = append(out, logs...)
		if next == "" {
			return out
		}
		if i > 10000 {
			t.Fatalf("ListLogs never ends")
		}
		f.Cursor = next
	}
}

func allTokens(t *testing.T, s apitoken.Store, f apitoken.TokenFilter) []apitoken.Token {
	t.Helper()
	var out []apitoken.Token
	for i := 0; ; i++ {
		toks, next, err := s.ListTokens(t.Context(), f)
		if err != nil {
			t.Fatalf("ListTokens(%+v): %v", f, err)
		}
		if f.Limit > 0 && len(toks) > f.Limit {
			t.Fatalf("ListTokens returned %d tokens for limit %d", len(toks), f.Limit)
		}
		if next != "" && f.Limit > 0 && len(toks) != f.Limit {
			t.Fatalf("ListTokens returned a short page (%d of %d) with a next cursor", len(toks), f.Limit)
		}
		out = append(out, toks...)
		if next == "" {
			return out
		}
		if i > 10000 {
			t.Fatalf("ListTokens never ends")
		}
		f.Cursor = next
	}
}

func tokenNames(toks []apitoken.Token) []string {
	names := make([]string, len(toks))
	for i, tok := range toks {
		names[i] = tok.Name
	}
	return names
}

func utc(tm time.Time) time.Time { return tm.Truncate(time.Microsecond).UTC() }

func utcPtr(tm *time.Time) *time.Time {
	if tm == nil {
		return nil
	}
	v := utc(*tm)
	return &v
}

// stored is tok as a store must return it: times to the microsecond in UTC.
func stored(tok apitoken.Token) apitoken.Token {
	tok.CreatedAt = utc(tok.CreatedAt)
	tok.GeneratedAt, tok.GeneratedExp = utcPtr(tok.GeneratedAt), utcPtr(tok.GeneratedExp)
	tok.LastUsedAt, tok.RevokedAt = utcPtr(tok.LastUsedAt), utcPtr(tok.RevokedAt)
	tok.PrevUntil = utcPtr(tok.PrevUntil)
	if len(tok.JTIHash) == 0 {
		tok.JTIHash = nil
	}
	if len(tok.AllowedIPs) == 0 {
		tok.AllowedIPs = nil
	}
	if len(tok.PrevJTIHash) == 0 {
		tok.PrevJTIHash = nil
	}
	return tok
}

// networks parses allowed_ips as a client gives them.
func networks(t testing.TB, list ...string) apitoken.Networks {
	t.Helper()
	n, err := apitoken.ParseNetworks(list)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sameToken(t *testing.T, what string, got, want apitoken.Token) {
	t.Helper()
	if len(got.JTIHash) == 0 {
		got.JTIHash = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, fmtToken(got), fmtToken(want))
	}
}

func fmtToken(tok apitoken.Token) string {
	p := func(tm *time.Time) string {
		if tm == nil {
			return "nil"
		}
		return tm.Format(time.RFC3339Nano) + " " + tm.Location().String()
	}
	return fmt.Sprintf("{ID:%s Name:%q Owner:%s Scopes:%s Expires:%s CreatedAt:%s GeneratedAt:%s GeneratedExp:%s GeneratedScopes:%s JTIHash:%x PrevJTIHash:%x PrevUntil:%s LastUsedAt:%s LastUsedIP:%q RevokedAt:%s RevokedBy:%q AllowedIPs:%q}",
		tok.ID, tok.Name, tok.Owner, tok.Scopes, tok.Expires, p(&tok.CreatedAt), p(tok.GeneratedAt), p(tok.GeneratedExp),
		tok.GeneratedScopes, tok.JTIHash, tok.PrevJTIHash, p(tok.PrevUntil), p(tok.LastUsedAt), tok.LastUsedIP, p(tok.RevokedAt), tok.RevokedBy, tok.AllowedIPs)
}

func isUTC(tm time.Time) bool { return tm.Location() == time.UTC }

func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want one that is %v", what, err, kind)
	}
}
