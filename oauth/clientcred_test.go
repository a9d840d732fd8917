package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"photosync/internal/testclock"
)

const (
	ccClientID = "3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e"
	ccSecret   = "s3cret~value"
	ccScope    = "https://graph.example/.default"
)

// tokenEndpoint is an httptest token endpoint: answer writes the reply to
// each form it receives; it counts the requests.
type tokenEndpoint struct {
	srv   *httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	forms []url.Values
}

func newTokenEndpoint(t *testing.T, answer func(w http.ResponseWriter, form url.Values)) *tokenEndpoint {
	t.Helper()
	e := &tokenEndpoint{}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			http.Error(w, "want a form POST", http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		e.forms = append(e.forms, r.PostForm)
		e.mu.Unlock()
		answer(w, r.PostForm)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) lastForm() url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.forms[len(e.forms)-1]
}

// grant answers every request with a fresh token valid for lifetime.
func grant(lifetime any) func(http.ResponseWriter, url.Values) {
	var n atomic.Int64
	return func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_type": "Bearer", "expires_in": lifetime, "access_token": fmt.Sprintf("token-%d", n.Add(1)),
		})
	}
}

func refuse(status int, code, desc string) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, _ url.Values) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
}

func secretCredentials(e *tokenEndpoint, clock *testclock.Clock) *ClientCredentials {
	return &ClientCredentials{TokenURL: e.srv.URL + "/tenant/oauth2/v2.0/token", ClientID: ccClientID,
		Secret: ccSecret, Scope: ccScope, Client: e.srv.Client(), Now: clock.Now}
}

func TestClientCredentialsSecret(t *testing.T) {
	clock := testclock.New()
	e := newTokenEndpoint(t, grant(3600))
	cc := secretCredentials(e, clock)

	var wg sync.WaitGroup
	toks := make([]string, 20)
	errs := make([]error, 20)
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = cc.Token(t.Context()) })
	}
	wg.Wait()
	for i := range toks {
		if errs[i] != nil || toks[i] != "token-1" {
			t.Fatalf("caller %d: %q, %v; want token-1", i, toks[i], errs[i])
		}
	}
	if got := e.calls.Load(); got != 1 {
		t.Errorf("%d token requests for 20 concurrent callers, want 1", got)
	}
	f := e.lastForm()
	for k, want := range map[string]string{"grant_type": "client_credentials", "client_id": ccClientID,
		"client_secret": ccSecret, "scope": ccScope, "client_assertion": ""} {
		if got := f.Get(k); got != want {
			t.Errorf("form %s = %q, want %q", k, got, want)
		}
	}

	for _, step := range []struct {
		advance time.Duration
		want    string
	}{
		{54 * time.Minute, "token-1"}, // 54m: still fresh
		{2 * time.Minute, "token-2"},  // 56m: within 5m of expiry, renewed
	} {
		clock.Advance(step.advance)
		if tok, err := cc.Token(t.Context()); err != nil || tok != step.want {
			t.Errorf("after %v more: %q, %v; want %q", step.advance, tok, err, step.want)
		}
	}
}

func TestClientCredentialsShortLifetime(t *testing.T) {
	clock := testclock.New()
	e := newTokenEndpoint(t, grant("240")) // a string, as some endpoints send
	cc := secretCredentials(e, clock)
	if _, err := cc.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(119 * time.Second) // renewed at half of a lifetime under 10m
	_, _ = cc.Token(t.Context())
	clock.Advance(2 * time.Second)
	_, _ = cc.Token(t.Context())
	if got := e.calls.Load(); got != 2 {
		t.Errorf("%d token requests, want 2 (renewed after 2m of 4m)", got)
	}
}

func TestClientCredentialsAssertion(t *testing.T) {
	clock := testclock.New()
	cert, key := newTestKeyPair(t)
	e := newTokenEndpoint(t, grant(3600))
	cc := &ClientCredentials{TokenURL: e.srv.URL + "/tenant/oauth2/v2.0/token", ClientID: ccClientID,
		Certificate: cert, Key: key, Scope: ccScope, Client: e.srv.Client(), Now: clock.Now}
	if _, err := cc.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	f := e.lastForm()
	if f.Get("client_secret") != "" || f.Get("client_assertion_type") != assertionType {
		t.Fatalf("form %v: want a client assertion and no secret", f)
	}
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(f.Get("client_assertion"), &claims, func(tok *jwt.Token) (any, error) {
		if tok.Header["x5t"] != Thumbprint(cert) {
			return nil, errors.New("x5t does not name our certificate")
		}
		return cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(cc.TokenURL), jwt.WithIssuer(ccClientID),
		jwt.WithSubject(ccClientID), jwt.WithExpirationRequired(), jwt.WithTimeFunc(clock.Now))
	if err != nil || !tok.Valid {
		t.Fatalf("assertion does not verify: %v", err)
	}
	if claims.ID == "" || claims.NotBefore == nil || !claims.NotBefore.Equal(clock.Now()) ||
		claims.ExpiresAt.Sub(claims.NotBefore.Time) != assertionLifetime {
		t.Errorf("jti %q, nbf %v, exp %v: want a jti, valid from now for %v", claims.ID, claims.NotBefore, claims.ExpiresAt, assertionLifetime)
	}

	// Each request signs a new assertion.
	cc.Forget("token-1")
	if _, err := cc.Token(t.Context()); err != nil {
		t.Fatal(err)
	}
	if e.lastForm().Get("client_assertion") == f.Get("client_assertion") {
		t.Error("the assertion was reused")
	}
}

func TestClientCredentialsForget(t *testing.T) {
	e := newTokenEndpoint(t, grant(3600))
	cc := secretCredentials(e, testclock.New())
	first, _ := cc.Token(t.Context())
	cc.Forget("some other token") // not the cached one: kept
	if tok, _ := cc.Token(t.Context()); tok != first {
		t.Fatalf("Forget of another token dropped %q", first)
	}
	cc.Forget(first)
	if tok, err := cc.Token(t.Context()); err != nil || tok == first {
		t.Fatalf("after Forget: %q, %v; want a fresh token", tok, err)
	}
}

func TestClientCredentialsErrors(t *testing.T) {
	tests := []struct {
		name         string
		answer       func(http.ResponseWriter, url.Values)
		want         []string // in the error
		wantRejected bool
	}{
		{"wrong secret", refuse(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1"),
			[]string{"oauth: token endpoint: 401 Unauthorized: invalid_client: AADSTS7000215: Invalid client secret provided."}, true},
		{"unknown application", refuse(400, "unauthorized_client", "AADSTS700016: Application not found."),
			[]string{"400 Bad Request: unauthorized_client: AADSTS700016"}, true},
		{"endpoint down", refuse(503, "temporarily_unavailable", "try later"), []string{"503", "temporarily_unavailable"}, false},
		{"redirect not followed", func(w http.ResponseWriter, _ url.Values) {
			http.Redirect(w, &http.Request{}, "https://elsewhere.example/token", http.StatusTemporaryRedirect)
		}, []string{"307 Temporary Redirect"}, false},
		{"no access token", func(w http.ResponseWriter, _ url.Values) {
			_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3600}`))
		}, []string{"oauth: token endpoint: the answer carries no access_token"}, false},
		{"not a bearer token", func(w http.ResponseWriter, _ url.Values) {
			_, _ = w.Write([]byte(`{"token_type":"mac\u001b[31m","expires_in":3600,"access_token":"x"}`))
		}, []string{`token_type "mac?[31m", want Bearer`}, false},
		{"no lifetime", func(w http.ResponseWriter, _ url.Values) {
			_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":0,"access_token":"x"}`))
		}, []string{"expires_in"}, false},
		{"not JSON", func(w http.ResponseWriter, _ url.Values) { _, _ = w.Write([]byte("<html>")) },
			[]string{"oauth: token endpoint: reading the answer"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTokenEndpoint(t, tt.answer)
			_, err := secretCredentials(e, testclock.New()).Token(t.Context())
			if err == nil {
				t.Fatal("Token succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), ccSecret) || strings.Contains(err.Error(), "Trace ID") {
				t.Errorf("error %q shows the secret or more than one line", err)
			}
			if got := errors.Is(err, ErrRejected); got != tt.wantRejected {
				t.Errorf("errors.Is(%q, ErrRejected) = %v, want %v", err, got, tt.wantRejected)
			}
		})
	}
}

func TestClientCredentialsWaitHonoursContext(t *testing.T) {
	release := make(chan struct{})
	e := newTokenEndpoint(t, func(w http.ResponseWriter, f url.Values) {
		<-release
		grant(3600)(w, f)
	})
	defer close(release)
	cc := secretCredentials(e, testclock.New())
	go func() { _, _ = cc.Token(context.Background()) }() // holds the renewal
	for e.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := cc.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("waiting with a cancelled ctx: %v; want context.Canceled", err)
	}
}

func TestClientCredentialsBadFields(t *testing.T) {
	cert, key := newTestKeyPair(t)
	tests := []struct {
		name string
		edit func(*ClientCredentials)
		want string
	}{
		{"no token URL", func(c *ClientCredentials) { c.TokenURL = "" }, "a token URL is required"},
		{"no client id", func(c *ClientCredentials) { c.ClientID = "" }, "a client id is required"},
		{"no scope", func(c *ClientCredentials) { c.Scope = "" }, "a scope is required"},
		{"no credential", func(c *ClientCredentials) { c.Secret = "" }, "a secret or a certificate"},
		{"both", func(c *ClientCredentials) { c.Certificate, c.Key = cert, key }, "not both"},
		{"certificate without key", func(c *ClientCredentials) { c.Secret, c.Certificate = "", cert }, "a secret or a certificate and its key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := &ClientCredentials{TokenURL: "https://login.example/token", ClientID: ccClientID, Secret: ccSecret, Scope: ccScope}
			tt.edit(cc)
			_, err := cc.Token(t.Context())
			if err == nil || !strings.HasPrefix(err.Error(), "oauth: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Token: %v; want an oauth error saying %q", err, tt.want)
			}
		})
	}
}
