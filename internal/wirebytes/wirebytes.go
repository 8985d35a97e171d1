// Package wirebytes decodes the escaped notation the wire-level test corpora
// use to write raw protocol bytes on one text line: the HTTP/1 reader's cases
// (internal/h1/testdata) and the proxy's attack corpus (proxy/testdata). It
// exists so both read the same notation the same way; the proxy does not use
// it.
package wirebytes

import (
	"errors"
	"fmt"
	"strconv"
)

// Unescape decodes \r \n \t \0 \\ and \xHH; any other backslash escape is an
// error, so a typo in a corpus fails its test instead of sending other bytes.
func Unescape(s string) ([]byte, error) {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("trailing backslash")
		}
		i++
		switch s[i] {
		case 'r':
			out = append(out, '\r')
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, errors.New(`short \x escape`)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf(`bad \x escape: %w`, err)
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf(`unknown escape \%c`, s[i])
		}
	}
	return out, nil
}
