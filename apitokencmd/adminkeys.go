package apitokencmd

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

// The signing key routes of AdminAPI. Rotation and retirement change the
// keyring in Caddy's data directory and the running instance's signer at
// once; with keys named in the config they are refused (409): those rotate
// by editing the config and reloading.

// KeyList answers the key routes: the ids of the keys the running instance
// verifies with, the signing one first.
type KeyList struct {
	// Rotated is the id of the new signing key (POST /api-tokens/keys/rotate only).
	Rotated string   `json:"rotated,omitempty"`
	Retired string   `json:"retired,omitempty"`
	Signing string   `json:"signing"`
	Keys    []string `json:"keys"`
}

func keyList(app *caddymodule.App) KeyList {
	ids := app.SigningKeyIDs()
	kl := KeyList{Keys: ids}
	if len(ids) > 0 {
		kl.Signing = ids[0]
	}
	return kl
}

// GET /api-tokens/keys
func (a *AdminAPI) listKeys(w http.ResponseWriter, r *http.Request, op *operation) error {
	jsonhttp.Write(w, http.StatusOK, keyList(op.app))
	return nil
}

// POST /api-tokens/keys/rotate
func (a *AdminAPI) rotateKey(w http.ResponseWriter, r *http.Request, op *operation) error {
	kid, err := op.app.RotateSigningKey(r.Context())
	if err != nil {
		return keyError(err)
	}
	a.changed(r, op, "signing key rotated", zap.String("key_id", kid))
	kl := keyList(op.app)
	kl.Rotated = kid
	jsonhttp.Write(w, http.StatusOK, kl)
	return nil
}

// POST /api-tokens/keys/{kid}/retire
func (a *AdminAPI) retireKey(w http.ResponseWriter, r *http.Request, op *operation) error {
	kid := r.PathValue("kid")
	if err := op.app.RetireSigningKey(r.Context(), kid); err != nil {
		return keyError(err)
	}
	a.changed(r, op, "signing key retired", zap.String("key_id", kid))
	kl := keyList(op.app)
	kl.Retired = kid
	jsonhttp.Write(w, http.StatusOK, kl)
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
