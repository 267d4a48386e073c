package caddymodule

// The hostile-input suite: requests an attacker would send, through a real
// Caddy in front of a real upstream, grouped by attack. Every refusal case
// asserts its status and error code, that the upstream was never reached,
// and, at the end of each group, that no secret (a JWT, a signature, a key)
// is in Caddy's log or in the site's access log. The JWT-level cases of
// apitoken/jwt_test.go are not repeated here; these go through the whole
// server: header parsing, credential extraction, the path checks, the
// caches and the store.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/caddytesting"
)

// hostileEnv is the guard environment of the suite (guardEnv), whose
// reload takes other api_tokens options.
type hostileEnv struct{ *guardEnv }

// newHostileEnv adds server to the global options; options are the
// api_tokens options, the keys among them ("" for the suite's HMAC key).
func newHostileEnv(t *testing.T, server, options string) *hostileEnv {
	t.Helper()
	return newHostileEnvGuard(t, server, options, "")
}

// newHostileEnvGuard adds options to the api_token_auth directive.
func newHostileEnvGuard(t *testing.T, server, options, guard string) *hostileEnv {
	t.Helper()
	e := &guardEnv{server: server, options: options, guard: guard}
	if options == "" {
		e.keys = "signing_key " + testKey
	}
	return &hostileEnv{startGuardEnv(t, e)}
}

// reload loads the suite's config, with other api_tokens options, the keys
// among them, when options is not "".
func (e *hostileEnv) reload(options string) {
	e.T.Helper()
	if options != "" {
		e.keys, e.options = "", options
	}
	e.load()
}

// secret remembers a value that must appear in no log: for a JWT, the JWT
// and its signature.
func (e *hostileEnv) secret(values ...string) { e.Secret(values...) }

// noSecretsInLogs fails if a secret is in Caddy's log or the access log.
// It also checks the logs are being written, so it cannot pass vacuously.
func (e *hostileEnv) noSecretsInLogs(t *testing.T) {
	t.Helper()
	e.NoSecretsIn(t, e.Log, e.accessLog)
}

// hostileCase is one request the guard must refuse without reaching the
// upstream.
type hostileCase struct {
	name   string
	method string   // GET when empty
	path   string   // /meta when empty
	header []string // name, value pairs
	raw    string   // a raw request target sent as is, bypassing Go's client
	status int
	code   string // the error of the JSON body
	desc   string // when set, a part of the error_description
}

func (e *hostileEnv) run(t *testing.T, cases []hostileCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.up.Hits.Load()
			var status int
			var hdr http.Header
			var body string
			if c.raw != "" {
				status, hdr, body = e.rawRequest(t, c.method, c.raw, c.header...)
			} else {
				method, path := c.method, c.path
				if method == "" {
					method = "GET"
				}
				if path == "" {
					path = "/meta"
				}
				res, b := e.do(method, path, c.header...)
				status, hdr, body = res.StatusCode, res.Header, b
			}
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			if e.up.Hits.Load() != before {
				t.Fatal("the upstream was reached")
			}
			if c.code != "" {
				var got map[string]string
				if err := json.Unmarshal([]byte(body), &got); err != nil || got["error"] != c.code || got["error_description"] == "" {
					t.Errorf("body %q, want JSON error %q with a description", body, c.code)
				}
				if !strings.Contains(got["error_description"], c.desc) {
					t.Errorf("error_description %q, want it to say %q", got["error_description"], c.desc)
				}
				if hdr.Get("Cache-Control") != "no-store" {
					t.Errorf("Cache-Control %q", hdr.Get("Cache-Control"))
				}
			}
			if e.HasSecret(body) {
				t.Error("the answer contains a secret")
			}
		})
	}
}

// rawRequest sends a request target exactly as given (Go's client would
// escape or clean some), with method (GET when empty) and header pairs (a
// Host among them replaces the site's), and reads the answer.
func (e *hostileEnv) rawRequest(t *testing.T, method, target string, header ...string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("localhost:%d", testHTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	if method == "" {
		method = "GET"
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, target)
	host := fmt.Sprintf("localhost:%d", testHTTPPort)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			host = header[i+1]
			continue
		}
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	fmt.Fprintf(&b, "Host: %s\r\n", host)
	b.WriteString("Connection: close\r\n\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(body)
}

// served fails unless each raw path, sent with jwt, reaches the upstream.
func (e *hostileEnv) served(t *testing.T, jwt string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		before := e.up.Hits.Load()
		if status, _, body := e.rawRequest(t, "", p, bearer(jwt)...); status != 200 || e.up.Hits.Load() != before+1 {
			t.Errorf("%s: %d %s, want it served", p, status, body)
		}
	}
}

// Forging: JWTs built by hand, signed with the deployment's real key where
// an attack needs a signature that verifies.

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func seg(v any) string {
	switch v := v.(type) {
	case string:
		return b64url([]byte(v))
	case []byte:
		return b64url(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b64url(b)
}

// forgeJWT signs header.claims with alg: HS256, HS384, HS512 (key is the
// HMAC key), EdDSA (key is an ed25519.PrivateKey), RS256 (an
// *rsa.PrivateKey) or none.
func forgeJWT(header, claims any, alg string, key any) string {
	signing := seg(header) + "." + seg(claims)
	var sig []byte
	mac := func(h func() hash.Hash) []byte {
		m := hmac.New(h, key.([]byte))
		m.Write([]byte(signing))
		return m.Sum(nil)
	}
	switch alg {
	case "none":
	case "HS256":
		sig = mac(sha256.New)
	case "HS384":
		sig = mac(sha512.New384)
	case "HS512":
		sig = mac(sha512.New)
	case "EdDSA":
		sig = ed25519.Sign(key.(ed25519.PrivateKey), []byte(signing))
	case "RS256":
		sum := sha256.Sum256([]byte(signing))
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), 5 /* crypto.SHA256 */, sum[:]); err != nil {
			panic(err)
		}
	default:
		panic("forgeJWT: alg " + alg)
	}
	return signing + "." + b64url(sig)
}

// parts decodes a JWT's header and claims.
func parts(t testing.TB, jwt string) (header, claims map[string]any) {
	t.Helper()
	p := strings.Split(jwt, ".")
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(p[i])
		if err != nil {
			t.Fatal(err)
		}
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// edit copies m and sets (or, with nil, deletes) the given members.
func edit(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func realKey(t testing.TB) []byte {
	k, err := apitoken.ParseKey(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

func TestHostile_TokenFormat(t *testing.T) {
	e := newHostileEnv(t, "", "")
	_, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	key := realKey(t)
	h, c := parts(t, good)
	p := strings.Split(good, ".")
	signed := func(header, claims any) string {
		jwt := forgeJWT(header, claims, "HS512", key)
		e.secret(jwt)
		return jwt
	}
	var deflated bytes.Buffer
	zw, _ := flate.NewWriter(&deflated, flate.BestCompression)
	json.NewEncoder(zw).Encode(c)
	zw.Close()
	stdHeader := base64.StdEncoding.EncodeToString([]byte(`{"alg":"HS512","kid":"` + h["kid"].(string) + `","typ":"JWT"}`))
	stdSigned := func() string {
		signing := stdHeader + "." + p[1]
		m := hmac.New(sha512.New, key)
		m.Write([]byte(signing))
		jwt := signing + "." + b64url(m.Sum(nil))
		e.secret(jwt)
		return jwt
	}()
	jwsJSON := fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`, p[1], p[0], p[2])
	jwsGeneral := fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, p[1], p[0], p[2])

	const invalid = "invalid_token"
	e.run(t, []hostileCase{
		{name: "one segment", header: bearer(p[0]), status: 401, code: invalid},
		{name: "two segments", header: bearer(p[0] + "." + p[1]), status: 401, code: invalid},
		{name: "four segments", header: bearer(good + ".e30"), status: 401, code: invalid},
		{name: "five segments, a JWE compact form", header: bearer(p[0] + ".." + p[1] + "." + p[2] + ".AAAA"), status: 401, code: invalid},
		{name: "empty segments", header: bearer(".."), status: 401, code: invalid},
		{name: "a trailing dot", header: bearer(good + "."), status: 401, code: invalid},
		{name: "padded base64url signature", header: bearer(good + "=="), status: 401, code: invalid},
		{name: "header in standard padded base64, signed with the real key", header: bearer(stdSigned), status: 401, code: invalid},
		{name: "signature longer than 86 characters under the real header", header: bearer(p[0] + "." + p[1] + "." + p[2] + "AAAA"), status: 401, code: invalid},
		{name: "signature of 87 characters and no payload", header: bearer(p[0] + ".." + strings.Repeat("0", 87)), status: 401, code: invalid},
		{name: "header that is a JSON array", header: bearer(signed([]string{"HS512", h["kid"].(string)}, c)), status: 401, code: invalid},
		{name: "header that is JSON null", header: bearer(signed("null", c)), status: 401, code: invalid},
		{name: "header with a byte order mark", header: bearer(signed("\ufeff"+`{"alg":"HS512","kid":"`+h["kid"].(string)+`","typ":"JWT"}`, c)), status: 401, code: invalid},
		{name: "header with trailing data", header: bearer(signed(`{"alg":"HS512","kid":"`+h["kid"].(string)+`","typ":"JWT"}{}`, c)), status: 401, code: invalid},
		{name: "claims that are a JSON array", header: bearer(signed(h, []any{c})), status: 401, code: invalid},
		{name: "claims that are a string", header: bearer(signed(h, `"alice"`)), status: 401, code: invalid},
		{name: "claims nested a thousand deep", header: bearer(signed(h, strings.Repeat(`{"a":`, 1000)+"1"+strings.Repeat("}", 1000))), status: 401, code: invalid},
		{name: "JWS JSON serialization, flattened", header: bearer(jwsJSON), status: 401, code: invalid},
		{name: "JWS JSON serialization, general", header: bearer(jwsGeneral), status: 401, code: invalid},
		{name: "JWS JSON serialization, base64url-encoded", header: bearer(b64url([]byte(jwsJSON))), status: 401, code: invalid},
		{name: "zip DEF with deflated claims, signed with the real key", header: bearer(signed(edit(h, "zip", "DEF"), deflated.Bytes())), status: 401, code: invalid},
		{name: "zip DEF over plain claims, signed with the real key", header: bearer(signed(edit(h, "zip", "DEF"), c)), status: 401, code: invalid},
		{name: "the token twice, comma-separated", header: bearer(good + ", " + good), status: 401, code: invalid},
		{name: "the token with a space inside", header: bearer(p[0] + ". " + p[1] + "." + p[2]), status: 401, code: invalid},
		{name: "Basic whose password has a trailing space", header: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+good+" "))}, status: 401, code: invalid},
		{name: "Basic that is not base64", header: []string{"Authorization", "Basic " + good}, status: 401, code: invalid},
		{name: "Basic with the token as the user and no password", header: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(good))}, status: 401, code: invalid},
		{name: "an empty Bearer", header: []string{"Authorization", "Bearer "}, status: 401, code: "unauthorized"},
		{name: "a tab after the scheme", header: []string{"Authorization", "Bearer\t" + good}, status: 401, code: "unauthorized"},
	})
	e.noSecretsInLogs(t)
	// Control: the good token works.
	if res, _ := e.do("GET", "/meta", bearer(good)...); res.StatusCode != 200 {
		t.Fatalf("control: the good token got %d", res.StatusCode)
	}
}

func TestHostile_SignatureAndAlgorithm(t *testing.T) {
	e := newHostileEnv(t, "", "")
	_, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	_, other := e.live("alice", "other", apitoken.Expiry30d, apitoken.DefaultScopes)
	key := realKey(t)
	h, c := parts(t, good)
	p := strings.Split(good, ".")
	kid := h["kid"].(string)
	signed := func(header, claims any, alg string, k any) string {
		jwt := forgeJWT(header, claims, alg, k)
		e.secret(jwt)
		return jwt
	}
	real := func(header any) string { return signed(header, c, "HS512", key) }
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwk := map[string]any{"kty": "RSA", "n": b64url(rsaKey.N.Bytes()), "e": b64url(big.NewInt(int64(rsaKey.E)).Bytes()), "kid": "attacker"}
	_, attackerEd, _ := ed25519.GenerateKey(rand.Reader)
	otherKey := make([]byte, 64)
	rand.Read(otherKey)
	tamper := func(kv ...any) string { return p[0] + "." + seg(edit(c, kv...)) + "." + p[2] }

	const invalid = "invalid_token"
	cases := []hostileCase{
		{name: "alg none without a signature", header: bearer(signed(edit(h, "alg", "none"), c, "none", nil)), status: 401, code: invalid},
		{name: "alg none with the real signature", header: bearer(real(edit(h, "alg", "none"))), status: 401, code: invalid},
		{name: "alg NONE", header: bearer(signed(edit(h, "alg", "NONE"), c, "none", nil)), status: 401, code: invalid},
		{name: "alg nOnE", header: bearer(signed(edit(h, "alg", "nOnE"), c, "none", nil)), status: 401, code: invalid},
		{name: "downgrade to HS256 with the real key", header: bearer(signed(edit(h, "alg", "HS256"), c, "HS256", key)), status: 401, code: invalid},
		{name: "downgrade to HS384 with the real key", header: bearer(signed(edit(h, "alg", "HS384"), c, "HS384", key)), status: 401, code: invalid},
		{name: "RS256 header over the real HMAC", header: bearer(real(edit(h, "alg", "RS256"))), status: 401, code: invalid},
		{name: "ES256 header over the real HMAC", header: bearer(real(edit(h, "alg", "ES256"))), status: 401, code: invalid},
		{name: "PS512 header over the real HMAC", header: bearer(real(edit(h, "alg", "PS512"))), status: 401, code: invalid},
		{name: "RS256 signed by the attacker with his key in a jwk header", header: bearer(signed(edit(h, "alg", "RS256", "jwk", jwk), c, "RS256", rsaKey)), status: 401, code: invalid},
		{name: "EdDSA signed by the attacker under the real kid", header: bearer(signed(edit(h, "alg", "EdDSA"), c, "EdDSA", attackerEd)), status: 401, code: invalid},
		{name: "key confusion: HS512 keyed with the attacker's RSA public key", header: bearer(signed(h, c, "HS512", rsaKey.PublicKey.N.Bytes())), status: 401, code: invalid},
		{name: "signed with another 64-byte key under the real kid", header: bearer(signed(h, c, "HS512", otherKey)), status: 401, code: invalid},
		{name: "stripped signature", header: bearer(p[0] + "." + p[1] + "."), status: 401, code: invalid},
		{name: "truncated signature", header: bearer(p[0] + "." + p[1] + "." + p[2][:43]), status: 401, code: invalid},
		{name: "a bit flipped in the signature", header: bearer(p[0] + "." + p[1] + "." + flipChar(p[2], 10)), status: 401, code: invalid},
		{name: "the signature of another token", header: bearer(p[0] + "." + p[1] + "." + strings.Split(other, ".")[2]), status: 401, code: invalid},
		{name: "tampered sub under the real signature", header: bearer(tamper("sub", "bob")), status: 401, code: invalid},
		{name: "tampered scope under the real signature", header: bearer(tamper("scope", "meta report admin")), status: 401, code: invalid},
		{name: "tampered tid under the real signature", header: bearer(tamper("tid", "tok_other")), status: 401, code: invalid},
		{name: "exp removed under the real signature", header: bearer(tamper("exp", nil)), status: 401, code: invalid},
		{name: "kid path traversal", header: bearer(real(edit(h, "kid", "../../../../../../etc/passwd"))), status: 401, code: invalid},
		{name: "kid SQL injection", header: bearer(real(edit(h, "kid", "' OR '1'='1"))), status: 401, code: invalid},
		{name: "kid empty", header: bearer(real(edit(h, "kid", ""))), status: 401, code: invalid},
		{name: "kid null", header: bearer(real(edit(h, "kid", json.RawMessage("null")))), status: 401, code: invalid},
		{name: "kid a number", header: bearer(real(edit(h, "kid", 1))), status: 401, code: invalid},
		{name: "kid an array of the real kid", header: bearer(real(edit(h, "kid", []string{kid}))), status: 401, code: invalid},
		{name: "kid an operator object", header: bearer(real(edit(h, "kid", map[string]string{"$ne": ""}))), status: 401, code: invalid},
		{name: "kid the real one in upper case", header: bearer(real(edit(h, "kid", strings.ToUpper(kid)))), status: 401, code: invalid},
		{name: "kid the real one with a NUL", header: bearer(real(edit(h, "kid", kid+"\x00"))), status: 401, code: invalid},
		{name: "kid the real one with a trailing space", header: bearer(real(edit(h, "kid", kid+" "))), status: 401, code: invalid},
		{name: "jku header", header: bearer(real(edit(h, "jku", "https://evil.example/jwks.json"))), status: 401, code: invalid},
		{name: "x5u header", header: bearer(real(edit(h, "x5u", "https://evil.example/cert.pem"))), status: 401, code: invalid},
		{name: "jwk header with the real key as an oct key", header: bearer(real(edit(h, "jwk", map[string]any{"kty": "oct", "k": b64url(key)}))), status: 401, code: invalid},
		{name: "x5c header", header: bearer(real(edit(h, "x5c", []string{"MIIB"}))), status: 401, code: invalid},
		{name: "x5t header", header: bearer(real(edit(h, "x5t", "abc"))), status: 401, code: invalid},
		{name: "crit header", header: bearer(real(edit(h, "crit", []string{"exp"}))), status: 401, code: invalid},
		{name: "crit naming an unknown extension", header: bearer(real(edit(h, "crit", []string{"http://evil.example/ext"}, "http://evil.example/ext", true))), status: 401, code: invalid},
		{name: "cty header", header: bearer(real(edit(h, "cty", "JWT"))), status: 401, code: invalid},
		{name: "b64 false (unencoded payload)", header: bearer(real(edit(h, "b64", false, "crit", []string{"b64"}))), status: 401, code: invalid},
		{name: "typ replaced", header: bearer(real(edit(h, "typ", "at+jwt"))), status: 401, code: invalid},
	}
	e.run(t, cases)
	e.noSecretsInLogs(t)
	if e.app.Authenticator().Stats().JWTCacheLen != 0 {
		t.Errorf("the JWT cache holds %d entries after refusals only", e.app.Authenticator().Stats().JWTCacheLen)
	}
	if res, _ := e.do("GET", "/meta", bearer(good)...); res.StatusCode != 200 {
		t.Fatalf("control: the good token got %d", res.StatusCode)
	}
}

// flipChar changes the character at i of a base64url string to another.
func flipChar(s string, i int) string {
	r := byte('A')
	if s[i] == 'A' {
		r = 'B'
	}
	return s[:i] + string(r) + s[i+1:]
}

func TestHostile_Claims(t *testing.T) {
	e := newHostileEnv(t, "", "")
	tok, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	_, bobs := e.live("bob", "bob's", apitoken.Expiry30d, apitoken.DefaultScopes)
	otherTok, _ := e.live("alice", "alice's other", apitoken.Expiry30d, apitoken.DefaultScopes)
	key := realKey(t)
	h, c := parts(t, good)
	_, bc := parts(t, bobs)
	now := time.Now().Unix()
	// Each is signed with the real key and carries the token's real jti, so
	// only the claim under test is wrong.
	resign := func(kv ...any) []string {
		jwt := forgeJWT(h, edit(c, kv...), "HS512", key)
		e.secret(jwt)
		return bearer(jwt)
	}
	const invalid = "invalid_token"
	e.run(t, []hostileCase{
		{name: "exp an hour ago", header: resign("exp", now-3600), status: 401, code: invalid, desc: "token expired"},
		{name: "exp a second ago, within the leeway", header: resign("exp", now-1), status: 401, code: invalid, desc: "token expired"},
		{name: "exp now", header: resign("exp", now), status: 401, code: invalid, desc: "token expired"},
		{name: "exp as a string", header: resign("exp", "2999-01-01"), status: 401, code: invalid},
		{name: "exp beyond any date", header: resign("exp", json.RawMessage("1e400")), status: 401, code: invalid},
		{name: "exp negative", header: resign("exp", -1), status: 401, code: invalid},
		{name: "exp true", header: resign("exp", true), status: 401, code: invalid},
		{name: "nbf in an hour", header: resign("nbf", now+3600), status: 401, code: invalid},
		{name: "iat in an hour", header: resign("iat", now+3600), status: 401, code: invalid},
		{name: "iat as a string", header: resign("iat", "now"), status: 401, code: invalid},
		{name: "iss of another deployment", header: resign("iss", "https://other.test"), status: 401, code: invalid},
		{name: "iss with a trailing slash", header: resign("iss", "https://reports.test/"), status: 401, code: invalid},
		{name: "iss in upper case", header: resign("iss", "HTTPS://REPORTS.TEST"), status: 401, code: invalid},
		{name: "iss missing", header: resign("iss", nil), status: 401, code: invalid},
		{name: "iss as an array", header: resign("iss", []string{"https://reports.test"}), status: 401, code: invalid},
		{name: "sub of another user", header: resign("sub", "bob"), status: 401, code: invalid},
		{name: "sub in another case", header: resign("sub", "Alice"), status: 401, code: invalid},
		{name: "sub missing", header: resign("sub", nil), status: 401, code: invalid},
		{name: "sub as a number", header: resign("sub", 1), status: 401, code: invalid},
		{name: "tid of another token of the same owner", header: resign("tid", otherTok.ID), status: 401, code: invalid},
		{name: "tid of another user's token with his sub", header: resign("tid", bc["tid"], "sub", "bob"), status: 401, code: invalid},
		{name: "tid of no token", header: resign("tid", "tok_aaaaaaaaaaaaaaaaaaaaaaaaaa"), status: 401, code: invalid},
		{name: "tid missing", header: resign("tid", nil), status: 401, code: invalid},
		{name: "jti of another generation", header: resign("jti", "guessed"), status: 401, code: invalid},
		{name: "jti missing", header: resign("jti", nil), status: 401, code: invalid},
		{name: "aud as a number", header: resign("aud", 7), status: 401, code: invalid},
		{name: "scope as a list", header: resign("scope", []string{"meta", "report"}), status: 401, code: invalid},
	})
	e.noSecretsInLogs(t)
	if res, _ := e.do("GET", "/meta", bearer(good)...); res.StatusCode != 200 {
		t.Fatalf("control: the good token got %d", res.StatusCode)
	}
	_ = tok
}

// A JWT signed with the real key cannot widen what its record allows: the
// record's scopes and expiry cut whatever the claims say ("lifetime over
// the policy").
func TestHostile_ClaimsCannotWidenTheRecord(t *testing.T) {
	e := newHostileEnv(t, "", "")
	key := realKey(t)
	meta := mustScope(apitoken.ScopeMeta)
	tok, jwt := e.live("alice", "meta 30d", apitoken.Expiry30d, meta)
	h, c := parts(t, jwt)
	wide := forgeJWT(h, edit(c, "scope", "meta report", "exp", time.Now().AddDate(100, 0, 0).Unix()), "HS512", key)
	noExp := forgeJWT(h, edit(c, "exp", nil), "HS512", key)
	e.secret(wide, noExp)
	for name, j := range map[string]string{"a hundred years and both scopes": wide, "no exp": noExp} {
		before := e.up.Hits.Load()
		res, _ := e.do("GET", "/data/x", bearer(j)...)
		if res.StatusCode != 403 || e.up.Hits.Load() != before {
			t.Errorf("%s: /data got %d (upstream reached %t), want 403: the record has meta only", name, res.StatusCode, e.up.Hits.Load() != before)
		}
		res, _ = e.do("GET", "/meta", bearer(j)...)
		if res.StatusCode != 200 {
			t.Fatalf("%s: /meta got %d", name, res.StatusCode)
		}
		if got, want := res.Header.Get("Api-Token-Expiration"), tok.ExpiresAt().UTC().Format(http.TimeFormat); got != want {
			t.Errorf("%s: Api-Token-Expiration %q, want the record's %q", name, got, want)
		}
	}

	// A one-day token generated two days ago is expired by its record,
	// whatever exp its JWT claims.
	e.clock.Set(time.Now().Add(-48 * time.Hour))
	_, old := e.live("alice", "old", apitoken.Expiry1d, apitoken.DefaultScopes)
	e.clock.Set(time.Now())
	oh, oc := parts(t, old)
	forever := forgeJWT(oh, edit(oc, "exp", time.Now().AddDate(100, 0, 0).Unix()), "HS512", key)
	e.secret(forever)
	e.run(t, []hostileCase{
		{name: "an expired record with exp a century away", header: bearer(forever), status: 401, code: "invalid_token", desc: "token expired"},
		{name: "an expired record with its own JWT", header: bearer(old), status: 401, code: "invalid_token", desc: "token expired"},
	})
	e.noSecretsInLogs(t)
}

func TestHostile_ServerSideState(t *testing.T) {
	e := newHostileEnv(t, "", "")
	ctx := context.Background()

	t.Run("a superseded JWT is refused at once although it is cached", func(t *testing.T) {
		tok, first := e.live("alice", "regen", apitoken.Expiry30d, apitoken.DefaultScopes)
		if res, _ := e.do("GET", "/meta", bearer(first)...); res.StatusCode != 200 {
			t.Fatalf("first JWT got %d", res.StatusCode)
		}
		second, _, err := e.svc.Generate(ctx, e.owner, tok.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.secret(second)
		e.run(t, []hostileCase{{name: "the first JWT", header: bearer(first), status: 401, code: "invalid_token"}})
		if res, _ := e.do("GET", "/meta", bearer(second)...); res.StatusCode != 200 {
			t.Fatalf("second JWT got %d", res.StatusCode)
		}
	})

	t.Run("no request that starts after a revocation returns is let through", func(t *testing.T) {
		tok, jwt := e.live("alice", "busy", apitoken.Expiry30d, apitoken.DefaultScopes)
		var revokedAt atomic.Int64 // unix nanos; 0 until the revocation returned
		var late, lateOK, early atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now().UnixNano()
					req, _ := http.NewRequest("GET", e.Base+"/meta", nil)
					req.Header.Set("Authorization", "Bearer "+jwt)
					res, err := e.Tester.Client.Do(req)
					if err != nil {
						continue
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if r := revokedAt.Load(); r != 0 && start > r {
						late.Add(1)
						if res.StatusCode == 200 {
							lateOK.Add(1)
						}
					} else if res.StatusCode == 200 {
						early.Add(1)
					}
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := e.svc.Revoke(ctx, e.owner, tok.ID); err != nil {
			t.Fatal(err)
		}
		revokedAt.Store(time.Now().UnixNano())
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()
		if early.Load() == 0 || late.Load() == 0 {
			t.Fatalf("%d requests before and %d after the revocation: the test did not race", early.Load(), late.Load())
		}
		if lateOK.Load() != 0 {
			t.Fatalf("%d of %d requests started after the revocation returned were let through", lateOK.Load(), late.Load())
		}
	})

	t.Run("of concurrent regenerations exactly one JWT works", func(t *testing.T) {
		tok, first := e.live("alice", "raced", apitoken.Expiry30d, apitoken.DefaultScopes)
		if res, _ := e.do("GET", "/meta", bearer(first)...); res.StatusCode != 200 { // cached
			t.Fatalf("got %d", res.StatusCode)
		}
		const n = 8
		jwts := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, _, err := e.svc.Generate(ctx, e.owner, tok.ID)
				if err == nil {
					jwts[i] = j
				}
			}()
		}
		wg.Wait()
		working := 0
		for _, j := range append(jwts, first) {
			if j == "" {
				continue
			}
			e.secret(j)
			before := e.up.Hits.Load()
			res, _ := e.do("GET", "/meta", bearer(j)...)
			if res.StatusCode == 200 {
				working++
			} else if e.up.Hits.Load() != before {
				t.Error("a refused JWT reached the upstream")
			}
		}
		if working != 1 {
			t.Fatalf("%d JWTs work after %d concurrent regenerations, want exactly 1", working, n)
		}
	})
	e.noSecretsInLogs(t)
}

func TestHostile_Transport(t *testing.T) {
	e := newHostileEnv(t, "", "")
	_, good := e.live("alice", "all", apitoken.Expiry30d, apitoken.DefaultScopes)
	_, meta := e.live("alice", "meta only", apitoken.Expiry30d, mustScope(apitoken.ScopeMeta))
	_, exposed := e.live("alice", "sent in URLs", apitoken.Expiry30d, apitoken.DefaultScopes)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+good))

	t.Run("credentials", func(t *testing.T) {
		e.run(t, []hostileCase{
			{name: "two Authorization headers", header: append(bearer(good), bearer(good)...), status: 400, code: "invalid_request"},
			{name: "Authorization and authorization", raw: "/meta", header: []string{"Authorization", "Bearer " + good, "authorization", "Bearer " + good}, status: 400, code: "invalid_request"},
			{name: "Bearer and Basic headers", header: []string{"Authorization", "Bearer " + good, "Authorization", basic}, status: 400, code: "invalid_request"},
			{name: "Bearer and Basic in one header", header: []string{"Authorization", "Bearer " + good + ", " + basic}, status: 401, code: "invalid_token"},
			// A JWT in a URL is revoked (TestHostile_TokenInURLIsRevoked).
			{name: "access_token in the query", path: "/meta?access_token=" + exposed, status: 400, code: "invalid_request"},
			{name: "access_token in the query beside a good header", path: "/meta?access_token=" + exposed, header: bearer(good), status: 400, code: "invalid_request"},
			{name: "access_token percent-encoded", path: "/meta?access%5Ftoken=" + exposed, header: bearer(good), status: 400, code: "invalid_request"},
			{name: "access_token with an encoded first letter", path: "/meta?%61ccess_token=" + exposed, header: bearer(good), status: 400, code: "invalid_request"},
			{name: "access_token double-encoded", path: "/meta?access%255Ftoken=x", header: bearer(good), status: 400, code: "invalid_request"},
			{name: "ACCESS_TOKEN", path: "/meta?ACCESS_TOKEN=x", header: bearer(good), status: 400, code: "invalid_request"},
			{name: "access_token after a semicolon", path: "/meta?year=2026;access_token=x", header: bearer(good), status: 400, code: "invalid_request"},
			{name: "access_token as a PHP array", path: "/meta?access_token[]=x", header: bearer(good), status: 400, code: "invalid_request"},
			{name: "access_token without a value", path: "/meta?access_token", header: bearer(good), status: 400, code: "invalid_request"},
		})
		// A parameter that only mentions the name is not a token.
		if res, _ := e.do("GET", "/meta?q=access_tokens_report", bearer(good)...); res.StatusCode != 200 {
			t.Errorf("a query value naming access_tokens got %d", res.StatusCode)
		}
	})

	t.Run("path tricks", func(t *testing.T) {
		const bad = "invalid_request"
		e.run(t, []hostileCase{
			{name: "dot-dot from meta to data", raw: "/meta/../data/x", header: bearer(meta), status: 400, code: bad},
			{name: "dot then dot-dot", raw: "/meta/./../data/x", header: bearer(meta), status: 400, code: bad},
			{name: "encoded dots", raw: "/meta/%2e%2e/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "encoded dots in upper case", raw: "/meta/%2E%2E/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "half-encoded dots", raw: "/meta/.%2e/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "double-encoded dots", raw: "/meta/%252e%252e/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "triple-encoded dots", raw: "/meta/%25252e%25252e/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "double-encoded slash", raw: "/meta%252f..%252fdata/x", header: bearer(meta), status: 400, code: bad},
			{name: "an encoded percent before hex digits", raw: "/meta/%25%32%65%25%32%65/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "encoded slash", raw: "/meta%2f..%2fdata/x", header: bearer(meta), status: 400, code: bad},
			{name: "encoded backslash", raw: "/meta%5c..%5cdata/x", header: bearer(meta), status: 400, code: bad},
			{name: "a literal backslash", raw: "/meta\\..\\data/x", header: bearer(meta), status: 400, code: bad},
			{name: "encoded NUL", raw: "/meta%00/../data/x", header: bearer(meta), status: 400, code: bad},
			{name: "dot-dot with a path parameter (Tomcat)", raw: "/meta/..;/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "dot-dot with a named path parameter", raw: "/meta/..;jsessionid=x/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "dot-dot with an encoded semicolon", raw: "/meta/..%3b/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "dot with a path parameter", raw: "/meta/.;/../data/x", header: bearer(meta), status: 400, code: bad},
			{name: "three dots (Windows)", raw: "/meta/.../data/x", header: bearer(meta), status: 400, code: bad},
			{name: "dot-dot and a space (Windows)", raw: "/meta/..%20/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "overlong UTF-8 dots", raw: "/meta/%c0%ae%c0%ae/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "fullwidth dots (NFKC)", raw: "/meta/%ef%bc%8e%ef%bc%8e/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "fullwidth solidus around dot-dot (NFKC)", raw: "/meta%ef%bc%8f..%ef%bc%8fdata/x", header: bearer(meta), status: 400, code: bad},
			{name: "fullwidth backslash around dot-dot (NFKC, Windows)", raw: "/meta/%ef%bc%bc..%ef%bc%bcdata/x", header: bearer(meta), status: 400, code: bad},
			{name: "a fullwidth percent sign before 2e (NFKC, then decoding)", raw: "/meta/%ef%bc%852e%ef%bc%852e/data/x", header: bearer(meta), status: 400, code: bad},
			{name: "absolute-form target with dot-dot", raw: fmt.Sprintf("http://localhost:%d/meta/../data/x", testHTTPPort), header: bearer(meta), status: 400, code: bad},
			{name: "double slash before data", raw: "//data/x", header: bearer(meta), status: 403, code: "insufficient_scope"},
			{name: "data in upper case", raw: "/DATA/x", header: bearer(meta), status: 403, code: "insufficient_scope"},
			{name: "data in mixed case", raw: "/dAtA/x", header: bearer(meta), status: 403, code: "insufficient_scope"},
			{name: "a path no rule matches", raw: "/data", header: bearer(meta), status: 403, code: "insufficient_scope"},
			{name: "a path no rule matches, even for a token with every scope", raw: "/admin/x", header: bearer(good), status: 403, code: "insufficient_scope"},
			{name: "meta with a suffix is not meta", raw: "/metadata/x", header: bearer(meta), status: 403, code: "insufficient_scope"},
		})
		// Case does not widen anything either: /META is the meta scope.
		if res, _ := e.do("GET", "/META/reports", bearer(meta)...); res.StatusCode != 200 {
			t.Errorf("/META/reports with a meta token got %d", res.StatusCode)
		}
	})
	e.noSecretsInLogs(t)
}

// With default_scope, a path that no rule matches passes with the default
// scope; such a path must not be one that a server reads as a path of
// another scope: Tomcat drops ;parameters, Windows trailing dots and spaces,
// and some frameworks fold Unicode compatibility forms.
func TestHostile_PathsThatServersReadAsAnotherScope(t *testing.T) {
	e := newHostileEnvGuard(t, "", "", "default_scope meta")
	_, meta := e.live("alice", "meta only", apitoken.Expiry30d, mustScope(apitoken.ScopeMeta))
	const bad = "invalid_request"
	e.run(t, []hostileCase{
		{name: "a path parameter on data (Tomcat)", raw: "/data;x/sales", header: bearer(meta), status: 400, code: bad},
		{name: "an empty path parameter on data", raw: "/data;/sales", header: bearer(meta), status: 400, code: bad},
		{name: "an encoded path parameter on data", raw: "/data%3bx/sales", header: bearer(meta), status: 400, code: bad},
		{name: "a trailing dot on data (Windows)", raw: "/data./sales", header: bearer(meta), status: 400, code: bad},
		{name: "a trailing space on data (Windows)", raw: "/data%20/sales", header: bearer(meta), status: 400, code: bad},
		{name: "fullwidth letters (NFKC)", raw: "/%ef%bc%a4%ef%bc%a1%ef%bc%b4%ef%bc%a1/sales", header: bearer(meta), status: 400, code: bad},
		{name: "a modifier letter a (NFKC)", raw: "/d%e1%b5%83ta/sales", header: bearer(meta), status: 400, code: bad},
	})
	// A parameter, dot or Unicode form that changes no scope is served.
	e.served(t, meta, "/reports;v=2", "/meta;v=2", "/caf%c3%a9", "/meta/sales.", "/other/%ef%bd%98")
	e.noSecretsInLogs(t)
}

// Identity headers sent by the client never reach the upstream, in any
// spelling a CGI-style upstream folds onto ours: also when the server lets
// underscore and dot header names in (Caddy drops them by default).
func TestHostile_SpoofedIdentityHeaders(t *testing.T) {
	for name, server := range map[string]string{
		"Caddy's default server":                     "",
		"a server that lets underscores and dots in": "servers {\n\t\texpected_underscore_headers X_Api_Token_*\n\t\texpected_dot_headers X.Api.Token.*\n\t}",
	} {
		t.Run(name, func(t *testing.T) {
			e := newHostileEnv(t, server, "")
			tok, good := e.live("alice", "all", apitoken.Expiry30d, apitoken.DefaultScopes)
			status, _, body := e.rawRequest(t, "", "/meta", "Authorization", "Bearer "+good,
				"X-Api-Token-User", "root", "x-api-token-id", "tok_forged", "X-API-TOKEN-SCOPES", "meta report admin",
				"X_Api_Token_User", "root", "X_Api_Token_Id", "tok_forged", "X.Api.Token.Name", "forged", "x_api_token_scopes", "admin",
				"Connection", "X-Api-Token-User, X_Api_Token_Id, keep-alive")
			if status != 200 {
				t.Fatalf("got %d: %s", status, body)
			}
			hdr := e.up.LastHeaders()
			for name, want := range map[string]string{"X-Api-Token-User": "alice", "X-Api-Token-Id": tok.ID, "X-Api-Token-Name": "all", "X-Api-Token-Scopes": "meta report"} {
				if got := hdr.Values(name); len(got) != 1 || got[0] != want {
					t.Errorf("upstream saw %s = %q, want exactly %q", name, got, want)
				}
			}
			for name, v := range hdr {
				folded := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
				if strings.HasPrefix(folded, "x-api-token-") && strings.ContainsAny(name, "_.") {
					t.Errorf("upstream saw the client's %s: %q (a CGI upstream reads it as %s)", name, v, folded)
				}
			}
			if hdr.Get("Authorization") != "" {
				t.Error("upstream saw the Authorization header")
			}
			e.noSecretsInLogs(t)
		})
	}
}

func TestHostile_ResourceExhaustion(t *testing.T) {
	e := newHostileEnv(t, "", "")
	_, good := e.live("alice", "good", apitoken.Expiry30d, apitoken.DefaultScopes)
	if res, _ := e.do("GET", "/meta", bearer(good)...); res.StatusCode != 200 {
		t.Fatalf("control: %d", res.StatusCode)
	}
	auth := e.app.Authenticator()
	cached := auth.Stats().JWTCacheLen
	key := realKey(t)
	h, c := parts(t, good)

	e.run(t, []hostileCase{
		{name: "a dot flood", header: bearer(strings.Repeat(".", 8<<10)), status: 401, code: "invalid_token"},
		{name: "a dot flood after the real header", header: bearer(strings.Split(good, ".")[0] + strings.Repeat(".", 8000)), status: 401, code: "invalid_token"},
		{name: "a token of 8 KiB and one byte", header: bearer(strings.Repeat("a", 8<<10+1)), status: 400, code: "invalid_request"},
		{name: "an Authorization header of 16 KiB", header: bearer(strings.Repeat("a", 16<<10)), status: 400, code: "invalid_request"},
		{name: "a Basic header hiding 12 KiB", header: []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+strings.Repeat("a", 12<<10)))}, status: 400, code: "invalid_request"},
		{name: "headers over a megabyte", header: []string{"Authorization", "Bearer " + good, "X-Fill", strings.Repeat("a", 2<<20)}, status: 431},
	})

	// Many distinct bad tokens, of every kind that fails before the state
	// check, must not grow the JWT cache: only verified JWTs are cached.
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 150 {
				var j string
				switch i % 5 {
				case 0: // garbage
					j = fmt.Sprintf("%d.%d.%d", w, i, i*7)
				case 1: // the real header, a forged payload
					j = forgeJWT(h, edit(c, "jti", fmt.Sprintf("x%d-%d", w, i)), "HS512", []byte(strings.Repeat("k", 64)))
				case 2: // signed with the real key, but expired
					j = forgeJWT(h, edit(c, "jti", fmt.Sprintf("e%d-%d", w, i), "exp", time.Now().Add(-time.Hour).Unix()), "HS512", key)
				case 3: // signed with the real key, another issuer
					j = forgeJWT(h, edit(c, "jti", fmt.Sprintf("i%d-%d", w, i), "iss", "x"), "HS512", key)
				case 4: // alg none
					j = forgeJWT(edit(h, "alg", "none"), edit(c, "jti", fmt.Sprintf("n%d-%d", w, i)), "none", nil)
				}
				req, _ := http.NewRequest("GET", e.Base+"/meta", nil)
				req.Header.Set("Authorization", "Bearer "+j)
				res, err := e.Tester.Client.Do(req)
				if err != nil || res.StatusCode != 401 {
					failed.Add(1)
				}
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d bad tokens were not answered 401", failed.Load())
	}
	if got := auth.Stats().JWTCacheLen; got != cached {
		t.Fatalf("the JWT cache grew from %d to %d entries on 600 bad tokens", cached, got)
	}
	if e.up.Hits.Load() != 1 {
		t.Fatalf("the upstream was reached %d times, want only the control", e.up.Hits.Load())
	}
	e.noSecretsInLogs(t)
}

// A request that asks to switch protocols is refused before its credential
// is looked at: once an upstream has switched, Caddy only copies bytes, and
// whatever the client sends next on that connection reaches the upstream
// without the guard. The upstream here is a real h2c server (it answers an
// h2c upgrade with 101 and speaks HTTP/2 from then on). Without the
// refusal, the first case is answered 101 Switching Protocols by it.
func TestHostile_ProtocolSwitch(t *testing.T) {
	e := newHostileEnv(t, "", "")
	e.up = caddytesting.NewUpstreamWrapped(t, func(h http.Handler) http.Handler { return h2c.NewHandler(h, &http2.Server{}) },
		func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, `{"path":%q}`, r.URL.Path) })
	e.proxy = "header_up Connection \"Upgrade, HTTP2-Settings\""
	e.reload("")
	_, good := e.live("alice", "all", apitoken.Expiry30d, apitoken.DefaultScopes)

	const bad = "invalid_request"
	// Caddy drops the headers that Connection names and sends
	// "Connection: Upgrade" on; the site's header_up names HTTP2-Settings
	// again, so this upgrade reaches the h2c server whole.
	h2cUpgrade := []string{"Connection", "Upgrade", "Upgrade", "h2c", "HTTP2-Settings", h2Settings}
	websocket := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13"}
	e.run(t, []hostileCase{
		{name: "an h2c upgrade with a valid token", raw: "/meta", header: append(bearer(good), h2cUpgrade...), status: 400, code: bad},
		{name: "an h2c upgrade without a credential", raw: "/meta", header: h2cUpgrade, status: 400, code: bad},
		{name: "an h2c upgrade as RFC 7540 spells it", raw: "/meta", header: append(bearer(good), "Connection", "Upgrade, HTTP2-Settings", "Upgrade", "h2c", "HTTP2-Settings", h2Settings), status: 400, code: bad},
		{name: "a WebSocket upgrade with a valid token", raw: "/meta", header: append(bearer(good), websocket...), status: 400, code: bad},
		{name: "Upgrade without Connection", raw: "/meta", header: append(bearer(good), "Upgrade", "h2c"), status: 400, code: bad},
		{name: "upgrade in lower case", raw: "/meta", header: append(bearer(good), "connection", "upgrade", "upgrade", "websocket"), status: 400, code: bad},
		{name: "an empty Upgrade", raw: "/meta", header: append(bearer(good), "Connection", "Upgrade", "Upgrade", ""), status: 400, code: bad},
		{name: "HTTP2-Settings alone", raw: "/meta", header: append(bearer(good), "HTTP2-Settings", h2Settings), status: 400, code: bad},
		{name: "Connection naming Upgrade only", raw: "/meta", header: append(bearer(good), "Connection", "keep-alive, Upgrade"), status: 400, code: bad},
		{name: "Connection naming HTTP2-Settings only", raw: "/meta", header: append(bearer(good), "Connection", "http2-settings"), status: 400, code: bad},
	})
	if res, _ := e.do("GET", "/meta", bearer(good)...); res.StatusCode != 200 {
		t.Fatalf("control: the good token got %d", res.StatusCode)
	}
	if hdr := e.up.LastHeaders(); hdr.Get("Upgrade") != "" || hdr.Get("Http2-Settings") != "" {
		t.Errorf("the upstream saw Upgrade %q, HTTP2-Settings %q", hdr.Get("Upgrade"), hdr.Get("Http2-Settings"))
	}
	e.noSecretsInLogs(t)

	// The control, last (the switched upstream serves the upgrade request
	// later, on its own): the same upgrade, straight to it, switches.
	conn, err := net.Dial("tcp", e.up.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /meta HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n", h2Settings)
	if res, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("control: the h2c upstream did not switch protocols (%v)", err)
	}
}

// h2Settings is an HTTP2-Settings value: SETTINGS_MAX_CONCURRENT_STREAMS
// 100, SETTINGS_INITIAL_WINDOW_SIZE 65535.
const h2Settings = "AAMAAABkAAQAAP__"

// With default_scope, a request with no path to scope would pass with the
// default scope: CONNECT (a tunnel to anywhere the upstream reaches) and
// the asterisk form (OPTIONS *). Both are refused.
func TestHostile_RequestsWithoutAPath(t *testing.T) {
	e := newHostileEnvGuard(t, "", "", "default_scope meta")
	_, all := e.live("alice", "all", apitoken.Expiry30d, apitoken.DefaultScopes)
	const bad = "invalid_request"
	authority := fmt.Sprintf("localhost:%d", testHTTPPort)
	e.run(t, []hostileCase{
		{name: "CONNECT to the site", method: "CONNECT", raw: authority, header: bearer(all), status: 400, code: bad},
		{name: "CONNECT with a path", method: "CONNECT", raw: "/meta", header: bearer(all), status: 400, code: bad},
		// Go's server answers OPTIONS * itself, before Caddy.
		{name: "OPTIONS *", method: "OPTIONS", raw: "*", header: bearer(all), status: 200},
		{name: "POST *", method: "POST", raw: "*", header: bearer(all), status: 400, code: bad},
		{name: "GET *", raw: "*", header: bearer(all), status: 400, code: bad},
	})
	e.noSecretsInLogs(t)
}

// An upstream that decodes the path twice reads /%2564ata as /data: any
// double-encoded octet (%25 and two hex digits, in any case, or a %25
// whose digits are encoded too) is refused, under default_scope too.
func TestHostile_DoubleEncodedOctets(t *testing.T) {
	e := newHostileEnvGuard(t, "", "", "default_scope meta")
	_, meta := e.live("alice", "meta only", apitoken.Expiry30d, mustScope(apitoken.ScopeMeta))
	const bad = "invalid_request"
	e.run(t, []hostileCase{
		{name: "a double-encoded d", raw: "/%2564ata/sales", header: bearer(meta), status: 400, code: bad},
		{name: "double-encoded in upper case", raw: "/%2544ATA/sales", header: bearer(meta), status: 400, code: bad},
		{name: "a double-encoded a in the middle", raw: "/d%2561ta/sales", header: bearer(meta), status: 400, code: bad},
		{name: "a double-encoded letter with lower-case digits", raw: "/%2564%2561ta/sales", header: bearer(meta), status: 400, code: bad},
		{name: "an encoded percent before encoded digits", raw: "/%25%36%34ata/sales", header: bearer(meta), status: 400, code: bad},
		{name: "triple-encoded", raw: "/%252564ata/sales", header: bearer(meta), status: 400, code: bad},
		{name: "in a segment no rule names", raw: "/other/%2541", header: bearer(meta), status: 400, code: bad},
	})
	// A percent sign that encodes nothing further is served.
	e.served(t, meta, "/other/100%25", "/other/%25zz", "/meta/a%20b")
	e.noSecretsInLogs(t)
}

// Identity headers sent as trailers of a chunked body never reach the
// upstream either, declared in the Trailer header or not, in any spelling
// a CGI-style upstream folds onto ours.
func TestHostile_SpoofedIdentityTrailers(t *testing.T) {
	e := newHostileEnv(t, "", "")
	e.up = caddytesting.NewUpstreamFunc(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // trailers arrive after the body
		json.NewEncoder(w).Encode(r.Trailer)
	})
	e.reload("")
	_, good := e.live("alice", "all", apitoken.Expiry30d, apitoken.DefaultScopes)

	conn, err := net.Dial("tcp", fmt.Sprintf("localhost:%d", testHTTPPort))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /meta HTTP/1.1\r\nHost: localhost:%d\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n"+
		"Trailer: X-Api-Token-User, x_api_token_id, X-Other\r\nConnection: close\r\n\r\n"+
		"5\r\nhello\r\n0\r\n"+
		"X-Api-Token-User: root\r\nx_api_token_id: tok_forged\r\nX.Api.Token.Name: forged\r\nX-Api-Token-Scopes: admin\r\nX-Other: kept\r\n\r\n",
		testHTTPPort, good)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var seen http.Header
	if err := json.NewDecoder(res.Body).Decode(&seen); err != nil || res.StatusCode != 200 {
		t.Fatalf("got %d (%v)", res.StatusCode, err)
	}
	if seen.Get("X-Other") != "kept" {
		t.Fatalf("the upstream saw trailers %v, want X-Other (the control)", seen)
	}
	for name, v := range seen {
		if isIdentityHeader(name) {
			t.Errorf("the upstream saw the client's trailer %s: %q", name, v)
		}
	}
	e.noSecretsInLogs(t)
}

// Without app, the token logs' activity_by and the realm are the site's
// address as the Caddyfile writes it, never the Host the client sends: a
// site matches its host name whatever the port part of Host says.
func TestHostile_ClientChosenActivityBy(t *testing.T) {
	e := newHostileEnv(t, "", "")
	e.appOption = ""
	e.reload("")
	tok, meta := e.live("alice", "meta only", apitoken.Expiry30d, mustScope(apitoken.ScopeMeta))
	site := fmt.Sprintf("http://localhost:%d", testHTTPPort)
	chosen := "localhost:" + strings.Repeat("x", 2000)
	if status, _, body := e.rawRequest(t, "", "/meta", append(bearer(meta), "Host", chosen)...); status != 200 {
		t.Fatalf("a good request with Host %.20s... got %d: %s", chosen, status, body)
	}
	status, hdr, _ := e.rawRequest(t, "", "/data/x", append(bearer(meta), "Host", chosen)...)
	if want := `Bearer realm="` + site + `"`; status != 403 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), want) {
		t.Errorf("got %d, WWW-Authenticate %.80q, want 403 and the realm %s", status, hdr.Get("WWW-Authenticate"), want)
	}
	logs := e.authLogs(tok.ID)
	if len(logs) != 2 {
		t.Fatalf("%d AUTHENTICATE logs, want 2", len(logs))
	}
	for _, l := range logs {
		if l.ActivityBy != site {
			t.Errorf("activity_by %.40q, want the site's address %q", l.ActivityBy, site)
		}
	}
	e.noSecretsInLogs(t)
}

// A client-supplied string reaches Caddy's log cut to 256 bytes: a 20 KB
// path (or user agent, or Host) must not write 20 KB per request. (Caddy
// reads at most 16 KB of headers by default; this server allows 1 MB.)
func TestHostile_UnboundedStringsInLog(t *testing.T) {
	e := newHostileEnv(t, "servers {\n\t\tmax_header_size 1MB\n\t}", "")
	_, meta := e.live("alice", "meta only", apitoken.Expiry30d, mustScope(apitoken.ScopeMeta))
	long := strings.Repeat("a", 20<<10)
	e.run(t, []hostileCase{
		{name: "no credential", raw: "/meta/" + long, header: []string{"User-Agent", long, "Host", "localhost:" + long}, status: 401, code: "unauthorized"},
		{name: "an unsafe path", raw: "/meta/" + long + "/%2e%2e/data", header: append(bearer(meta), "User-Agent", long), status: 400, code: "invalid_request"},
		{name: "a scope refusal", raw: "/data/" + long, header: append(bearer(meta), "User-Agent", long), status: 403, code: "insufficient_scope"},
		// A 20 KB path with a multi-byte letter where the cut falls.
		{name: "a cut inside a UTF-8 sequence", raw: "/data/x" + strings.Repeat("%c3%a9", 10<<10), header: bearer(meta), status: 403, code: "insufficient_scope"},
	})
	b, err := os.ReadFile(e.Log)
	if err != nil {
		t.Fatal(err)
	}
	refusals := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, strings.Repeat("a", 257)) || strings.Contains(line, strings.Repeat("é", 129)) {
			t.Errorf("a line of Caddy's log holds more than 256 bytes of a client's string: %.120s...", line)
		}
		var entry struct{ Msg, Path string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "api token refused" {
			refusals++
			if !utf8.ValidString(entry.Path) || len(entry.Path) < 200 {
				t.Errorf("the refusal logs the path %.40q (%d bytes), want its first 256 bytes, whole runes", entry.Path, len(entry.Path))
			}
		}
	}
	if refusals != 4 {
		t.Errorf("%d refusals logged, want 4", refusals)
	}
	e.noSecretsInLogs(t)
}

// A JWT sent in a URL has leaked (proxies' logs, browser history,
// referrers): the request is refused and, when the signature is good, the
// token is revoked at once, by "exposed in a URL". An expired JWT or one of
// another deployment revokes nothing; revoke_exposed off keeps the token.
func TestHostile_TokenInURLIsRevoked(t *testing.T) {
	e := newHostileEnv(t, "", "")
	tok, jwt := e.live("alice", "leaked", apitoken.Expiry30d, apitoken.DefaultScopes)
	expiredTok, expiredJWT := e.live("alice", "expired in the URL", apitoken.Expiry30d, apitoken.DefaultScopes)
	h, c := parts(t, expiredJWT)
	expired := forgeJWT(h, edit(c, "exp", time.Now().Add(-time.Hour).Unix()), "HS512", realKey(t))
	foreign := forgeJWT(h, c, "HS512", []byte(strings.Repeat("k", 64)))
	e.secret(expired, foreign)
	if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 {
		t.Fatalf("control: the token got %d", res.StatusCode)
	}
	e.run(t, []hostileCase{
		{name: "the JWT as access_token", path: "/meta?year=2026&access_token=" + jwt, status: 400, code: "invalid_request"},
		{name: "an expired JWT of the same deployment", path: "/meta?access_token=" + expired, status: 400, code: "invalid_request"},
		{name: "a JWT of another key", path: "/meta?access_token=" + foreign, status: 400, code: "invalid_request"},
		{name: "the revoked JWT as a bearer", header: bearer(jwt), status: 401, code: "invalid_token"},
	})
	revokes := func(id string) []apitoken.Log {
		logs, _, err := e.app.backend.store.ListLogs(context.Background(), apitoken.LogFilter{TokenID: id, Activity: apitoken.ActivityRevoke,
			Page: apitoken.Page{Limit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		return logs
	}
	if logs := revokes(tok.ID); len(logs) != 1 || logs[0].ActivityBy != apitoken.RevokedExposedInURL {
		t.Errorf("REVOKE logs %+v, want one by %q", logs, apitoken.RevokedExposedInURL)
	}
	if logs := revokes(expiredTok.ID); len(logs) != 0 {
		t.Errorf("an expired or foreign JWT in a URL revoked its token: %+v", logs)
	}
	if res, _ := e.do("GET", "/meta", bearer(expiredJWT)...); res.StatusCode != 200 {
		t.Errorf("the token whose expired JWT was in a URL got %d", res.StatusCode)
	}
	e.noSecretsInLogs(t)

	// The revoked JWT sent in URLs again and again costs no store write
	// (with the file's write lock held elsewhere, a write would wait 5 s).
	release := holdWriteLock(t, e.db)
	for i := range 20 {
		began := time.Now()
		if res, _ := e.do("GET", "/meta?access_token="+jwt); res.StatusCode != 400 {
			t.Fatalf("the revoked JWT in a URL, again (%d): %d, want 400", i, res.StatusCode)
		}
		if took := time.Since(began); took > time.Second {
			t.Fatalf("the revoked JWT in a URL, again (%d), took %v: it waited on a store write", i, took)
		}
	}
	release()

	t.Run("revoke_exposed off", func(t *testing.T) {
		e := newHostileEnvGuard(t, "", "", "revoke_exposed off")
		_, jwt := e.live("alice", "kept", apitoken.Expiry30d, apitoken.DefaultScopes)
		e.run(t, []hostileCase{{name: "the JWT as access_token", path: "/meta?access_token=" + jwt, status: 400, code: "invalid_request"}})
		if res, _ := e.do("GET", "/meta", bearer(jwt)...); res.StatusCode != 200 {
			t.Errorf("with revoke_exposed off, the token got %d after its JWT was in a URL", res.StatusCode)
		}
	})
}
