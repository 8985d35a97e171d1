package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/approval"
)

func TestBodyPoolClasses(t *testing.T) {
	p := &bodyPool{}
	for _, tt := range []struct {
		n       int
		wantCap int // 0: not pooled
	}{
		{0, 0},
		{minPooledBody - 1, 0},
		{minPooledBody, 64 << 10},
		{minPooledBody + 1, 80 << 10},
		{100 << 10, 112 << 10},
		{113 << 10, 128 << 10},
		{1 << 20, 1 << 20},
		{1<<20 + 1, 1280 << 10},
		{maxPooledBody, 8 << 20},
		{maxPooledBody + 1, 0},
	} {
		bb := p.get(tt.n)
		switch {
		case tt.wantCap == 0 && bb != nil:
			t.Errorf("get(%d) = a buffer of %d, want none", tt.n, cap(bb.b))
		case tt.wantCap != 0 && (bb == nil || cap(bb.b) != tt.wantCap || len(bb.b) != 0):
			t.Errorf("get(%d) = %v, want an empty buffer of %d", tt.n, bb, tt.wantCap)
		}
		bb.release()
	}
	for c := 1; c < bodyClasses; c++ {
		if lo, hi := classSize(c-1), classSize(c); hi <= lo || hi > lo+lo/4+1 {
			t.Errorf("class %d holds %d bytes after class %d's %d: want at most a quarter more", c, hi, c-1, lo)
		}
	}
	if classSize(bodyClasses-1) != maxPooledBody {
		t.Errorf("the largest class holds %d bytes, want %d", classSize(bodyClasses-1), maxPooledBody)
	}
	var nilPool *bodyPool
	if bb := nilPool.get(1 << 20); bb != nil {
		t.Errorf("a nil pool gave a buffer")
	}
}

// pooledCount counts the free buffers of class c.
func pooledCount(p *bodyPool, c int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free[c])
}

// A buffer goes back to the pool, cleared, only after the request and the
// upstream body both let go of it.
func TestBodyBufReferences(t *testing.T) {
	const size = 100 << 10
	c, _ := (&bodyPool{}).class(size)
	t.Run("reused after the last release", func(t *testing.T) {
		p := &bodyPool{}
		bb := p.get(size)
		bb.b = append(bb.b, "secret of request A"...)
		first := &bb.b[:1][0]
		body := bb.reader(bb.b, nil)
		bb.release() // the request is done deciding
		if n := pooledCount(p, c); n != 0 {
			t.Fatalf("buffer back in the pool while the upstream body still reads it")
		}
		if got, err := io.ReadAll(body); err != nil || string(got) != "secret of request A" {
			t.Fatalf("body = %q, %v", got, err)
		}
		body.Close()
		body.Close() // twice is harmless
		if n := pooledCount(p, c); n != 1 {
			t.Fatalf("%d buffers in the pool after the last release, want 1", n)
		}
		next := p.get(size)
		if len(next.b) != 0 || &next.b[:1][0] != first {
			t.Errorf("get did not reuse the free buffer as an empty one")
		}
		if old := next.b[:len("secret of request A")]; !bytes.Equal(old, make([]byte, len(old))) {
			t.Errorf("a reused buffer still holds %q", old)
		}
		if !panics(func() { next.release(); next.reader(nil, nil) }) {
			t.Errorf("a released buffer could be referenced again")
		}
	})
	// abcdef is an upstream body of "abc" from a pooled buffer and "def"
	// streamed after it, whose request is done deciding.
	abcdef := func() io.ReadCloser {
		bb := (&bodyPool{}).get(size)
		bb.b = append(bb.b, "abc"...)
		body := bb.reader(bb.b, strings.NewReader("def"))
		bb.release()
		return body
	}
	t.Run("read after close", func(t *testing.T) {
		body := abcdef()
		body.Close()
		if n, err := body.Read(make([]byte, 8)); n != 0 || !errors.Is(err, errBodyClosed) {
			t.Errorf("Read after Close = %d, %v; want 0, errBodyClosed", n, err)
		}
	})
	t.Run("prefix then rest", func(t *testing.T) {
		body := abcdef()
		got, err := io.ReadAll(body)
		if err != nil || string(got) != "abcdef" {
			t.Errorf("body = %q, %v; want abcdef", got, err)
		}
		body.Close()
	})
	t.Run("close races read", func(t *testing.T) {
		// An HTTP/2 transport may close the body while its writer reads it;
		// the race detector checks the buffer is not read after release.
		for range 50 {
			p := &bodyPool{}
			bb := p.get(size)
			bb.b = append(bb.b, make([]byte, size)...)
			body := bb.reader(bb.b, nil)
			bb.release()
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 1024)
				for {
					if _, err := body.Read(buf); err != nil {
						return
					}
				}
			}()
			body.Close()
			if next := p.get(size); next != nil {
				next.b = append(next.b, make([]byte, size)...) // overwrite whatever was reused
				next.release()
			}
			<-done
		}
	})
}

func panics(f func()) (did bool) {
	defer func() { did = recover() != nil }()
	f()
	return false
}

// Free buffers keep at most maxKeptBodies bytes.
func TestBodyPoolBound(t *testing.T) {
	p := &bodyPool{}
	var bufs []*bodyBuf
	for range 2 * maxKeptBodies / maxPooledBody {
		bufs = append(bufs, p.get(maxPooledBody))
	}
	for _, bb := range bufs {
		bb.release()
	}
	c, _ := p.class(maxPooledBody)
	if n := pooledCount(p, c); n != maxKeptBodies/maxPooledBody || p.kept != maxKeptBodies {
		t.Errorf("%d buffers (%d bytes) kept, want %d", n, p.kept, maxKeptBodies/maxPooledBody)
	}
}

// Uploads large enough to use pooled buffers, many at once, allowed,
// denied and held: every upstream request carries exactly its own body,
// and the held one, forwarded after the others reused buffers, still
// carries its own. All bodies are of one buffer class, so a held buffer
// that went back to the pool would be the next upload's.
func TestPooledBodiesNeverMix(t *testing.T) {
	const policy = `package countersign

deny contains "no" if input.request.path == "/deny"

approve contains "hold" if input.request.path == "/held"
`
	h := newHarness(t, harnessOptions{policy: policy})
	rng := rand.New(rand.NewPCG(1, 2))
	newBody := func() []byte {
		b := make([]byte, 256<<10+1+rng.IntN(256<<10)) // the 512 KiB class

		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	post := func(path string, body []byte) (int, string, error) {
		req, err := http.NewRequestWithContext(t.Context(), "POST", "https://example.test"+path, bytes.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		sum := sha256.Sum256(body)
		req.Header.Set("X-Sum", hex.EncodeToString(sum[:]))
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := h.client().Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		answer, err := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get(headerDecision) + ": " + string(answer), err
	}

	held := newBody()
	heldDone := make(chan error, 1)
	go func() {
		code, answer, err := post("/held", held)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("held request answered %d after approval: %s", code, answer)
		}
		heldDone <- err
	}()
	rec := h.waitPending()

	bodies := make([][]byte, 48)
	for i := range bodies {
		bodies[i] = newBody()
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(bodies))
	for i, b := range bodies {
		wg.Go(func() {
			path, want := fmt.Sprintf("/upload/%d", i), http.StatusOK
			if i%4 == 3 {
				path, want = "/deny", http.StatusForbidden
			}
			code, answer, err := post(path, b)
			if err == nil && code != want {
				err = fmt.Errorf("%s answered %d, want %d: %s", path, code, want, answer)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if _, err := h.broker.Decide(t.Context(), rec.ID, approval.Decision{Approve: true, Approver: "cli:bob", Via: "cli"}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-heldDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the approved request was not answered")
	}

	seen := 0
	for _, r := range h.up.Requests() {
		sum := sha256.Sum256(r.Body)
		if got := hex.EncodeToString(sum[:]); got != r.Header.Get("X-Sum") {
			t.Errorf("%s reached the upstream with a body of %d bytes that is not the one its client sent", r.Path, len(r.Body))
		}
		switch {
		case r.Path == "/deny":
			t.Errorf("a denied upload reached the upstream")
		case r.Path == "/held":
			if !bytes.Equal(r.Body, held) {
				t.Errorf("the held upload reached the upstream changed")
			}
			seen++
		case strings.HasPrefix(r.Path, "/upload/"):
			seen++
		}
	}
	if want := 1 + len(bodies) - len(bodies)/4; seen != want {
		t.Errorf("the upstream saw %d uploads, want %d", seen, want)
	}

	// The hash computed as the bytes arrived is the one of the whole body.
	hashed := 0
	for _, r := range h.decisions() {
		if r.Request == nil || len(r.Request.Headers["x-sum"]) != 1 {
			continue
		}
		if want := r.Request.Headers["x-sum"][0]; r.Request.BodySHA256 != want {
			t.Errorf("decision record for %s: body_sha256 %s, want %s", r.Request.URL, r.Request.BodySHA256, want)
		}
		hashed++
	}
	if want := 1 + len(bodies); hashed != want {
		t.Errorf("%d decision records carry a body hash, want %d", hashed, want)
	}
}

// A released buffer is cleared over its whole capacity: its length was set
// when the first 64 KiB were copied in, and the body was read past it.
func TestReleasedBodyIsClearedWhole(t *testing.T) {
	var pool bodyPool
	secret := bytes.Repeat([]byte("S"), 1<<20)
	got, bb, err := readUpTo(bytes.NewReader(secret), int64(len(secret)), true, &pool, nil)
	if err != nil || !bytes.Equal(got, secret) || bb == nil {
		t.Fatalf("readUpTo: %d bytes, pooled %v, %v", len(got), bb != nil, err)
	}
	c := bb.class
	bb.release()
	pool.mu.Lock()
	free := pool.free[c]
	pool.mu.Unlock()
	if len(free) != 1 {
		t.Fatalf("%d free buffers in the class, want 1", len(free))
	}
	if n := bytes.Count(free[0][:cap(free[0])], []byte("S")); n != 0 {
		t.Errorf("the free buffer still holds %d bytes of the previous body", n)
	}
}

// stallAfter yields n bytes, then fails as a client's stalled body does at
// the idle deadline.
type stallAfter struct{ n int }

func (s *stallAfter) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), s.n)
	s.n -= k
	return k, nil
}

// A large declared length is not allocated on trust: past declaredJump the
// buffer grows with what arrives.
func TestDeclaredLengthIsNotAllocatedOnTrust(t *testing.T) {
	const declared = 256 << 20
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _, _ = readUpTo(&stallAfter{n: 64<<10 + 1}, declared, true, nil, nil)
		}
	})
	if got := allocs.AllocedBytesPerOp(); got > declaredJump {
		t.Errorf("declared %d, 65537 bytes sent: %d bytes allocated, want at most %d", declared, got, declaredJump)
	}
}
