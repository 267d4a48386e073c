package tokenadmin

import (
	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

// The JSON answers of the management routes, on both mounts. They are
// exported for the clients of the admin API (`caddy api-tokens`).
type (
	// ScopeList answers GET /scopes: the declared scopes, in the order of
	// the config.
	ScopeList struct {
		Scopes []Scope `json:"scopes"`
	}
	// Scope is one declared scope.
	Scope struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	// TokenList answers GET /tokens and GET /admin/tokens.
	TokenList struct {
		Tokens     []wire.Token `json:"tokens"`
		NextCursor *string      `json:"next_cursor"`
	}
	// LogList answers GET /tokens/{id}/logs and GET /admin/logs.
	LogList struct {
		Logs       []wire.Log `json:"logs"`
		NextCursor *string    `json:"next_cursor"`
	}
	// UserList answers GET /admin/users.
	UserList struct {
		Users      []wire.User `json:"users"`
		NextCursor *string     `json:"next_cursor"`
	}
	// NotificationList answers GET /admin/notifications.
	NotificationList struct {
		Notifications []wire.Notification `json:"notifications"`
		NextCursor    *string             `json:"next_cursor"`
	}
	// Generated answers a generation. Token, the JWT, is shown this once.
	Generated struct {
		Token     string     `json:"token"`
		ExpiresAt *wire.Time `json:"expires_at"`
		Details   wire.Token `json:"details"`
	}
	// KeyList answers the key routes: the ids of the keys the running
	// instance verifies with, the signing one first.
	KeyList struct {
		// Rotated is the id of the new signing key (POST /admin/keys/rotate only).
		Rotated string `json:"rotated,omitempty"`
		// Retired is the id of the key removed (POST /admin/keys/{kid}/retire only).
		Retired string   `json:"retired,omitempty"`
		Signing string   `json:"signing"`
		Keys    []string `json:"keys"`
	}
)

// The JSON bodies the routes accept. Anything else is an unknown field and
// refused.
type (
	// NewToken is the body of POST /tokens and of POST
	// /admin/users/{user}/tokens (a service account's token).
	NewToken struct {
		Name       string   `json:"name"`
		Expires    string   `json:"expires"`
		Scopes     []string `json:"scopes"`
		AllowedIPs []string `json:"allowed_ips,omitempty"`
	}
	// UserPatch is the body of PUT /admin/users/{user}; absent fields stay.
	// Kind is taken only when the user is created.
	UserPatch struct {
		Name     *string `json:"name,omitempty"`
		Email    *string `json:"email,omitempty"`
		Kind     *string `json:"kind,omitempty"`
		ViewOnly *bool   `json:"view_only,omitempty"`
		Disabled *bool   `json:"disabled,omitempty"`
	}
	patchBody struct {
		Name       *string   `json:"name"`
		Expires    *string   `json:"expires"`
		Scopes     *[]string `json:"scopes"`
		AllowedIPs *[]string `json:"allowed_ips"`
	}
	// GenerateOptions is the optional body of the generate routes: with
	// Overlap (e.g. "1h", at most "24h"), the previous JWT keeps working
	// that long.
	GenerateOptions struct {
		Overlap *string `json:"overlap,omitempty"`
	}
	emptyBody struct{}
)

// What each body holds, for the messages.
const (
	tokenFields = `"name", "expires", "scopes" and optionally "allowed_ips"`
	patchFields = `any of "name", "expires", "scopes" and "allowed_ips"`
	userFields  = `any of "name", "email", "kind", "view_only" and "disabled"`
	noFields    = "no fields"
	// generateFields is what the generate routes accept.
	generateFields = `"overlap" (optional)`
)

func cursor(next string) *string {
	if next == "" {
		return nil
	}
	return &next
}

func (a *api) tokenList(ts []apitoken.Token, next string) TokenList {
	now, declared := a.now(), a.svc.Scopes().All()
	out := TokenList{Tokens: make([]wire.Token, len(ts)), NextCursor: cursor(next)}
	for i := range ts {
		out.Tokens[i] = wire.FromToken(&ts[i], now, declared)
	}
	return out
}

// tokenJSON is t as the caller sees it now.
func (a *api) tokenJSON(t *apitoken.Token) wire.Token {
	return wire.FromToken(t, a.now(), a.svc.Scopes().All())
}

func logListOf(ls []apitoken.Log, next string) LogList {
	out := LogList{Logs: make([]wire.Log, len(ls)), NextCursor: cursor(next)}
	for i := range ls {
		out.Logs[i] = wire.FromLog(&ls[i])
	}
	return out
}
