package tokenadmin_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/internal/apispec"
)

// newmanCollection is a Postman collection made from docs/openapi.json:
// each GET operation without path parameters, with Basic auth as a token
// owner or a system admin, answering 200 with JSON; then the guarded report API with the JWT as a
// Basic password (as Excel sends it) and without it (401, a Basic
// challenge offered).
func newmanCollection(t *testing.T, base, jwt string) []byte {
	t.Helper()
	doc, err := apispec.Doc()
	if err != nil {
		t.Fatal(err)
	}
	basic := func(user, pass string) map[string]any {
		return map[string]any{"type": "basic", "basic": []map[string]string{
			{"key": "username", "value": user, "type": "string"}, {"key": "password", "value": pass, "type": "string"}}}
	}
	item := func(name, path string, auth map[string]any, tests ...string) map[string]any {
		return map[string]any{
			"name":    name,
			"request": map[string]any{"method": "GET", "url": base + path, "auth": auth},
			"event":   []map[string]any{{"listen": "test", "script": map[string]any{"type": "text/javascript", "exec": tests}}},
		}
	}
	var items []map[string]any
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range doc.Paths.Map() {
			if !yield(p) {
				return
			}
		}
	})
	for _, p := range paths {
		op := doc.Paths.Value(p).Get
		if op == nil || strings.Contains(p, "{") || slices.Contains(op.Tags, "Operator") {
			continue
		}
		user := "alice" // self-service: a token owner
		if slices.Contains(op.Tags, "System admin") {
			user = "root"
		}
		items = append(items, item(op.OperationID, p, basic(user, "pw-"+user),
			`pm.test("200 with JSON", () => { pm.response.to.have.status(200); pm.response.to.be.json; });`))
	}
	items = append(items,
		item("report with the token as a Basic password", "/reports/data/sales", basic("excel", jwt),
			`pm.test("the report", () => { pm.response.to.have.status(200); pm.expect(pm.response.text()).to.include("report for alice"); });`,
			`pm.test("its expiry", () => pm.response.to.have.header("Api-Token-Expiration"));`),
		item("report without a token", "/reports/data/sales", map[string]any{"type": "noauth"},
			`pm.test("401 offering Basic", () => { pm.response.to.have.status(401); pm.expect(pm.response.headers.all().map((h) => h.key + ": " + h.value).join("\n")).to.include("Basic realm="); });`))
	col := map[string]any{
		"info": map[string]any{"name": "caddy-apitokens", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
		"item": items,
	}
	out, err := json.Marshal(col)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newman (Postman's runner) runs a collection made from the OpenAPI
// document against the real Caddy: every list the document describes, and
// the guarded API with the JWT as a Basic password.
func TestNewman_RunsACollectionFromTheOpenAPIDocument(t *testing.T) {
	newman, err := exec.LookPath("newman")
	if err != nil {
		t.Skip("newman is not installed: .ci/run installs newman@6.2.2 (npm) and puts it on PATH")
	}
	e := newEnv(t)
	id := e.Call("alice", "POST", "/tokens", `{"name": "newman", "expires": "30d", "scopes": ["meta", "report"]}`).Want(201, "").JSON["id"].(string)
	jwt := e.Call("alice", "POST", "/tokens/"+id+"/generate", "").Want(200, "").JSON["token"].(string)

	dir := t.TempDir()
	col, report := filepath.Join(dir, "collection.json"), filepath.Join(dir, "report.json")
	if err := os.WriteFile(col, newmanCollection(t, e.Base, jwt), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(newman, "run", col, "--reporters", "cli,json", "--reporter-json-export", report, "--disable-unicode").CombinedOutput()
	if err != nil {
		t.Fatalf("newman: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Run struct {
			Stats struct {
				Requests, Assertions struct{ Total, Failed int }
			}
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	s := r.Run.Stats
	t.Logf("newman: %d requests, %d assertions", s.Requests.Total, s.Assertions.Total)
	if s.Requests.Total < 7 || s.Assertions.Failed != 0 || s.Assertions.Total < s.Requests.Total {
		t.Fatalf("newman ran %d requests, %d of %d assertions failed\n%s", s.Requests.Total, s.Assertions.Failed, s.Assertions.Total, out)
	}
	if strings.Contains(string(out), jwt) {
		t.Error("newman's output shows the JWT")
	}
}
