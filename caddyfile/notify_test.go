package caddyfile

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	cf "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-apitokens/caddy-apitokens/caddymodule"
)

func TestCaddyfile_NotifyEmailAndWebhooksParseIntoTheJSONConfig(t *testing.T) {
	d := cf.NewTestDispenser(`api_tokens {
		notify email {
			smtp     smtp.example.com:587
			from     "API Tokens <tokens@example.com>"
			username {env.SMTP_USER}
			password {env.SMTP_PASSWORD}
			tls      starttls
		}
		notify webhook https://hooks.example.com/tokens {
			secret {env.WEBHOOK_SECRET}
		}
		notify webhook https://other.example.com/hook {
			secret s2
		}
		admins alice
	}`)
	var a caddymodule.App
	if err := unmarshalApp(d, &a); err != nil {
		t.Fatalf("unmarshalApp: %v", err)
	}
	want := &caddymodule.Notify{
		Email: &caddymodule.EmailNotify{SMTP: "smtp.example.com:587", From: "API Tokens <tokens@example.com>",
			Username: "{env.SMTP_USER}", Password: "{env.SMTP_PASSWORD}", TLS: "starttls"},
		Webhooks: []caddymodule.WebhookNotify{{URL: "https://hooks.example.com/tokens", Secret: "{env.WEBHOOK_SECRET}"},
			{URL: "https://other.example.com/hook", Secret: "s2"}},
	}
	if !reflect.DeepEqual(a.Notify, want) {
		t.Errorf("parsed %+v, want %+v", a.Notify, want)
	}
	if len(a.Admins) != 1 {
		t.Error("the options after notify were not parsed")
	}
	raw, _ := json.Marshal(a.Notify)
	const wantJSON = `{"email":{"smtp":"smtp.example.com:587","from":"API Tokens \u003ctokens@example.com\u003e","username":"{env.SMTP_USER}","password":"{env.SMTP_PASSWORD}","tls":"starttls"},"webhooks":[{"url":"https://hooks.example.com/tokens","secret":"{env.WEBHOOK_SECRET}"},{"url":"https://other.example.com/hook","secret":"s2"}]}`
	if string(raw) != wantJSON {
		t.Errorf("JSON %s\nwant %s", raw, wantJSON)
	}
	a.MaxLifetime = "1y" // the default Provision sets before Validate runs
	if err := a.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestCaddyfile_BadNotifySaysWhatToFix(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"no kind", `api_tokens {
			notify
		}`, "notify takes email or webhook <url>"},
		{"unknown kind", `api_tokens {
			notify slack https://x
		}`, `notify "slack": use notify email`},
		{"email without from", `api_tokens {
			notify email {
				smtp 127.0.0.1:25
			}
		}`, "needs smtp <host:port> and from <address>"},
		{"unknown email option", `api_tokens {
			notify email {
				host 127.0.0.1
			}
		}`, `unrecognized notify email option "host"`},
		{"bad tls", `api_tokens {
			notify email {
				smtp 127.0.0.1:25
				from a@example.com
				tls ssl
			}
		}`, `tls "ssl": use none, starttls or tls`},
		{"two emails", `api_tokens {
			notify email {
				smtp 127.0.0.1:25
				from a@example.com
			}
			notify email {
				smtp 127.0.0.1:25
				from b@example.com
			}
		}`, "notify email may be given only once"},
		{"webhook without url", `api_tokens {
			notify webhook
		}`, "notify webhook takes a URL"},
		{"webhook without secret, shown without its path", `api_tokens {
			notify webhook https://hooks.slack.com/services/T0/B0/s3cr3t
		}`, "webhook https://hooks.slack.com/…#"},
		{"unknown webhook option", `api_tokens {
			notify webhook https://hooks.example.com/x {
				token abc
			}
		}`, `unrecognized notify webhook option "token"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a caddymodule.App
			err := unmarshalApp(cf.NewTestDispenser(tc.input), &a)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("got %v, want an error saying %q (and no webhook secret)", err, tc.want)
			}
		})
	}
}
