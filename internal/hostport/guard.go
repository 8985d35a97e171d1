package hostport

import (
	"fmt"
	"net/netip"
	"strings"
)

// Class is the reason an address is refused by Guard.
type Class int

// Address classes. The zero value is not a class any address is in; only
// ClassPublic is dialled without an allow_addresses entry.
const (
	ClassUnknown     Class = iota
	ClassPublic            // none of the classes below
	ClassInvalid           // not a valid address
	ClassUnspecified       // 0.0.0.0/8, ::
	ClassLoopback          // 127.0.0.0/8, ::1
	ClassPrivate           // RFC 1918, fc00::/7, fec0::/10, 64:ff9b:1::/48
	ClassSharedCGNAT       // 100.64.0.0/10
	ClassLinkLocal         // 169.254.0.0/16, fe80::/10
	ClassMetadata          // cloud instance metadata endpoints
	ClassMulticast         // 224.0.0.0/4, ff00::/8
	ClassBroadcast         // 255.255.255.255
	ClassReserved          // 240.0.0.0/4
)

func (c Class) String() string {
	switch c {
	case ClassPublic:
		return "public"
	case ClassInvalid:
		return "invalid"
	case ClassUnspecified:
		return "unspecified"
	case ClassLoopback:
		return "loopback"
	case ClassPrivate:
		return "private"
	case ClassSharedCGNAT:
		return "shared (CGNAT 100.64.0.0/10)"
	case ClassLinkLocal:
		return "link-local"
	case ClassMetadata:
		return "cloud metadata"
	case ClassMulticast:
		return "multicast"
	case ClassBroadcast:
		return "broadcast"
	case ClassReserved:
		return "reserved"
	default:
		return "unknown"
	}
}

// metadataAddrs are cloud instance metadata and credential endpoints.
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true, // AWS, GCP, Azure, OCI, DigitalOcean, …
	netip.MustParseAddr("169.254.170.2"):   true, // AWS ECS task credentials
	netip.MustParseAddr("169.254.170.23"):  true, // AWS EKS Pod Identity
	netip.MustParseAddr("fd00:ec2::254"):   true, // AWS IMDS over IPv6
	netip.MustParseAddr("fd00:ec2::23"):    true, // AWS EKS Pod Identity over IPv6
	netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	netip.MustParseAddr("192.0.0.192"):     true, // Oracle Cloud (legacy)
}

// metadataNames are host names that resolve to metadata endpoints.
var metadataNames = map[string]bool{
	"metadata":                     true,
	"metadata.google.internal":     true,
	"metadata.goog":                true,
	"instance-data":                true,
	"instance-data.ec2.internal":   true,
	"metadata.tencentyun.com":      true,
	"metadata.platformequinix.com": true,
}

type classRange struct {
	prefix netip.Prefix
	class  Class
}

// classRanges is checked in order; the first match wins. Metadata addresses
// are checked before it.
var classRanges = []classRange{
	{netip.MustParsePrefix("0.0.0.0/8"), ClassUnspecified},
	{netip.MustParsePrefix("127.0.0.0/8"), ClassLoopback},
	{netip.MustParsePrefix("10.0.0.0/8"), ClassPrivate},
	{netip.MustParsePrefix("172.16.0.0/12"), ClassPrivate},
	{netip.MustParsePrefix("192.168.0.0/16"), ClassPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), ClassSharedCGNAT},
	{netip.MustParsePrefix("169.254.0.0/16"), ClassLinkLocal},
	{netip.MustParsePrefix("224.0.0.0/4"), ClassMulticast},
	{netip.MustParsePrefix("255.255.255.255/32"), ClassBroadcast},
	{netip.MustParsePrefix("240.0.0.0/4"), ClassReserved},
	// The rest of IANA's special-purpose ranges that are not the public
	// Internet (found by review): benchmarking (198.18.0.0/15, routed
	// inside some networks, the fake-IP ranges of Clash and Surge),
	// protocol assignments, the 6to4 relay anycast, documentation.
	{netip.MustParsePrefix("198.18.0.0/15"), ClassReserved},
	{netip.MustParsePrefix("192.0.0.0/24"), ClassReserved},
	{netip.MustParsePrefix("192.88.99.0/24"), ClassReserved},
	{netip.MustParsePrefix("192.0.2.0/24"), ClassReserved},
	{netip.MustParsePrefix("198.51.100.0/24"), ClassReserved},
	{netip.MustParsePrefix("203.0.113.0/24"), ClassReserved},
	{netip.MustParsePrefix("::/128"), ClassUnspecified},
	{netip.MustParsePrefix("::1/128"), ClassLoopback},
	{netip.MustParsePrefix("fc00::/7"), ClassPrivate},
	{netip.MustParsePrefix("fec0::/10"), ClassPrivate},
	{netip.MustParsePrefix("64:ff9b:1::/48"), ClassPrivate},
	{netip.MustParsePrefix("fe80::/10"), ClassLinkLocal},
	{netip.MustParsePrefix("ff00::/8"), ClassMulticast},
	{netip.MustParsePrefix("100::/64"), ClassReserved},        // discard-only
	{netip.MustParsePrefix("2001:db8::/32"), ClassReserved},   // documentation
	{netip.MustParsePrefix("3fff::/20"), ClassReserved},       // documentation
	{netip.MustParsePrefix("2001:2::/48"), ClassReserved},     // benchmarking
	{netip.MustParsePrefix("2001:10::/28"), ClassReserved},    // ORCHID
	{netip.MustParsePrefix("2001:20::/28"), ClassReserved},    // ORCHIDv2
	{netip.MustParsePrefix("5f00::/16"), ClassReserved},       // SRv6 SIDs
	{netip.MustParsePrefix("::ffff:0:0:0/96"), ClassReserved}, // IPv4-translated
}

var (
	prefixIPv4Compat = netip.MustParsePrefix("::/96")
	prefixNAT64      = netip.MustParsePrefix("64:ff9b::/96")
	prefix6to4       = netip.MustParsePrefix("2002::/16")
	prefixTeredo     = netip.MustParsePrefix("2001::/32")
)

// classify returns the class of a (which has no zone and is not IPv4-mapped).
func classify(a netip.Addr) Class {
	if metadataAddrs[a] {
		return ClassMetadata
	}
	for _, r := range classRanges {
		if r.prefix.Contains(a) {
			return r.class
		}
	}
	return ClassPublic
}

// candidate is an address to classify: the address itself, or an IPv4
// address embedded in it by a transition mechanism.
type candidate struct {
	addr netip.Addr
	via  string // "" for the address itself
}

// candidates returns a (unmapped) and any IPv4 addresses that reaching a
// would reach.
func candidates(a netip.Addr) []candidate {
	a = a.Unmap()
	out := []candidate{{addr: a}}
	if !a.Is6() {
		return out
	}
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]}) }
	switch {
	case prefixIPv4Compat.Contains(a):
		// "::" and "::1" are classified as themselves; every other address
		// in ::/96 is the deprecated IPv4-compatible form.
		if a != netip.IPv6Unspecified() && a != netip.IPv6Loopback() {
			out = append(out, candidate{v4(12), "IPv4-compatible IPv6"})
		}
	case prefixNAT64.Contains(a):
		out = append(out, candidate{v4(12), "NAT64 64:ff9b::/96"})
	case prefix6to4.Contains(a):
		out = append(out, candidate{v4(2), "6to4 2002::/16"})
	case prefixTeredo.Contains(a):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		out = append(out,
			candidate{v4(4), "Teredo server"},
			candidate{netip.AddrFrom4(client), "Teredo client"})
	}
	return out
}

// Guard refuses upstream addresses that would let an agent reach the proxy's
// host or its network (SPEC 10.5): loopback, private, shared (CGNAT),
// link-local, cloud metadata, unspecified, multicast, broadcast and reserved
// addresses, including the IPv4-mapped, IPv4-compatible, NAT64, 6to4 and
// Teredo IPv6 forms that embed one of them.
//
// Allow holds upstream.allow_addresses. An address that some Allow prefix
// contains is permitted (allow_addresses wins), with one exception: a
// metadata address is unlocked only by an entry for exactly that address
// (a /32 or /128, or its IPv4-mapped form), never by a broader prefix such as
// 169.254.0.0/16. The zero Guard allows nothing special.
type Guard struct {
	Allow []netip.Prefix
}

// BlockedError is returned by Guard.Check for a refused address.
type BlockedError struct {
	Addr     netip.Addr // the address checked
	Embedded netip.Addr // the embedded IPv4 address that is refused, if any
	Via      string     // how Embedded is embedded in Addr, if it is
	Class    Class
}

func (e *BlockedError) Error() string {
	hint := "; list it in upstream.allow_addresses to allow it"
	if e.Class == ClassMetadata {
		hint = "; only an exact /32 or /128 entry in upstream.allow_addresses allows it"
	}
	if e.Class == ClassInvalid {
		hint = ""
	}
	if e.Via != "" {
		return fmt.Sprintf("hostport: address %s embeds %s (%s), which is %s%s", e.Addr, e.Embedded, e.Via, e.Class, hint)
	}
	return fmt.Sprintf("hostport: address %s is %s%s", e.Addr, e.Class, hint)
}

// Check returns nil if the proxy may dial addr, and a *BlockedError saying
// which class addr is in otherwise. A zone on addr is ignored.
func (g Guard) Check(addr netip.Addr) error {
	if !addr.IsValid() {
		return &BlockedError{Addr: addr, Class: ClassInvalid}
	}
	addr = addr.WithZone("")
	for _, c := range candidates(addr) {
		class := classify(c.addr)
		if class == ClassPublic || g.allows(addr, c.addr, class) {
			continue
		}
		e := &BlockedError{Addr: addr, Class: class}
		if c.via != "" {
			e.Embedded, e.Via = c.addr, c.via
		}
		return e
	}
	return nil
}

// allows reports whether an Allow entry covers candidate c of addr.
func (g Guard) allows(addr, c netip.Addr, class Class) bool {
	for _, p := range g.Allow {
		if !p.IsValid() {
			continue
		}
		p = unmapPrefix(p.Masked())
		if class == ClassMetadata {
			if p.IsSingleIP() && (p.Addr() == c || p.Addr() == addr.Unmap()) {
				return true
			}
			continue
		}
		if p.Contains(c) || p.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// unmapPrefix turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n-96) so that
// IPv4 entries written in mapped form match IPv4 addresses.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// IsMetadataHost reports whether host (a name or an IP literal, bracketed or
// not, in any case, with or without a trailing dot) names a cloud metadata
// endpoint such as 169.254.169.254, fd00:ec2::254, 100.100.100.200 or
// metadata.google.internal. Numeric forms that resolvers read as IPv4
// ("0xa9fea9fe") and IPv6 forms embedding a metadata IPv4 address count too.
func IsMetadataHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if metadataNames[h] {
		return true
	}
	if c, err := Canonical(host); err == nil && metadataNames[c] {
		return true
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		var ok bool
		if a, ok = parseLegacyIPv4(h); !ok {
			return false
		}
	}
	for _, c := range candidates(a.WithZone("")) {
		if metadataAddrs[c.addr] {
			return true
		}
	}
	return false
}
