package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// jsonFrame is one open object or array while walking a JSON document.
type jsonFrame struct {
	array   bool
	index   int    // the current element of an array; -1 before the first
	key     string // the current member of an object
	wantKey bool   // the next string token of an object is a key
}

// walkJSON calls visit for every object key and every value of body, in
// document order, with the path to it and the offset where its token
// ends, until visit returns true. It returns the path visit stopped at,
// or "" when it never did (or body is not JSON).
func walkJSON(body []byte, visit func(key bool, tok json.Token, end int64) bool) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	var stack []jsonFrame
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.wantKey {
			top.key, top.wantKey = s, false
			if visit(true, tok, dec.InputOffset()) {
				return joinPath(stack)
			}
			continue
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && !stack[len(stack)-1].array {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		// tok starts a value: a leaf, or an object or array it opens.
		if top != nil && top.array {
			top.index++
		}
		if visit(false, tok, dec.InputOffset()) {
			return joinPath(stack)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, jsonFrame{wantKey: true})
		case json.Delim('['):
			stack = append(stack, jsonFrame{array: true, index: -1})
		default:
			if top != nil && !top.array {
				top.wantKey = true
			}
		}
	}
}

// fieldPath is the path, with array indices, of the value of body that
// ends at or after byte offset: "datasets[0].manifest.files[3].size".
// encoding/json's own UnmarshalTypeError.Field names struct fields only
// ("datasets.manifest.files.size"), which does not say which entry.
func fieldPath(body []byte, offset int64) string {
	return walkJSON(body, func(key bool, _ json.Token, end int64) bool { return !key && end >= offset })
}

// keyPath is the path of the first member of body named name. An unknown
// field error names the key alone; the decoder stops at the first one in
// document order, which this finds (a known field of the same name
// earlier in the body would be taken for it).
func keyPath(body []byte, name string) string {
	return walkJSON(body, func(key bool, tok json.Token, _ int64) bool { return key && tok == name })
}

func joinPath(stack []jsonFrame) string {
	var b strings.Builder
	for _, f := range stack {
		if f.array {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	return b.String()
}
