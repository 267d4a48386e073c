package wire_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestToken_JSONShowsStatusLabelAndNulls(t *testing.T) {
	tok := apitoken.Token{ID: "tok_x", Name: "n", Owner: "alice", Scopes: apitoken.DefaultScopes, Expires: apitoken.Expiry30d,
		CreatedAt: t0.In(time.FixedZone("CET", 3600))}
	b, err := json.Marshal(wire.FromToken(&tok, t0, apitoken.DefaultScopes))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": "not_generated", "status_label": "Not Generated", "created_at": "2025-03-01T12:00:00Z",
		"generated_at": nil, "expires_at": nil, "last_used_at": nil, "last_used_ip": nil, "revoked_at": nil,
		"regenerate_to_apply": false}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (in %s)", k, got[k], v, b)
		}
	}
	if e, ok := got["effective_scopes"].([]any); !ok || len(e) != 0 {
		t.Errorf("effective_scopes = %v, want [] before generation (in %s)", got["effective_scopes"], b)
	}
}
