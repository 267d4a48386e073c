package caddymodule

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func init() {
	caddy.RegisterModule(Revoke{})
}

// Revoke is api_token_revoke, a token revocation endpoint (RFC 7009) for
// whoever finds a JWT of this deployment: a colleague, a secret scanner.
// A POST with the form body token=<JWT> revokes the JWT's token when the
// JWT can still open something (its signature is this deployment's and it
// is its token's current JWT): REVOKE log by "revocation endpoint" with
// the client IP, and the owner notified; the token's previous JWT, still
// in a regeneration's overlap, only ends that overlap (revokeLeaked). A JWT
// that is already dead (expired, superseded by a newer generation,
// revoked) revokes nothing: an old leaked JWT must not let whoever holds
// it kill the token's new one.
//
// Every well-formed request is answered 200 with an empty body, whatever
// the token was, no sooner than revokeMinAnswer after it arrived, so that
// neither the answer nor its timing tells a live JWT from garbage. Only a
// store that cannot be reached is told (503 with Retry-After, as RFC 7009
// says), so that the reporter tries again rather than believe the JWT
// dead. Other methods are 405, a request without a token or not a form is
// 400 invalid_request. Each client IP (Caddy's, trusted_proxies aware; an
// IPv6 client by its /64) may send revokeLimit requests a minute; more are
// 429 with Retry-After.
//
// It needs no configuration; put it on a path without Caddy
// authentication: it is terminal.
type Revoke struct {
	app     *App
	logger  *zap.Logger
	limiter *failLimiter
}

const (
	// revokeLimit is the most requests a client may send a minute.
	revokeLimit = 60
	// revokeMaxBody is the largest request body read: a JWT of at most
	// apitoken.MaxJWTLen, form-encoded, and a token_type_hint.
	revokeMaxBody = 2 * apitoken.MaxJWTLen
	// revokeMinAnswer is the earliest a well-formed request is answered:
	// longer than checking and revoking a token takes on a healthy store,
	// so every answer takes the same time.
	revokeMinAnswer = 250 * time.Millisecond
)

// CaddyModule returns the Caddy module information.
func (Revoke) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.api_token_revoke",
		New: func() caddy.Module { return new(Revoke) },
	}
}

// Provision reaches the api_tokens app and sets up the rate limit.
func (h *Revoke) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	var err error
	if h.app, err = app(ctx); err != nil {
		return err
	}
	h.limiter = newFailLimiter(revokeLimit, time.Minute, maxTrackedClients, clock)
	return nil
}

// ServeHTTP answers a revocation request. It never calls next.
func (h *Revoke) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	began := time.Now()
	ip := clientIP(r)
	if wait := h.limiter.take(clientKey(ip)); wait > 0 {
		h.logger.Debug("revocation request refused: too many from this client", zap.String("client_ip", ip))
		w.Header().Set("Retry-After", strconv.Itoa(max(int((wait+time.Second-1)/time.Second), 1)))
		return writeError(w, http.StatusTooManyRequests, "too_many_requests",
			"too many revocation requests from this address; try again later")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return writeError(w, http.StatusMethodNotAllowed, "invalid_request", "send the token with POST")
	}
	// A JWT sent in this URL is in logs now: its token is revoked as
	// exposed in a URL, as the guard does, and the request refused.
	inURL := urlTokens(r.URL.RawQuery)
	raws, by := inURL, apitoken.RevokedExposedInURL
	if len(inURL) == 0 {
		raw, msg := revokeForm(w, r)
		if msg != "" {
			return writeError(w, http.StatusBadRequest, "invalid_request", msg)
		}
		raws, by = []string{raw}, apitoken.RevokedByEndpoint
	}
	var failed error
	for _, raw := range raws {
		id, err := h.app.revokeLeaked(r.Context(), raw, by, ip)
		switch {
		case err != nil:
			failed = err
			h.logger.Error("revoking a reported api token", zap.String("by", by), zap.String("token_id", id),
				zap.String("client_ip", ip), zap.Error(err))
		case id != "":
			h.logger.Warn("reported api token revoked", zap.String("by", by), zap.String("token_id", id),
				zap.String("client_ip", ip))
		default:
			h.logger.Debug("revocation request: nothing to revoke", zap.String("client_ip", ip))
		}
	}
	// The same time for every answer, unless the client has gone.
	t := time.NewTimer(time.Until(began.Add(revokeMinAnswer)))
	select {
	case <-t.C:
	case <-r.Context().Done():
		t.Stop()
		return nil
	}
	switch {
	case failed != nil:
		w.Header().Set("Retry-After", "5")
		return writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
			"the token could not be checked; try again later")
	case len(inURL) > 0:
		return writeError(w, http.StatusBadRequest, "invalid_request",
			"send the token in the form body, never in the URL: logs keep URLs")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return nil
}

// urlTokens are the values of q's token parameters and of anything a
// server could read as access_token (queryTokens).
func urlTokens(q string) []string {
	if q == "" {
		return nil
	}
	values, _ := queryTokens(q)
	if form, err := url.ParseQuery(q); err == nil {
		values = append(values, form["token"]...)
	}
	return values
}

// revokeForm reads the token from r's body, a form of at most
// revokeMaxBody bytes; msg says what is wrong with a request that is not
// one. token_type_hint, and any other parameter, is ignored (RFC 7009
// section 2.1 lets the server do so).
func revokeForm(w http.ResponseWriter, r *http.Request) (raw, msg string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return "", "send the token as a form: Content-Type: application/x-www-form-urlencoded, body token=<JWT>"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, revokeMaxBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return "", "the request body is larger than " + strconv.Itoa(revokeMaxBody>>10) + " KiB, the most accepted"
	case err != nil:
		return "", "the request body could not be read completely"
	}
	form, err := url.ParseQuery(string(body))
	switch {
	case err != nil:
		return "", "the body is not a well-formed form (application/x-www-form-urlencoded)"
	case len(form["token"]) > 1:
		return "", "send the token parameter once"
	case form.Get("token") == "":
		return "", "the token parameter is missing: send token=<JWT>"
	}
	return form.Get("token"), ""
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Revoke)(nil)
	_ caddyhttp.MiddlewareHandler = (*Revoke)(nil)
)
