package action

import (
	"net/url"
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
	out := make(url.Values, len(vals))
	for k, vs := range vals {
		k = strings.ToValidUTF8(k, "\uFFFD")
		out[k] = append(out[k], vs...)
	}
	return out
}
