package apitoken_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

// edKey is a deterministic Ed25519 signing key: seed tells keys apart.
func edKey(t testing.TB, seed byte) apitoken.Key {
	t.Helper()
	k, err := apitoken.NewEd25519Key(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed, 0x11, seed ^ 0xa5, 0x7e}, 8)))
	if err != nil {
		t.Fatalf("NewEd25519Key: %v", err)
	}
	return k
}

// publicOnly is the verify-only form of an Ed25519 key.
func publicOnly(t testing.TB, k apitoken.Key) apitoken.Key {
	t.Helper()
	p, err := apitoken.NewEd25519PublicKey(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// forgeEd builds a JWT by hand signed with an Ed25519 private key.
func forgeEd(t testing.TB, header, claims any, priv ed25519.PrivateKey) string {
	t.Helper()
	signing := jsonSeg(t, header) + "." + jsonSeg(t, claims)
	return signing + "." + b64(ed25519.Sign(priv, []byte(signing)))
}

func edHeader(kid string) map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": kid}
}

func TestEd25519Key_KidIsTheFirst16HexDigitsOfThePublicKeysSHA256(t *testing.T) {
	k := edKey(t, 1)
	sum := sha256.Sum256(k.Public)
	if want := hex.EncodeToString(sum[:8]); k.ID != want {
		t.Errorf("kid = %q, want %q", k.ID, want)
	}
	// A verifier that holds only the public key names it the same way, so
	// a verify-only instance finds the key of an issuing one.
	if p := publicOnly(t, k); p.ID != k.ID || p.CanSign() || !k.CanSign() {
		t.Errorf("public form: kid %q can sign %t; private form can sign %t", p.ID, p.CanSign(), k.CanSign())
	}
	if other := edKey(t, 2); other.ID == k.ID {
		t.Error("two keys share a kid")
	}
}

func TestParseSigningKey_EdDSAAcceptsSeedPrivateKeyAndPKCS8(t *testing.T) {
	want := edKey(t, 3)
	der, err := x509.MarshalPKCS8PrivateKey(want.Private)
	if err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string]string{
		"32-byte seed":                base64.StdEncoding.EncodeToString(want.Private.Seed()),
		"64-byte private key":         base64.StdEncoding.EncodeToString(want.Private),
		"PKCS #8 DER":                 base64.StdEncoding.EncodeToString(der),
		"seed, URL alphabet unpadded": base64.RawURLEncoding.EncodeToString(want.Private.Seed()),
	} {
		k, err := apitoken.ParseSigningKey(apitoken.AlgEdDSA, enc)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if k.ID != want.ID || !k.Private.Equal(want.Private) || k.Alg != apitoken.AlgEdDSA {
			t.Errorf("%s: got key %s, want %s", name, k.ID, want.ID)
		}
	}
}

func TestParseVerifyKey_EdDSAAcceptsRawAndSPKIPublicKeys(t *testing.T) {
	want := edKey(t, 4)
	der, err := x509.MarshalPKIXPublicKey(want.Public)
	if err != nil {
		t.Fatal(err)
	}
	for name, enc := range map[string]string{
		"32-byte public key": base64.StdEncoding.EncodeToString(want.Public),
		"SPKI DER":           base64.StdEncoding.EncodeToString(der),
	} {
		k, err := apitoken.ParseVerifyKey(apitoken.AlgEdDSA, enc)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if k.ID != want.ID || k.CanSign() || len(k.Private) != 0 {
			t.Errorf("%s: got %s (can sign %t), want verify-only %s", name, k.ID, k.CanSign(), want.ID)
		}
	}
}

func TestParseKeys_RefuseWhatDoesNotFitTheAlgorithm(t *testing.T) {
	ed := edKey(t, 5)
	tampered := append(ed25519.PrivateKey(nil), ed.Private...)
	tampered[40] ^= 1 // the public half no longer belongs to the seed
	for _, tc := range []struct {
		name, msg string
		parse     func() (apitoken.Key, error)
	}{
		{"an unknown algorithm", "not supported", func() (apitoken.Key, error) { return apitoken.ParseSigningKey("RS256", apitoken.GenerateKeySecret()) }},
		{"alg none", "not supported", func() (apitoken.Key, error) { return apitoken.ParseSigningKey("none", apitoken.GenerateKeySecret()) }},
		{"an HS512 verify key", "both signs and verifies", func() (apitoken.Key, error) {
			return apitoken.ParseVerifyKey(apitoken.AlgHS512, apitoken.GenerateKeySecret())
		}},
		{"an Ed25519 seed of the wrong length", "32-byte seed", func() (apitoken.Key, error) {
			return apitoken.ParseSigningKey(apitoken.AlgEdDSA, base64.StdEncoding.EncodeToString(make([]byte, 31)))
		}},
		{"an Ed25519 private key whose public half was changed", "does not belong", func() (apitoken.Key, error) {
			return apitoken.ParseSigningKey(apitoken.AlgEdDSA, base64.StdEncoding.EncodeToString(tampered))
		}},
		{"a verify key of the wrong length", "32-byte public key", func() (apitoken.Key, error) {
			return apitoken.ParseVerifyKey(apitoken.AlgEdDSA, base64.StdEncoding.EncodeToString(make([]byte, 33)))
		}},
		{"a verify key that is not base64", "not valid base64", func() (apitoken.Key, error) {
			return apitoken.ParseVerifyKey(apitoken.AlgEdDSA, "not base64!")
		}},
	} {
		_, err := tc.parse()
		if err == nil || !errors.Is(err, apitoken.ErrInvalid) || !strings.Contains(apitoken.Message(err), tc.msg) {
			t.Errorf("%s: error %v, want ErrInvalid saying %q", tc.name, err, tc.msg)
		}
	}
}

func TestEdDSA_IssuedJWTRoundTripsOnTheIssuingAndOnAVerifyOnlySigner(t *testing.T) {
	k := edKey(t, 1)
	now := func() time.Time { return t0.Add(time.Minute) }
	issuing := newSigner(t, issuer, now, k)
	verifying := newSigner(t, issuer, now, publicOnly(t, k))
	jwt, err := issuing.Issue(testToken(apitoken.Expiry7d), "jti-ed", t0)
	if err != nil {
		t.Fatal(err)
	}
	header, _ := segments(t, jwt)
	if header["alg"] != "EdDSA" || header["kid"] != k.ID || header["typ"] != "JWT" || len(header) != 3 {
		t.Errorf("header = %v", header)
	}
	for name, s := range map[string]*apitoken.Signer{"issuing": issuing, "verify-only": verifying} {
		v, err := s.Verify(jwt)
		if err != nil {
			t.Fatalf("%s signer: Verify: %v", name, err)
		}
		if v.TokenID != "tok_abc" || v.Subject != "alice" || v.JTIHash != apitoken.HashJTI("jti-ed") || !v.Exp.Equal(t0.Add(7*24*time.Hour)) {
			t.Errorf("%s signer: Verify = %+v", name, *v)
		}
	}
	if issuing.Alg() != apitoken.AlgEdDSA || !issuing.CanIssue() || verifying.CanIssue() {
		t.Errorf("Alg %s, issuing can issue %t, verify-only can issue %t", issuing.Alg(), issuing.CanIssue(), verifying.CanIssue())
	}
	// The same header respelled takes golang-jwt's parser and is judged the same.
	respelled := `{"typ":"JWT","alg":"EdDSA","kid":"` + k.ID + `"}`
	s0 := newSigner(t, issuer, func() time.Time { return t0 }, publicOnly(t, k))
	if _, err := s0.Verify(forgeEd(t, respelled, goodClaims(), k.Private)); err != nil {
		t.Errorf("a respelled valid EdDSA header was refused: %v", err)
	}
	if _, err := s0.Verify(forgeEd(t, edHeader(k.ID), goodClaims(), k.Private)); err != nil {
		t.Errorf("control: a hand-built EdDSA JWT was refused: %v", err)
	}
}

func TestEdDSA_AVerifyOnlySignerRefusesToIssueWithAConflict(t *testing.T) {
	s := newSigner(t, issuer, nil, publicOnly(t, edKey(t, 1)))
	_, err := s.Issue(testToken(apitoken.Expiry1d), "jti", t0)
	if !errors.Is(err, apitoken.ErrConflict) || !strings.Contains(apitoken.Message(err), "only verifies") {
		t.Fatalf("Issue on a verify-only signer = %v, want ErrConflict saying it only verifies", err)
	}
}

func TestNewSigner_RefusesKeysOfMixedAlgorithms(t *testing.T) {
	for name, keys := range map[string][]apitoken.Key{
		"HS512 then EdDSA": {testKey(t, 1), edKey(t, 1)},
		"EdDSA then HS512": {edKey(t, 1), testKey(t, 1)},
		"a key twice":      {edKey(t, 1), publicOnly(t, edKey(t, 1))},
	} {
		if _, err := apitoken.NewSigner(issuer, keys, nil); !errors.Is(err, apitoken.ErrInvalid) {
			t.Errorf("%s: NewSigner error = %v, want ErrInvalid", name, err)
		}
	}
}

// Algorithm confusion: a JWT whose header names the other algorithm, or
// whose signature was made with the other algorithm's key material, never
// verifies, on either kind of signer.
func TestVerify_AlgorithmConfusionBetweenHS512AndEdDSAIsRefused(t *testing.T) {
	ed := edKey(t, 1)
	hs := testKey(t, 1)
	attacker := edKey(t, 9)
	now := func() time.Time { return t0 }
	edSigner := newSigner(t, issuer, now, publicOnly(t, ed))
	hsSigner := newSigner(t, issuer, now, hs)
	pubAsHMAC := append(append([]byte(nil), ed.Public...), ed.Public...) // 64 bytes: even past a length check
	for _, tc := range []struct {
		name string
		s    *apitoken.Signer
		jwt  string
	}{
		{"HS512 keyed with the public key bytes, real kid", edSigner, forge(t, with(edHeader(ed.ID), "alg", "HS512"), goodClaims(), "HS512", ed.Public)},
		{"HS512 keyed with the public key doubled to 64 bytes", edSigner, forge(t, with(edHeader(ed.ID), "alg", "HS512"), goodClaims(), "HS512", pubAsHMAC)},
		{"HS256 keyed with the public key bytes", edSigner, forge(t, with(edHeader(ed.ID), "alg", "HS256"), goodClaims(), "HS256", ed.Public)},
		{"HS512 keyed with the base64 of the public key", edSigner, forge(t, with(edHeader(ed.ID), "alg", "HS512"), goodClaims(), "HS512", []byte(base64.StdEncoding.EncodeToString(ed.Public)))},
		{"EdDSA signed by another key under the real kid", edSigner, forgeEd(t, edHeader(ed.ID), goodClaims(), attacker.Private)},
		{"EdDSA under the attacker's own kid", edSigner, forgeEd(t, edHeader(attacker.ID), goodClaims(), attacker.Private)},
		{"EdDSA with a jwk header carrying the attacker's key", edSigner, forgeEd(t, with(edHeader(attacker.ID), "jwk", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64(attacker.Public)}), goodClaims(), attacker.Private)},
		{"Ed25519 as the alg name", edSigner, forgeEd(t, with(edHeader(ed.ID), "alg", "Ed25519"), goodClaims(), ed.Private)},
		{"alg none on an EdDSA signer", edSigner, forge(t, with(edHeader(ed.ID), "alg", "none"), goodClaims(), "none", nil)},
		{"an EdDSA header over an HMAC signature with the HMAC key", hsSigner, forge(t, with(goodHeader(hs.ID), "alg", "EdDSA"), goodClaims(), "HS512", hs.Secret)},
		{"a valid EdDSA JWT on an HS512 signer", hsSigner, forgeEd(t, edHeader(attacker.ID), goodClaims(), attacker.Private)},
		{"an EdDSA JWT under the HMAC key's kid", hsSigner, forgeEd(t, with(edHeader(hs.ID)), goodClaims(), attacker.Private)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.s.Verify(tc.jwt)
			if err == nil || v != nil {
				t.Fatalf("Verify accepted it: %+v", v)
			}
			if !errors.Is(err, apitoken.ErrMalformedJWT) {
				t.Errorf("error %v, want ErrMalformedJWT", err)
			}
		})
	}
	// Controls: each signer accepts its own kind.
	if _, err := edSigner.Verify(forgeEd(t, edHeader(ed.ID), goodClaims(), ed.Private)); err != nil {
		t.Fatalf("control: EdDSA signer refused a good EdDSA JWT: %v", err)
	}
	if _, err := hsSigner.Verify(forge(t, goodHeader(hs.ID), goodClaims(), "HS512", hs.Secret)); err != nil {
		t.Fatalf("control: HS512 signer refused a good HS512 JWT: %v", err)
	}
}

func TestVerify_EdDSASignatureMalleabilityIsRefused(t *testing.T) {
	k := edKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	good := forgeEd(t, edHeader(k.ID), goodClaims(), k.Private)
	dot := strings.LastIndexByte(good, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(good[dot+1:])
	// S + L (the group order) is the same signature to a lax verifier.
	l := []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	bumped := append([]byte(nil), sig...)
	carry := 0
	for i := 0; i < 32; i++ {
		v := int(bumped[32+i]) + int(l[i]) + carry
		bumped[32+i], carry = byte(v), v>>8
	}
	flipped := append([]byte(nil), sig...)
	flipped[10] ^= 0x80
	for name, jwt := range map[string]string{
		"S + L":           good[:dot+1] + b64(bumped),
		"a flipped bit":   good[:dot+1] + b64(flipped),
		"a 63-byte sig":   good[:dot+1] + b64(sig[:63]),
		"non-canonical b": good[:dot+1] + nonCanonicalLastChar(good[dot+1:]),
	} {
		if _, err := s.Verify(jwt); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := s.Verify(good); err != nil {
		t.Fatalf("control: %v", err)
	}
}

// nonCanonicalLastChar re-spells the last base64url character of an 86-char
// segment (64 bytes: the last character carries 2 bits and 4 unused ones)
// so that it decodes to the same bytes under lax decoding.
func nonCanonicalLastChar(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|0x01])
}

// A base64url signature of 64 bytes has 4 unused bits: a lax decoder reads
// 16 spellings of one signature, so one token would be 16 distinct strings
// (and 16 entries of the JWT cache). Verify decodes strictly, whatever the header.
func TestVerify_ReSpelledSignaturesAreRefusedUnderAnyHeader(t *testing.T) {
	k := testKey(t, 1)
	s := newSigner(t, issuer, func() time.Time { return t0 }, k)
	respelled := `{ "typ": "JWT", "kid": "` + k.ID + `", "alg": "HS512" }`
	for name, good := range map[string]string{
		"issued header":    forge(t, goodHeader(k.ID), goodClaims(), "HS512", k.Secret),
		"respelled header": forge(t, respelled, goodClaims(), "HS512", k.Secret),
	} {
		if _, err := s.Verify(good); err != nil {
			t.Fatalf("%s control: %v", name, err)
		}
		dot := strings.LastIndexByte(good, '.')
		alt := good[:dot+1] + nonCanonicalLastChar(good[dot+1:])
		if alt == good {
			t.Fatalf("%s: the re-spelling did not change the string", name)
		}
		if lax, _ := base64.RawURLEncoding.DecodeString(alt[dot+1:]); !bytes.Equal(lax, mustB64(t, good[dot+1:])) {
			t.Fatalf("%s: the re-spelling is not the same signature to a lax decoder", name)
		}
		if _, err := s.Verify(alt); err == nil {
			t.Errorf("%s: a re-spelled signature was accepted", name)
		}
	}
}

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The README's commands: `openssl genpkey -algorithm ed25519 -outform DER |
// base64 -w0` for signing_key, and `openssl pkey -in key.pem -pubout
// -outform DER | base64 -w0` for verify_key. Their output (here a test key
// made that way) is read as one key pair with one kid.
func TestParseKeys_AcceptWhatTheREADMEsOpenSSLCommandsWrite(t *testing.T) {
	const (
		privDER = "MC4CAQAwBQYDK2VwBCIEIGfDyDmnHFmICWWxpA1KxvL+jlAFsADKriRqo3AicswT"
		pubDER  = "MCowBQYDK2VwAyEA2EIqsuWlpojeBONXtjI9w1Ma/+62/Jcj6SjLSBw2nic="
	)
	priv, err := apitoken.ParseSigningKey(apitoken.AlgEdDSA, privDER)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := apitoken.ParseVerifyKey(apitoken.AlgEdDSA, pubDER)
	if err != nil {
		t.Fatal(err)
	}
	if priv.ID != pub.ID || !priv.Public.Equal(pub.Public) {
		t.Fatalf("the private key is %s and its public key %s: they must agree", priv.ID, pub.ID)
	}
	jwt, err := newSigner(t, issuer, nil, priv).Issue(testToken(apitoken.Expiry1d), "jti", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSigner(t, issuer, nil, pub).Verify(jwt); err != nil {
		t.Fatalf("the verify key refuses the signing key's JWT: %v", err)
	}
}
