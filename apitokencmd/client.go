package apitokencmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-apitokens/caddy-apitokens/internal/jsonhttp"
	"github.com/caddy-apitokens/caddy-apitokens/tokenadmin"
)

// Exit codes of the api-tokens commands.
const (
	ExitOK          = 0 // done
	ExitUsage       = 1 // bad arguments or flags, or a value Caddy refused as invalid (400)
	ExitNotFound    = 2 // no such user or token (404)
	ExitRefused     = 3 // refused by a rule: a conflict with the current state (409) or not allowed (403)
	ExitUnreachable = 4 // Caddy's admin endpoint cannot be reached: is Caddy running?
	ExitServer      = 5 // Caddy answered but could not do it: no api_tokens app, plugin missing, store unavailable, internal error
)

// cmdError is a failure of a command: the message for the operator and the
// exit code.
type cmdError struct {
	code int
	msg  string
}

func (e *cmdError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &cmdError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

// client calls the AdminAPI of a running Caddy on its admin endpoint, as
// Caddy's own commands (caddycmd.AdminAPIRequest) do: over TCP or a unix
// socket, with the Origin the endpoint expects.
type client struct {
	addr       string // as given, for messages
	origin     string
	sendOrigin bool   // a unix socket has no origin to send
	as         string // the acting user, "" for the operator
	http       *http.Client
}

func newClient(adminAddr, as string) (*client, error) {
	na, err := caddy.ParseNetworkAddress(adminAddr)
	if err != nil || na.PortRangeSize() > 1 {
		return nil, usageErrorf("invalid admin address %q: give host:port (such as localhost:2019) or unix//path/to/socket", adminAddr)
	}
	network, dial := na.Network, na.JoinHostPort(0)
	origin, sendOrigin := "http://"+dial, true
	switch {
	case na.IsUnixNetwork():
		origin, sendOrigin = "http://127.0.0.1", false // any host: the socket is the address
		dial, _, _ = strings.Cut(na.Host, "|")         // drop the socket's permission bits
	case na.IsFdNetwork():
		return nil, usageErrorf("admin address %q is a file descriptor; give the address Caddy's admin endpoint listens on", adminAddr)
	}
	return &client{
		addr:       adminAddr,
		origin:     origin,
		sendOrigin: sendOrigin,
		as:         as,
		http: &http.Client{
			Timeout: 60 * time.Second,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, dial)
				},
			},
		},
	}, nil
}

// call sends method path?query with body (JSON, nil for none) and decodes a
// success into out (when not nil). It returns the raw answer, for --json.
// A failure is a *cmdError with the exit code it deserves.
func (c *client) call(ctx context.Context, method, path string, query url.Values, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.origin + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if c.sendOrigin {
		req.Header.Set("Origin", c.origin)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.as != "" {
		req.Header.Set(tokenadmin.ActingUserHeader, c.as)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return nil, &cmdError{code: ExitUnreachable, msg: fmt.Sprintf("reading the answer of Caddy's admin endpoint at %s: %v", c.addr, err)}
	}
	if res.StatusCode >= 300 {
		return nil, c.refusal(res, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, &cmdError{code: ExitServer, msg: fmt.Sprintf("Caddy's admin endpoint at %s answered %s with something that is not the expected JSON: %v", c.addr, path, err)}
		}
	}
	return raw, nil
}

func (c *client) unreachable(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return &cmdError{code: ExitUnreachable, msg: fmt.Sprintf("cannot reach Caddy's admin endpoint at %s: is Caddy running? (%v)", c.addr, op.Err)}
	}
	return &cmdError{code: ExitUnreachable, msg: fmt.Sprintf("no answer from Caddy's admin endpoint at %s: %v", c.addr, err)}
}

// refusal turns an error answer into a cmdError. Answers of AdminAPI are
// {"error": "<code>", "message"}; anything else comes from Caddy itself.
func (c *client) refusal(res *http.Response, raw []byte) error {
	var eb jsonhttp.ErrorBody
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && json.Unmarshal(raw, &eb) == nil && eb.Message != "" {
		code := ExitServer
		switch eb.Error {
		case "bad_request", "unsupported_media_type":
			code = ExitUsage
		case "not_found":
			code = ExitNotFound
		case "conflict", "forbidden":
			code = ExitRefused
		}
		return &cmdError{code: code, msg: eb.Message}
	}
	if res.StatusCode == http.StatusNotFound {
		return &cmdError{code: ExitServer, msg: fmt.Sprintf("the Caddy at %s has no %s API: it was built without caddy-apitokens, or an older version of it (see `caddy list-modules | grep api_tokens`)", c.addr, tokenadmin.BasePath)}
	}
	msg := strings.TrimSpace(string(raw))
	if eb.Error != "" { // Caddy's own APIError: {"error": "<message>"}
		msg = eb.Error
	}
	if res.StatusCode == http.StatusForbidden {
		return &cmdError{code: ExitRefused, msg: fmt.Sprintf("Caddy's admin endpoint at %s refused the request: %s", c.addr, msg)}
	}
	return &cmdError{code: ExitServer, msg: fmt.Sprintf("Caddy's admin endpoint at %s answered HTTP %d: %s", c.addr, res.StatusCode, msg)}
}
