package caddymodule

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// revokeEnv is a guardEnv whose site also has `api_token_revoke
// /oauth/revoke` (ordered before the guard), behind a trusted local proxy,
// so X-Forwarded-For names the client.
type revokeEnv struct{ *hostileEnv }

func newRevokeEnv(t *testing.T) *revokeEnv {
	t.Helper()
	e := startGuardEnv(t, &guardEnv{keys: "signing_key " + testKey, server: trustLocalProxy, site: "api_token_revoke /oauth/revoke"})
	return &revokeEnv{&hostileEnv{e}}
}

// answer is what the endpoint said, and how long it took.
type answer struct {
	status int
	header http.Header
	body   string
	took   time.Duration
}

// post sends body to /oauth/revoke as a form from client ip; header pairs
// are name, value and replace the defaults.
func (e *revokeEnv) post(ip, path, body string, header ...string) answer {
	e.T.Helper()
	if path == "" {
		path = "/oauth/revoke"
	}
	req, err := http.NewRequest(http.MethodPost, e.Base+path, strings.NewReader(body))
	if err != nil {
		e.T.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", ip)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	began := time.Now()
	// Longer than the store's 5 s wait for a write lock.
	client := &http.Client{Transport: e.Tester.Client.Transport, Timeout: 30 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		e.T.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: string(b), took: time.Since(began)}
}

func form(jwt string) string { return url.Values{"token": {jwt}}.Encode() }

// revokes is the token's REVOKE logs.
func (e *revokeEnv) revokes(id string) []apitoken.Log {
	e.T.Helper()
	logs, _, err := e.app.backend.store.ListLogs(context.Background(), apitoken.LogFilter{TokenID: id, Activity: apitoken.ActivityRevoke,
		Page: apitoken.Page{Limit: 10}})
	if err != nil {
		e.T.Fatal(err)
	}
	return logs
}

// wantRevokeOK checks the answer of a well-formed request: 200, nothing in
// the body, never cached, and no sooner than every such answer.
func wantRevokeOK(t *testing.T, what string, a answer) {
	t.Helper()
	if a.status != http.StatusOK || a.body != "" || a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("%s: %d %q (Cache-Control %q), want 200 with an empty body, no-store", what, a.status, a.body, a.header.Get("Cache-Control"))
	}
	if a.took < revokeMinAnswer {
		t.Errorf("%s: answered after %v, before the %v every answer takes", what, a.took, revokeMinAnswer)
	}
}

// A JWT reported to the endpoint is revoked: the guard refuses it in the
// next request, the REVOKE log says by the revocation endpoint from the
// client's address, and the JWT is in neither log.
func TestRevoke_AReportedJWTIsRevokedAndRefusedAtOnce(t *testing.T) {
	e := newRevokeEnv(t)
	tok, jwt := e.token("leaked", apitoken.Expiry30d, apitoken.DefaultScopes)
	other, otherJWT := e.token("kept", apitoken.Expiry30d, apitoken.DefaultScopes)
	if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 {
		t.Fatalf("control: the token got %d", res.StatusCode)
	}
	wantRevokeOK(t, "the live JWT", e.post("203.0.113.50", "", form(jwt)+"&token_type_hint=access_token"))
	if res, body := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 401 || !strings.Contains(body, "invalid_token") {
		t.Errorf("the reported JWT then got %d %s, want 401 invalid_token", res.StatusCode, body)
	}
	logs := e.revokes(tok.ID)
	if len(logs) != 1 || logs[0].ActivityBy != apitoken.RevokedByEndpoint || logs[0].ClientIP != "203.0.113.50" {
		t.Errorf("REVOKE logs %+v, want one by %q from 203.0.113.50", logs, apitoken.RevokedByEndpoint)
	}
	// Reported again: the same answer, nothing more written.
	wantRevokeOK(t, "the revoked JWT", e.post("203.0.113.50", "", form(jwt)))
	if n := len(e.revokes(tok.ID)); n != 1 {
		t.Errorf("%d REVOKE logs after a second report, want 1", n)
	}
	// Another token of the owner is untouched.
	if res, _ := e.do("GET", "/meta", bearer(otherJWT)...); res.StatusCode != 200 || len(e.revokes(other.ID)) != 0 {
		t.Errorf("the owner's other token got %d", res.StatusCode)
	}
	if e.up.Hits.Load() != 2 {
		t.Errorf("the upstream was reached %d times, want 2 (the controls)", e.up.Hits.Load())
	}
	e.noSecretsInLogs(t)
}

// Whatever the token, a well-formed request gets the same answer in the
// same time, and only a JWT that can still open something revokes: garbage,
// forged, alg none, another deployment's, expired, of an unknown token,
// and a JWT superseded by a newer generation (which must not let whoever
// holds the old one kill the new one) revoke nothing.
func TestRevoke_AnswersTheSameWhateverTheTokenAndRevokesOnlyALiveJWT(t *testing.T) {
	e := newRevokeEnv(t)
	tok, old := e.token("regenerated", apitoken.Expiry30d, apitoken.DefaultScopes)
	current := e.generate(tok)
	e.settle()
	h, c := parts(t, current)
	key := realKey(t)
	cases := map[string]string{
		"garbage":                      "not-a-jwt",
		"three dots":                   "a.b.c",
		"alg none":                     forgeJWT(edit(h, "alg", "none"), c, "none", nil),
		"another deployment's key":     forgeJWT(h, c, "HS512", []byte(strings.Repeat("k", 64))),
		"a tampered payload":           forgeJWT(h, edit(c, "scope", "meta report admin"), "HS512", []byte(strings.Repeat("q", 64))),
		"expired, this deployment":     forgeJWT(h, edit(c, "exp", time.Now().Add(-time.Hour).Unix()), "HS512", key),
		"an unknown token":             forgeJWT(h, edit(c, "tid", "tok_00000000000000000000000000"), "HS512", key),
		"another owner in the claims":  forgeJWT(h, edit(c, "sub", "bob"), "HS512", key),
		"superseded by a regeneration": old,
		"8 KiB of letters":             strings.Repeat("a", apitoken.MaxJWTLen),
		"over 8 KiB":                   strings.Repeat("a", apitoken.MaxJWTLen+1),
	}
	for _, v := range cases {
		e.secret(v)
	}
	// Sent at once, as a scanner would: the limit is per minute.
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]answer{}
	for name, jwt := range cases {
		wg.Go(func() {
			a := e.post("198.51.100.7", "", form(jwt))
			mu.Lock()
			answers[name] = a
			mu.Unlock()
		})
	}
	wg.Wait()
	for name, a := range answers {
		wantRevokeOK(t, name, a)
	}
	if logs := e.revokes(tok.ID); len(logs) != 0 {
		t.Errorf("a dead JWT revoked its token: %+v", logs)
	}
	if res, _ := e.do("GET", "/meta", bearer(current)...); res.StatusCode != 200 {
		t.Errorf("the token's current JWT got %d after dead JWTs were reported", res.StatusCode)
	}
	if e.up.Hits.Load() != 1 {
		t.Errorf("the upstream was reached %d times, want 1", e.up.Hits.Load())
	}
	e.noSecretsInLogs(t)
}

// What is not a revocation request is refused with RFC 6749's error, and
// revokes nothing.
func TestRevoke_RefusesWhatIsNotARevocationRequest(t *testing.T) {
	e := newRevokeEnv(t)
	tok, jwt := e.token("kept", apitoken.Expiry30d, apitoken.DefaultScopes)
	for _, m := range []string{"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		req, _ := http.NewRequest(m, e.Base+"/oauth/revoke", strings.NewReader(form(jwt)))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := e.Tester.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
			t.Errorf("%s: %d, Allow %q; want 405, Allow: POST", m, res.StatusCode, res.Header.Get("Allow"))
		}
	}
	ip := "198.51.100.8"
	for _, c := range []struct {
		name, body string
		header     []string
		desc       string
	}{
		{"no body", "", nil, "token parameter is missing"},
		{"no token", "token_type_hint=access_token", nil, "token parameter is missing"},
		{"an empty token", "token=", nil, "token parameter is missing"},
		{"the token twice", form(jwt) + "&" + form("x"), nil, "once"},
		{"a bad escape", "token=%zz", nil, "not a well-formed form"},
		{"JSON", `{"token":"` + jwt + `"}`, []string{"Content-Type", "application/json"}, "Content-Type: application/x-www-form-urlencoded"},
		{"no content type", form(jwt), []string{"Content-Type", ""}, "Content-Type: application/x-www-form-urlencoded"},
		{"multipart", form(jwt), []string{"Content-Type", "multipart/form-data; boundary=x"}, "Content-Type"},
		{"a bad content type", form(jwt), []string{"Content-Type", "application/x-www-form-urlencoded; ;;"}, "Content-Type"},
		{"a body over the limit", form(jwt) + "&pad=" + strings.Repeat("p", revokeMaxBody), nil, "larger than 16 KiB"},
	} {
		a := e.post(ip, "", c.body, c.header...)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, `"error":"invalid_request"`) || !strings.Contains(a.body, c.desc) ||
			a.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want 400 invalid_request saying %q", c.name, a.status, a.body, c.desc)
		}
	}
	if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 || len(e.revokes(tok.ID)) != 0 {
		t.Errorf("refused requests revoked the token: it got %d", res.StatusCode)
	}
	e.noSecretsInLogs(t)
}

// A JWT sent in the endpoint's own URL is in logs now: it is refused (400)
// and its token revoked as exposed in a URL, as the guard does.
func TestRevoke_AJWTInTheEndpointsURLIsRevokedAsExposed(t *testing.T) {
	e := newRevokeEnv(t)
	for _, param := range []string{"token", "access_token"} {
		tok, jwt := e.token("in the URL as "+param, apitoken.Expiry30d, apitoken.DefaultScopes)
		a := e.post("198.51.100.9", "/oauth/revoke?"+param+"="+jwt, "")
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, "never in the URL") {
			t.Errorf("%s in the URL: %d %s, want 400", param, a.status, a.body)
		}
		if logs := e.revokes(tok.ID); len(logs) != 1 || logs[0].ActivityBy != apitoken.RevokedExposedInURL {
			t.Errorf("%s in the URL: REVOKE logs %+v, want one by %q", param, logs, apitoken.RevokedExposedInURL)
		}
	}
	// Another query parameter is no concern of the endpoint.
	tok, jwt := e.token("with a query", apitoken.Expiry30d, apitoken.DefaultScopes)
	wantRevokeOK(t, "a query without a token", e.post("198.51.100.9", "/oauth/revoke?from=scanner", form(jwt)))
	if logs := e.revokes(tok.ID); len(logs) != 1 || logs[0].ActivityBy != apitoken.RevokedByEndpoint {
		t.Errorf("REVOKE logs %+v, want one by %q", logs, apitoken.RevokedByEndpoint)
	}
	e.noSecretsInLogs(t)
}

// Each client may send 60 requests a minute, whatever they are; the 61st
// is 429 with Retry-After and revokes nothing. Another client is not held
// back, an IPv6 client is one client across its /64, and the limit lifts
// when the minute has passed.
func TestRevoke_SixtyRequestsAMinutePerClient(t *testing.T) {
	e := newRevokeEnv(t)
	tok, jwt := e.token("kept", apitoken.Expiry30d, apitoken.DefaultScopes)
	send := func(ips []string) map[int]int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for _, ip := range ips {
			wg.Go(func() {
				a := e.post(ip, "", form("not-a-jwt"))
				mu.Lock()
				statuses[a.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return statuses
	}
	ips := make([]string, revokeLimit)
	for i := range ips {
		ips[i] = "2001:db8:1:2:" + strconv.FormatInt(int64(i), 16) + "::1" // one /64
	}
	if got := send(ips); got[200] != revokeLimit {
		t.Fatalf("the first %d requests of a /64 got %v, want all 200", revokeLimit, got)
	}
	for _, a := range []answer{e.post("2001:db8:1:2:ffff::9", "", form(jwt)), e.post("2001:db8:1:2::1", "/oauth/revoke?x=1", "", "Content-Type", "")} {
		if a.status != http.StatusTooManyRequests || !strings.Contains(a.body, `"error":"too_many_requests"`) {
			t.Fatalf("past the limit: %d %s, want 429", a.status, a.body)
		}
		if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 || s > 65 {
			t.Errorf("Retry-After %q, want 1 to 65 seconds", a.header.Get("Retry-After"))
		}
	}
	if len(e.revokes(tok.ID)) != 0 {
		t.Error("a request past the limit revoked its token")
	}
	wantRevokeOK(t, "another /64", e.post("2001:db8:1:3::1", "", form("not-a-jwt")))
	wantRevokeOK(t, "another IPv4 client", e.post("198.51.100.10", "", form("not-a-jwt")))

	e.clock.Advance(66 * time.Second)
	wantRevokeOK(t, "a minute later", e.post("2001:db8:1:2::1", "", form(jwt)))
	if len(e.revokes(tok.ID)) != 1 {
		t.Error("a minute later, the report did not revoke the token")
	}
}

// Without trusted_proxies, X-Forwarded-For is the client's own claim: it
// does not make a new client.
func TestRevoke_ASpoofedForwardedForDoesNotEscapeTheLimit(t *testing.T) {
	e := &revokeEnv{&hostileEnv{startGuardEnv(t, &guardEnv{keys: "signing_key " + testKey, site: "api_token_revoke /oauth/revoke"})}}
	var wg sync.WaitGroup
	for i := range revokeLimit {
		wg.Go(func() { e.post("203.0.113."+strconv.Itoa(i), "", form("x")) })
	}
	wg.Wait()
	if a := e.post("203.0.113.250", "", form("x")); a.status != http.StatusTooManyRequests {
		t.Errorf("a new X-Forwarded-For escaped the limit: %d", a.status)
	}
}

// While the store cannot write, the reporter is told to try again (503
// with Retry-After), not that the JWT is dead; once it can, the report
// revokes.
func TestRevoke_AStoreThatCannotWriteSaysTryAgain(t *testing.T) {
	e := newRevokeEnv(t)
	tok, jwt := e.token("reported while locked", apitoken.Expiry30d, apitoken.DefaultScopes)
	if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 { // its state is cached
		t.Fatalf("control: %d", res.StatusCode)
	}
	release := holdWriteLock(t, e.db)
	a := e.post("198.51.100.11", "", form(jwt))
	release()
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "temporarily_unavailable") {
		t.Fatalf("reported while the store is locked: %d %s (Retry-After %q), want 503 with Retry-After", a.status, a.body,
			a.header.Get("Retry-After"))
	}
	wantRevokeOK(t, "reported again", e.post("198.51.100.11", "", form(jwt)))
	if logs := e.revokes(tok.ID); len(logs) != 1 {
		t.Errorf("REVOKE logs %+v, want one", logs)
	}
	e.noSecretsInLogs(t)
}

// FuzzRevokeForm: a hostile body or content type never panics, and the
// endpoint takes a token only from a form holding exactly one non-empty
// token parameter; what it says is wrong never repeats the body.
//
//	go test -run '^$' -fuzz FuzzRevokeForm -fuzztime 15s ./caddymodule/
func FuzzRevokeForm(f *testing.F) {
	const form = "application/x-www-form-urlencoded"
	for _, s := range [][2]string{
		{form, "token=a.b.c"},
		{form, "token=a.b.c&token_type_hint=access_token"},
		{form + "; charset=utf-8", "token_type_hint=refresh_token&token=a.b.c"},
		{form, "token=a&token=b"},
		{form, "token=&token=a"},
		{form, "token=%zz"},
		{form, "token=a;b=c"},
		{form, "token=a%00b"},
		{form, "token"},
		{form, "=&&&=="},
		{form, strings.Repeat("token=x&", 3000)},
		{form, "token=" + strings.Repeat("%41", 6000)},
		{"FORM", "token=a"},
		{"application/json", `{"token":"a.b.c"}`},
		{"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\na\r\n--x--"},
		{form + "; ;", "token=a"},
		{"", "token=a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r, _ := http.NewRequest(http.MethodPost, "/oauth/revoke", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		raw, msg := revokeForm(httptest.NewRecorder(), r)
		if (raw == "") == (msg == "") {
			t.Fatalf("token %q and message %q: want exactly one", raw, msg)
		}
		if msg != "" {
			if len(body) > 8 && strings.Contains(msg, body) {
				t.Fatalf("the message %q repeats the body", msg)
			}
			return
		}
		vals, err := url.ParseQuery(body)
		if err != nil || len(vals["token"]) != 1 || vals.Get("token") != raw || len(body) > revokeMaxBody {
			t.Fatalf("took %q from %q (%v)", raw, body, err)
		}
		if mt, _, _ := mime.ParseMediaType(contentType); mt != form {
			t.Fatalf("took a token from a %q body", contentType)
		}
	})
}
