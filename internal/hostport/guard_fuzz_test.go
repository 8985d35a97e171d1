package hostport

import (
	"net/netip"
	"testing"
)

// FuzzGuard checks the address guard on arbitrary addresses: the IPv4-mapped
// form of an address is judged like the address itself, a metadata address
// is never unlocked by a broad allow_addresses prefix, and every address
// that embeds a refused IPv4 address is refused.
func FuzzGuard(f *testing.F) {
	for _, s := range []string{"169.254.169.254", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "fd00:ec2::254",
		"2002:a9fe:a9fe::1", "2001:0:4136:e378:8000:63bf:5601:5601", "10.0.0.1", "8.8.8.8", "::1", "::"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	wide := Guard{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 16 {
			return
		}
		a := netip.AddrFrom16([16]byte(b))
		var g Guard
		if (g.Check(a) == nil) != (g.Check(a.Unmap()) == nil) {
			t.Fatalf("Check(%s) and Check(%s) disagree", a, a.Unmap())
		}
		if IsMetadataHost(a.String()) || IsMetadataHost("["+a.String()+"]") {
			if err := wide.Check(a); err == nil {
				t.Fatalf("metadata address %s allowed by a wide prefix", a)
			}
			if err := g.Check(a); err == nil {
				t.Fatalf("metadata address %s allowed by the zero guard", a)
			}
		}
		if g.Check(a) == nil {
			for _, c := range candidates(a) {
				if classify(c.addr) != ClassPublic {
					t.Fatalf("%s allowed although it reaches %s (%s)", a, c.addr, classify(c.addr))
				}
			}
		}
	})
}
