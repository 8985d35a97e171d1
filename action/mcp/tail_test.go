package mcp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestTailWatch(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       bool
	}{
		{"jsonrpc", `{"id":1,"jsonrpc":"2.0"}`, true},
		{"method", `{"id":1, "method" : "tools/call"}`, true},
		{"params", `{"x":[1,{"a":"}"}],"params":{}}`, true},
		{"case folded", `{"id":1,"MeThOd":"x"}`, true},
		{"long s and Kelvin fold", "{\"id\":1,\"jſonrpc\":\"2.0\"}", true},
		{"escaped", `{"id":1,"\u006aSONRPC":"2.0"}`, true},
		{"escaped quote before", `{"a\"":"b","method":"x"}`, true},
		{"in an array's object", `[{"id":1},{"id":2,"method":"x"}]`, true},
		{"nested", `{"tools":[{"method":"GET","params":{}}],"data":{"jsonrpc":"2.0"}}`, false},
		{"a value", `{"id":"method","x":"params"}`, false},
		{"a value after a colon", `{"x":"jsonrpc","y":1}`, false},
		{"string with colon", `{"text":"method: x","a":"params:"}`, false},
		{"array of arrays", `[["method",1],["params",2]]`, false},
		{"not JSON", `method: tools/call`, false},
		{"after a byte order mark", "\uFEFF{\"id\":1,\"method\":\"x\"}", true},
		// Only the first value: NDJSON's later lines are no message the
		// SDKs decode (found by review: bulk uploads were cut).
		{"a later NDJSON line", "{\"a\":1}\n{\"method\":\"x\"}", false},
		{"a later value in an array's object still counts", `[{"a":1},{"method":"x"}]`, true},
		{"a key too long", `{"` + strings.Repeat("x", 100) + `method":1}`, false},
	} {
		w := &TailWatch{}
		if got := w.Scan([]byte(tt.body)); got != tt.want {
			t.Errorf("%s: Scan(%q) = %v, want %v", tt.name, tt.body, got, tt.want)
		}
		// Byte by byte, as a stream arrives, the same.
		w = &TailWatch{}
		got := false
		for i := range len(tt.body) {
			got = w.Scan([]byte{tt.body[i]})
		}
		if got != tt.want {
			t.Errorf("%s: byte by byte = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The watched reader withholds the bytes that complete a member and every
// byte after: the server never holds the whole message.
func TestTailWatchReaderCutsBeforeTheEnd(t *testing.T) {
	prefix := `{"id":1,"_meta":{"pad":"` + strings.Repeat(" ", 1000) + `"}`
	rest := `,"jsonrpc":"2.0","method":"tools/call","params":{"name":"drop_table"}}`
	w := &TailWatch{}
	if w.Scan([]byte(prefix)) {
		t.Fatal("found in the prefix")
	}
	var got bytes.Buffer
	_, err := io.Copy(&got, w.Reader(iotestOneByte(strings.NewReader(rest))))
	if !errors.Is(err, ErrLateMessage) {
		t.Fatalf("err %v, want ErrLateMessage", err)
	}
	if strings.Contains(got.String(), `"2.0"`) || !strings.HasPrefix(rest, got.String()) {
		t.Errorf("passed on %q: want what comes before the member's colon only", got.String())
	}
}

// iotestOneByte reads one byte at a time.
func iotestOneByte(r io.Reader) io.Reader { return oneByte{r} }

type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func FuzzTailWatch(f *testing.F) {
	f.Add([]byte(`{"id":1,"method":"x"}`))
	f.Add([]byte(`[{"a":"\"","params":1}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		// Whole or split anywhere, the verdict is the same.
		whole := (&TailWatch{}).Scan(body)
		for _, cut := range []int{len(body) / 3, len(body) / 2} {
			w := &TailWatch{}
			w.Scan(body[:cut])
			if got := w.Scan(body[cut:]); got != whole {
				t.Fatalf("split at %d: %v, whole %v", cut, got, whole)
			}
		}
	})
}

func TestTailWatchUnreadable(t *testing.T) {
	for _, tt := range []struct {
		body string
		want bool
	}{
		{`{"a":1}`, false},
		{"\uFEFF  [1]", false},
		{"   ", false},
		{"\xff\xfe{\x00", true}, // UTF-16LE
		{"\x1f\x8b\x08", true},  // still gzip
		{`"a string"`, true},
	} {
		w := &TailWatch{}
		w.Scan([]byte(tt.body))
		if got := w.Unreadable(); got != tt.want {
			t.Errorf("Unreadable after %q = %v, want %v", tt.body, got, tt.want)
		}
	}
}
