package caddymodule

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	caddyfile "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/notify"
)

func TestCaddyfile_NotifyEmailAndWebhooksParseIntoTheJSONConfig(t *testing.T) {
	d := caddyfile.NewTestDispenser(`api_tokens {
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
	var a App
	if err := a.UnmarshalCaddyfile(d); err != nil {
		t.Fatalf("UnmarshalCaddyfile: %v", err)
	}
	want := &Notify{
		Email: &EmailNotify{SMTP: "smtp.example.com:587", From: "API Tokens <tokens@example.com>",
			Username: "{env.SMTP_USER}", Password: "{env.SMTP_PASSWORD}", TLS: "starttls"},
		Webhooks: []WebhookNotify{{URL: "https://hooks.example.com/tokens", Secret: "{env.WEBHOOK_SECRET}"},
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
	if err := a.validateNotify(); err != nil {
		t.Errorf("validateNotify: %v", err)
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
			var a App
			err := a.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("got %v, want an error saying %q (and no webhook secret)", err, tc.want)
			}
		})
	}
}

func TestValidate_NotifyInJSONIsChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    Notify
		want string
	}{
		{"email without smtp", Notify{Email: &EmailNotify{From: "a@example.com"}}, "needs smtp and from"},
		{"bad tls", Notify{Email: &EmailNotify{SMTP: "h:25", From: "a@example.com", TLS: "ssl"}}, `tls "ssl"`},
		{"webhook without secret", Notify{Webhooks: []WebhookNotify{{URL: "https://h/x"}}}, "webhook #1 needs a url and a secret"},
	} {
		a := App{MaxLifetime: "1y", Notify: &tc.n}
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestProvisionNotify_ReplacesPlaceholdersAndRefusesWhatCannotWork(t *testing.T) {
	t.Setenv("NOTIFY_TEST_SECRET", "s3cret")
	t.Setenv("NOTIFY_TEST_HOOK", "https://hooks.example.com/tokens")
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	provision := func(n *Notify) (*App, error) {
		a := &App{Notify: n, backend: &backend{store: store, notifier: &notify.Deliverer{Store: store}}}
		return a, a.provisionNotify()
	}
	a, err := provision(&Notify{
		Email:    &EmailNotify{SMTP: "127.0.0.1:25", From: "tokens@example.com", TLS: "none"},
		Webhooks: []WebhookNotify{{URL: "{env.NOTIFY_TEST_HOOK}", Secret: "{env.NOTIFY_TEST_SECRET}"}},
	})
	if err != nil {
		t.Fatalf("provisionNotify: %v", err)
	}
	if want := []string{"email", notify.WebhookDestination("https://hooks.example.com/tokens")}; !reflect.DeepEqual(a.notifyDestinations(), want) {
		t.Errorf("service notifies %v, want %v", a.notifyDestinations(), want)
	}
	if len(a.senders) != 2 {
		t.Errorf("%d senders; want 2", len(a.senders))
	}
	a, err = provision(nil)
	if err != nil || len(a.senders) != 0 || a.notifyDestinations() != nil {
		t.Errorf("without notify: %v, %d senders, notify %v; want none", err, len(a.senders), a.notifyDestinations())
	}
	for _, tc := range []struct {
		name string
		n    Notify
		want string
	}{
		{"a secret whose variable is unset", Notify{Webhooks: []WebhookNotify{{URL: "https://h.example.com/x", Secret: "{env.NOTIFY_TEST_UNSET}"}}}, "needs a secret"},
		{"the same webhook twice", Notify{Webhooks: []WebhookNotify{{URL: "https://h.example.com/x", Secret: "a"}, {URL: "https://h.example.com/x", Secret: "b"}}}, "webhook #2 repeats " + notify.RedactURL("https://h.example.com/x")},
		{"a webhook that is not http", Notify{Webhooks: []WebhookNotify{{URL: "ftp://h.example.com/x", Secret: "a"}}}, "must be an http or https URL"},
		{"a password in clear to another host", Notify{Email: &EmailNotify{SMTP: "mail.example.com:25", From: "a@example.com", Username: "u", Password: "p", TLS: "none"}}, "in clear"},
		{"an smtp address without a port", Notify{Email: &EmailNotify{SMTP: "mail.example.com", From: "a@example.com"}}, "host:port"},
	} {
		if _, err := provision(&tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
