package release_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hydra-csi/hydra/pkg/release"
)

func TestValidateChannelName(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		reason string // empty with bad=false: must be accepted
		bad    bool
	}{
		{name: "single letter", in: "a"},
		{name: "single digit", in: "0"},
		{name: "dashes inside", in: "search-index"},
		{name: "double dash inside", in: "a--b"},
		{name: "digits and letters", in: "0a-9z"},
		{name: "63 chars", in: strings.Repeat("a", 63)},
		{name: "63 chars mixed", in: "a" + strings.Repeat("-", 61) + "0"},
		{name: "empty", in: "", bad: true, reason: "must not be empty"},
		{name: "64 chars", in: strings.Repeat("a", 64), bad: true, reason: "at most 63"},
		{name: "upper case", in: "Search", bad: true, reason: "lower-case"},
		{name: "underscore", in: "a_b", bad: true, reason: "lower-case"},
		{name: "dot", in: "a.b", bad: true, reason: "lower-case"},
		{name: "space", in: "a b", bad: true, reason: "lower-case"},
		{name: "slash", in: "a/b", bad: true, reason: "lower-case"},
		{name: "leading dash", in: "-a", bad: true, reason: "start and end"},
		{name: "trailing dash", in: "a-", bad: true, reason: "start and end"},
		{name: "only dash", in: "-", bad: true, reason: "start and end"},
		{name: "unicode", in: "café", bad: true, reason: "lower-case"},
		{name: "NUL", in: "a\x00", bad: true, reason: "lower-case"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := release.ValidateChannelName(tc.in)
			if tc.bad {
				checkErr(t, err, "channel", tc.reason)
				return
			}
			checkErr(t, err, "", tc.reason)
		})
	}
}

// tokenCases are shared by ValidateVersion and ValidateDatasetName, which
// have the same alphabet and differ only in length limit and field name.
var tokenCases = []struct {
	name string
	in   string
	ok   bool
}{
	{name: "default timestamp", in: "2024-05-01T12-30-00", ok: true},
	{name: "semver with suffix", in: "v1.2.3_rc-1", ok: true},
	{name: "single char", in: "a", ok: true},
	{name: "digit first", in: "1", ok: true},
	{name: "upper case", in: "Models", ok: true},
	{name: "dots inside", in: "a..b", ok: true},
	{name: "empty", in: ""},
	{name: "hidden", in: ".hidden"},
	{name: "leading dash", in: "-x"},
	{name: "leading underscore", in: "_x"},
	{name: "dot dot", in: ".."},
	{name: "dot", in: "."},
	{name: "slash", in: "a/b"},
	{name: "backslash", in: `a\b`},
	{name: "NUL", in: "a\x00b"},
	{name: "space", in: "a b"},
	{name: "unicode", in: "vé"},
	{name: "placeholder", in: "{VERSION}"},
}

func TestValidateVersion(t *testing.T) {
	for _, tc := range tokenCases {
		t.Run(tc.name, func(t *testing.T) {
			err := release.ValidateVersion(tc.in)
			if tc.ok {
				checkErr(t, err, "", "")
				return
			}
			checkErr(t, err, "version", "")
		})
	}
	t.Run("128 chars", func(t *testing.T) {
		checkErr(t, release.ValidateVersion(strings.Repeat("v", 128)), "", "")
	})
	t.Run("129 chars", func(t *testing.T) {
		long := strings.Repeat("v", 129)
		err := release.ValidateVersion(long)
		checkErr(t, err, "version", "at most 128")
		// The quoted value is capped so hostile input cannot bloat logs.
		if strings.Contains(err.Error(), long) {
			t.Errorf("error %q quotes the whole 129-byte value", err)
		}
	})
}

func TestValidateDatasetName(t *testing.T) {
	for _, tc := range tokenCases {
		t.Run(tc.name, func(t *testing.T) {
			err := release.ValidateDatasetName(tc.in)
			if tc.ok {
				checkErr(t, err, "", "")
				return
			}
			checkErr(t, err, "name", "")
		})
	}
	for _, n := range []int{63, 64, 129} {
		t.Run(strconv.Itoa(n)+" chars", func(t *testing.T) {
			err := release.ValidateDatasetName(strings.Repeat("d", n))
			if n <= release.MaxDatasetNameLength {
				checkErr(t, err, "", "")
				return
			}
			checkErr(t, err, "name", "at most 63")
		})
	}
}

func TestValidateNodeName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "simple", in: "node-1", ok: true},
		{name: "subdomain", in: "ip-10-0-0-1.eu-west-1.compute.internal", ok: true},
		{name: "single char", in: "a", ok: true},
		{name: "253 chars", in: strings.Repeat("a", 253), ok: true},
		{name: "empty", in: ""},
		{name: "254 chars", in: strings.Repeat("a", 254)},
		{name: "upper case", in: "Node-1"},
		{name: "underscore", in: "node_1"},
		{name: "leading dash", in: "-node"},
		{name: "trailing dot", in: "node."},
		{name: "leading dot", in: ".node"},
		{name: "slash", in: "a/b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := release.ValidateNodeName(tc.in)
			if tc.ok {
				checkErr(t, err, "", "")
				return
			}
			checkErr(t, err, "node", "")
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{name: "timestamps by second", a: "2024-01-02T03-04-05", b: "2024-01-02T03-04-06", want: -1},
		{name: "timestamps across year", a: "2023-12-31T23-59-59", b: "2024-01-01T00-00-00", want: -1},
		{name: "timestamps by hour", a: "2024-01-02T09-00-00", b: "2024-01-02T10-00-00", want: -1},
		{name: "equal timestamps", a: "2024-01-02T03-04-05", b: "2024-01-02T03-04-05", want: 0},
		{name: "v9 before v10", a: "v9", b: "v10", want: -1},
		{name: "v10 before v10a", a: "v10", b: "v10a", want: -1},
		{name: "v9 before v10a", a: "v9", b: "v10a", want: -1},
		{name: "numbers", a: "9", b: "10", want: -1},
		{name: "dotted", a: "1.9", b: "1.10", want: -1},
		{name: "semver", a: "v1.2.3", b: "v1.10.0", want: -1},
		{name: "release-n", a: "release-2", b: "release-10", want: -1},
		{name: "7 before 007", a: "7", b: "007", want: -1},
		{name: "007 before 8", a: "007", b: "8", want: -1},
		{name: "v07 before v7a", a: "v07", b: "v7a", want: 1},
		{name: "big numbers", a: "v99999999999999999999998", b: "v99999999999999999999999", want: -1},
		{name: "timestamp after non-timestamp", a: "2099-01-01T00-00-00", b: "0", want: 1},
		{name: "stray directory never newest", a: "tmp", b: "2024-01-01T00-00-00", want: -1},
		{name: "timestamp after v1", a: "2024-01-01T00-00-00", b: "v1", want: 1},
		{name: "invalid month is not a timestamp", a: "2024-01-01T00-00-00", b: "2024-13-01T00-00-00", want: 1},
		{name: "prefix first", a: "a", b: "a1", want: -1},
		{name: "letters", a: "a", b: "b", want: -1},
		{name: "empty first", a: "", b: "a", want: -1},
		{name: "equal", a: "v1", b: "v1", want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := release.CompareVersions(tc.a, tc.b); got != tc.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
			if got := release.CompareVersions(tc.b, tc.a); got != -tc.want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
			}
		})
	}
}

// sortedVersions is in the order CompareVersions must produce: timestamps by
// everything else in natural order first, then timestamps by time.
var sortedVersions = []string{
	"",
	"0",
	"00",
	"1",
	"1.2",
	"1.10",
	"01", // equal digit runs: the shorter spelling first, decided at that run
	"001",
	"2",
	"7",
	"007",
	"9",
	"10",
	"2024-13-01T00-00-00", // not a valid timestamp: natural order
	"a",
	"a1",
	"a2",
	"a10",
	"b",
	"release-2",
	"release-10",
	"v1.2.3",
	"v1.10.0",
	"v9",
	"v10",
	"v10a",
	"v10b",
	"v11",
	"2019-12-15T00-00-00",
	"2023-12-31T23-59-59",
	"2024-01-01T00-00-00",
	"2024-01-01T00-00-01",
	"2024-02-29T12-00-00",
}

func TestCompareVersionsTotalOrder(t *testing.T) {
	for i, a := range sortedVersions {
		for j, b := range sortedVersions {
			got, back := release.CompareVersions(a, b), release.CompareVersions(b, a)
			if got != -back {
				t.Errorf("antisymmetry: Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, got, b, a, back)
			}
			if want := cmpIndex(i, j); got != want {
				t.Errorf("Compare(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func cmpIndex(i, j int) int {
	switch {
	case i < j:
		return -1
	case i > j:
		return 1
	}
	return 0
}

func TestCompareVersionsSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		shuffled := slices.Clone(sortedVersions)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		stable := slices.Clone(shuffled)
		slices.SortStableFunc(stable, release.CompareVersions)
		if !slices.Equal(stable, sortedVersions) {
			t.Fatalf("round %d: SortStableFunc gave %q, want %q", round, stable, sortedVersions)
		}
		unstable := slices.Clone(shuffled)
		slices.SortFunc(unstable, release.CompareVersions)
		if !slices.Equal(unstable, sortedVersions) {
			t.Fatalf("round %d: SortFunc gave %q, want %q", round, unstable, sortedVersions)
		}
	}
}

func TestCompareVersionsFollowsTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 200 {
		ta := base.Add(time.Duration(rng.Int64N(int64(100 * 365 * 24 * time.Hour))))
		tb := base.Add(time.Duration(rng.Int64N(int64(100 * 365 * 24 * time.Hour))))
		a, b := release.NewVersion(ta), release.NewVersion(tb)
		want := ta.Truncate(time.Second).Compare(tb.Truncate(time.Second))
		if got := release.CompareVersions(a, b); got != want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", a, b, got, want)
		}
	}
}

func TestNewVersionParseVersionTime(t *testing.T) {
	tests := []struct {
		name string
		in   time.Time
		want string
	}{
		{name: "utc", in: time.Date(2019, 12, 15, 0, 0, 0, 0, time.UTC), want: "2019-12-15T00-00-00"},
		{name: "other zone converted to UTC", in: time.Date(2024, 5, 1, 12, 30, 45, 0, time.FixedZone("CEST", 2*3600)), want: "2024-05-01T10-30-45"},
		{name: "sub-second dropped", in: time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC), want: "2024-02-29T23-59-59"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := release.NewVersion(tc.in)
			if v != tc.want {
				t.Fatalf("NewVersion = %q, want %q", v, tc.want)
			}
			checkErr(t, release.ValidateVersion(v), "", "")
			got, ok := release.ParseVersionTime(v)
			if !ok {
				t.Fatalf("ParseVersionTime(%q) not ok", v)
			}
			if want := tc.in.UTC().Truncate(time.Second); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("ParseVersionTime(%q) = %v, want %v in UTC", v, got, want)
			}
		})
	}
}

func TestParseVersionTimeRejects(t *testing.T) {
	for _, v := range []string{
		"",
		"v1",
		"2024-05-01T10-30-4",
		"2024-05-01T10-30-45Z",
		"2024-05-01T10-30-45.5",
		"2024-05-01 10-30-45",
		"2024-05-01T10:30:45",
		"2024-02-30T00-00-00",
		"2024-13-01T00-00-00",
		"2024-01-01T24-00-00",
		"2024-01-02T1-04-05x",
	} {
		t.Run(v, func(t *testing.T) {
			if got, ok := release.ParseVersionTime(v); ok {
				t.Errorf("ParseVersionTime(%q) = %v, true; want false", v, got)
			}
		})
	}
}

func TestFormatIndex(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "00000000000000000000"},
		{1, "00000000000000000001"},
		{42, "00000000000000000042"},
		{math.MaxUint64, "18446744073709551615"},
	}
	for _, tc := range tests {
		t.Run(strconv.FormatUint(tc.in, 10), func(t *testing.T) {
			if got := release.FormatIndex(tc.in); got != tc.want {
				t.Errorf("FormatIndex(%d) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	t.Run("lexical order is numeric order", func(t *testing.T) {
		nums := []uint64{0, 1, 2, 9, 10, 11, 99, 100, 1000, 1 << 32, 1<<63 - 1, 1 << 63, math.MaxUint64}
		keys := make([]string, len(nums))
		for i, n := range nums {
			keys[i] = release.FormatIndex(n)
			if len(keys[i]) != 20 {
				t.Errorf("FormatIndex(%d) = %q has %d chars, want 20", n, keys[i], len(keys[i]))
			}
			if back, err := strconv.ParseUint(keys[i], 10, 64); err != nil || back != n {
				t.Errorf("ParseUint(%q) = %d, %v; want %d", keys[i], back, err, n)
			}
		}
		if !sort.StringsAreSorted(keys) {
			t.Errorf("keys not in lexical order: %q", keys)
		}
	})
}
