package apitoken

import (
	"encoding/json"
	"strings"
)

// Scope is one right a token may carry.
type Scope string

// The scopes. meta: calls that list reports and their parameters; report:
// calls that return report data.
const (
	ScopeMeta   Scope = "meta"
	ScopeReport Scope = "report"
)

// Scopes is a set of scopes, kept as a bit set so that the request path can
// intersect and test them without allocating.
type Scopes uint8

const (
	scopeMetaBit Scopes = 1 << iota
	scopeReportBit
)

var allScopes = []struct {
	name Scope
	bit  Scopes
}{{ScopeMeta, scopeMetaBit}, {ScopeReport, scopeReportBit}}

// AllScopes is the set of every known scope.
const AllScopes = scopeMetaBit | scopeReportBit

// ScopeBit returns the set holding only s, and whether s is a known scope.
func ScopeBit(s Scope) (Scopes, bool) {
	for _, sc := range allScopes {
		if sc.name == s {
			return sc.bit, true
		}
	}
	return 0, false
}

// ParseScopes turns a list of scope names into a set. Unknown names, an empty
// list and duplicates are refused with a message that says what is allowed.
func ParseScopes(names []string) (Scopes, error) {
	if len(names) == 0 {
		return 0, Errorf(ErrInvalid, `scopes must name at least one of "meta" and "report"`)
	}
	var set Scopes
	for _, n := range names {
		bit, ok := ScopeBit(Scope(n))
		if !ok {
			return 0, Errorf(ErrInvalid, `unknown scope %q: scopes are "meta" and "report"`, n)
		}
		if set&bit != 0 {
			return 0, Errorf(ErrInvalid, "scope %q is listed twice", n)
		}
		set |= bit
	}
	return set, nil
}

// ParseScopeClaim parses the space-separated scope claim of a JWT. Unknown
// scopes are ignored: they grant nothing.
func ParseScopeClaim(claim string) Scopes {
	var set Scopes
	for _, f := range strings.Fields(claim) {
		if bit, ok := ScopeBit(Scope(f)); ok {
			set |= bit
		}
	}
	return set
}

// Has reports whether every scope of want is in s.
func (s Scopes) Has(want Scopes) bool { return s&want == want }

// Names lists the scopes in a fixed order.
func (s Scopes) Names() []string {
	names := make([]string, 0, len(allScopes))
	for _, sc := range allScopes {
		if s&sc.bit != 0 {
			names = append(names, string(sc.name))
		}
	}
	return names
}

// scopeStrings holds String of every set, built once: the request path
// sets the X-Api-Token-Scopes header without allocating.
var scopeStrings = func() (out [AllScopes + 1]string) {
	for s := range out {
		out[s] = strings.Join(Scopes(s).Names(), " ")
	}
	return out
}()

// String is the space-separated form used in the JWT scope claim and in
// headers.
func (s Scopes) String() string {
	if s <= AllScopes {
		return scopeStrings[s]
	}
	return strings.Join(s.Names(), " ")
}

// MarshalJSON renders the set as a list of names.
func (s Scopes) MarshalJSON() ([]byte, error) { return json.Marshal(s.Names()) }

// UnmarshalJSON parses a list of names with ParseScopes.
func (s *Scopes) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return Errorf(ErrInvalid, `scopes must be a list of strings, such as ["meta", "report"]`)
	}
	set, err := ParseScopes(names)
	if err != nil {
		return err
	}
	*s = set
	return nil
}
