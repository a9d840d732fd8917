package sync

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"photosync/oauth"
)

// Defaults of Graph.
const (
	DefaultGraphBaseURL = "https://graph.microsoft.com"
	defaultGraphLogin   = "https://login.microsoftonline.com"
	// assertionLifetime is how long a client assertion is valid; Entra ID
	// accepts at most 10 minutes.
	assertionLifetime = 5 * time.Minute
	// tokenMargin is how long before expires_in a cached token is renewed.
	tokenMargin = 5 * time.Minute
)

// GraphSize returns Graph's name for one of our sizes (HR96x96 → 96x96).
func GraphSize(size string) (string, bool) {
	g := strings.ToLower(strings.TrimPrefix(size, "HR"))
	if graphSizes[g] != size {
		return "", false
	}
	return g, true
}

// Graph is Microsoft Graph as a Source: an app-only token from the OAuth 2.0
// client-credentials grant (a client secret, or a client assertion JWT
// signed with our certificate), then GET
// {BaseURL}/v1.0/users/{owner}/photos/{size}/$value with If-None-Match.
//
// Graph answers 404 (ImageNotFound) when there is no photo, and has no
// signal for a photo deleted on purpose, so it never answers
// SourceDeleted. A 429 or 503 stops calls to Graph for its Retry-After
// (the circuit the Exchange master uses). The token is cached until
// shortly before it expires and renewed by one caller at a time; a 401 is
// retried once with a fresh token. Safe for concurrent use.
type Graph struct {
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
	// BaseURL is Graph's root, without /v1.0. Default:
	// https://graph.microsoft.com; the scope asked for is {BaseURL}/.default.
	BaseURL string
	// Client makes the requests; its transport carries the TLS roots.
	// Redirects are never followed. Default: http.DefaultTransport.
	Client *http.Client
	// Timeout bounds one Photo call (token and photo). Default: 15s.
	Timeout time.Duration
	// MaxBytes bounds the photo body. Default: DefaultMaxBytes.
	MaxBytes int64
	// MaxConcurrency bounds the photo calls in flight. Default: 16.
	MaxConcurrency int
	// MaxBackoff caps one back-off. Default: 15m.
	MaxBackoff time.Duration
	// Now is the clock of tokens, assertions and back-off. Default: time.Now.
	Now func() time.Time
	// Logger receives debug lines (never a token or secret). Nil discards.
	Logger *slog.Logger

	scope   string
	host    string // of BaseURL, the circuit's key
	sem     chan struct{}
	refresh chan struct{} // holds one token refresh at a time
	st      *graphState
}

// graphState is what a Graph changes as it runs.
type graphState struct {
	circuit circuit
	mu      sync.Mutex
	token   string
	expires time.Time // when token is renewed
}

// NewGraph checks g, fills in its defaults and returns it ready for use.
func NewGraph(g Graph) (*Graph, error) {
	switch {
	case g.ClientID == "":
		return nil, errors.New("graph: a client id is required")
	case g.ClientSecret != "" && (g.Certificate != nil || g.Key != nil):
		return nil, errors.New("graph: set a client secret or a certificate, not both")
	case g.ClientSecret == "" && (g.Certificate == nil || g.Key == nil):
		return nil, errors.New("graph: a client secret or a certificate and its key are required")
	case g.TokenURL == "" && g.Tenant == "":
		return nil, errors.New("graph: a tenant or a token URL is required")
	}
	if g.TokenURL == "" {
		g.TokenURL = defaultGraphLogin + "/" + url.PathEscape(g.Tenant) + "/oauth2/v2.0/token"
	}
	if g.BaseURL == "" {
		g.BaseURL = DefaultGraphBaseURL
	}
	g.BaseURL = strings.TrimRight(g.BaseURL, "/")
	if _, err := httpsURL(g.TokenURL); err != nil {
		return nil, fmt.Errorf("graph: token URL: %w", err)
	}
	u, err := httpsURL(g.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("graph: base URL: %w", err)
	}
	g.host = strings.ToLower(u.Host)
	g.scope = g.BaseURL + "/.default"
	if g.Client == nil {
		g.Client = &http.Client{Transport: http.DefaultTransport}
	}
	c := *g.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	g.Client = &c
	if g.Timeout <= 0 {
		g.Timeout = 15 * time.Second
	}
	if g.MaxBytes <= 0 {
		g.MaxBytes = DefaultMaxBytes
	}
	if g.MaxConcurrency <= 0 {
		g.MaxConcurrency = DefaultMaxConcurrency
	}
	if g.MaxBackoff <= 0 {
		g.MaxBackoff = 15 * time.Minute
	}
	if g.Now == nil {
		g.Now = time.Now
	}
	if g.Logger == nil {
		g.Logger = slog.New(slog.DiscardHandler)
	}
	g.sem = make(chan struct{}, g.MaxConcurrency)
	g.refresh = make(chan struct{}, 1)
	g.st = &graphState{}
	return &g, nil
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
func (g *Graph) Name() string { return "graph" }

// GraphError is an answer from Graph or its token endpoint that is not a
// photo, 304 or 404. Code is Graph's error code (InvalidAuthenticationToken,
// invalid_client, …); Message is its description, sanitised.
type GraphError struct {
	Step       string // "token" or "photo"
	Status     int
	Code       string
	Message    string
	RetryAfter string
}

func (e *GraphError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "graph: %s: %d %s", e.Step, e.Status, http.StatusText(e.Status))
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

// Photo asks Graph for owner's photo at size.
func (g *Graph) Photo(ctx context.Context, owner, size, etag string) (SourceResult, error) {
	gsize, ok := GraphSize(size)
	if !ok {
		return SourceResult{}, fmt.Errorf("graph: unknown size %q", size)
	}
	if owner == "" || owner == "." || owner == ".." {
		return SourceResult{}, fmt.Errorf("graph: bad user id %q", owner)
	}
	if err := g.st.circuit.check(g.host, g.Now()); err != nil {
		return SourceResult{}, fmt.Errorf("graph: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.Timeout)
	defer cancel()
	select {
	case g.sem <- struct{}{}:
		defer func() { <-g.sem }()
	case <-ctx.Done():
		return SourceResult{}, fmt.Errorf("graph: waiting for a free call slot: %w", ctx.Err())
	}
	target := g.BaseURL + "/v1.0/users/" + url.PathEscape(owner) + "/photos/" + gsize + "/$value"

	var res SourceResult
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var token string
		token, err = g.Token(ctx)
		if err != nil {
			return SourceResult{}, err
		}
		res, err = g.fetch(ctx, target, token, etag)
		var ge *GraphError
		if errors.As(err, &ge) && ge.Status == http.StatusUnauthorized && ge.Step == "photo" {
			g.forget(token) // one more try, with a token of its own
			continue
		}
		break
	}
	switch {
	case err == nil:
		g.st.circuit.record(g.host, nil, g.Now(), g.MaxBackoff)
	default:
		var ge *GraphError
		if errors.As(err, &ge) && ge.Step == "photo" {
			// The circuit reads the throttling from a StatusError.
			g.st.circuit.record(g.host, &StatusError{Code: ge.Status, RetryAfter: ge.RetryAfter}, g.Now(), g.MaxBackoff)
		} else {
			g.st.circuit.record(g.host, err, g.Now(), g.MaxBackoff)
		}
	}
	return res, err
}

func (g *Graph) fetch(ctx context.Context, target, token, etag string) (SourceResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return SourceResult{}, fmt.Errorf("graph: photo: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "image/*")
	if etag != "" {
		req.Header.Set("If-None-Match", `"`+etag+`"`)
	}
	resp, err := g.Client.Do(req)
	if err != nil {
		return SourceResult{}, fmt.Errorf("graph: photo: %w", scrubURLError(err))
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		if etag == "" {
			return SourceResult{}, errors.New("graph: photo: 304 Not Modified although no ETag was sent")
		}
		return SourceResult{Status: SourceNotModified, ETag: etag}, nil
	case http.StatusNotFound:
		// ImageNotFound, or no such user: this source has no photo.
		drain(resp.Body)
		return SourceResult{Status: SourceNoPhoto}, nil
	default:
		return SourceResult{}, graphAPIError("photo", resp)
	}
	if resp.ContentLength > g.MaxBytes {
		return SourceResult{}, fmt.Errorf("graph: photo: %w: %d bytes announced, limit %d", ErrTooLarge, resp.ContentLength, g.MaxBytes)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || !strings.HasPrefix(mt, "image/") {
			return SourceResult{}, fmt.Errorf("graph: photo: %w: Content-Type %q", ErrNotImage, sanitize(ct))
		}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, g.MaxBytes+1))
	switch {
	case err != nil:
		return SourceResult{}, fmt.Errorf("graph: photo: reading: %w", err)
	case int64(len(body)) > g.MaxBytes:
		return SourceResult{}, fmt.Errorf("graph: photo: %w: more than %d bytes", ErrTooLarge, g.MaxBytes)
	case resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength:
		return SourceResult{}, fmt.Errorf("graph: photo: truncated: %d of %d bytes", len(body), resp.ContentLength)
	}
	ct, ok := SniffImage(body)
	if !ok {
		return SourceResult{}, fmt.Errorf("graph: photo: %w: %d bytes", ErrNotImage, len(body))
	}
	return SourceResult{Status: SourcePhoto, Body: body, ContentType: ct, ETag: unquoteETag(resp.Header.Get("ETag"))}, nil
}

// graphError reads Graph's JSON error ({"error":{"code","message"}}) or the
// token endpoint's ({"error","error_description"}) into a *GraphError.
func graphAPIError(step string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	drain(resp.Body)
	ge := &GraphError{Step: step, Status: resp.StatusCode, RetryAfter: sanitize(resp.Header.Get("Retry-After"))}
	var nested struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	var flat struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &nested) == nil && nested.Error.Code != "" {
		ge.Code, ge.Message = nested.Error.Code, nested.Error.Message
	} else if json.Unmarshal(body, &flat) == nil && flat.Error != "" {
		ge.Code, ge.Message = flat.Error, flat.Description
	}
	ge.Code, ge.Message = sanitize(ge.Code), sanitize(firstLine(ge.Message))
	return ge
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// Token returns an app-only access token for Graph, from the cache while
// it is fresh. One caller at a time asks the token endpoint; the others
// wait for its answer (or their ctx).
func (g *Graph) Token(ctx context.Context) (string, error) {
	if tok, ok := g.cached(); ok {
		return tok, nil
	}
	select {
	case g.refresh <- struct{}{}:
		defer func() { <-g.refresh }()
	case <-ctx.Done():
		return "", fmt.Errorf("graph: token: waiting for the refresh: %w", ctx.Err())
	}
	if tok, ok := g.cached(); ok { // refreshed while we waited
		return tok, nil
	}
	tok, lifetime, err := g.requestToken(ctx)
	if err != nil {
		return "", err
	}
	margin := min(tokenMargin, lifetime/2)
	g.st.mu.Lock()
	g.st.token, g.st.expires = tok, g.Now().Add(lifetime-margin)
	g.st.mu.Unlock()
	g.Logger.Debug("graph token renewed", "expires_in", lifetime)
	return tok, nil
}

func (g *Graph) cached() (string, bool) {
	g.st.mu.Lock()
	defer g.st.mu.Unlock()
	if g.st.token != "" && g.Now().Before(g.st.expires) {
		return g.st.token, true
	}
	return "", false
}

// forget drops tok from the cache when it is still the cached one.
func (g *Graph) forget(tok string) {
	g.st.mu.Lock()
	defer g.st.mu.Unlock()
	if subtle.ConstantTimeCompare([]byte(g.st.token), []byte(tok)) == 1 {
		g.st.token = ""
	}
}

func (g *Graph) requestToken(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {g.ClientID},
		"scope":      {g.scope},
	}
	if g.ClientSecret != "" {
		form.Set("client_secret", g.ClientSecret)
	} else {
		assertion, err := g.assertion()
		if err != nil {
			return "", 0, err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("graph: token: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := g.Client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("graph: token: %w", scrubURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, graphAPIError("token", resp)
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"` // a number, or a string of one
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tr); err != nil {
		return "", 0, fmt.Errorf("graph: token: reading the answer: %w", err)
	}
	secs, err := strconv.Atoi(strings.Trim(string(tr.ExpiresIn), `"`))
	switch {
	case tr.AccessToken == "":
		return "", 0, errors.New("graph: token: the answer carries no access_token")
	case !strings.EqualFold(tr.TokenType, "Bearer"):
		return "", 0, fmt.Errorf("graph: token: token_type %q, want Bearer", sanitize(tr.TokenType))
	case err != nil || secs <= 0:
		return "", 0, fmt.Errorf("graph: token: expires_in %q is not a positive number", sanitize(string(tr.ExpiresIn)))
	}
	return tr.AccessToken, time.Duration(secs) * time.Second, nil
}

// assertion signs the client assertion of the certificate credential:
// aud the token endpoint, iss and sub the client id, x5t the certificate.
func (g *Graph) assertion() (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("graph: client assertion: %w", err)
	}
	now := g.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer:    g.ClientID,
		Subject:   g.ClientID,
		Audience:  jwt.ClaimStrings{g.TokenURL},
		ID:        hex.EncodeToString(jti),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(assertionLifetime)),
	})
	t.Header["x5t"] = oauth.Thumbprint(g.Certificate)
	s, err := t.SignedString(g.Key)
	if err != nil {
		return "", fmt.Errorf("graph: client assertion: %w", err)
	}
	return s, nil
}

var _ Source = (*Graph)(nil)
