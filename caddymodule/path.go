package caddymodule

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/text/unicode/norm"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// requestRefusal says why a request is refused whatever its path and
// credential, with the reason logged, or "": a request that asks to switch
// protocols (once an upstream has switched, Caddy only copies bytes, and
// whatever the client sends next on that connection reaches the upstream
// unguarded: h2c smuggling; the report API has no WebSockets either), and
// one with no path to scope (CONNECT, HTTP/2's extended CONNECT among
// them, and the asterisk form, which default_scope would let through).
func requestRefusal(r *http.Request) (desc, reason string) {
	conn := r.Header["Connection"]
	if r.Header["Upgrade"] != nil || r.Header["Http2-Settings"] != nil ||
		httpguts.HeaderValuesContainsToken(conn, "Upgrade") || httpguts.HeaderValuesContainsToken(conn, "HTTP2-Settings") {
		return "requests that switch protocols (Upgrade, HTTP2-Settings) are refused", "protocol_switch"
	}
	if r.Method == http.MethodConnect || !strings.HasPrefix(r.URL.Path, "/") {
		return "the request has no path to scope (CONNECT, *)", "no_path"
	}
	return "", ""
}

// scopeFor returns the scope the request's path needs, 0 when none grants it.
func (h *Auth) scopeFor(r *http.Request) (apitoken.Scopes, string, error) {
	p := newRequestPath(r)
	for i := range h.rules {
		rule := &h.rules[i]
		ok, err := rule.paths.match(&p)
		if err != nil {
			return 0, "", err
		}
		if ok {
			return rule.scope, rule.name, nil
		}
	}
	return h.defaultScope, h.DefaultScope, nil
}

// unsafePath refuses raw paths that path normalisation between Caddy and
// the upstream could read differently, so that the scope decided here is
// the one the upstream serves: dot segments, also with a path parameter
// (Tomcat reads "..;" as "..") or as a Windows file name ("...", ".. "),
// encoded slashes, backslashes, dots or NULs, any double-encoded octet (an
// upstream may decode again: %252e, %2564), a backslash, and a path that is
// not UTF-8 (overlong forms of "." and "/") or that uses a dot look-alike a
// Unicode normaliser turns into one.
func unsafePath(r *http.Request) string {
	if desc := unsafeEscapes(r.URL.EscapedPath()); desc != "" {
		return desc
	}
	return unsafeSegments(r.URL.Path)
}

// unsafeEscapes refuses an encoded slash, backslash, dot or NUL in an
// escaped path, and any octet encoded twice: an upstream that decodes
// again reads /%2564ata as /data, another scope under default_scope. The
// path decoded once must hold no escape, however the %25 and its digits
// are spelt (%25%36%34 decodes to %64 too).
func unsafeEscapes(escaped string) string {
	if strings.IndexByte(escaped, '%') < 0 {
		return ""
	}
	lower := strings.ToLower(escaped)
	for _, bad := range []string{"%2f", "%5c", "%2e", "%00"} {
		if strings.Contains(lower, bad) {
			return "the path contains an encoded slash, backslash, dot or NUL"
		}
	}
	if hasEscape(laxUnescape(escaped)) {
		return "the path contains a double-encoded octet (%25 and two hex digits)"
	}
	return ""
}

// hasEscape reports whether s holds a %XX that a decoder would decode.
func hasEscape(s string) bool {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && isHex(s[i+1]) && isHex(s[i+2]) {
			return true
		}
	}
	return false
}

// unsafeSegments refuses a decoded path with a backslash, invalid UTF-8, or
// a dot segment in any of the spellings servers read as one.
func unsafeSegments(p string) string {
	if strings.IndexByte(p, '\\') >= 0 {
		return "the path contains a backslash"
	}
	nonASCII := false
	for i := 0; i < len(p) && !nonASCII; i++ {
		nonASCII = p[i] >= utf8.RuneSelf
	}
	if nonASCII {
		if !utf8.ValidString(p) {
			return "the path is not valid UTF-8"
		}
		p = dotLookalikes.Replace(p)
	}
	for rest := p; rest != ""; {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i] // a path parameter: /..;x/ is /../ to some servers
		}
		if seg != "" && strings.Trim(seg, ". ") == "" && strings.IndexByte(seg, '.') >= 0 {
			return "the path contains a dot segment (. or ..)"
		}
	}
	return ""
}

// pathRefusal says why the request's path is refused before anything else,
// or "": unsafePath, and a path that servers which drop path parameters or
// trailing dots, or fold Unicode forms, would read as a path of another
// scope (with default_scope, /data;x/sales would otherwise pass as the
// default scope and be served as /data/sales by Tomcat).
func (h *Auth) pathRefusal(r *http.Request) (string, error) {
	if desc := unsafePath(r); desc != "" {
		return desc, nil
	}
	v := serverView(r.URL.Path)
	if v == "" {
		return "", nil
	}
	// The forms folded may spell what the raw path may not (a fullwidth
	// backslash or solidus, a fullwidth percent sign before 2e).
	if desc := unsafeEscapes(v); desc != "" {
		return desc + " once Unicode-normalised", nil
	}
	if desc := unsafeSegments(v); desc != "" {
		return desc + " once Unicode-normalised", nil
	}
	need, _, err := h.scopeFor(r)
	if err != nil {
		return "", err
	}
	alt := *r
	u := *r.URL
	u.Path, u.RawPath = v, ""
	alt.URL = &u
	other, _, err := h.scopeFor(&alt)
	if err != nil {
		return "", err
	}
	if other != need {
		return "the path reads as another path to some servers (a ;parameter, a trailing dot or space, or a Unicode compatibility form)", nil
	}
	return "", nil
}

// serverView is the path as servers that normalise hard may read it: path
// parameters dropped from each segment (Tomcat, Jetty), trailing dots and
// spaces dropped (Windows), Unicode compatibility forms folded (NFKC); ""
// when they read it as it is. A plain ASCII path without those costs one
// scan.
func serverView(p string) string {
	needed := false
	for i := 0; i < len(p) && !needed; i++ {
		c := p[i]
		needed = c == ';' || c >= utf8.RuneSelf || (c == '.' || c == ' ') && (i+1 == len(p) || p[i+1] == '/')
	}
	if !needed {
		return ""
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			seg = seg[:j]
		}
		segs[i] = strings.TrimRight(seg, ". ")
	}
	v := norm.NFKC.String(strings.Join(segs, "/"))
	if v == p {
		return ""
	}
	return v
}

// dotLookalikes are characters that Unicode normalisation (NFKC) turns into
// a full stop.
var dotLookalikes = strings.NewReplacer("\uff0e", ".", "\u2024", ".", "\ufe52", ".")

// laxUnescape decodes every valid %XX of s and leaves anything else as it
// is, as a lenient upstream would.
func laxUnescape(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
