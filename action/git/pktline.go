package git

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// pkt-line framing (gitprotocol-common(5)): four hex digits give the length
// of the line including themselves; 0000 is a flush-pkt, 0001 a delim-pkt
// and 0002 a response-end-pkt (protocol v2). Git refuses lines longer than
// LARGE_PACKET_MAX.
const (
	maxPktLen     = 65520
	maxPktPayload = maxPktLen - 4
)

type pktKind int

const (
	pktUnknown pktKind = iota
	pktData
	pktFlush
	pktDelim
	pktResponseEnd
)

var (
	// errPktShort: the data ends in the middle of a pkt-line or before the
	// expected end of a section. Whether that is malformed or merely cut off
	// by the inspection limit is for the caller to say.
	errPktShort = errors.New("pkt-line cut short")
)

// pktReader reads pkt-lines from a byte slice. It never reads past the
// slice and never allocates for a payload: payloads alias the input.
type pktReader struct {
	b   []byte
	off int
}

// next returns the next pkt-line. At the end of the data it returns
// errPktShort; a malformed length is an error that names the offset.
func (r *pktReader) next() (pktKind, []byte, error) {
	if len(r.b)-r.off < 4 {
		return pktUnknown, nil, errPktShort
	}
	n := 0
	for _, c := range r.b[r.off : r.off+4] {
		v, ok := hexValue(c)
		if !ok {
			return pktUnknown, nil, fmt.Errorf("bad pkt-line length %q at byte %d", r.b[r.off:r.off+4], r.off)
		}
		n = n<<4 | v
	}
	switch {
	case n == 0:
		r.off += 4
		return pktFlush, nil, nil
	case n == 1:
		r.off += 4
		return pktDelim, nil, nil
	case n == 2:
		r.off += 4
		return pktResponseEnd, nil, nil
	case n < 4 || n > maxPktLen:
		return pktUnknown, nil, fmt.Errorf("bad pkt-line length %d at byte %d", n, r.off)
	}
	if len(r.b)-r.off < n {
		return pktUnknown, nil, errPktShort
	}
	p := r.b[r.off+4 : r.off+n]
	r.off += n
	return pktData, p, nil
}

func hexValue(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}

// chomp drops one trailing LF, as git's PACKET_READ_CHOMP_NEWLINE does.
func chomp(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}

// refUpdate is one ref update command of a push.
type refUpdate struct {
	Ref  string
	Old  string // lower-case hex object id; all zeros when the ref is created
	New  string // lower-case hex object id; all zeros when the ref is deleted
	Kind string // "create", "update" or "delete"
}

// push is what a receive-pack request asks for.
type push struct {
	Updates      []refUpdate
	Capabilities []string
	PushOptions  []string
	Signed       bool // the commands came in a push certificate
	// Complete is true when the whole command list (and the push options,
	// when negotiated) was read up to its flush-pkt.
	Complete bool
}

// has reports whether the client asked for capability, as git's
// parse_feature_request reads it: by name, with or without "=value" (found
// by review: "push-options=1" hid the push options).
func (p *push) has(capability string) bool {
	for _, c := range p.Capabilities {
		if name, _, _ := strings.Cut(c, "="); name == capability {
			return true
		}
	}
	return false
}

// parseCommands parses the start of a receive-pack request body the way
// git's receive-pack reads it (builtin/receive-pack.c read_head_info):
//
//	*PKT-LINE("shallow" SP oid)
//	( PKT-LINE(command NUL capabilities) *PKT-LINE(command) | push-cert )
//	flush-pkt
//	[ *PKT-LINE(push-option) flush-pkt ]   when push-options was asked for
//	packfile                               (ignored)
//
// A command is "<old> SP <new> SP <ref>"; old and new are 40 (SHA-1) or 64
// (SHA-256) hex digits. Like receive-pack, it takes capabilities from any
// line that carries a NUL and ends the command list at any special packet.
//
// When the data ends before the command list does, it returns what it read
// with Complete false and errPktShort; the caller knows whether the body
// was cut off. Any other error means the body is not a receive-pack request.
// Work is linear in len(b).
func parseCommands(b []byte) (push, error) {
	var p push
	r := pktReader{b: b}
	seen := map[string]bool{}
	var cert []byte
	for {
		kind, line, err := r.next()
		if err != nil {
			return p, err
		}
		if kind != pktData {
			break
		}
		line = chomp(line)
		if len(line) > 8 && bytes.HasPrefix(line, []byte("shallow ")) {
			// A push from a shallow clone names its shallow commits first;
			// like receive-pack, look only at the id's first digits.
			if len(line) < 48 || !isHex(line[8:48]) {
				return p, fmt.Errorf("shallow line without an object id: %q", clip(line))
			}
			continue
		}
		if i := bytes.IndexByte(line, 0); i >= 0 {
			for _, c := range strings.Fields(string(line[i+1:])) {
				if !seen[c] {
					seen[c] = true
					p.Capabilities = append(p.Capabilities, c)
				}
			}
			line = line[:i]
		}
		if string(line) == "push-cert" {
			c, flushed, err := readCert(&r)
			if err != nil {
				return p, err
			}
			p.Signed = true
			cert = append(cert, c...)
			if flushed {
				break
			}
			continue
		}
		u, err := parseCommand(line)
		if err != nil {
			return p, err
		}
		p.Updates = append(p.Updates, u)
	}
	if cert != nil {
		us, err := certCommands(cert)
		if err != nil {
			return p, err
		}
		p.Updates = append(p.Updates, us...)
	}
	if p.has("push-options") {
		for {
			kind, line, err := r.next()
			if err != nil {
				return p, err
			}
			if kind == pktFlush {
				break
			}
			if kind != pktData {
				return p, errors.New("unexpected special packet among the push options")
			}
			p.PushOptions = append(p.PushOptions, string(chomp(line)))
		}
	}
	p.Complete = true
	return p, nil
}

// readCert collects a push certificate's lines up to "push-cert-end" as
// receive-pack does: newlines kept, each line cut at its first NUL. flushed
// reports that a flush-pkt ended the certificate, and with it the command
// list.
func readCert(r *pktReader) (cert []byte, flushed bool, err error) {
	for {
		kind, line, err := r.next()
		if err != nil {
			return cert, false, err
		}
		switch kind {
		case pktFlush:
			return cert, true, nil
		case pktData:
		default:
			return cert, false, errors.New("unexpected special packet in a push certificate")
		}
		if i := bytes.IndexByte(line, 0); i >= 0 {
			line = line[:i]
		}
		if string(line) == "push-cert-end\n" {
			return cert, false, nil
		}
		cert = append(cert, line...)
	}
}

// signatureStarts are the armour lines git recognises as the start of a
// signature (gpg-interface.c).
var signatureStarts = []string{
	"-----BEGIN PGP SIGNATURE-----",
	"-----BEGIN PGP MESSAGE-----",
	"-----BEGIN SIGNED MESSAGE-----",
	"-----BEGIN SSH SIGNATURE-----",
}

// certCommands returns the commands of a push certificate: the lines after
// the header's blank line and before the last signature, as receive-pack's
// queue_commands_from_cert reads them.
func certCommands(cert []byte) ([]refUpdate, error) {
	boc := bytes.Index(cert, []byte("\n\n"))
	if boc < 0 {
		return nil, errors.New("push certificate without a blank line after its header")
	}
	boc += 2
	eoc := len(cert)
	for off := 0; off < len(cert); {
		for _, s := range signatureStarts {
			if bytes.HasPrefix(cert[off:], []byte(s)) {
				eoc = off
				break
			}
		}
		nl := bytes.IndexByte(cert[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	var us []refUpdate
	for boc < eoc {
		line := cert[boc:eoc]
		if nl := bytes.IndexByte(line, '\n'); nl >= 0 {
			line = line[:nl]
		}
		boc += len(line) + 1
		u, err := parseCommand(line)
		if err != nil {
			return nil, err
		}
		us = append(us, u)
	}
	return us, nil
}

// parseCommand parses "<old> SP <new> SP <ref>". The ref is the rest of the
// line, and must be a valid ref name: git's receive-pack refuses others,
// but GitHub's (spokes-receive-pack) reads a command with a pattern that
// stops at a newline, so "refs/heads/main\n\n" updates main (found by
// review). A server that reads the name otherwise than countersign must
// not get it.
func parseCommand(line []byte) (refUpdate, error) {
	old, rest, ok1 := bytes.Cut(line, []byte(" "))
	nw, ref, ok2 := bytes.Cut(rest, []byte(" "))
	if !ok1 || !ok2 || !isObjectID(old) || len(nw) != len(old) || !isObjectID(nw) {
		return refUpdate{}, fmt.Errorf("expected old/new/ref, got %q", clip(line))
	}
	if err := checkRefName(string(ref)); err != nil {
		return refUpdate{}, err
	}
	u := refUpdate{Ref: string(ref), Old: strings.ToLower(string(old)), New: strings.ToLower(string(nw))}
	switch {
	case isZero(u.New):
		// An all-zero new id deletes the ref, whatever old says: an all-zero
		// old too means "delete without checking its value".
		u.Kind = "delete"
	case isZero(u.Old):
		u.Kind = "create"
	default:
		u.Kind = "update"
	}
	return u, nil
}

// isObjectID reports whether b is a SHA-1 or SHA-256 object id in hex.
func isObjectID(b []byte) bool {
	return (len(b) == 40 || len(b) == 64) && isHex(b)
}

func isHex(b []byte) bool {
	for _, c := range b {
		if _, ok := hexValue(c); !ok {
			return false
		}
	}
	return true
}

func isZero(id string) bool { return strings.Trim(id, "0") == "" }

// clip shortens untrusted bytes quoted in an error.
func clip(b []byte) []byte {
	if len(b) > 100 {
		return b[:100]
	}
	return b
}

// parseUploadPack reads the first pkt-line of an upload-pack request: a
// protocol v2 "command=<name>" (ls-refs, fetch, object-info, …) or a v0/v1
// "want <oid>" negotiation, which is a fetch. A lone flush-pkt is git's
// probe before a large request.
func parseUploadPack(b []byte) (command string, err error) {
	r := pktReader{b: b}
	kind, line, err := r.next()
	if err != nil {
		return "", err
	}
	if kind == pktFlush {
		return "", nil
	}
	if kind != pktData {
		return "", errors.New("upload-pack request starts with a special packet")
	}
	line = chomp(line)
	if c, ok := bytes.CutPrefix(line, []byte("command=")); ok {
		if !isToken(c) {
			return "", fmt.Errorf("bad protocol v2 command %q", clip(c))
		}
		return string(c), nil
	}
	for _, prefix := range []string{"want ", "shallow ", "deepen", "filter ", "have ", "done"} {
		if bytes.HasPrefix(line, []byte(prefix)) {
			return "", nil
		}
	}
	return "", fmt.Errorf("unexpected upload-pack request line %q", clip(line))
}

// isToken reports whether b looks like a protocol v2 command name.
func isToken(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	for _, c := range b {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// pktLine appends s as one pkt-line; s must fit (maxPktPayload).
func pktLine(dst []byte, s string) []byte {
	dst = append(dst, pktLen(len(s)+4)...)
	return append(dst, s...)
}

// checkRefName applies git's rules for ref names (check_refname_format, as
// `git check-ref-format` documents them) to a ref a push updates: it must
// start with "refs/", and no part may start with "." or end with ".lock";
// no "..", "@{", "//", control characters, space, "~^:?*[\"; no trailing
// "/" or ".".
func checkRefName(ref string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid ref name %q: %s", clip([]byte(ref)), why)
	}
	if !strings.HasPrefix(ref, "refs/") {
		return bad("it does not start with refs/")
	}
	for i := 0; i < len(ref); i++ {
		if c := ref[i]; c < 0x20 || c == 0x7f || strings.IndexByte(" ~^:?*[\\", c) >= 0 {
			return bad(fmt.Sprintf("it contains %q", c))
		}
	}
	switch {
	case strings.Contains(ref, ".."), strings.Contains(ref, "@{"), strings.Contains(ref, "//"):
		return bad("it contains .., @{ or //")
	case strings.HasSuffix(ref, "/"), strings.HasSuffix(ref, "."):
		return bad("it ends with / or .")
	}
	for part := range strings.SplitSeq(ref, "/") {
		if strings.HasPrefix(part, ".") || strings.HasSuffix(part, ".lock") {
			return bad("a part starts with . or ends with .lock")
		}
	}
	return nil
}
