package apitoken

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func randomID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return strings.ToLower(idEncoding.EncodeToString(b))
}

// NewTokenID returns a fresh opaque token id: "tok_" and 26 base32 characters.
func NewTokenID() string { return "tok_" + randomID() }

// NewJTI returns a fresh random JWT id (128 bits).
func NewJTI() string { return randomID() }
