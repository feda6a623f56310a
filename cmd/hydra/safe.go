package main

import (
	"bytes"
	"fmt"

	"github.com/hydra-csi/hydra/pkg/release"
)

// safe escapes text that publishers, nodes or the manager control before
// it is printed (release.EscapeControls), short for the many print sites.
func safe(s string) string { return release.EscapeControls(s) }

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
