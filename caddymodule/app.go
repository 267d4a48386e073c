// Package caddymodule is the Caddy glue of caddy-apitokens: the api_tokens
// app, which owns the token store, the caches, the audit writer and the
// signer, and the api_token_auth middleware that guards a report API.
package caddymodule

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/notify"
)

func init() {
	caddy.RegisterModule(App{})
}

// clock is the time of every app's cached state, authenticator, audit
// writer and fail limit: time.Now, but for the tests, which set theirs once
// before any app starts, and move it to see a cache age, a window or an
// overlap pass without waiting.
var clock = time.Now

// App is the api_tokens app: the state shared by every api_token_auth and
// api_token_admin handler of a Caddy instance.
type App struct {
	// Issuer is the iss claim of every JWT issued and the only one accepted.
	// Tokens of another deployment fail even for the same user name.
	// Default: "caddy-apitokens".
	Issuer string `json:"issuer,omitempty"`

	// Storage is where users, tokens and logs are kept. Default: SQLite in
	// Caddy's data directory.
	Storage *Storage `json:"storage,omitempty"`

	// SigningAlg is the JWT algorithm: HS512 (default; one shared secret
	// signs and verifies) or EdDSA (Ed25519; instances that only verify
	// hold the public key, never the signing secret). Only this algorithm
	// is accepted.
	SigningAlg string `json:"signing_alg,omitempty"`

	// SigningKeys are the keys that sign, base64-encoded: for HS512 raw
	// HMAC keys of at least 64 bytes decoded; for EdDSA Ed25519 private
	// keys (32-byte seed, 64-byte key or PKCS #8 DER). The first signs; all
	// of them verify (rotation by reload). Placeholders such as
	// {env.APITOKENS_SIGNING_KEY} are replaced. Without signing and verify
	// keys, keys are generated into a 0600 keyring file in Caddy's data
	// directory (see RotateSigningKey).
	SigningKeys []string `json:"signing_keys,omitempty"`

	// VerifyKeys (EdDSA only) are Ed25519 public keys, base64 (32 bytes or
	// DER SubjectPublicKeyInfo), that verify but never sign. An instance
	// with verify keys and no signing key only verifies: generating a token
	// there is refused.
	VerifyKeys []string `json:"verify_keys,omitempty"`

	// FailLimit is the number of failed attempts per client IP (an IPv6
	// client by its /64) in any minute after which api_token_auth answers
	// 429 with Retry-After, before looking at the request. Requests
	// without any credential do not count; a success does not reset the
	// count. 0 (default) turns it off.
	FailLimit int `json:"fail_limit,omitempty"`

	// Admins are system admins by configuration (user ids).
	Admins []string `json:"admins,omitempty"`

	// Groups maps identity-provider groups to the role their members get
	// (api_tokens or admin), e.g. {"report-users": "api_tokens"}. Roles
	// from groups follow the groups (api_token_admin's groups placeholder,
	// api_token_scim) and are kept apart from roles granted by hand.
	Groups map[string]string `json:"groups,omitempty"`

	// MaxLifetime is the longest expiry a token may have: one of 1d 7d 30d
	// 60d 90d 1y never. Default: 1y.
	MaxLifetime string `json:"max_lifetime,omitempty"`

	// MaxTokensPerUser is the most tokens that are not revoked a user may
	// own, service accounts included; creating one more is refused (409)
	// until one is revoked. Expired tokens count: they can be updated and
	// generated again. Default: 50.
	MaxTokensPerUser int `json:"max_tokens_per_user,omitempty"`

	// AuditWindow is the window in which identical authentication attempts
	// of a token share one log row. Default: 1m.
	AuditWindow caddy.Duration `json:"audit_window,omitempty"`

	// CacheTTL bounds how long a token's state is served from the cache
	// without asking the store. Changes made through this instance apply at
	// once, and those of other instances (or processes on the same SQLite
	// file) within 1s, from the store's change sequence: the TTL is only a
	// safety net. Default: 30s.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// StaleIfError serves cached state this long past CacheTTL (and past
	// the 1s for which the change sequence vouches for it) while the store
	// is down. A revocation made elsewhere meanwhile is not seen until the
	// store returns. Default 0: fail closed with 503.
	StaleIfError caddy.Duration `json:"stale_if_error,omitempty"`

	// Scopes declares the scopes tokens may be given, with what each grants
	// in words (shown by the web page, GET /scopes and the CLI). The rules
	// of api_token_auth may name only these. Names: 1 to 40 characters of
	// a-z 0-9 . _ : -. Default: meta and report.
	Scopes []ScopeDecl `json:"scopes,omitempty"`

	// RevokeUnusedAfter revokes a generated token not used for this long
	// (since its generation or last use): one of 14d 30d 60d 90d 1y or a
	// Caddy duration of at least 14 days; the owner is reminded 7 days
	// before (unused.go). Default: off.
	RevokeUnusedAfter string `json:"revoke_unused_after,omitempty"`

	// ManageURL is where token owners manage their tokens (the site of
	// api_token_admin, e.g. https://manage.example.com/): every email links
	// to it. An absolute http or https URL. Default: no link.
	ManageURL string `json:"manage_url,omitempty"`

	// Notify sends token owners an email, and webhooks a signed JSON POST,
	// on generation, on revocation and before expiry (notify.go).
	Notify *Notify `json:"notify,omitempty"`

	groupMap apitoken.GroupMap
	backend  *backend
	poolKey  string
	released bool // Cleanup gave back this config's hold on backend
	signer   *apitoken.Signer
	auth     *apitoken.Authenticator
	metrics  *metrics
	service  *apitoken.Service
	logger   *zap.Logger
	maxLife  apitoken.Expiry
	adminSet map[string]bool
	senders  []notify.Sender
	keyFile  string       // the keyring in Caddy's data directory; "" when the config names the keys
	limiter  *failLimiter // nil when fail_limit is 0
	unused   *unusedSweep // nil when revoke_unused_after is off
}

// ScopeDecl declares one scope.
type ScopeDecl struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "api_tokens",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision applies defaults, opens (or reuses) the store and audit writer,
// and builds the signer, the caches and the service.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	if a.Issuer == "" {
		a.Issuer = "caddy-apitokens"
	}
	if a.SigningAlg == "" {
		a.SigningAlg = apitoken.AlgHS512
	}
	if a.MaxLifetime == "" {
		a.MaxLifetime = string(apitoken.Expiry1y)
	}
	if a.MaxTokensPerUser == 0 {
		a.MaxTokensPerUser = apitoken.DefaultMaxTokensPerUser
	}
	if a.Storage == nil {
		a.Storage = &Storage{Driver: "sqlite"}
	}
	if a.Storage.Driver == "sqlite" && a.Storage.DSN == "" {
		a.Storage.DSN = filepath.Join(caddy.AppDataDir(), "apitokens", "apitokens.db")
	}
	if err := a.Validate(); err != nil {
		return err
	}
	a.Storage.dsn = caddy.NewReplacer().ReplaceKnown(a.Storage.DSN, "")
	if strings.TrimSpace(a.Storage.dsn) == "" {
		return fmt.Errorf("api_tokens: storage %s: %q is empty once its placeholders are replaced (is the environment variable set?)",
			a.Storage.Driver, a.Storage.DSN)
	}
	defs := make([]apitoken.ScopeDef, len(a.Scopes))
	for i, d := range a.Scopes {
		defs[i] = apitoken.ScopeDef{Name: d.Name, Description: d.Description}
	}
	scopes, err := apitoken.NewScopeCatalog(defs)
	if err != nil {
		return fmt.Errorf("api_tokens: scopes: %w", err)
	}
	a.maxLife = apitoken.Expiry(a.MaxLifetime)
	a.adminSet = make(map[string]bool, len(a.Admins))
	for _, id := range a.Admins {
		a.adminSet[id] = true
	}
	a.groupMap = make(apitoken.GroupMap, len(a.Groups))
	for g, r := range a.Groups {
		a.groupMap[g] = apitoken.Role(r)
	}

	keys, err := a.loadKeys()
	if err != nil {
		return err
	}
	if a.signer, err = apitoken.NewSigner(a.Issuer, keys, nil); err != nil {
		return err
	}
	if a.FailLimit > 0 {
		a.limiter = newFailLimiter(a.FailLimit, time.Minute, maxTrackedClients, clock)
	}

	a.poolKey = a.Storage.Driver + ":" + a.Storage.dsn
	val, _, err := backends.LoadOrNew(a.poolKey, func() (caddy.Destructor, error) {
		return openBackend(ctx, a.Storage, a.logger, ctx.Slogger())
	})
	if err != nil {
		return err
	}
	a.backend = val.(*backend)
	a.backend.auditor.SetWindow(time.Duration(a.AuditWindow))

	// The token and user state is the backend's: a reload keeps what is
	// cached (a reload in the middle of a store outage must not turn
	// stale_if_error into a full outage).
	a.auth, err = apitoken.NewAuthenticator(apitoken.AuthConfig{
		Signer:       a.signer,
		State:        a.backend.state,
		CacheTTL:     time.Duration(a.CacheTTL),
		StaleIfError: time.Duration(a.StaleIfError),
		Now:          clock,
	})
	if err != nil {
		return err
	}
	if a.metrics, err = newMetrics(ctx, a.auth.JWTStats, a.backend); err != nil {
		return fmt.Errorf("api_tokens: registering metrics: %w", err)
	}
	if err := a.provisionNotify(); err != nil {
		return err
	}
	a.service = apitoken.NewService(apitoken.ServiceConfig{
		Store:       a.backend.store,
		Signer:      a.signer,
		MaxLifetime: a.maxLife,
		Scopes:      scopes,
		Admins:      a.adminSet,
		Groups:      a.groupMap,
		Changed: func(tokenID, userID string) {
			if tokenID != "" {
				a.auth.InvalidateToken(tokenID)
			}
			if userID != "" {
				a.auth.InvalidateUser(userID)
			}
		},
		MaxTokensPerUser: a.MaxTokensPerUser,
		Notify:           a.notifyDestinations(),
		Notified:         a.backend.notifier.Wake,
	})
	a.logger.Info("api tokens ready",
		zap.String("issuer", a.Issuer),
		zap.String("storage", a.Storage.Driver),
		zap.String("signing_alg", a.SigningAlg),
		zap.Bool("issues_tokens", a.signer.CanIssue()),
		zap.Strings("key_ids", a.signer.KeyIDs()),
		zap.Int("fail_limit", a.FailLimit))
	return nil
}

// Start implements caddy.App; the audit writer and the notification
// deliverer started with the backend, which delivers from now on to this
// config's destinations.
func (a *App) Start() error {
	a.startNotify()
	a.startUnusedSweep()
	return nil
}

// Stop implements caddy.App. Queued audit events are flushed when the last
// config using the backend is cleaned up, so a reload loses none.
func (a *App) Stop() error {
	a.stopUnusedSweep()
	return nil
}

// Cleanup releases this config's hold on the backend; the last one out
// flushes the audit queue and closes the store. Safe after a failed
// Provision and when called twice. The backend pointer stays: requests of
// this config may still be in flight during a reload and record through it
// (the new config holds the backend, so it is still open).
func (a *App) Cleanup() error {
	if a.backend == nil || a.released {
		return nil
	}
	a.released = true
	_, err := backends.Delete(a.poolKey)
	return err
}

// Service is the token lifecycle and user administration of this app.
func (a *App) Service() *apitoken.Service { return a.service }

// Authenticator checks JWTs and token state for the guard.
func (a *App) Authenticator() *apitoken.Authenticator { return a.auth }

// Auditor queues AUTHENTICATE logs.
func (a *App) Auditor() *apitoken.Auditor { return a.backend.auditor }

// app returns the api_tokens app of ctx, loading it with defaults if the
// config has none.
func app(ctx caddy.Context) (*App, error) {
	v, err := ctx.App("api_tokens")
	if err != nil {
		return nil, fmt.Errorf("loading api_tokens app: %w", err)
	}
	return v.(*App), nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
	_ caddy.Destructor   = (*backend)(nil)
)
