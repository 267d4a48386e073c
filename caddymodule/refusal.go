package caddymodule

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// refusal is an RFC 6750 answer.
type refusal struct {
	status int
	code   string // error of WWW-Authenticate and the body; "" for a bare challenge
	desc   string
	scope  string // the scope needed, for insufficient_scope
}

var (
	refuseNoCredential = refusal{status: http.StatusUnauthorized, desc: "an API token is required: send Authorization: Bearer <token>"}
	refuseInvalid      = refusal{status: http.StatusUnauthorized, code: "invalid_token", desc: "token is not valid"}
	refuseExpired      = refusal{status: http.StatusUnauthorized, code: "invalid_token", desc: "token expired"}
)

func badRequest(desc string) refusal {
	return refusal{status: http.StatusBadRequest, code: "invalid_request", desc: desc}
}

var refuseTokenInURL = badRequest("tokens in the query string are refused: send Authorization: Bearer <token>")

// appName is the guarded API's name: the configured app (the Caddyfile
// fills in the site's address), else the name of the server in Caddy's
// JSON config. Never the Host: the client chooses it (a site matches its
// host name whatever the port part says), and it is unbounded.
func (h *Auth) appName(r *http.Request) string {
	if h.App != "" {
		return h.App
	}
	if srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.Name() != "" {
		return srv.Name()
	}
	return "api_token_auth"
}

// record queues an AUTHENTICATE log for an attempt that named a token.
func (h *Auth) record(r *http.Request, tokenID, result, reason string) {
	if tokenID == "" {
		return
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	h.app.backend.auditor.Record(apitoken.AuthEvent{TokenID: tokenID, ActivityBy: h.appName(r), Result: result, Reason: reason,
		ClientIP: ip, UserAgent: r.UserAgent(), At: clock()})
}

// clientIP is Caddy's client IP of r (trusted_proxies aware).
func clientIP(r *http.Request) string {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	return ip
}

// reasonFailLimit is the reason logged for a request refused by fail_limit.
const reasonFailLimit = "fail_limit"

// refuseTooMany answers a client past fail_limit: 429 with Retry-After in
// whole seconds, and the JSON body of every refusal.
func (h *Auth) refuseTooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) error {
	secs := int((wait + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	return h.refuse(w, r, refusal{status: http.StatusTooManyRequests, code: "too_many_requests",
		desc: "too many failed attempts from this address; try again later"}, "", reasonFailLimit, nil)
}

// countsAsFailure reports whether a refusal is a failed attempt for
// fail_limit: a bad request or a credential that is not valid. A request
// without any credential is not one (clients such as .NET's send one
// first, to learn the scheme), nor a valid token lacking a scope, nor the
// store being down.
func countsAsFailure(ref refusal) bool {
	return ref.code != "" && (ref.status == http.StatusBadRequest || ref.status == http.StatusUnauthorized)
}

// refuse writes an RFC 6750 answer and logs the refusal (never the token).
func (h *Auth) refuse(w http.ResponseWriter, r *http.Request, ref refusal, tokenID, reason string, detail error) error {
	h.app.metrics.authenticated(apitoken.ResultFail, reason)
	if lim := h.app.limiter; lim != nil && countsAsFailure(ref) {
		ip := clientIP(r)
		if lim.fail(clientKey(ip)) {
			// Logged once, when the client reaches the limit; its refused
			// requests after that are logged at debug level only.
			h.logger.Warn("client reached fail_limit; refusing its requests for a while",
				zap.String("client_ip", ip), zap.Int("fail_limit", h.app.FailLimit))
		}
	}
	level := zapcore.InfoLevel
	if reason == "no_credential" || reason == reasonFailLimit {
		level = zapcore.DebugLevel
	}
	if ce := h.logger.Check(level, "api token refused"); ce != nil {
		ip := clientIP(r)
		fields := []zap.Field{zap.Int("status", ref.status), zap.String("reason", reason), zap.String("token_id", tokenID),
			zap.String("client_ip", ip), zap.String("path", clip(r.URL.Path))}
		if detail != nil {
			fields = append(fields, zap.String("detail", clip(detail.Error())))
		}
		ce.Write(fields...)
	}
	if ref.status == http.StatusUnauthorized || ref.code == "insufficient_scope" {
		realm := h.appName(r)
		w.Header().Set("WWW-Authenticate", challenge(realm, ref))
		if ref.code == "" && (h.BasicChallenge == nil || *h.BasicChallenge) {
			w.Header().Add("WWW-Authenticate", "Basic realm="+strconv.Quote(realm))
		}
	}
	code := ref.code
	if code == "" {
		code = "unauthorized" // RFC 6750 gives no error code when no credential came
	}
	return writeError(w, ref.status, code, ref.desc)
}

// writeError writes the JSON error body of RFC 6749 section 5.2, which the
// guard's refusals (RFC 6750) and api_token_revoke (RFC 7009) answer.
func writeError(w http.ResponseWriter, status int, code, desc string) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}

// maxLogString is the most of a client-supplied string that a log line
// holds, in bytes: a client must not write kilobytes per request.
const maxLogString = 256

// clip cuts s to maxLogString bytes for a log line, at the start of a
// rune, so a multi-byte letter is not split.
func clip(s string) string {
	if len(s) <= maxLogString {
		return s
	}
	for i := maxLogString; i > maxLogString-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:maxLogString] // not UTF-8 there anyway
}

// challenge builds the WWW-Authenticate value of RFC 6750.
func challenge(realm string, ref refusal) string {
	var b strings.Builder
	b.WriteString("Bearer realm=")
	b.WriteString(strconv.Quote(realm))
	if ref.code != "" {
		b.WriteString(", error=")
		b.WriteString(strconv.Quote(ref.code))
		b.WriteString(", error_description=")
		b.WriteString(strconv.Quote(ref.desc))
	}
	if ref.scope != "" {
		b.WriteString(", scope=")
		b.WriteString(strconv.Quote(ref.scope))
	}
	return b.String()
}
