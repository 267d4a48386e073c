package tokenadmin

import (
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// httpError is a refusal that belongs to HTTP rather than to the domain:
// no identity, a body that is not JSON, a method the route lacks.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// classify maps an error to its HTTP status, error code and the message for
// the client. It is the one place where sentinel errors become statuses.
func classify(err error) (status int, code, msg string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.code, he.msg
	case errors.Is(err, apitoken.ErrInvalid):
		return http.StatusBadRequest, "bad_request", apitoken.Message(err)
	case errors.Is(err, apitoken.ErrNotFound):
		return http.StatusNotFound, "not_found", apitoken.Message(err)
	case errors.Is(err, apitoken.ErrConflict):
		return http.StatusConflict, "conflict", apitoken.Message(err)
	case errors.Is(err, apitoken.ErrForbidden):
		return http.StatusForbidden, "forbidden", apitoken.Message(err)
	case errors.Is(err, apitoken.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable", "the token store is unavailable; try again shortly"
	}
	return http.StatusInternalServerError, "internal", "something went wrong on the server; try again, and tell the administrator if it persists"
}

// fail answers err. Server-side failures are logged with the real error;
// the client gets only a generic sentence.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := classify(err)
	switch {
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
		a.logger.Warn("token store unavailable", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	case status >= 500:
		a.logger.Error("management request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}

// writeJSON answers v with status. The answer may carry a secret (a new
// JWT), so nothing may store it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only our own JSON types are written: a bug
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{Error: "internal", Message: "the answer could not be encoded"})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the client is gone if this fails
}
