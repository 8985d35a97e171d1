package git

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/action"
	"github.com/countersign/countersign/internal/golden"
)

// goldenBodies returns the bodies of the captured requests.
func goldenBodies(f *testing.F) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	var bodies [][]byte
	for _, file := range files {
		raw, _ := golden.Read(f, file)
		r := golden.Parse(f, raw, goldenOptions)
		if r.Header.Get("Content-Encoding") == "gzip" {
			if b, _, err := inflate(r.Body, r.BodyTruncated); err == nil {
				bodies = append(bodies, b)
			}
		}
		bodies = append(bodies, r.Body)
	}
	return bodies
}

// FuzzPktLines feeds receive-pack command lists to parseCommands, seeded
// with git's own pushes (create, update, delete, tags, push options,
// atomic, signed, shallow, SHA-256, cut off) and the table cases. Beyond
// not panicking, it checks what policies rely on: every update is well
// formed, and a cut-off body never looks complete with updates missing.
func FuzzPktLines(f *testing.F) {
	for _, b := range goldenBodies(f) {
		f.Add(b)
	}
	f.Add(pkts(oidA+" "+oidB+" refs/heads/main\x00report-status push-options", "0000", "ci.skip", "0000"))
	f.Add(pkts("shallow "+oidA, zero+" "+zero+" refs/heads/main", "0001"))
	f.Add(pkts("push-cert\x00report-status", "certificate version 0.1\n", "\n", oidA+" "+oidB+" refs/heads/main\n", "push-cert-end\n", "0000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseCommands(b)
		if err == nil && !p.Complete {
			t.Fatalf("parseCommands(%q): no error but not complete", b)
		}
		if err != nil && p.Complete {
			t.Fatalf("parseCommands(%q): error %v but complete", b, err)
		}
		for _, u := range p.Updates {
			if !isObjectID([]byte(u.Old)) || len(u.New) != len(u.Old) || !isObjectID([]byte(u.New)) ||
				strings.ToLower(u.Old) != u.Old || strings.ToLower(u.New) != u.New {
				t.Fatalf("parseCommands(%q): malformed update %+v", b, u)
			}
			want := "update"
			switch {
			case isZero(u.New):
				want = "delete"
			case isZero(u.Old):
				want = "create"
			}
			if u.Kind != want {
				t.Fatalf("parseCommands(%q): update %+v has kind %q, want %q", b, u, u.Kind, want)
			}
			if strings.ContainsRune(u.Ref, 0) {
				t.Fatalf("parseCommands(%q): ref %q holds a NUL", b, u.Ref)
			}
		}
		if err != nil && !errors.Is(err, errPktShort) {
			return
		}
		// A prefix either is complete with exactly the same commands, or
		// says it is short.
		for _, n := range []int{len(b) / 3, len(b) / 2, len(b) - 1} {
			if n < 0 {
				continue
			}
			q, qerr := parseCommands(b[:n])
			if qerr != nil && !errors.Is(qerr, errPktShort) {
				t.Fatalf("parseCommands(prefix %d of %q) error %v; the whole gave %v", n, b, qerr, err)
			}
			if qerr == nil {
				if err != nil {
					t.Fatalf("parseCommands(prefix %d of %q) complete; the whole is short", n, b)
				}
				if diff := cmp.Diff(p, q); diff != "" {
					t.Fatalf("parseCommands(prefix %d of %q) complete but differs (-whole +prefix):\n%s", n, b, diff)
				}
			}
		}
		// The updates survive being written out again.
		if err != nil || p.Signed || len(p.Updates) == 0 {
			return
		}
		var again []byte
		for i, u := range p.Updates {
			line := u.Old + " " + u.New + " " + u.Ref
			if i == 0 {
				line += "\x00report-status"
			}
			if len(line)+1 > maxPktPayload {
				return
			}
			again = pktLine(again, line+"\n")
		}
		again = append(again, "0000"...)
		q, err := parseCommands(again)
		if err != nil {
			t.Fatalf("parseCommands(re-encoded %q): %v", again, err)
		}
		if diff := cmp.Diff(p.Updates, q.Updates); diff != "" {
			t.Fatalf("re-encoded updates differ (-first +again):\n%s", diff)
		}
	})
}

// FuzzClassify runs whole requests (the captured ones, then mutations)
// through Classify and Respond: neither may panic, and a git-framed
// denial must be well-formed pkt-lines.
func FuzzClassify(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		raw, _ := golden.Read(f, file)
		f.Add(raw)
	}
	p := New(Options{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16+1))
		truncated := err != nil || len(body) > 1<<16
		r := &action.Request{
			Method: req.Method, Scheme: "https", Host: "github.com", Port: 443,
			Path: req.URL.Path, RawPath: req.URL.EscapedPath(), Query: req.URL.Query(), Header: req.Header,
			Body: body, BodySize: req.ContentLength, BodyTruncated: truncated,
		}
		a, ok := p.Classify(r)
		if !ok {
			return
		}
		if a.Provider != "git" || (a.Service != "" && a.Service != serviceUploadPack && a.Service != serviceReceivePack) {
			t.Fatalf("Classify = %+v", a)
		}
		if a.Service == serviceReceivePack && a.Operation == "push" && a.ReadOnly && (a.ParseError != "" || len(a.Resources) > 0) {
			t.Fatalf("a push with updates or a parse error is read-only: %+v", a)
		}
		resp := p.Respond(r, a, action.Denial{Status: http.StatusForbidden, Message: "countersign: denied\nby policy"})
		if resp.Status != http.StatusOK {
			return
		}
		pr := pktReader{b: resp.Body}
		for pr.off < len(resp.Body) {
			if _, _, err := pr.next(); err != nil {
				t.Fatalf("Respond body %q: %v", resp.Body, err)
			}
		}
		if bytes.Contains(resp.Body, []byte("denied\nby")) {
			t.Fatalf("Respond body %q carries the message's newline", resp.Body)
		}
	})
}
