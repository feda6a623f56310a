package release

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// MaxChannelNameLength is the DNS-1123 label limit.
	MaxChannelNameLength = 63
	// MaxVersionLength bounds a version string (docs/design.md §1).
	MaxVersionLength = 128
	// MaxDatasetNameLength bounds a dataset name; it becomes a directory name.
	MaxDatasetNameLength = 63
	// VersionTimeLayout is the default version format, YYYY-MM-DDThh-mm-ss.
	VersionTimeLayout = "2006-01-02T15-04-05"
)

// ValidateChannelName checks a DNS-1123 label: lower-case alphanumerics and
// '-', starting and ending with an alphanumeric, at most 63 characters. Channel
// names end up in Kubernetes objects, store keys and paths, so the strictest of
// those grammars applies.
func ValidateChannelName(name string) error {
	return validateLabel("channel", name)
}

func validateLabel(field, name string) error {
	switch {
	case name == "":
		return invalid(field, name, "must not be empty")
	case len(name) > MaxChannelNameLength:
		return invalid(field, name, "must be at most %d characters", MaxChannelNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isLowerAlnum(c) && c != '-' {
			return invalid(field, name, "must consist of lower-case letters, digits and '-' (DNS-1123 label)")
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return invalid(field, name, "must start and end with a letter or digit (DNS-1123 label)")
	}
	return nil
}

// ValidateVersion checks the version grammar [A-Za-z0-9][A-Za-z0-9._-]{0,127}.
// A version names a directory on every node, so the first character may not
// be '.' or '-' (no "..", no option-looking names).
func ValidateVersion(v string) error {
	return validateToken("version", v, MaxVersionLength)
}

// ValidateDatasetName checks a dataset name: same alphabet as a version, at
// most 63 characters. It is the directory under current/ that apps read.
func ValidateDatasetName(name string) error {
	return validateToken("name", name, MaxDatasetNameLength)
}

func validateToken(field, v string, limit int) error {
	switch {
	case v == "":
		return invalid(field, v, "must not be empty")
	case len(v) > limit:
		return invalid(field, v, "must be at most %d characters", limit)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := isAlnum(c) || (i > 0 && (c == '.' || c == '_' || c == '-'))
		if !ok {
			return invalid(field, v, "must match [A-Za-z0-9][A-Za-z0-9._-]*")
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

func isAlnum(c byte) bool { return isLowerAlnum(c) || (c >= 'A' && c <= 'Z') }

// NewVersion returns the default version for a publish at t, in UTC.
func NewVersion(t time.Time) string { return t.UTC().Format(VersionTimeLayout) }

// ParseVersionTime reports the time a default-format version stands for.
func ParseVersionTime(v string) (time.Time, bool) {
	if len(v) != len(VersionTimeLayout) {
		return time.Time{}, false
	}
	t, err := time.Parse(VersionTimeLayout, v)
	return t, err == nil
}

// CompareVersions orders version strings for `--version auto`: as timestamps
// when both parse as YYYY-MM-DDThh-mm-ss, otherwise in natural order (digit
// runs compared as numbers, so v9 < v10). Timestamps sort before anything
// else, which keeps a stray non-timestamp prefix from winning over real ones.
// It returns -1, 0 or +1.
func CompareVersions(a, b string) int {
	ta, oka := ParseVersionTime(a)
	tb, okb := ParseVersionTime(b)
	switch {
	case oka && okb:
		return ta.Compare(tb)
	case oka:
		return 1
	case okb:
		return -1
	}
	return naturalCompare(a, b)
}

func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			if c := compareDigits(a[:da], b[:db]); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		a, b = a[1:], b[1:]
	}
	return strings.Compare(a, b)
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}

// compareDigits compares two digit strings as numbers of any length, with
// the shorter spelling first on a tie ("7" before "007") so that the order
// stays total.
func compareDigits(a, b string) int {
	ta, tb := strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(ta) != len(tb) {
		return cmpInt(len(ta), len(tb))
	}
	if c := strings.Compare(ta, tb); c != 0 {
		return c
	}
	return cmpInt(len(a), len(b))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// FormatIndex renders a sequence number so that lexical order of the text is
// numeric order (store keys sort by it).
func FormatIndex(n uint64) string {
	s := strconv.FormatUint(n, 10)
	return strings.Repeat("0", 20-len(s)) + s
}

// IsControl reports the runes that a terminal acts on instead of showing:
// C0 and C1 controls, DEL, the line and paragraph separators, and the
// bidirectional controls that reorder text (U+061C, U+200E–U+200F,
// U+202A–U+202E, U+2066–U+2069). No name, path or reason may carry them,
// and the CLI escapes them in free text.
func IsControl(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r < 0xa0:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x2028 && r <= 0x202e:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// ValidateText checks free text that people read (a pause reason, a pod's
// name): valid UTF-8, at most limit bytes, no control or bidirectional
// characters (IsControl).
func ValidateText(field, s string, limit int) error {
	switch {
	case len(s) > limit:
		return invalid(field, s, "must be at most %d bytes", limit)
	case !utf8.ValidString(s):
		return invalid(field, s, "must be valid UTF-8")
	}
	if i := strings.IndexFunc(s, IsControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return invalid(field, s, "must not contain control or bidirectional characters (U+%04X at byte %d)", r, i)
	}
	return nil
}

// MaxPauseReasonLength bounds the reason an operator gives for a pause.
const MaxPauseReasonLength = 1024

// ValidatePauseReason checks the reason of a pause: empty (the manager
// fills one in) or text without control characters (ValidateText).
func ValidatePauseReason(reason string) error {
	return ValidateText("reason", reason, MaxPauseReasonLength)
}
