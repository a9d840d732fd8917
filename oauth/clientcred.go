package oauth

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
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"photosync/internal/untrusted"
)

// assertionLifetime is how long a client assertion is valid. Microsoft
// Entra ID refuses one valid for more than 10 minutes.
const assertionLifetime = 5 * time.Minute

// assertionType is client_assertion_type for a JWT (RFC 7523 §2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ErrRejected is matched, with errors.Is, by a *TokenError whose answer
// refuses the credential or the application (a wrong secret, an
// unregistered certificate, an unknown client id, a scope it may not ask
// for): a configuration to fix, not an outage to wait out.
var ErrRejected = errors.New("oauth: credential rejected")

// TokenError is an answer of the token endpoint that is not a token:
// its HTTP status, and the error code and description of the JSON error
// body (RFC 6749 §5.2), both sanitised.
type TokenError struct {
	Status      int
	Code        string // "invalid_client", "unauthorized_client", …
	Description string // first line of error_description
	RetryAfter  string
}

func (e *TokenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "oauth: token endpoint: %d %s", e.Status, http.StatusText(e.Status))
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	if e.RetryAfter != "" {
		fmt.Fprintf(&b, "; Retry-After: %s", e.RetryAfter)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrRejected) true for a 401, and for the codes
// RFC 6749 §5.2 gives a refused client or grant.
func (e *TokenError) Is(target error) bool {
	if target != ErrRejected {
		return false
	}
	switch e.Code {
	case "invalid_client", "unauthorized_client", "invalid_grant", "invalid_scope":
		return true
	}
	return e.Status == http.StatusUnauthorized
}

// ClientCredentials gets an application's own access token (app-only, no
// user) with the OAuth 2.0 client-credentials grant (RFC 6749 §4.4). The
// application authenticates with a client secret, or with a client
// assertion (RFC 7523): a JWT signed RS256 with Key, naming Certificate by
// its SHA-1 thumbprint in x5t, with aud the token endpoint and iss and sub
// the client id, as Microsoft Entra ID wants
// (https://learn.microsoft.com/entra/identity-platform/certificate-credentials).
//
// The token is cached until 5 minutes before it expires (half its lifetime
// when that is shorter). One caller at a time asks the token endpoint; the
// others wait for its answer or their ctx. Set the fields, then use it by
// pointer and leave them as they are. Safe for concurrent use.
type ClientCredentials struct {
	// TokenURL is the token endpoint. Required.
	TokenURL string
	// ClientID is the application (client) id. Required.
	ClientID string
	// Secret is the client secret. Either it or Certificate and Key are
	// required, not both.
	Secret string
	// Certificate and Key sign the client assertion.
	Certificate *x509.Certificate
	Key         *rsa.PrivateKey
	// Scope is asked for, such as "https://graph.microsoft.com/.default".
	// Required.
	Scope string
	// Client sends the requests; redirects are never followed, so a
	// credential is only ever sent to TokenURL. Default: a client with
	// http.DefaultTransport.
	Client *http.Client
	// Now is the clock of the cache and the assertions. Default: time.Now.
	Now func() time.Time
	// Logger receives a debug line per renewal, never a token or secret.
	// Nil discards.
	Logger *slog.Logger

	once    sync.Once
	initErr error
	client  *http.Client
	refresh chan struct{} // holds the one renewal in flight

	mu      sync.RWMutex
	token   string
	renewAt time.Time
}

// init checks the fields and applies their defaults, once.
func (c *ClientCredentials) init() error {
	c.once.Do(func() {
		switch {
		case c.TokenURL == "":
			c.initErr = errors.New("oauth: client credentials: a token URL is required")
		case c.ClientID == "":
			c.initErr = errors.New("oauth: client credentials: a client id is required")
		case c.Scope == "":
			c.initErr = errors.New("oauth: client credentials: a scope is required")
		case c.Secret != "" && (c.Certificate != nil || c.Key != nil):
			c.initErr = errors.New("oauth: client credentials: set a secret or a certificate, not both")
		case c.Secret == "" && (c.Certificate == nil || c.Key == nil):
			c.initErr = errors.New("oauth: client credentials: a secret or a certificate and its key are required")
		}
		client := http.Client{Transport: http.DefaultTransport}
		if c.Client != nil {
			client = *c.Client
		}
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		client.Transport = untrusted.Transport(client.Transport)
		c.client = &client
		c.refresh = make(chan struct{}, 1)
	})
	return c.initErr
}

func (c *ClientCredentials) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *ClientCredentials) log() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Token returns an access token, from the cache while it is fresh.
func (c *ClientCredentials) Token(ctx context.Context) (string, error) {
	if err := c.init(); err != nil {
		return "", err
	}
	if tok, ok := c.cached(); ok {
		return tok, nil
	}
	select {
	case c.refresh <- struct{}{}:
		defer func() { <-c.refresh }()
	case <-ctx.Done():
		return "", fmt.Errorf("oauth: client credentials: waiting for the renewal: %w", ctx.Err())
	}
	if tok, ok := c.cached(); ok { // renewed while we waited
		return tok, nil
	}
	tok, lifetime, err := c.request(ctx)
	if err != nil {
		return "", err
	}
	margin := min(renewBefore, lifetime/2)
	c.mu.Lock()
	c.token, c.renewAt = tok, c.now().Add(lifetime-margin)
	c.mu.Unlock()
	c.log().Debug("client credentials token renewed", "client_id", c.ClientID, "expires_in", lifetime)
	return tok, nil
}

func (c *ClientCredentials) cached() (string, bool) {
	now := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.token != "" && now.Before(c.renewAt) {
		return c.token, true
	}
	return "", false
}

// Forget drops tok from the cache when it is still the cached token, so
// the next Token call asks for a fresh one. Call it when the resource
// refuses tok with 401; a token another caller renewed meanwhile stays.
func (c *ClientCredentials) Forget(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if subtle.ConstantTimeCompare([]byte(c.token), []byte(tok)) == 1 {
		c.token = ""
	}
}

// request asks the token endpoint for a token, and returns it with its
// lifetime.
func (c *ClientCredentials) request(ctx context.Context) (string, time.Duration, error) {
	form := url.Values{
		"grant_type": {"client_credentials"},
		"client_id":  {c.ClientID},
		"scope":      {c.Scope},
	}
	if c.Secret != "" {
		form.Set("client_secret", c.Secret)
	} else {
		assertion, err := c.assertion()
		if err != nil {
			return "", 0, err
		}
		form.Set("client_assertion_type", assertionType)
		form.Set("client_assertion", assertion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("oauth: token endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is known; keep the cause for errors.As (x509 errors)
		}
		return "", 0, fmt.Errorf("oauth: token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", 0, fmt.Errorf("oauth: token endpoint: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", 0, tokenError(resp, body)
	}
	var tr struct {
		AccessToken string          `json:"access_token"`
		TokenType   string          `json:"token_type"`
		ExpiresIn   json.RawMessage `json:"expires_in"` // a number, or a string of one
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", 0, fmt.Errorf("oauth: token endpoint: reading the answer: %w", err)
	}
	secs, err := strconv.Atoi(strings.Trim(string(tr.ExpiresIn), `"`))
	switch {
	case tr.AccessToken == "":
		return "", 0, errors.New("oauth: token endpoint: the answer carries no access_token")
	case !strings.EqualFold(tr.TokenType, "Bearer"):
		return "", 0, fmt.Errorf("oauth: token endpoint: token_type %q, want Bearer", untrusted.Text(tr.TokenType, 0))
	case err != nil || secs <= 0:
		return "", 0, fmt.Errorf("oauth: token endpoint: expires_in %q is not a positive number", untrusted.Text(string(tr.ExpiresIn), 0))
	}
	return tr.AccessToken, time.Duration(secs) * time.Second, nil
}

// tokenError reads the token endpoint's JSON error
// ({"error","error_description"}) into a *TokenError.
func tokenError(resp *http.Response, body []byte) error {
	var e struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
	}
	_ = json.Unmarshal(body, &e) // a body that is not one leaves the status alone
	desc, _, _ := strings.Cut(strings.ReplaceAll(e.Description, "\r", "\n"), "\n")
	return &TokenError{
		Status:      resp.StatusCode,
		Code:        untrusted.Text(e.Code, 0),
		Description: untrusted.Text(desc, 0),
		RetryAfter:  untrusted.Text(resp.Header.Get("Retry-After"), 0),
	}
}

// assertion signs a client assertion: aud the token endpoint, iss and sub
// the client id, a random jti, valid from now for assertionLifetime, and
// x5t the certificate's thumbprint.
func (c *ClientCredentials) assertion() (string, error) {
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("oauth: client assertion: %w", err)
	}
	now := c.now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer:    c.ClientID,
		Subject:   c.ClientID,
		Audience:  jwt.ClaimStrings{c.TokenURL},
		ID:        hex.EncodeToString(jti),
		NotBefore: jwt.NewNumericDate(now),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(assertionLifetime)),
	})
	t.Header["x5t"] = Thumbprint(c.Certificate)
	s, err := t.SignedString(c.Key)
	if err != nil {
		return "", fmt.Errorf("oauth: client assertion: %w", err)
	}
	return s, nil
}
