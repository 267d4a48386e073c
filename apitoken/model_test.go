package apitoken_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func TestExpiry_TheSevenChoicesParseInOrderShortestFirst(t *testing.T) {
	want := []apitoken.Expiry{"1d", "7d", "30d", "60d", "90d", "1y", "never"}
	got := apitoken.Expiries()
	if len(got) != len(want) {
		t.Fatalf("Expiries() = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Expiries() = %v, want %v", got, want)
		}
		e, err := apitoken.ParseExpiry(string(want[i]))
		if err != nil || e != want[i] {
			t.Errorf("ParseExpiry(%q) = %q, %v", want[i], e, err)
		}
		for j := range want {
			if longer := want[i].Longer(want[j]); longer != (i > j) {
				t.Errorf("%s.Longer(%s) = %t, want %t", want[i], want[j], longer, i > j)
			}
		}
	}
}

func TestParseExpiry_RefusesAnythingButTheSevenChoices(t *testing.T) {
	for _, s := range []string{"", "2d", "1w", "365d", "1Y", "Never", " 1d", "0", "-1d", "forever"} {
		e, err := apitoken.ParseExpiry(s)
		if err == nil {
			t.Errorf("ParseExpiry(%q) = %q, want an error", s, e)
			continue
		}
		wantKind(t, err, apitoken.ErrInvalid)
		if msg := apitoken.Message(err); !strings.Contains(msg, "1d, 7d, 30d, 60d, 90d, 1y, never") {
			t.Errorf("ParseExpiry(%q) message %q does not list the choices", s, msg)
		}
		if apitoken.Expiry(s).Valid() {
			t.Errorf("Expiry(%q).Valid() = true", s)
		}
	}
}

func TestExpiry_DurationAndExpiresAtFollowTheChoice(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		e    apitoken.Expiry
		want time.Duration
	}{
		{apitoken.Expiry1d, day},
		{apitoken.Expiry7d, 7 * day},
		{apitoken.Expiry30d, 30 * day},
		{apitoken.Expiry60d, 60 * day},
		{apitoken.Expiry90d, 90 * day},
		{apitoken.Expiry1y, 365 * day},
	} {
		d, ok := tc.e.Duration()
		if !ok || d != tc.want {
			t.Errorf("%s.Duration() = %v, %t; want %v, true", tc.e, d, ok, tc.want)
		}
		end := tc.e.ExpiresAt(t0)
		if end == nil || !end.Equal(t0.Add(tc.want)) {
			t.Errorf("%s.ExpiresAt(t0) = %v, want %v", tc.e, end, t0.Add(tc.want))
		}
	}
	for _, e := range []apitoken.Expiry{apitoken.ExpiryNever, "", "2d"} {
		if d, ok := e.Duration(); ok {
			t.Errorf("%q.Duration() = %v, true; want no duration", e, d)
		}
		if end := e.ExpiresAt(t0); end != nil {
			t.Errorf("%q.ExpiresAt(t0) = %v, want nil", e, end)
		}
	}
}

func TestStatus_LabelsAreTheOnesPeopleSee(t *testing.T) {
	for _, tc := range []struct {
		status apitoken.Status
		json   string
		label  string
	}{
		{apitoken.StatusNotGenerated, "not_generated", "Not Generated"},
		{apitoken.StatusGeneratedInactive, "generated_inactive", "Generated - Inactive"},
		{apitoken.StatusGeneratedActive, "generated_active", "Generated - Active"},
		{apitoken.StatusExpired, "expired", "Expired"},
		{apitoken.StatusRevoked, "revoked", "Revoked"},
	} {
		if string(tc.status) != tc.json {
			t.Errorf("status %q, want JSON value %q", tc.status, tc.json)
		}
		if got := tc.status.Label(); got != tc.label {
			t.Errorf("%s.Label() = %q, want %q", tc.status, got, tc.label)
		}
		if st, err := apitoken.ParseStatus(tc.json); err != nil || st != tc.status {
			t.Errorf("ParseStatus(%q) = %q, %v", tc.json, st, err)
		}
	}
	for _, s := range []string{"", "active", "Revoked", "generated"} {
		_, err := apitoken.ParseStatus(s)
		wantKind(t, err, apitoken.ErrInvalid)
	}
}

// A status filter is one status or several, separated by commas.
func TestParseStatuses_TakesSeveralSeparatedByCommas(t *testing.T) {
	got, err := apitoken.ParseStatuses("not_generated,generated_inactive,generated_active,expired,expired")
	want := []apitoken.Status{apitoken.StatusNotGenerated, apitoken.StatusGeneratedInactive, apitoken.StatusGeneratedActive, apitoken.StatusExpired}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ParseStatuses = %q, %v; want %q", got, err, want)
	}
	if got, err := apitoken.ParseStatuses("revoked"); err != nil || !slices.Equal(got, []apitoken.Status{apitoken.StatusRevoked}) {
		t.Fatalf("ParseStatuses(revoked) = %q, %v", got, err)
	}
	for _, s := range []string{"", ",", "revoked,", "revoked, expired", "revoked,active"} {
		_, err := apitoken.ParseStatuses(s)
		wantKind(t, err, apitoken.ErrInvalid)
	}
}

func TestToken_StatusAtFollowsTheLifecycle(t *testing.T) {
	gen := t0.Add(time.Hour)
	before, after := gen.Add(-time.Second), gen.Add(time.Minute)
	for _, tc := range []struct {
		name string
		tok  apitoken.Token
		at   time.Time
		want apitoken.Status
	}{
		{"a token never generated is not generated",
			apitoken.Token{Expires: apitoken.Expiry30d}, t0, apitoken.StatusNotGenerated},
		{"a generated token not used yet is inactive",
			apitoken.Token{Expires: apitoken.Expiry30d, GeneratedAt: &gen}, after, apitoken.StatusGeneratedInactive},
		{"a use of the previous generation does not make the new one active",
			apitoken.Token{Expires: apitoken.Expiry30d, GeneratedAt: &gen, LastUsedAt: &before}, after, apitoken.StatusGeneratedInactive},
		{"a use at the generation time makes it active",
			apitoken.Token{Expires: apitoken.Expiry30d, GeneratedAt: &gen, LastUsedAt: &gen}, after, apitoken.StatusGeneratedActive},
		{"a use after generation makes it active",
			apitoken.Token{Expires: apitoken.Expiry30d, GeneratedAt: &gen, LastUsedAt: &after}, after, apitoken.StatusGeneratedActive},
		{"a token is still active one second before its end",
			apitoken.Token{Expires: apitoken.Expiry1d, GeneratedAt: &gen, LastUsedAt: &after}, gen.Add(24*time.Hour - time.Second), apitoken.StatusGeneratedActive},
		{"a token is expired at its end",
			apitoken.Token{Expires: apitoken.Expiry1d, GeneratedAt: &gen, LastUsedAt: &after}, gen.Add(24 * time.Hour), apitoken.StatusExpired},
		{"a token is expired at the exp of its JWT when that comes first",
			apitoken.Token{Expires: apitoken.Expiry30d, GeneratedAt: &gen, GeneratedExp: ptr(gen.Add(time.Hour))}, gen.Add(time.Hour), apitoken.StatusExpired},
		{"a never-expiring token is not expired years later",
			apitoken.Token{Expires: apitoken.ExpiryNever, GeneratedAt: &gen}, gen.Add(10 * 365 * 24 * time.Hour), apitoken.StatusGeneratedInactive},
		{"a revoked token is revoked even if never generated",
			apitoken.Token{Expires: apitoken.Expiry30d, RevokedAt: &after}, after, apitoken.StatusRevoked},
		{"a revoked token is revoked rather than expired",
			apitoken.Token{Expires: apitoken.Expiry1d, GeneratedAt: &gen, RevokedAt: &after}, gen.Add(48 * time.Hour), apitoken.StatusRevoked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tok.StatusAt(tc.at); got != tc.want {
				t.Errorf("StatusAt = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestToken_ExpiresAtIsTheEarlierOfTheJWTExpAndTheRecordsExpiry(t *testing.T) {
	const day = 24 * time.Hour
	gen := t0
	for _, tc := range []struct {
		name    string
		expires apitoken.Expiry
		genAt   *time.Time
		genExp  *time.Time
		want    *time.Time
	}{
		{"none before generation", apitoken.Expiry30d, nil, nil, nil},
		{"none for a never token", apitoken.ExpiryNever, &gen, nil, nil},
		{"generation plus the expiry", apitoken.Expiry30d, &gen, ptr(gen.Add(30 * day)), ptr(gen.Add(30 * day))},
		{"a shorter expiry applies to the live JWT", apitoken.Expiry1d, &gen, ptr(gen.Add(30 * day)), ptr(gen.Add(day))},
		{"a longer expiry waits for the next generation", apitoken.Expiry90d, &gen, ptr(gen.Add(7 * day)), ptr(gen.Add(7 * day))},
		{"never does not lift the JWT's exp", apitoken.ExpiryNever, &gen, ptr(gen.Add(7 * day)), ptr(gen.Add(7 * day))},
		{"an expiry set on a never JWT applies to it", apitoken.Expiry7d, &gen, nil, ptr(gen.Add(7 * day))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := apitoken.Token{Expires: tc.expires, GeneratedAt: tc.genAt, GeneratedExp: tc.genExp}
			got := tok.ExpiresAt()
			switch {
			case tc.want == nil && got != nil:
				t.Errorf("ExpiresAt = %v, want nil", *got)
			case tc.want != nil && (got == nil || !got.Equal(*tc.want)):
				t.Errorf("ExpiresAt = %v, want %v", got, *tc.want)
			}
			if got != nil && tc.genExp != nil && got == tc.genExp {
				t.Errorf("ExpiresAt returned the token's own GeneratedExp pointer")
			}
		})
	}
}

func TestNormalizeName_TrimsAndAcceptsPrintableNames(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Reports", "Reports"},
		{"  nightly export  ", "nightly export"},
		{"\tCI\n", "CI"},
		{"Prüfbericht – Q1 📊", "Prüfbericht – Q1 📊"},
		{strings.Repeat("a", 100), strings.Repeat("a", 100)},
		{strings.Repeat("é", 100), strings.Repeat("é", 100)}, // 200 bytes, 100 characters
		{"  " + strings.Repeat("x", 100) + "  ", strings.Repeat("x", 100)},
	} {
		got, err := apitoken.NormalizeName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNormalizeName_RefusesEmptyLongAndUnprintableNames(t *testing.T) {
	for _, tc := range []struct {
		name, in, msg string
	}{
		{"empty", "", "name must not be empty"},
		{"only spaces", " \t\n ", "name must not be empty"},
		{"101 characters", strings.Repeat("a", 101), "name is 101 characters long; the limit is 100"},
		{"101 non-ASCII characters", strings.Repeat("ü", 101), "name is 101 characters long; the limit is 100"},
		{"a tab inside", "my\ttoken", "printable"},
		{"a line break inside", "my\ntoken", "printable"},
		{"a NUL byte", "my\x00token", "printable"},
		{"DEL", "my\x7ftoken", "printable"},
		{"a C1 control", "my\u0085token", "printable"},
		{"a zero-width space", "my\u200btoken", "printable"},
		{"a right-to-left override", "my\u202etoken", "printable"},
		{"invalid UTF-8", "my\xfftoken", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := apitoken.NormalizeName(tc.in)
			if err == nil {
				t.Fatalf("NormalizeName(%q) = %q, want an error", tc.in, got)
			}
			wantKind(t, err, apitoken.ErrInvalid)
			if msg := apitoken.Message(err); !strings.Contains(msg, tc.msg) {
				t.Errorf("message = %q, want it to contain %q", msg, tc.msg)
			}
		})
	}
}

func TestNameKey_ComparesNamesCaseInsensitively(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"Reports", "reports", true},
		{"Reports", "REPORTS", true},
		{"Äpfel", "äPFEL", true},
		{"ОТЧЁТ", "отчёт", true},
		{"ΣΊΣΥΦΟΣ", "σίσυφος", true},  // final sigma folds with sigma
		{"\u212a-key", "k-KEY", true}, // Kelvin sign folds with k
		{"Reports", "Report", false},
		{"reports 1", "reports 2", false},
		{"Äpfel", "Apfel", false},
	} {
		if same := apitoken.NameKey(tc.a) == apitoken.NameKey(tc.b); same != tc.same {
			t.Errorf("NameKey(%q) == NameKey(%q) is %t, want %t", tc.a, tc.b, same, tc.same)
		}
	}
}

func TestCheckUserID_AcceptsPrintableIDsAndRefusesTheRest(t *testing.T) {
	for _, id := range []string{"alice", "alice@example.com", "Zoë Müller", "CN=svc,O=corp", strings.Repeat("u", 200)} {
		if err := apitoken.CheckUserID(id); err != nil {
			t.Errorf("CheckUserID(%q): %v", id, err)
		}
	}
	for _, tc := range []struct{ name, id, msg string }{
		{"empty", "", "must not be empty"},
		{"201 bytes", strings.Repeat("u", 201), "201 bytes; the limit is 200"},
		{"101 two-byte characters", strings.Repeat("é", 101), "202 bytes; the limit is 200"},
		{"leading space", " alice", "spaces"},
		{"trailing newline", "alice\n", "spaces"},
		{"a slash", "alice/../bob", "slash"},
		{"a control character", "al\x00ice", "printable"},
		{"an escape sequence", "al\x1b[31mice", "printable"},
		{"invalid UTF-8", "al\xffice", "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := apitoken.CheckUserID(tc.id)
			if err == nil {
				t.Fatalf("CheckUserID(%q) = nil, want an error", tc.id)
			}
			wantKind(t, err, apitoken.ErrInvalid)
			if msg := apitoken.Message(err); !strings.Contains(msg, tc.msg) {
				t.Errorf("message = %q, want it to contain %q", msg, tc.msg)
			}
		})
	}
}

func TestParseRole_AcceptsOnlyTheTwoRoles(t *testing.T) {
	for _, s := range []string{"api_tokens", "admin"} {
		if r, err := apitoken.ParseRole(s); err != nil || string(r) != s {
			t.Errorf("ParseRole(%q) = %q, %v", s, r, err)
		}
	}
	for _, s := range []string{"", "Admin", "api-tokens", "API_TOKENS", "root", "admin "} {
		r, err := apitoken.ParseRole(s)
		if err == nil {
			t.Errorf("ParseRole(%q) = %q, want an error", s, r)
			continue
		}
		wantKind(t, err, apitoken.ErrInvalid)
	}
}

func TestUser_TokenRoleReasonSaysWhyTokensMayNotAuthenticate(t *testing.T) {
	holder := []apitoken.Role{apitoken.RoleAPITokens}
	for _, tc := range []struct {
		name string
		u    apitoken.User
		want string
	}{
		{"holder of the token role", apitoken.User{Roles: holder}, ""},
		{"admin without the token role", apitoken.User{Roles: []apitoken.Role{apitoken.RoleAdmin}}, apitoken.ReasonRoleMissing},
		{"no roles", apitoken.User{}, apitoken.ReasonRoleMissing},
		{"view-only holder", apitoken.User{Roles: holder, ViewOnly: true}, apitoken.ReasonViewOnly},
		{"disabled holder", apitoken.User{Roles: holder, Disabled: true}, apitoken.ReasonDisabled},
		{"disabled view-only user without the role", apitoken.User{ViewOnly: true, Disabled: true}, apitoken.ReasonDisabled},
	} {
		if got := tc.u.TokenRoleReason(); got != tc.want {
			t.Errorf("%s: TokenRoleReason = %q, want %q", tc.name, got, tc.want)
		}
	}
}
