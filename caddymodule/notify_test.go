package caddymodule

import (
	"reflect"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken/sqlite"
	"github.com/caddy-apitokens/caddy-apitokens/notify"
)

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
		a := &App{Notify: n, backend: &backend{store: store, notifier: &notify.Deliverer{Store: store}}, logger: zap.NewNop()}
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

// A webhook over plain http to another host is warned about at provision
// (its events and their signatures travel in clear); https, or http to this
// machine, is not.
func TestProvisionNotify_WarnsOfAWebhookInClear(t *testing.T) {
	store, err := sqlite.Open(t.Context(), t.TempDir()+"/t.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	for url, warned := range map[string]bool{
		"http://hooks.example.com/tokens?key=abc": true,
		"http://10.1.2.3:8080/tokens":             true,
		"https://hooks.example.com/tokens":        false,
		"http://127.0.0.1:9000/tokens":            false,
		"http://localhost:9000/tokens":            false,
		"http://[::1]:9000/tokens":                false,
	} {
		core, logs := observer.New(zap.WarnLevel)
		a := &App{Notify: &Notify{Webhooks: []WebhookNotify{{URL: url, Secret: "s"}}},
			backend: &backend{store: store, notifier: &notify.Deliverer{Store: store}}, logger: zap.New(core)}
		if err := a.provisionNotify(); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		got := logs.FilterMessageSnippet("plain http").All()
		if (len(got) == 1) != warned {
			t.Errorf("%s: %d warnings, want warned=%v", url, len(got), warned)
		}
		for _, e := range got {
			if shown := e.ContextMap()["webhook"]; strings.Contains(shown.(string), "key=abc") {
				t.Errorf("the warning shows the webhook's secret part: %v", shown)
			}
		}
	}
}

// manage_url is linked from every email, so it must be a link that works
// and shows no secret: anything else is refused at load, saying what to fix.
func TestValidate_ManageURLMustBeAnAbsoluteHTTPURL(t *testing.T) {
	for _, ok := range []string{"https://manage.example.com/", "http://localhost:8081", "https://example.com/tokens?tab=mine"} {
		if err := (&App{MaxLifetime: "1y", ManageURL: ok}).Validate(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"manage.example.com":             "must be an absolute URL",
		"/tokens":                        "must be an absolute URL",
		"https://":                       "must be an absolute URL",
		"ftp://manage.example.com/":      "must be an http or https URL",
		"javascript:alert(1)":            "must be an absolute URL",
		"https://bob:pw@manage.example/": "must not hold a user name or password",
		"https://manage.example.com/a b": "must not contain spaces",
		"https://manage example.com/":    "must be an absolute URL",
		"{env.MANAGE_URL}":               "must be an absolute URL",
	} {
		err := (&App{MaxLifetime: "1y", ManageURL: bad}).Validate()
		if err == nil || !strings.Contains(err.Error(), "manage_url") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error saying %q", bad, err, want)
		}
	}
}
