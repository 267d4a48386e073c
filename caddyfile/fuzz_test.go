package caddyfile

import (
	"encoding/json"
	"testing"

	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

// FuzzCaddyfile: the api_tokens global option and the api_token_auth
// directive never panic on any input, and whatever they accept survives
// the trip to JSON and back (the JSON config mirrors the Caddyfile).
//
//	go test -run '^$' -fuzz FuzzCaddyfile -fuzztime 15s ./caddyfile/
func FuzzCaddyfile(f *testing.F) {
	for _, s := range []string{
		"api_tokens {\n\tissuer https://x\n\tsigning_alg EdDSA\n\tsigning_key {env.K}\n\tverify_key AAAA\n\tfail_limit 10\n}",
		"api_tokens {\n\tstorage sqlite /tmp/x.db\n\tadmins a b\n\tmax_lifetime 30d\n\taudit_window 1m\n\tcache_ttl 5s\n\tstale_if_error 0\n}",
		"api_tokens {\n\tfail_limit -1\n}",
		"api_tokens {\n\tsigning_alg\n}",
		"api_token_auth {\n\tapp \"Reports API\"\n\tscope meta /meta /meta/*\n\tscope report /data/*\n\tdefault_scope meta\n\tforward_authorization\n}",
		"api_token_auth {\n\tscope\n}",
		"api_token_auth {\n\tdefault_scope meta\n\trevoke_exposed off\n}",
		"api_token_auth {\n\trevoke_exposed maybe\n}",
		"api_token_auth {\n\tbasic_challenge off\n}",
		"api_token_auth x",
		"api_tokens {\n\t{\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := cf.Tokenize([]byte(input), "Caddyfile")
		if err != nil || len(tokens) == 0 {
			return
		}
		var a caddymodule.App
		if err := unmarshalApp(cf.NewDispenser(tokens), &a); err == nil {
			a.Validate()
			roundTrip(t, &a, new(caddymodule.App))
		}
		var h caddymodule.Auth
		if err := unmarshalAuth(cf.NewDispenser(tokens), &h); err == nil {
			roundTrip(t, &h, new(caddymodule.Auth))
		}
	})
}

func roundTrip[T any](t *testing.T, v, back *T) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if err := json.Unmarshal(b, back); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(b) {
		t.Fatalf("JSON changed on the way back: %s then %s", b, again)
	}
}
