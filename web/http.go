// Package web is photosync's public HTTP face, and the only package that
// speaks HTTP to browsers: it works out who is asking (the identity header,
// believed only from trusted proxies), parses each URL dialect photosync
// answers — its own /photos/, SharePoint's userphoto.aspx, Exchange's EWS
// REST photo URL and Microsoft Graph's — into an owner and a size, asks the
// engine (photosync/sync) for the photo, and writes it with the same
// validators and caching headers whichever URL asked. It also serves the
// placeholder image, the people page, health and readiness, and, in sidecar
// mode, passes every other request to the application behind it.
//
// Every URL is declared once, in the route table of routes.go;
// Handler.ServeRoute names the route each request took, for the request
// metrics.
package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	psync "photosync/sync"
	"photosync/sync/photo"
)

// Person is one entry of the optional people page.
type Person struct {
	Email string
	Name  string
}

// An EditURLer finds the page where a signed-in viewer changes their photo
// (for Exchange: the viewer's ExternalEcpPhotoUrl, Outlook on the web's
// photo upload page). It is called once per /photos/edit request, on the
// request's ctx, so it should answer from a cache when it can. An error
// that wraps photo.ErrNoEditURL says the viewer's settings were
// found but name no upload page; any other error, that they could not be
// found.
type EditURLer interface {
	EditURL(ctx context.Context, viewer string) (string, error)
}

// DefaultIdentityHeader carries the viewer unless Options.IdentityHeader
// names another (identity.header).
const DefaultIdentityHeader = "X-Forwarded-Email"

// Options configures the HTTP face of an Engine.
type Options struct {
	// IdentityHeader carries the signed-in viewer's address, set by the
	// reverse proxy in front. Default: X-Forwarded-Email.
	IdentityHeader string
	// TrustedProxies are the peers whose IdentityHeader is believed; from
	// anyone else it is removed and the viewer is anonymous.
	TrustedProxies []netip.Prefix
	// Edit finds the viewer's photo upload page for /photos/edit. Nil:
	// /photos/edit answers 503.
	Edit EditURLer
	// Metadata serves our auth metadata document at
	// /_layouts/15/metadata/json/1. Nil: that path is not ours.
	Metadata http.Handler
	// People, when set, are listed on a people page at /.
	People []Person
	// Placeholder is what userphoto.aspx shows for a person without a
	// photo: PlaceholderSilhouette or PlaceholderInitials. Default:
	// PlaceholderSilhouette.
	Placeholder string
	// Ready reports whether the store answers, for /readyz. Nil: ready.
	Ready func(ctx context.Context) error
	// Upstream, when set, is the application photosync stands in front of
	// (sidecar mode): every request that is not for one of photosync's
	// routes is passed to it unchanged, streaming and websockets included.
	// Only its scheme and host are used.
	Upstream *url.URL
	// Logger receives one line per request, at debug level (info with
	// AccessLog). Nil: discard.
	Logger *slog.Logger
	// AccessLog logs every request at info level: status, bytes,
	// Cache-Status, elapsed, request id and route (log.access).
	AccessLog bool
}

type viewerKey struct{}

// ViewerFrom returns the viewer a request was made by, "" when anonymous.
func ViewerFrom(ctx context.Context) string {
	v, _ := ctx.Value(viewerKey{}).(string)
	return v
}

// Handler is the HTTP handler serving an engine's photos. Safe for
// concurrent use.
type Handler struct {
	engine       *psync.Engine
	opts         Options
	log          *slog.Logger
	placeholders map[string][]byte
	initials     *initialsRenderer // nil unless Options.Placeholder is PlaceholderInitials
	echo         *echo.Echo
	// names maps each route's Echo path to its name.
	names map[string]string
	// serve is the middleware chain around the handler Echo's router
	// found, built once: Echo's Use would build it again, three closures,
	// on every request.
	serve echo.HandlerFunc
	// identityWarn limits the warning about identity values that are not
	// addresses to one a minute.
	identityWarn identityWarning
}

// New returns the handler serving e's photos at the URLs of routes.go.
func New(e *psync.Engine, opts Options) *Handler {
	if e == nil {
		panic("web: New needs an engine")
	}
	if opts.IdentityHeader == "" {
		opts.IdentityHeader = DefaultIdentityHeader
	}
	// Canonical once, so that each request reads it with a map look-up.
	opts.IdentityHeader = http.CanonicalHeaderKey(opts.IdentityHeader)
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{engine: e, opts: opts, log: log, placeholders: newPlaceholders(), names: map[string]string{}}
	if opts.Placeholder == PlaceholderInitials {
		h.initials = newInitialsRenderer()
	}

	ec := echo.New()
	ec.HideBanner, ec.HidePort = true, true
	ec.HTTPErrorHandler = h.handleError
	for _, r := range h.routes() {
		ec.Match(r.methods, r.path, r.handle)
		h.names[r.path] = r.name
	}
	// The handler the router found (a route's, or Echo's 404 or 405).
	found := func(c echo.Context) error { return c.Handler()(c) }
	if opts.Upstream != nil {
		found = h.sidecar(ec, opts.Upstream)(found)
	}
	h.serve = h.recoverPanics(h.logRequests(h.identify(found)))
	h.echo = ec
	return h
}

// ServeHTTP answers r; ServeRoute says how.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.ServeRoute(w, r) }

// ServeRoute answers r and names the route it took, for the request
// metrics: a name from the table of routes.go (also when the method is
// wrong for it), "upstream" for a request passed to the application in
// sidecar mode, "other" for anything else. The name comes from the routing
// that served r, so that counting a request routes it only once.
//
// It does what Echo's ServeHTTP does (a pooled context, the route found
// before any middleware runs, one error handler), but runs the middleware
// chain built in New instead of building one per request.
func (h *Handler) ServeRoute(w http.ResponseWriter, r *http.Request) string {
	c := h.echo.AcquireContext()
	c.Reset(r, w)
	h.echo.Router().Find(r.Method, echo.GetPath(r), c)
	if err := h.serve(c); err != nil {
		h.echo.HTTPErrorHandler(err, c)
	}
	route := h.routeOf(c.Path())
	h.echo.ReleaseContext(c)
	return route
}

// identify believes the identity header only from a trusted proxy, and
// removes it otherwise so nothing downstream can read it by mistake. A
// trusted value that is not an address makes the request anonymous, and
// warnNotAddress says why.
func (h *Handler) identify(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		raw := field(r.Header, h.opts.IdentityHeader)
		if raw == "" {
			return next(c)
		}
		if !h.trusted(r.RemoteAddr) {
			r.Header.Del(h.opts.IdentityHeader)
			return next(c)
		}
		viewer, err := photo.NormalizeEmail(strings.TrimSpace(raw))
		if err != nil {
			// Not an address (an opaque subject, a login name): this
			// request is anonymous, and stored photos are still served.
			// The header stays: it came from the proxy, and an application
			// behind photosync may read it.
			h.warnNotAddress(raw)
			return next(c)
		}
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), viewerKey{}, viewer)))
		return next(c)
	}
}

// viewer is ViewerFrom(c's request context). With no trusted proxy no
// request has a viewer, and it does not walk the context chain to say so:
// that walk was a visible part of a hit's cost.
func (h *Handler) viewer(c echo.Context) string {
	if len(h.opts.TrustedProxies) == 0 {
		return ""
	}
	return ViewerFrom(c.Request().Context())
}

func (h *Handler) trusted(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range h.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// native serves GET /photos/{email}?size=….
func (h *Handler) native(c echo.Context) error {
	param, err := pathParam(c, "email")
	if err != nil {
		return errNotPhotoPath
	}
	owner, err := photo.NormalizeEmail(param)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, err.Error())
	}
	size := photo.DefaultSize
	if s := queryValue(c, "size"); s != "" {
		var ok bool
		if size, ok = photo.CanonicalSize(s); !ok {
			return errUnknownSize
		}
	}
	p, err := h.engine.Photo(c.Request().Context(), owner, size, h.viewer(c))
	if errors.Is(err, psync.ErrNoPhoto) {
		c.Response().Header().Set("Cache-Control", "no-cache")
		c.Response().Header().Set("Cache-Status", cacheStatus(answer{Photo: p}))
		return errNoPhoto
	}
	if err != nil {
		return err
	}
	return writePhoto(c, answer{Photo: p})
}

// sharePoint serves SharePoint's /_layouts/15/userphoto.aspx.
func (h *Handler) sharePoint(c echo.Context) error {
	account := queryValue(c, "accountname")
	if account == "" {
		account = queryValue(c, "username")
	}
	owner, err := photo.AccountEmail(account)
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "accountname: "+err.Error())
	}
	size, ok := SharePointSize(c.QueryParam("size"))
	if !ok {
		return echo.NewHTTPError(http.StatusBadRequest, "unknown size (want S, M or L)")
	}
	p, err := h.engine.Photo(c.Request().Context(), owner, size, h.viewer(c))
	a := answer{Photo: p}
	if errors.Is(err, psync.ErrNoPhoto) {
		a.Body, a.ETag = h.placeholder(owner, p.Name, size)
		a.ContentType, a.placeholder = "image/png", true
		// Short: the real photo may arrive with the owner's next visit.
		a.MaxAge = time.Minute
	} else if err != nil {
		return err
	}
	return writePhoto(c, a)
}

var sharePointSizes = map[string]string{"S": "HR48x48", "M": "HR96x96", "L": "HR240x240"}

// SharePointSize maps userphoto.aspx's size parameter to one of photo.Sizes:
// SharePoint's S, M and L (any case; "" is M) and, as photosync's extension
// so pages can build a srcset, any of the HR sizes.
func SharePointSize(s string) (string, bool) {
	if s == "" {
		s = "M"
	}
	if size, ok := sharePointSizes[strings.ToUpper(s)]; ok {
		return size, true
	}
	return photo.CanonicalSize(s)
}

// answer is a photo as web serves it: the engine's, or the placeholder in
// its place.
type answer struct {
	psync.Photo
	placeholder bool
}

// fwdStatus is the HTTP status of what the source said to this request's
// pull, for Cache-Status' fwd-status; 0 when the pull reached no source.
func fwdStatus(p psync.Photo) int {
	switch {
	case !p.Answered:
		return 0
	case p.Answer == photo.StatusPhoto:
		return http.StatusOK
	case p.Answer == photo.StatusNotModified:
		return http.StatusNotModified
	default: // no photo, deleted on purpose
		return http.StatusNotFound
	}
}

// writePhoto writes p with its validators, or 304 when the client has it.
func writePhoto(c echo.Context, p answer) error {
	// On the hit path every allocation counts: header keys are canonical
	// and assigned directly, the values made for this answer are cut from
	// one string, and their slices from shared arrays (headerValues).
	var buf [128]byte
	b := append(buf[:0], "private, max-age="...)
	b = strconv.AppendInt(b, int64(p.MaxAge/time.Second), 10)
	endControl := len(b)
	b = appendCacheStatus(b, p)
	endStatus := len(b)
	b = strconv.AppendInt(b, int64(len(p.Body)), 10)
	made := string(b)

	v := headerValues(4)
	v[0], v[1], v[2], v[3] = p.ETag, made[:endControl], made[endControl:endStatus], made[endStatus:]
	hdr := c.Response().Header()
	hdr["Etag"] = v[0:1:1]
	hdr["Cache-Control"] = v[1:2:2]
	hdr["X-Content-Type-Options"] = nosniff
	hdr["Cache-Status"] = v[2:3:3]
	if etagMatch(field(c.Request().Header, "If-None-Match"), p.ETag) {
		return c.NoContent(http.StatusNotModified)
	}
	hdr["Content-Length"] = v[3:4:4]
	if ct, ok := contentTypes[p.ContentType]; ok {
		hdr["Content-Type"] = ct
	} else {
		hdr["Content-Type"] = []string{p.ContentType}
	}
	c.Response().WriteHeader(http.StatusOK)
	_, err := c.Response().Write(p.Body)
	return err
}

// Shared header values; never modified.
var (
	nosniff      = []string{"nosniff"}
	contentTypes = map[string][]string{
		"image/jpeg": {"image/jpeg"}, "image/png": {"image/png"}, "image/gif": {"image/gif"},
		"image/webp": {"image/webp"}, "image/bmp": {"image/bmp"},
	}
)

// headerValues returns n empty strings for one response's header values,
// cut from an array shared with other responses, so that a header field
// costs no allocation of its own. Each field gets a slice of its own slot
// with len == cap: Header.Add on it copies instead of writing into a
// neighbour's slot, and an array lives until the last response holding a
// slot of it is gone.
func headerValues(n int) []string {
	blk := valueBlocks.Get().(*valueBlock)
	if blk.used+n > len(blk.v) {
		blk = new(valueBlock)
	}
	v := blk.v[blk.used : blk.used+n : blk.used+n]
	blk.used += n
	valueBlocks.Put(blk)
	return v
}

type valueBlock struct {
	v    [128]string
	used int
}

var valueBlocks = sync.Pool{New: func() any { return new(valueBlock) }}

// queryValue returns the first value of key in a raw query without parsing
// all of it into a map: the hit path reads one or two parameters.
func queryValue(c echo.Context, key string) string {
	q := c.Request().URL.RawQuery
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != key {
			if containsEither(k, '%', '+') { // an escaped key: let the parser decide
				return c.QueryParam(key)
			}
			continue
		}
		if containsEither(v, '%', '+') {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return v // an invalid escape is rejected by the value's own check
			}
			return u
		}
		return v
	}
	return ""
}

// containsEither reports whether s holds a or b. It is what
// strings.ContainsAny(s, string(a)+string(b)) says, without its cost on the
// hit path: with two bytes to look for, ContainsAny walks a string longer
// than eight bytes one byte at a time, where IndexByte is vectorised.
func containsEither(s string, a, b byte) bool {
	return strings.IndexByte(s, a) >= 0 || strings.IndexByte(s, b) >= 0
}

// cacheStatus describes how p came to be served in a Cache-Status field
// (RFC 9211), so an operator sees at a glance why a photo is old:
//
//	photosync; hit; ttl=3600                        timer running
//	photosync; hit; ttl=-120; detail=revalidating   stale, refresh under way
//	photosync; fwd=miss; fwd-status=200; stored     pulled by this request
//	photosync; fwd=stale; fwd-status=304; collapsed another request's revalidation
//	photosync; fwd=miss; detail=cold-deadline       nothing yet (placeholder or 404)
func cacheStatus(p answer) string {
	return string(appendCacheStatus(make([]byte, 0, 96), p))
}

// appendCacheStatus appends cacheStatus(p) to b.
func appendCacheStatus(b []byte, p answer) []byte {
	b = append(b, "photosync; "...)
	switch {
	case p.Outcome == psync.OutcomeHit:
		b = append(b, "hit; ttl="...)
		b = strconv.AppendInt(b, int64(p.MaxAge/time.Second), 10)
	case p.Outcome == psync.OutcomeStale && !p.placeholder && p.Body != nil:
		b = append(b, "hit; ttl="...)
		// Negative ttl means stale (RFC 9211 §2.4); at least one second so
		// a copy that just expired does not read as fresh.
		b = strconv.AppendInt(b, -max(1, int64(p.Expired/time.Second)), 10)
	default:
		status := fwdStatus(p.Photo)
		fwd := "miss"
		if status == http.StatusNotModified {
			fwd = "stale"
		}
		b = append(b, "fwd="...)
		b = append(b, fwd...)
		if status != 0 {
			b = append(b, "; fwd-status="...)
			b = strconv.AppendInt(b, int64(status), 10)
		}
		if p.Outcome == psync.OutcomePulled || p.Outcome == psync.OutcomeCoalesced {
			b = append(b, "; stored"...) // (a derived size's master copy may have been fresh)
		}
		if p.Outcome == psync.OutcomeCoalesced {
			b = append(b, "; collapsed"...)
		}
		if p.MaxAge > 0 && !p.placeholder {
			b = append(b, "; ttl="...)
			b = strconv.AppendInt(b, int64(p.MaxAge/time.Second), 10)
		}
	}
	if p.Stale != "" || p.placeholder {
		b = append(b, "; detail="...)
		b = append(b, p.Stale...)
		if p.placeholder {
			if p.Stale != "" {
				b = append(b, '-')
			}
			b = append(b, "placeholder"...)
		}
	}
	return b
}

// OutcomeOf reads back what a Cache-Status value written by photosync says:
// "hit", "stale", "pulled", "coalesced", or "" when it is not photosync's.
// Tests and tooling use it to tell how a photo was served.
func OutcomeOf(cacheStatus string) string {
	switch {
	case strings.HasPrefix(cacheStatus, "photosync; hit; ttl=-"):
		return psync.OutcomeStale.String()
	case strings.HasPrefix(cacheStatus, "photosync; hit; ttl="):
		return psync.OutcomeHit.String()
	case !strings.HasPrefix(cacheStatus, "photosync; fwd="):
		return ""
	case strings.Contains(cacheStatus, "; collapsed"):
		return psync.OutcomeCoalesced.String()
	case strings.Contains(cacheStatus, "; stored"):
		return psync.OutcomePulled.String()
	}
	return psync.OutcomeStale.String() // answered without the master: cold deadline, max-stale, …
}

// etagMatch applies If-None-Match's weak comparison (RFC 9110 §13.1.2).
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return true
		}
	}
	return false
}

// edit sends the signed-in viewer to Outlook Web App's photo upload page,
// their ExternalEcpPhotoUrl, as SharePoint's "change photo" link does.
func (h *Handler) edit(c echo.Context) error {
	viewer := h.viewer(c)
	if viewer == "" {
		return echo.NewHTTPError(http.StatusUnauthorized, "sign in to change your photo")
	}
	if h.opts.Edit == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "photo import is off: photos are changed in Exchange")
	}
	target, err := h.opts.Edit.EditURL(c.Request().Context(), viewer)
	if errors.Is(err, photo.ErrNoEditURL) {
		return echo.NewHTTPError(http.StatusBadGateway, "Exchange gave no photo upload page").WithInternal(err)
	}
	if err != nil {
		return echo.NewHTTPError(http.StatusBadGateway, "cannot find your photo settings in Exchange").WithInternal(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, target)
}

// ready answers 200 while the store answers. photosync keeps serving
// without its store (from memory and the master), so a 503 here is for
// operators and alerting: it says so, and why.
func (h *Handler) ready(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if h.opts.Ready == nil {
		return c.String(http.StatusOK, "ready\n")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.opts.Ready(ctx); err != nil {
		h.logFor(c).Debug("not ready", "err", err) // Ready logs each change
		return c.String(http.StatusServiceUnavailable, "store unreachable; serving from memory and the master\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// The answers several routes give; each is a fixed text.
var (
	errNotPhotoPath = echo.NewHTTPError(http.StatusBadRequest, "not a photo path: want /photos/{email}")
	errUnknownSize  = echo.NewHTTPError(http.StatusBadRequest, "unknown size (want one of "+strings.Join(photo.Sizes, ", ")+")")
	errNoPhoto      = echo.NewHTTPError(http.StatusNotFound, "no photo for this person")
)

// handleError turns every error into a one-line text answer, or on the
// Graph routes into Graph's JSON error. Internal details go to the log,
// never to the client.
func (h *Handler) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, "internal error"
	var he *echo.HTTPError
	var ge *graphError
	switch {
	case errors.As(err, &ge):
		code, msg = ge.Status, ge.Message
	case errors.As(err, &he):
		code = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = strings.ToLower(http.StatusText(code))
		}
		if he.Internal != nil {
			h.logFor(c).Warn("request failed", "path", c.Request().URL.Path, "status", code, "err", he.Internal)
		}
	case errors.Is(err, context.Canceled):
		code, msg = 499, "client went away"
	case errors.Is(err, context.DeadlineExceeded):
		code, msg = http.StatusGatewayTimeout, "timed out"
	default:
		h.logFor(c).Error("request failed", "path", c.Request().URL.Path, "err", err)
	}
	if h.isGraphRoute(c) {
		writeGraphError(c, err, code, msg)
		return
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.String(code, msg+"\n")
}

// requestIDs numbers requests; the prefix tells processes apart.
var (
	requestSeq    atomic.Uint64
	requestPrefix = func() string {
		var b [4]byte
		_, _ = rand.Read(b[:])
		return hex.EncodeToString(b[:]) + "-"
	}()
)

// requestID is the X-Request-Id of r: the one a proxy in front sent, when
// it is short and plain (it goes into logs), or a new one.
func requestID(r *http.Request) string {
	if id := field(r.Header, echo.HeaderXRequestID); id != "" && len(id) <= 64 && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == "" {
		return id
	}
	var buf [24]byte
	b := append(buf[:0], requestPrefix...)
	return string(strconv.AppendUint(b, requestSeq.Add(1), 36))
}

// logFor is the logger for lines about the request in c: they carry its id.
func (h *Handler) logFor(c echo.Context) *slog.Logger {
	if id := c.Response().Header().Get(echo.HeaderXRequestID); id != "" {
		return h.log.With("request_id", id)
	}
	return h.log
}

// field is h.Get(key) for a key already in canonical form, without
// canonicalising it again on every request.
func field(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h *Handler) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// Reading the clock and building the attributes cost time on
		// every hit: only when someone reads the line (log.access makes it
		// an info line, debug otherwise).
		level := slog.LevelDebug
		if h.opts.AccessLog {
			level = slog.LevelInfo
		}
		logged := h.log.Enabled(c.Request().Context(), level)
		var start time.Time
		if logged {
			start = time.Now()
		}
		id := requestID(c.Request())
		v := headerValues(1)
		v[0] = id
		c.Response().Header()[echo.HeaderXRequestID] = v // and logFor reads it back
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		if logged {
			r := c.Request()
			h.log.Log(r.Context(), level, "request", "request_id", id, "method", r.Method, "path", r.URL.Path,
				"route", h.routeOf(c.Path()), "status", c.Response().Status,
				"bytes", c.Response().Size, "cache_status", c.Response().Header().Get("Cache-Status"),
				"elapsed", time.Since(start))
		}
		return nil
	}
}

func (h *Handler) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.logFor(c).Error("panic serving request", "path", c.Request().URL.Path, "panic", v)
				err = echo.NewHTTPError(http.StatusInternalServerError, "internal error")
			}
		}()
		return next(c)
	}
}

// EditURLFunc adapts a function to an EditURLer.
type EditURLFunc func(ctx context.Context, viewer string) (string, error)

// EditURL calls f.
func (f EditURLFunc) EditURL(ctx context.Context, viewer string) (string, error) {
	return f(ctx, viewer)
}

var _ http.Handler = (*Handler)(nil)
