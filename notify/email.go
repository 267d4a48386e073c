package notify

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// TLS modes of the SMTP connection.
const (
	TLSNone     = "none"     // plain text: a relay on localhost or a trusted network
	TLSStartTLS = "starttls" // upgrade with STARTTLS, required (the default)
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS, port 465)
)

// EmailConfig configures the email sender.
type EmailConfig struct {
	// SMTP is the server's host:port.
	SMTP string
	// From is the sender address, optionally with a name:
	// "API Tokens <tokens@example.com>".
	From string
	// Username and Password authenticate to the server when Username is
	// set (the strongest mechanism both sides support).
	Username, Password string
	// TLS is TLSNone, TLSStartTLS (default) or TLSImplicit.
	TLS string
	// TLSConfig overrides the TLS settings (e.g. a private CA); its
	// ServerName defaults to the SMTP host.
	TLSConfig *tls.Config
	// Timeout bounds a whole send (connect, dialogue, data). Default 30 s.
	Timeout time.Duration
	// ManageURL, when set, is linked from every email: where the owner
	// manages their tokens (the api_tokens manage_url).
	ManageURL string
}

// UserStore looks up a token owner's record, for the email address.
type UserStore interface {
	GetUser(ctx context.Context, id string) (apitoken.User, error)
}

// Email sends notifications to the token owner's email address (from the
// user record; an owner without one is skipped).
type Email struct {
	cfg   EmailConfig
	host  string
	port  int
	from  *mail.Address
	users UserStore
}

// NewEmail checks cfg and returns the sender.
func NewEmail(cfg EmailConfig, users UserStore) (*Email, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, portStr, _ := net.SplitHostPort(cfg.SMTP)
	port, _ := strconv.Atoi(portStr)
	from, _ := mail.ParseAddress(cfg.From)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Email{cfg: cfg, host: host, port: port, from: from, users: users}, nil
}

// Validate checks an email configuration.
func (cfg EmailConfig) Validate() error {
	host, portStr, err := net.SplitHostPort(cfg.SMTP)
	if err != nil || host == "" {
		return fmt.Errorf("smtp %q must be host:port, e.g. smtp.example.com:587", cfg.SMTP)
	}
	if port, err := strconv.Atoi(portStr); err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("smtp %q: the port must be a number from 1 to 65535", cfg.SMTP)
	}
	if cfg.From == "" {
		return errors.New("from is required: the sender address, e.g. tokens@example.com")
	}
	if _, err := mail.ParseAddress(cfg.From); err != nil {
		return fmt.Errorf("from %q is not an email address: %v", cfg.From, err)
	}
	switch cfg.TLS {
	case "", TLSStartTLS, TLSImplicit:
	case TLSNone:
		if cfg.Username != "" && !isLoopback(host) {
			return fmt.Errorf("tls none would send the SMTP password in clear to %s; use starttls or tls (none is for a relay on localhost)", host)
		}
	default:
		return fmt.Errorf("tls %q: use none, starttls or tls", cfg.TLS)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return errors.New("password is set without username")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Destination is apitoken.DestinationEmail.
func (e *Email) Destination() string { return apitoken.DestinationEmail }

// Send emails n to its token's owner.
func (e *Email) Send(ctx context.Context, n apitoken.Notification) error {
	u, err := e.users.GetUser(ctx, n.Owner)
	if errors.Is(err, apitoken.ErrNotFound) {
		return Skip(fmt.Sprintf("user %q has no record, so no email address", n.Owner))
	}
	if err != nil {
		return fmt.Errorf("looking up the owner's email address: %w", err)
	}
	if u.Email == "" {
		return Skip(fmt.Sprintf("user %q has no email address", n.Owner))
	}
	m, err := e.Message(n, u.Email)
	if err != nil {
		return Permanent(err)
	}
	c, err := e.client()
	if err != nil {
		return Permanent(err)
	}
	sctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	if err := c.DialAndSendWithContext(sctx, m); err != nil {
		var se *gomail.SendError
		if errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && !se.IsTemp() {
			return Permanent(fmt.Errorf("the mail server refused %s: %w", u.Email, err))
		}
		return fmt.Errorf("sending email via %s: %w", e.cfg.SMTP, err)
	}
	return nil
}

func (e *Email) client() (*gomail.Client, error) {
	tc := &tls.Config{ServerName: e.host, MinVersion: tls.VersionTLS12}
	if e.cfg.TLSConfig != nil {
		tc = e.cfg.TLSConfig.Clone()
		if tc.ServerName == "" {
			tc.ServerName = e.host
		}
	}
	opts := []gomail.Option{gomail.WithPort(e.port), gomail.WithTimeout(e.cfg.Timeout), gomail.WithTLSConfig(tc)}
	switch e.cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if e.cfg.Username != "" {
		// Over TLS, the strongest mechanism both sides offer. In plain text
		// (allowed with credentials only to a relay on this machine),
		// PLAIN: discovery would refuse every mechanism that sends the
		// password.
		auth := gomail.SMTPAuthAutoDiscover
		if e.cfg.TLS == TLSNone {
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(e.cfg.Username), gomail.WithPassword(e.cfg.Password))
	}
	return gomail.NewClient(e.host, opts...)
}

// Message is the email of n to the address to.
func (e *Email) Message(n apitoken.Notification, to string) (*gomail.Msg, error) {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(e.from)
	if err := m.To(to); err != nil {
		return nil, fmt.Errorf("recipient %q: %w", to, err)
	}
	subject, body := Render(n, e.cfg.ManageURL)
	m.Subject(subject)
	m.SetBodyString(gomail.TypeTextPlain, body)
	m.SetDateWithValue(n.At)
	// The same notification always has the same Message-ID, so a message
	// sent again (after a crash between sending and recording) can be
	// recognised as the same.
	h := sha256.Sum256([]byte(n.Key + "\x00" + n.Destination))
	domain := "caddy-apitokens.invalid"
	if _, d, ok := strings.Cut(e.from.Address, "@"); ok && d != "" {
		domain = d
	}
	m.SetMessageIDWithValue(hex.EncodeToString(h[:16]) + "@" + domain)
	m.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader(gomail.HeaderXMailer, "caddy-apitokens")
	return m, nil
}

// dateFormat is how times appear in messages.
const dateFormat = "Mon, 02 Jan 2006 15:04:05 UTC"

func fmtTime(t time.Time) string { return t.UTC().Format(dateFormat) }

// Render is the subject and plain-text body of the email of n, with a link
// to manageURL when it is set. It names the token and tells what happened,
// when, by whom and why, never the JWT (which no notification has).
func Render(n apitoken.Notification, manageURL string) (subject, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\n", n.Owner)
	expires := "never"
	if n.ExpiresAt != nil {
		expires = fmtTime(*n.ExpiresAt)
	}
	details := func() {
		fmt.Fprintf(&b, "  Token:    %s (%s)\n", n.TokenName, n.TokenID)
		fmt.Fprintf(&b, "  Scopes:   %s\n", strings.Join(n.Scopes.Names(), ", "))
		fmt.Fprintf(&b, "  Expires:  %s\n", expires)
	}
	switch n.Event {
	case apitoken.EventGenerated:
		subject = fmt.Sprintf("A new JWT was generated for your API token %q", n.TokenName)
		fmt.Fprintf(&b, "A new JWT was generated for your API token %q.\n\n", n.TokenName)
		details()
		fmt.Fprintf(&b, "  By:       %s\n  At:       %s\n\n", actor(n), fmtTime(n.At))
		b.WriteString("The token's previous JWT, if it had one, no longer works, unless an overlap\n" +
			"was asked for: then it works until the time the token's page shows.\n\n")
		b.WriteString("If you did not do this, revoke the token now and tell your administrator:\n" +
			"someone may be using your account.\n")
	case apitoken.EventRevoked:
		subject = fmt.Sprintf("Your API token %q was revoked", n.TokenName)
		fmt.Fprintf(&b, "Your API token %q was revoked. Its JWT no longer works, and the token\ncannot be generated again.\n\n", n.TokenName)
		fmt.Fprintf(&b, "  Token:    %s (%s)\n", n.TokenName, n.TokenID)
		fmt.Fprintf(&b, "  Scopes:   %s\n", strings.Join(n.Scopes.Names(), ", "))
		by, why, advice := revokedBy(n)
		fmt.Fprintf(&b, "  By:       %s\n", by)
		if why != "" {
			fmt.Fprintf(&b, "  Why:      %s\n", why)
		}
		fmt.Fprintf(&b, "  At:       %s\n\n", fmtTime(n.At))
		if advice != "" {
			b.WriteString(advice + "\n\n")
		}
		b.WriteString("If you still need access, create a new token.\n")
	case apitoken.EventUnused:
		revokeAt := "soon"
		if n.RevokeAt != nil {
			revokeAt = fmtTime(*n.RevokeAt)
			subject = fmt.Sprintf("Your API token %q will be revoked on %s unless it is used", n.TokenName, n.RevokeAt.UTC().Format("Mon, 02 Jan 2006"))
		} else {
			subject = fmt.Sprintf("Your API token %q will be revoked soon unless it is used", n.TokenName)
		}
		if n.UnusedSince != nil && n.RevokeAt != nil {
			fmt.Fprintf(&b, "Your API token %q has not been used since %s.\nThis deployment revokes tokens unused for %s: it will be revoked on\n%s, in %s, unless a request uses it before then.\n\n",
				n.TokenName, fmtTime(*n.UnusedSince), humanDuration(n.RevokeAt.Sub(*n.UnusedSince)), revokeAt, humanDuration(n.RevokeAt.Sub(n.At)))
		} else {
			fmt.Fprintf(&b, "Your API token %q has not been used for a long time: it will be revoked\n%s unless a request uses it before then.\n\n", n.TokenName, revokeAt)
		}
		details()
		b.WriteString("\nIf you still need it, any successful request with it keeps it. If you do not,\n" +
			"revoke it now: a token nobody uses is only a risk.\n")
	case apitoken.EventExpiring:
		when := expires
		if n.ExpiresAt != nil {
			subject = fmt.Sprintf("Your API token %q expires on %s", n.TokenName, n.ExpiresAt.UTC().Format("Mon, 02 Jan 2006"))
			when = fmt.Sprintf("%s, in %s", expires, humanDuration(n.ExpiresAt.Sub(n.At)))
		} else {
			subject = fmt.Sprintf("Your API token %q expires soon", n.TokenName)
		}
		fmt.Fprintf(&b, "Your API token %q expires on %s.\n\n", n.TokenName, when)
		details()
		b.WriteString("\nAfter that, every request made with it is refused. To keep access, generate\n" +
			"a new JWT for the token (or create a new token) and replace the old one\nwherever it is used.\n")
	default:
		subject = fmt.Sprintf("Your API token %q: %s", n.TokenName, n.Event)
		details()
	}
	if manageURL != "" {
		fmt.Fprintf(&b, "\nManage your API tokens: %s\n", manageURL)
	}
	b.WriteString("\nThis message never contains a token. It was sent by caddy-apitokens.\n")
	return subject, b.String()
}

// revokedBy tells who revoked n's token, why, and what to do about it, as
// the owner reads it; why and advice are "" when who says it all.
func revokedBy(n apitoken.Notification) (by, why, advice string) {
	switch n.Reason {
	case apitoken.RevokeBySCIM:
		return "your identity provider (SCIM)", "your account was deleted there, which revokes every token you own", ""
	case apitoken.RevokeExposedInURL:
		return "the system (exposed in a URL)", "its JWT was sent in a URL, so it must be taken as leaked",
			"URLs (access_token= in the query string) are kept in proxies' and servers' logs,\n" +
				"browser history and referrers, so the JWT must be taken as known to others.\n" +
				"Send the new JWT in the Authorization header instead."
	case apitoken.RevokeAtEndpoint:
		return "the system (revocation endpoint)", "someone who held its JWT reported it as leaked",
			"That is a colleague, or a secret scanner that found it in code or a paste, at\n" +
				"the token revocation endpoint. Find where the JWT was written and remove it\n" +
				"there too."
	case apitoken.RevokeUnused:
		if n.UnusedSince == nil {
			return "the system (unused)", "it was not used for too long", ""
		}
		return "the system (unused)", fmt.Sprintf("it was not used for %s (last used or generated\n            %s)",
			humanDuration(n.At.Sub(*n.UnusedSince)), fmtTime(*n.UnusedSince)), ""
	}
	// The owner, a system admin, or a notification written before reasons
	// were kept: the actor says it.
	return actor(n), "", ""
}

// actor tells who acted, as the owner reads it.
func actor(n apitoken.Notification) string {
	switch n.Actor {
	case "":
		return "the system"
	case n.Owner:
		return "you (" + n.Owner + ")"
	}
	return "system admin " + n.Actor
}

// humanDuration is d in days and hours, or hours and minutes.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.Itoa(n) + " " + unit + "s"
	}
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0 && hours > 0:
		return plural(days, "day") + " " + plural(hours, "hour")
	case days > 0:
		return plural(days, "day")
	case hours > 0 && mins > 0:
		return plural(hours, "hour") + " " + plural(mins, "minute")
	case hours > 0:
		return plural(hours, "hour")
	}
	return plural(mins, "minute")
}
