// Package graphtest runs a strict, in-process simulator of Microsoft Graph's
// photo endpoints and of the Entra ID token endpoint, for photosync's tests,
// in the manner of net/http/httptest.
//
// The model: a Server is one HTTPS host with its own generated CA. It knows
// registered applications (App), each with a client secret and/or
// certificates, and users, each with an optional photo uploaded at some
// size. The token endpoint runs the OAuth 2.0 client-credentials grant and
// checks the credential strictly: the secret, or a client assertion whose
// signature verifies against a registered certificate found by its x5t,
// with aud the token URL, iss and sub the client id, a jti, and a validity
// of at most ten minutes that includes now. It answers with an RS256 JWT
// access token. The photo endpoints check that token's signature, issuer,
// audience and expiry, then serve the photo at the asked size: only sizes
// up to the uploaded one exist, as in Exchange Online, which stores the
// sizes up to the uploaded photo's; a missing one is a 404 with Graph's
// ImageNotFound body (https://learn.microsoft.com/graph/api/profilephoto-get).
// Photos carry an ETag and answer 304 to a matching If-None-Match. A
// throttle mode answers 429 with Retry-After.
//
// The package imports none of photosync's own client code, so a bug in the
// client cannot be masked by sharing it with the server.
package graphtest

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"photosync/internal/testpki"
)

// DefaultTenant is the tenant id of a Server whose Options name none.
const DefaultTenant = "8a4b2c1d-3e5f-4a6b-9c7d-1e2f3a4b5c6d"

// sizes are the nine photo sizes Graph serves from Exchange Online, 48x48
// to 648x648 (https://learn.microsoft.com/graph/api/profilephoto-get).
var sizes = map[string]int{
	"48x48": 48, "64x64": 64, "96x96": 96, "120x120": 120, "240x240": 240,
	"360x360": 360, "432x432": 432, "504x504": 504, "648x648": 648,
}

// An App is a registered application allowed to read photos.
type App struct {
	ClientID string
	// Secret, when set, is accepted as client_secret.
	Secret string
	// Certificates are accepted for client assertions, found by x5t.
	Certificates []*x509.Certificate
}

// Options configure a Server.
type Options struct {
	// Tenant is the tenant id in the token URL and the token issuer.
	// Default: DefaultTenant.
	Tenant string
	// Apps are the registered applications.
	Apps []App
	// TokenLifetime is the access tokens' lifetime. Default: 1h.
	TokenLifetime time.Duration
	// Now is the clock of tokens and assertions. Default: time.Now.
	Now func() time.Time
	// TokenAudience is the aud of the access tokens issued. Default: URL,
	// the only audience the photo endpoints accept; another value stands
	// for tokens minted for another resource (every photo call is a 401).
	TokenAudience string
}

// Server is a running simulator. Close it when done.
type Server struct {
	srv    *httptest.Server
	caPEM  []byte
	caPool *x509.CertPool
	opts   Options

	mu       sync.Mutex
	signKey  *rsa.PrivateKey
	apps     map[string]App
	users    map[string]*user
	throttle time.Duration // > 0: photos answer 429 with this Retry-After
	hostile  []byte        // when set: every photo's body, as a hostile tenant sends it
	rendered map[string][]byte

	tokenReqs, photoReqs, tokensIssued atomic.Int64
}

type user struct {
	uploaded int // px of the uploaded photo; 0: none
	version  int
	name     string // displayName
}

// NewServer starts a Server on loopback.
func NewServer(o Options) *Server {
	if o.Tenant == "" {
		o.Tenant = DefaultTenant
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{opts: o, apps: map[string]App{}, users: map[string]*user{}, rendered: map[string][]byte{}}
	for _, a := range o.Apps {
		s.apps[a.ClientID] = a
	}
	var err error
	if s.signKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic("graphtest: " + err.Error())
	}
	leaf, err := s.newPKI()
	if err != nil {
		panic("graphtest: " + err.Error())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.serveToken)
	mux.HandleFunc("GET /v1.0/users/{id}/photos/{size}/{value}", s.servePhoto)
	mux.HandleFunc("GET /v1.0/users/{id}/photo/{value}", s.servePhoto)
	mux.HandleFunc("GET /v1.0/users/{id}", s.serveUser)
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}, MinVersion: tls.VersionTLS12}
	s.srv.StartTLS()
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the server's root, https://127.0.0.1:port: Graph's base URL.
func (s *Server) URL() string { return s.srv.URL }

// TokenURL is the token endpoint of the tenant.
func (s *Server) TokenURL() string { return s.srv.URL + "/" + s.opts.Tenant + "/oauth2/v2.0/token" }

// Scope is the scope the token endpoint accepts: {URL}/.default.
func (s *Server) Scope() string { return s.srv.URL + "/.default" }

// Issuer is the iss of the access tokens.
func (s *Server) Issuer() string { return "https://sts.windows.net/" + s.opts.Tenant + "/" }

// CACertPEM is the PEM of the CA that signed the server's TLS certificate.
func (s *Server) CACertPEM() []byte { return s.caPEM }

// Client returns an HTTP client that trusts the server's CA only.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12}}}
}

// AddApp registers (or replaces) an application.
func (s *Server) AddApp(a App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[a.ClientID] = a
}

// SetPhoto uploads a new photo for user id at px pixels (48 to 648): sizes
// up to it exist. Each call gives new bytes and a new ETag.
func (s *Server) SetPhoto(id string, px int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.userLocked(id)
	u.uploaded, u.version = px, u.version+1
}

// SetPhotoBody makes every photo answer carry b instead of the real
// bytes, labelled image/jpeg (a pixel bomb, a page behind JPEG magic);
// nil restores the real photos.
func (s *Server) SetPhotoBody(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostile = b
}

// AddUser adds user id without a photo.
func (s *Server) AddUser(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(id)
}

// SetDisplayName sets user id's displayName.
func (s *Server) SetDisplayName(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(id).name = name
}

// RemovePhoto deletes user id's photo.
func (s *Server) RemovePhoto(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userLocked(id).uploaded = 0
}

func (s *Server) userLocked(id string) *user {
	k := strings.ToLower(id)
	if s.users[k] == nil {
		s.users[k] = &user{}
	}
	return s.users[k]
}

// Throttle makes every photo request answer 429 with Retry-After d (whole
// seconds, at least 1); zero ends it.
func (s *Server) Throttle(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle = d
}

// RevokeTokens invalidates every access token issued so far, as a key
// rollover does.
func (s *Server) RevokeTokens() {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("graphtest: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signKey = k
}

// TokenRequests counts the requests that reached the token endpoint.
func (s *Server) TokenRequests() int { return int(s.tokenReqs.Load()) }

// TokensIssued counts the access tokens issued.
func (s *Server) TokensIssued() int { return int(s.tokensIssued.Load()) }

// PhotoRequests counts the requests that reached the photo endpoints,
// answered or not.
func (s *Server) PhotoRequests() int { return int(s.photoReqs.Load()) }

// PhotoBytes returns what the server serves for id at a Graph size
// ("96x96") and its quoted ETag; ok is false for a 404.
func (s *Server) PhotoBytes(id, size string) (body []byte, etag string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.photoLocked(id, size)
}

func (s *Server) photoLocked(id, size string) ([]byte, string, bool) {
	px, valid := sizes[size]
	u := s.users[strings.ToLower(id)]
	if !valid || u == nil || u.uploaded == 0 || px > u.uploaded {
		return nil, "", false
	}
	key := fmt.Sprintf("%s/%d/%d", strings.ToLower(id), u.version, px)
	b := s.rendered[key]
	if b == nil {
		b = render(key, px)
		s.rendered[key] = b
	}
	sum := sha256.Sum256(b)
	return b, `"` + hex.EncodeToString(sum[:8]) + `"`, true
}

// render draws a px×px JPEG whose colours come from key.
func render(key string, px int) []byte {
	h := fnv.New32a()
	h.Write([]byte(key))
	v := h.Sum32()
	img := image.NewRGBA(image.Rect(0, 0, px, px))
	bg := color.RGBA{R: uint8(v), G: uint8(v >> 8), B: uint8(v >> 16), A: 255}
	fg := color.RGBA{R: 255 - bg.R, G: 255 - bg.G, B: 255 - bg.B, A: 255}
	for y := range px {
		for x := range px {
			c := bg
			if (x-px/2)*(x-px/2)+(y-px/2)*(y-px/2) < px*px/9 {
				c = fg
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		panic("graphtest: " + err.Error())
	}
	return buf.Bytes()
}

// graphErr writes Graph's JSON error body.
func graphErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (s *Server) servePhoto(w http.ResponseWriter, r *http.Request) {
	s.photoReqs.Add(1)
	if r.PathValue("value") != "$value" {
		graphErr(w, http.StatusBadRequest, "BadRequest", "Unsupported segment type.")
		return
	}
	s.mu.Lock()
	throttle, pub := s.throttle, &s.signKey.PublicKey
	s.mu.Unlock()
	if throttle > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(throttle/time.Second))))
		graphErr(w, http.StatusTooManyRequests, "TooManyRequests", "Too many requests.")
		return
	}
	if err := s.checkAccessToken(r.Header.Get("Authorization"), pub); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"`)
		graphErr(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. "+err.Error())
		return
	}
	size := r.PathValue("size")
	if size == "" {
		size = "648x648"
	}
	if _, ok := sizes[size]; !ok {
		graphErr(w, http.StatusBadRequest, "ErrorInvalidSize", "The requested photo size is not supported.")
		return
	}
	s.mu.Lock()
	_, known := s.users[strings.ToLower(r.PathValue("id"))]
	body, etag, ok := s.photoLocked(r.PathValue("id"), size)
	if ok && s.hostile != nil {
		body, etag = s.hostile, `"hostile"`
	}
	s.mu.Unlock()
	switch {
	case !known:
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", r.PathValue("id")))
		return
	case !ok:
		graphErr(w, http.StatusNotFound, "ImageNotFound",
			"Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown.")
		return
	}
	w.Header().Set("ETag", etag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.TrimPrefix(inm, "W/") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// serveUser answers GET /v1.0/users/{id}?$select=displayName.
func (s *Server) serveUser(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	pub := &s.signKey.PublicKey
	u, known := s.users[strings.ToLower(r.PathValue("id"))]
	name := ""
	if known {
		name = u.name
	}
	s.mu.Unlock()
	if err := s.checkAccessToken(r.Header.Get("Authorization"), pub); err != nil {
		graphErr(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. "+err.Error())
		return
	}
	if !known {
		graphErr(w, http.StatusNotFound, "Request_ResourceNotFound",
			fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", r.PathValue("id")))
		return
	}
	if r.URL.Query().Get("$select") != "displayName" {
		graphErr(w, http.StatusBadRequest, "BadRequest", "the simulator answers $select=displayName only")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"displayName": name})
}

// accessClaims are the claims of the access tokens the server issues.
type accessClaims struct {
	jwt.RegisteredClaims
	AppID string   `json:"appid"`
	Roles []string `json:"roles"`
}

func (s *Server) checkAccessToken(authz string, pub *rsa.PublicKey) error {
	raw, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || raw == "" {
		return fmt.Errorf("no bearer token")
	}
	var c accessClaims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(s.Issuer()), jwt.WithAudience(s.URL()),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.opts.Now))
	if err != nil {
		return err
	}
	if c.AppID == "" {
		return fmt.Errorf("no appid")
	}
	return nil
}

// tokenErr writes the token endpoint's JSON error body.
func tokenErr(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "error_description": desc})
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.tokenReqs.Add(1)
	if r.PathValue("tenant") != s.opts.Tenant {
		tokenErr(w, http.StatusBadRequest, "invalid_request", "AADSTS90002: Tenant '"+r.PathValue("tenant")+"' not found.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || len(r.URL.Query()) > 0 {
		tokenErr(w, http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body must be a form; nothing in the query.")
		return
	}
	f := r.PostForm
	if f.Get("grant_type") != "client_credentials" {
		tokenErr(w, http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
		return
	}
	clientID := f.Get("client_id")
	s.mu.Lock()
	app, known := s.apps[clientID]
	s.mu.Unlock()
	switch {
	case !known:
		tokenErr(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier '"+clientID+"' was not found in the directory.")
		return
	case f.Get("scope") != s.Scope():
		tokenErr(w, http.StatusBadRequest, "invalid_scope", "AADSTS70011: The provided value for the input parameter 'scope' is not valid.")
		return
	}
	secret, assertion := f.Get("client_secret"), f.Get("client_assertion")
	switch {
	case secret != "" && assertion != "":
		tokenErr(w, http.StatusBadRequest, "invalid_request", "AADSTS90011: Only one client credential may be sent.")
		return
	case secret != "":
		if app.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(app.Secret)) != 1 {
			tokenErr(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
			return
		}
	case assertion != "":
		if f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			tokenErr(w, http.StatusBadRequest, "invalid_request", "AADSTS70002: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.")
			return
		}
		if code, desc := s.checkAssertion(app, assertion); code != "" {
			tokenErr(w, http.StatusUnauthorized, code, desc)
			return
		}
	default:
		tokenErr(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}

	now := s.opts.Now()
	jti := make([]byte, 16)
	_, _ = rand.Read(jti)
	s.mu.Lock()
	key := s.signKey
	s.mu.Unlock()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: s.Issuer(), Audience: jwt.ClaimStrings{cmp.Or(s.opts.TokenAudience, s.URL())}, Subject: clientID,
			ID: hex.EncodeToString(jti), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.opts.TokenLifetime)),
		},
		AppID: clientID, Roles: []string{"User.Read.All"},
	}).SignedString(key)
	if err != nil {
		tokenErr(w, http.StatusInternalServerError, "server_error", "signing: "+err.Error())
		return
	}
	s.tokensIssued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "expires_in": int(s.opts.TokenLifetime / time.Second),
		"ext_expires_in": int(s.opts.TokenLifetime / time.Second), "access_token": tok,
	})
}

// checkAssertion verifies a client assertion for app; it returns the
// error code and description on failure.
func (s *Server) checkAssertion(app App, assertion string) (string, string) {
	var c jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(assertion, &c, func(t *jwt.Token) (any, error) {
		x5t, _ := t.Header["x5t"].(string)
		for _, cert := range app.Certificates {
			sum := sha1.Sum(cert.Raw)
			if x5t != "" && x5t == base64.RawURLEncoding.EncodeToString(sum[:]) {
				return cert.PublicKey, nil
			}
		}
		return nil, fmt.Errorf("AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application")
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(s.TokenURL()), jwt.WithIssuer(app.ClientID),
		jwt.WithSubject(app.ClientID), jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.opts.Now))
	switch {
	case err != nil:
		return "invalid_client", "AADSTS700027: Client assertion failed validation: " + err.Error()
	case c.ID == "":
		return "invalid_client", "AADSTS700027: Client assertion has no jti."
	case c.NotBefore == nil || c.ExpiresAt.Sub(c.NotBefore.Time) > 10*time.Minute:
		return "invalid_client", "AADSTS700024: Client assertion is not within its valid time range (nbf required, at most 10 minutes)."
	}
	return "", ""
}

// newPKI makes the CA and the loopback TLS leaf.
func (s *Server) newPKI() (tls.Certificate, error) {
	p, err := testpki.New("graphtest CA")
	if err != nil {
		return tls.Certificate{}, err
	}
	s.caPEM, s.caPool = p.CAPEM, p.Pool
	return p.Leaf, nil
}
