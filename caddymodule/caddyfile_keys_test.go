package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"

	caddyfile "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestCaddyfile_KeyAndFailLimitOptionsParseAndMirrorJSON(t *testing.T) {
	d := caddyfile.NewTestDispenser(`api_tokens {
		signing_alg EdDSA
		signing_key {env.SIGNING}
		verify_key  AAAA
		verify_key  BBBB
		fail_limit  20
	}`)
	var a App
	if err := a.UnmarshalCaddyfile(d); err != nil {
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
			err := new(App).UnmarshalCaddyfile(caddyfile.NewTestDispenser("api_tokens {\n" + c.input + "\n}"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}
