package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestApp_ValidateRefusesBadSettings(t *testing.T) {
	cases := map[string]App{
		"max_lifetime 2y":       {MaxLifetime: "2y"},
		"unknown driver":        {MaxLifetime: "1y", Storage: &Storage{Driver: "mysql", DSN: "x"}},
		"negative cache ttl":    {MaxLifetime: "1y", CacheTTL: -1},
		"admin with a slash":    {MaxLifetime: "1y", Admins: []string{"a/b"}},
		"admin with no name":    {MaxLifetime: "1y", Admins: []string{""}},
		"negative audit window": {MaxLifetime: "1y", AuditWindow: -1},
		"negative token limit":  {MaxLifetime: "1y", MaxTokensPerUser: -1},
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			if err := a.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Scope rules that would silently grant nothing, or less than written, are
// refused when the config loads, saying what to fix; the running config
// stays.
func TestAuth_ScopeRulesThatWouldMisleadAreRefusedAtLoad(t *testing.T) {
	e := newGuardEnv(t)
	for _, tc := range []struct{ rules, want string }{
		{"scope meta meta/*", `path "meta/*" must start with /`},
		{"scope meta /meta /meta/*\n\t\tscope report /data/* /meta", `path "/meta" is in scope rule #1 (meta) and in #2 (report)`},
		{"scope sales /data/sales", `scope rule #1: unknown scope "sales": the declared scopes are meta, report (declare it in the api_tokens scopes block)`},
		{"scope report sales /data/sales", `scope rule #1: unknown scope "sales": the declared scopes are meta, report`},
		{"scope meta /meta\n\t\tdefault_scope sales", `default_scope: unknown scope "sales": the declared scopes are meta, report`},
		{"scope meta /meta\n\t\tcors *", `cors "*": list each origin allowed`},
		{"scope meta /meta\n\t\tcors https://dash.example.com/app", `cors "https://dash.example.com/app" is not an origin`},
		{"scope meta /meta\n\t\tcors dash.example.com", `cors "dash.example.com" is not an origin`},
	} {
		caddyfile := fmt.Sprintf("{\n\tadmin localhost:%d\n\tpersist_config off\n\tapi_tokens {\n\t\tstorage sqlite %s\n\t\tsigning_key %s\n\t}\n}\nhttp://localhost:%d {\n\tapi_token_auth {\n\t\t%s\n\t}\n\trespond ok\n}\n",
			testAdminPort, e.db, testKey, testHTTPPort, tc.rules)
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/load", testAdminPort), strings.NewReader(caddyfile))
		req.Header.Set("Content-Type", "text/caddyfile")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body := strings.ReplaceAll(string(raw), `\"`, `"`) // the error is a JSON string
		if res.StatusCode == http.StatusOK || !strings.Contains(body, tc.want) {
			t.Errorf("%q: %d %s, want a refusal saying %q", tc.rules, res.StatusCode, body, tc.want)
		}
	}
	if res, _ := e.do("GET", "/meta"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after the refused loads the guard answers %d, want the running config's 401", res.StatusCode)
	}
}
