package apitoken_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/caddy-apitokens/caddy-apitokens/apitoken"
)

func TestParseNetworks_NormalisesAddressesAndKeepsTheOrder(t *testing.T) {
	n, err := apitoken.ParseNetworks([]string{" 203.0.113.7 ", "198.51.100.0/24", "2001:DB8::1", "2001:db8:1::/48", "0.0.0.0/0"})
	if err != nil {
		t.Fatal(err)
	}
	want := "203.0.113.7/32 198.51.100.0/24 2001:db8::1/128 2001:db8:1::/48 0.0.0.0/0"
	if got := n.String(); got != want {
		t.Errorf("ParseNetworks = %q, want %q", got, want)
	}
	back, err := apitoken.NetworksOf(n.String())
	if err != nil || back.String() != want {
		t.Errorf("NetworksOf(String()) = %q, %v", back, err)
	}
	if none, err := apitoken.ParseNetworks([]string{}); err != nil || none != nil || len(none.Names()) != 0 || none.Names() == nil {
		t.Errorf("no networks = %#v, %v; want nil, with Names an empty list", none, err)
	}
}

func TestParseNetworks_RefusesWhatItCannotTakeAsWritten(t *testing.T) {
	many := make([]string, apitoken.MaxAllowedIPs+1)
	for i := range many {
		many[i] = fmt.Sprintf("192.0.2.%d", i)
	}
	for _, tc := range []struct {
		name string
		in   []string
		want string // in the message
	}{
		{"more than the limit", many, "has 21 entries; the limit is 20"},
		{"an empty entry", []string{"10.0.0.0/8", " "}, "entry 2: is empty"},
		{"a name", []string{"example.com"}, `"example.com" is not an address or CIDR`},
		{"a bad prefix length", []string{"10.0.0.0/33"}, `"10.0.0.0/33" is not an address or CIDR`},
		{"a range", []string{"10.0.0.1-10.0.0.9"}, "is not an address or CIDR"},
		{"a port", []string{"10.0.0.1:443"}, "is not an address or CIDR"},
		{"leading zeros", []string{"010.0.0.1"}, "is not an address or CIDR"},
		{"host bits set", []string{"10.1.2.3/24"}, "write the network 10.1.2.0/24, or 10.1.2.3/32 for the one address"},
		{"host bits set in IPv6", []string{"2001:db8::1/64"}, "write the network 2001:db8::/64"},
		{"a zone", []string{"fe80::1%eth0"}, "has a zone (%eth0)"},
		{"an IPv4-mapped address", []string{"::ffff:192.0.2.1"}, "write the IPv4 form (such as 192.0.2.1)"},
		{"an IPv4-mapped network", []string{"::ffff:192.0.2.0/120"}, "IPv4-mapped"},
		{"a duplicate after normalising", []string{"192.0.2.1", "10.0.0.0/8", "192.0.2.1/32"}, "lists 192.0.2.1/32 twice"},
		{"a long entry, cut in the message", []string{strings.Repeat("x", 5000)}, `"` + strings.Repeat("x", 60) + `..."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := apitoken.ParseNetworks(tc.in)
			if !errors.Is(err, apitoken.ErrInvalid) {
				t.Fatalf("ParseNetworks(%q) = %v, %v; want ErrInvalid", tc.in, n, err)
			}
			if msg := apitoken.Message(err); !strings.Contains(msg, tc.want) || len(msg) > 300 {
				t.Errorf("message %q, want it to say %q (and stay short)", msg, tc.want)
			}
		})
	}
}

func TestNetworks_AllowOnlyClientsInside(t *testing.T) {
	n, err := apitoken.ParseNetworks([]string{"198.51.100.0/24", "203.0.113.7", "2001:db8:1::/48"})
	if err != nil {
		t.Fatal(err)
	}
	for ip, want := range map[string]bool{
		"198.51.100.1":       true,
		"198.51.100.255":     true,
		"203.0.113.7":        true,
		"::ffff:203.0.113.7": true, // an IPv4 client through an IPv6 socket
		"2001:db8:1:ffff::9": true,
		"2001:db8:1::9%eth0": true,
		"198.51.101.1":       false,
		"203.0.113.8":        false,
		"2001:db8:2::1":      false,
		"::ffff:198.51.99.1": false,
		"":                   false, // no client address: deny
		"not an address":     false,
		"203.0.113.7:1234":   false,
	} {
		if got := n.Allow(ip); got != want {
			t.Errorf("Allow(%q) = %v, want %v", ip, got, want)
		}
	}
	var any apitoken.Networks
	if !any.Allow("") || !any.Allow("192.0.2.1") {
		t.Errorf("a token without allowed_ips refused a client")
	}
}

func TestNetworks_AllowDoesNotAllocate(t *testing.T) {
	n, err := apitoken.ParseNetworks([]string{"10.0.0.0/8", "198.51.100.0/24", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"198.51.100.9", "2001:db8::5", "192.0.2.1", "::ffff:10.1.1.1"} {
		if a := testing.AllocsPerRun(100, func() { n.Allow(ip) }); a != 0 {
			t.Errorf("Allow(%q) allocates %v times", ip, a)
		}
	}
}

func BenchmarkNetworks_Allow(b *testing.B) {
	list := make([]string, apitoken.MaxAllowedIPs)
	for i := range list {
		list[i] = fmt.Sprintf("10.%d.0.0/16", i)
	}
	n, err := apitoken.ParseNetworks(list)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if n.Allow("192.0.2.1") { // the worst case: every network compared
			b.Fatal("allowed")
		}
	}
}
