package release

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// EscapeControls makes text that publishers, nodes or the manager control
// fit to print on a terminal or to hand to one that prints it (the CLI, a
// Kubernetes Event). C0 and C1 controls, DEL, bytes that are
// not UTF-8, line and paragraph separators and the bidirectional controls
// are written as Go escapes (\x1b, \u202e), so an escape sequence cannot
// clear or retitle the screen, move the cursor, or reorder what is shown.
// A backslash is left as it is: the escapes are for reading, not parsing.
func EscapeControls(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case IsControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.IndexFunc(s, IsControl) >= 0
}
