package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

const scimSecret = "scim-test-secret-0123456789abcdefghijklmnop"

// scimSite serves SCIM beside the guard, on the same port, for the host
// 127.0.0.1.
const scimSite = `
http://127.0.0.1:%d {
	handle /scim/v2/* {
		api_token_scim {
			bearer {env.APITOKENS_SCIM_TOKEN}
		}
	}
}
`

// scimEnv is a guard with the group map report-users -> api_tokens and a
// SCIM site.
func scimEnv(t *testing.T) *guardEnv {
	t.Setenv("APITOKENS_SCIM_TOKEN", scimSecret)
	e := newGuardEnvWith(t, "groups {\n\t\t\treport-users api_tokens\n\t\t}")
	e.Load(e.caddyfile() + fmt.Sprintf(scimSite, testHTTPPort))
	e.takeApp()
	e.Secret(scimSecret)
	return e
}

// scimDo sends a SCIM request with the bearer secret and checks the status;
// it returns the JSON answer.
func scimDo(e *guardEnv, method, path, body string, want int) map[string]any {
	e.T.Helper()
	return scimAs(e, "Bearer "+scimSecret, method, path, body, want)
}

func scimAs(e *guardEnv, auth, method, path, body string, want int) map[string]any {
	e.T.Helper()
	a := caddytesting.Send(e.T, e.Tester.Client, caddytesting.Call{Method: method, Path: "/scim/v2" + path, Body: body,
		Base: fmt.Sprintf("http://127.0.0.1:%d", testHTTPPort), Header: []string{"Authorization", auth, "Content-Type", "application/scim+json"}})
	if a.Status != want {
		e.T.Fatalf("%s %s: status %d, want %d: %s", method, path, a.Status, want, a.Raw)
	}
	if a.Header.Get("Cache-Control") != "no-store" || a.Header.Get("Content-Type") != "application/scim+json" {
		e.T.Fatalf("%s %s: headers %v", method, path, a.Header)
	}
	var out map[string]any
	if a.Raw != "" {
		if err := json.Unmarshal([]byte(a.Raw), &out); err != nil {
			e.T.Fatalf("%s %s: not JSON: %v: %s", method, path, err, a.Raw)
		}
	}
	return out
}

// wantGuard checks the status the guard answers jwt with.
func wantGuard(e *guardEnv, jwt string, want int, why string) {
	e.T.Helper()
	if res, body := e.do(http.MethodGet, "/meta", bearer(jwt)...); res.StatusCode != want {
		e.T.Fatalf("%s: the guard answered %d, want %d: %s", why, res.StatusCode, want, body)
	}
}

func (e *guardEnv) user(id string) apitoken.User {
	e.T.Helper()
	u, err := e.app.backend.store.GetUser(context.Background(), id)
	if err != nil {
		e.T.Fatal(err)
	}
	return u
}

// Microsoft Entra ID's documented provisioning sequence: look the user up
// by userName, create them, create a group and add them to it (the group
// map gives the token role), disable with the string booleans and PATCH
// without path that Entra ID sends (the user's next request is refused at
// the guard), enable, remove from the group, and delete (every token
// revoked, by scim).
func TestSCIM_EntraIDSequence(t *testing.T) {
	e := scimEnv(t)
	const carol = "carol@example.com"

	got := scimDo(e, "GET", `/Users?filter=userName+eq+%22carol%40example.com%22`, "", 200)
	if got["totalResults"] != 0.0 {
		t.Fatalf("a user that does not exist was found: %v", got)
	}
	got = scimDo(e, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"carol@example.com","active":true,
		"emails":[{"primary":true,"type":"work","value":"carol@example.com"}],"meta":{"resourceType":"User"},
		"name":{"formatted":"Carol Jones","familyName":"Jones","givenName":"Carol"},"roles":[]}`, 201)
	if got["id"] != carol || got["active"] != true {
		t.Fatalf("created: %v", got)
	}
	// userName is not case-exact (RFC 7643); the store narrows by a
	// substring, the filter picks: x.carol@example.com.test is not carol.
	scimDo(e, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x.carol@example.com.test"}`, 201)
	got = scimDo(e, "GET", `/Users?filter=userName+eq+%22CAROL%40example.COM%22`, "", 200)
	if got["totalResults"] != 1.0 || !strings.Contains(fmt.Sprint(got["Resources"]), "userName:carol@example.com") {
		t.Fatalf("filter userName eq, in other case: %v", got)
	}
	if u := e.user(carol); u.Source != apitoken.SourceSCIM || u.Name != "Carol Jones" || u.Email != carol || u.Disabled {
		t.Fatalf("stored: %+v", u)
	}
	scimDo(e, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159","displayName":"report-users","members":[]}`, 201)
	scimDo(e, "PATCH", "/Groups/report-users", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Add","path":"members","value":[{"$ref":null,"value":"carol@example.com"}]}]}`, 200)
	if u := e.user(carol); !u.HasRole(apitoken.RoleAPITokens) {
		t.Fatalf("the group did not give the token role: %+v", u)
	}
	tok, jwt := e.live(carol, "excel", apitoken.Expiry30d, apitoken.DefaultScopes)
	wantGuard(e, jwt, 200, "a fresh JWT")

	scimDo(e, "PATCH", "/Users/carol@example.com", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Replace","value":{"active":"False","displayName":"Carol J."}}]}`, 200)
	wantGuard(e, jwt, 401, `the request right after active "False"`)
	scimDo(e, "PATCH", "/Users/carol@example.com", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Replace","path":"active","value":"True"},{"op":"Replace","path":"emails[type eq \"work\"].value","value":"cj@example.com"}]}`, 200)
	wantGuard(e, jwt, 200, `the request after active "True"`)
	if u := e.user(carol); u.Name != "Carol J." || u.Email != "cj@example.com" || u.Disabled {
		t.Fatalf("after the PATCHes: %+v", u)
	}
	got = scimDo(e, "GET", `/Groups?filter=displayName+eq+%22report-users%22`, "", 200)
	if got["totalResults"] != 1.0 || !strings.Contains(fmt.Sprint(got["Resources"]), carol) {
		t.Fatalf("the group and its member: %v", got)
	}

	scimDo(e, "PATCH", "/Groups/report-users", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"Remove","path":"members","value":[{"$ref":null,"value":"carol@example.com"}]}]}`, 200)
	wantGuard(e, jwt, 401, "the request after leaving the group that gave the token role")
	scimDo(e, "PATCH", "/Groups/report-users", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members","value":[{"value":"carol@example.com"}]}]}`, 200)
	wantGuard(e, jwt, 200, "the request after joining again")

	scimDo(e, "DELETE", "/Users/carol@example.com", "", 204)
	wantGuard(e, jwt, 401, "the request after DELETE")
	stored, err := e.app.backend.store.GetToken(context.Background(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.RevokedAt == nil || stored.RevokedBy != apitoken.ByScim {
		t.Fatalf("after DELETE the token is not revoked by scim: %+v", stored)
	}
	if u := e.user(carol); !u.Disabled {
		t.Fatalf("after DELETE the user is not disabled: %+v", u)
	}
}

// Okta's documented sequence: look up, create, replace with PUT (active
// false stops the tokens), PATCH without path to reactivate, a group with
// members and a remove by filter, and paging through the users.
func TestSCIM_OktaSequence(t *testing.T) {
	e := scimEnv(t)
	const dave = "dave@example.com"
	scimDo(e, "GET", `/Users?filter=userName+eq+%22dave%40example.com%22&startIndex=1&count=100`, "", 200)
	user := `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"dave@example.com",
		"name":{"givenName":"Dave","familyName":"Smith"},"emails":[{"primary":true,"value":"dave@example.com","type":"work"}],
		"displayName":"Dave Smith","locale":"en-US","externalId":"00ujl29u0le5T6Aj10h7","groups":[],"active":%t}`
	scimDo(e, "POST", "/Users", fmt.Sprintf(user, true), 201)
	scimDo(e, "POST", "/Users", fmt.Sprintf(user, true), 409)
	if _, err := e.svc.GrantRole(context.Background(), e.adminCtl, dave, apitoken.RoleAPITokens); err != nil {
		t.Fatal(err)
	}
	_, jwt := e.live(dave, "sheets", apitoken.Expiry30d, apitoken.DefaultScopes)
	wantGuard(e, jwt, 200, "a fresh JWT")

	scimDo(e, "PUT", "/Users/dave@example.com", fmt.Sprintf(user, false), 200)
	wantGuard(e, jwt, 401, "the request right after PUT active false")
	scimDo(e, "PATCH", "/Users/dave@example.com", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}`, 200)
	wantGuard(e, jwt, 200, "the request after PATCH active true")

	scimDo(e, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"report-admins",
		"members":[{"value":"dave@example.com","display":"dave@example.com"},{"value":"alice","display":"alice"}]}`, 201)
	if u := e.user(dave); len(u.Groups) != 1 || u.Groups[0] != "report-admins" {
		t.Fatalf("groups after the group's POST: %+v", u)
	}
	scimDo(e, "PATCH", "/Groups/report-admins", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"remove","path":"members[value eq \"dave@example.com\"]"}]}`, 200)
	got := scimDo(e, "GET", "/Groups/report-admins", "", 200)
	if m := fmt.Sprint(got["members"]); strings.Contains(m, dave) || !strings.Contains(m, "alice") {
		t.Fatalf("members after the remove by filter: %v", got)
	}

	// alice, bob, dave (root is an admin of the config, not a user).
	got = scimDo(e, "GET", "/Users?startIndex=2&count=1", "", 200)
	if got["totalResults"] != 3.0 || got["itemsPerPage"] != 1.0 || got["startIndex"] != 2.0 {
		t.Fatalf("the second page of one: %v", got)
	}
	if got := scimDo(e, "PATCH", "/Users/dave@example.com", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"userName","value":"someone-else"}]}`, 400); !strings.Contains(fmt.Sprint(got["detail"]), "userName is the user id") {
		t.Fatalf("a userName change: %v", got)
	}
	scimDo(e, "GET", "/Users/nobody", "", 404)
	scimDo(e, "DELETE", "/Users/nobody", "", 404)
	if got := scimDo(e, "PATCH", "/Groups/report-admins", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"displayName":"admins"}}]}`, 400); !strings.Contains(fmt.Sprint(got["detail"]), "known by its displayName") {
		t.Fatalf("a group rename: %v", got)
	}
	scimDo(e, "PATCH", "/Groups/report-admins", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"a/b"}]}]}`, 400)
}

// A bearer secret shorter than 32 characters, or an unset variable, is
// refused when the config loads; the running config stays.
func TestSCIM_AShortOrMissingSecretIsRefusedAtLoad(t *testing.T) {
	e := scimEnv(t)
	t.Setenv("APITOKENS_SCIM_SHORT", "too-short")
	for _, secret := range []string{"{env.APITOKENS_SCIM_SHORT}", "{env.APITOKENS_SCIM_UNSET}"} {
		cfg := strings.Replace(e.caddyfile()+fmt.Sprintf(scimSite, testHTTPPort), "{env.APITOKENS_SCIM_TOKEN}", secret, 1)
		req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/load", testAdminPort), strings.NewReader(cfg))
		req.Header.Set("Content-Type", "text/caddyfile")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK || !strings.Contains(string(raw), "bearer must be a secret of at least 32 characters") {
			t.Errorf("%s: %d %s", secret, res.StatusCode, raw)
		}
	}
	scimDo(e, "GET", "/ServiceProviderConfig", "", 200)
}

// A request without the bearer secret, or with another, is 401 without
// detail, and changes nothing.
func TestSCIM_WrongBearerIs401WithoutDetail(t *testing.T) {
	e := scimEnv(t)
	for _, auth := range []string{"", "Bearer ", "Bearer " + scimSecret[:len(scimSecret)-1], "Bearer " + scimSecret + "x", "Basic " + scimSecret, "bearer" + scimSecret} {
		got := scimAs(e, auth, "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"mallory"}`, 401)
		if _, has := got["detail"]; has || got["status"] != "401" {
			t.Fatalf("%q: %v", auth, got)
		}
	}
	if _, err := e.app.backend.store.GetUser(context.Background(), "mallory"); err == nil {
		t.Fatal("a request without the secret created a user")
	}
}

// What an attacker holding the secret, or a broken provider, sends is a 4xx
// that says what is wrong: never a 500, and nothing is stored.
func TestSCIM_BadRequestsAre4xx(t *testing.T) {
	e := scimEnv(t)
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"big","displayName":"` + strings.Repeat("a", 2<<20) + `"}`, 400},
		{"POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":`, 400},
		{"POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a/b"}`, 400},
		{"POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ctl\u0001"}`, 400},
		{"POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"e","emails":[{"value":"not an address"}]}`, 400},
		{"POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"e","active":"maybe"}`, 400},
		{"GET", "/Users?filter=userName+eq", "", 400},
		{"GET", "/Users?count=x", "", 400},
		{"PATCH", "/Users/alice", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"explode","path":"active","value":true}]}`, 400},
		{"PATCH", "/Users/alice", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":"perhaps"}]}`, 400},
		{"PATCH", "/Users/alice", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":"not an object"}]}`, 400},
		{"PATCH", "/Groups/report-users", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"nobody"}]}]}`, 404},
		{"PUT", "/Users/alice", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob"}`, 400},
	} {
		got := scimDo(e, tc.method, tc.path, tc.body, tc.want)
		if got["status"] != fmt.Sprint(tc.want) {
			t.Errorf("%s %s: not a SCIM error: %v", tc.method, tc.path, got)
		}
	}
	for _, id := range []string{"big", "e", "ctl\u0001", "nobody"} {
		if _, err := e.app.backend.store.GetUser(context.Background(), id); err == nil {
			t.Errorf("a refused request stored user %q", id)
		}
	}
}
