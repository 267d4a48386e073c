package caddymodule

import "testing"

func TestApp_ValidateRefusesBadSettings(t *testing.T) {
	cases := map[string]App{
		"max_lifetime 2y":       {MaxLifetime: "2y"},
		"unknown driver":        {MaxLifetime: "1y", Storage: &Storage{Driver: "mysql", DSN: "x"}},
		"negative cache ttl":    {MaxLifetime: "1y", CacheTTL: -1},
		"admin with a slash":    {MaxLifetime: "1y", Admins: []string{"a/b"}},
		"admin with no name":    {MaxLifetime: "1y", Admins: []string{""}},
		"negative audit window": {MaxLifetime: "1y", AuditWindow: -1},
		"negative token limit":  {MaxLifetime: "1y", MaxTokensPerUser: -1},
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) {
			if err := a.Validate(); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}
