package apitoken

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// TokenIssuer signs the JWT of a token's generation (Signer.Issue).
type TokenIssuer interface {
	Issue(t *Token, jti string, at time.Time) (string, error)
}

// ServiceConfig is what a Service is built with (NewService).
type ServiceConfig struct {
	Store ServiceStore
	// Signer issues the JWTs of generations; nil for a Service that never
	// generates (a generation then fails).
	Signer TokenIssuer
	// MaxLifetime is the longest expiry allowed (default 1y).
	MaxLifetime Expiry
	// MaxTokensPerUser is the most tokens that are not revoked a user may
	// own (default DefaultMaxTokensPerUser); a create past it is refused
	// with ErrTokenLimit.
	MaxTokensPerUser int
	// Scopes are the declared scopes (default: meta and report): tokens
	// are given only these.
	Scopes *ScopeCatalog
	// Admins are system admins by configuration.
	Admins map[string]bool
	// Groups maps identity-provider groups to the roles their members get
	// (SignIn, SCIM).
	Groups GroupMap
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Changed is called after a change to a token or user is committed, so
	// caches can drop it. Either id may be empty.
	Changed func(tokenID, userID string)
	// Notify lists the notification destinations (DestinationEmail,
	// "webhook:..."): a generation and a revocation are written to the
	// outbox for each, in the transaction of the change. None: nothing is
	// notified.
	Notify []string
	// Notified is called after a change that wrote notifications is
	// committed, so that they can be delivered at once.
	Notified func()
}

// Service carries out the token lifecycle and user administration for
// callers, applying every rule of the product: who may do what, names,
// scopes, the expiry policy, and the logs each change writes. It is built
// once (NewService) and never changed: a new config builds a new Service.
type Service struct {
	cfg ServiceConfig
}

// NewService builds a Service of cfg, filling in its defaults.
func NewService(cfg ServiceConfig) *Service {
	if cfg.MaxLifetime == "" {
		cfg.MaxLifetime = Expiry1y
	}
	if cfg.MaxTokensPerUser <= 0 {
		cfg.MaxTokensPerUser = DefaultMaxTokensPerUser
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Scopes == nil {
		cfg.Scopes = defaultScopeCatalog
	}
	if cfg.Changed == nil {
		cfg.Changed = func(string, string) {}
	}
	cfg.Notify = append([]string(nil), cfg.Notify...)
	if cfg.Notified == nil {
		cfg.Notified = func() {}
	}
	return &Service{cfg: cfg}
}

// Config is the config the Service was built with, its defaults filled in:
// change a copy and build a new Service with it.
func (s *Service) Config() ServiceConfig { return s.cfg }

// Scopes are the declared scopes.
func (s *Service) Scopes() *ScopeCatalog { return s.cfg.Scopes }

// Now is the Service's clock, in UTC.
func (s *Service) Now() time.Time { return s.cfg.Now().UTC() }

// notified tells that a committed change wrote notifications.
func (s *Service) notified() {
	if len(s.cfg.Notify) > 0 {
		s.cfg.Notified()
	}
}

// DefaultMaxTokensPerUser is ServiceConfig.MaxTokensPerUser when unset:
// enough for every report client a person runs, few enough that a script
// creating tokens in a loop stops early.
const DefaultMaxTokensPerUser = 50

// Caller is the user on whose behalf a management call is made.
type Caller struct {
	ID    string
	User  User // zero but for ID when the user has no record
	Known bool // a user record exists
	Admin bool // named in the config's admins or holding the admin role
}

// Caller loads the caller's record and rights. A disabled user is refused
// (ErrForbidden).
func (s *Service) Caller(ctx context.Context, id string) (Caller, error) {
	if err := CheckUserID(id); err != nil {
		return Caller{}, Errorf(ErrForbidden, "your user name cannot be used here: %s", Message(err))
	}
	u, err := s.cfg.Store.GetUser(ctx, id)
	switch {
	case err == nil:
		return s.callerOf(u, true)
	case errors.Is(err, ErrNotFound):
		return s.callerOf(User{ID: id}, false)
	}
	return Caller{}, err
}

// callerOf is the caller u is; a disabled user is refused (ErrForbidden).
func (s *Service) callerOf(u User, known bool) (Caller, error) {
	if u.Disabled {
		return Caller{}, Errorf(ErrForbidden, "your account is disabled")
	}
	return Caller{ID: u.ID, User: u, Known: known, Admin: s.cfg.Admins[u.ID] || u.HasRole(RoleAdmin)}, nil
}

// checkOwner refuses a caller who may not own tokens now, saying why.
func (c Caller) checkOwner() error {
	switch c.User.TokenRoleReason() {
	case "":
		return nil
	case ReasonViewOnly:
		return Errorf(ErrForbidden, "your account is view-only; view-only users cannot have API tokens")
	case ReasonDisabled:
		return Errorf(ErrForbidden, "your account is disabled")
	}
	return Errorf(ErrForbidden, "you do not have the api_tokens role; ask a system admin to grant it")
}

func (c Caller) checkAdmin() error {
	if !c.Admin {
		return Errorf(ErrForbidden, "this needs a system admin")
	}
	return nil
}

// checkAdminOn refuses a caller who is not a system admin, then a user id
// that is not one: the checks of every admin change to a user.
func (c Caller) checkAdminOn(id string) error {
	if err := c.checkAdmin(); err != nil {
		return err
	}
	return CheckUserID(id)
}

// CheckOwner refuses (ErrForbidden, saying why) a caller who may not use the
// self-service token routes now: the token role must be held and have effect.
func (c Caller) CheckOwner() error { return c.checkOwner() }

// CheckAdmin refuses (ErrForbidden) a caller who is not a system admin.
func (c Caller) CheckAdmin() error { return c.checkAdmin() }

// CheckExpiry applies the lifetime policy to e.
func (s *Service) CheckExpiry(e Expiry) error {
	if !e.Valid() {
		_, err := ParseExpiry(string(e))
		return err
	}
	if max := s.cfg.MaxLifetime; e.Longer(max) {
		return Errorf(ErrInvalid, "expiry %s is longer than this deployment allows; the longest allowed is %s", e, max)
	}
	return nil
}

// AllowedExpiries lists the expiry choices the policy allows, shortest first.
func (s *Service) AllowedExpiries() []Expiry {
	var out []Expiry
	for _, e := range Expiries() {
		if s.CheckExpiry(e) == nil {
			out = append(out, e)
		}
	}
	return out
}

func joinExpiries(es []Expiry) string {
	var b bytes.Buffer
	for i, e := range es {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(e))
	}
	return b.String()
}
