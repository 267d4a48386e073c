package tokenadmin_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// GET /scopes lists the declared scopes, in the config's order, with their
// descriptions, to anyone signed in (a view-only user too: the page shows
// them); the operator's mount serves it at /api-tokens/scopes.
func TestE2E_ScopesListsTheDeclaredScopesToAnySignedInUser(t *testing.T) {
	e := newEnv(t)
	const want = `{"scopes":[{"name":"meta","description":"List reports and their parameters"},` +
		`{"name":"report","description":"Read report data"},{"name":"sales","description":"Read the sales report only"}]}`
	for _, user := range []string{"alice", "carol", "dave", "root"} {
		a := e.call(user, "GET", "/scopes", "").Want(200, "")
		if compact(t, a.Raw) != want {
			t.Errorf("%s: GET /scopes = %s, want %s", user, a.Raw, want)
		}
	}
	e.call("erin", "GET", "/scopes", "").Want(403, "forbidden")
	e.call("alice", "GET", "/scopes?all=1", "").Want(400, "bad_request")
	e.call("alice", "POST", "/scopes", "").Want(405, "method_not_allowed")
	if a := e.send(call{operator: true, method: "GET", path: "/api-tokens/scopes"}).Want(200, ""); compact(t, a.Raw) != want {
		t.Errorf("operator GET /api-tokens/scopes = %s", a.Raw)
	}
}

// A declared scope can be given; an undeclared one is refused with a message
// that names every declared scope.
func TestE2E_TokensTakeDeclaredScopesOnly(t *testing.T) {
	e := newEnv(t)
	a := e.call("alice", "POST", "/tokens", `{"name":"sales feed","expires":"30d","scopes":["sales"]}`).Want(201, "")
	if s, _ := a.JSON["scopes"].([]any); len(s) != 1 || s[0] != "sales" {
		t.Fatalf("created %s, want scopes [sales]", a.Raw)
	}
	id := a.JSON["id"].(string)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/tokens", `{"name":"x","expires":"30d","scopes":["stock"]}`},
		{"PATCH", "/tokens/" + id, `{"scopes":["sales","stock"]}`},
	} {
		a := e.call("alice", c.method, c.path, c.body).Want(400, "bad_request")
		if msg := a.JSON["message"]; msg != `unknown scope "stock": the declared scopes are meta, report, sales` {
			t.Errorf("%s %s: message %q", c.method, c.path, msg)
		}
	}
	// Its JWT opens the sales report, which names report and sales, and
	// nothing that needs report alone.
	jwt := e.call("alice", "POST", "/tokens/"+id+"/generate", "").Want(200, "").JSON["token"].(string)
	if status, body := e.report("/data/sales", jwt); status != 200 {
		t.Errorf("the sales JWT on /data/sales: %d %s", status, body)
	}
	if status, body := e.report("/data/stock", jwt); status != 403 {
		t.Errorf("the sales JWT on /data/stock: %d %s", status, body)
	}
}

// compact is s without the whitespace between its JSON tokens.
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return b.String()
}

// The page offers the declared scopes, with their descriptions, escaped.
func TestE2E_MyTokensPageOffersTheDeclaredScopes(t *testing.T) {
	e := newEnv(t)
	a := e.call("alice", "GET", "/", "")
	if a.Status != 200 {
		t.Fatalf("GET /: %d", a.Status)
	}
	for _, want := range []string{
		`value="meta" checked> <span><strong>meta</strong> – List reports and their parameters</span>`,
		`value="report" checked> <span><strong>report</strong> – Read report data</span>`,
		`value="sales" checked> <span><strong>sales</strong> – Read the sales report only</span>`,
	} {
		if !strings.Contains(a.Raw, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}

// After a widening edit the Token JSON shows what the live JWT can still do
// and that a regeneration would apply the rest; the JWT keeps its old reach
// and date until then.
func TestE2E_WideningWaitsForTheNextGenerationAndTheTokenSaysSo(t *testing.T) {
	e := newEnv(t)
	id := e.call("alice", "POST", "/tokens", `{"name":"feed","expires":"7d","scopes":["meta"]}`).Want(201, "").JSON["id"].(string)
	gen := e.call("alice", "POST", "/tokens/"+id+"/generate", "").Want(200, "")
	jwt, expiresAt := gen.JSON["token"].(string), gen.JSON["expires_at"]
	if d := gen.JSON["details"].(map[string]any); d["regenerate_to_apply"] != false || fmtJSON(d["effective_scopes"]) != `["meta"]` {
		t.Fatalf("after generation: %s", gen.Raw)
	}

	a := e.call("alice", "PATCH", "/tokens/"+id, `{"scopes":["meta","report"],"expires":"30d"}`).Want(200, "")
	if fmtJSON(a.JSON["scopes"]) != `["meta","report"]` || fmtJSON(a.JSON["effective_scopes"]) != `["meta"]` ||
		a.JSON["regenerate_to_apply"] != true || a.JSON["expires_at"] != expiresAt {
		t.Fatalf("after widening: %s; want scopes meta and report, effective meta, regenerate_to_apply, expires_at %v", a.Raw, expiresAt)
	}
	if status, _ := e.report("/data/x", jwt); status != 403 {
		t.Errorf("the live JWT after widening: %d on a report path, want 403", status)
	}
	if status, _ := e.report("/meta", jwt); status != 200 {
		t.Errorf("the live JWT after widening: %d on a meta path, want 200", status)
	}
	if l := e.call("alice", "GET", "/tokens", "").Want(200, "").JSON["tokens"].([]any); l[0].(map[string]any)["regenerate_to_apply"] != true {
		t.Errorf("the list does not say regenerate_to_apply: %v", l[0])
	}

	// Narrowing applies at once: nothing waits.
	a = e.call("alice", "PATCH", "/tokens/"+id, `{"scopes":["meta"],"expires":"7d"}`).Want(200, "")
	if a.JSON["regenerate_to_apply"] != false || fmtJSON(a.JSON["effective_scopes"]) != `["meta"]` {
		t.Errorf("after narrowing back: %s", a.Raw)
	}

	// Widen again and regenerate: the new JWT has it all.
	e.call("alice", "PATCH", "/tokens/"+id, `{"scopes":["meta","report"]}`).Want(200, "")
	gen = e.call("alice", "POST", "/tokens/"+id+"/generate", "").Want(200, "")
	if d := gen.JSON["details"].(map[string]any); d["regenerate_to_apply"] != false || fmtJSON(d["effective_scopes"]) != `["meta","report"]` {
		t.Errorf("after regenerating: %s", gen.Raw)
	}
	if status, _ := e.report("/data/x", gen.JSON["token"].(string)); status != 200 {
		t.Errorf("the new JWT on a report path: %d", status)
	}
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
