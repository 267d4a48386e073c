package apitokencmd

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/apispec"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"

	// api_token_auth, and Caddy's standard modules (respond, the Caddyfile
	// adapter).
	_ "github.com/caddy-apitokens/caddy-apitokens/caddyfile"
	_ "github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// Ports of this package's test Caddy (caddytesting's), and its admin
// endpoint.
var (
	testAdminPort, testHTTPPort = caddytesting.AdminPort, caddytesting.HTTPPort
	adminAddr                   = fmt.Sprintf("localhost:%d", testAdminPort)
)

func TestMain(m *testing.M) {
	os.Exit(caddytesting.MainBuildingCaddy(m))
}

// e2eConfig is a Caddy with the api_tokens app (root is a system admin by
// configuration) and a report API guarded by api_token_auth, to prove the
// JWTs the commands print work.
const e2eConfig = `{
	admin localhost:%[1]d
	http_port %[2]d
	skip_install_trust
	persist_config off
	api_tokens {
		storage     sqlite %[3]s
		signing_key %[4]s
		admins      root
		max_lifetime 90d
		scopes {
			meta   "List reports and their parameters"
			report "Read report data"
			sales  "Read the sales report only"
		}
	}
}
http://localhost:%[2]d {
	api_token_auth {
		app   "Reports API"
		scope meta   /meta /meta/*
		scope report sales /data/sales /data/sales/*
		scope report /data/*
	}
	respond "report for {http.auth.user.id}" 200
}
`

type env struct {
	*caddytesting.Env
	// addr is a proxy in front of the admin endpoint that checks every
	// answer of the admin API against docs/openapi.json.
	addr string
}

// newEnv loads a fresh config, with its own database, into the test Caddy.
func newEnv(t *testing.T) *env {
	t.Helper()
	return loadConfig(t, fmt.Sprintf(e2eConfig, testAdminPort, testHTTPPort, filepath.Join(t.TempDir(), "t.db"), apitoken.GenerateKeySecret()))
}

func loadConfig(t *testing.T, caddyfile string) *env {
	t.Helper()
	e := &env{Env: caddytesting.New(t)}
	e.Load(caddyfile)
	e.addr = apispec.Proxy(t, adminAddr, tokenadmin.BasePath)
	return e
}

// result is what a command did: its exit code and what it printed.
type result struct {
	t            testing.TB
	args         []string
	code         int
	stdout, errs string
}

// run runs `caddy api-tokens <args>` in this process, through the cobra
// command tree the registered command builds, against the test Caddy.
func (e *env) run(args ...string) result {
	e.T.Helper()
	return runCLI(e.T, append(args, "--address", e.addr)...)
}

// runCLI runs `caddy api-tokens <args>` in this process, as caddycmd's root
// command would (it silences usage).
func runCLI(t testing.TB, args ...string) result {
	t.Helper()
	c := new(cli)
	root := &cobra.Command{Use: "caddy", SilenceUsage: true}
	cmd := &cobra.Command{Use: "api-tokens"}
	c.setup(cmd)
	root.AddCommand(cmd)
	var stdout, stderr bytes.Buffer
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(append([]string{"api-tokens"}, args...))
	err := root.Execute()
	code := c.code
	if err != nil && code == ExitOK { // refused by cobra before any action ran
		code = ExitUsage
	}
	return result{t: t, args: args, code: code, stdout: stdout.String(), errs: stderr.String()}
}

// want checks the exit code and that standard error holds msg (when not
// "") as the error.
func (r result) want(code int, msg string) result {
	r.t.Helper()
	if r.code != code {
		r.t.Fatalf("api-tokens %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code, code, r.stdout, r.errs)
	}
	if msg != "" && (!strings.Contains(r.errs, "Error: ") || !strings.Contains(r.errs, msg)) {
		r.t.Fatalf("api-tokens %s: stderr %q, want the error %q", strings.Join(r.args, " "), r.errs, msg)
	}
	if code != ExitOK && code != ExitUsage && r.stdout != "" {
		r.t.Fatalf("api-tokens %s: failed (exit %d) but printed on stdout: %s", strings.Join(r.args, " "), code, r.stdout)
	}
	return r
}

// json decodes the --json output.
func (r result) json(v any) {
	r.t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		r.t.Fatalf("api-tokens %s: output is not the expected JSON: %v\n%s", strings.Join(r.args, " "), err, r.stdout)
	}
}

// object decodes the --json output into a map, to check its exact keys.
func (r result) object() map[string]any {
	r.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		r.t.Fatalf("api-tokens %s: output is not a JSON object: %v\n%s", strings.Join(r.args, " "), err, r.stdout)
	}
	return m
}

// rows splits a table into its lines, header first.
func (r result) rows() []string {
	return strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return fmt.Sprint(sortStrings(ks))
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// serviceAccount makes svc a service account holding the token role with one
// token, and returns the token's id.
func (e *env) serviceAccount(svc string) string {
	e.T.Helper()
	e.run("users", "set", svc, "--kind", "service").want(ExitOK, "")
	e.run("users", "grant-role", svc, "api_tokens").want(ExitOK, "")
	var tok wire.Token
	e.run("tokens", "create", "--owner", svc, "--name", "export", "--expires", "30d", "--scopes", "meta,report", "--json").want(ExitOK, "").json(&tok)
	return tok.ID
}

var jwtShape = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$`)

func TestCommands_AServiceAccountTokenFromCreationToRevocation(t *testing.T) {
	e := newEnv(t)

	// Users: create the service account and grant it the token role.
	r := e.run("users", "set", "svc-export", "--kind", "service", "--email", "ops@example.com").want(ExitOK, "")
	if rows := r.rows(); len(rows) != 2 || !strings.HasPrefix(rows[0], "USER ") ||
		!regexp.MustCompile(`^svc-export +service +ops@example\.com +- +no +no +\d{4}-`).MatchString(rows[1]) {
		t.Fatalf("users set table:\n%s", r.stdout)
	}
	r = e.run("users", "grant-role", "svc-export", "api_tokens").want(ExitOK, "")
	if !regexp.MustCompile(`\n` + `svc-export +service +ops@example\.com +api_tokens +no +no `).MatchString(r.stdout) {
		t.Fatalf("grant-role table:\n%s", r.stdout)
	}

	// Create a token for it: a table for people, with a hint on stderr.
	r = e.run("tokens", "create", "--owner", "svc-export", "--name", "nightly export", "--expires", "30d", "--scopes", "report").want(ExitOK, "")
	rows := r.rows()
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "ID ") || !strings.Contains(rows[1], "nightly export") ||
		!strings.Contains(rows[1], "Not Generated") || !strings.Contains(rows[1], "svc-export") {
		t.Fatalf("tokens create table:\n%s", r.stdout)
	}
	id := strings.Fields(rows[1])[0]
	if !strings.HasPrefix(id, "tok_") || !strings.Contains(r.errs, "caddy api-tokens tokens generate "+id) {
		t.Fatalf("token id %q, stderr %q", id, r.errs)
	}

	// Generate: the JWT alone on stdout, once; what it is on stderr.
	r = e.run("tokens", "generate", id).want(ExitOK, "")
	if !jwtShape.MatchString(r.stdout) {
		t.Fatalf("generate printed %q, want the JWT alone", r.stdout)
	}
	jwt := strings.TrimSpace(r.stdout)
	if strings.Contains(r.errs, jwt) || !strings.Contains(r.errs, "shown this once") || !strings.HasPrefix(r.errs, "Generated the JWT of token "+id) {
		t.Fatalf("generate stderr %q", r.errs)
	}
	// The JWT opens the report API as the service account, within its scope.
	if status, body := e.Get("/data/sales", jwt); status != 200 || body != "report for svc-export" {
		t.Fatalf("report with the printed JWT: %d %s", status, body)
	}
	if status, _ := e.Get("/meta", jwt); status != 403 {
		t.Fatalf("a path outside the token's scope: %d, want 403", status)
	}

	// Generating again replaces it at once.
	r = e.run("tokens", "generate", id, "--json").want(ExitOK, "")
	var g tokenadmin.Generated
	r.json(&g)
	if g.Token == "" || g.Token == jwt || g.ExpiresAt == nil || g.Details.ID != id || g.Details.Status != apitoken.StatusGeneratedInactive {
		t.Fatalf("generate --json: %s", r.stdout)
	}
	if m := r.object(); keys(m) != "[details expires_at token]" {
		t.Fatalf("generate --json keys %s", keys(m))
	}
	if status, _ := e.Get("/data/sales", jwt); status != 401 {
		t.Fatalf("superseded JWT: %d, want 401", status)
	}
	jwt = g.Token

	// --overlap keeps the previous JWT working that long; a bad one is
	// refused with what to give, and nothing is generated.
	e.run("tokens", "generate", id, "--overlap", "2d").want(ExitUsage, "at most 24h")
	if status, _ := e.Get("/data/sales", jwt); status != 200 {
		t.Fatalf("the JWT after a refused --overlap: %d, want 200", status)
	}
	r = e.run("tokens", "generate", id, "--overlap", "1h").want(ExitOK, "")
	next := strings.TrimSpace(r.stdout)
	if !jwtShape.MatchString(r.stdout) || !strings.Contains(r.errs, "The previous JWT keeps working until ") {
		t.Fatalf("generate --overlap 1h: stdout %q, stderr %q", r.stdout, r.errs)
	}
	for _, j := range []string{jwt, next} {
		if status, _ := e.Get("/data/sales", j); status != 200 {
			t.Fatalf("during the overlap: %d, want 200 for both JWTs", status)
		}
	}
	r = e.run("tokens", "list", "--owner", "svc-export", "--json").want(ExitOK, "")
	if !strings.Contains(r.stdout, `"previous_valid_until":"`) && !strings.Contains(r.stdout, `"previous_valid_until": "`) {
		t.Fatalf("the listed token has no previous_valid_until: %s", r.stdout)
	}
	r = e.run("tokens", "generate", id).want(ExitOK, "")
	if !strings.Contains(r.errs, "The previous JWT, if any, stopped at once.") {
		t.Fatalf("generate without --overlap: stderr %q", r.errs)
	}
	for _, j := range []string{jwt, next} {
		if status, _ := e.Get("/data/sales", j); status != 401 {
			t.Fatalf("after a generation without overlap: %d, want 401", status)
		}
	}
	jwt = strings.TrimSpace(r.stdout)
	if status, _ := e.Get("/data/sales", jwt); status != 200 {
		t.Fatalf("new JWT: %d", status)
	}

	// List: every user's tokens, or one owner's; the JSON of the management routes.
	r = e.run("tokens", "list", "--owner", "svc-export", "--json").want(ExitOK, "")
	var list tokenadmin.TokenList
	r.json(&list)
	if len(list.Tokens) != 1 || list.Tokens[0].ID != id || list.NextCursor != nil {
		t.Fatalf("tokens list --json: %s", r.stdout)
	}
	tok := r.object()["tokens"].([]any)[0].(map[string]any)
	if keys(tok) != "[allowed_ips created_at effective_scopes expires expires_at generated_at id last_used_at last_used_ip name owner previous_valid_until regenerate_to_apply revoked_at scopes status status_label]" {
		t.Fatalf("token JSON keys %s", keys(tok))
	}
	if r = e.run("tokens", "list", "--owner", "nobody").want(ExitOK, ""); r.stdout != "" || !strings.Contains(r.errs, "No tokens found.") {
		t.Fatalf("empty list: stdout %q stderr %q", r.stdout, r.errs)
	}

	// Revoke: the JWT stops working at once; revoking is final.
	r = e.run("tokens", "revoke", id).want(ExitOK, "")
	if !strings.Contains(r.stdout, "Revoked") {
		t.Fatalf("revoke table:\n%s", r.stdout)
	}
	if status, _ := e.Get("/data/sales", jwt); status != 401 {
		t.Fatalf("revoked JWT: %d, want 401", status)
	}
	e.run("tokens", "revoke", id).want(ExitRefused, `token "nightly export" is already revoked`)
	e.run("tokens", "generate", id).want(ExitRefused, "revoked")
	e.run("tokens", "generate", "tok_missing").want(ExitNotFound, `no token "tok_missing"`)

	// Logs: the token's history, made by the operator; its uses come within
	// two seconds.
	var logs tokenadmin.LogList
	deadline := time.Now().Add(3 * time.Second)
	for {
		logs = tokenadmin.LogList{}
		e.run("logs", "--token", id, "--json").want(ExitOK, "").json(&logs)
		if len(logs.Logs) > 0 && logs.Logs[len(logs.Logs)-1].Activity == apitoken.ActivityCreate && hasActivity(logs.Logs, apitoken.ActivityAuthenticate) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no AUTHENTICATE log after 3s: %+v", logs.Logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var made []string
	for _, l := range logs.Logs {
		if l.Activity != apitoken.ActivityAuthenticate {
			made = append(made, string(l.Activity)+" by "+l.ActivityBy)
		}
	}
	if got := strings.Join(made, ", "); got != "REVOKE by caddy/admin, GENERATE by caddy/admin, GENERATE by caddy/admin, GENERATE by caddy/admin, GENERATE by caddy/admin, CREATE by caddy/admin" {
		t.Fatalf("logs, newest first: %s", got)
	}
	r = e.run("logs", "--token", id, "--activity", "authenticate").want(ExitOK, "")
	if rows := r.rows(); len(rows) < 2 || !strings.HasPrefix(rows[0], "TIME ") || !strings.Contains(r.stdout, "AUTHENTICATE") ||
		strings.Contains(r.stdout, "GENERATE") || !strings.Contains(r.stdout, "Reports API") {
		t.Fatalf("logs --activity table:\n%s", r.stdout)
	}
}

func hasActivity(ls []wire.Log, a apitoken.Activity) bool {
	for _, l := range ls {
		if l.Activity == a {
			return true
		}
	}
	return false
}

func TestCommands_UsersAndRoles(t *testing.T) {
	e := newEnv(t)
	e.run("users", "set", "viewer", "--view-only").want(ExitOK, "")
	e.run("users", "grant-role", "viewer", "api_tokens").want(ExitRefused, `user "viewer" is view-only`)
	e.run("users", "grant", "carol", "admin").want(ExitOK, "")
	e.run("users", "grant-role", "carol", "owner").want(ExitUsage, `unknown role "owner"`)
	e.run("users", "remove-role", "nobody", "admin").want(ExitNotFound, `no user "nobody"`)
	e.run("users", "set", "bad", "--email", "not an address").want(ExitUsage, "is not a plain address")
	e.run("users", "set").want(ExitUsage, "accepts 1 arg(s), received 0")

	// --view-only=false undoes it; fields not given stay.
	r := e.run("users", "set", "viewer", "--view-only=false", "--json").want(ExitOK, "")
	var u wire.User
	r.json(&u)
	if u.ID != "viewer" || u.ViewOnly || u.Disabled || u.Email != "" {
		t.Fatalf("users set --view-only=false: %s", r.stdout)
	}
	e.run("users", "grant-role", "viewer", "api_tokens").want(ExitOK, "")
	r = e.run("users", "remove", "viewer", "api_tokens", "--json").want(ExitOK, "")
	r.json(&u)
	if len(u.Roles) != 0 {
		t.Fatalf("remove-role: %s", r.stdout)
	}
	if m := r.object(); keys(m) != "[created_at disabled email group_roles groups id kind last_seen_at name roles source view_only]" {
		t.Fatalf("user JSON keys %s", keys(m))
	}

	// The list, newest first, paged.
	var users tokenadmin.UserList
	e.run("users", "list", "--json").want(ExitOK, "").json(&users)
	var ids []string
	for _, u := range users.Users {
		ids = append(ids, u.ID)
	}
	if fmt.Sprint(ids) != "[carol viewer]" { // "bad" was refused, so not created
		t.Fatalf("users list: %v", ids)
	}
	r = e.run("users", "list", "--limit", "1").want(ExitOK, "")
	if rows := r.rows(); len(rows) != 2 || !strings.HasPrefix(rows[1], "carol ") {
		t.Fatalf("users list --limit 1:\n%s", r.stdout)
	}
	m := regexp.MustCompile(`More users: repeat with --cursor (\S+)`).FindStringSubmatch(r.errs)
	if m == nil {
		t.Fatalf("no next page pointed to: %q", r.errs)
	}
	r = e.run("users", "list", "--limit", "1", "--cursor", m[1]).want(ExitOK, "")
	if rows := r.rows(); len(rows) != 2 || !strings.HasPrefix(rows[1], "viewer ") {
		t.Fatalf("second page:\n%s", r.stdout)
	}
	e.run("users", "list", "--limit", "0").want(ExitUsage, "limit must be a whole number from 1 to 1000")
}

func TestCommands_CreateAppliesEveryRuleToTheOwner(t *testing.T) {
	e := newEnv(t)
	e.serviceAccount("svc")
	create := func(owner, name, expires, scopes string) result {
		return e.run("tokens", "create", "--owner", owner, "--name", name, "--expires", expires, "--scopes", scopes)
	}
	create("ghost", "n", "30d", "meta").want(ExitNotFound, `no user "ghost"`)
	e.run("users", "set", "plain", "--kind", "service").want(ExitOK, "")
	create("plain", "n", "30d", "meta").want(ExitRefused, `user "plain" does not have the api_tokens role`)
	e.run("users", "grant-role", "person", "api_tokens").want(ExitOK, "")
	create("person", "n", "30d", "meta").want(ExitRefused, `user "person" is a person`)
	create("svc", "EXPORT", "30d", "meta").want(ExitRefused, `user "svc" already has a token named "EXPORT"`)
	create("svc", "n", "1y", "meta").want(ExitUsage, "the longest allowed is 90d")
	create("svc", "n", "2d", "meta").want(ExitUsage, "2d")
	create("svc", "n", "30d", "admin").want(ExitUsage, `unknown scope "admin": the declared scopes are meta, report, sales`)
	e.run("tokens", "create", "--owner", "svc").want(ExitUsage, `required flag(s) "expires", "name", "scopes" not set`)
	e.run("tokens", "list", "--status", "bogus").want(ExitUsage, `unknown status "bogus"`)

	// A token for a user whose role is then removed cannot be generated.
	e.run("users", "grant-role", "plain", "api_tokens").want(ExitOK, "")
	var tok wire.Token
	create("plain", "n", "7d", "meta,report").want(ExitOK, "")
	r := e.run("tokens", "list", "--owner", "plain", "--status", "not_generated", "--json").want(ExitOK, "")
	var list tokenadmin.TokenList
	r.json(&list)
	if len(list.Tokens) != 1 {
		t.Fatalf("list --status: %s", r.stdout)
	}
	tok = list.Tokens[0]
	if fmt.Sprint(tok.Scopes) != "[meta report]" || tok.Expires != apitoken.Expiry7d {
		t.Fatalf("created %+v", tok)
	}
	e.run("users", "remove-role", "plain", "api_tokens").want(ExitOK, "")
	e.run("tokens", "generate", tok.ID).want(ExitRefused, `user "plain" does not have the api_tokens role`)
}

// `scopes` lists the declared scopes; a token of one of them opens what its
// rule grants.
func TestCommands_ScopesListsTheDeclaredScopes(t *testing.T) {
	e := newEnv(t)
	rows := e.run("scopes").want(ExitOK, "").rows()
	want := []string{"SCOPE   DESCRIPTION", "meta    List reports and their parameters", "report  Read report data", "sales   Read the sales report only"}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("scopes printed\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	var list tokenadmin.ScopeList
	e.run("scopes", "--json").want(ExitOK, "").json(&list)
	if len(list.Scopes) != 3 || list.Scopes[2] != (tokenadmin.Scope{Name: "sales", Description: "Read the sales report only"}) {
		t.Errorf("scopes --json: %+v", list)
	}
	e.serviceAccount("svc")
	var tok wire.Token
	e.run("tokens", "create", "--owner", "svc", "--name", "sales", "--expires", "30d", "--scopes", "sales", "--json").want(ExitOK, "").json(&tok)
	jwt := strings.TrimSpace(e.run("tokens", "generate", tok.ID).want(ExitOK, "").stdout)
	if code, body := e.Get("/data/sales", jwt); code != 200 {
		t.Errorf("the sales JWT on /data/sales: %d %s", code, body)
	}
	if code, _ := e.Get("/data/stock", jwt); code != 403 {
		t.Errorf("the sales JWT on /data/stock: %d, want 403", code)
	}
}

func TestCommands_AsRecordsTheActingAdmin(t *testing.T) {
	e := newEnv(t)
	id := e.serviceAccount("svc")
	e.run("users", "set", "alice").want(ExitOK, "")
	e.run("users", "grant-role", "gina", "admin").want(ExitOK, "")
	e.run("users", "grant-role", "dora", "admin").want(ExitOK, "")
	e.run("users", "set", "dora", "--disabled").want(ExitOK, "")

	e.run("tokens", "generate", id, "--as", "alice").want(ExitRefused, `--as "alice": not a system admin`)
	e.run("tokens", "generate", id, "--as", "dora").want(ExitRefused, `--as "dora": the user is disabled`)
	e.run("tokens", "generate", id, "--as", "nobody").want(ExitRefused, `--as "nobody": not a system admin`)
	e.run("tokens", "generate", id, "--as", "root").want(ExitOK, "") // an admin by configuration
	e.run("tokens", "revoke", id, "--as", "gina").want(ExitOK, "")   // an admin by role

	var logs tokenadmin.LogList
	e.run("logs", "--token", id, "--json").want(ExitOK, "").json(&logs)
	var made []string
	for _, l := range logs.Logs {
		made = append(made, string(l.Activity)+" by "+l.ActivityBy)
	}
	if got := strings.Join(made, ", "); got != "REVOKE by gina, GENERATE by root, CREATE by caddy/admin" {
		t.Fatalf("logs: %s", got)
	}
	// User and role changes are in the logs too, with who made them.
	var all tokenadmin.LogList
	e.run("logs", "--activity", "ROLE_GRANT", "--json").want(ExitOK, "").json(&all)
	if len(all.Logs) != 3 || all.Logs[0].ActivityBy != tokenadmin.Operator || str(all.Logs[0].User) != "dora" {
		t.Fatalf("ROLE_GRANT logs: %+v", all.Logs)
	}
}

func TestCommands_LogsFilters(t *testing.T) {
	e := newEnv(t)
	id := e.serviceAccount("svc")
	e.run("tokens", "generate", id).want(ExitOK, "")

	var logs tokenadmin.LogList
	e.run("logs", "--since", "1h", "--json").want(ExitOK, "").json(&logs)
	var acts []string
	for _, l := range logs.Logs {
		acts = append(acts, string(l.Activity))
	}
	if fmt.Sprint(acts) != "[GENERATE CREATE ROLE_GRANT USER_UPDATE]" { // USER_UPDATE: the service account made
		t.Fatalf("logs --since 1h: %v", acts)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if r := e.run("logs", "--since", future).want(ExitOK, ""); r.stdout != "" || !strings.Contains(r.errs, "No logs found.") {
		t.Fatalf("logs since the future: stdout %q stderr %q", r.stdout, r.errs)
	}
	r := e.run("logs", "--since", future, "--json").want(ExitOK, "")
	if strings.TrimSpace(r.stdout) != `{"logs":[],"next_cursor":null}` {
		t.Fatalf("empty logs --json: %s", r.stdout)
	}
	r = e.run("logs", "--limit", "1", "--json").want(ExitOK, "")
	logs = tokenadmin.LogList{}
	r.json(&logs)
	if len(logs.Logs) != 1 || logs.Logs[0].Activity != apitoken.ActivityGenerate || logs.NextCursor == nil {
		t.Fatalf("logs --limit 1: %s", r.stdout)
	}
	if l := r.object()["logs"].([]any)[0].(map[string]any); keys(l) != "[activity activity_by activity_on client_ip count id last_on reason result token_id token_name user_agent]" {
		t.Fatalf("log JSON keys %s", keys(l))
	}
	e.run("logs", "--activity", "DELETE").want(ExitUsage, `unknown activity "DELETE"`)
	e.run("logs", "--since", "last week").want(ExitUsage, `--since "last week"`)
}

func TestParseSince(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2025-01-31T09:00:00Z":      time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC),
		"2025-01-31T10:00:00+01:00": time.Date(2025, 1, 31, 9, 0, 0, 0, time.UTC),
		"90m":                       now.Add(-90 * time.Minute),
		"24h":                       now.Add(-24 * time.Hour),
		"7d":                        now.Add(-7 * 24 * time.Hour),
		"0s":                        now,
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "-1h", "7 d", "1.5d", "2025-01-31"} {
		if _, err := parseSince(in, now); err == nil {
			t.Errorf("parseSince(%q) accepted", in)
		}
	}
}

// deadAddress is a local address where nothing listens.
func deadAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestCommands_CaddyNotRunningIsExit4(t *testing.T) {
	addr := deadAddress(t)
	r := runCLI(t, "tokens", "list", "--address", addr).want(ExitUnreachable, "cannot reach Caddy's admin endpoint at "+addr+": is Caddy running?")
	if r.stdout != "" {
		t.Fatalf("stdout %q", r.stdout)
	}
	runCLI(t, "tokens", "list", "--address", "localhost:1-9").want(ExitUsage, `invalid admin address "localhost:1-9"`)
}

func TestCommands_ConfigFileNamesTheAdminEndpoint(t *testing.T) {
	newEnv(t)
	dir := t.TempDir()
	write := func(name, admin string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("{\n\tadmin "+admin+"\n}\n:8080 {\n\trespond ok\n}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	running := write("Caddyfile", adminAddr)
	runCLI(t, "users", "list", "--config", running, "--adapter", "caddyfile").want(ExitOK, "")
	dead := deadAddress(t)
	runCLI(t, "users", "list", "-c", write("dead.caddyfile", dead), "-a", "caddyfile").want(ExitUnreachable, "at "+dead+": is Caddy running?")
	// --address wins over the config file, as for Caddy's own commands.
	runCLI(t, "users", "list", "-c", write("dead2.caddyfile", dead), "-a", "caddyfile", "--address", adminAddr).want(ExitOK, "")
	runCLI(t, "users", "list", "-c", filepath.Join(dir, "missing"), "-a", "caddyfile").want(ExitUsage, "finding Caddy's admin endpoint")
}

func TestCommands_ACaddyWithoutTheAppIsExit5(t *testing.T) {
	loadConfig(t, fmt.Sprintf("{\n\tadmin localhost:%d\n\thttp_port %d\n\tpersist_config off\n}\nhttp://localhost:%d {\n\trespond ok\n}\n", testAdminPort, testHTTPPort, testHTTPPort))
	runCLI(t, "users", "list", "--address", adminAddr).want(ExitServer, "the running Caddy config has no api_tokens app")
}

// The admin API answers errors as the management routes do.
func TestAdminAPI_ErrorsAreJSONWithACodeAndAMessage(t *testing.T) {
	newEnv(t)
	for _, tc := range []struct {
		method, path, ctype, body string
		status                    int
		code                      string
	}{
		{"POST", "/api-tokens/users/svc/tokens", "application/json", `{"name":"n","expires":"30d","scopes":["meta"],"extra":1}`, 400, "bad_request"},
		{"POST", "/api-tokens/users/svc/tokens", "text/plain", `{"name":"n"}`, 415, "unsupported_media_type"},
		{"POST", "/api-tokens/users/svc/tokens", "application/json", ``, 400, "bad_request"},
		{"PUT", "/api-tokens/users/bob", "application/json", `{"email": 5}`, 400, "bad_request"},
		{"GET", "/api-tokens/nothing", "", ``, 404, "not_found"},
		// A known path with another method, as on api_token_admin (one route table).
		{"DELETE", "/api-tokens/tokens", "", ``, 405, "method_not_allowed"},
		{"POST", "/api-tokens/tokens/tok_nope/revoke", "", ``, 404, "not_found"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+adminAddr+tc.path, strings.NewReader(tc.body))
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var eb map[string]string
		if res.StatusCode != tc.status || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "no-store" ||
			json.Unmarshal(raw, &eb) != nil || len(eb) != 2 || eb["error"] != tc.code || eb["message"] == "" {
			t.Errorf("%s %s: %d %s %s, want %d with error %q and a message", tc.method, tc.path, res.StatusCode, res.Header, raw, tc.status, tc.code)
		}
	}
}

// buildCaddy builds cmd/caddy (Caddy with this plugin, as xcaddy would),
// once per test run.
func buildCaddy(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	return caddytesting.BuildCaddy(t)
}

// runBinary runs the built caddy with args.
func runBinary(t *testing.T, bin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running caddy %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return result{t: t, args: args, code: code, stdout: stdout.String(), errs: stderr.String()}
}

// The subcommands are registered with Caddy's command line, and Caddy's main
// exits with their codes.
func TestBinary_CaddyRunsTheCommandsWithTheirExitCodes(t *testing.T) {
	bin := buildCaddy(t)
	e := newEnv(t)
	caddy := func(args ...string) result {
		t.Helper()
		return runBinary(t, bin, args...)
	}

	if r := caddy("list-modules").want(ExitOK, ""); !strings.Contains(r.stdout, "admin.api.api_tokens") {
		t.Fatalf("list-modules does not list admin.api.api_tokens:\n%s", r.stdout)
	}
	if r := caddy("help").want(ExitOK, ""); !regexp.MustCompile(`\n\s+api-tokens\s+Manages API tokens`).MatchString(r.stdout) {
		t.Fatalf("caddy help does not list api-tokens:\n%s", r.stdout)
	}
	caddy("api-tokens", "users", "set", "svc", "--kind", "service", "--address", adminAddr).want(ExitOK, "")
	caddy("api-tokens", "users", "grant-role", "svc", "api_tokens", "--address", adminAddr).want(ExitOK, "")
	var tok wire.Token
	caddy("api-tokens", "tokens", "create", "--owner", "svc", "--name", "n", "--expires", "1d", "--scopes", "meta",
		"--json", "--address", adminAddr).want(ExitOK, "").json(&tok)
	r := caddy("api-tokens", "tokens", "generate", tok.ID, "--address", adminAddr).want(ExitOK, "")
	if !jwtShape.MatchString(r.stdout) {
		t.Fatalf("generate printed %q, want the JWT alone", r.stdout)
	}
	if status, body := e.Get("/meta", strings.TrimSpace(r.stdout)); status != 200 || body != "report for svc" {
		t.Fatalf("report with the JWT the binary printed: %d %s", status, body)
	}

	caddy("api-tokens", "tokens", "generate", "tok_missing", "--address", adminAddr).want(ExitNotFound, `no token "tok_missing"`)
	caddy("api-tokens", "tokens", "revoke", tok.ID, "--address", adminAddr).want(ExitOK, "")
	caddy("api-tokens", "tokens", "revoke", tok.ID, "--address", adminAddr).want(ExitRefused, "already revoked")
	dead := deadAddress(t)
	caddy("api-tokens", "tokens", "list", "--address", dead).want(ExitUnreachable, "cannot reach Caddy's admin endpoint at "+dead+": is Caddy running?")
	caddy("api-tokens", "logs", "--activity", "nope", "--address", adminAddr).want(ExitUsage, `unknown activity "nope"`)
	caddy("api-tokens", "tokens", "list", "--no-such-flag").want(ExitUsage, "unknown flag: --no-such-flag")
	caddy("api-tokens", "tokens", "frobnicate").want(ExitUsage, `unknown command "frobnicate"`)
}

// A Caddy whose admin endpoint is a unix socket, named in its Caddyfile: the
// commands find it with --config and reach it over the socket.
func TestBinary_AnAdminEndpointOnAUnixSocket(t *testing.T) {
	bin := buildCaddy(t)
	dir, err := os.MkdirTemp("", "sock") // short: a socket path has at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "admin.sock")
	conf := fmt.Sprintf("{\n\tadmin unix/%s\n\tpersist_config off\n\tapi_tokens {\n\t\tstorage sqlite %s\n\t}\n}\n", sock, filepath.Join(dir, "t.db"))
	p := caddytesting.StartProcess(t, "socket", conf)
	caddyfile := filepath.Join(p.Dir, "Caddyfile")
	// The admin endpoint listens before the config's apps have started:
	// ready is when the api_tokens app answers on it.
	overSocket := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	p.WaitReady(t, func() bool {
		res, err := overSocket.Get("http://127.0.0.1/api-tokens/users")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})

	runBinary(t, bin, "api-tokens", "users", "grant-role", "svc", "api_tokens", "--config", caddyfile, "--adapter", "caddyfile").want(ExitOK, "")
	r := runBinary(t, bin, "api-tokens", "users", "list", "--address", "unix/"+sock).want(ExitOK, "")
	if !regexp.MustCompile(`\nsvc +person +- +api_tokens `).MatchString(r.stdout) {
		t.Fatalf("users list over the socket:\n%s", r.stdout)
	}
}

// keyringConfig is e2eConfig without signing_key: the keys are kept in a
// keyring in Caddy's data directory, which the keys commands manage.
const keyringConfig = `{
	admin localhost:%[1]d
	http_port %[2]d
	skip_install_trust
	persist_config off
	api_tokens {
		storage sqlite %[3]s
		admins  root
	}
}
http://localhost:%[2]d {
	api_token_auth {
		scope meta /meta
	}
	respond "report for {http.auth.user.id}" 200
}
`

func TestCommands_KeysRotateAndRetire(t *testing.T) {
	e := loadConfig(t, fmt.Sprintf(keyringConfig, testAdminPort, testHTTPPort, filepath.Join(t.TempDir(), "t.db")))
	var before tokenadmin.KeyList
	e.run("keys", "list", "--json").want(ExitOK, "").json(&before)
	if len(before.Keys) == 0 || before.Signing != before.Keys[0] {
		t.Fatalf("keys list: %+v", before)
	}
	old := before.Signing
	tokA := e.serviceAccount("svc")
	jwtA := strings.TrimSpace(e.run("tokens", "generate", tokA).want(ExitOK, "").stdout)

	r := e.run("keys", "rotate").want(ExitOK, "")
	rows := r.rows()
	if len(rows) != len(before.Keys)+2 || !strings.HasPrefix(rows[0], "KEY ID") || !strings.HasSuffix(rows[1], "signs and verifies") ||
		!strings.HasPrefix(rows[2], old+" ") || !strings.HasSuffix(rows[2], "verifies") {
		t.Fatalf("keys rotate table:\n%s", r.stdout)
	}
	rotated := strings.Fields(rows[1])[0]
	if rotated == old || !strings.Contains(r.errs, "Key "+rotated+" signs from now on") {
		t.Fatalf("rotated to %q (from %q), stderr %q", rotated, old, r.errs)
	}

	// A JWT of the old key still works; new ones are signed with the new key.
	if status, _ := e.Get("/meta", jwtA); status != 200 {
		t.Fatalf("a JWT of the previous key after rotation: %d, want 200", status)
	}
	var tokB wire.Token
	e.run("tokens", "create", "--owner", "svc", "--name", "b", "--expires", "1d", "--scopes", "meta", "--json").want(ExitOK, "").json(&tokB)
	jwtB := strings.TrimSpace(e.run("tokens", "generate", tokB.ID).want(ExitOK, "").stdout)
	if kid := jwtKid(t, jwtB); kid != rotated {
		t.Fatalf("new JWT signed with key %q, want %q", kid, rotated)
	}

	// The signing key cannot be retired; the old one can, for good.
	e.run("keys", "retire", rotated).want(ExitRefused, "rotate to a new key first")
	var after tokenadmin.KeyList
	e.run("keys", "retire", old, "--json", "--as", "root").want(ExitOK, "").json(&after)
	if after.Retired != old || after.Signing != rotated || strings.Contains(fmt.Sprint(after.Keys), old) {
		t.Fatalf("keys retire --json: %+v", after)
	}
	if status, _ := e.Get("/meta", jwtA); status != 401 {
		t.Fatalf("a JWT of a retired key: %d, want 401", status)
	}
	if status, _ := e.Get("/meta", jwtB); status != 200 {
		t.Fatalf("a JWT of the signing key after a retirement: %d, want 200", status)
	}
	e.run("keys", "retire", old).want(ExitNotFound, old)
}

func TestCommands_KeysNamedInTheConfigAreNotRotatedHere(t *testing.T) {
	e := newEnv(t)
	var kl tokenadmin.KeyList
	e.run("keys", "list", "--json").want(ExitOK, "").json(&kl)
	if len(kl.Keys) != 1 || kl.Signing != kl.Keys[0] {
		t.Fatalf("keys list: %+v", kl)
	}
	e.run("keys", "rotate").want(ExitRefused, "rotate by putting a new signing_key first and reloading")
	e.run("keys", "retire", kl.Signing).want(ExitRefused, "signing keys are named in the config")
}

// jwtKid is the kid in a JWT's header.
func jwtKid(t *testing.T, jwt string) string {
	t.Helper()
	seg, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	var h struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("JWT header %q is not base64url JSON", seg)
	}
	return h.Kid
}

func TestCommands_CreateTakesAllowedIPsShowsThemAndTheGuardEnforcesThem(t *testing.T) {
	e := newEnv(t)
	e.serviceAccount("svc")
	e.run("tokens", "create", "--owner", "svc", "--name", "bad", "--expires", "30d", "--scopes", "meta",
		"--allowed-ips", "10.1.2.3/24").want(ExitUsage, "write the network 10.1.2.0/24")

	r := e.run("tokens", "create", "--owner", "svc", "--name", "office", "--expires", "30d", "--scopes", "meta",
		"--allowed-ips", "198.51.100.0/24,2001:db8::1").want(ExitOK, "")
	rows := r.rows()
	if len(rows) != 2 || !strings.HasSuffix(rows[0], " ALLOWED IPS") || !strings.HasSuffix(rows[1], " 198.51.100.0/24,2001:db8::1/128") {
		t.Fatalf("tokens create table:\n%s", r.stdout)
	}
	office := strings.Fields(rows[1])[0]
	var loop wire.Token
	e.run("tokens", "create", "--owner", "svc", "--name", "loopback", "--expires", "30d", "--scopes", "meta",
		"--allowed-ips", "127.0.0.1,::1", "--json").want(ExitOK, "").json(&loop)
	if fmt.Sprint(loop.AllowedIPs) != "[127.0.0.1/32 ::1/128]" {
		t.Fatalf("allowed_ips in --json: %v", loop.AllowedIPs)
	}
	// The test's client is on loopback: outside the office, inside loopback.
	for id, want := range map[string]int{office: 401, loop.ID: 200} {
		jwt := strings.TrimSpace(e.run("tokens", "generate", id).want(ExitOK, "").stdout)
		if status, _ := e.Get("/meta", jwt); status != want {
			t.Errorf("token %s used from loopback: %d, want %d", id, status, want)
		}
	}
	if r := e.run("tokens", "list", "--owner", "svc").want(ExitOK, ""); !strings.Contains(r.stdout, " any\n") {
		t.Errorf("a token without allowed_ips is not listed as any:\n%s", r.stdout)
	}
}
