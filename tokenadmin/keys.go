package tokenadmin

import (
	"context"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

// The signing key routes, for the operator only. Rotation and retirement
// change the keyring in Caddy's data directory and the running instance's
// signer at once; with keys named in the config they are refused (409):
// those rotate by editing the config and reloading.

// keyring is the running api_tokens app's signing keys (*caddymodule.App).
type keyring interface {
	SigningKeyIDs() []string
	RotateSigningKey(ctx context.Context) (string, error)
	RetireSigningKey(ctx context.Context, kid string) error
}

// keyRequest does what every key route does first: refuse a caller who is
// not a system admin, and apply the request rules of a route without a body.
func (a *api) keyRequest(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := adminOnly(w, r, c); err != nil {
		return err
	}
	if a.keys == nil { // a mount without the app's keys: a wiring bug
		return errors.New("the signing keys are not reachable from this mount")
	}
	return nil
}

// keyList is kl, what a route did, with the keys in use now.
func (a *api) keyList(kl KeyList) KeyList {
	kl.Keys = a.keys.SigningKeyIDs()
	if len(kl.Keys) > 0 {
		kl.Signing = kl.Keys[0]
	}
	return kl
}

// GET /admin/keys
func (a *api) listKeys(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := a.keyRequest(w, r, c); err != nil {
		return err
	}
	jsonhttp.Write(w, http.StatusOK, a.keyList(KeyList{}))
	return nil
}

// POST /admin/keys/rotate
func (a *api) rotateKey(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := a.keyRequest(w, r, c); err != nil {
		return err
	}
	kid, err := a.keys.RotateSigningKey(r.Context())
	if err != nil {
		return keyError(err)
	}
	a.changed(r, c, "signing key rotated", zap.String("key_id", kid))
	jsonhttp.Write(w, http.StatusOK, a.keyList(KeyList{Rotated: kid}))
	return nil
}

// POST /admin/keys/{kid}/retire
func (a *api) retireKey(w http.ResponseWriter, r *http.Request, c apitoken.Caller) error {
	if err := a.keyRequest(w, r, c); err != nil {
		return err
	}
	kid := r.PathValue("kid")
	if err := a.keys.RetireSigningKey(r.Context(), kid); err != nil {
		return keyError(err)
	}
	a.changed(r, c, "signing key retired", zap.String("key_id", kid))
	jsonhttp.Write(w, http.StatusOK, a.keyList(KeyList{Retired: kid}))
	return nil
}

// keyError gives the app's refusal that the keys are in the config its
// status (409) and its message, which says how to rotate instead.
func keyError(err error) error {
	if errors.Is(err, caddymodule.ErrKeysConfigured) {
		return apitoken.Errorf(apitoken.ErrConflict, "%s", err.Error())
	}
	return err
}
