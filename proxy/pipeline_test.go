package proxy

import (
	"bytes"
	"testing"
	"testing/iotest"
)

// readUpTo: a declared length is believed only after the first 64 KiB
// arrive, then in one allocation; an undeclared one doubles.
func TestReadUpTo(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, tt := range []struct {
		name     string
		src      []byte
		limit    int64
		declared bool
		wantLen  int
		wantCap  int
	}{
		{"declared, all sent", data, int64(len(data)), true, len(data), len(data)},
		{"declared, nothing sent", nil, int64(len(data)), true, 0, 64 << 10},
		{"declared, stops after 100 KiB", data[:100<<10], int64(len(data)), true, 100 << 10, len(data)},
		{"undeclared, stops at the limit", data, 300 << 10, false, 300 << 10, 300 << 10},
		{"undeclared, short", data[:70<<10], 1 << 20, false, 70 << 10, 128 << 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readUpTo(iotest.HalfReader(bytes.NewReader(tt.src)), tt.limit, tt.declared)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantLen || !bytes.Equal(got, tt.src[:tt.wantLen]) {
				t.Errorf("read %d bytes, want the first %d", len(got), tt.wantLen)
			}
			if cap(got) < tt.wantCap || cap(got) > tt.wantCap+tt.wantCap/4 { // size classes round up
				t.Errorf("buffer of %d bytes, want about %d", cap(got), tt.wantCap)
			}
		})
	}
}
