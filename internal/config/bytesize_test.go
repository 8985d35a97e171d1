package config

import (
	"math"
	"testing"
)

var byteSizeTests = []struct {
	give    string
	want    ByteSize
	wantErr bool
}{
	{give: "1048576", want: MiB},
	{give: "0", want: 0},
	{give: "1MiB", want: MiB},
	{give: "512KiB", want: 512 * KiB},
	{give: "1 MiB", want: MiB},
	{give: "1mib", want: MiB},
	{give: "2GiB", want: 2 * GiB},
	{give: "1TiB", want: TiB},
	{give: "10MB", want: 10_000_000},
	{give: "10mb", want: 10_000_000},
	{give: "64kB", want: 64_000},
	{give: "64KB", want: 64_000},
	{give: "1GB", want: 1_000_000_000},
	{give: "100B", want: 100},
	{give: "1.5MiB", want: 3 * MiB / 2},
	{give: "0.5KiB", want: 512},
	{give: "9223372036854775807", want: math.MaxInt64},
	{give: "", wantErr: true},
	{give: "MiB", wantErr: true},
	{give: "-1MiB", wantErr: true},
	{give: "1.5", wantErr: true},
	{give: "1.", wantErr: true},
	{give: ".5MiB", wantErr: true},
	{give: "1e3", wantErr: true},
	{give: "0x10", wantErr: true},
	{give: "1 megabyte", wantErr: true},
	{give: "1MiB extra", wantErr: true},
	{give: "9223372036854775808", wantErr: true},
	{give: "9007199254740992KiB", wantErr: true},
	{give: "99999999999TiB", wantErr: true},
	{give: "9999999999.5TiB", wantErr: true},
}

func TestParseByteSize(t *testing.T) {
	for _, tt := range byteSizeTests {
		got, err := ParseByteSize(tt.give)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseByteSize(%q) error = %v, wantErr %v", tt.give, err, tt.wantErr)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, want %d", tt.give, got, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		give ByteSize
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1500, "1500B"},
		{KiB, "1KiB"},
		{MiB, "1MiB"},
		{512 * KiB, "512KiB"},
		{3 * MiB / 2, "1536KiB"},
		{10_000_000, "10MB"},
		{64_000, "64kB"},
		{GiB, "1GiB"},
		{-KiB, "-1KiB"},
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tt.give), got, tt.want)
		}
		// String's output parses back to the same size.
		if tt.give >= 0 {
			if back, err := ParseByteSize(tt.give.String()); err != nil || back != tt.give {
				t.Errorf("ParseByteSize(%q) = %d, %v, want %d", tt.give.String(), back, err, tt.give)
			}
		}
	}
}

func TestByteSizeText(t *testing.T) {
	var b ByteSize
	if err := b.UnmarshalText([]byte("2MiB")); err != nil || b != 2*MiB {
		t.Errorf("UnmarshalText(2MiB) = %d, %v, want %d", b, err, 2*MiB)
	}
	if err := b.UnmarshalText([]byte("lots")); err == nil {
		t.Errorf("UnmarshalText(lots) error = nil, want error")
	}
	if got, _ := (2 * MiB).MarshalText(); string(got) != "2MiB" {
		t.Errorf("MarshalText() = %q, want 2MiB", got)
	}
}
