package caddymodule

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func init() {
	caddy.RegisterModule(SCIM{})
	// Entra ID sends booleans as strings ("True", "False").
	schema.SetAllowStringValues(true)
}

// SCIM is a SCIM 2.0 service provider (RFC 7643, RFC 7644) through which an
// identity provider (Microsoft Entra ID, Okta) pushes users and their group
// memberships into the api_tokens app: /Users, /Groups,
// /ServiceProviderConfig, /Schemas and /ResourceTypes, under a path that
// ends in /v2 (e.g. /scim/v2/Users) or with the prefix stripped
// (handle_path). It is terminal.
//
// A user's userName is their user id. active: false disables the user (their
// tokens stop at once, on every instance); DELETE disables them and revokes
// every token they own. A Group is known by its displayName, the name the
// api_tokens app's group map gives roles to.
//
// Put it on a path without Caddy authentication: it checks a bearer secret
// of its own, and answers 401 without detail to any other request.
type SCIM struct {
	// Bearer is the secret the identity provider sends as
	// "Authorization: Bearer <secret>", at least 32 characters; a
	// placeholder such as {env.APITOKENS_SCIM_TOKEN} is replaced at
	// provisioning. Required.
	Bearer string `json:"bearer,omitempty"`

	secret [sha256.Size]byte
	server scim.Server
	logger *zap.Logger
}

// MinSCIMBearerLen is the shortest bearer secret accepted.
const MinSCIMBearerLen = 32

// CaddyModule returns the Caddy module information.
func (SCIM) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.api_token_scim",
		New: func() caddy.Module { return new(SCIM) },
	}
}

// Provision reads the bearer secret and reaches the app's service.
func (h *SCIM) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	bearer := caddy.NewReplacer().ReplaceKnown(h.Bearer, "")
	if len(bearer) < MinSCIMBearerLen {
		return fmt.Errorf("api_token_scim: bearer must be a secret of at least %d characters (e.g. {env.APITOKENS_SCIM_TOKEN} set to `openssl rand -base64 32`); it is %d", MinSCIMBearerLen, len(bearer))
	}
	h.secret = sha256.Sum256([]byte(bearer))
	a, err := app(ctx)
	if err != nil {
		return err
	}
	svc := a.Service()
	if svc == nil {
		return errors.New("api_token_scim: the api_tokens app has no token service")
	}
	p := &scimProvider{svc: svc, logger: h.logger}
	h.server, err = scim.NewServer(&scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{
			MaxResults:       scimMaxResults,
			SupportFiltering: true,
			SupportPatch:     true,
			AuthenticationSchemes: []scim.AuthenticationScheme{{Type: scim.AuthenticationTypeOauthBearerToken,
				Name: "Bearer secret", Description: "The secret of api_token_scim's bearer option", Primary: true}},
		},
		ResourceTypes: []scim.ResourceType{
			{Name: "User", Endpoint: "/Users", Description: optionalString("People of the api_tokens app"),
				Schema: schema.CoreUserSchema(), Handler: scimUsers{p}},
			{Name: "Group", Endpoint: "/Groups", Description: optionalString("Identity-provider groups, mapped to roles"),
				Schema: schema.CoreGroupSchema(), Handler: scimGroups{p}},
		},
	})
	return err
}

// scimMaxResults is the most resources one list answer holds.
const scimMaxResults = 100

// scimMaxBody is the largest request body read.
const scimMaxBody = 1 << 20

// ServeHTTP checks the bearer secret and answers the SCIM request. It never
// calls next.
func (h *SCIM) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	// Answers name people and their groups: no cache keeps them.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], h.secret[:]) != 1 || !ok {
		w.Header().Set("Content-Type", "application/scim+json")
		w.Header().Set("WWW-Authenticate", `Bearer realm="scim"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401"}`))
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, scimMaxBody)
	// The library serves paths from /v2 on: drop what comes before it.
	if i := strings.Index(r.URL.Path, "/v2/"); i >= 0 {
		r.URL.Path = r.URL.Path[i:]
	} else if strings.HasSuffix(r.URL.Path, "/v2") {
		r.URL.Path = "/v2"
	}
	h.server.ServeHTTP(w, r)
	return nil
}

// scimProvider is what the Users and Groups handlers share.
type scimProvider struct {
	svc    *apitoken.Service
	logger *zap.Logger
}

// scimError is err as a SCIM error: what the caller can fix says what to
// fix; anything else is a 500 without detail, logged.
func (p *scimProvider) scimError(err error) error {
	switch {
	case errors.Is(err, apitoken.ErrNotFound):
		return scimerrors.ScimError{Status: http.StatusNotFound, Detail: apitoken.Message(err)}
	case errors.Is(err, apitoken.ErrConflict):
		return scimerrors.ScimError{Status: http.StatusConflict, ScimType: scimerrors.ScimTypeUniqueness, Detail: apitoken.Message(err)}
	case errors.Is(err, apitoken.ErrInvalid):
		return scimerrors.ScimError{Status: http.StatusBadRequest, ScimType: scimerrors.ScimTypeInvalidValue, Detail: apitoken.Message(err)}
	}
	var se scimerrors.ScimError
	if errors.As(err, &se) {
		return se
	}
	p.logger.Error("SCIM request failed", zap.Error(err))
	return scimerrors.ScimErrorInternal
}

// Interface guards
var (
	_ caddy.Provisioner           = (*SCIM)(nil)
	_ caddyhttp.MiddlewareHandler = (*SCIM)(nil)
)
