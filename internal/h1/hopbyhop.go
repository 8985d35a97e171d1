package h1

import (
	"net/http"
	"net/textproto"
	"strings"
)

// hopByHop are the hop-by-hop fields of RFC 9110 section 7.6.1 plus the
// de-facto Proxy-Connection and Keep-Alive, in canonical form.
var hopByHop = []string{
	"Connection",
	"Keep-Alive",
	"Proxy-Connection",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
}

// RemoveHopByHop deletes from h the hop-by-hop fields: every field named in
// Connection, then Connection, Keep-Alive, Proxy-Connection,
// Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding and
// Upgrade. The proxy calls it before the policy sees the request, so what is
// decided is what is sent (SPEC 10.2).
//
// It removes Upgrade and Connection unconditionally: a caller that forwards
// an allowed WebSocket (or other) upgrade must re-add "Connection: Upgrade"
// and the Upgrade field itself after the policy has allowed it.
func RemoveHopByHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopByHop {
		delete(h, k)
	}
}
