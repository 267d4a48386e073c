package tokenadmin

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// The pages are tested in a real browser in ./browsertest; these tests
// check what the server answers, without one.

type pageResp struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) page(caller, method, path string, header ...string) pageResp {
	f.t.Helper()
	r := httptest.NewRequest(method, "http://manage.example.com"+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.api.serve(w, r, apitoken.Identity{ID: caller}, false)
	return pageResp{status: w.Code, header: w.Header(), body: w.Body.String()}
}

// wantPage checks the status and that the answer is HTML with the headers
// that keep the pages from being framed, sniffed, cached or given inline
// code.
func (p pageResp) wantPage(t *testing.T, status int) pageResp {
	t.Helper()
	if p.status != status {
		t.Fatalf("status %d, want %d: %s", p.status, status, p.body)
	}
	for k, v := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
	} {
		if got := p.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	return p
}

func TestUI_MyTokensPageOffersTheExpiriesThePolicyAllows(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		max      apitoken.Expiry
		options  string
		selected string
	}{
		{"", "1d 7d 30d 60d 90d 1y", "30d"},
		{apitoken.Expiry90d, "1d 7d 30d 60d 90d", "30d"},
		{apitoken.Expiry7d, "1d 7d", "7d"},
		{apitoken.ExpiryNever, "1d 7d 30d 60d 90d 1y never", "30d"},
	} {
		f.reconfigure(func(c *apitoken.ServiceConfig) { c.MaxLifetime = tc.max })
		p := f.page("alice", "GET", "/").wantPage(t, http.StatusOK)
		var got []string
		selected := ""
		expiries, _, _ := strings.Cut(p.body[strings.Index(p.body, `id="token-expires"`):], "</select>")
		for _, m := range regexp.MustCompile(`<option value="([^"]+)"( selected)?>`).FindAllStringSubmatch(expiries, -1) {
			got = append(got, m[1])
			if m[2] != "" {
				selected = m[1]
			}
		}
		if strings.Join(got, " ") != tc.options || selected != tc.selected {
			t.Errorf("max_lifetime %q: options %v with %q selected, want %s with %s", tc.max, got, selected, tc.options, tc.selected)
		}
	}
	p := f.page("alice", "GET", "/")
	for _, want := range []string{`<h1>My API Access Tokens</h1>`, `id="create"`, `data-user="alice"`, `<script type="module" src="./ui/assets/tokens.js">`} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(p.body, "ui/admin/") {
		t.Error("a user who is not an admin is shown the admin pages")
	}
}

func TestUI_PagesSayWhyTheCallerCannotUseThem(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name, caller, path string
		viaToken           bool
		status             int
		says               string
	}{
		{"a view-only user is told why there is nothing to manage", "carol", "/", false, 200, "view-only users cannot have API tokens"},
		{"a user without the token role is told to ask an admin", "dave", "/", false, 200, "ask a system admin to grant it"},
		{"a disabled user is refused", "erin", "/", false, 403, "Your account is disabled."},
		{"no identity", "", "/", false, 401, "Sign in"},
		{"an identity from a JWT", "alice", "/", true, 403, "API tokens cannot manage tokens"},
		{"the admin pages refuse those who are not admins", "alice", "/ui/admin/tokens", false, 403, "for system admins"},
		{"the users page too", "dave", "/ui/admin/users", false, 403, "for system admins"},
		{"an unknown page", "alice", "/ui/nowhere", false, 404, "There is no page here."},
		{"a page path with a trailing slash is no page", "root", "/ui/admin/tokens/", false, 404, "There is no page here."},
		{"an unknown asset", "alice", "/ui/assets/secret.txt", false, 404, "There is no such file."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://manage.example.com"+tc.path, nil)
			w := httptest.NewRecorder()
			f.api.serve(w, r, apitoken.Identity{ID: tc.caller}, tc.viaToken)
			p := pageResp{status: w.Code, header: w.Header(), body: w.Body.String()}.wantPage(t, tc.status)
			if !strings.Contains(p.body, tc.says) {
				t.Fatalf("the page does not say %q: %s", tc.says, p.body)
			}
			if tc.status == 200 && strings.Contains(p.body, `id="create"`) {
				t.Fatal("a user who cannot own tokens is offered to create one")
			}
		})
	}
}

func TestUI_AdminPagesAreForAdmins(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/ui/admin/tokens", "/ui/admin/users"} {
		p := f.page("root", "GET", path).wantPage(t, http.StatusOK)
		// Links and scripts are relative to the page, so the pages work
		// under a path prefix (handle_path) too.
		for _, want := range []string{`href="../../ui/assets/app.css"`, `data-root="../../"`, `href="../../"`, `href="../../ui/admin/users"`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("%s lacks %s", path, want)
			}
		}
	}
	// root is an admin without the token role: told so on My tokens, with
	// the admin pages in reach.
	p := f.page("root", "GET", "/").wantPage(t, http.StatusOK)
	if !strings.Contains(p.body, "api_tokens role") || !strings.Contains(p.body, `href="./ui/admin/tokens"`) {
		t.Fatalf("root's My tokens page: %s", p.body)
	}
}

func TestUI_PagesHaveNoInlineScriptOrStyle(t *testing.T) {
	f := newFixture(t)
	scripts := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	inline := regexp.MustCompile(`(?i)<style|\sstyle=|\son[a-z]+=|javascript:`)
	for _, path := range []string{"/", "/ui/admin/tokens", "/ui/admin/users", "/ui/nowhere"} {
		body := f.page("root", "GET", path).body
		for _, m := range scripts.FindAllStringSubmatch(body, -1) {
			if !strings.Contains(m[1], " src=") || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s has an inline script, which its Content-Security-Policy blocks: %s", path, m[0])
			}
		}
		if m := inline.FindString(body); m != "" {
			t.Errorf("%s has inline style or code, which its Content-Security-Policy blocks: %s", path, m)
		}
	}
	// The scripts build the page from text, never from HTML.
	for name, as := range assets {
		if strings.HasSuffix(name, ".js") && regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|localStorage|sessionStorage|console\.`).Match(as.body) {
			t.Errorf("%s uses HTML strings, storage or the console", name)
		}
	}
}

func TestUI_AssetsAreServedWithTheirTypeAndRevalidated(t *testing.T) {
	f := newFixture(t)
	for name, ct := range map[string]string{
		"app.css":     "text/css; charset=utf-8",
		"common.js":   "text/javascript; charset=utf-8",
		"tokens.js":   "text/javascript; charset=utf-8",
		"favicon.svg": "image/svg+xml",
	} {
		p := f.page("alice", "GET", "/ui/assets/"+name)
		if p.status != 200 || p.header.Get("Content-Type") != ct || p.header.Get("X-Content-Type-Options") != "nosniff" || len(p.body) == 0 {
			t.Fatalf("%s: %d %q %q", name, p.status, p.header.Get("Content-Type"), p.body)
		}
		etag := p.header.Get("ETag")
		if etag == "" || p.header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: ETag %q, Cache-Control %q", name, etag, p.header.Get("Cache-Control"))
		}
		if p := f.page("alice", "GET", "/ui/assets/"+name, "If-None-Match", etag); p.status != http.StatusNotModified {
			t.Fatalf("%s with its ETag: %d", name, p.status)
		}
	}
	// Assets are the same for everyone and hold no one's data: they are
	// served to whoever reached the handler, so even the error pages are
	// styled.
	if p := f.page("", "GET", "/ui/assets/app.css"); p.status != 200 {
		t.Fatalf("an asset without an identity: %d", p.status)
	}
}

func TestUI_PagesOnlyAnswerGETAndHEAD(t *testing.T) {
	f := newFixture(t)
	if p := f.page("alice", "HEAD", "/"); p.status != 200 || p.body != "" || p.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("HEAD /: %d %q", p.status, p.body)
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		for _, path := range []string{"/", "/ui/admin/tokens", "/ui/assets/app.css"} {
			r := f.do(req{caller: "root", method: method, path: path}).want(t, http.StatusMethodNotAllowed, "method_not_allowed")
			if r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: Allow %q", method, path, r.header.Get("Allow"))
			}
		}
	}
	// The JSON routes answer as before.
	f.do(req{caller: "alice", method: "GET", path: "/tokens"}).want(t, http.StatusOK, "")
	f.do(req{caller: "alice", method: "GET", path: "/admin"}).want(t, http.StatusNotFound, "not_found")
}

// api_url must be a report API's base URL: what the dialog puts in
// snippets cannot carry quotes, a user, a query or a fragment.
func TestUI_APIURLIsCheckedAtLoad(t *testing.T) {
	for in, want := range map[string]string{
		"":                              "",
		"https://reports.example.com":   "https://reports.example.com",
		"https://reports.example.com/":  "https://reports.example.com",
		"http://localhost:8080/api/v1/": "http://localhost:8080/api/v1",
	} {
		if got, err := checkAPIURL(in); err != nil || got != want {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"reports.example.com", "ftp://reports.example.com", "https://u:p@reports.example.com",
		"https://reports.example.com/?a=1", "https://reports.example.com/#x", `https://reports.example.com/"+x+"`, "https:///x"} {
		if _, err := checkAPIURL(in); err == nil || !strings.Contains(err.Error(), "api_url") {
			t.Errorf("%q accepted (%v)", in, err)
		}
	}
}
