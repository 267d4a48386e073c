// Package notifytest runs the real counterparts of the notification senders
// inside tests: an SMTP server (github.com/emersion/go-smtp) on 127.0.0.1
// that captures what it receives, optionally with STARTTLS or implicit TLS
// and AUTH PLAIN (it refuses any recipient nobody@... for good, with 550),
// and an HTTP receiver (httptest.Server) that records
// webhook requests and can fail the first ones.
package notifytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one email the server accepted.
type Message struct {
	From    string
	To      []string
	Raw     []byte      // as received, headers and encoded body
	Header  mail.Header // parsed
	Subject string      // decoded
	Body    string      // decoded (quoted-printable or base64 undone)
	TLS     bool        // received over TLS
	User    string      // the authenticated user, if any
}

// SMTPServer is a real SMTP server for tests.
type SMTPServer struct {
	// Addr is host:port (127.0.0.1).
	Addr string

	srv      *smtp.Server
	certPool *x509.CertPool

	mu       sync.Mutex
	msgs     []Message
	failData int // answer DATA with a temporary error this many more times
	changed  chan struct{}
	user     string
	password string
}

// SMTPOption configures NewSMTPServer.
type SMTPOption func(*SMTPServer)

// WithAuth requires AUTH PLAIN with user and password before MAIL.
func WithAuth(user, password string) SMTPOption {
	return func(s *SMTPServer) { s.user, s.password = user, password }
}

// NewSMTPServer starts a server on 127.0.0.1:0, stopped when the test ends.
// mode is "none" (plain), "starttls" (offers STARTTLS with a certificate
// for 127.0.0.1 that ClientTLSConfig trusts) or "tls" (TLS from the start).
func NewSMTPServer(t testing.TB, mode string, opts ...SMTPOption) *SMTPServer {
	t.Helper()
	s := &SMTPServer{changed: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	s.srv.Domain = "127.0.0.1"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.AllowInsecureAuth = mode == "none"

	var l net.Listener
	var err error
	if mode == "none" {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	} else {
		cert, pool := selfSigned(t)
		s.certPool = pool
		s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		if mode == "tls" {
			l, err = tls.Listen("tcp", "127.0.0.1:0", s.srv.TLSConfig)
		} else {
			l, err = net.Listen("tcp", "127.0.0.1:0")
		}
	}
	if err != nil {
		t.Fatalf("smtp server: %v", err)
	}
	s.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.srv.Serve(l)
	}()
	t.Cleanup(func() {
		s.srv.Close()
		<-done
	})
	return s
}

// ClientTLSConfig trusts the server's certificate.
func (s *SMTPServer) ClientTLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.certPool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// FailData makes the next n messages fail at DATA with 451 (temporary).
func (s *SMTPServer) FailData(n int) {
	s.mu.Lock()
	s.failData = n
	s.mu.Unlock()
}

// Messages are the messages received so far.
func (s *SMTPServer) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitFor waits until n messages were received (or fails the test after
// timeout) and returns them.
func (s *SMTPServer) WaitFor(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got, ch := len(s.msgs), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Messages()
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("smtp server: %d messages after %s, want %d", got, timeout, n)
		}
	}
}

type session struct {
	s    *SMTPServer
	conn *smtp.Conn
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != ss.s.user || password != ss.s.password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "nobody@") {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failData > 0 {
		s.failData--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	_, isTLS := ss.conn.TLSConnectionState()
	m := Message{From: ss.from, To: append([]string(nil), ss.to...), Raw: raw, TLS: isTLS, User: ss.user}
	if pm, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		m.Header = pm.Header
		m.Subject, _ = new(mime.WordDecoder).DecodeHeader(pm.Header.Get("Subject"))
		body, _ := io.ReadAll(pm.Body)
		m.Body = decodeBody(pm.Header.Get("Content-Transfer-Encoding"), body)
	}
	s.msgs = append(s.msgs, m)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func decodeBody(cte string, body []byte) string {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "quoted-printable":
		b, err := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		if err == nil {
			return string(b)
		}
	case "base64":
		dec := make([]byte, len(body))
		n, err := base64Decode(dec, body)
		if err == nil {
			return string(dec[:n])
		}
	}
	return string(body)
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "notifytest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// Request is one webhook request the receiver got.
type Request struct {
	Method string
	Header http.Header
	Body   []byte
	// Status is what the receiver answered.
	Status int
}

// Receiver is a real HTTP server that records webhook requests.
type Receiver struct {
	*httptest.Server

	mu       sync.Mutex
	reqs     []Request
	failNext int
	changed  chan struct{}
}

// NewReceiver starts a receiver, closed when the test ends. It answers 204,
// or 500 to the first failFirst requests.
func NewReceiver(t testing.TB, failFirst int) *Receiver {
	t.Helper()
	r := &Receiver{failNext: failFirst, changed: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusNoContent
		if r.failNext > 0 {
			r.failNext--
			status = http.StatusInternalServerError
		}
		r.reqs = append(r.reqs, Request{Method: req.Method, Header: req.Header.Clone(), Body: body, Status: status})
		close(r.changed)
		r.changed = make(chan struct{})
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

// FailNext makes the next n requests answer 500.
func (r *Receiver) FailNext(n int) {
	r.mu.Lock()
	r.failNext = n
	r.mu.Unlock()
}

// Requests are the requests received so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// Delivered are the requests that were answered with a 2xx.
func (r *Receiver) Delivered() []Request {
	var out []Request
	for _, q := range r.Requests() {
		if q.Status >= 200 && q.Status <= 299 {
			out = append(out, q)
		}
	}
	return out
}

// WaitFor waits until n requests were answered with a 2xx (or fails the
// test after timeout) and returns them.
func (r *Receiver) WaitFor(t testing.TB, n int, timeout time.Duration) []Request {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if got := r.Delivered(); len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("webhook receiver: %d delivered after %s, want %d", len(r.Delivered()), timeout, n)
		}
	}
}

func base64Decode(dst, src []byte) (int, error) {
	return base64.StdEncoding.Decode(dst, bytes.Join(bytes.Fields(src), nil))
}
