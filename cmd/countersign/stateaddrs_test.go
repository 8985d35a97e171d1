package main

import (
	"net/netip"
	"slices"
	"testing"
)

// The state database's addresses join the proxy's own, which it never
// dials: by a name, an address literal or an IPv4-mapped form.
func TestStateDatabaseAddressesAreOwn(t *testing.T) {
	got := resolveAddrs(t.Context(), []string{"localhost:5433", "10.1.2.3:5432", "[::ffff:10.1.2.4]:5432", "not a hostport"})
	for _, want := range []string{"127.0.0.1:5433", "10.1.2.3:5432", "10.1.2.4:5432"} {
		if !slices.Contains(got, netip.MustParseAddrPort(want)) {
			t.Errorf("resolveAddrs = %v, want %s among them", got, want)
		}
	}
	a := &app{stateAddrs: got}
	if own := a.ownAddrs(); !slices.Contains(own, netip.MustParseAddrPort("10.1.2.3:5432")) {
		t.Errorf("ownAddrs = %v, want the database's address", own)
	}
}
