package caddymodule

import (
	"encoding/base64"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// queryTokens reports whether the raw query carries a parameter that some
// server could read as access_token: its name compared case-insensitively,
// after decoding (at any depth), with & or ; between parameters, and with a
// PHP-style [] suffix; and returns the values of those parameters,
// decoded.
func queryTokens(q string) (values []string, found bool) {
	if strings.IndexByte(q, '%') < 0 && !strings.Contains(strings.ToLower(q), "access_token") {
		return nil, false // the common case: nothing encoded, and no such name
	}
	for rest := q; rest != ""; {
		var param string
		if i := strings.IndexAny(rest, "&;"); i >= 0 {
			param, rest = rest[:i], rest[i+1:]
		} else {
			param, rest = rest, ""
		}
		name, value, _ := strings.Cut(param, "=")
		name = strings.ToLower(strings.TrimSpace(decodeParam(name)))
		if name == "access_token" || strings.HasPrefix(name, "access_token[") {
			values, found = append(values, decodeParam(value)), true
		}
	}
	return values, found
}

// decodeParam decodes a query parameter's name or value as the most lenient
// server would: + as a space, then %XX again and again.
func decodeParam(s string) string {
	s = strings.ReplaceAll(s, "+", " ")
	for {
		next := laxUnescape(s)
		if next == s {
			return s
		}
		s = next
	}
}

// revokeExposed revokes the token of each JWT in r's query that can still
// open something (revokeLeaked), unless revoke_exposed is off. It runs
// before the 400 is answered, so the client learns the token is dead with
// it; a client that hangs up does not stop it.
func (h *Auth) revokeExposed(r *http.Request) {
	if h.RevokeExposed != nil && !*h.RevokeExposed {
		return
	}
	values, _ := queryTokens(r.URL.RawQuery)
	for _, raw := range values {
		id, err := h.app.revokeLeaked(r.Context(), raw, apitoken.RevokedExposedInURL, clientIP(r))
		switch {
		case err != nil:
			h.logger.Error("revoking an api token sent in a URL", zap.String("token_id", id), zap.Error(err))
		case id != "":
			h.logger.Warn("api token sent in a URL: revoked", zap.String("token_id", id), zap.String("client_ip", clientIP(r)))
		}
	}
}

// credential extracts the JWT: Authorization Bearer, or Basic with the JWT
// as the password. Two Authorization headers, a token in the query string
// (refuseTokenInURL) or a token over 8 KiB are refused.
func credential(r *http.Request) (string, *refusal) {
	if q := r.URL.RawQuery; q != "" {
		if _, found := queryTokens(q); found {
			return "", &refuseTokenInURL
		}
	}
	vals := r.Header["Authorization"]
	switch len(vals) {
	case 0:
		return "", &refuseNoCredential
	case 1:
	default:
		ref := badRequest("send exactly one Authorization header")
		return "", &ref
	}
	v := vals[0]
	if len(v) > apitoken.MaxJWTLen+64 {
		ref := badRequest("the Authorization header is too long")
		return "", &ref
	}
	scheme, rest, _ := strings.Cut(v, " ")
	var raw string
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		raw = strings.TrimSpace(rest)
	case strings.EqualFold(scheme, "Basic"):
		dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return "", &refuseInvalid
		}
		_, pass, ok := strings.Cut(string(dec), ":")
		if !ok {
			return "", &refuseInvalid
		}
		raw = pass
	default:
		return "", &refuseNoCredential
	}
	switch {
	case raw == "":
		return "", &refuseNoCredential
	case len(raw) > apitoken.MaxJWTLen:
		ref := badRequest("the token is longer than 8 KiB")
		return "", &ref
	}
	return raw, nil
}
