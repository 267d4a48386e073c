package caddyfile

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	// basic_auth and respond, which api_token_admin is ordered among.
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func TestCaddyfile_DirectiveTakesOnlyItsOptions(t *testing.T) {
	for _, tc := range []struct {
		input string
		ok    bool
	}{
		{"api_token_admin", true},
		{"api_token_admin {\n}", true},
		{"api_token_admin {\n\tuser {http.request.header.X-User}\n\temail {http.request.header.X-Email}\n}", true},
		{"api_token_admin now", false},
		{"api_token_admin {\n\tadmins root\n}", false},
		{"api_token_admin {\n\tuser\n}", false},
		{"api_token_admin {\n\tgroups a b\n}", false},
		{"api_token_admin {\n\tgroups {http.request.header.X-Authentik-Groups}\n\tgroups_separator |\n}", true},
		{"api_token_admin {\n\tname {a}\n\tname {b}\n}", false},
		{"api_token_admin {\n\tapi_url https://reports.example.com\n}", true},
		{"api_token_admin {\n\tapi_url\n}", false},
		{"api_token_admin {\n\tapi_url https://a.example https://b.example\n}", false},
	} {
		h := httpcaddyfile.Helper{Dispenser: cf.NewTestDispenser(tc.input)}
		handler, err := parseAdmin(h)
		if tc.ok && (err != nil || handler == nil) {
			t.Errorf("%q: %v", tc.input, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%q was accepted", tc.input)
		}
	}
}

func TestCaddyfile_DirectiveRunsBeforeRespond(t *testing.T) {
	input := `manage.example.com {
	respond "never reached"
	basic_auth {
		alice $2a$04$B1wN.bmuZ6e8m2DmbzVUVO4vQmwSgZNJ1Nl9PLVmsYgSXNQ8sPIEq
	}
	api_token_admin
}
`
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							Routes []struct {
								Handle []json.RawMessage `json:"handle"`
							} `json:"routes"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			for _, h := range r.Handle {
				for _, sub := range h.Routes {
					for _, hh := range sub.Handle {
						var m struct {
							Handler string `json:"handler"`
						}
						json.Unmarshal(hh, &m)
						order = append(order, m.Handler)
					}
				}
			}
		}
	}
	if got := strings.Join(order, " "); got != "authentication api_token_admin static_response" {
		t.Fatalf("handler order %q, want authentication, then api_token_admin, then respond", got)
	}
}
