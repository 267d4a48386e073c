package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/caddy-apitokens/caddy-apitokens/notify"
)

// Notify is where token owners hear about their tokens: on generation, on
// revocation, and 7 days and 1 day before expiry (each once per deployment).
// What is to be sent is written to the token store with the change, and
// delivered off the request path, retried with exponential backoff; a
// failure to deliver never fails a token operation (see GET
// /admin/notifications).
type Notify struct {
	// Email sends each event to the token owner's email address (the user
	// record's email; an owner without one gets none).
	Email *EmailNotify `json:"email,omitempty"`
	// Webhooks receive each event as JSON, signed with HMAC-SHA256.
	Webhooks []WebhookNotify `json:"webhooks,omitempty"`
}

// EmailNotify configures the emails. Placeholders such as
// {env.SMTP_PASSWORD} are replaced at provision.
type EmailNotify struct {
	// SMTP is the mail server's host:port.
	SMTP string `json:"smtp"`
	// From is the sender: an address, optionally with a name
	// ("API Tokens <tokens@example.com>").
	From string `json:"from"`
	// Username and Password authenticate to the server, when set.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// TLS is none (plain: a relay on localhost or a trusted network),
	// starttls (default; STARTTLS is required) or tls (TLS from the first
	// byte, port 465).
	TLS string `json:"tls,omitempty"`
}

// WebhookNotify is one webhook. Placeholders are replaced at provision.
type WebhookNotify struct {
	// URL receives a POST per event (http or https).
	URL string `json:"url"`
	// Secret keys the X-Api-Tokens-Signature HMAC-SHA256.
	Secret string `json:"secret"`
}

// provisionNotify builds the senders of the config (notifyDestinations
// names where they send). Call it once the backend exists.
func (a *App) provisionNotify() error {
	a.senders = nil
	if a.Notify == nil {
		return nil
	}
	repl := caddy.NewReplacer()
	r := func(s string) string { return repl.ReplaceKnown(s, "") }
	if e := a.Notify.Email; e != nil {
		cfg := notify.EmailConfig{SMTP: r(e.SMTP), From: r(e.From), Username: r(e.Username), Password: r(e.Password), TLS: e.TLS,
			ManageURL: a.ManageURL}
		email, err := notify.NewEmail(cfg, a.backend.store)
		if err != nil {
			return fmt.Errorf("api_tokens: notify email: %v", err)
		}
		a.senders = append(a.senders, email)
	}
	seen := map[string]bool{}
	for i, w := range a.Notify.Webhooks {
		wh, err := notify.NewWebhook(notify.WebhookConfig{URL: r(w.URL), Secret: r(w.Secret)})
		if err != nil {
			return fmt.Errorf("api_tokens: notify webhook #%d: %v", i+1, err)
		}
		if seen[wh.Destination()] {
			return fmt.Errorf("api_tokens: notify webhook #%d repeats %s", i+1, strings.TrimPrefix(wh.Destination(), "webhook:"))
		}
		seen[wh.Destination()] = true
		if wh.InClear() {
			a.logger.Warn("notify webhook over plain http to another host: its events (token names, owners, scopes) travel unencrypted and can be replayed by whoever sees them; use https",
				zap.String("webhook", strings.TrimPrefix(wh.Destination(), "webhook:")))
		}
		a.senders = append(a.senders, wh)
	}
	return nil
}

// notifyDestinations names where the senders of provisionNotify send: the
// service writes a notification to the outbox for each.
func (a *App) notifyDestinations() []string {
	var out []string
	for _, s := range a.senders {
		out = append(out, s.Destination())
	}
	return out
}

// startNotify hands this config's senders to the backend's deliverer: the
// config that starts last (the new one, on a reload) decides where
// notifications go.
func (a *App) startNotify() {
	a.backend.notifier.SetSenders(a.senders...)
	if len(a.senders) > 0 {
		a.logger.Info("notifications enabled", zap.Strings("destinations", a.backend.notifier.Destinations()))
	}
}

// startNotifier starts the backend's deliverer: it lives with the pooled
// backend, across config reloads, until Destruct.
func (b *backend) startNotifier(logger *zap.Logger) {
	b.notifier = &notify.Deliverer{Store: b.store, Logger: logger, Now: clock}
	ctx, stop := context.WithCancel(context.Background())
	b.stopNotifier, b.notifierDone = stop, make(chan struct{})
	go func() {
		defer close(b.notifierDone)
		b.notifier.Run(ctx)
	}()
}

// closeNotifier stops the deliverer and waits for it: a send in flight is
// finished and recorded, claimed notifications not yet tried are released.
func (b *backend) closeNotifier() {
	if b.stopNotifier != nil {
		b.stopNotifier()
		<-b.notifierDone
	}
}

// checkManageURL says what is wrong with manage_url u, which every email
// shows as a link: nil for an absolute http or https URL with a host, no
// user name or password, and no spaces.
func checkManageURL(u string) error {
	p, err := url.Parse(u)
	switch {
	case err != nil || !p.IsAbs() || p.Host == "" || p.Hostname() == "":
		return errors.New("must be an absolute URL such as https://manage.example.com/")
	case p.Scheme != "http" && p.Scheme != "https":
		return errors.New("must be an http or https URL")
	case p.User != nil:
		return errors.New("must not hold a user name or password: every email shows it")
	case strings.ContainsFunc(u, unicode.IsSpace):
		return errors.New("must not contain spaces: the link would break")
	}
	return nil
}

// validateNotify checks what can be checked before placeholders are
// replaced.
func (a *App) validateNotify() error {
	if a.Notify == nil {
		return nil
	}
	if e := a.Notify.Email; e != nil {
		if e.SMTP == "" || e.From == "" {
			return fmt.Errorf("api_tokens: notify email needs smtp and from")
		}
		switch e.TLS {
		case "", notify.TLSNone, notify.TLSStartTLS, notify.TLSImplicit:
		default:
			return fmt.Errorf("api_tokens: notify email: tls %q: use none, starttls or tls", e.TLS)
		}
	}
	for i, w := range a.Notify.Webhooks {
		if w.URL == "" || w.Secret == "" {
			return fmt.Errorf("api_tokens: notify webhook #%d needs a url and a secret", i+1)
		}
	}
	return nil
}
