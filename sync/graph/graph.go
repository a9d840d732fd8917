// Package graph is Microsoft Graph as a photo source, for tenants whose
// photos live in Exchange Online or Entra ID, where EWS may be switched off.
//
// A Source signs in as the application itself (app-only, with the
// User.Read.All application permission) through oauth.ClientCredentials,
// then asks GET {BaseURL}/v1.0/users/{owner}/photos/{size}/$value with
// If-None-Match (https://learn.microsoft.com/graph/api/profilephoto-get).
// Graph answers 404 (ImageNotFound) when there is no photo at that size and
// has no signal for a photo deleted on purpose, so a Source answers
// photo.StatusNoPhoto, never photo.StatusDeleted. A 429 or 503 stops calls
// to Graph for its Retry-After through a backoff.Circuit
// (https://learn.microsoft.com/graph/throttling). A 401 is retried once
// with a fresh token. Everything Graph sends back is untrusted: bodies are
// bounded and sniffed, error text is sanitised.
package graph

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"photosync/internal/untrusted"
	"photosync/oauth"
	"photosync/sync/backoff"
	"photosync/sync/photo"
)

// DefaultBaseURL is Graph's global root; national clouds have their own
// (https://learn.microsoft.com/graph/deployments).
const DefaultBaseURL = "https://graph.microsoft.com"

// DefaultTimeout bounds one Photo call, token included, unless
// Options.Timeout says otherwise (graph.timeout).
const DefaultTimeout = 15 * time.Second

// defaultLogin is the Entra ID host of the default token URL.
const defaultLogin = "https://login.microsoftonline.com"

// ErrUnauthorized is matched, with errors.Is, when Graph or its token
// endpoint refuses us: a wrong secret or certificate, an unknown client id,
// or a token Graph does not accept even fresh (a missing permission or
// admin consent, a token for another cloud). Waiting does not fix it; the
// graph section does.
var ErrUnauthorized = errors.New("graph: unauthorized")

// Options configure a Source. A zero field means its documented default.
type Options struct {
	// Tenant is the directory (tenant) id or a verified domain, used in the
	// default TokenURL. Required unless TokenURL is set.
	Tenant string
	// ClientID is the application (client) id. Required.
	ClientID string
	// ClientSecret authenticates the application. Either it or
	// Certificate and Key are required, not both.
	ClientSecret string
	// Certificate and Key sign the client assertion (RS256, x5t header).
	Certificate *x509.Certificate
	Key         *rsa.PrivateKey
	// TokenURL is the token endpoint. Default:
	// https://login.microsoftonline.com/{Tenant}/oauth2/v2.0/token
	TokenURL string
	// BaseURL is Graph's root, without /v1.0; the scope asked for is
	// {BaseURL}/.default. Default: DefaultBaseURL.
	BaseURL string
	// Client makes the requests; its transport carries the TLS roots.
	// Redirects are never followed. Default: a client with
	// http.DefaultTransport.
	Client *http.Client
	// Timeout bounds one Photo call, token included. Default: 15s.
	Timeout time.Duration
	// MaxBytes bounds the photo body (photos.max_bytes).
	// Default: photo.DefaultMaxBytes.
	MaxBytes int64
	// MaxConcurrency bounds the photo calls in flight. Default: 16.
	MaxConcurrency int
	// MaxBackoff caps one back-off, whatever Retry-After asks.
	// Default: backoff.DefaultMax.
	MaxBackoff time.Duration
	// Now is the clock of tokens, assertions and back-off. Default: time.Now.
	Now func() time.Time
	// Logger receives debug lines, never a token or secret. Nil discards.
	Logger *slog.Logger
}

// Source is Microsoft Graph as a photo.Source. Safe for concurrent use.
type Source struct {
	base     string // BaseURL without a trailing slash
	host     string // of BaseURL: the circuit's key
	client   *http.Client
	timeout  time.Duration
	maxBytes int64
	tokens   *oauth.ClientCredentials
	circuit  *backoff.Circuit
	sem      chan struct{} // a slot per photo call in flight
}

var _ photo.Source = (*Source)(nil)

// New checks o, applies its defaults and returns a Source ready for use.
func New(o Options) (*Source, error) {
	switch {
	case o.ClientID == "":
		return nil, errors.New("graph: a client id is required")
	case o.ClientSecret != "" && (o.Certificate != nil || o.Key != nil):
		return nil, errors.New("graph: set a client secret or a certificate, not both")
	case o.ClientSecret == "" && (o.Certificate == nil || o.Key == nil):
		return nil, errors.New("graph: a client secret or a certificate and its key are required")
	case o.TokenURL == "" && o.Tenant == "":
		return nil, errors.New("graph: a tenant or a token URL is required")
	}
	if o.TokenURL == "" {
		o.TokenURL = defaultLogin + "/" + url.PathEscape(o.Tenant) + "/oauth2/v2.0/token"
	}
	base := strings.TrimRight(cmp.Or(o.BaseURL, DefaultBaseURL), "/")
	if _, err := httpsURL(o.TokenURL); err != nil {
		return nil, fmt.Errorf("graph: token URL: %w", err)
	}
	u, err := httpsURL(base)
	if err != nil {
		return nil, fmt.Errorf("graph: base URL: %w", err)
	}
	client := http.Client{Transport: http.DefaultTransport}
	if o.Client != nil {
		client = *o.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Transport = untrusted.Transport(client.Transport)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Source{
		base:     base,
		host:     strings.ToLower(u.Host),
		client:   &client,
		timeout:  cmp.Or(o.Timeout, DefaultTimeout),
		maxBytes: cmp.Or(o.MaxBytes, photo.DefaultMaxBytes),
		tokens: &oauth.ClientCredentials{
			TokenURL: o.TokenURL, ClientID: o.ClientID, Secret: o.ClientSecret,
			Certificate: o.Certificate, Key: o.Key, Scope: base + "/.default",
			Client: &client, Now: o.Now, Logger: o.Logger,
		},
		circuit: &backoff.Circuit{Max: o.MaxBackoff, Now: o.Now},
		sem:     make(chan struct{}, cmp.Or(o.MaxConcurrency, 16)),
	}, nil
}

// httpsURL parses an absolute https URL without credentials, query or
// fragment.
func httpsURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("want an absolute https URL without credentials or query, got %q", s)
	}
	return u, nil
}

// Name returns "graph".
func (s *Source) Name() string { return "graph" }

// BackedOff returns how many hosts the source is backing off now: 1 while
// Graph has asked it to wait, else 0.
func (s *Source) BackedOff() int { return s.circuit.Active() }

// Error is an answer from Graph's photo endpoint that is neither a photo,
// a 304 nor a 404. Code and Message are those of Graph's JSON error body
// (https://learn.microsoft.com/graph/errors), sanitised.
type Error struct {
	Status     int
	Code       string // InvalidAuthenticationToken, TooManyRequests, …
	Message    string // first line
	RetryAfter string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph: photo: %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RetryAfter != "" {
		fmt.Fprintf(&b, "; Retry-After: %s", e.RetryAfter)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUnauthorized) true for a 401 or 403.
func (e *Error) Is(target error) bool {
	return target == ErrUnauthorized && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// Backoff implements backoff.Throttled: a 429 or 503 asks Graph to be left
// alone for its Retry-After.
func (e *Error) Backoff() (time.Duration, string, bool) {
	if e.Status != http.StatusTooManyRequests && e.Status != http.StatusServiceUnavailable {
		return 0, "", false
	}
	return backoff.RetryAfter(e.RetryAfter, backoff.DefaultBusy), fmt.Sprintf("%d with Retry-After %q", e.Status, e.RetryAfter), true
}

var _ backoff.Throttled = (*Error)(nil)

// tokenError is a failure to get a token; one that refuses our credential
// is ErrUnauthorized.
type tokenError struct{ err error }

func (e *tokenError) Error() string {
	return "graph: token: " + strings.TrimPrefix(e.err.Error(), "oauth: ")
}
func (e *tokenError) Unwrap() error { return e.err }
func (e *tokenError) Is(target error) bool {
	return target == ErrUnauthorized && errors.Is(e.err, oauth.ErrRejected)
}

// Photo asks Graph for owner's photo at size.
func (s *Source) Photo(ctx context.Context, owner, size, etag string) (photo.Result, error) {
	gsize, ok := photo.GraphSize(size)
	if !ok {
		return photo.Result{}, fmt.Errorf("graph: unknown size %q", size)
	}
	if owner == "" || owner == "." || owner == ".." {
		return photo.Result{}, fmt.Errorf("graph: bad user id %q", owner)
	}
	if err := s.circuit.Check(s.host); err != nil {
		return photo.Result{}, fmt.Errorf("graph: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return photo.Result{}, fmt.Errorf("graph: waiting for a free call slot: %w", ctx.Err())
	}
	target := s.base + "/v1.0/users/" + url.PathEscape(owner) + "/photos/" + gsize + "/$value"

	var res photo.Result
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var token string
		if token, err = s.tokens.Token(ctx); err != nil {
			err = &tokenError{err}
			break
		}
		res, err = s.fetch(ctx, target, token, etag)
		var ge *Error
		if attempt == 0 && errors.As(err, &ge) && ge.Status == http.StatusUnauthorized {
			s.tokens.Forget(token) // one more try, with a fresh token
			continue
		}
		if err == nil && res.Status == photo.StatusNoPhoto {
			// For the initials placeholder shown in the photo's place.
			res.Name = s.displayName(ctx, owner, token)
		}
		break
	}
	s.circuit.Record(s.host, err)
	return res, err
}

func (s *Source) fetch(ctx context.Context, target, token, etag string) (photo.Result, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return photo.Result{}, fmt.Errorf("graph: photo: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "image/*")
	if etag != "" {
		req.Header.Set("If-None-Match", `"`+etag+`"`)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its URL names the owner; keep the cause for errors.As
		}
		return photo.Result{}, fmt.Errorf("graph: photo: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		if etag == "" {
			return photo.Result{}, fmt.Errorf("graph: photo: %w: 304 although no ETag was sent", photo.ErrBadAnswer)
		}
		// A 304 counts only for the validator sent.
		if v := resp.Header.Get("ETag"); v != "" {
			if got, ok := photo.ParseETag(v); !ok || got != etag {
				return photo.Result{}, fmt.Errorf("graph: photo: %w: 304 for ETag %q, not the one sent", photo.ErrBadAnswer, untrusted.Text(v, 80))
			}
		}
		return photo.Result{Status: photo.StatusNotModified, ETag: etag}, nil
	case http.StatusNotFound:
		// ImageNotFound, or no such user: this source has no photo.
		drain(resp.Body)
		return photo.Result{Status: photo.StatusNoPhoto}, nil
	default:
		return photo.Result{}, apiError(resp)
	}
	if resp.ContentLength > s.maxBytes {
		return photo.Result{}, fmt.Errorf("graph: photo: %w: %d bytes announced, limit %d", photo.ErrTooLarge, resp.ContentLength, s.maxBytes)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.HasPrefix(mt, "image/") {
			return photo.Result{}, fmt.Errorf("graph: photo: %w: Content-Type %q", photo.ErrNotImage, untrusted.Text(ct, 0))
		}
	}
	body, err := photo.ReadBody(resp.Body, s.maxBytes)
	switch {
	case err != nil:
		return photo.Result{}, fmt.Errorf("graph: photo: reading: %w", err)
	case resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength:
		return photo.Result{}, fmt.Errorf("graph: photo: truncated: %d of %d bytes", len(body), resp.ContentLength)
	}
	ct, ok := photo.Sniff(body)
	if !ok {
		return photo.Result{}, fmt.Errorf("graph: photo: %w: %d bytes", photo.ErrNotImage, len(body))
	}
	// An ETag that is not one entity-tag of at most photo.MaxETag bytes is
	// dropped: the next pull is unconditional.
	tag, _ := photo.ParseETag(resp.Header.Get("ETag"))
	return photo.Result{Status: photo.StatusPhoto, Body: body, ContentType: ct, ETag: tag}, nil
}

// displayName asks Graph for owner's displayName
// (GET /v1.0/users/{id}?$select=displayName, allowed by the User.Read.All
// permission the photos need). It is asked only when there is no photo, as
// it is wanted only for the initials placeholder; "" when Graph does not
// say: a name is never worth failing the pull.
func (s *Source) displayName(ctx context.Context, owner, token string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/v1.0/users/"+url.PathEscape(owner)+"?$select=displayName", nil)
	if err != nil {
		return ""
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	var u struct {
		DisplayName string `json:"displayName"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&u) != nil {
		return ""
	}
	return untrusted.Text(u.DisplayName, 256)
}

// apiError reads Graph's JSON error body ({"error":{"code","message"}})
// into an *Error.
func apiError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	drain(resp.Body)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(body, &e) // a body that is not one leaves the status alone
	msg, _, _ := strings.Cut(strings.ReplaceAll(e.Error.Message, "\r", "\n"), "\n")
	return &Error{
		Status:     resp.StatusCode,
		Code:       untrusted.Text(e.Error.Code, 0),
		Message:    untrusted.Text(msg, 0),
		RetryAfter: untrusted.Text(resp.Header.Get("Retry-After"), 0),
	}
}

func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }
