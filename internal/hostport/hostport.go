// Package hostport canonicalises host names and host:port pairs, and guards
// the addresses the proxy dials (SPEC 10.2 and 10.5).
//
// Canonical is the single definition of "the same host" in countersign: the
// CONNECT host, the TLS SNI, the inner Host header and an absolute-form URL are
// each canonicalised before they are compared or shown to the policy. Anything
// that resolvers could read in more than one way is refused rather than
// guessed at.
package hostport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// Canonical returns the canonical form of host, or an error saying why host
// is refused.
//
// Names are lower-cased, lose one trailing dot and are converted to ASCII with
// the IDNA lookup profile; every label must be 1–63 letters, digits and
// hyphens, not starting or ending with a hyphen, and the name at most 253
// bytes. IP literals come back in netip's form: dotted-decimal IPv4, and IPv6
// without brackets (an optional pair of brackets is accepted on input; zones
// are refused). Names whose last label is numeric ("2130706433", "0x7f.1",
// "0177.0.0.1", "127.1") are refused because some resolvers read them as IPv4
// addresses. Non-ASCII input that maps to an IP address is refused as a
// confusable. Canonical is idempotent: Canonical(Canonical(h)) == Canonical(h).
func Canonical(host string) (string, error) {
	if host == "" {
		return "", errors.New("hostport: empty host")
	}
	if strings.HasPrefix(host, "[") || strings.HasSuffix(host, "]") {
		if len(host) < 2 || host[0] != '[' || host[len(host)-1] != ']' {
			return "", fmt.Errorf("hostport: unbalanced brackets in host %q", host)
		}
		return canonicalIPv6(host[1 : len(host)-1])
	}
	if strings.IndexByte(host, ':') >= 0 {
		return canonicalIPv6(host)
	}
	if isASCII(host) {
		return canonicalASCII(host)
	}
	ascii, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("hostport: host %q is not a valid internationalised name: %w", host, err)
	}
	if !isASCII(ascii) {
		return "", fmt.Errorf("hostport: host %q does not convert to ASCII", host)
	}
	out, err := canonicalASCII(ascii)
	if err != nil {
		return "", err
	}
	if _, perr := netip.ParseAddr(out); perr == nil {
		return "", fmt.Errorf("hostport: non-ASCII host %q maps to the IP address %s (confusable)", host, out)
	}
	return out, nil
}

func canonicalIPv6(s string) (string, error) {
	if strings.IndexByte(s, '%') >= 0 {
		return "", fmt.Errorf("hostport: IPv6 zone in host %q is not allowed", s)
	}
	if strings.IndexByte(s, ':') < 0 {
		return "", fmt.Errorf("hostport: bracketed host %q is not an IPv6 address", s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return "", fmt.Errorf("hostport: invalid IPv6 address %q", s)
	}
	return a.String(), nil
}

// canonicalASCII handles a host that is entirely ASCII. It deliberately does
// not run IDNA's hyphen rule (no "--" in positions 3–4) on plain labels:
// real names such as "r3---sn-abc.googlevideo.com" break it.
func canonicalASCII(host string) (string, error) {
	name := strings.ToLower(host)
	name = strings.TrimSuffix(name, ".")
	if name == "" {
		return "", fmt.Errorf("hostport: host %q has no labels", host)
	}
	if len(name) > maxNameLen {
		return "", fmt.Errorf("hostport: host is %d bytes long, more than %d", len(name), maxNameLen)
	}
	if a, err := netip.ParseAddr(name); err == nil && a.Is4() {
		return a.String(), nil
	}
	labels := strings.Split(name, ".")
	if last := labels[len(labels)-1]; isNumericLabel(last) {
		if a, ok := parseLegacyIPv4(name); ok {
			return "", fmt.Errorf("hostport: ambiguous numeric host %q: some resolvers read it as the IPv4 address %s; write the address in dotted-decimal form", host, a)
		}
		return "", fmt.Errorf("hostport: ambiguous numeric host %q: its last label is a number, so some resolvers treat it as an IPv4 address, but it is not a valid dotted-decimal address", host)
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", fmt.Errorf("hostport: host %q: %w", host, err)
		}
	}
	return name, nil
}

func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("empty label")
	case len(l) > maxLabelLen:
		return fmt.Errorf("label of %d bytes is longer than %d", len(l), maxLabelLen)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("byte %q is not a letter, digit or hyphen", c)
		}
	}
	if strings.HasPrefix(l, "xn--") {
		// An A-label must decode to a valid U-label and encode back to itself.
		u, err := idna.Lookup.ToUnicode(l)
		if err != nil {
			return fmt.Errorf("invalid IDNA label %q: %w", l, err)
		}
		a, err := idna.Lookup.ToASCII(u)
		if err != nil || a != l {
			return fmt.Errorf("IDNA label %q is not in canonical form", l)
		}
	}
	return nil
}

// isNumericLabel reports whether l is a label that the WHATWG URL parser (and
// inet_aton) would read as a number: all decimal digits, or "0x" followed by
// hex digits.
func isNumericLabel(l string) bool {
	if l == "" {
		return false
	}
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		for i := 2; i < len(l); i++ {
			if !isHex(l[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// parseLegacyIPv4 parses s the way inet_aton does: one to four parts, each
// decimal, octal (leading 0) or hex (leading 0x), the last part filling the
// remaining bytes. It is used only to explain why a host is refused.
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		v, ok := parseLegacyPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var out uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		out |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if last >= 1<<(8*(5-len(vals))) {
		return netip.Addr{}, false
	}
	out |= last
	return netip.AddrFrom4([4]byte{byte(out >> 24), byte(out >> 16), byte(out >> 8), byte(out)}), true
}

func parseLegacyPart(p string) (uint64, bool) {
	base := 10
	switch {
	case p == "":
		return 0, false
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true
		}
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	v, err := strconv.ParseUint(p, base, 32)
	if err != nil {
		return 0, false
	}
	return v, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Split splits hostport into a canonical host (see Canonical) and a port.
// IPv6 literals must be bracketed ("[::1]:443"). When hostport has no port,
// defaultPort is used; it must then be in 1–65535. A port is 1–5 decimal
// digits without sign or leading zero, in 1–65535.
func Split(hostport string, defaultPort int) (host string, port int, err error) {
	if hostport == "" {
		return "", 0, errors.New("hostport: empty host")
	}
	var rawHost, rawPort string
	hasPort := false
	if hostport[0] == '[' {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", 0, fmt.Errorf("hostport: missing ']' in %q", hostport)
		}
		rawHost = hostport[:end+1]
		switch rest := hostport[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			rawPort, hasPort = rest[1:], true
		default:
			return "", 0, fmt.Errorf("hostport: unexpected %q after ']' in %q", rest, hostport)
		}
	} else {
		switch strings.Count(hostport, ":") {
		case 0:
			rawHost = hostport
		case 1:
			i := strings.IndexByte(hostport, ':')
			rawHost, rawPort, hasPort = hostport[:i], hostport[i+1:], true
		default:
			return "", 0, fmt.Errorf("hostport: %q has too many colons (IPv6 addresses must be in brackets)", hostport)
		}
	}
	if hasPort {
		port, err = parsePort(rawPort)
		if err != nil {
			return "", 0, err
		}
	} else {
		if defaultPort < 1 || defaultPort > 65535 {
			return "", 0, fmt.Errorf("hostport: %q has no port", hostport)
		}
		port = defaultPort
	}
	host, err = Canonical(rawHost)
	if err != nil {
		return "", 0, err
	}
	return host, port, nil
}

func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("hostport: empty port")
	}
	if len(s) > 5 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("hostport: invalid port %q", s)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("hostport: invalid port %q", s)
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("hostport: port %d out of range 1-65535", n)
	}
	return n, nil
}

// Join joins host and port, bracketing IPv6 literals. It does not validate
// either; pass it the results of Split or Canonical.
func Join(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
