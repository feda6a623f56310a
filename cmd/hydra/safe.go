package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hydra-csi/hydra/pkg/release"
)

// safe makes text that publishers, nodes or the manager control fit to
// print on an operator's terminal. C0 and C1 controls, DEL, bytes that are
// not UTF-8, line and paragraph separators and the bidirectional controls
// are written as Go escapes (\x1b, \u202e), so an escape sequence cannot
// clear or retitle the screen, move the cursor, or reorder what is shown.
// A backslash is left as it is: the escapes are for reading, not parsing.
func safe(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r < 0x80 && release.IsControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case release.IsControl(r):
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
	return strings.IndexFunc(s, release.IsControl) >= 0
}

// safeJSON rewrites the controls that encoding/json leaves raw (DEL, C1
// and the bidirectional controls; it escapes C0 in strings itself, and
// the C0 outside strings is the document's layout) as \uXXXX. They can
// only stand inside JSON strings, where the escape means the same
// character, so a script decodes the same document.
func safeJSON(doc []byte) []byte {
	if !hasRawControl(doc) {
		return doc
	}
	var b bytes.Buffer
	for _, r := range string(doc) {
		if rawControl(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.Bytes()
}

// rawControl reports the controls that encoding/json and YAML emitters
// leave raw in strings: DEL, C1 and the bidirectional controls.
func rawControl(r rune) bool { return r >= 0x7f && release.IsControl(r) }

func hasRawControl(doc []byte) bool { return bytes.IndexFunc(doc, rawControl) >= 0 }
