package action

import (
	"maps"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// ValidKeys returns vals with every name that is not valid UTF-8 replaced
// by its valid form (each bad byte becomes U+FFFD), merging the values of
// names that then coincide. Policies, the decision cache and the audit log
// then all see the same names: JSON cannot carry invalid UTF-8, and the
// audit encoder would otherwise turn "Id%FE" and "Id%FF" into one key
// holding only one of the two values. vals itself is returned, unchanged,
// when every name is valid, which is the case for every real client.
func ValidKeys(vals url.Values) url.Values {
	valid := true
	for k := range vals {
		if !utf8.ValidString(k) {
			valid = false
			break
		}
	}
	if valid {
		return vals
	}
	// Merged in the sorted order of the raw names, not the map's random
	// one, so that equal requests give equal lists.
	out := make(url.Values, len(vals))
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		v := strings.ToValidUTF8(k, "\uFFFD")
		out[v] = append(out[v], vals[k]...)
	}
	return out
}
