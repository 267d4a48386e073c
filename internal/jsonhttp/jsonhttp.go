// Package jsonhttp answers JSON over HTTP the same way on every management
// surface of caddy-apitokens: the api_token_admin routes and the admin API
// behind the `caddy api-tokens` commands. It is the one place where the
// domain's sentinel errors become HTTP statuses and error codes.
package jsonhttp

import (
	"encoding/json"
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// Error is a refusal that belongs to HTTP rather than to the domain: no
// identity, a body that is not JSON, a method the route lacks.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Classify maps err to its HTTP status, error code and the message for the
// client. internal is the sentence for errors that are the server's fault,
// whose details only go to the log.
func Classify(err error, internal string) (status int, code, msg string) {
	var he *Error
	switch {
	case errors.As(err, &he):
		return he.Status, he.Code, he.Msg
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
	return http.StatusInternalServerError, "internal", internal
}

// Fail answers err as JSON. A 503 carries Retry-After; server-side failures
// are logged with the real error, while the client gets only internal.
func Fail(w http.ResponseWriter, r *http.Request, logger *zap.Logger, err error, internal string) {
	status, code, msg := Classify(err, internal)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	LogFailure(logger, r, status, err)
	Write(w, status, ErrorBody{Error: code, Message: msg})
}

// LogFailure logs a server-side failure (5xx) with the real error; the
// client's own mistakes are not logged.
func LogFailure(logger *zap.Logger, r *http.Request, status int, err error) {
	switch {
	case status == http.StatusServiceUnavailable:
		logger.Warn("request not served: token store unavailable", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	case status >= 500:
		logger.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
}

// Write answers v with status. The answer may carry a secret (a new JWT), so
// nothing may store it.
func Write(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only our own JSON types are written: a bug
		status = http.StatusInternalServerError
		body, _ = json.Marshal(ErrorBody{Error: "internal", Message: "the answer could not be encoded"})
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // the client is gone if this fails
}
