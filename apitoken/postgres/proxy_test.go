package postgres_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a TCP relay between the store and the real PostgreSQL server
// that can fail like a network does: cut every connection, refuse new ones,
// or lose the server's answer to a COMMIT after the server has applied it.
// Only the failures are made up; the database is the real one.
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	down atomic.Bool // refuse (close at once) new connections
	// loseCommitAck: the next COMMIT goes to the server, and its answer is
	// thrown away and the client's connection closed when it comes.
	loseCommitAck atomic.Bool
	// loseCommit: the next COMMIT is not sent on; both sides are closed.
	loseCommit atomic.Bool
	// downAfterCommit: when a COMMIT (or its answer) is lost, the database
	// becomes unreachable: every connection is cut and new ones are refused
	// until down is cleared.
	downAfterCommit atomic.Bool

	accepted atomic.Int64 // connections accepted, refused ones included

	mu    sync.Mutex
	pairs map[*pair]bool
}

// pair is one relayed connection.
type pair struct {
	client, server net.Conn
	// stalled: bytes are read and dropped both ways, nothing is closed (a
	// dead network path).
	stalled atomic.Bool
	// committing: a COMMIT whose answer is to be lost went to the server.
	committing atomic.Bool
}

func (c *pair) close() {
	c.client.Close()
	c.server.Close()
}

func newProxy(t testing.TB, serverDSN string) *proxy {
	t.Helper()
	u, err := url.Parse(serverDSN)
	if err != nil || u.Host == "" {
		t.Skipf("the proxy tests need a postgres:// URL with a host, not %q", serverDSN)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: host, pairs: map[*pair]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

// dsn is dsn pointed at the proxy, without TLS (the proxy reads the
// protocol).
func (p *proxy) dsn(dsn string) string {
	u, _ := url.Parse(dsn)
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return u.String()
}

// cut closes every open connection, both ways.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.pairs {
		c.close()
	}
	clear(p.pairs)
}

// outage makes the database unreachable if downAfterCommit is set.
func (p *proxy) outage() {
	if p.downAfterCommit.Load() {
		p.down.Store(true)
		p.cut()
	}
}

// stall silences every open connection without closing it; new ones work.
func (p *proxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.pairs {
		c.stalled.Store(true)
	}
}

func (p *proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		if p.down.Load() {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &pair{client: client, server: server}
		p.mu.Lock()
		p.pairs[c] = true
		p.mu.Unlock()
		go p.toServer(c)
		go p.toClient(c)
	}
}

// toServer relays the client's messages one by one, watching for COMMIT.
func (p *proxy) toServer(c *pair) {
	defer c.close()
	client, server := c.client, c.server
	// Startup phase: untyped messages (SSL and GSS requests, then the
	// startup message, or a cancel request).
	for {
		msg, err := readMsg(client, false)
		if err != nil {
			return
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
		if len(msg) >= 8 {
			code := binary.BigEndian.Uint32(msg[4:8])
			if code == 80877103 || code == 80877104 { // SSLRequest, GSSENCRequest
				continue
			}
		}
		break
	}
	for {
		msg, err := readMsg(client, true)
		if err != nil {
			return
		}
		if c.stalled.Load() {
			continue
		}
		if msg[0] == 'Q' && bytes.EqualFold(bytes.TrimRight(msg[5:], "\x00"), []byte("commit")) {
			if p.loseCommit.CompareAndSwap(true, false) {
				p.outage()
				return // closes both sides: the server rolls back
			}
			if p.loseCommitAck.CompareAndSwap(true, false) {
				c.committing.Store(true)
			}
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

// toClient relays the server's bytes, unless the answer to a COMMIT is to
// be lost: then the first bytes after it close the client's connection.
func (p *proxy) toClient(c *pair) {
	defer c.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.server.Read(buf)
		if n > 0 && !c.stalled.Load() {
			if c.committing.Load() {
				p.outage()
				return // the server has answered: the COMMIT is applied
			}
			if _, werr := c.client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// readMsg reads one protocol message: type byte (if typed), length, body.
func readMsg(r io.Reader, typed bool) ([]byte, error) {
	head := 4
	if typed {
		head = 5
	}
	msg := make([]byte, head)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(msg[head-4:]))
	if n < 4 || n > 1<<30 {
		return nil, errors.New("bad message length")
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return append(msg, body...), nil
}
