package sync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"photosync/autodiscover"
)

// DefaultMaxBytes is the largest photo a Master accepts unless told otherwise.
const DefaultMaxBytes = 4 << 20

// Master fetches photos from Exchange's REST GetUserPhoto endpoint:
// GET {ExternalPhotosUrl}/GetUserPhoto?email=…&size=HR…, with an S2S bearer
// token and If-None-Match carrying the stored ETag.
type Master struct {
	// Client makes the requests; its transport carries the TLS roots.
	// Redirects are never followed. Default: http.DefaultClient's transport.
	Client *http.Client
	// Tokens mints the bearer token acting as the photo's owner. Required.
	Tokens TokenSource
	// AllowHTTP accepts http:// photo URLs; https is required otherwise.
	AllowHTTP bool
	// AllowedHosts re-checks the photos URL from Autodiscover before a token
	// is minted for its host (the Client checked it already; this keeps the
	// master safe when fed from elsewhere). Nil: any host.
	AllowedHosts autodiscover.Hosts
	// MaxBytes bounds the photo body. Default: DefaultMaxBytes.
	MaxBytes int64
	// MaxConcurrency bounds the GetUserPhoto calls in flight at once, across
	// all owners. Default: 16.
	MaxConcurrency int
	// MaxBackoff caps how long one back-off may stop calls to a master,
	// whatever it asks for. Default: 15m.
	MaxBackoff time.Duration
	// Now is the clock of the back-off circuit. Default: time.Now.
	Now func() time.Time

	once    sync.Once
	sem     chan struct{}
	circuit circuit
}

// DefaultMaxConcurrency bounds concurrent master calls unless told otherwise.
const DefaultMaxConcurrency = 16

func (m *Master) init() {
	m.once.Do(func() {
		n := m.MaxConcurrency
		if n <= 0 {
			n = DefaultMaxConcurrency
		}
		m.sem = make(chan struct{}, n)
		if m.MaxBackoff <= 0 {
			m.MaxBackoff = 15 * time.Minute
		}
		if m.Now == nil {
			m.Now = time.Now
		}
	})
}

// StatusError is a master answer that is neither a photo, 304 nor 404.
type StatusError struct {
	Code            int
	WWWAuthenticate string // on 401: what Exchange expects, sanitised
	Diagnostics     string // x-ms-diagnostics, sanitised
	RetryAfter      string
	ServerBusy      bool          // a 500 carrying EWS's ErrorServerBusy fault
	BackOff         time.Duration // its BackOffMilliseconds, when given
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "master: GetUserPhoto answered %d %s", e.Code, http.StatusText(e.Code))
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

// ErrNotImage is returned when the master's body is not an image.
var ErrNotImage = errors.New("master: body is not an image")

// ErrTooLarge is returned when the master's body is over Master.MaxBytes.
var ErrTooLarge = errors.New("master: photo larger than the limit")

// ErrBlankPhoto is returned by Master.Fetch for a 200 with an empty body:
// the "blank photo" Exchange serves for a photo deleted on purpose
// (PROTOCOLS §5). ExchangeSource reads it as SourceDeleted.
var ErrBlankPhoto = errors.New("master: blank photo (deleted on purpose)")

type fetched struct {
	status      int // 200, 304 or 404
	body        []byte
	contentType string
	etag        string // unquoted
	source      string // the Source that answered, for store.Record.Source
	deleted     bool   // 404 because the owner deleted the photo on purpose
}

// PhotoURL builds the GetUserPhoto URL from an ExternalPhotosUrl, checking
// that it is absolute, https (or http when allowed) and carries no
// credentials, and that its host matches allowed (nil: any host). Exchange hands out the photos URL as the EWS handler plus
// "/s"; a bare EWS URL is accepted too.
func PhotoURL(photosURL, email, size string, allowHTTP bool, allowed autodiscover.Hosts) (string, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(photosURL), "/"))
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("master: photos URL %q is not an absolute URL", photosURL)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowHTTP:
	case u.Scheme == "http":
		return "", fmt.Errorf("master: photos URL %q is plain http; set exchange.allow_http to accept it", photosURL)
	default:
		return "", fmt.Errorf("master: photos URL %q has scheme %q, want https", photosURL, u.Scheme)
	}
	if u.User != nil {
		return "", fmt.Errorf("master: photos URL for %s carries credentials; refused", u.Host)
	}
	if allowed != nil && !allowed.Match(u.Host) {
		return "", fmt.Errorf("master: photos URL host %s is outside exchange.allowed_hosts (%s); refused", u.Hostname(), allowed)
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

// Fetch asks the master for email's photo at size. etag, when not empty, is
// sent in If-None-Match. The result's status is 200 (with the photo), 304 or
// 404; any other answer is an error.
func (m *Master) Fetch(ctx context.Context, photosURL, email, size, etag string) (fetched, error) {
	target, err := PhotoURL(photosURL, email, size, m.AllowHTTP, m.AllowedHosts)
	if err != nil {
		return fetched{}, err
	}
	m.init()
	u, _ := url.Parse(target) // built by PhotoURL: cannot fail
	host := strings.ToLower(u.Host)
	if err := m.circuit.check(host, m.Now()); err != nil {
		return fetched{}, err
	}
	select {
	case m.sem <- struct{}{}:
		defer func() { <-m.sem }()
	case <-ctx.Done():
		return fetched{}, fmt.Errorf("master: waiting for a free call slot: %w", ctx.Err())
	}
	res, err := m.fetch(ctx, target, host, email, etag)
	if errors.Is(err, ErrBlankPhoto) {
		m.circuit.record(host, nil, m.Now(), m.MaxBackoff) // an answer, not a failure
	} else {
		m.circuit.record(host, err, m.Now(), m.MaxBackoff)
	}
	return res, err
}

func (m *Master) fetch(ctx context.Context, target, host, email, etag string) (fetched, error) {
	token, err := m.Tokens.Token(ctx, email, host)
	if err != nil {
		return fetched{}, fmt.Errorf("master: minting token: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fetched{}, fmt.Errorf("master: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "image/*")
	if etag != "" {
		req.Header.Set("If-None-Match", `"`+etag+`"`)
	}
	resp, err := m.client().Do(req)
	if err != nil {
		return fetched{}, fmt.Errorf("master: GetUserPhoto for %s: %w", email, scrubURLError(err))
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return fetched{status: http.StatusNotModified}, nil
	case http.StatusNotFound:
		drain(resp.Body)
		return fetched{status: http.StatusNotFound}, nil
	default:
		se := &StatusError{
			Code:            resp.StatusCode,
			WWWAuthenticate: sanitize(resp.Header.Get("WWW-Authenticate")),
			Diagnostics:     sanitize(resp.Header.Get("X-Ms-Diagnostics")),
			RetryAfter:      sanitize(resp.Header.Get("Retry-After")),
		}
		if resp.StatusCode == http.StatusInternalServerError {
			// EWS throttling: a SOAP fault ErrorServerBusy that may say how
			// long to stay away (PROTOCOLS §7).
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			se.ServerBusy, se.BackOff = serverBusy(body)
		}
		drain(resp.Body)
		return fetched{}, se
	}

	limit := m.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBytes
	}
	if resp.ContentLength > limit {
		return fetched{}, fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, resp.ContentLength, limit)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.HasPrefix(mt, "image/") {
			return fetched{}, fmt.Errorf("%w: Content-Type %q", ErrNotImage, sanitize(ct))
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fetched{}, fmt.Errorf("master: reading photo of %s: %w", email, err)
	}
	if int64(len(body)) > limit {
		return fetched{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		return fetched{}, fmt.Errorf("master: photo of %s truncated: %d of %d bytes", email, len(body), resp.ContentLength)
	}
	if len(body) == 0 && resp.ContentLength <= 0 {
		return fetched{}, ErrBlankPhoto
	}
	ct, ok := SniffImage(body)
	if !ok {
		return fetched{}, fmt.Errorf("%w: %d bytes that look like %s", ErrNotImage, len(body), http.DetectContentType(body))
	}
	return fetched{status: http.StatusOK, body: body, contentType: ct, etag: unquoteETag(resp.Header.Get("ETag"))}, nil
}

func (m *Master) client() *http.Client {
	c := http.Client{Transport: http.DefaultTransport}
	if m.Client != nil {
		c = *m.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// SniffImage returns the content type of b when its leading bytes are those
// of an image format browsers show (JPEG, PNG, GIF, WebP, BMP).
func SniffImage(b []byte) (string, bool) {
	switch ct := http.DetectContentType(b); ct {
	case "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp":
		return ct, true
	default:
		return "", false
	}
}

// unquoteETag strips W/ and quotes: ETags are compared by their opaque part.
func unquoteETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	return strings.Trim(s, `"`)
}

// sanitize makes a header value from the master safe to log and show: printable
// ASCII only, at most 300 bytes.
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 300; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		} else {
			b.WriteByte('?')
		}
	}
	return b.String()
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

// PhotoInfo describes one fetch without its bytes, for diagnostics.
type PhotoInfo struct {
	Status      int    // 200, 304 or 404
	Size        int    // body bytes
	ContentType string // sniffed from the bytes
	ETag        string // unquoted
}

// Check fetches email's photo at size as Fetch does and describes it; the
// bytes are dropped. photosync doctor uses it.
func (m *Master) Check(ctx context.Context, photosURL, email, size string) (PhotoInfo, error) {
	f, err := m.Fetch(ctx, photosURL, email, size, "")
	if err != nil {
		return PhotoInfo{}, err
	}
	return PhotoInfo{Status: f.status, Size: len(f.body), ContentType: f.contentType, ETag: f.etag}, nil
}
