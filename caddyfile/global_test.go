package caddyfile

import (
	"encoding/json"
	"strings"
	"testing"

	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

func TestCaddyfile_BadInputSaysWhatToFix(t *testing.T) {
	cases := []struct {
		name, input, want string
		global            bool
	}{
		{"auth takes no arguments", `api_token_auth extra`, "wrong argument count", false},
		{"scope needs a path", `api_token_auth {
			scope meta
		}`, "scope takes one or more scopes and at least one path", false},
		{"revoke_unused_after without a period", `api_tokens {
			revoke_unused_after
		}`, "revoke_unused_after takes one period", true},
		{"manage_url without a URL", `api_tokens {
			manage_url
		}`, "manage_url takes one URL", true},
		{"scopes declares none", `api_tokens {
			scopes {
			}
		}`, "scopes declares no scope", true},
		{"a description in two words unquoted", `api_tokens {
			scopes {
				sales Read sales
			}
		}`, `scope sales: give its description as one quoted argument`, true},
		{"scopes twice", `api_tokens {
			scopes {
				sales
			}
			scopes {
				stock
			}
		}`, "scopes may be given only once", true},
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
		{"a group needs a role", `api_tokens {
			groups {
				report-users
			}
		}`, `groups: "report-users" needs one role after it`, true},
		{"a group gives a known role", `api_tokens {
			groups {
				report-users owner
			}
		}`, `groups: "report-users": unknown role "owner"`, true},
		{"a group is given once", `api_tokens {
			groups {
				g admin
				g api_tokens
			}
		}`, `groups: "g" is given twice`, true},
		{"groups is a block", `api_tokens {
			groups g admin
		}`, "groups takes a block", true},
		{"groups is not empty", `api_tokens {
			groups {
			}
		}`, "groups needs at least one line", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := cf.NewTestDispenser(c.input)
			var err error
			if c.global {
				err = unmarshalApp(d, new(caddymodule.App))
			} else {
				err = unmarshalAuth(d, new(caddymodule.Auth))
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestCaddyfile_KeyAndFailLimitOptionsParseAndMirrorJSON(t *testing.T) {
	d := cf.NewTestDispenser(`api_tokens {
		signing_alg EdDSA
		signing_key {env.SIGNING}
		verify_key  AAAA
		verify_key  BBBB
		fail_limit  20
	}`)
	var a caddymodule.App
	if err := unmarshalApp(d, &a); err != nil {
		t.Fatal(err)
	}
	if a.SigningAlg != "EdDSA" || len(a.SigningKeys) != 1 || a.SigningKeys[0] != "{env.SIGNING}" ||
		strings.Join(a.VerifyKeys, " ") != "AAAA BBBB" || a.FailLimit != 20 {
		t.Fatalf("parsed %+v", a)
	}
	b, _ := json.Marshal(a)
	for _, want := range []string{`"signing_alg":"EdDSA"`, `"verify_keys":["AAAA","BBBB"]`, `"fail_limit":20`, `"signing_keys":["{env.SIGNING}"]`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
}

func TestCaddyfile_BadKeyAndLimitOptionsSayWhatToFix(t *testing.T) {
	for _, c := range []struct{ name, input, want string }{
		{"an algorithm that is not offered", "signing_alg RS256", `signing algorithm "RS256" is not supported`},
		{"alg none", "signing_alg none", "not supported"},
		{"two algorithms", "signing_alg HS512 EdDSA", "wrong argument count"},
		{"a verify key without a key", "verify_key", "wrong argument count"},
		{"a negative fail_limit", "fail_limit -1", "fail_limit"},
		{"a fail_limit that is not a number", "fail_limit many", "fail_limit"},
		{"a fail_limit with a unit", "fail_limit 10/m", "fail_limit"},
		{"a token limit of 0", "max_tokens_per_user 0", "at least 1"},
		{"a token limit that is not a number", "max_tokens_per_user fifty", `max_tokens_per_user: "fifty"`},
		{"a token limit without a number", "max_tokens_per_user", "wrong argument count"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := unmarshalApp(cf.NewTestDispenser("api_tokens {\n"+c.input+"\n}"), new(caddymodule.App))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestCaddyfile_StoragePostgresKeepsThePlaceholderForProvision(t *testing.T) {
	d := cf.NewTestDispenser(`api_tokens {
		storage     postgres {env.APITOKENS_DATABASE_URL}
		signing_key {env.APITOKENS_SIGNING_KEY}
	}`)
	a := new(caddymodule.App)
	if err := unmarshalApp(d, a); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(a.Storage)
	if string(b) != `{"driver":"postgres","dsn":"{env.APITOKENS_DATABASE_URL}"}` {
		t.Errorf("storage = %s", b)
	}
}

// revoke_unused_after off is the default: nothing in the JSON.
func TestCaddyfile_RevokeUnusedAfterOffIsTheDefault(t *testing.T) {
	a := new(caddymodule.App)
	d := cf.NewTestDispenser(`api_tokens {
		revoke_unused_after off
	}`)
	if err := unmarshalApp(d, a); err != nil || a.RevokeUnusedAfter != "" {
		t.Errorf("off: %q, %v; want unset", a.RevokeUnusedAfter, err)
	}
	d = cf.NewTestDispenser(`api_tokens {
		revoke_unused_after 60d
	}`)
	if err := unmarshalApp(d, a); err != nil || a.RevokeUnusedAfter != "60d" {
		t.Errorf("60d: %q, %v", a.RevokeUnusedAfter, err)
	}
}
