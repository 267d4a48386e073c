package caddyfile

import (
	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
	"github.com/caddy-apitokens/caddy-apitokens/notify"
)

// unmarshalNotify parses one notify line of the api_tokens option into a:
//
//	notify email {
//		smtp     <host:port>
//		from     <address>
//		username <user>
//		password <password>
//		tls      none|starttls|tls
//	}
//	notify webhook <url> {
//		secret <secret>
//	}
func unmarshalNotify(d *cf.Dispenser, a *caddymodule.App) error {
	if a.Notify == nil {
		a.Notify = &caddymodule.Notify{}
	}
	var kind string
	if !d.Args(&kind) {
		return d.Errf("notify takes email or webhook <url>")
	}
	switch kind {
	case "email":
		if d.NextArg() {
			return d.ArgErr()
		}
		if a.Notify.Email != nil {
			return d.Errf("notify email may be given only once")
		}
		e := &caddymodule.EmailNotify{}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			opt := d.Val()
			var dst *string
			switch opt {
			case "smtp":
				dst = &e.SMTP
			case "from":
				dst = &e.From
			case "username":
				dst = &e.Username
			case "password":
				dst = &e.Password
			case "tls":
				dst = &e.TLS
			default:
				return d.Errf("unrecognized notify email option %q", opt)
			}
			if !d.AllArgs(dst) {
				return d.ArgErr()
			}
			if opt == "tls" && e.TLS != notify.TLSNone && e.TLS != notify.TLSStartTLS && e.TLS != notify.TLSImplicit {
				return d.Errf("notify email: tls %q: use none, starttls or tls", e.TLS)
			}
		}
		if e.SMTP == "" || e.From == "" {
			return d.Errf("notify email needs smtp <host:port> and from <address>")
		}
		a.Notify.Email = e
	case "webhook":
		w := caddymodule.WebhookNotify{}
		if !d.Args(&w.URL) {
			return d.Errf("notify webhook takes a URL: notify webhook https://hooks.example.com/tokens { secret ... }")
		}
		if d.NextArg() {
			return d.ArgErr()
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			switch d.Val() {
			case "secret":
				if !d.AllArgs(&w.Secret) {
					return d.ArgErr()
				}
			default:
				return d.Errf("unrecognized notify webhook option %q", d.Val())
			}
		}
		if w.Secret == "" {
			return d.Errf("notify webhook %s needs a secret to sign its requests: { secret {env.WEBHOOK_SECRET} }", notify.RedactURL(w.URL))
		}
		a.Notify.Webhooks = append(a.Notify.Webhooks, w)
	default:
		return d.Errf("notify %q: use notify email { ... } or notify webhook <url> { ... }", kind)
	}
	return nil
}
