// Package untrusted makes text that came from outside photosync (a master's
// header or error body, a directory's error, a request's header) safe to put
// in a log line, an error message or a terminal: one trimmed line of
// printable characters, bounded in length. It is the one sanitiser every
// package uses.
package untrusted

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DefaultLimit is the length, in characters, Text cuts to when limit is not
// positive.
const DefaultLimit = 300

// Text returns s trimmed, on one line (tabs and line breaks become spaces),
// with every other control character, invalid UTF-8 byte or unprintable
// rune replaced by '?', cut to at most limit characters
// (DefaultLimit when limit <= 0). A cut value ends in "…" so a reader knows
// there was more.
func Text(s string, limit int) string {
	if limit <= 0 {
		limit = DefaultLimit
	}
	s = strings.TrimSpace(s)
	var b strings.Builder
	b.Grow(min(len(s), 4*limit))
	n := 0
	for i := 0; i < len(s); n++ {
		if n == limit {
			b.WriteString("…")
			break
		}
		r, w := utf8.DecodeRuneInString(s[i:])
		i += w
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			r = ' '
		case r == utf8.RuneError || !unicode.IsPrint(r):
			r = '?'
		}
		b.WriteRune(r)
	}
	return b.String()
}
