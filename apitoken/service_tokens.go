package apitoken

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The token lifecycle: the Service's calls on tokens (create, change,
// generate, revoke) and their logs.

// TokenInput is what a caller gives to create a token.
type TokenInput struct {
	Name       string
	Expires    Expiry
	Scopes     Scopes
	AllowedIPs Networks // ParseNetworks; nil for any client
}

// TokenPatch is what a caller gives to update a token; nil fields stay.
type TokenPatch struct {
	Name    *string
	Expires *Expiry
	Scopes  *Scopes
	// AllowedIPs replaces the networks (ParseNetworks); empty allows any
	// client again.
	AllowedIPs *Networks
}

// CreateToken creates a token owned by the caller and logs CREATE.
func (s *Service) CreateToken(ctx context.Context, c Caller, in TokenInput) (Token, error) {
	if err := c.checkOwner(); err != nil {
		return Token{}, err
	}
	return s.createToken(ctx, c.ID, c.ID, in)
}

// CreateTokenFor creates a service account's token on a system admin's
// behalf, and logs CREATE by the admin. Every rule of CreateToken applies to
// the owner, who must exist (ErrNotFound), be a service account
// (ErrForbidden: no admin may hold a person's JWT) and hold the effective
// token role (ErrConflict).
func (s *Service) CreateTokenFor(ctx context.Context, admin Caller, owner string, in TokenInput) (Token, error) {
	if err := admin.checkAdmin(); err != nil {
		return Token{}, err
	}
	if err := s.checkTokenOwner(ctx, owner); err != nil {
		return Token{}, err
	}
	return s.createToken(ctx, owner, admin.ID, in)
}

// checkTokenOwner refuses, to an admin acting for them, an owner who is not
// a service account or may not have tokens now, saying why.
func (s *Service) checkTokenOwner(ctx context.Context, owner string) error {
	if err := CheckUserID(owner); err != nil {
		return err
	}
	u, err := s.cfg.Store.GetUser(ctx, owner)
	if errors.Is(err, ErrNotFound) {
		return Errorf(ErrNotFound, "no user %q; create it as a service account first (kind service)", owner)
	}
	if err != nil {
		return err
	}
	if !u.IsService() {
		return Errorf(ErrForbidden, "user %q is a person; admins create and generate tokens only for service accounts, so that no admin ever holds a person's JWT", owner)
	}
	switch u.TokenRoleReason() {
	case "":
		return nil
	case ReasonViewOnly:
		return Errorf(ErrConflict, "user %q is view-only; view-only users cannot have API tokens", owner)
	case ReasonDisabled:
		return Errorf(ErrConflict, "user %q is disabled; a disabled user's tokens cannot be created or generated", owner)
	}
	return Errorf(ErrConflict, "user %q does not have the api_tokens role; grant it first", owner)
}

// createToken creates a token of owner, made by the user by.
func (s *Service) createToken(ctx context.Context, owner, by string, in TokenInput) (Token, error) {
	name, err := NormalizeName(in.Name)
	if err != nil {
		return Token{}, err
	}
	if in.Expires == "" {
		return Token{}, Errorf(ErrInvalid, "expires is required: choose one of %s", joinExpiries(s.AllowedExpiries()))
	}
	if err := s.CheckExpiry(in.Expires); err != nil {
		return Token{}, err
	}
	declared := s.cfg.Scopes.All()
	if in.Scopes&declared == 0 {
		return Token{}, s.cfg.Scopes.Empty()
	}
	now := s.Now()
	t := Token{ID: NewTokenID(), Name: name, Owner: owner, Scopes: in.Scopes & declared, Expires: in.Expires, CreatedAt: now,
		AllowedIPs: in.AllowedIPs}
	log := Log{TokenID: t.ID, TokenName: name, Activity: ActivityCreate, ActivityOn: now, ActivityBy: by,
		Reason: fmt.Sprintf("scopes %s, expires %s", t.Scopes, t.Expires)}
	if len(t.AllowedIPs) > 0 {
		log.Reason += ", allowed_ips " + t.AllowedIPs.describe()
	}
	if owner != by {
		log.Reason += "; created by system admin " + by
	}
	err = s.cfg.Store.CreateToken(ctx, t, log, s.cfg.MaxTokensPerUser)
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, ErrTokenLimit) && owner != by:
		return Token{}, err // the store's message names the user
	case errors.Is(err, ErrTokenLimit):
		return Token{}, Errorf(ErrTokenLimit, "you have reached the limit of %d tokens that are not revoked (max_tokens_per_user); revoke one first", s.cfg.MaxTokensPerUser)
	case owner != by && errors.Is(err, ErrConflict):
		return Token{}, Errorf(ErrConflict, "user %q already has a token named %q; choose another name or revoke that token first", owner, name)
	}
	return Token{}, nameConflict(err, name)
}

func nameConflict(err error, name string) error {
	if errors.Is(err, ErrConflict) {
		return Errorf(ErrConflict, "you already have a token named %q; choose another name or revoke that token first", name)
	}
	return err
}

// OwnedToken returns the caller's token with that id. Another user's token
// is ErrNotFound, exactly like a missing one.
func (s *Service) OwnedToken(ctx context.Context, c Caller, id string) (Token, error) {
	if !storable(id) {
		return Token{}, Errorf(ErrNotFound, "no token %q", id)
	}
	t, err := s.cfg.Store.GetToken(ctx, id)
	if err == nil && t.Owner != c.ID {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) {
		return Token{}, Errorf(ErrNotFound, "no token %q", id)
	}
	return t, err
}

// ListTokens lists the caller's tokens, filtered by f.Statuses (f.Owner is
// the caller).
func (s *Service) ListTokens(ctx context.Context, c Caller, f TokenFilter) ([]Token, string, error) {
	f.Owner = c.ID
	f.Now = s.Now()
	return s.cfg.Store.ListTokens(ctx, f)
}

// ListAllTokens lists every user's tokens (admins only), filtered by
// f.Owner and f.Statuses.
func (s *Service) ListAllTokens(ctx context.Context, admin Caller, f TokenFilter) ([]Token, string, error) {
	if err := admin.checkAdmin(); err != nil {
		return nil, "", err
	}
	if !storable(f.Owner) {
		return nil, "", nil // no such owner
	}
	f.Now = s.Now()
	return s.cfg.Store.ListTokens(ctx, f)
}

// ownedBy lets a caller change only their own tokens.
func ownedBy(c Caller) func(t *Token) bool {
	return func(t *Token) bool { return t.Owner == c.ID }
}

// anyToken lets an admin (or the leak check) change any user's token.
func anyToken(*Token) bool { return true }

// updateToken runs fn on the token id in the store's transaction, refusing
// as missing a token that may does not allow.
func (s *Service) updateToken(ctx context.Context, id string, may func(t *Token) bool, fn func(t *Token) (Log, error)) (Token, error) {
	if !storable(id) {
		return Token{}, Errorf(ErrNotFound, "no token %q", id)
	}
	t, err := s.cfg.Store.UpdateToken(ctx, id, func(t *Token) (Log, error) {
		if !may(t) {
			return Log{}, ErrNotFound
		}
		return fn(t)
	})
	if errors.Is(err, ErrNotFound) {
		return Token{}, Errorf(ErrNotFound, "no token %q", id)
	}
	if err != nil {
		return Token{}, err
	}
	s.cfg.Changed(t.ID, "")
	return t, nil
}

// UpdateToken changes a token's name, expiry, scopes or allowed networks and
// logs UPDATE. Narrowing applies to the live JWT at once (its effective
// scopes and expiry are cut by the record); widening scopes or expiry
// applies from the next generation (the JWT's own claims still cap it).
// Allowed networks are not in the JWT: any change to them applies at once.
func (s *Service) UpdateToken(ctx context.Context, c Caller, id string, p TokenPatch) (Token, error) {
	if err := c.checkOwner(); err != nil {
		return Token{}, err
	}
	var name string
	if p.Name != nil {
		var err error
		if name, err = NormalizeName(*p.Name); err != nil {
			return Token{}, err
		}
	}
	if p.Expires != nil {
		if err := s.CheckExpiry(*p.Expires); err != nil {
			return Token{}, err
		}
	}
	if p.Scopes != nil && *p.Scopes&s.cfg.Scopes.All() == 0 {
		return Token{}, s.cfg.Scopes.Empty()
	}
	now := s.Now()
	var revoked error // fn's own conflict, which is not a name clash
	t, err := s.updateToken(ctx, id, ownedBy(c), func(t *Token) (Log, error) {
		if t.RevokedAt != nil {
			revoked = Errorf(ErrConflict, "token %q is revoked; a revoked token cannot be changed", t.Name)
			return Log{}, revoked
		}
		var changes []string
		if p.Name != nil && name != t.Name {
			changes = append(changes, fmt.Sprintf("name %q -> %q", t.Name, name))
			t.Name = name
		}
		if p.Scopes != nil && *p.Scopes != t.Scopes {
			changes = append(changes, fmt.Sprintf("scopes %s -> %s", t.Scopes, *p.Scopes))
			t.Scopes = *p.Scopes & s.cfg.Scopes.All()
		}
		if p.Expires != nil && *p.Expires != t.Expires {
			changes = append(changes, fmt.Sprintf("expires %s -> %s", t.Expires, *p.Expires))
			t.Expires = *p.Expires
		}
		if p.AllowedIPs != nil && !slices.Equal(*p.AllowedIPs, t.AllowedIPs) {
			changes = append(changes, fmt.Sprintf("allowed_ips %s -> %s", t.AllowedIPs.describe(), p.AllowedIPs.describe()))
			t.AllowedIPs = *p.AllowedIPs
		}
		if len(changes) == 0 {
			return Log{}, nil // nothing changed: nothing to log
		}
		return Log{TokenID: t.ID, TokenName: t.Name, Activity: ActivityUpdate, ActivityOn: now, ActivityBy: c.ID,
			Reason: strings.Join(changes, "; ")}, nil
	})
	if err != nil && revoked != nil && errors.Is(err, revoked) {
		return Token{}, err
	}
	if err != nil {
		return Token{}, nameConflict(err, name)
	}
	return t, nil
}

// TokenLogs lists the logs of the caller's token.
func (s *Service) TokenLogs(ctx context.Context, c Caller, id string, page Page) ([]Log, string, error) {
	if _, err := s.OwnedToken(ctx, c, id); err != nil {
		return nil, "", err
	}
	return s.cfg.Store.ListLogs(ctx, LogFilter{TokenID: id, Page: page})
}

// AdminLogs lists every log row matching f (admins only).
func (s *Service) AdminLogs(ctx context.Context, c Caller, f LogFilter) ([]Log, string, error) {
	if err := c.checkAdmin(); err != nil {
		return nil, "", err
	}
	if !storable(f.TokenID) {
		return nil, "", nil // no such token
	}
	return s.cfg.Store.ListLogs(ctx, f)
}

// Notifications lists the notification outbox matching f (admins only):
// what was sent, what waits for a retry, and what failed and why.
func (s *Service) Notifications(ctx context.Context, c Caller, f NotificationFilter) ([]Notification, string, error) {
	if err := c.checkAdmin(); err != nil {
		return nil, "", err
	}
	if !storable(f.TokenID) {
		return nil, "", nil // no such token
	}
	return s.cfg.Store.ListNotifications(ctx, f)
}
