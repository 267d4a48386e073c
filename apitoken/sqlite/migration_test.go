package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// A database written before scopes were kept by name (migration 5) reads
// back with the same scopes: the old bit sets become meta, report or both,
// and a generated token's live JWT is taken to carry its record's scopes.
func TestMigration_ScopeBitSetsBecomeNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(t.Context(), 4); err != nil {
		t.Fatalf("migrating to version 4: %v", err)
	}
	for _, q := range []string{
		`INSERT INTO users (id, created_at) VALUES ('alice', 1)`,
		`INSERT INTO tokens (id, owner, name, name_key, scopes, expires, created_at) VALUES ('tok_meta', 'alice', 'm', 'm', 1, '1d', 1)`,
		`INSERT INTO tokens (id, owner, name, name_key, scopes, expires, created_at, generated_at, jti_hash)
			VALUES ('tok_report', 'alice', 'r', 'r', 2, '1d', 1, 2, x'00')`,
		`INSERT INTO tokens (id, owner, name, name_key, scopes, expires, created_at) VALUES ('tok_both', 'alice', 'b', 'b', 3, '1d', 1)`,
		`INSERT INTO notifications (event_key, destination, event, token_id, token_name, owner, scopes, event_at, next_attempt_at)
			VALUES ('k', 'email', 'token.generated', 'tok_report', 'r', 'alice', 2, 2, 2)`,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s := openStore(t, path)
	defer s.Close()
	for id, want := range map[string]string{"tok_meta": "meta", "tok_report": "report", "tok_both": "meta report"} {
		tok, err := s.GetToken(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Scopes.String() != want {
			t.Errorf("%s: scopes %q, want %q", id, tok.Scopes, want)
		}
		wantGen := ""
		if tok.GeneratedAt != nil {
			wantGen = want
		}
		if tok.GeneratedScopes.String() != wantGen {
			t.Errorf("%s: generated scopes %q, want %q", id, tok.GeneratedScopes, wantGen)
		}
	}
	ns, _, err := s.ListNotifications(t.Context(), apitoken.NotificationFilter{})
	if err != nil || len(ns) != 1 || ns[0].Scopes.String() != "report" {
		t.Fatalf("notifications = %+v, %v; want one of scope report", ns, err)
	}
}
