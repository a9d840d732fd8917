package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/jpeg"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/photo"
	"photosync/web"
)

// oauth2ProxyVersion is the oauth2-proxy release .ci/test installs.
const oauth2ProxyVersion = "v7.15.6"

// TestOAuth2Proxy runs the real oauth2-proxy in front of photosync, signing
// people in at a loopback OIDC issuer the test runs, and with its htpasswd
// login, in both arrangements of deploy/oauth2-proxy: upstream mode
// (photosync behind oauth2-proxy) and nginx auth_request mode (the shipped
// deploy/nginx files). photosync's trigger is self: the owner pulls,
// another viewer does not, a header forged by the browser is not believed,
// anonymous is refused, and an htpasswd session, which has no email, is
// anonymous to photosync.
func TestOAuth2Proxy(t *testing.T) {
	bin := oauth2ProxyPath(t)
	idp := newTestIssuer(t)
	ps := newSelfTriggerPhotosync(t)
	dir := t.TempDir()
	htpasswd := filepath.Join(dir, "htpasswd")
	sum := sha1.Sum([]byte("lee-password"))
	writeTestFile(t, htpasswd, "lee:{SHA}"+base64.StdEncoding.EncodeToString(sum[:])+"\n")

	modes := []struct {
		name  string
		start func(t *testing.T) string // returns the base URL browsers use
	}{
		{"upstream", func(t *testing.T) string {
			addr := freeAddr(t)
			startOAuth2Proxy(t, bin, "upstream.cfg", addr, idp.URL, "http://"+addr, htpasswd, "--upstream="+ps.URL)
			return "http://" + addr
		}},
		{"nginx auth_request", func(t *testing.T) string {
			nginx := nginxPath(t)
			addr := freeAddr(t)
			// nginx listens where the browser goes; oauth2-proxy only answers
			// its /oauth2/ paths and the check, with the identity in
			// X-Auth-Request-Email.
			nginxLn := freeAddr(t)
			startOAuth2Proxy(t, bin, "auth-request.cfg", addr, idp.URL, "http://"+nginxLn, htpasswd)
			return startNginxOn(t, nginx, nginxLn, strings.TrimPrefix(ps.URL, "http://"), strings.TrimPrefix(ps.URL, "http://"), addr)
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			base := m.start(t)
			ps.reset()
			adele, alex := idp.browser(t, base, "adele"), idp.browser(t, base, "alex")

			// Anonymous: refused before photosync.
			resp := do(t, http.DefaultClient, base+"/photos/"+adeleAddr)
			if resp.StatusCode == http.StatusOK || resp.Header.Get("Cache-Status") != "" {
				t.Fatalf("anonymous: %d, Cache-Status %q; want refused by oauth2-proxy", resp.StatusCode, resp.Header.Get("Cache-Status"))
			}
			// Another viewer does not pull the owner's photo.
			if resp := do(t, alex, base+"/photos/"+adeleAddr); resp.StatusCode != http.StatusNotFound || ps.pulls.Load() != 0 {
				t.Fatalf("alex asking for adele's photo first: %d with %d pulls; want 404 and none", resp.StatusCode, ps.pulls.Load())
			}
			// Nor with adele's address forged in the headers photosync could read.
			forged := []string{"X-Forwarded-Email", adeleAddr, "X-Auth-Request-Email", adeleAddr}
			if resp := do(t, alex, base+"/photos/"+adeleAddr, forged...); resp.StatusCode != http.StatusNotFound || ps.pulls.Load() != 0 {
				t.Fatalf("alex with a forged header: %d with %d pulls; want 404 and none", resp.StatusCode, ps.pulls.Load())
			}
			// /me is alex, whatever alex claims.
			if resp := do(t, alex, base+"/v1.0/me/photo/$value", forged...); resp.StatusCode != http.StatusOK || ps.lastOwner() != alexAddr {
				t.Fatalf("alex's /me with a forged header: %d, pulled %q; want alex's own", resp.StatusCode, ps.lastOwner())
			}
			// The owner pulls.
			resp = do(t, adele, base+"/photos/"+adeleAddr)
			if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Status"), "stored") {
				t.Fatalf("adele's own request: %d, Cache-Status %q; want pulled", resp.StatusCode, resp.Header.Get("Cache-Status"))
			}
			// Then it is served to alex from the store.
			if resp := do(t, alex, base+"/photos/"+adeleAddr); resp.StatusCode != http.StatusOK {
				t.Fatalf("adele's stored photo for alex: %d", resp.StatusCode)
			}
			// htpasswd: signed in, but no email reaches photosync.
			lee := &http.Client{CheckRedirect: noRedirect}
			resp = do(t, lee, base+"/v1.0/me/photo/$value", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("lee:lee-password")))
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("htpasswd /me: %d %q; want photosync's Graph 401 (an htpasswd session has no email)", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}
}

// oauth2ProxyPath finds the oauth2-proxy binary .ci/test installs, or skips
// (fails, with PHOTOSYNC_REQUIRE_OAUTH2PROXY=1) saying why.
func oauth2ProxyPath(t *testing.T) string {
	t.Helper()
	var tried []string
	if cache, err := os.UserCacheDir(); err == nil {
		p := filepath.Join(cache, "photosync", "bin", "oauth2-proxy")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath("oauth2-proxy"); err == nil {
		return p
	}
	msg := "oauth2-proxy is not installed (tried " + strings.Join(tried, ", ") + " and $PATH); .ci/test installs it: " +
		"GOBIN=~/.cache/photosync/bin go install github.com/oauth2-proxy/oauth2-proxy/v7@" + oauth2ProxyVersion
	if os.Getenv("PHOTOSYNC_REQUIRE_OAUTH2PROXY") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// startOAuth2Proxy runs oauth2-proxy with the recipe deploy/oauth2-proxy/cfg,
// overriding only what a test must (addresses, the issuer, secret files,
// plain http), on addr, with the OIDC provider at issuer and browsers
// reaching it at public, until the test ends.
func startOAuth2Proxy(t *testing.T, bin, cfg, addr, issuer, public, htpasswd string, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	writeTestFile(t, filepath.Join(dir, "cookie-secret"), hex.EncodeToString(secret)) // 32 bytes
	writeTestFile(t, filepath.Join(dir, "client-secret"), "test-secret")
	args := append([]string{
		"--config=" + filepath.Join("..", "..", "deploy", "oauth2-proxy", cfg),
		"--http-address=" + addr,
		"--oidc-issuer-url=" + issuer,
		"--client-secret-file=" + filepath.Join(dir, "client-secret"),
		"--cookie-secret-file=" + filepath.Join(dir, "cookie-secret"),
		"--cookie-secure=false", // plain http on loopback
		"--redirect-url=" + public + "/oauth2/callback",
		"--htpasswd-file=" + htpasswd,
		"--display-htpasswd-form=false",
	}, extra...)
	cmd := exec.Command(bin, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("oauth2-proxy output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("oauth2-proxy exited: %s", out.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("oauth2-proxy never answered on %s: %s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// do gets target with client and hdr's name/value pairs, and closes the body.
func do(t *testing.T, client *http.Client, target string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// testIssuer is a loopback OpenID Connect provider: discovery, JWKS, an
// authorize endpoint that signs the browser in at once as the person it
// was made for, and a token endpoint issuing RS256 id_tokens.
type testIssuer struct {
	*httptest.Server
	key *rsa.PrivateKey

	mu    sync.Mutex
	codes map[string]map[string]any // code → id_token claims
}

// testPeople are the issuer's accounts: an opaque subject, like Entra ID's
// or Keycloak's, and an email.
var testPeople = map[string]struct{ sub, email string }{
	"adele": {"0f6a4d0c-1111-2222-3333-444455556666", adeleAddr},
	"alex":  {"7c1e2b3a-4444-5555-6666-777788889999", alexAddr},
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &testIssuer{key: key, codes: map[string]map[string]any{}}
	mux := http.NewServeMux()
	iss.Server = httptest.NewServer(mux)
	t.Cleanup(iss.Close)
	b64 := base64.RawURLEncoding.EncodeToString
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"authorization_endpoint":                iss.URL + "/authorize",
			"token_endpoint":                        iss.URL + "/token",
			"jwks_uri":                              iss.URL + "/jwks",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "test",
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	// /authorize?login=NAME: the browser is NAME, signed in at once.
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		who, ok := testPeople[loginOf(r)]
		if !ok {
			http.Error(w, "unknown login", http.StatusForbidden)
			return
		}
		code := rand.Text()
		claims := map[string]any{
			"iss": iss.URL, "sub": who.sub, "aud": q.Get("client_id"),
			"email": who.email, "email_verified": true, "preferred_username": who.email,
			"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		}
		if n := q.Get("nonce"); n != "" {
			claims["nonce"] = n
		}
		iss.mu.Lock()
		iss.codes[code] = claims
		iss.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		iss.mu.Lock()
		claims, ok := iss.codes[r.PostForm.Get("code")]
		delete(iss.codes, r.PostForm.Get("code"))
		iss.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			writeJSON(w, map[string]string{"error": "invalid_grant"})
			return
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims))
		tok.Header["kid"] = "test"
		idToken, err := tok.SignedString(key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 3600, "id_token": idToken})
	})
	return iss
}

// loginOf is who the browser signs in as: the login cookie the test's
// browser carries for the issuer.
func loginOf(r *http.Request) string {
	c, err := r.Cookie("login")
	if err != nil {
		return ""
	}
	return c.Value
}

// browser signs login in through oauth2-proxy at base, as a browser does
// (redirects and cookies), and returns its client.
func (iss *testIssuer) browser(t *testing.T, base, login string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	issURL, _ := url.Parse(iss.URL)
	jar.SetCookies(issURL, []*http.Cookie{{Name: "login", Value: login}})
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/oauth2/start?rd=/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/healthz" {
		t.Fatalf("signing %s in: ended at %s with %d", login, resp.Request.URL, resp.StatusCode)
	}
	c.CheckRedirect = noRedirect
	return c
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// selfTriggerPhotosync is photosync's web face on a real engine with
// trigger self, and a source that counts its pulls.
type selfTriggerPhotosync struct {
	*httptest.Server
	pulls atomic.Int64
	mu    sync.Mutex
	last  string
	reset func()
}

func (p *selfTriggerPhotosync) lastOwner() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func newSelfTriggerPhotosync(t *testing.T) *selfTriggerPhotosync {
	t.Helper()
	ps := &selfTriggerPhotosync{}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 64, 64)), nil); err != nil {
		t.Fatal(err)
	}
	jpg := buf.Bytes()
	src := photo.Func{SourceName: "exchange", Func: func(_ context.Context, owner, _, _ string) (photo.Result, error) {
		ps.pulls.Add(1)
		ps.mu.Lock()
		ps.last = owner
		ps.mu.Unlock()
		return photo.Result{Status: photo.StatusPhoto, Body: jpg}, nil
	}}
	var h atomic.Pointer[web.Handler]
	ps.reset = func() {
		b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		e, err := psync.New(psync.Options{Store: b, Sources: []photo.Source{src}, ImportEnabled: true, Trigger: psync.TriggerSelf})
		if err != nil {
			t.Fatal(err)
		}
		h.Store(web.New(e, web.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}))
		ps.pulls.Store(0)
	}
	ps.reset()
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Load().ServeHTTP(w, r) }))
	t.Cleanup(ps.Close)
	return ps
}
