package web

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// identityWarnEvery is how often a trusted identity header that is not an
// address is logged: it is a configuration problem, so every request
// carries it, and a line a minute is enough to find it.
const identityWarnEvery = time.Minute

// identityWarning rate-limits the warning about identity values that are
// not addresses. Safe for concurrent use.
type identityWarning struct {
	next atomic.Int64 // unix nanoseconds before which nothing is logged
}

// due reports whether a warning may be logged at now, and if so takes the
// slot for the next minute.
func (w *identityWarning) due(now time.Time) bool {
	next := w.next.Load()
	if now.UnixNano() < next {
		return false
	}
	return w.next.CompareAndSwap(next, now.Add(identityWarnEvery).UnixNano())
}

// warnNotAddress logs, at most once a minute, that the identity header held
// raw, which is not an address: what it looks like (never the value itself:
// it may be a token) and what to set instead.
func (h *Handler) warnNotAddress(raw string) {
	if !h.identityWarn.due(time.Now()) {
		return
	}
	h.log.Warn("identity header is not an email address: its requests are anonymous",
		"header", h.opts.IdentityHeader,
		"value", valueShape(raw),
		"fix", identityFix(h.opts.IdentityHeader))
}

// valueShape describes what v looks like without repeating it: "opaque
// token of 36 characters", "malformed address of 19 characters", …
func valueShape(v string) string {
	v = strings.TrimSpace(v)
	n := strconv.Itoa(len([]rune(v))) + " characters"
	switch {
	case strings.ContainsRune(v, ','):
		return "list of " + strconv.Itoa(strings.Count(v, ",")+1) + " values, " + n
	case strings.ContainsRune(v, '@'):
		return "malformed address of " + n
	case strings.ContainsAny(v, " \t"):
		return "text with spaces of " + n
	case strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == "" && len(v) <= 64 &&
		!strings.ContainsAny(v, "0123456789"):
		return "user name of " + n
	}
	return "opaque token of " + n
}

// identityFix says which header to trust instead.
func identityFix(header string) string {
	const fix = "set identity.header to the header carrying the viewer's email: X-Forwarded-Email behind oauth2-proxy " +
		"in upstream mode, or the header nginx sets from X-Auth-Request-Email in auth_request mode (see deploy/oauth2-proxy)"
	switch strings.ToLower(header) {
	case "x-forwarded-user", "x-auth-request-user":
		return "this header carries oauth2-proxy's user (the OIDC subject, or the htpasswd login), not an email; " + fix
	}
	return fix
}
