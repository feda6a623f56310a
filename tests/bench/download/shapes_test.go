package main

import (
	"slices"
	"testing"
)

func TestParseShapes(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    []string
		wantErr bool
	}{
		{spec: "full", want: []string{"1x2GiB", "16x256MiB", "2000x1MiB", "10000x64KiB"}},
		{spec: "small", want: []string{"1x256MiB", "4x64MiB", "200x1MiB", "1000x64KiB"}},
		{spec: "4x64MiB, 100x1MiB", want: []string{"4x64MiB", "100x1MiB"}},
		{spec: "3x1000", want: []string{"3x1000B"}},
		{spec: "2x1536KiB", want: []string{"2x1536KiB"}},
		{spec: "x1MiB", wantErr: true},
		{spec: "0x1MiB", wantErr: true},
		{spec: "3x-1MiB", wantErr: true},
		{spec: "3xMiB", wantErr: true},
		{spec: "huge", wantErr: true},
		{spec: "", wantErr: true},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := parseShapes(tc.spec)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseShapes(%q) error %v, want error %t", tc.spec, err, tc.wantErr)
			}
			var names []string
			for _, s := range got {
				names = append(names, s.Name())
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("parseShapes(%q) = %v, want %v", tc.spec, names, tc.want)
			}
		})
	}
}

func TestShapeBytesAndID(t *testing.T) {
	s := shape{16, 256 << 20}
	if s.Bytes() != 4<<30 || s.ID() != "16x256mib" || channelOf(s) != "bench-16x256mib" {
		t.Fatalf("shape %s: %d bytes, id %s, channel %s", s.Name(), s.Bytes(), s.ID(), channelOf(s))
	}
}
