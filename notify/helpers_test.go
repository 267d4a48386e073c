package notify_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/postgres/pgtest"
	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/notify"
	"github.com/caddy-apitokens/caddy-apitokens/notify/notifytest"
)

// t0 is the start of every test clock.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// clock is an injected clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// backend opens stores on one database: open may be called again (a
// restart, or a second instance) and returns a store on the same data.
type backend struct {
	name string
	open func(t *testing.T) apitoken.Store
}

func sqliteBackend(t *testing.T) backend {
	path := filepath.Join(t.TempDir(), "tokens.db")
	return backend{"sqlite", func(t *testing.T) apitoken.Store {
		t.Helper()
		s, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}}
}

func postgresBackend(t *testing.T) backend {
	dsn, _ := pgtest.Schema(t) // skips without APITOKENS_TEST_POSTGRES
	return backend{"postgres", func(t *testing.T) apitoken.Store {
		t.Helper()
		s, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}}
}

// eachBackend runs fn on SQLite, and on PostgreSQL where
// APITOKENS_TEST_POSTGRES is set.
func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteBackend(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, postgresBackend(t)) })
}

// env is one instance: a store, the service on it, and a deliverer with
// an email sender (to a real SMTP server) and a webhook (to a real HTTP
// receiver), all on one injected clock.
type env struct {
	t     *testing.T
	clock *clock
	store apitoken.Store
	svc   *apitoken.Service
	d     *notify.Deliverer
	smtp  *notifytest.SMTPServer
	hook  *notifytest.Receiver
	logs  *observer.ObservedLogs

	secret string
	alice  apitoken.Caller
	admin  apitoken.Caller
}

type envOptions struct {
	backend   backend
	smtp      *notifytest.SMTPServer
	hook      *notifytest.Receiver
	clock     *clock
	aliceMail string // default alice@example.com; "-" for none
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.backend.open == nil {
		o.backend = sqliteBackend(t)
	}
	if o.clock == nil {
		o.clock = &clock{now: t0}
	}
	if o.smtp == nil {
		o.smtp = notifytest.NewSMTPServer(t, "starttls", notifytest.WithAuth("mailer", "mail-secret"))
	}
	if o.hook == nil {
		o.hook = notifytest.NewReceiver(t, 0)
	}
	e := &env{t: t, clock: o.clock, smtp: o.smtp, hook: o.hook, secret: "whsec-test-0123456789"}
	e.store = o.backend.open(t)
	e.d, e.logs = newDeliverer(t, e.store, e.clock, e.smtp, e.hook, e.secret)
	key, err := apitoken.NewKey(bytes.Repeat([]byte("k"), 64))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := apitoken.NewSigner("https://reports.example.com", []apitoken.Key{key}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = apitoken.NewService(apitoken.ServiceConfig{Store: e.store, Signer: signer, Now: e.clock.Now, MaxLifetime: apitoken.ExpiryNever,
		Notify: e.d.Destinations(), Notified: e.d.Wake})
	e.admin = apitoken.Caller{ID: "bob", Admin: true}
	mail := "alice@example.com"
	switch o.aliceMail {
	case "-":
		mail = ""
	case "":
	default:
		mail = o.aliceMail
	}
	ctx := context.Background()
	if _, err := e.svc.PutUser(ctx, e.admin, "alice", apitoken.UserPatch{Email: &mail}); err != nil {
		t.Fatalf("PutUser: %v", err)
	}
	if _, err := e.svc.GrantRole(ctx, e.admin, "alice", apitoken.RoleAPITokens); err != nil {
		t.Fatalf("GrantRole: %v", err)
	}
	if e.alice, err = e.svc.Caller(ctx, "alice"); err != nil {
		t.Fatalf("Caller: %v", err)
	}
	return e
}

// reconfigure builds the service anew with change applied to its config,
// as a config reload does.
func (e *env) reconfigure(change func(c *apitoken.ServiceConfig)) {
	cfg := e.svc.Config()
	change(&cfg)
	e.svc = apitoken.NewService(cfg)
}

// newDeliverer is a deliverer on store with an email sender and a webhook,
// logging to an observer that keeps debug lines.
func newDeliverer(t *testing.T, store apitoken.Store, c *clock, srv *notifytest.SMTPServer, hook *notifytest.Receiver, secret string) (*notify.Deliverer, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	d := &notify.Deliverer{Store: store, Now: c.Now, Logger: zap.New(core)}
	var senders []notify.Sender
	if srv != nil {
		email, err := notify.NewEmail(notify.EmailConfig{SMTP: srv.Addr, From: "API Tokens <tokens@example.com>",
			Username: "mailer", Password: "mail-secret", TLS: notify.TLSStartTLS, TLSConfig: srv.ClientTLSConfig(),
			Timeout: 10 * time.Second}, store)
		if err != nil {
			t.Fatalf("NewEmail: %v", err)
		}
		senders = append(senders, email)
	}
	if hook != nil {
		wh, err := notify.NewWebhook(notify.WebhookConfig{URL: hook.URL + "/hooks/tokens", Secret: secret, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("NewWebhook: %v", err)
		}
		senders = append(senders, wh)
	}
	d.SetSenders(senders...)
	return d, logs
}

// token creates a token of alice with expiry exp and generates it; it
// returns the token and its JWT.
func (e *env) token(name string, exp apitoken.Expiry) (apitoken.Token, string) {
	e.t.Helper()
	ctx := context.Background()
	tok, err := e.svc.CreateToken(ctx, e.alice, apitoken.TokenInput{Name: name, Expires: exp, Scopes: apitoken.DefaultScopes})
	if err != nil {
		e.t.Fatalf("CreateToken: %v", err)
	}
	jwt, tok, err := e.svc.Generate(ctx, e.alice, tok.ID)
	if err != nil {
		e.t.Fatalf("Generate: %v", err)
	}
	return tok, jwt
}

func (e *env) deliver() int {
	e.t.Helper()
	n, err := e.d.DeliverDue(context.Background())
	if err != nil {
		e.t.Fatalf("DeliverDue: %v", err)
	}
	return n
}

func (e *env) scan() int {
	e.t.Helper()
	n, err := e.d.ScanReminders(context.Background())
	if err != nil {
		e.t.Fatalf("ScanReminders: %v", err)
	}
	return n
}

func (e *env) outbox(f apitoken.NotificationFilter) []apitoken.Notification {
	e.t.Helper()
	return listOutbox(e.t, e.store, f)
}

func listOutbox(t *testing.T, s apitoken.Store, f apitoken.NotificationFilter) []apitoken.Notification {
	t.Helper()
	f.Limit = apitoken.MaxPageLimit
	ns, _, err := s.ListNotifications(context.Background(), f)
	if err != nil {
		t.Fatalf("ListNotifications: %v", err)
	}
	return ns
}

// noJWT fails the test if any part of jwt that could be replayed appears
// in s.
func noJWT(t *testing.T, what, s, jwt string) {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	for i, p := range []string{jwt, parts[1], parts[2]} {
		if strings.Contains(s, p) {
			t.Errorf("%s contains the JWT (part %d)", what, i)
		}
	}
}
