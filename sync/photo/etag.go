package photo

import "strings"

// MaxETag is the longest entity-tag a source's ETag header may carry and
// still be kept: it goes back to the master in If-None-Match, and front
// ends refuse long request heads (http.sys: 16 KiB for the whole head).
const MaxETag = 256

// ParseETag returns the opaque part of an ETag header value (what Result.ETag
// holds) when the value is one entity-tag as RFC 9110, section 8.8.3 writes
// it: an optional W/, then DQUOTE, etagc characters (%x21 / %x23-7E /
// obs-text: no space, no DQUOTE, no control), DQUOTE; and at most MaxETag
// bytes. Anything else (a list, a bare *, no quotes, too long) is not an
// entity-tag and ok is false: the photo is then stored without one.
func ParseETag(v string) (opaque string, ok bool) {
	v = strings.Trim(v, " \t")
	if len(v) > MaxETag {
		return "", false
	}
	v = strings.TrimPrefix(v, "W/")
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	opaque = v[1 : len(v)-1]
	if !ValidOpaqueETag(opaque) {
		return "", false
	}
	return opaque, true
}

// ValidOpaqueETag reports whether s can stand between an entity-tag's
// quotes (RFC 9110's etagc) and the whole fits within MaxETag.
func ValidOpaqueETag(s string) bool {
	if len(s)+2 > MaxETag {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == '"' || c == 0x7F {
			return false
		}
	}
	return true
}
