// Package apispec checks the management API's answers against its OpenAPI
// document (docs/openapi.json) with kin-openapi, so the document cannot
// drift from what the routes serve. Only _test.go files import it: an end-
// to-end test wraps its HTTP client's transport (Transport), or puts a
// checking proxy in front of Caddy's admin endpoint (Proxy).
package apispec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/caddy-apitokens/caddy-apitokens/docs"
)

// Doc is the OpenAPI document, loaded and checked once.
var Doc = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("loading docs/openapi.json: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("docs/openapi.json is not a valid OpenAPI document: %w", err)
	}
	return doc, nil
})

var router = sync.OnceValues(func() (routers.Router, error) {
	doc, err := Doc()
	if err != nil {
		return nil, err
	}
	return legacy.NewRouter(doc)
})

// SpecPath tells where a request's answer is described: the request's path
// (and query) as the document writes it, or false for a request that is not
// a management route (a page, a guarded report, Caddy's own admin routes).
type SpecPath func(r *http.Request) (string, bool)

// Transport is base (http.DefaultTransport when nil) that checks every
// answer whose request spec names against the document, failing t.
func Transport(t testing.TB, base http.RoundTripper, spec SpecPath) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{t: t, base: base, spec: spec}
}

// Site is the SpecPath of api_token_admin mounted at the root of a site,
// or under one of prefixes (handle_path): everything but the pages and
// paths under other.
func Site(prefixes []string, other ...string) SpecPath {
	return func(r *http.Request) (string, bool) {
		p := r.URL.Path
		for _, o := range other {
			if strings.HasPrefix(p, o) {
				return "", false
			}
		}
		for _, pre := range prefixes {
			if rest, ok := strings.CutPrefix(p, pre); ok && strings.HasPrefix(rest, "/") {
				p = rest
				break
			}
		}
		if p == "/" || p == "/ui" || strings.HasPrefix(p, "/ui/") {
			return "", false // the web pages
		}
		return withQuery(p, r), true
	}
}

// Operator is the SpecPath of the admin API on Caddy's admin endpoint:
// /api-tokens/x is the document's /admin/x, but for /api-tokens/scopes, the
// document's /scopes; Caddy's own routes are not checked.
func Operator(basePath string) SpecPath {
	return func(r *http.Request) (string, bool) {
		rest, ok := strings.CutPrefix(r.URL.Path, basePath)
		if !ok {
			return "", false
		}
		if rest == "scopes" {
			return withQuery("/scopes", r), true
		}
		return withQuery("/admin/"+rest, r), true
	}
}

func withQuery(p string, r *http.Request) string {
	if r.URL.RawQuery != "" {
		return p + "?" + r.URL.RawQuery
	}
	return p
}

// Proxy starts a reverse proxy to Caddy's admin endpoint at target
// (host:port) that checks each answer with Operator(basePath), and returns
// its address. It presents itself to the endpoint as target (Host and
// Origin), as the endpoint accepts only those.
func Proxy(t testing.TB, target, basePath string) string {
	u := &url.URL{Scheme: "http", Host: target}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = target
			if pr.Out.Header.Get("Origin") != "" {
				pr.Out.Header.Set("Origin", "http://"+target)
			}
		},
		Transport: Transport(t, nil, Operator(basePath)),
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type roundTripper struct {
	t    testing.TB
	base http.RoundTripper
	spec SpecPath
}

// CloseIdleConnections closes base's idle connections, as a client's
// CloseIdleConnections asks.
func (rt roundTripper) CloseIdleConnections() {
	if c, ok := rt.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := rt.base.RoundTrip(req)
	if err != nil || req.Method == http.MethodHead {
		return res, err
	}
	p, ok := rt.spec(req)
	if !ok {
		return res, nil
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	if err := Check(req.Method, p, res.StatusCode, res.Header, body); err != nil {
		rt.t.Errorf("the answer to %s %s is not as docs/openapi.json says: %v\n%s", req.Method, p, err, clip(body))
	}
	return res, nil
}

// Check checks one answer: its status is documented for the operation of
// method and path (with its query), and its headers and body match. A
// path or method the document does not have may only be answered with an
// error.
func Check(method, path string, status int, header http.Header, body []byte) error {
	r, err := router()
	if err != nil {
		return err
	}
	u, err := url.Parse(path) // the document's server is relative: the site

	if err != nil {
		return err
	}
	req := &http.Request{Method: method, URL: u, Header: http.Header{}}
	route, params, err := r.FindRoute(req)
	if err != nil {
		if status < 400 {
			return fmt.Errorf("answered %d, but the document has no such operation (%v)", status, err)
		}
		return checkError(body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// checkError checks an answer against the Error schema.
func checkError(body []byte) error {
	doc, err := Doc()
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("an error answer that is not JSON: %v", err)
	}
	return doc.Components.Schemas["Error"].Value.VisitJSON(v)
}

func clip(b []byte) string {
	if len(b) > 500 {
		return string(b[:500]) + "..."
	}
	return string(b)
}
