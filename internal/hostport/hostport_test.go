package hostport

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var canonicalTests = []struct {
	give    string
	want    string
	wantErr string // substring of the error when want is ""
}{
	{give: "example.com", want: "example.com"},
	{give: "Example.COM", want: "example.com"},
	{give: "example.com.", want: "example.com"},
	{give: "EXAMPLE.com.", want: "example.com"},
	{give: "a-b.example", want: "a-b.example"},
	{give: "r3---sn-abc.googlevideo.com", want: "r3---sn-abc.googlevideo.com"},
	{give: "localhost", want: "localhost"},
	{give: "1.2.3.4", want: "1.2.3.4"},
	{give: "127.0.0.1", want: "127.0.0.1"},
	{give: "1.2.3.4.", want: "1.2.3.4"},
	{give: "::1", want: "::1"},
	{give: "[::1]", want: "::1"},
	{give: "[2001:DB8::0001]", want: "2001:db8::1"},
	{give: "2001:db8:0:0:0:0:0:1", want: "2001:db8::1"},
	{give: "::ffff:127.0.0.1", want: "::ffff:127.0.0.1"},
	{give: "bücher.de", want: "xn--bcher-kva.de"},
	{give: "BÜCHER.de", want: "xn--bcher-kva.de"},
	{give: "xn--bcher-kva.de", want: "xn--bcher-kva.de"},
	{give: "XN--BCHER-KVA.DE", want: "xn--bcher-kva.de"},
	{give: "ex\u3002com", want: "ex.com"},
	{give: "a1.example", want: "a1.example"},
	{give: "0x7f.example", want: "0x7f.example"},
	{give: strings.Repeat("a", 63) + ".com", want: strings.Repeat("a", 63) + ".com"},

	{give: "", wantErr: "empty"},
	{give: ".", wantErr: "no labels"},
	{give: "example.com..", wantErr: "empty label"},
	{give: "a..b", wantErr: "empty label"},
	{give: ".example.com", wantErr: "empty label"},
	{give: strings.Repeat("a", 64) + ".com", wantErr: "longer than 63"},
	{give: strings.Repeat("a.", 127) + "com", wantErr: "more than 253"},
	{give: "a_b.example", wantErr: "not a letter, digit or hyphen"},
	{give: "a b.example", wantErr: "not a letter, digit or hyphen"},
	{give: "a/b", wantErr: "not a letter, digit or hyphen"},
	{give: "a@b", wantErr: "not a letter, digit or hyphen"},
	{give: "a%2eb", wantErr: "not a letter, digit or hyphen"},
	{give: "a\x00b", wantErr: "not a letter, digit or hyphen"},
	{give: "-a.example", wantErr: "hyphen"},
	{give: "a-.example", wantErr: "hyphen"},
	{give: "xn--zz.example", wantErr: "IDNA"},
	{give: "xn--a.example", wantErr: "IDNA"},
	{give: "a_b.bücher.de", wantErr: "internationalised"},
	{give: "2130706433", wantErr: "127.0.0.1"},
	{give: "0x7f000001", wantErr: "127.0.0.1"},
	{give: "0x7f.1", wantErr: "127.0.0.1"},
	{give: "0177.0.0.1", wantErr: "127.0.0.1"},
	{give: "127.1", wantErr: "127.0.0.1"},
	{give: "127.0.1", wantErr: "127.0.0.1"},
	{give: "0xa9fea9fe", wantErr: "169.254.169.254"},
	{give: "0x7f.0.0.0x1", wantErr: "ambiguous numeric host"},
	{give: "256.1.1.1", wantErr: "ambiguous numeric host"},
	{give: "1.2.3.4.5", wantErr: "ambiguous numeric host"},
	{give: "example.123", wantErr: "ambiguous numeric host"},
	{give: "example.0x1", wantErr: "ambiguous numeric host"},
	{give: "0x", wantErr: "ambiguous numeric host"},
	{give: "01.02.03.04", wantErr: "ambiguous numeric host"},
	{give: "１２７.０.０.１", wantErr: "confusable"},
	{give: "１２７.１", wantErr: "ambiguous numeric host"},
	{give: "[::1", wantErr: "unbalanced"},
	{give: "::1]", wantErr: "unbalanced"},
	{give: "[example.com]", wantErr: "not an IPv6"},
	{give: "[1.2.3.4]", wantErr: "not an IPv6"},
	{give: "fe80::1%eth0", wantErr: "zone"},
	{give: "[fe80::1%25eth0]", wantErr: "zone"},
	{give: "1:2", wantErr: "invalid IPv6"},
	{give: "example.com:443", wantErr: "invalid IPv6"},
}

func TestCanonical(t *testing.T) {
	for _, tt := range canonicalTests {
		got, err := Canonical(tt.give)
		if tt.want != "" {
			if err != nil || got != tt.want {
				t.Errorf("Canonical(%q) = %q, %v, want %q", tt.give, got, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("Canonical(%q) = %q, want error containing %q", tt.give, got, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("Canonical(%q) error = %q, want it to contain %q", tt.give, err, tt.wantErr)
		}
	}
}

var splitTests = []struct {
	give        string
	defaultPort int
	wantHost    string
	wantPort    int
	wantErr     bool
}{
	{give: "[::1]:443", wantHost: "::1", wantPort: 443},
	{give: "[::1]", defaultPort: 443, wantHost: "::1", wantPort: 443},
	{give: "Example.COM.", defaultPort: 443, wantHost: "example.com", wantPort: 443},
	{give: "a.b:8443", wantHost: "a.b", wantPort: 8443},
	{give: "Bücher.de:80", wantHost: "xn--bcher-kva.de", wantPort: 80},
	{give: "1.2.3.4:1", wantHost: "1.2.3.4", wantPort: 1},
	{give: "a.b:65535", wantHost: "a.b", wantPort: 65535},

	{give: "", wantErr: true},
	{give: "a.b", wantErr: true}, // no port, no default
	{give: "a.b", defaultPort: 70000, wantErr: true},
	{give: "a.b:", defaultPort: 443, wantErr: true},
	{give: "a.b:0", wantErr: true},
	{give: "a.b:65536", wantErr: true},
	{give: "a.b:0443", wantErr: true},
	{give: "a.b:+443", wantErr: true},
	{give: "a.b:-1", wantErr: true},
	{give: "a.b:44 3", wantErr: true},
	{give: "a.b:443443", wantErr: true},
	{give: "::1", defaultPort: 443, wantErr: true},
	{give: "::1:443", wantErr: true},
	{give: "[::1]443", wantErr: true},
	{give: "[::1]:", wantErr: true},
	{give: "[::1", wantErr: true},
	{give: "[a.b]:443", wantErr: true},
	{give: "127.1:443", wantErr: true},
	{give: "a_b:443", wantErr: true},
}

func TestSplit(t *testing.T) {
	for _, tt := range splitTests {
		host, port, err := Split(tt.give, tt.defaultPort)
		if tt.wantErr {
			if err == nil {
				t.Errorf("Split(%q, %d) = %q, %d, want error", tt.give, tt.defaultPort, host, port)
			}
			continue
		}
		if err != nil || host != tt.wantHost || port != tt.wantPort {
			t.Errorf("Split(%q, %d) = %q, %d, %v, want %q, %d", tt.give, tt.defaultPort, host, port, err, tt.wantHost, tt.wantPort)
		}
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		host string
		port int
		want string
	}{
		{"example.com", 443, "example.com:443"},
		{"1.2.3.4", 80, "1.2.3.4:80"},
		{"::1", 443, "[::1]:443"},
		{"::ffff:1.2.3.4", 8443, "[::ffff:1.2.3.4]:8443"},
	}
	for _, tt := range tests {
		if got := Join(tt.host, tt.port); got != tt.want {
			t.Errorf("Join(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

func TestGuardCheck(t *testing.T) {
	tests := []struct {
		give  string
		allow []string
		want  Class // ClassPublic: allowed
	}{
		{give: "93.184.216.34"},
		{give: "2606:2800:220:1:248:1893:25c8:1946"},
		{give: "8.8.8.8"},
		{give: "100.63.255.255"},
		{give: "100.128.0.0"},
		{give: "172.32.0.1"},
		{give: "2002:5db8:d822::1"}, // 6to4 of a public address

		{give: "127.0.0.1", want: ClassLoopback},
		{give: "127.255.0.9", want: ClassLoopback},
		{give: "::1", want: ClassLoopback},
		{give: "10.1.2.3", want: ClassPrivate},
		{give: "172.16.0.1", want: ClassPrivate},
		{give: "172.31.255.255", want: ClassPrivate},
		{give: "192.168.1.1", want: ClassPrivate},
		{give: "fc00::1", want: ClassPrivate},
		{give: "fd12:3456::1", want: ClassPrivate},
		{give: "fec0::1", want: ClassPrivate},
		{give: "100.64.0.1", want: ClassSharedCGNAT},
		{give: "100.127.255.255", want: ClassSharedCGNAT},
		{give: "169.254.1.1", want: ClassLinkLocal},
		{give: "fe80::1", want: ClassLinkLocal},
		{give: "fe80::1%eth0", want: ClassLinkLocal},
		{give: "169.254.169.254", want: ClassMetadata},
		{give: "169.254.170.2", want: ClassMetadata},
		{give: "fd00:ec2::254", want: ClassMetadata},
		{give: "100.100.100.200", want: ClassMetadata},
		{give: "0.0.0.0", want: ClassUnspecified},
		{give: "0.1.2.3", want: ClassUnspecified},
		{give: "::", want: ClassUnspecified},
		{give: "224.0.0.1", want: ClassMulticast},
		{give: "239.255.255.250", want: ClassMulticast},
		{give: "ff02::1", want: ClassMulticast},
		{give: "255.255.255.255", want: ClassBroadcast},
		{give: "240.0.0.1", want: ClassReserved},

		// IPv6 forms embedding a refused IPv4 address.
		{give: "::ffff:127.0.0.1", want: ClassLoopback},
		{give: "::ffff:169.254.169.254", want: ClassMetadata},
		{give: "::ffff:10.0.0.1", want: ClassPrivate},
		{give: "::127.0.0.1", want: ClassLoopback},
		{give: "::10.0.0.1", want: ClassPrivate},
		{give: "64:ff9b::7f00:1", want: ClassLoopback},
		{give: "64:ff9b::169.254.169.254", want: ClassMetadata},
		{give: "64:ff9b::192.168.0.1", want: ClassPrivate},
		{give: "64:ff9b:1::1", want: ClassPrivate},
		{give: "2002:7f00:1::", want: ClassLoopback},
		{give: "2002:a9fe:a9fe::1", want: ClassMetadata},
		{give: "2002:c0a8:0101::1", want: ClassPrivate},
		{give: "2001:0:4136:e378:8000:63bf:80ff:fffe", want: ClassLoopback}, // Teredo client ^0x80fffffe = 127.0.0.1

		// allow_addresses.
		{give: "10.1.2.3", allow: []string{"10.0.0.0/8"}},
		{give: "::ffff:10.1.2.3", allow: []string{"10.0.0.0/8"}},
		{give: "10.1.2.3", allow: []string{"::ffff:10.0.0.0/104"}},
		{give: "64:ff9b::a01:203", allow: []string{"10.0.0.0/8"}},
		{give: "127.0.0.1", allow: []string{"127.0.0.1/32"}},
		{give: "::1", allow: []string{"::1/128"}},
		{give: "fe80::1%eth0", allow: []string{"fe80::/10"}},
		{give: "10.1.2.3", allow: []string{"192.168.0.0/16"}, want: ClassPrivate},
		{give: "127.0.0.1", allow: []string{"::1/128"}, want: ClassLoopback},
		{give: "169.254.1.1", allow: []string{"169.254.0.0/16"}},
		{give: "169.254.169.254", allow: []string{"169.254.0.0/16"}, want: ClassMetadata},
		{give: "169.254.169.254", allow: []string{"0.0.0.0/0"}, want: ClassMetadata},
		{give: "fd00:ec2::254", allow: []string{"fd00::/8"}, want: ClassMetadata},
		{give: "100.100.100.200", allow: []string{"100.64.0.0/10"}, want: ClassMetadata},
		{give: "169.254.169.254", allow: []string{"169.254.169.254/32"}},
		{give: "::ffff:169.254.169.254", allow: []string{"169.254.169.254/32"}},
		{give: "169.254.169.254", allow: []string{"::ffff:169.254.169.254/128"}},
		{give: "fd00:ec2::254", allow: []string{"fd00:ec2::254/128"}},
		{give: "64:ff9b::a9fe:a9fe", allow: []string{"169.254.169.254/32"}},
	}
	for _, tt := range tests {
		var g Guard
		for _, p := range tt.allow {
			g.Allow = append(g.Allow, netip.MustParsePrefix(p))
		}
		err := g.Check(netip.MustParseAddr(tt.give))
		if tt.want == ClassUnknown || tt.want == ClassPublic {
			if err != nil {
				t.Errorf("Guard{%v}.Check(%s) = %v, want nil", tt.allow, tt.give, err)
			}
			continue
		}
		var be *BlockedError
		if !errors.As(err, &be) {
			t.Errorf("Guard{%v}.Check(%s) = %v, want class %v", tt.allow, tt.give, err, tt.want)
			continue
		}
		if be.Class != tt.want {
			t.Errorf("Guard{%v}.Check(%s) class = %v, want %v", tt.allow, tt.give, be.Class, tt.want)
		}
		if !strings.Contains(err.Error(), tt.want.String()) {
			t.Errorf("Guard.Check(%s) error %q does not name the class %q", tt.give, err, tt.want)
		}
	}
}

func TestGuardCheckInvalid(t *testing.T) {
	var be *BlockedError
	if err := (Guard{}).Check(netip.Addr{}); !errors.As(err, &be) || be.Class != ClassInvalid {
		t.Errorf("Check(zero Addr) = %v, want ClassInvalid", err)
	}
}

func TestGuardErrorNamesEmbedding(t *testing.T) {
	err := (Guard{}).Check(netip.MustParseAddr("64:ff9b::a9fe:a9fe"))
	want := "hostport: address 64:ff9b::a9fe:a9fe embeds 169.254.169.254 (NAT64 64:ff9b::/96), which is cloud metadata; only an exact /32 or /128 entry in upstream.allow_addresses allows it"
	if err == nil || err.Error() != want {
		t.Errorf("Check(64:ff9b::a9fe:a9fe) = %v, want %q", err, want)
	}
}

func TestIsMetadataHost(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{"169.254.169.254", true},
		{"fd00:ec2::254", true},
		{"[fd00:ec2::254]", true},
		{"[FD00:EC2::254]", true},
		{"100.100.100.200", true},
		{"metadata.google.internal", true},
		{"Metadata.Google.Internal.", true},
		{"metadata", true},
		{"instance-data", true},
		{"::ffff:169.254.169.254", true},
		{"0xa9fea9fe", true},
		{"2852039166", true},
		{"169.254.43518", true},
		{"64:ff9b::a9fe:a9fe", true},
		{"169.254.170.2", true},

		{"example.com", false},
		{"169.254.1.1", false},
		{"metadata.example.com", false},
		{"10.0.0.1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsMetadataHost(tt.give); got != tt.want {
			t.Errorf("IsMetadataHost(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, tt := range canonicalTests {
		f.Add(tt.give)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got, err := Canonical(host)
		if err != nil {
			return
		}
		again, err := Canonical(got)
		if err != nil || again != got {
			t.Fatalf("Canonical(%q) = %q, but Canonical(%q) = %q, %v", host, got, got, again, err)
		}
		if got == "" || len(got) > 253 {
			t.Fatalf("Canonical(%q) = %q", host, got)
		}
		for i := 0; i < len(got); i++ {
			c := got[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == ':') {
				t.Fatalf("Canonical(%q) = %q contains %q", host, got, c)
			}
		}
		if _, err := parseIPOrName(got); err != nil {
			t.Fatalf("Canonical(%q) = %q: %v", host, got, err)
		}
		_ = IsMetadataHost(host)
	})
}

// parseIPOrName re-checks a canonical host: an IP literal in netip's form, or
// a name that resolvers cannot read as an IPv4 address.
func parseIPOrName(h string) (string, error) {
	if a, err := netip.ParseAddr(h); err == nil {
		if a.String() != h {
			return "", errors.New("IP literal not in netip form")
		}
		return h, nil
	}
	if _, ok := parseLegacyIPv4(h); ok {
		return "", errors.New("name readable as IPv4")
	}
	return h, nil
}

func FuzzSplit(f *testing.F) {
	for _, tt := range splitTests {
		f.Add(tt.give, tt.defaultPort)
	}
	f.Fuzz(func(t *testing.T, hostport string, defaultPort int) {
		host, port, err := Split(hostport, defaultPort)
		if err != nil {
			return
		}
		if port < 1 || port > 65535 {
			t.Fatalf("Split(%q, %d) port = %d", hostport, defaultPort, port)
		}
		if c, err := Canonical(host); err != nil || c != host {
			t.Fatalf("Split(%q) host %q is not canonical: %q, %v", hostport, host, c, err)
		}
		h2, p2, err := Split(Join(host, port), 0)
		if err != nil || h2 != host || p2 != port {
			t.Fatalf("Split(Join(%q, %d)) = %q, %d, %v", host, port, h2, p2, err)
		}
	})
}
