package caddymodule

import (
	"strings"
	"testing"

	caddyfile "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfile_BadInputSaysWhatToFix(t *testing.T) {
	cases := []struct {
		name, input, want string
		global            bool
	}{
		{"auth takes no arguments", `api_token_auth extra`, "wrong argument count", false},
		{"scope needs a path", `api_token_auth {
			scope meta
		}`, "scope takes a scope and at least one path", false},
		{"unknown auth option", `api_token_auth {
			realm x
		}`, `unrecognized api_token_auth option "realm"`, false},
		{"forward_authorization takes no argument", `api_token_auth {
			forward_authorization yes
		}`, "wrong argument count", false},
		{"storage needs a location", `api_tokens {
			storage sqlite
		}`, "storage takes a driver and its location", true},
		{"bad duration", `api_tokens {
			cache_ttl soon
		}`, "cache_ttl", true},
		{"unknown global option", `api_tokens {
			signing_algorithm HS256
		}`, `unrecognized api_tokens option "signing_algorithm"`, true},
		{"admins needs names", `api_tokens {
			admins
		}`, "wrong argument count", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := caddyfile.NewTestDispenser(c.input)
			var err error
			if c.global {
				err = new(App).UnmarshalCaddyfile(d)
			} else {
				err = new(Auth).UnmarshalCaddyfile(d)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestCaddyfile_AuthParsesEveryOption(t *testing.T) {
	d := caddyfile.NewTestDispenser(`api_token_auth {
		app "Reports API"
		scope meta /meta /meta/*
		scope report /data/*
		default_scope meta
		forward_authorization
	}`)
	var h Auth
	if err := h.UnmarshalCaddyfile(d); err != nil {
		t.Fatal(err)
	}
	if h.App != "Reports API" || len(h.Scopes) != 2 || h.Scopes[0].Scope != "meta" || len(h.Scopes[0].Paths) != 2 ||
		h.Scopes[1].Paths[0] != "/data/*" || h.DefaultScope != "meta" || !h.ForwardAuthorization {
		t.Fatalf("parsed %+v", h)
	}
}

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
