package tokenadmin

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A generation may ask for an overlap: the Token JSON says until when the
// previous JWT works, the GENERATE log says so too, and anything but a
// positive duration of at most 24h is refused with what to send.
func TestAPI_GenerateWithAnOverlap(t *testing.T) {
	f := newFixture(t)
	id := f.create("alice", "nightly")
	gen := func(body string) resp {
		return f.do(req{caller: "alice", method: "POST", path: "/tokens/" + id + "/generate", body: body})
	}
	r := gen(``).want(t, http.StatusOK, "")
	if d := r.json["details"].(map[string]any); d["previous_valid_until"] != nil {
		t.Fatalf("a first generation has previous_valid_until: %s", r.raw)
	}
	for _, body := range []string{`{"overlap": ""}`, `{"overlap": "0s"}`, `{"overlap": "-1h"}`, `{"overlap": "25h"}`,
		`{"overlap": "1d"}`, `{"overlap": "an hour"}`} {
		r := gen(body).want(t, http.StatusBadRequest, "bad_request")
		if msg := r.str("message"); !strings.Contains(msg, "overlap") || !strings.Contains(msg, "at most 24h") {
			t.Errorf("%s: message %q does not say what overlap to give", body, msg)
		}
	}
	r = gen(`{"overlap": 3600}`).want(t, http.StatusBadRequest, "bad_request")
	if msg := r.str("message"); !strings.Contains(msg, `"overlap"`) || !strings.Contains(msg, `"1h"`) {
		t.Errorf("a number: message %q does not say to send a string such as \"1h\"", msg)
	}
	r = gen(`{"overlap": "1h", "expires": "1d"}`).want(t, http.StatusBadRequest, "bad_request")
	if msg := r.str("message"); !strings.Contains(msg, `"expires"`) || !strings.Contains(msg, `"overlap"`) {
		t.Errorf("an unknown field: message %q does not name it and what is accepted", msg)
	}

	f.advance(time.Minute)
	r = gen(`{"overlap": "1h"}`).want(t, http.StatusOK, "")
	until := "2025-03-01T10:01:00Z"
	if d := r.json["details"].(map[string]any); d["previous_valid_until"] != until {
		t.Fatalf("previous_valid_until after an overlap of 1h: %s", r.raw)
	}
	if r = f.do(req{caller: "alice", method: "GET", path: "/tokens/" + id}).want(t, http.StatusOK, ""); r.str("previous_valid_until") != until {
		t.Fatalf("GET: %s", r.raw)
	}
	r = f.do(req{caller: "alice", method: "GET", path: "/tokens/" + id + "/logs"}).want(t, http.StatusOK, "")
	if l := r.list("logs")[0].(map[string]any); l["activity"] != "GENERATE" || !strings.Contains(l["reason"].(string), "previous JWT valid until "+until) {
		t.Fatalf("GENERATE log: %v", l)
	}
	// A null overlap is none: the previous JWT ends at once.
	r = gen(`{"overlap": null}`).want(t, http.StatusOK, "")
	if d := r.json["details"].(map[string]any); d["previous_valid_until"] != nil {
		t.Fatalf("an overlap of null kept a previous JWT: %s", r.raw)
	}
	gen(`{"overlap": "24h"}`).want(t, http.StatusOK, "")
	f.advance(24 * time.Hour)
	if r = f.do(req{caller: "alice", method: "GET", path: "/tokens/" + id}).want(t, http.StatusOK, ""); r.json["previous_valid_until"] != nil {
		t.Fatalf("previous_valid_until after the overlap: %s", r.raw)
	}
	gen(`{"overlap": "30m"}`).want(t, http.StatusOK, "")
	r = f.do(req{caller: "alice", method: "POST", path: "/tokens/" + id + "/revoke"}).want(t, http.StatusOK, "")
	if r.json["previous_valid_until"] != nil {
		t.Fatalf("a revoked token keeps previous_valid_until: %s", r.raw)
	}
}

func TestAPI_AdminGeneratesAServiceAccountsTokenWithAnOverlap(t *testing.T) {
	f := newFixture(t)
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/robot", body: `{"kind": "service"}`}).want(t, http.StatusOK, "")
	f.do(req{caller: "root", method: "PUT", path: "/admin/users/robot/roles/api_tokens"}).want(t, http.StatusOK, "")
	r := f.do(req{caller: "root", method: "POST", path: "/admin/users/robot/tokens",
		body: `{"name": "sync", "expires": "30d", "scopes": ["report"]}`}).want(t, http.StatusCreated, "")
	path := "/admin/tokens/" + r.str("id") + "/generate"
	f.do(req{caller: "root", method: "POST", path: path}).want(t, http.StatusOK, "")
	f.do(req{caller: "root", method: "POST", path: path, body: `{"overlap": "48h"}`}).want(t, http.StatusBadRequest, "bad_request")
	r = f.do(req{caller: "root", method: "POST", path: path, body: `{"overlap": "2h"}`}).want(t, http.StatusOK, "")
	if d := r.json["details"].(map[string]any); d["previous_valid_until"] != "2025-03-01T11:00:00Z" {
		t.Fatalf("previous_valid_until after an admin's overlap of 2h: %s", r.raw)
	}
	// Only admins may.
	f.do(req{caller: "alice", method: "POST", path: path, body: `{"overlap": "2h"}`}).want(t, http.StatusForbidden, "forbidden")
}
