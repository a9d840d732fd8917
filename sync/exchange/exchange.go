// Package exchange is Exchange 2013 and later as a photo source: it finds an
// owner's photos URL through Autodiscover (a Locator), mints an S2S bearer
// token acting as the owner toward that host (Tokens), and asks the REST
// GetUserPhoto endpoint for one size:
//
//	GET {ExternalPhotosUrl}/GetUserPhoto?email=…&size=HR96x96
//	Authorization: Bearer …
//	If-None-Match: "<the stored ETag>"
//
// (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-get-user-photos-by-using-ews-in-exchange).
//
// A Source answers the engine with a photo.Result: StatusPhoto (sniffed
// image bytes, bounded by MaxBytes), StatusNotModified (304 to the ETag
// sent), StatusNoPhoto (404) or StatusDeleted (200 with an empty body, the
// "blank photo" Exchange serves once an owner removed theirs). Anything else
// is an error: a *StatusError for another status, which carries Exchange's
// request to stay away when it made one (503 or 429 with Retry-After, EWS's
// ErrorServerBusy with BackOffMilliseconds), so that the per-host circuit of
// sync/backoff refuses calls to that host for the period asked.
//
// Redirects are never followed, the photos URL is re-checked against the
// allowed hosts before a token is minted for its host, and the calls in
// flight are bounded across all owners. Everything Exchange sends back is
// untrusted: headers are sanitised before they reach an error or a log.
package exchange

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"photosync/autodiscover"
	"photosync/internal/untrusted"
	"photosync/sync/backoff"
	"photosync/sync/photo"
)

// DefaultMaxConcurrency bounds the GetUserPhoto calls in flight unless
// Options.MaxConcurrency says otherwise.
const DefaultMaxConcurrency = 16

// A Locator finds where an owner's photos live; *autodiscover.Client is
// one. Lookup must honour ctx and be safe for concurrent use; it is called
// for every pull, so it should cache. A Locator that also caches its
// answers visibly (Peek and Forget, as *autodiscover.Client does) lets
// CachedLookup and ForgetLookup reach that cache.
type Locator interface {
	Lookup(ctx context.Context, email string) (autodiscover.Settings, error)
}

// A TokenSource mints the S2S bearer token that acts as user toward host;
// *oauth.Issuer is one. It is called for every GetUserPhoto request, so it
// should cache.
type TokenSource interface {
	Token(ctx context.Context, user, host string) (string, error)
}

// lookupCache is the optional part of a Locator that CachedLookup and
// ForgetLookup use; *autodiscover.Client is one.
type lookupCache interface {
	Peek(email string) (autodiscover.Cached, bool)
	Forget(email string)
}

// Options configures a Source.
type Options struct {
	// Locator finds each owner's photos URL. Required.
	Locator Locator
	// Tokens mints the bearer token acting as the photo's owner. Required.
	Tokens TokenSource
	// Client makes the requests; its transport carries the TLS roots.
	// Redirects are never followed, whatever its CheckRedirect says.
	// Default: http.DefaultTransport.
	Client *http.Client
	// AllowHTTP accepts http:// photos URLs; https is required otherwise.
	AllowHTTP bool
	// AllowedHosts re-checks the photos URL before a token is minted for
	// its host (the Locator checked it already; this keeps the source safe
	// when fed from elsewhere). Nil: any host.
	AllowedHosts autodiscover.Hosts
	// MaxBytes bounds one photo body (photos.max_bytes).
	// Default: photo.DefaultMaxBytes.
	MaxBytes int64
	// MaxConcurrency bounds the GetUserPhoto calls in flight at once,
	// across all owners. Default: DefaultMaxConcurrency.
	MaxConcurrency int
	// MaxBackoff caps how long one back-off may stop calls to a host,
	// whatever Exchange asks for. Default: backoff.DefaultMax.
	MaxBackoff time.Duration
	// Now is the clock of the back-off circuit. Default: time.Now.
	Now func() time.Time
}

// Source is Exchange's REST GetUserPhoto as a photo.Source. Build it with
// New. Safe for concurrent use.
type Source struct {
	locator      Locator
	tokens       TokenSource
	client       *http.Client
	allowHTTP    bool
	allowedHosts autodiscover.Hosts
	maxBytes     int64
	sem          chan struct{}
	circuit      *backoff.Circuit
}

var _ photo.Source = (*Source)(nil)

// New checks opts and returns a Source; every problem is reported at once.
// opts is copied: nothing the caller holds is changed.
func New(opts Options) (*Source, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("exchange: "+format, args...))
	}
	if opts.Locator == nil {
		bad("no Locator")
	}
	if opts.Tokens == nil {
		bad("no token source")
	}
	if opts.AllowedHosts != nil {
		if err := opts.AllowedHosts.Check(); err != nil {
			bad("allowed hosts: %w", err)
		}
	}
	if opts.MaxBytes < 0 {
		bad("negative MaxBytes %d", opts.MaxBytes)
	}
	if opts.MaxConcurrency < 0 {
		bad("negative MaxConcurrency %d", opts.MaxConcurrency)
	}
	if opts.MaxBackoff < 0 {
		bad("negative MaxBackoff %s", opts.MaxBackoff)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s := &Source{
		locator:      opts.Locator,
		tokens:       opts.Tokens,
		client:       noRedirects(opts.Client),
		allowHTTP:    opts.AllowHTTP,
		allowedHosts: opts.AllowedHosts,
		maxBytes:     opts.MaxBytes,
		circuit:      &backoff.Circuit{Max: opts.MaxBackoff, Now: opts.Now},
	}
	if s.maxBytes == 0 {
		s.maxBytes = photo.DefaultMaxBytes
	}
	n := opts.MaxConcurrency
	if n == 0 {
		n = DefaultMaxConcurrency
	}
	s.sem = make(chan struct{}, n)
	return s, nil
}

// noRedirects returns a copy of c (or of a client on http.DefaultTransport)
// that never follows a redirect: a redirected GetUserPhoto is an answer,
// and following it would carry the bearer token elsewhere.
func noRedirects(c *http.Client) *http.Client {
	out := http.Client{Transport: http.DefaultTransport}
	if c != nil {
		out = *c
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	out.Transport = untrusted.Transport(out.Transport)
	return &out
}

// Name returns "exchange".
func (s *Source) Name() string { return "exchange" }

// Photo asks Exchange for owner's photo at size; etag, when not empty, is
// sent in If-None-Match.
//
// REST answers 404 both when the owner has no photo and when they removed
// it on purpose. What tells them apart is what Exchange keeps for a removed
// photo: a 0-byte JPEG, which Remove-UserPhoto's documentation describes as
// requests that "return a blank photo"
// (https://learn.microsoft.com/en-us/powershell/module/exchange/remove-userphoto).
// So a 200 with an empty body is StatusDeleted and a 404 StatusNoPhoto. An
// Exchange that answers 404 for a removed photo cannot be told from one
// with no photo, and the walk goes on to the next source.
func (s *Source) Photo(ctx context.Context, owner, size, etag string) (photo.Result, error) {
	settings, err := s.locator.Lookup(ctx, owner)
	if err != nil {
		return photo.Result{}, err
	}
	res, err := s.fetch(ctx, settings.ExternalPhotosURL, owner, size, etag)
	if err != nil {
		return photo.Result{}, err
	}
	if res.Status == photo.StatusNotModified && etag == "" {
		return photo.Result{}, fmt.Errorf("exchange: %w: 304 Not Modified although no ETag was sent", photo.ErrBadAnswer)
	}
	if res.Status == photo.StatusNotModified {
		res.ETag = etag
	}
	res.Name = settings.DisplayName // from the cached Autodiscover answer: no extra call
	return res, nil
}

// ErrUnauthorized is matched, with errors.Is, by a *StatusError for a 401:
// Exchange rejected the bearer token (its WWW-Authenticate and
// x-ms-diagnostics headers, in the StatusError, say why).
var ErrUnauthorized = errors.New("exchange: token rejected")

// errBlankPhoto marks a 200 with an empty body inside the package; the
// engine sees it as photo.StatusDeleted.
var errBlankPhoto = errors.New("exchange: blank photo (deleted on purpose)")

// StatusError is a GetUserPhoto answer that is neither a photo, a 304 nor a
// 404. It implements backoff.Throttled: a 503 or 429 (with Retry-After) and
// EWS's ErrorServerBusy fault (with BackOffMilliseconds) ask the circuit to
// stay away from the host.
type StatusError struct {
	Code            int
	WWWAuthenticate string        // on 401: what Exchange expects, sanitised
	Diagnostics     string        // x-ms-diagnostics, sanitised
	RetryAfter      string        // sanitised
	ServerBusy      bool          // a 500 carrying EWS's ErrorServerBusy fault
	BackOff         time.Duration // its BackOffMilliseconds, when given
}

var _ backoff.Throttled = (*StatusError)(nil)

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exchange: GetUserPhoto answered %d %s", e.Code, http.StatusText(e.Code))
	if e.WWWAuthenticate != "" {
		fmt.Fprintf(&b, "; WWW-Authenticate: %s", e.WWWAuthenticate)
	}
	if e.Diagnostics != "" {
		fmt.Fprintf(&b, "; x-ms-diagnostics: %s", e.Diagnostics)
	}
	if e.RetryAfter != "" {
		fmt.Fprintf(&b, "; Retry-After: %s", e.RetryAfter)
	}
	if e.ServerBusy {
		fmt.Fprintf(&b, "; ErrorServerBusy, back off %v", e.BackOff)
	}
	return b.String()
}

// Unwrap returns ErrUnauthorized for a 401, nil otherwise.
func (e *StatusError) Unwrap() error {
	if e.Code == http.StatusUnauthorized {
		return ErrUnauthorized
	}
	return nil
}

// Backoff says how long Exchange asked to be left alone: a 503 or 429 for
// its Retry-After (backoff.DefaultBusy without one), ErrorServerBusy for its
// BackOffMilliseconds. Any other status concerns one photo or one token,
// not the host.
func (e *StatusError) Backoff() (time.Duration, string, bool) {
	switch {
	case e.Code == http.StatusServiceUnavailable || e.Code == http.StatusTooManyRequests:
		return backoff.RetryAfter(e.RetryAfter, backoff.DefaultBusy), fmt.Sprintf("%d with Retry-After %q", e.Code, e.RetryAfter), true
	case e.ServerBusy:
		return e.BackOff, "ErrorServerBusy", true // 0: the circuit's default
	}
	return 0, "", false
}

// PhotoURL builds the GetUserPhoto URL from an ExternalPhotosUrl, checking
// that it is absolute, https (or http when allowHTTP) and carries no
// credentials, and that its host matches allowed (nil: any host); a URL
// refused is autodiscover.ErrRefusedURL. Exchange hands out the photos URL
// as the EWS handler plus "/s"; a bare EWS URL is accepted too.
func PhotoURL(photosURL, email, size string, allowHTTP bool, allowed autodiscover.Hosts) (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(photosURL), "/"))
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("exchange: photos URL %q is not an absolute URL: %w", untrusted.Text(photosURL, 300), autodiscover.ErrRefusedURL)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return "", fmt.Errorf("exchange: photos URL %q is plain http; set exchange.allow_http to accept it: %w", photosURL, autodiscover.ErrRefusedURL)
	default:
		return "", fmt.Errorf("exchange: photos URL %q has scheme %q, want https: %w", photosURL, u.Scheme, autodiscover.ErrRefusedURL)
	}
	if u.User != nil {
		return "", fmt.Errorf("exchange: photos URL for %s carries credentials: %w", u.Host, autodiscover.ErrRefusedURL)
	}
	if allowed != nil && !allowed.MatchURL(u) {
		return "", fmt.Errorf("exchange: photos URL host %s is outside exchange.allowed_hosts (%s): %w", u.Host, allowed, autodiscover.ErrRefusedURL)
	}
	lower := strings.ToLower(u.Path)
	switch {
	case strings.HasSuffix(lower, "/s"):
		u.Path += "/GetUserPhoto"
	case strings.HasSuffix(lower, "exchange.asmx"):
		u.Path += "/s/GetUserPhoto"
	default:
		u.Path += "/GetUserPhoto"
	}
	u.RawPath, u.Fragment = "", ""
	u.RawQuery = url.Values{"email": {email}, "size": {size}}.Encode()
	return u.String(), nil
}

// fetch asks photosURL for email's photo at size, through the circuit and
// the concurrency bound. A NotModified result carries no ETag.
func (s *Source) fetch(ctx context.Context, photosURL, email, size, etag string) (photo.Result, error) {
	target, err := PhotoURL(photosURL, email, size, s.allowHTTP, s.allowedHosts)
	if err != nil {
		return photo.Result{}, err
	}
	u, _ := url.Parse(target) // built by PhotoURL: cannot fail
	host := strings.ToLower(u.Host)
	if err := s.circuit.Check(host); err != nil {
		return photo.Result{}, fmt.Errorf("exchange: %w", err)
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return photo.Result{}, fmt.Errorf("exchange: waiting for a free call slot: %w", ctx.Err())
	}
	res, err := s.get(ctx, target, host, email, etag)
	if errors.Is(err, errBlankPhoto) {
		s.circuit.Record(host, nil) // an answer, not a failure
		return photo.Result{Status: photo.StatusDeleted}, nil
	}
	s.circuit.Record(host, err)
	return res, err
}

func (s *Source) get(ctx context.Context, target, host, email, etag string) (photo.Result, error) {
	token, err := s.tokens.Token(ctx, email, host)
	if err != nil {
		return photo.Result{}, fmt.Errorf("exchange: minting token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return photo.Result{}, fmt.Errorf("exchange: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "image/*")
	if etag != "" {
		req.Header.Set("If-None-Match", `"`+etag+`"`)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return photo.Result{}, fmt.Errorf("exchange: GetUserPhoto for %s: %w", email, scrubURLError(err))
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		// A 304 counts only for the validator sent: one naming another
		// entity-tag (or none that parses) is not an answer to ours.
		if v := resp.Header.Get("ETag"); v != "" {
			if got, ok := photo.ParseETag(v); !ok || got != etag {
				return photo.Result{}, fmt.Errorf("exchange: %w: 304 Not Modified for ETag %q, not the one sent", photo.ErrBadAnswer, untrusted.Text(v, 80))
			}
		}
		return photo.Result{Status: photo.StatusNotModified}, nil
	case http.StatusNotFound:
		drain(resp.Body)
		return photo.Result{Status: photo.StatusNoPhoto}, nil
	default:
		se := &StatusError{
			Code:            resp.StatusCode,
			WWWAuthenticate: untrusted.Text(resp.Header.Get("WWW-Authenticate"), 300),
			Diagnostics:     untrusted.Text(resp.Header.Get("X-Ms-Diagnostics"), 300),
			RetryAfter:      untrusted.Text(resp.Header.Get("Retry-After"), 300),
		}
		if resp.StatusCode == http.StatusInternalServerError {
			// EWS throttles with a 500 carrying a SOAP fault ErrorServerBusy
			// whose BackOffMilliseconds says how long to stay away
			// (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/ews-throttling-in-exchange).
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			se.ServerBusy, se.BackOff = serverBusy(body)
		}
		drain(resp.Body)
		return photo.Result{}, se
	}

	if resp.ContentLength > s.maxBytes {
		return photo.Result{}, fmt.Errorf("exchange: photo of %s: %w: %d bytes announced, limit %d", email, photo.ErrTooLarge, resp.ContentLength, s.maxBytes)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.HasPrefix(mt, "image/") {
			return photo.Result{}, fmt.Errorf("exchange: photo of %s: %w: Content-Type %q", email, photo.ErrNotImage, untrusted.Text(ct, 300))
		}
	}
	body, err := photo.ReadBody(resp.Body, s.maxBytes)
	if err != nil {
		return photo.Result{}, fmt.Errorf("exchange: reading photo of %s: %w", email, err)
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		return photo.Result{}, fmt.Errorf("exchange: photo of %s truncated: %d of %d bytes", email, len(body), resp.ContentLength)
	}
	if len(body) == 0 {
		return photo.Result{}, errBlankPhoto
	}
	ct, ok := photo.Sniff(body)
	if !ok {
		return photo.Result{}, fmt.Errorf("exchange: photo of %s: %w: %d bytes that look like %s", email, photo.ErrNotImage, len(body), http.DetectContentType(body))
	}
	// An ETag that is not one entity-tag of at most photo.MaxETag bytes is
	// dropped: the photo is stored without one and the next pull is
	// unconditional, rather than sending a list, a "*" or a 64 KiB header.
	tag, _ := photo.ParseETag(resp.Header.Get("ETag"))
	return photo.Result{Status: photo.StatusPhoto, Body: body, ContentType: ct, ETag: tag}, nil
}

// serverBusy finds EWS's ErrorServerBusy fault in a 500 body and its
// BackOffMilliseconds, matching elements by local name.
func serverBusy(body []byte) (bool, time.Duration) {
	if !strings.Contains(string(body), "ErrorServerBusy") {
		return false, 0
	}
	d := xml.NewDecoder(strings.NewReader(string(body)))
	inBackoff := false
	for {
		tok, err := d.Token()
		if err != nil {
			return true, 0
		}
		switch t := tok.(type) {
		case xml.StartElement:
			inBackoff = false
			if t.Name.Local == "Value" {
				for _, a := range t.Attr {
					if a.Name.Local == "Name" && a.Value == "BackOffMilliseconds" {
						inBackoff = true
					}
				}
			}
		case xml.CharData:
			if inBackoff {
				if ms, err := strconv.Atoi(strings.TrimSpace(string(t))); err == nil && ms > 0 {
					return true, time.Duration(ms) * time.Millisecond
				}
			}
		}
	}
}

// scrubURLError drops the URL from a transport error (it is in the
// message already, and its query carries the owner's address twice).
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }
