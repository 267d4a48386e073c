package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
	"github.com/caddy-apitokens/caddy-apitokens/internal/wire"
)

// Webhook request headers.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the
	// webhook's secret, of the timestamp header's value, a ".", and the raw
	// body.
	HeaderSignature = "X-Api-Tokens-Signature"
	// HeaderTimestamp is the Unix time (seconds) of the attempt. It is part
	// of the signed content, so a receiver that refuses old timestamps
	// refuses a replayed request.
	HeaderTimestamp = "X-Api-Tokens-Timestamp"
	// HeaderEvent is the payload's type.
	HeaderEvent = "X-Api-Tokens-Event"
	// HeaderDelivery is the payload's id: the same on every attempt.
	HeaderDelivery = "X-Api-Tokens-Delivery"
)

// WebhookConfig configures one webhook.
type WebhookConfig struct {
	// URL receives the POSTs (http or https).
	URL string
	// Secret keys the HMAC-SHA256 signature.
	Secret string
	// Timeout bounds one request. Default 15 s.
	Timeout time.Duration
	// Client sends the requests (default: one of its own). Redirects are
	// never followed: a 3xx answer is a failure.
	Client *http.Client
}

// Webhook POSTs notifications to one URL, signed.
type Webhook struct {
	cfg    WebhookConfig
	shown  string // RedactURL(cfg.URL)
	dest   string
	client *http.Client
}

// NewWebhook checks cfg and returns the sender.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	c := cfg.Client
	if c == nil {
		c = &http.Client{}
	}
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Webhook{cfg: cfg, shown: RedactURL(cfg.URL), dest: WebhookDestination(cfg.URL), client: &nc}, nil
}

// InClear reports whether the webhook posts over plain http to a host that
// is not this machine: its events travel unencrypted, and whoever sees one
// can replay it with its signature.
func (w *Webhook) InClear() bool {
	u, err := url.Parse(w.cfg.URL)
	return err == nil && u.Scheme == "http" && !isLoopback(u.Hostname())
}

// Validate checks a webhook configuration.
func (cfg WebhookConfig) Validate() error {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook %s must be an http or https URL", RedactURL(cfg.URL))
	}
	if cfg.Secret == "" {
		return fmt.Errorf("webhook %s needs a secret to sign its requests (`secret {env.WEBHOOK_SECRET}`)", RedactURL(cfg.URL))
	}
	return nil
}

// WebhookDestination is the outbox Destination of the webhook at rawURL:
// "webhook:" and RedactURL(rawURL). It names the webhook in the outbox, the
// admin route and the log without revealing its secret, and is the same on
// every instance.
func WebhookDestination(rawURL string) string { return "webhook:" + RedactURL(rawURL) }

// RedactURL is the one form in which a webhook URL is shown or logged: its
// scheme and host, "/…" for everything else, and "#" and a digest of the
// whole URL, e.g. "https://hooks.slack.com/…#1a2b3c4d5e6f". Slack, Teams and
// Discord webhooks carry their secret in the path, others in user info or
// the query, so nothing after the host is shown; the digest tells two
// webhooks on one host apart and matches a log line to an outbox row. (It
// confirms a guessed URL, but a webhook secret is too long to guess.) Text
// that is not an http(s) URL with a host shows only the digest.
func RedactURL(raw string) string {
	h := sha256.Sum256([]byte(raw))
	digest := "#" + hex.EncodeToString(h[:6])
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "…" + digest
	}
	return u.Scheme + "://" + u.Host + "/…" + digest
}

// scrub makes err, an error of sending to the webhook, safe to store and log.
// net/http wraps what it returns in a *url.Error, whose text repeats the
// whole URL: it is dropped for the error it wraps. Should the URL's secret
// parts still be in the text (some error of a dependency quoting the
// request), the error is replaced by its text with them redacted.
func (w *Webhook) scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	clean := msg
	if u, perr := url.Parse(w.cfg.URL); perr == nil {
		clean = strings.ReplaceAll(clean, w.cfg.URL, w.shown)
		for _, secret := range []string{u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery, u.User.String()} {
			if len(secret) > 1 { // not "/" or "": they are no secret
				clean = strings.ReplaceAll(clean, secret, "/…")
			}
		}
	}
	if clean != msg {
		return errors.New(clean)
	}
	return err
}

// Destination is WebhookDestination of the URL.
func (w *Webhook) Destination() string { return w.dest }

// Send POSTs n's payload, signed. Any answer but a 2xx is a failure, to be
// retried.
func (w *Webhook) Send(ctx context.Context, n apitoken.Notification) error {
	body, err := json.Marshal(wire.FromWebhook(n))
	if err != nil {
		return Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook %s: %w", w.shown, w.scrub(err)))
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "caddy-apitokens-webhook")
	req.Header.Set(HeaderEvent, string(n.Event))
	req.Header.Set(HeaderDelivery, n.Key)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign([]byte(w.cfg.Secret), ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return fmt.Errorf("posting to webhook %s: %w", w.shown, w.scrub(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook %s answered %s", w.shown, resp.Status)
	}
	return nil
}

// Sign is the X-Api-Tokens-Signature value of body sent at timestamp (the
// X-Api-Tokens-Timestamp value): "sha256=" and the hex
// HMAC-SHA256(secret, timestamp + "." + body).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request as a receiver should: the signature over
// the timestamp and the raw body, compared in constant time, and the
// timestamp within tolerance of now (replays of old requests fail).
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("the timestamp is not a Unix time")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("the timestamp is %s away from now; refusing a possible replay", d.Round(time.Second))
	}
	if !strings.HasPrefix(signature, "sha256=") {
		return errors.New(`the signature does not start with "sha256="`)
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return errors.New("the signature does not match")
	}
	return nil
}
