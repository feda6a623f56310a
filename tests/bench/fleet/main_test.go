//go:build linux

package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestParseConfig: good flags parse; bad ones are refused naming the flag
// and the value.
func TestParseConfig(t *testing.T) {
	cases := []struct {
		args []string
		want string // error text; "" for none
	}{
		{[]string{"-nodes", "1,8", "-peers", "off,on"}, ""},
		{[]string{"-nodes", "1,x"}, `-nodes "1,x": "x" is not a fleet size`},
		{[]string{"-nodes", "0"}, `-nodes "0"`},
		{[]string{"-peers", "maybe"}, `-peers "maybe": "maybe" is neither off nor on`},
		{[]string{"-size", "0"}, "-size 0: must be positive"},
		{[]string{"-node-rate", "-1"}, "must not be negative"},
		{[]string{"-rounds", "0"}, "-rounds 0"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			cfg, err := parseConfig(fs, tc.args)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("parseConfig: %v", err)
			case tc.want == "":
				if len(cfg.nodes) != 2 || len(cfg.peers) != 2 || !cfg.peers[1] {
					t.Errorf("parsed %+v", cfg)
				}
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Errorf("parseConfig: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// TestVerdict: the goals are judged on the largest fleet with peers on,
// against one node with peers on.
func TestVerdict(t *testing.T) {
	cfg := config{nodes: []int{1, 8}, peers: []bool{false, true}}
	samples := []sample{
		{Nodes: 1, Bytes: 100, LastSec: 10, OriginBytes: 100},
		{Nodes: 8, Bytes: 100, LastSec: 80, OriginBytes: 800},
		{Nodes: 1, Peers: true, Bytes: 100, LastSec: 10, OriginBytes: 100},
		{Nodes: 8, Peers: true, Bytes: 100, LastSec: 14, OriginBytes: 130},
	}
	got := newReport(cfg, samples, "test", 0).verdict()
	if want := "8 nodes: 1.40× (met), 1.30 copies (**not met**)"; got != want {
		t.Errorf("verdict %q, want %q", got, want)
	}
	if got := newReport(cfg, samples[:2], "test", 0).verdict(); !strings.HasPrefix(got, "not measured") {
		t.Errorf("verdict without peers on: %q", got)
	}
}
