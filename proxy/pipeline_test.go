package proxy

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// readUpTo: a declared length is believed only after the first 64 KiB
// arrive, then in one allocation; an undeclared one doubles. With a pool,
// buffers past 64 KiB are pooled ones, of the pool's capacities, and the
// body handed back is cut to its length.
func TestReadUpTo(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, tt := range []struct {
		name          string
		src           []byte
		limit         int64
		declared      bool
		wantLen       int
		wantCap       int
		wantPooledCap int // 0: not pooled
	}{
		{"declared, all sent", data, int64(len(data)), true, len(data), len(data), 1 << 20},
		{"declared, nothing sent", nil, int64(len(data)), true, 0, 64 << 10, 0},
		{"declared, stops after 100 KiB", data[:100<<10], int64(len(data)), true, 100 << 10, len(data), 1 << 20},
		{"declared, small", data[:1000], 1000, true, 1000, 1000, 0},
		{"undeclared, stops at the limit", data, 300 << 10, false, 300 << 10, 300 << 10, 320 << 10},
		{"undeclared, short", data[:70<<10], 1 << 20, false, 70 << 10, 128 << 10, 128 << 10},
		{"undeclared, past the pooled sizes", bytes.Repeat(data, 10), 9 << 20, false, 9 << 20, 9 << 20, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, pooled := range []bool{false, true} {
				var pool *bodyPool
				if pooled {
					pool = &bodyPool{}
				}
				got, bb, err := readUpTo(iotest.HalfReader(bytes.NewReader(tt.src)), tt.limit, tt.declared, pool)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tt.wantLen || !bytes.Equal(got, tt.src[:tt.wantLen]) {
					t.Errorf("pooled=%v: read %d bytes, want the first %d", pooled, len(got), tt.wantLen)
				}
				switch {
				case pooled && tt.wantPooledCap != 0:
					if bb == nil || cap(bb.b) != tt.wantPooledCap || (len(got) > 0 && &bb.b[:1][0] != &got[:1][0]) {
						t.Errorf("the buffer is not a pooled one of %d bytes (bodyBuf %v)", tt.wantPooledCap, bb)
					}
					if cap(got) != len(got) {
						t.Errorf("the body reaches %d bytes past its length into the pooled buffer", cap(got)-len(got))
					}
				case bb != nil:
					t.Errorf("pooled=%v: a pooled buffer for a %d-byte buffer", pooled, cap(got))
				default:
					if cap(got) < tt.wantCap || cap(got) > tt.wantCap+tt.wantCap/4 { // size classes round up
						t.Errorf("pooled=%v: buffer of %d bytes, want about %d", pooled, cap(got), tt.wantCap)
					}
				}
				bb.release()
			}
		})
	}
}

// A read that fails gives its pooled buffer back, and returns none.
func TestReadUpToErrorReleases(t *testing.T) {
	pool := &bodyPool{}
	src := io.MultiReader(bytes.NewReader(make([]byte, 200<<10)), iotest.ErrReader(errors.New("reset")))
	got, bb, err := readUpTo(src, 1<<20, true, pool)
	if err == nil || got != nil || bb != nil {
		t.Fatalf("readUpTo = %d bytes, %v, %v; want an error and nothing else", len(got), bb, err)
	}
}
