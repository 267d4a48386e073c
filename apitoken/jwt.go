package apitoken

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Leeway is the clock skew allowed on exp, nbf and iat.
const Leeway = 30 * time.Second

// MaxJWTLen is the longest credential the guard accepts, in bytes.
const MaxJWTLen = 8 << 10

// Claims are the claims of a token's JWT. Unknown claims are ignored.
type Claims struct {
	jwt.RegisteredClaims
	TokenID string `json:"tid"`
	Scope   string `json:"scope"`
}

// Verified is what a checked JWT says, reduced to what the state check needs.
// It is immutable and safe to cache by the exact JWT string, for as long as
// Signer.Trusts says the keys that verified it are still the signer's.
type Verified struct {
	TokenID string
	Subject string
	JTIHash [sha256.Size]byte
	Scopes  Scopes
	// Exp is the exp claim; zero when the JWT has none (expiry never).
	Exp time.Time
	// IssuedAt is the iat claim; zero when the JWT has none.
	IssuedAt time.Time

	keys *keySet // the keys it was verified with
}

// JWT verification failures. They are reported to clients only as "token is
// not valid"; the precise error goes to logs.
var (
	ErrMalformedJWT = errors.New("malformed or unverifiable JWT")
	ErrJWTExpired   = errors.New("JWT expired")
)

// Signer issues and verifies the JWTs of one deployment: one issuer, one
// algorithm, a set of known keys of which the first signs. The keys can be
// replaced while it is in use (SetKeys): key rotation without a restart.
type Signer struct {
	issuer string
	alg    string
	method jwt.SigningMethod
	parser *jwt.Parser
	now    func() time.Time
	keys   atomic.Pointer[keySet]
}

// keySet is one immutable generation of a Signer's keys.
type keySet struct {
	keys []Key
	sign *Key // nil: this instance only verifies (EdDSA with public keys only)
	// byID holds each key as golang-jwt's verifier wants it: the HMAC
	// secret, or the Ed25519 public key.
	byID map[string]any
}

// NewSigner builds a signer for issuer. keys must not be empty and must all
// be of one algorithm, the signer's; keys[0] signs when it can (an EdDSA
// signer of public keys only verifies), every key verifies. now is the
// clock (time.Now when nil).
func NewSigner(issuer string, keys []Key, now func() time.Time) (*Signer, error) {
	if issuer == "" {
		return nil, Errorf(ErrInvalid, "issuer must not be empty")
	}
	if len(keys) == 0 {
		return nil, Errorf(ErrInvalid, "at least one signing key is required")
	}
	if now == nil {
		now = time.Now
	}
	alg := keys[0].Algorithm()
	s := &Signer{issuer: issuer, alg: alg, now: now, method: jwt.SigningMethodHS512}
	if alg == AlgEdDSA {
		s.method = jwt.SigningMethodEdDSA
	}
	if err := s.SetKeys(keys); err != nil {
		return nil, err
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{s.method.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithLeeway(Leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
		// Strict base64: one JWT has one spelling, so a signature cannot be
		// re-encoded into another string that also verifies.
		jwt.WithStrictDecoding(),
	)
	return s, nil
}

// SetKeys replaces the signer's keys at once: keys[0] signs from now on,
// and a JWT of a key no longer listed stops verifying, cached or not (see
// Trusts). The keys must be of the signer's algorithm. On error the keys
// in use are kept.
func (s *Signer) SetKeys(keys []Key) error {
	if len(keys) == 0 {
		return Errorf(ErrInvalid, "at least one signing key is required")
	}
	set := &keySet{keys: append([]Key(nil), keys...), byID: make(map[string]any, len(keys))}
	for _, k := range set.keys {
		if alg := k.Algorithm(); alg != s.alg {
			return Errorf(ErrInvalid, "key %s is for %s, but this deployment signs with %s", k.ID, alg, s.alg)
		}
		if _, dup := set.byID[k.ID]; dup {
			return Errorf(ErrInvalid, "key %s is listed twice", k.ID)
		}
		switch s.alg {
		case AlgEdDSA:
			if len(k.Public) != ed25519.PublicKeySize {
				return Errorf(ErrInvalid, "Ed25519 key %s has no valid public key", k.ID)
			}
			set.byID[k.ID] = k.Public
		default:
			if len(k.Secret) < MinKeyLen {
				return Errorf(ErrInvalid, "signing key %s is %d bytes; it must be at least %d", k.ID, len(k.Secret), MinKeyLen)
			}
			set.byID[k.ID] = k.Secret
		}
	}
	if set.keys[0].CanSign() {
		set.sign = &set.keys[0]
	}
	s.keys.Store(set)
	return nil
}

// Issuer is the configured issuer.
func (s *Signer) Issuer() string { return s.issuer }

// Alg is the signer's algorithm, AlgHS512 or AlgEdDSA.
func (s *Signer) Alg() string { return s.alg }

// KeyIDs lists the known key ids, the signing one first.
func (s *Signer) KeyIDs() []string {
	keys := s.keys.Load().keys
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// CanIssue reports whether the signer holds a key that signs.
func (s *Signer) CanIssue() bool { return s.keys.Load().sign != nil }

// Trusts reports whether v was verified with the signer's current keys. A
// Verified cached before SetKeys is not trusted: verify the JWT again (a
// key still listed verifies it; a retired one does not).
func (s *Signer) Trusts(v *Verified) bool { return v != nil && v.keys == s.keys.Load() }

// Issue signs a JWT for t's current generation: jti is the generation's
// random id, iat is at, and exp is at + expiry unless the expiry is never.
func (s *Signer) Issue(t *Token, jti string, at time.Time) (string, error) {
	set := s.keys.Load()
	if set.sign == nil {
		return "", Errorf(ErrConflict, "this instance only verifies tokens (it holds %s public keys only); generate tokens where the signing key is configured", s.alg)
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:   s.issuer,
			Subject:  t.Owner,
			ID:       jti,
			IssuedAt: jwt.NewNumericDate(at),
		},
		TokenID: t.ID,
		Scope:   t.Scopes.String(),
	}
	if end := t.Expires.ExpiresAt(at); end != nil {
		c.ExpiresAt = jwt.NewNumericDate(*end)
	}
	tok := jwt.NewWithClaims(s.method, c)
	tok.Header["kid"] = set.sign.ID
	var key any = set.sign.Secret
	if s.alg == AlgEdDSA {
		key = set.sign.Private
	}
	signed, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing JWT: %w", err)
	}
	return signed, nil
}

// Verify checks the signature, header and claims of raw with golang-jwt's
// parser: the configured algorithm only, a known kid, a header of exactly
// alg, typ and kid (keyFor), strict base64url, iss equal to the issuer, and
// exp, nbf and iat within the leeway. It returns ErrJWTExpired, with the
// claims, for a JWT whose only fault is its exp, and an error wrapping
// ErrMalformedJWT for everything else.
//
// It is the one verifier: repeat use of a JWT is made cheap by the cache of
// verified JWTs in front of it (State), not by a second path beside it.
func (s *Signer) Verify(raw string) (*Verified, error) {
	set := s.keys.Load()
	var c Claims
	_, err := s.parser.ParseWithClaims(raw, &c, set.keyFor)
	return s.verified(set, &c, err)
}

// verified turns checked claims into a Verified, given the error of their
// validation.
func (s *Signer) verified(set *keySet, c *Claims, err error) (*Verified, error) {
	expired := err != nil && onlyExpired(err)
	if err != nil && !expired {
		return nil, fmt.Errorf("%w: %w", ErrMalformedJWT, err)
	}
	if c.TokenID == "" || c.ID == "" || c.Subject == "" {
		return nil, fmt.Errorf("%w: tid, jti and sub are required", ErrMalformedJWT)
	}
	v := &Verified{TokenID: c.TokenID, Subject: c.Subject, JTIHash: HashJTI(c.ID), Scopes: ParseScopeClaim(c.Scope), keys: set}
	if c.ExpiresAt != nil {
		v.Exp = c.ExpiresAt.Time
	}
	if c.IssuedAt != nil {
		v.IssuedAt = c.IssuedAt.Time
	}
	if expired {
		return v, ErrJWTExpired
	}
	return v, nil
}

// onlyExpired reports whether the parser's error says the signature and every
// claim are good but exp is past. golang-jwt checks the signature before the
// claims and joins every failed claim check into one error.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience, jwt.ErrTokenInvalidSubject, jwt.ErrTokenUsedBeforeIssued,
		jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidId, jwt.ErrTokenRequiredClaimMissing} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

// keyFor is the jwt.Keyfunc: it refuses any header but {alg, typ: JWT, kid}
// and any kid it does not know.
func (set *keySet) keyFor(t *jwt.Token) (any, error) {
	if len(t.Header) != 3 {
		return nil, fmt.Errorf("header must hold exactly alg, typ and kid, got %d members", len(t.Header))
	}
	if typ, _ := t.Header["typ"].(string); typ != "JWT" {
		return nil, errors.New(`header typ must be "JWT"`)
	}
	kid, _ := t.Header["kid"].(string)
	key, ok := set.byID[kid]
	if !ok {
		return nil, errors.New("unknown kid")
	}
	return key, nil
}

// HashJTI is the SHA-256 of a jti: what the store keeps of a generation.
func HashJTI(jti string) [sha256.Size]byte { return sha256.Sum256([]byte(jti)) }
