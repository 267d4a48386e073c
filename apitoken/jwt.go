package apitoken

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
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
// It is immutable and safe to cache by the exact JWT string.
type Verified struct {
	TokenID string
	Subject string
	JTIHash [sha256.Size]byte
	Scopes  Scopes
	// Exp is the exp claim; zero when the JWT has none (expiry never).
	Exp time.Time
}

// JWT verification failures. They are reported to clients only as "token is
// not valid"; the precise error goes to logs.
var (
	ErrMalformedJWT = errors.New("malformed or unverifiable JWT")
	ErrJWTExpired   = errors.New("JWT expired")
)

// Signer issues and verifies the JWTs of one deployment: one issuer, one
// algorithm, a set of known keys of which the first signs.
type Signer struct {
	issuer string
	method jwt.SigningMethod
	keys   []Key
	byID   map[string][]byte
	parser *jwt.Parser
	now    func() time.Time

	// headers maps the encoded header that Issue writes for each key to that
	// key, so Verify can check a JWT of ours without parsing its header.
	headers   map[string]*macKey
	validator *jwt.Validator
}

// macKey is a verifying key with a pool of ready HMACs.
type macKey struct {
	pool sync.Pool // of hash.Hash
}

func newMACKey(secret []byte) *macKey {
	return &macKey{pool: sync.Pool{New: func() any { return hmac.New(sha512.New, secret) }}}
}

// encodedHeader is the header segment Issue writes for a key: the JSON of
// golang-jwt's header map, whose keys encoding/json sorts.
func encodedHeader(alg, kid string) string {
	b, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewSigner builds a signer for issuer. keys must not be empty; keys[0] signs,
// every key verifies. now is the clock (time.Now when nil).
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
	s := &Signer{issuer: issuer, method: jwt.SigningMethodHS512, keys: keys, byID: make(map[string][]byte, len(keys)), now: now,
		headers: make(map[string]*macKey, len(keys))}
	for _, k := range keys {
		if len(k.Secret) < MinKeyLen {
			return nil, Errorf(ErrInvalid, "signing key %s is %d bytes; it must be at least %d", k.ID, len(k.Secret), MinKeyLen)
		}
		s.byID[k.ID] = k.Secret
		s.headers[encodedHeader(s.method.Alg(), k.ID)] = newMACKey(k.Secret)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{s.method.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithLeeway(Leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	}
	s.parser = jwt.NewParser(opts...)
	s.validator = jwt.NewValidator(opts...)
	return s, nil
}

// Issuer is the configured issuer.
func (s *Signer) Issuer() string { return s.issuer }

// KeyIDs lists the known key ids, the signing one first.
func (s *Signer) KeyIDs() []string {
	ids := make([]string, len(s.keys))
	for i, k := range s.keys {
		ids[i] = k.ID
	}
	return ids
}

// Issue signs a JWT for t's current generation: jti is the generation's
// random id, iat is at, and exp is at + expiry unless the expiry is never.
func (s *Signer) Issue(t *Token, jti string, at time.Time) (string, error) {
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
	tok.Header["kid"] = s.keys[0].ID
	signed, err := tok.SignedString(s.keys[0].Secret)
	if err != nil {
		return "", fmt.Errorf("signing JWT: %w", err)
	}
	return signed, nil
}

// Verify checks the signature, header and claims of raw: the configured
// algorithm only, a known kid, a header of exactly alg, typ and kid, iss
// equal to the issuer, and exp, nbf and iat within the leeway. It returns
// ErrJWTExpired, with the claims, for a JWT whose only fault is its exp, and
// an error wrapping ErrMalformedJWT for everything else.
//
// A JWT whose header segment is byte for byte one that Issue writes (every
// JWT this deployment issued) is checked on a fast path: the header needs no
// parsing, since it is already known to be {alg, kid, typ: JWT} for a known
// key; then the HMAC, then golang-jwt's own claim validation. Any other JWT
// goes through golang-jwt's full parser with the same rules.
func (s *Signer) Verify(raw string) (*Verified, error) {
	header, rest, _ := strings.Cut(raw, ".")
	key := s.headers[header]
	if key == nil {
		var c Claims
		_, err := s.parser.ParseWithClaims(raw, &c, s.keyFor)
		return s.verified(&c, err)
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 {
		return nil, fmt.Errorf("%w: not three segments", ErrMalformedJWT)
	}
	var want [sha512.Size]byte
	if n, err := base64.RawURLEncoding.Strict().Decode(want[:], []byte(sig)); err != nil || n != sha512.Size || len(sig) != 86 {
		return nil, fmt.Errorf("%w: signature is not a base64url HMAC-SHA512", ErrMalformedJWT)
	}
	mac := key.pool.Get().(hash.Hash)
	mac.Reset()
	io.WriteString(mac, raw[:len(header)+1+len(payload)])
	var got [sha512.Size]byte
	mac.Sum(got[:0])
	key.pool.Put(mac)
	if !hmac.Equal(got[:], want[:]) {
		return nil, fmt.Errorf("%w: %w", ErrMalformedJWT, jwt.ErrTokenSignatureInvalid)
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url", ErrMalformedJWT)
	}
	var c Claims
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("%w: claims: %w", ErrMalformedJWT, err)
	}
	return s.verified(&c, s.validator.Validate(c))
}

// verified turns checked claims into a Verified, given the error of their
// validation.
func (s *Signer) verified(c *Claims, err error) (*Verified, error) {
	expired := err != nil && onlyExpired(err)
	if err != nil && !expired {
		return nil, fmt.Errorf("%w: %w", ErrMalformedJWT, err)
	}
	if c.TokenID == "" || c.ID == "" || c.Subject == "" {
		return nil, fmt.Errorf("%w: tid, jti and sub are required", ErrMalformedJWT)
	}
	v := &Verified{TokenID: c.TokenID, Subject: c.Subject, JTIHash: HashJTI(c.ID), Scopes: ParseScopeClaim(c.Scope)}
	if c.ExpiresAt != nil {
		v.Exp = c.ExpiresAt.Time
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
func (s *Signer) keyFor(t *jwt.Token) (any, error) {
	if len(t.Header) != 3 {
		return nil, fmt.Errorf("header must hold exactly alg, typ and kid, got %d members", len(t.Header))
	}
	if typ, _ := t.Header["typ"].(string); typ != "JWT" {
		return nil, errors.New(`header typ must be "JWT"`)
	}
	kid, _ := t.Header["kid"].(string)
	key, ok := s.byID[kid]
	if !ok {
		return nil, errors.New("unknown kid")
	}
	return key, nil
}

// HashJTI is the SHA-256 of a jti: what the store keeps of a generation.
func HashJTI(jti string) [sha256.Size]byte { return sha256.Sum256([]byte(jti)) }
