// Package autodiscover finds where a mailbox's photos live by asking Exchange
// Autodiscover, as SharePoint Server 2013 does before it pulls a photo.
//
// The model: one configured domain (SharePoint's ExchangeAutodiscoverDomain)
// names the first endpoint, https://{domain}/autodiscover/autodiscover.svc.
// With Fallback, when it does not answer (unreachable, an HTTP error), the
// endpoints Outlook tries for the mailbox's email domain follow in order
// (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-generate-a-list-of-autodiscover-endpoints):
// https://{d}/…, https://autodiscover.{d}/…, the
// unauthenticated HTTP redirect probe, DNS SRV _autodiscover._tcp.{d}. A
// Lookup POSTs a SOAP GetUserSettings request for one mailbox, carrying an
// S2S bearer token that acts as that mailbox toward the host called; where
// SOAP is not offered (404) it asks POX autodiscover.xml on the same host.
// It follows what Exchange answers: HTTP redirects and RedirectUrl (another
// endpoint), RedirectAddress (another mailbox, whose lookup starts over).
// All hops together are capped by MaxRedirects, and no endpoint or mailbox
// is visited twice. An answer from Exchange (InvalidUser, a refused URL, a
// loop) ends the lookup; only an endpoint that does not answer lets the
// next one be tried.
//
// Answers are cached per mailbox, good ones for CacheTTL and failures for
// ErrorTTL so that a broken Autodiscover is not hammered; concurrent Lookups
// for one mailbox share one request.
//
// Everything Exchange sends back is untrusted: bodies and nesting are bounded,
// DTDs are refused, elements are matched by namespace URI (never by prefix) and
// every URL handed out must be absolute https (http only with AllowHTTP) with a
// host within AllowedHosts and no userinfo. A URL that fails is an error
// before any request is made to it.
package autodiscover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/patrickmn/go-cache"

	"photosync/internal/untrusted"
)

// ErrInvalidUser is returned (wrapped) when Autodiscover answers InvalidUser:
// Exchange does not know the mailbox.
var ErrInvalidUser = errors.New("autodiscover: invalid user")

// ErrServerBusy is returned (wrapped) when Autodiscover answers ServerBusy.
var ErrServerBusy = errors.New("autodiscover: server busy")

// ErrUnauthorized is matched (errors.Is) by the *StatusError of an HTTP 401:
// Exchange refused the bearer token.
var ErrUnauthorized = errors.New("autodiscover: unauthorized")

// ErrTooManyRedirects is returned (wrapped) when a lookup needs more than
// MaxRedirects hops.
var ErrTooManyRedirects = errors.New("autodiscover: too many redirects")

// ErrNoPhotosURL is returned (wrapped) by Lookup when Autodiscover answers
// NoError without ExternalPhotosUrl; photos cannot be pulled then.
var ErrNoPhotosURL = errors.New("autodiscover: ExternalPhotosUrl is missing")

// ErrRefusedURL is matched, with errors.Is, by the error for a URL the
// Client will not call: not absolute, plain http without AllowHTTP, another
// scheme, userinfo, or a host outside AllowedHosts. Other packages that
// re-check a URL from Exchange (the Exchange photo source) wrap it too.
var ErrRefusedURL = errors.New("autodiscover: URL refused")

// ErrNoEcpPhotoURL is returned (wrapped) by Settings.EcpPhotoURL when
// Autodiscover gave no ExternalEcpPhotoUrl.
var ErrNoEcpPhotoURL = errors.New("autodiscover: ExternalEcpPhotoUrl is missing")

// TokenSource mints the S2S bearer token that acts as user toward host
// (host[:port] of the URL being called). It is called once per HTTP request,
// so it should cache tokens itself. Safe for concurrent use.
type TokenSource interface {
	Token(ctx context.Context, user, host string) (string, error)
}

// TokenFunc adapts a function to a TokenSource.
type TokenFunc func(ctx context.Context, user, host string) (string, error)

// Token calls f.
func (f TokenFunc) Token(ctx context.Context, user, host string) (string, error) {
	return f(ctx, user, host)
}

// Defaults of Options.
const (
	// DefaultTimeout bounds one HTTP exchange with Exchange when the
	// caller brings no client of its own (exchange.timeout).
	DefaultTimeout = 15 * time.Second
	// DefaultCacheTTL is how long a good answer is kept
	// (exchange.autodiscover_cache).
	DefaultCacheTTL = time.Hour
)

// Options configures a Client. Zero values mean the documented defaults.
type Options struct {
	// Domain is host[:port] of the Autodiscover endpoint, without scheme or
	// path (SharePoint's ExchangeAutodiscoverDomain). Required.
	Domain string
	// Tokens mints the bearer tokens. Required.
	Tokens TokenSource
	// HTTPClient sends the requests; the caller sets TLS roots and timeout on
	// it. The Client uses a copy whose CheckRedirect stops at the 3xx so that
	// redirects are checked, counted and re-POSTed here.
	// Default: a client with a 15s timeout.
	HTTPClient *http.Client
	// AllowHTTP lets http:// URLs from Exchange (redirects, settings) through.
	// Default: false, https only.
	AllowHTTP bool
	// AllowedHosts are the hosts Exchange may send the Client to: every
	// redirect and every URL in an answer must match one of them, so a
	// hostile or broken Autodiscover cannot steer requests (and tokens)
	// elsewhere. Default: DefaultHosts(Domain).
	AllowedHosts Hosts
	// Fallback, when true, tries the other endpoints real clients try after
	// the configured domain fails to answer, in the order Exchange documents
	// (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-generate-a-list-of-autodiscover-endpoints): https://{email
	// domain}/…, https://autodiscover.{email domain}/…, the unauthenticated
	// HTTP redirect probe, and DNS SRV _autodiscover._tcp.{email domain}.
	// Each must still be within AllowedHosts. Default: false, only Domain.
	Fallback bool
	// Resolver looks up the SRV record. Default: net.DefaultResolver.
	Resolver Resolver
	// Scheme of the first URL: "https" or, only with AllowHTTP, "http".
	// Default: "https".
	Scheme string
	// CacheTTL is how long a successful lookup is kept. Default: 1h.
	CacheTTL time.Duration
	// ErrorTTL is how long a failed lookup is kept; negative: not kept.
	// Default: 1m.
	ErrorTTL time.Duration
	// MaxEntries bounds how many answers are kept, so memory does not grow
	// with the number of people ever looked up. When the cache is full,
	// expired answers go first, then all of them (they are cheap to ask
	// again, and most people's answers are alike). Default: 10000.
	MaxEntries int
	// MaxRedirects caps all hops of one lookup together (HTTP redirects,
	// RedirectUrl, RedirectAddress), as the EWS Managed API and exchangelib
	// do. Default: 10.
	MaxRedirects int
	// Timeout bounds one whole lookup, redirects included. The lookup runs on
	// a context no single caller owns (callers share it), so this, not the
	// caller's deadline, stops it. Default: 1m.
	Timeout time.Duration
	// Logger receives debug records of each hop; never tokens.
	// Default: nil, discard.
	Logger *slog.Logger
}

// Client looks up Autodiscover settings and caches them. Safe for concurrent
// use.
type Client struct {
	first     *url.URL
	tokens    TokenSource
	hc        *http.Client
	allowHTTP bool
	allowed   Hosts
	fallback  bool
	resolver  Resolver
	cacheTTL  time.Duration
	errorTTL  time.Duration
	maxHops   int
	timeout   time.Duration
	log       *slog.Logger

	cache *cache.Cache
	// maxEntries bounds cache (go-cache has no bound of its own).
	maxEntries int
	flight     flightGroup

	// missHook, when set, runs after a cache miss and before joining the
	// flight; a test seam only.
	missHook func()

	hits, misses atomic.Int64 // lookups answered from the cache, or not
}

// entry is what the cache holds for one mailbox.
type entry struct {
	s   Settings
	err error
}

// New checks opts and returns a Client. Every problem is reported at once.
func New(opts Options) (*Client, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("autodiscover: "+format, args...))
	}
	scheme := opts.Scheme
	switch {
	case scheme == "":
		scheme = "https"
	case scheme == "https":
	case scheme == "http" && opts.AllowHTTP:
	case scheme == "http":
		bad("scheme http needs AllowHTTP")
	default:
		bad("scheme %q: want https or http", scheme)
	}
	first, err := firstURL(scheme, opts.Domain)
	if err != nil {
		errs = append(errs, err)
	}
	allowed := opts.AllowedHosts
	if len(allowed) == 0 && first != nil {
		allowed = DefaultHosts(opts.Domain)
	}
	if err := allowed.Check(); err != nil {
		bad("allowed hosts: %w", err)
	} else if first != nil && !allowed.MatchURL(first) {
		bad("domain %s is outside the allowed hosts (%s)", first.Host, allowed)
	}
	if opts.Tokens == nil {
		bad("no token source")
	}
	if opts.MaxRedirects < 0 {
		bad("negative MaxRedirects %d", opts.MaxRedirects)
	}
	if opts.CacheTTL < 0 {
		bad("negative CacheTTL %s", opts.CacheTTL)
	}
	if opts.Timeout < 0 {
		bad("negative Timeout %s", opts.Timeout)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	hc := &http.Client{Timeout: DefaultTimeout}
	if opts.HTTPClient != nil {
		cp := *opts.HTTPClient
		hc = &cp
	}
	hc.Transport = untrusted.Transport(hc.Transport)
	// Redirects are followed by hand: a POST must stay a POST, the target
	// must be checked, the hop counted and a token minted for its host.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	c := &Client{
		first:      first,
		tokens:     opts.Tokens,
		hc:         hc,
		allowHTTP:  opts.AllowHTTP,
		allowed:    allowed,
		fallback:   opts.Fallback,
		resolver:   opts.Resolver,
		maxEntries: orDefault(opts.MaxEntries, 10000),
		cacheTTL:   orDefault(opts.CacheTTL, DefaultCacheTTL),
		errorTTL:   orDefault(opts.ErrorTTL, time.Minute),
		maxHops:    opts.MaxRedirects,
		timeout:    orDefault(opts.Timeout, time.Minute),
		log:        opts.Logger,
	}
	if c.maxHops == 0 {
		c.maxHops = 10
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.resolver == nil {
		c.resolver = net.DefaultResolver
	}
	c.cache = cache.New(c.cacheTTL, max(c.cacheTTL, time.Minute))
	return c, nil
}

func orDefault[T time.Duration | int](d, def T) T {
	if d == 0 {
		return def
	}
	return d
}

// firstURL builds the configured endpoint from a host[:port] domain.
func firstURL(scheme, domain string) (*url.URL, error) {
	if domain == "" {
		return nil, errors.New("autodiscover: no domain")
	}
	u, err := url.Parse(scheme + "://" + domain)
	if err != nil || u.Host != domain || u.Hostname() == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("autodiscover: domain %q: want host[:port], no scheme or path", domain)
	}
	u.Path = servicePath
	return u, nil
}

// Lookup returns the Autodiscover settings of the mailbox email, from the
// cache when it can. When Autodiscover answers without ExternalPhotosUrl the
// error wraps ErrNoPhotosURL and the other settings found are returned too.
// The request is shared with concurrent Lookups of the same mailbox; a caller
// whose ctx ends stops waiting, but the lookup goes on for the others and the
// cache.
func (c *Client) Lookup(ctx context.Context, email string) (Settings, error) {
	key, err := normalizeEmail(email)
	if err != nil {
		return Settings{}, err
	}
	if e, ok := c.cached(key); ok {
		c.hits.Add(1)
		return e.s.clone(), e.err
	}
	c.misses.Add(1)
	if c.missHook != nil {
		c.missHook()
	}
	f := c.flight.start(key, func() entry {
		// A flight that ended just before this one may have filled the cache.
		if e, ok := c.cached(key); ok {
			return e
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		s, err := c.discover(fctx, key)
		e := entry{s: s, err: err}
		switch {
		case err == nil:
			c.remember(key, e, c.cacheTTL)
		case c.errorTTL > 0:
			c.remember(key, e, c.errorTTL)
		}
		if err != nil {
			c.log.DebugContext(fctx, "autodiscover lookup failed", "email", key, "error", err)
		}
		return e
	})
	select {
	case <-ctx.Done():
		return Settings{}, fmt.Errorf("autodiscover: lookup %q: %w", key, context.Cause(ctx))
	case <-f.done:
		return f.e.s.clone(), f.e.err
	}
}

// CacheCounts returns how many lookups the cache answered (hits, an
// answer or a remembered failure) and how many it did not (misses).
func (c *Client) CacheCounts() (hits, misses int64) {
	return c.hits.Load(), c.misses.Load()
}

// Cached is what the client holds for one mailbox: its settings or the
// failure remembered, and when the entry runs out.
type Cached struct {
	Settings Settings
	Err      error
	Expires  time.Time
}

// Peek returns what the cache holds for email without asking Exchange and
// without counting a hit or a miss. photosync's inspect shows it.
func (c *Client) Peek(email string) (Cached, bool) {
	key, err := normalizeEmail(email)
	if err != nil {
		return Cached{}, false
	}
	v, exp, ok := c.cache.GetWithExpiration(key)
	if !ok {
		return Cached{}, false
	}
	e := v.(entry)
	return Cached{Settings: e.s.clone(), Err: e.err, Expires: exp}, true
}

func (c *Client) cached(key string) (entry, bool) {
	v, ok := c.cache.Get(key)
	if !ok {
		return entry{}, false
	}
	return v.(entry), true
}

// remember caches e under key for ttl, keeping the cache within
// maxEntries.
func (c *Client) remember(key string, e entry, ttl time.Duration) {
	if c.cache.ItemCount() >= c.maxEntries {
		c.cache.DeleteExpired()
		if c.cache.ItemCount() >= c.maxEntries {
			c.cache.Flush()
		}
	}
	c.cache.Set(key, e, ttl)
}

// Forget drops the cached answer for email, good or bad, so that the next
// Lookup asks Exchange again.
func (c *Client) Forget(email string) {
	c.cache.Delete(strings.ToLower(strings.TrimSpace(email)))
}

// normalizeEmail lower-cases email and refuses what cannot be a mailbox
// address. Characters special to XML are allowed: the request escapes them.
func normalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndexByte(e, '@')
	switch {
	case e == "":
		return "", errors.New("autodiscover: empty email")
	case len(e) > 320:
		return "", fmt.Errorf("autodiscover: email of %d bytes is too long", len(e))
	case at <= 0 || at == len(e)-1:
		return "", fmt.Errorf("autodiscover: email %q has no local part or domain", e)
	case strings.IndexFunc(e, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return "", fmt.Errorf("autodiscover: email %q has control or space characters", e)
	}
	return e, nil
}

// Settings are the Autodiscover settings of one mailbox. Empty strings are
// settings Exchange did not give.
type Settings struct {
	Email       string // the address asked for, lower case
	SMTPAddress string // AutoDiscoverSMTPAddress, when given
	DisplayName string // UserDisplayName, sanitised (printable, at most 256 characters)

	ExternalPhotosURL   string // ExternalPhotosUrl: base of GetUserPhoto; always set when Lookup succeeds
	InternalPhotosURL   string // InternalPhotosUrl
	ExternalEcpPhotoURL string // ExternalEcpPhotoUrl: where a user changes their photo
	InternalEcpPhotoURL string // InternalEcpPhotoUrl
	ExternalEWSURL      string // ExternalEwsUrl
	InternalEWSURL      string // InternalEwsUrl

	// Redirects lists the hops taken, in order, for diagnostics: "302 <url>",
	// "RedirectUrl <url>", "RedirectAddress <email>".
	Redirects []string
}

// EcpPhotoURL returns ExternalEcpPhotoURL, or an error wrapping
// ErrNoEcpPhotoURL that says how an Exchange admin fills it in.
func (s Settings) EcpPhotoURL() (string, error) {
	if s.ExternalEcpPhotoURL != "" {
		return s.ExternalEcpPhotoURL, nil
	}
	return "", fmt.Errorf("%w for %q; Exchange fills it from the external URL of the ECP virtual directory: "+
		"Set-EcpVirtualDirectory -ExternalUrl https://mail.example.com/ecp", ErrNoEcpPhotoURL, s.Email)
}

func (s Settings) clone() Settings {
	s.Redirects = append([]string(nil), s.Redirects...)
	return s
}

// Error is an Autodiscover ErrorCode this package does not act on
// (InvalidRequest, InvalidDomain, NotFederated, InternalServerError, …), or a
// redirect code that came without its target.
type Error struct {
	Code    string // the ErrorCode, as sent
	Message string // the ErrorMessage, sanitised
	URL     string // the endpoint that answered
}

// Error returns e.g. "autodiscover: InvalidRequest from https://…: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("autodiscover: %s from %s", e.Code, e.URL)
	}
	return fmt.Sprintf("autodiscover: %s from %s: %s", e.Code, e.URL, e.Message)
}

// StatusError is an HTTP answer other than 200 or a followed redirect.
// A 401 matches ErrUnauthorized.
type StatusError struct {
	URL        string // the URL posted to
	StatusCode int    // e.g. 500
	Status     string // e.g. "500 Internal Server Error"
	// Challenge is the WWW-Authenticate header of a 401, sanitised
	// (printable ASCII, at most 300 characters): what Exchange expects.
	Challenge string
	// Diagnostics is the x-ms-diagnostics header of a 401, sanitised: the
	// check Exchange says failed (oauth.ParseChallenge reads both).
	Diagnostics string
	// Fault is the faultstring of a SOAP fault in the body, if any.
	Fault string
}

// Error returns e.g. "autodiscover: https://… answered 500 Internal Server Error".
func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "autodiscover: %s answered %s", e.URL, e.Status)
	if e.StatusCode == http.StatusUnauthorized {
		if e.Challenge == "" {
			b.WriteString(" (no WWW-Authenticate)")
		} else {
			fmt.Fprintf(&b, " (WWW-Authenticate: %s)", e.Challenge)
		}
	}
	if e.Fault != "" {
		fmt.Fprintf(&b, ": %s", e.Fault)
	}
	return b.String()
}

// Unwrap returns ErrUnauthorized for a 401, nil otherwise.
func (e *StatusError) Unwrap() error {
	if e.StatusCode == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	return nil
}

var _ TokenSource = TokenFunc(nil)

// AllowedHosts returns the host patterns the Client enforces, defaults
// applied; the master client re-checks photo URLs against the same list.
func (c *Client) AllowedHosts() Hosts { return append(Hosts(nil), c.allowed...) }
