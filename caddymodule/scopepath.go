package caddymodule

import (
	"net/http"
	"path"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// pathMatcher is a scope rule's paths, compiled once: it answers as
// Caddy's path matcher (caddyhttp.MatchPath) does, with the request's path
// lower-cased and cleaned once per request instead of once per pattern, and
// each pattern's kind decided at load instead of on every request. Patterns
// with a placeholder or an escape sequence ({...}, %XX), which depend on
// the request, are left to Caddy's matcher.
type pathMatcher struct {
	patterns []pathPattern
	dynamic  caddyhttp.MatchPath // the patterns with { or %, if any
}

type patternKind uint8

const (
	matchAll       patternKind = iota // *
	matchSubstring                    // *text*
	matchSuffix                       // *text
	matchPrefix                       // text*
	matchExact                        // no wildcard at all
	matchGlob                         // anything else: path.Match
)

type pathPattern struct {
	kind patternKind
	// text is what is compared: the pattern, or its part between the
	// wildcards for substring, suffix and prefix.
	text string
	// keepSlashes: the pattern holds "//", so the path is cleaned without
	// merging doubled slashes.
	keepSlashes bool
}

// compilePaths compiles paths, which caddyhttp.MatchPath.Provision has
// lower-cased.
func compilePaths(paths caddyhttp.MatchPath) pathMatcher {
	var m pathMatcher
	for _, p := range paths {
		if strings.ContainsAny(p, "{%") {
			m.dynamic = append(m.dynamic, p)
			continue
		}
		pat := pathPattern{kind: matchGlob, text: p, keepSlashes: strings.Contains(p, "//")}
		stars := strings.Count(p, "*")
		switch {
		case p == "*":
			pat.kind = matchAll
		case stars == 2 && strings.HasPrefix(p, "*") && strings.HasSuffix(p, "*"):
			pat.kind, pat.text = matchSubstring, p[1:len(p)-1]
		case stars == 1 && strings.HasPrefix(p, "*"):
			pat.kind, pat.text = matchSuffix, p[1:]
		case stars == 1 && strings.HasSuffix(p, "*"):
			pat.kind, pat.text = matchPrefix, p[:len(p)-1]
		case !strings.ContainsAny(p, `*?[\`):
			pat.kind = matchExact
		}
		m.patterns = append(m.patterns, pat)
	}
	return m
}

// requestPath is the request's path in the forms the patterns compare,
// each made at most once per request.
type requestPath struct {
	r                *http.Request
	lower            string
	merged, unmerged string // cleaned, with doubled slashes merged or kept
}

func newRequestPath(r *http.Request) requestPath {
	// Caddy's path matcher is case-insensitive, to keep one resource from
	// answering to spellings another server would treat as others.
	return requestPath{r: r, lower: strings.ToLower(r.URL.Path)}
}

func (p *requestPath) cleaned(keepSlashes bool) string {
	if keepSlashes {
		if p.unmerged == "" {
			p.unmerged = caddyhttp.CleanPath(p.lower, false)
		}
		return p.unmerged
	}
	if p.merged == "" {
		p.merged = caddyhttp.CleanPath(p.lower, true)
	}
	return p.merged
}

// match reports whether one of the patterns matches the request's path.
func (m *pathMatcher) match(p *requestPath) (bool, error) {
	for i := range m.patterns {
		pat := &m.patterns[i]
		if pat.kind == matchAll {
			return true, nil
		}
		s := p.cleaned(pat.keepSlashes)
		var ok bool
		switch pat.kind {
		case matchSubstring:
			ok = strings.Contains(s, pat.text)
		case matchSuffix:
			ok = strings.HasSuffix(s, pat.text)
		case matchPrefix:
			ok = strings.HasPrefix(s, pat.text)
		case matchExact:
			ok = s == pat.text
		default:
			ok, _ = path.Match(pat.text, s) // a bad pattern matches nothing, as in Caddy
		}
		if ok {
			return true, nil
		}
	}
	if len(m.dynamic) > 0 {
		return m.dynamic.MatchWithError(p.r)
	}
	return false, nil
}
