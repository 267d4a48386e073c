package caddymodule

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Validate checks the configuration.
func (a *App) Validate() error {
	if _, err := apitoken.ParseExpiry(a.MaxLifetime); err != nil {
		return fmt.Errorf("api_tokens: max_lifetime: %s", apitoken.Message(err))
	}
	if a.Storage != nil {
		switch a.Storage.Driver {
		case "sqlite":
		case "postgres":
			if a.Storage.DSN == "" {
				return errors.New("api_tokens: storage postgres needs a DSN, e.g. `storage postgres {env.APITOKENS_DATABASE_URL}`")
			}
			if len(a.SigningKeys) == 0 && len(a.VerifyKeys) == 0 {
				return errors.New("api_tokens: storage postgres needs signing_key: every instance of a PostgreSQL deployment " +
					"must sign and verify with the same key, and a generated key would stay in one instance's data directory; " +
					"create one with `openssl rand -base64 64` and give it to every instance (signing_key {env.APITOKENS_SIGNING_KEY})")
			}
		default:
			return fmt.Errorf("api_tokens: storage: unknown driver %q (use sqlite or postgres)", a.Storage.Driver)
		}
	}
	for name, d := range map[string]caddy.Duration{"audit_window": a.AuditWindow, "cache_ttl": a.CacheTTL, "stale_if_error": a.StaleIfError} {
		if d < 0 {
			return fmt.Errorf("api_tokens: %s must not be negative", name)
		}
	}
	if a.SigningAlg != "" {
		if err := apitoken.CheckAlg(a.SigningAlg); err != nil {
			return fmt.Errorf("api_tokens: signing_alg: %s", apitoken.Message(err))
		}
	}
	if len(a.VerifyKeys) > 0 && a.SigningAlg != apitoken.AlgEdDSA {
		return fmt.Errorf("api_tokens: verify_key needs signing_alg %s; an HS512 key is a secret that both signs and verifies: give it as another signing_key", apitoken.AlgEdDSA)
	}
	if a.FailLimit < 0 {
		return fmt.Errorf("api_tokens: fail_limit must not be negative (0 turns it off)")
	}
	if a.MaxTokensPerUser < 0 {
		return fmt.Errorf("api_tokens: max_tokens_per_user must not be negative (0 or unset is the default, %d)", apitoken.DefaultMaxTokensPerUser)
	}
	for _, id := range a.Admins {
		if err := apitoken.CheckUserID(id); err != nil {
			return fmt.Errorf("api_tokens: admins: %q: %s", id, apitoken.Message(err))
		}
	}
	for g, r := range a.Groups {
		if n, err := apitoken.NormalizeGroups([]string{g}); err != nil || len(n) != 1 || n[0] != g {
			return fmt.Errorf("api_tokens: groups: %q is not a group name (printable text, no spaces at either end)", g)
		}
		if _, err := apitoken.ParseRole(r); err != nil {
			return fmt.Errorf("api_tokens: groups: %q: %s", g, apitoken.Message(err))
		}
	}
	if _, err := unusedAfter(a.RevokeUnusedAfter); err != nil {
		return fmt.Errorf("api_tokens: revoke_unused_after %q %v", a.RevokeUnusedAfter, err)
	}
	if a.ManageURL != "" {
		if err := checkManageURL(a.ManageURL); err != nil {
			return fmt.Errorf("api_tokens: manage_url %q %v", a.ManageURL, err)
		}
	}
	return a.validateNotify()
}
