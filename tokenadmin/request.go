package tokenadmin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 64 << 10

// readBody applies the rules every request must pass before its action:
// a state-changing request must come from this site (no foreign Origin), and
// a body must be JSON and at most MaxBodyBytes. It returns the body, empty
// when the request has none.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if stateChanging(r.Method) {
		if err := checkOrigin(r); err != nil {
			return nil, err
		}
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	if r.ContentLength > 0 {
		if err := checkContentType(r); err != nil {
			return nil, err
		}
		if r.ContentLength > MaxBodyBytes {
			return nil, tooLarge()
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge()
	case err != nil:
		return nil, apitoken.Errorf(apitoken.ErrInvalid, "the request body could not be read completely")
	case len(body) == 0:
		return nil, nil
	}
	if r.ContentLength < 0 { // length unknown until read (chunked)
		if err := checkContentType(r); err != nil {
			return nil, err
		}
	}
	return body, nil
}

func tooLarge() error {
	return apitoken.Errorf(apitoken.ErrInvalid, "the request body is larger than %d KiB, the most accepted", MaxBodyBytes>>10)
}

func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

func checkContentType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	if ct == "" {
		ct = "none"
	}
	return &jsonhttp.Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Msg: fmt.Sprintf("the request body must be JSON sent as Content-Type: application/json (got %s)", ct)}
}

// checkOrigin refuses a request that a browser sent from another site: an
// Origin whose host is not this site's (an opaque "null" origin included), or a Sec-Fetch-Site other than same-origin or none.
func checkOrigin(r *http.Request) error {
	foreign := apitoken.Errorf(apitoken.ErrForbidden,
		"this request comes from another web site; changes are accepted only from this site or from clients that send no Origin header")
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return foreign
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return nil
	}
	if len(origins) > 1 {
		return foreign
	}
	// Over TLS the Origin must be https. Over plain http either scheme is
	// accepted, as Go's http.CrossOriginProtection does: behind a proxy that
	// terminates TLS, Caddy sees http while the browser sends an https Origin.
	u, err := url.Parse(origins[0])
	if err != nil {
		return foreign
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && (scheme != "http" || r.TLS != nil)) || u.Host == "" || u.Path != "" || u.RawQuery != "" ||
		u.User != nil || !sameHost(u.Host, r.Host, scheme) {
		return foreign
	}
	return nil
}

// sameHost compares host[:port] values, case-insensitively and with the
// scheme's default port made explicit.
func sameHost(a, b, scheme string) bool {
	return normalHost(a, scheme) == normalHost(b, scheme)
}

func normalHost(h, scheme string) string {
	h = strings.ToLower(h)
	if _, _, err := net.SplitHostPort(h); err != nil {
		if scheme == "https" {
			return net.JoinHostPort(strings.Trim(h, "[]"), "443")
		}
		return net.JoinHostPort(strings.Trim(h, "[]"), "80")
	}
	return h
}

// decodeJSON decodes a JSON object into dst, refusing unknown fields,
// values of the wrong type, malformed JSON and anything after the object.
// fields names what the route accepts, for the messages.
func decodeJSON(body []byte, dst any, fields string) error {
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return apitoken.Errorf(apitoken.ErrInvalid, "the request body must be a JSON object with %s", fields)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, fields)
	}
	if _, err := dec.Token(); err != io.EOF {
		return apitoken.Errorf(apitoken.ErrInvalid, "the request body has more after its JSON object (at byte %d); send one object only", dec.InputOffset())
	}
	return nil
}

func jsonError(err error, fields string) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var domain *apitoken.Error
	switch {
	case errors.As(err, &domain):
		return err
	case errors.As(err, &syntax):
		return apitoken.Errorf(apitoken.ErrInvalid, "the request body is not valid JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apitoken.Errorf(apitoken.ErrInvalid, "the request body ends in the middle of its JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return apitoken.Errorf(apitoken.ErrInvalid, "the request body must be a JSON object with %s", fields)
		}
		want, ok := fieldKinds[typ.Field]
		if !ok {
			want = "of another type"
		}
		return apitoken.Errorf(apitoken.ErrInvalid, "field %q must be %s, not a JSON %s", typ.Field, want, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return apitoken.Errorf(apitoken.ErrInvalid, "unknown field %s; this request accepts %s", name, fields)
	}
	return apitoken.Errorf(apitoken.ErrInvalid, "the request body is not valid JSON")
}

// fieldKinds says what each accepted JSON field holds, for messages.
var fieldKinds = map[string]string{
	"owner":       "a string",
	"name":        "a string",
	"expires":     `a string such as "30d"`,
	"scopes":      `a list of strings, such as ["meta", "report"]`,
	"allowed_ips": `a list of strings, such as ["198.51.100.0/24", "203.0.113.7"]`,
	"email":       "a string",
	"view_only":   "true or false",
	"disabled":    "true or false",
	"overlap":     `a string such as "1h"`,
}

// page reads the limit and cursor query parameters of a list.
func page(q url.Values) (apitoken.Page, error) {
	p := apitoken.Page{Limit: apitoken.DefaultPageLimit, Cursor: q.Get("cursor")}
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s[0])
		if err != nil || n < 1 || n > apitoken.MaxPageLimit || len(s) > 1 {
			return p, apitoken.Errorf(apitoken.ErrInvalid, "limit must be a whole number from 1 to %d", apitoken.MaxPageLimit)
		}
		p.Limit = n
	}
	return p, nil
}
