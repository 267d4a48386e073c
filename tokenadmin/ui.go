package tokenadmin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
)

// The web pages are served by the same handler as the JSON routes, and
// their JavaScript calls those routes with fetch. They live at paths no JSON
// route can have: the JSON routes are all under /tokens and /admin, the
// pages at exactly / and under /ui/. So a client that speaks JSON gets the
// same answers as before, and a page path can never shadow a route.
const (
	pageMyTokens    = "/"
	pageAdminTokens = "/ui/admin/tokens"
	pageAdminUsers  = "/ui/admin/users"
	assetPrefix     = "/ui/assets/"
)

// isUIPath tells the paths that belong to the pages.
func isUIPath(p string) bool {
	return p == "/" || p == "/ui" || strings.HasPrefix(p, "/ui/")
}

// pageSecurityHeaders are set on every page and asset. The pages load
// scripts, styles and images only from this site, never inline, talk only
// to this site, cannot be framed, and send no Referer.
var pageSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
	"X-Frame-Options":              "DENY",
	"Referrer-Policy":              "no-referrer",
	"X-Content-Type-Options":       "nosniff",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

//go:embed ui
var uiFiles embed.FS

// uiPage is one HTML page: its template and who may see it.
type uiPage struct {
	tmpl  *template.Template
	title string
	admin bool // for system admins only
}

var (
	pages = map[string]uiPage{
		pageMyTokens:    {tmpl: parsePage("tokens.html"), title: "My API Access Tokens"},
		pageAdminTokens: {tmpl: parsePage("admin_tokens.html"), title: "All API Tokens", admin: true},
		pageAdminUsers:  {tmpl: parsePage("admin_users.html"), title: "Users and Roles", admin: true},
	}
	errorPage = parsePage("error.html")
	assets    = loadAssets()
)

func parsePage(name string) *template.Template {
	return template.Must(template.ParseFS(uiFiles, "ui/layout.html", "ui/"+name))
}

// asset is an embedded file with what is needed to serve it.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

func loadAssets() map[string]asset {
	out := map[string]asset{}
	err := fs.WalkDir(uiFiles, "ui/assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := uiFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // not left to the system's MIME table
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		out[strings.TrimPrefix(p, "ui/assets/")] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("reading embedded assets: " + err.Error())
	}
	return out
}

// expiryOption is one choice of the expiry select.
type expiryOption struct {
	Value    apitoken.Expiry
	Label    string
	Selected bool
}

var expiryLabels = map[apitoken.Expiry]string{
	apitoken.Expiry1d: "1 day", apitoken.Expiry7d: "7 days", apitoken.Expiry30d: "30 days",
	apitoken.Expiry60d: "60 days", apitoken.Expiry90d: "90 days", apitoken.Expiry1y: "1 year",
	apitoken.ExpiryNever: "Never",
}

// pageData is what a page template is given.
type pageData struct {
	Path  string
	Title string
	// Root is the way from the page to the handler's root as a relative URL
	// ("./" from /, "../../" from /ui/admin/tokens). Every link and fetch is
	// made relative to it, so the pages also work under handle_path.
	Root         string
	User         string
	Admin        bool
	OwnerProblem string // why the caller may not own tokens now; "" when they may
	Expiries     []expiryOption
	Longest      string
	Scopes       []apitoken.ScopeDef // the declared scopes, in the config's order
	APIURL       string              // api_url, for the "token generated" dialog
	Status       int                 // error page only
	Message      string              // error page only
}

// rootFrom is the relative URL of the root from the page at p.
func rootFrom(p string) string {
	n := strings.Count(p, "/") - 1
	if n <= 0 {
		return "./"
	}
	return strings.Repeat("../", n)
}

// serveUI answers a request for a page or an asset.
func (a *api) serveUI(w http.ResponseWriter, r *http.Request, id apitoken.Identity, viaToken bool) {
	h := w.Header()
	for k, v := range pageSecurityHeaders {
		h.Set(k, v)
	}
	p := r.URL.Path
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		a.fail(w, r, &jsonhttp.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Msg: r.Method + " is not allowed here; use GET, HEAD"})
		return
	}
	// Assets hold no data of anyone's; they are served to whoever reached
	// the handler, so the error pages can be styled too.
	if name, ok := strings.CutPrefix(p, assetPrefix); ok {
		a.serveAsset(w, r, name)
		return
	}
	h.Set("Cache-Control", "no-store")
	pg, ok := pages[p]
	if !ok || path.Clean(p) != p {
		a.pageError(w, r, http.StatusNotFound, "There is no page here.")
		return
	}
	switch {
	case id.ID == "":
		a.pageError(w, r, http.StatusUnauthorized, "Sign in to manage API tokens. This site did not ask you to sign in: "+
			"it has no authentication in front of these pages. Tell the administrator.")
		return
	case viaToken:
		a.pageError(w, r, http.StatusForbidden, "API tokens cannot manage tokens; sign in with your own account instead.")
		return
	}
	c, err := a.svc.SignIn(r.Context(), id)
	if err != nil {
		status, _, msg := jsonhttp.Classify(err, a.at.internal)
		if status == http.StatusServiceUnavailable {
			h.Set("Retry-After", "1")
		}
		jsonhttp.LogFailure(a.logger, r, status, err)
		a.pageError(w, r, status, sentence(msg))
		return
	}
	if pg.admin && !c.Admin {
		a.pageError(w, r, http.StatusForbidden, "This page is for system admins.")
		return
	}
	d := pageData{Path: p, Title: pg.title, Root: rootFrom(p), User: c.ID, Admin: c.Admin, APIURL: a.apiURL,
		Scopes: a.svc.Scopes().Defs()}
	if err := c.CheckOwner(); err != nil {
		d.OwnerProblem = sentence(apitoken.Message(err))
	}
	allowed := a.svc.AllowedExpiries()
	for _, e := range allowed {
		d.Expiries = append(d.Expiries, expiryOption{Value: e, Label: expiryLabels[e]})
	}
	if n := len(d.Expiries); n > 0 {
		d.Longest = d.Expiries[n-1].Label
		def := n - 1 // 30 days, or the longest allowed when that is shorter
		for i, e := range allowed {
			if e == apitoken.Expiry30d {
				def = i
			}
		}
		d.Expiries[def].Selected = true
	}
	a.render(w, r, pg.tmpl, http.StatusOK, d)
}

// pageError answers with the error page.
func (a *api) pageError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	a.render(w, r, errorPage, status, pageData{Path: r.URL.Path, Title: http.StatusText(status), Root: rootFrom(r.URL.Path), Status: status, Message: msg})
}

func (a *api) render(w http.ResponseWriter, r *http.Request, t *template.Template, status int, d pageData) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", d); err != nil { // a bug in a template
		a.logger.Error("rendering a page", zap.String("path", r.URL.Path), zap.Error(err))
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes()) // the client is gone if this fails
	}
}

// serveAsset answers an embedded asset. Browsers check with the ETag
// before they use a copy, so a new version is seen at once.
func (a *api) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	as, ok := assets[name]
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		a.pageError(w, r, http.StatusNotFound, "There is no such file.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", as.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", as.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(as.body))
}

// sentence makes a domain message read as a sentence on a page.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
