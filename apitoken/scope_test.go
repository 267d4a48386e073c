package apitoken_test

import (
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func TestScopeCatalog_DefaultDeclaresMetaAndReport(t *testing.T) {
	c := mustCatalog(t)
	defs := c.Defs()
	if len(defs) != 2 || defs[0].Name != "meta" || defs[1].Name != "report" || defs[0].Description == "" || defs[1].Description == "" {
		t.Fatalf("default scopes = %+v, want meta and report with descriptions", defs)
	}
	if c.All() != apitoken.DefaultScopes || c.List() != "meta, report" {
		t.Errorf("All() = %v, List() = %q; want DefaultScopes and \"meta, report\"", c.All(), c.List())
	}
}

func TestScopeCatalog_ParseAcceptsEachSubsetOfTheDeclaredScopes(t *testing.T) {
	c := mustCatalog(t, apitoken.ScopeDef{Name: "meta"}, apitoken.ScopeDef{Name: "report"}, apitoken.ScopeDef{Name: "sales", Description: "Sales only"})
	for _, tc := range []struct {
		names []string
		str   string
	}{
		{[]string{"meta"}, "meta"},
		{[]string{"report"}, "report"},
		{[]string{"sales"}, "sales"},
		{[]string{"meta", "report"}, "meta report"},
		{[]string{"sales", "report", "meta"}, "meta report sales"},
	} {
		got, err := c.Parse(tc.names)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.names, err)
		}
		if got.String() != tc.str || !c.All().Has(got) {
			t.Errorf("Parse(%q) = %v (%q), want %q within the declared set", tc.names, got, got.String(), tc.str)
		}
		if back, err := apitoken.ScopesOf(got.String()); err != nil || back != got {
			t.Errorf("ScopesOf(%q) = %v, %v; want %v", got.String(), back, err, got)
		}
	}
}

func TestScopeCatalog_ParseRefusesEmptyUnknownAndDuplicateListsNamingTheDeclaredScopes(t *testing.T) {
	c := mustCatalog(t, apitoken.ScopeDef{Name: "meta"}, apitoken.ScopeDef{Name: "sales"})
	for _, tc := range []struct {
		name  string
		names []string
		msg   string
	}{
		{"nil list", nil, `scopes must name at least one of the declared scopes: meta, sales`},
		{"empty list", []string{}, `scopes must name at least one of the declared scopes: meta, sales`},
		{"unknown scope", []string{"meta", "admin"}, `unknown scope "admin": the declared scopes are meta, sales`},
		{"a scope of the defaults that this config does not declare", []string{"report"}, `unknown scope "report": the declared scopes are meta, sales`},
		{"scope in the wrong case", []string{"Meta"}, `unknown scope "Meta": the declared scopes are meta, sales`},
		{"empty scope name", []string{""}, `unknown scope "": the declared scopes are meta, sales`},
		{"duplicate scope", []string{"sales", "meta", "sales"}, `scope "sales" is listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Parse(tc.names)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tc.names, got)
			}
			wantKind(t, err, apitoken.ErrInvalid)
			if msg := apitoken.Message(err); msg != tc.msg {
				t.Errorf("message = %q, want %q", msg, tc.msg)
			}
		})
	}
}

func TestNewScopeCatalog_RefusesDeclarationsThatWouldMislead(t *testing.T) {
	many := make([]apitoken.ScopeDef, apitoken.MaxDeclaredScopes+1)
	for i := range many {
		many[i].Name = "s" + strings.Repeat("x", i)
	}
	for _, tc := range []struct {
		name string
		defs []apitoken.ScopeDef
		msg  string
	}{
		{"upper case", []apitoken.ScopeDef{{Name: "Sales"}}, `scope name "Sales": use 1 to 40 characters`},
		{"a space", []apitoken.ScopeDef{{Name: "sales eu"}}, `scope name "sales eu"`},
		{"a slash", []apitoken.ScopeDef{{Name: "/data"}}, `scope name "/data"`},
		{"empty", []apitoken.ScopeDef{{Name: ""}}, `scope name ""`},
		{"41 characters", []apitoken.ScopeDef{{Name: strings.Repeat("a", 41)}}, `use 1 to 40 characters`},
		{"twice", []apitoken.ScopeDef{{Name: "sales"}, {Name: "meta"}, {Name: "sales"}}, `scope "sales" is declared twice`},
		{"too many", many, "33 scopes are declared; the most is 32"},
		{"a long description", []apitoken.ScopeDef{{Name: "sales", Description: strings.Repeat("d", 201)}}, `the description of scope "sales" is 201 bytes long; the limit is 200`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := apitoken.NewScopeCatalog(tc.defs)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("NewScopeCatalog = %v, %v; want an error containing %q", c, err, tc.msg)
			}
		})
	}
	if _, err := apitoken.NewScopeCatalog([]apitoken.ScopeDef{{Name: "a.b_c:d-9"}}); err != nil {
		t.Errorf("a name of every allowed character: %v", err)
	}
}

func TestScopesOf_AStoredNameNoConfigDeclaresStaysInTheSet(t *testing.T) {
	s, err := apitoken.ScopesOf("meta retired-scope-of-an-old-config")
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != "meta retired-scope-of-an-old-config" {
		t.Errorf("String() = %q: a stored name must survive a read and write", s.String())
	}
	if c := mustCatalog(t); c.All()&s != mustScopes(t, "meta") {
		t.Errorf("declared part = %v, want meta alone: an undeclared scope grants nothing", c.All()&s)
	}
}

func TestParseScopeClaim_KeepsKnownScopesAndIgnoresTheRest(t *testing.T) {
	meta, report := mustScopes(t, "meta"), mustScopes(t, "report")
	for _, tc := range []struct {
		claim string
		want  apitoken.Scopes
	}{
		{"meta report", meta | report},
		{"report", report},
		{"  meta\treport  ", meta | report},
		{"meta never-declared-anywhere", meta},
		{"META REPORT", 0},
		{"metareport", 0},
		{"", 0},
	} {
		if got := apitoken.ParseScopeClaim(tc.claim); got != tc.want {
			t.Errorf("ParseScopeClaim(%q) = %v, want %v", tc.claim, got, tc.want)
		}
	}
}

func TestScopes_AnyAndHas(t *testing.T) {
	meta, report := mustScopes(t, "meta"), mustScopes(t, "report")
	if !(meta | report).Any(report) || meta.Any(report) || !(meta | report).Has(meta|report) || meta.Has(meta|report) {
		t.Error("Any must need one scope of the rule, Has all of them")
	}
}

func TestScopes_StringOfASetMetBeforeDoesNotAllocate(t *testing.T) {
	s := apitoken.DefaultScopes
	_ = s.String()
	if n := testing.AllocsPerRun(100, func() { _ = s.String() }); n != 0 {
		t.Errorf("String() allocates %v times per call", n)
	}
}

func mustCatalog(t testing.TB, defs ...apitoken.ScopeDef) *apitoken.ScopeCatalog {
	t.Helper()
	c, err := apitoken.NewScopeCatalog(defs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustScopes(t testing.TB, names ...string) apitoken.Scopes {
	t.Helper()
	s, err := mustCatalog(t).Parse(names)
	if err != nil {
		t.Fatalf("Parse(%q): %v", names, err)
	}
	return s
}

// What the live JWT can do is its claims cut by the record and the declared
// scopes; a widening of scopes or expiry waits for the next generation.
func TestToken_EffectiveScopesAndRegenerateToApply(t *testing.T) {
	meta, report := mustScopes(t, "meta"), mustScopes(t, "report")
	// generated_at keeps the exact time; the exp claim counts from its
	// whole second.
	gen := time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC)
	exp7 := gen.Truncate(time.Second).Add(7 * 24 * time.Hour)
	generated := func(claims, record apitoken.Scopes, expires apitoken.Expiry, exp *time.Time) apitoken.Token {
		return apitoken.Token{Scopes: record, GeneratedScopes: claims, Expires: expires, GeneratedAt: &gen, GeneratedExp: exp}
	}
	revoked := generated(meta, meta, apitoken.Expiry7d, &exp7)
	revoked.RevokedAt = &gen
	for _, tc := range []struct {
		name      string
		tok       apitoken.Token
		declared  apitoken.Scopes
		effective string
		apply     bool
	}{
		{"as generated", generated(meta|report, meta|report, apitoken.Expiry7d, &exp7), apitoken.DefaultScopes, "meta report", false},
		{"narrowed: at once", generated(meta|report, meta, apitoken.Expiry7d, &exp7), apitoken.DefaultScopes, "meta", false},
		{"widened scopes: waits", generated(meta, meta|report, apitoken.Expiry7d, &exp7), apitoken.DefaultScopes, "meta", true},
		{"widened expiry: waits", generated(meta, meta, apitoken.Expiry30d, &exp7), apitoken.DefaultScopes, "meta", true},
		{"widened to never: waits", generated(meta, meta, apitoken.ExpiryNever, &exp7), apitoken.DefaultScopes, "meta", true},
		{"shortened expiry: at once", generated(meta, meta, apitoken.Expiry1d, &exp7), apitoken.DefaultScopes, "meta", false},
		{"never stays never", generated(meta, meta, apitoken.ExpiryNever, nil), apitoken.DefaultScopes, "meta", false},
		{"a scope no longer declared: nothing, and nothing to apply", generated(report, report, apitoken.Expiry7d, &exp7), meta, "", false},
		{"not generated", apitoken.Token{Scopes: meta, Expires: apitoken.Expiry7d}, apitoken.DefaultScopes, "", false},
		{"revoked", revoked, apitoken.DefaultScopes, "", false},
	} {
		if got := tc.tok.EffectiveScopes(tc.declared).String(); got != tc.effective {
			t.Errorf("%s: effective %q, want %q", tc.name, got, tc.effective)
		}
		if got := tc.tok.RegenerateToApply(tc.declared); got != tc.apply {
			t.Errorf("%s: regenerate_to_apply %v, want %v", tc.name, got, tc.apply)
		}
	}
}
