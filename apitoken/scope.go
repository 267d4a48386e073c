package apitoken

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Scope is the name of one right a token may carry.
type Scope string

// The scopes declared when the operator declares none. meta: calls that list
// reports and their parameters; report: calls that return report data.
const (
	ScopeMeta   Scope = "meta"
	ScopeReport Scope = "report"
)

// Scopes is a set of scopes, kept as a bit set so that the request path can
// intersect and test them without allocating. A name gets its bit the first
// time the process meets it (meta and report first) and keeps it for the
// life of the process, so sets made under successive configs compare. Bits
// never leave the process: the store and the JWT hold names.
type Scopes uint64

// MaxScopeNames is how many distinct scope names one process can hold, over
// all its configs: one bit each.
const MaxScopeNames = 64

// DefaultScopes is the set of the scopes declared by default, meta and report.
const DefaultScopes Scopes = 0b11

// scopeTable is the process's names and their bits. It is replaced whole
// when a name is added, so readers look it up without a lock.
type scopeTable struct {
	names []string          // by bit
	bits  map[string]Scopes // by name
}

// scopeNames holds the process's scopeTable, from meta and report on.
var scopeNames = func() *scopeNameTable {
	n := new(scopeNameTable)
	n.tab.Store(&scopeTable{names: []string{string(ScopeMeta), string(ScopeReport)},
		bits: map[string]Scopes{string(ScopeMeta): 1, string(ScopeReport): 2}})
	n.strs.Store(&map[Scopes]string{})
	return n
}()

type scopeNameTable struct {
	mu  sync.Mutex // held by writers
	tab atomic.Pointer[scopeTable]
	// strs caches String of the sets met on the request path.
	strs atomic.Pointer[map[Scopes]string]
}

// ScopeBit returns the set holding only s, and whether the process knows s.
// It never adds a name: a name no config declared grants nothing.
func ScopeBit(s Scope) (Scopes, bool) {
	b, ok := scopeNames.tab.Load().bits[string(s)]
	return b, ok
}

// internScope returns the bit of name, giving it one if it has none.
func internScope(name string) (Scopes, error) {
	if b, ok := ScopeBit(Scope(name)); ok {
		return b, nil
	}
	scopeNames.mu.Lock()
	defer scopeNames.mu.Unlock()
	old := scopeNames.tab.Load()
	if b, ok := old.bits[name]; ok {
		return b, nil
	}
	if len(old.names) >= MaxScopeNames {
		return 0, fmt.Errorf("this process has met %d scope names, the most it can hold; restart Caddy to forget those no longer declared", MaxScopeNames)
	}
	b := Scopes(1) << len(old.names)
	tab := &scopeTable{names: append(slices.Clip(old.names), name), bits: make(map[string]Scopes, len(old.bits)+1)}
	for k, v := range old.bits {
		tab.bits[k] = v
	}
	tab.bits[name] = b
	scopeNames.tab.Store(tab)
	return b, nil
}

// ScopesOf reads a set kept by name (as the store keeps it, space-separated),
// giving bits to names the process has not met. It fails only when the
// process has no bit left (MaxScopeNames): a set is never read short.
func ScopesOf(names string) (Scopes, error) {
	var set Scopes
	for _, n := range strings.Fields(names) {
		b, err := internScope(n)
		if err != nil {
			return 0, err
		}
		set |= b
	}
	return set, nil
}

// ParseScopeClaim parses the space-separated scope claim of a JWT. Names the
// process does not know are ignored: no config declares them, so they grant
// nothing.
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

// Any reports whether s holds at least one scope of want.
func (s Scopes) Any(want Scopes) bool { return s&want != 0 }

// Names lists the scopes in alphabetical order.
func (s Scopes) Names() []string {
	tab := scopeNames.tab.Load()
	names := make([]string, 0, len(tab.names))
	for i, n := range tab.names {
		if s&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// maxCachedScopeStrings bounds the cache of String: the sets met on the
// request path are few (one per distinct set of scopes granted).
const maxCachedScopeStrings = 1024

// String is the space-separated form, in alphabetical order, used in the JWT
// scope claim, in headers and in the store. Repeated calls for one set do not
// allocate.
func (s Scopes) String() string {
	cache := scopeNames.strs.Load()
	if str, ok := (*cache)[s]; ok {
		return str
	}
	str := strings.Join(s.Names(), " ")
	if len(*cache) < maxCachedScopeStrings {
		scopeNames.mu.Lock()
		cur := *scopeNames.strs.Load()
		next := make(map[Scopes]string, len(cur)+1)
		for k, v := range cur {
			next[k] = v
		}
		next[s] = str
		scopeNames.strs.Store(&next)
		scopeNames.mu.Unlock()
	}
	return str
}

// ScopeDef is a scope the operator declares, with what it grants in words.
type ScopeDef struct {
	Name        string
	Description string
}

// DefaultScopeDefs are the scopes declared when the operator declares none.
func DefaultScopeDefs() []ScopeDef {
	return []ScopeDef{
		{string(ScopeMeta), "List reports and their parameters"},
		{string(ScopeReport), "Read report data"},
	}
}

// defaultScopeCatalog declares DefaultScopeDefs.
var defaultScopeCatalog = func() *ScopeCatalog {
	c, err := NewScopeCatalog(nil)
	if err != nil {
		panic(err) // the defaults are valid
	}
	return c
}()

// MaxDeclaredScopes is the most scopes one config may declare.
const MaxDeclaredScopes = 32

// MaxScopeDescriptionLen is the longest description of a scope, in bytes.
const MaxScopeDescriptionLen = 200

// ScopeCatalog is the scopes a config declares: what tokens may be given,
// and the only ones that grant anything.
type ScopeCatalog struct {
	defs []ScopeDef
	all  Scopes
	list string // "meta, report, sales", for messages
}

// NewScopeCatalog checks the declared scopes (1 to MaxDeclaredScopes, names
// of 1 to 40 characters of a-z 0-9 . _ : -, each once) and gives each a bit.
// None declared: DefaultScopeDefs.
func NewScopeCatalog(defs []ScopeDef) (*ScopeCatalog, error) {
	if len(defs) == 0 {
		defs = DefaultScopeDefs()
	}
	if len(defs) > MaxDeclaredScopes {
		return nil, fmt.Errorf("%d scopes are declared; the most is %d", len(defs), MaxDeclaredScopes)
	}
	c := &ScopeCatalog{defs: slices.Clone(defs)}
	names := make([]string, len(defs))
	for i, d := range defs {
		if err := checkScopeName(d.Name); err != nil {
			return nil, err
		}
		if len(d.Description) > MaxScopeDescriptionLen {
			return nil, fmt.Errorf("the description of scope %q is %d bytes long; the limit is %d", d.Name, len(d.Description), MaxScopeDescriptionLen)
		}
		b, err := internScope(d.Name)
		if err != nil {
			return nil, err
		}
		if c.all&b != 0 {
			return nil, fmt.Errorf("scope %q is declared twice", d.Name)
		}
		c.all |= b
		names[i] = d.Name
	}
	c.list = strings.Join(names, ", ")
	return c, nil
}

// checkScopeName checks a declared name: 1 to 40 characters of a-z 0-9 . _ : -.
func checkScopeName(n string) error {
	ok := n != "" && len(n) <= 40
	for i := 0; ok && i < len(n); i++ {
		c := n[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("._:-", c) >= 0
	}
	if !ok {
		return fmt.Errorf("scope name %q: use 1 to 40 characters of a-z, 0-9, '.', '_', ':' and '-'", n)
	}
	return nil
}

// Defs lists the declared scopes in the order of the config.
func (c *ScopeCatalog) Defs() []ScopeDef { return slices.Clone(c.defs) }

// All is the set of the declared scopes.
func (c *ScopeCatalog) All() Scopes { return c.all }

// List names the declared scopes for a message: "meta, report".
func (c *ScopeCatalog) List() string { return c.list }

// Bit returns the set holding only the declared scope name; a name that is
// not declared is an ErrInvalid naming the declared ones.
func (c *ScopeCatalog) Bit(name string) (Scopes, error) {
	if b, ok := ScopeBit(Scope(name)); ok && c.all&b != 0 {
		return b, nil
	}
	return 0, Errorf(ErrInvalid, "unknown scope %q: the declared scopes are %s", name, c.list)
}

// Parse turns the scope names given for a token into a set: at least one,
// each declared, none twice.
func (c *ScopeCatalog) Parse(names []string) (Scopes, error) {
	if len(names) == 0 {
		return 0, c.Empty()
	}
	var set Scopes
	for _, n := range names {
		bit, err := c.Bit(n)
		if err != nil {
			return 0, err
		}
		if set&bit != 0 {
			return 0, Errorf(ErrInvalid, "scope %q is listed twice", n)
		}
		set |= bit
	}
	return set, nil
}

// Empty is the error of a token given no declared scope.
func (c *ScopeCatalog) Empty() error {
	return Errorf(ErrInvalid, "scopes must name at least one of the declared scopes: %s", c.list)
}
