package tokenadmin

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/docs"
	"github.com/caddy-apitokens/caddy-apitokens/internal/apispec"
)

// docs/openapi.json describes exactly the route table: every route is an
// operation of the document, and every operation is a route.
func TestOpenAPI_DocumentsEveryRouteOfTheTable(t *testing.T) {
	doc, err := apispec.Doc()
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	routes := map[string]route{}
	for _, rt := range f.api.routes() {
		routes[rt.method+" "+rt.path] = rt
		item := doc.Paths.Value(rt.path)
		if item == nil || item.GetOperation(rt.method) == nil {
			t.Errorf("the route %s %s is not in docs/openapi.json", rt.method, rt.path)
			continue
		}
		op := item.GetOperation(rt.method)
		var documented []string
		for _, p := range op.Parameters {
			if p.Value.In == "query" {
				documented = append(documented, p.Value.Name)
			}
		}
		slices.Sort(documented)
		known := slices.Sorted(slices.Values(rt.query))
		if !slices.Equal(documented, known) {
			t.Errorf("%s %s: the document has the query parameters %v, the route takes %v", rt.method, rt.path, documented, known)
		}
		if operator := slices.Contains(op.Tags, "Operator"); operator != rt.operator {
			t.Errorf("%s %s: tagged Operator %v in the document, operator %v in the table", rt.method, rt.path, operator, rt.operator)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if _, ok := routes[method+" "+path]; !ok {
				t.Errorf("docs/openapi.json has %s %s, which the route table does not serve", method, path)
			}
		}
	}
}

// GET /openapi.json answers the document itself, to any signed-in user.
func TestOpenAPI_IsServedToAnySignedInUser(t *testing.T) {
	f := newFixture(t)
	r := f.do(req{caller: "dave", method: "GET", path: "/openapi.json"})
	r.want(t, http.StatusOK, "")
	if r.raw != string(docs.OpenAPI) || !strings.Contains(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json answered %q with another body", r.header.Get("Content-Type"))
	}
	f.do(req{method: "GET", path: "/openapi.json"}).want(t, http.StatusUnauthorized, "unauthenticated")
}
