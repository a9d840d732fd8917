// Package oauth mints the server-to-server (S2S) tokens with which photosync,
// posing as SharePoint Server 2013, calls Exchange on a user's behalf, and
// publishes the auth metadata document through which Exchange learns to trust
// us.
//
// The model is SharePoint's high-trust S2S flow. An Issuer holds our
// certificate, its RSA key and our realm (a GUID). For each Exchange host it
// builds an RS256 actor token, signed with the key and naming our certificate
// by its SHA-1 thumbprint (x5t), and for each user wraps it in an unsigned
// user-context token that names the user by SMTP address. Both tokens carry the audience
// "00000002-0000-0ff1-ce00-000000000000/{exchange host}@{our realm}".
// Exchange fetches our metadata document (Metadata, MetadataHandler) once,
// when the administrator registers us as a partner application, and from then
// on trusts any actor token signed by a certificate listed there.
//
// Tokens are cached per (user, host), actor tokens per host, and reused
// until five minutes before they expire; a user's token expires with the
// actor token it carries. The package never logs a token or a key.
package oauth

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Well-known application IDs of the Microsoft first-party principals.
const (
	// ExchangeID is Exchange's application ID; it is the client-ID part of
	// every audience we mint for.
	ExchangeID = "00000002-0000-0ff1-ce00-000000000000"
	// SharePointID is SharePoint's application ID, the default Options.ClientID.
	SharePointID = "00000003-0000-0ff1-ce00-000000000000"
)

const (
	// DefaultClockSkew is how far in the past nbf is set unless
	// Options.ClockSkew says otherwise, so a receiver whose clock runs slow
	// still accepts a fresh token.
	DefaultClockSkew = 5 * time.Minute
	// DefaultLifetime is how long a minted token is valid unless
	// Options.Lifetime says otherwise.
	DefaultLifetime = time.Hour
	// renewBefore is how long before exp a cached token is replaced, so a
	// token never expires while a request carrying it is in flight.
	renewBefore = 5 * time.Minute
	// niiActiveDirectory names the identity provider of the user in the
	// outer token.
	niiActiveDirectory = "urn:office:idp:activedirectory"
)

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Options configures an Issuer.
type Options struct {
	// Certificate is ours: Exchange finds it in our metadata document and
	// checks actor-token signatures with it. Required.
	Certificate *x509.Certificate
	// Key is the RSA private key of Certificate; it signs actor tokens.
	// Required, and New checks that it matches Certificate.
	Key *rsa.PrivateKey
	// Realm is our realm, a GUID (SharePoint's Get-SPAuthenticationRealm).
	// Required. It is written in lower case.
	Realm string
	// ClientID is the application ID we act as, a GUID.
	// Default: SharePointID.
	ClientID string
	// Lifetime is how long a token is valid from the moment it is minted.
	// It must exceed the 5m renewal margin. Default: 1h.
	Lifetime time.Duration
	// Rotation lists more certificate/key pairs, for certificate rotation:
	// the metadata document publishes every certificate (Certificate's and
	// these), and tokens are signed with the newest of them all, the one
	// with the latest NotBefore (on a tie, the one listed last). Publish a new pair here, let Exchange
	// re-read our metadata (Set-PartnerApplication -RefreshAuthMetadata),
	// then drop the old one. Default: none.
	Rotation []KeyPair
	// ClockSkew is how far in the past a token's nbf is set, for a receiver
	// whose clock runs slow. Default: 5m.
	ClockSkew time.Duration
	// CacheSize caps how many (user, host) tokens are kept, and how many
	// hosts' actor tokens: a token is a few kilobytes, and minting one for
	// a new person only wraps the host's signed actor token, so a small
	// cache of the recently active people is the right trade. Default: 1000.
	CacheSize int
	// MetadataURL is the public URL at which MetadataHandler is served; when
	// set it is listed in the metadata document's endpoints.
	MetadataURL string
	// Now tells the time. Default: time.Now.
	Now func() time.Time
	// Logger receives debug records about minted tokens (never the tokens).
	// Default: discard.
	Logger *slog.Logger
}

// Issuer mints and caches S2S tokens. It is safe for concurrent use.
type Issuer struct {
	cert       *x509.Certificate
	key        *rsa.PrivateKey
	x5t        string
	realm      string
	clientID   string
	issuer     string // clientID@realm: actor iss and nameid, outer iss
	lifetime   time.Duration
	cacheSize  int
	skew       time.Duration
	now        func() time.Time
	log        *slog.Logger
	metadata   Metadata
	metadataJS []byte

	mu     sync.RWMutex
	tokens map[cacheKey]cachedToken
	// actors holds the signed actor token per host: it names no user, so
	// every user's token for that host carries the same one until it is
	// due for renewal, and a person's first token costs no RSA signature.
	actors map[string]actorToken

	hits, misses atomic.Int64 // Token calls answered from the cache, or minted
}

type cacheKey struct{ user, host string }

type cachedToken struct {
	token   string
	renewAt time.Time // exp - renewBefore
}

type actorToken struct {
	signed   string
	nbf, exp time.Time
}

// A KeyPair is a certificate and its RSA private key.
type KeyPair struct {
	Certificate *x509.Certificate
	Key         *rsa.PrivateKey
}

// New checks opts and returns an Issuer.
func New(opts Options) (*Issuer, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if opts.Certificate == nil {
		bad("certificate is required")
	}
	if opts.Key == nil {
		bad("key is required")
	}
	if opts.Certificate != nil && opts.Key != nil && !opts.Key.PublicKey.Equal(opts.Certificate.PublicKey) {
		bad("key does not match the certificate's public key")
	}
	for n, p := range opts.Rotation {
		if p.Certificate == nil || p.Key == nil || !p.Key.PublicKey.Equal(p.Certificate.PublicKey) {
			bad("rotation pair %d: want a certificate and its matching key", n+1)
		}
	}
	if opts.ClockSkew < 0 {
		bad("clock skew %v is negative", opts.ClockSkew)
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = DefaultClockSkew
	}
	if !guidRE.MatchString(opts.Realm) {
		bad("realm: want a GUID, got %q", opts.Realm)
	}
	if opts.ClientID == "" {
		opts.ClientID = SharePointID
	}
	if !guidRE.MatchString(opts.ClientID) {
		bad("client id: want a GUID, got %q", opts.ClientID)
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.Lifetime <= renewBefore {
		bad("lifetime %v must exceed the %v renewal margin", opts.Lifetime, renewBefore)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 1000
	}
	if opts.CacheSize < 0 {
		bad("cache size %d is negative", opts.CacheSize)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("oauth: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}

	// Sign with the newest pair; publish them all.
	signer := KeyPair{Certificate: opts.Certificate, Key: opts.Key}
	certs := []*x509.Certificate{opts.Certificate}
	for _, p := range opts.Rotation {
		certs = append(certs, p.Certificate)
		if !p.Certificate.NotBefore.Before(signer.Certificate.NotBefore) { // a tie: the later listed
			signer = p
		}
	}
	i := &Issuer{
		cert:      signer.Certificate,
		key:       signer.Key,
		x5t:       Thumbprint(signer.Certificate),
		skew:      opts.ClockSkew,
		realm:     strings.ToLower(opts.Realm),
		clientID:  strings.ToLower(opts.ClientID),
		lifetime:  opts.Lifetime,
		cacheSize: opts.CacheSize,
		now:       opts.Now,
		log:       opts.Logger,
		tokens:    make(map[cacheKey]cachedToken),
		actors:    make(map[string]actorToken),
	}
	i.issuer = i.clientID + "@" + i.realm
	i.metadata = ourMetadata(i.clientID, i.realm, opts.MetadataURL, certs)
	js, err := json.Marshal(i.metadata)
	if err != nil {
		return nil, fmt.Errorf("oauth: encoding metadata: %w", err)
	}
	i.metadataJS = js
	if now := i.now(); now.After(i.cert.NotAfter) {
		i.log.Warn("s2s certificate has expired", "thumbprint", i.x5t, "not_after", i.cert.NotAfter)
	}
	return i, nil
}

// Issuer returns our issuer name, clientID@realm: the iss of actor tokens and
// the issuer of our metadata document.
func (i *Issuer) Issuer() string { return i.issuer }

// Realm returns our realm in lower case.
func (i *Issuer) Realm() string { return i.realm }

// Token returns a user-context token with which the user (an SMTP address)
// may be served by the Exchange server at host (the host of its URL, with
// the port if the URL has one). A token minted earlier for the same user and
// host is returned until five minutes before it expires.
func (i *Issuer) Token(ctx context.Context, user, host string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("oauth: minting token: %w", err)
	}
	user, host = strings.ToLower(strings.TrimSpace(user)), strings.ToLower(strings.TrimSpace(host))
	if err := checkUser(user); err != nil {
		return "", fmt.Errorf("oauth: minting token: %w", err)
	}
	if err := checkHost(host); err != nil {
		return "", fmt.Errorf("oauth: minting token: %w", err)
	}
	k := cacheKey{user, host}
	now := i.now()

	i.mu.RLock()
	c, ok := i.tokens[k]
	i.mu.RUnlock()
	if ok && now.Before(c.renewAt) {
		i.hits.Add(1)
		return c.token, nil
	}
	i.misses.Add(1)

	// Mint outside the lock: signing takes a while and must not hold up
	// callers for other users. Concurrent first callers may both mint; the
	// first one stored wins, so they all return the same string.
	tok, exp, err := i.mint(user, host, now)
	if err != nil {
		return "", fmt.Errorf("oauth: minting token: %w", err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if c, ok := i.tokens[k]; ok && now.Before(c.renewAt) {
		return c.token, nil
	}
	if _, ok := i.tokens[k]; !ok && len(i.tokens) >= i.cacheSize {
		i.prune(now)
	}
	i.tokens[k] = cachedToken{token: tok, renewAt: exp.Add(-renewBefore)}
	i.log.Debug("minted s2s token", "user", user, "host", host, "exp", exp)
	return tok, nil
}

// CacheCounts returns how many Token calls the cache answered (hits) and
// how many had to mint (misses).
func (i *Issuer) CacheCounts() (hits, misses int64) {
	return i.hits.Load(), i.misses.Load()
}

// Forget drops the cached token for user at host, and the actor token
// every user's token for host carries, so the next Token call mints and
// signs afresh. Call it when Exchange rejects a token with 401.
func (i *Issuer) Forget(user, host string) {
	k := cacheKey{strings.ToLower(strings.TrimSpace(user)), strings.ToLower(strings.TrimSpace(host))}
	i.mu.Lock()
	delete(i.tokens, k)
	delete(i.actors, k.host)
	i.mu.Unlock()
}

// prune makes room: it drops tokens due for renewal and, if the cache is
// still full, arbitrary others until an eighth of it is free, so that a
// warm of more people than the cache holds walks the map once per eighth
// of the cache, not once per person. Called with mu held.
func (i *Issuer) prune(now time.Time) {
	for k, c := range i.tokens {
		if !now.Before(c.renewAt) {
			delete(i.tokens, k)
		}
	}
	keep := i.cacheSize - max(1, i.cacheSize/8)
	for k := range i.tokens {
		if len(i.tokens) <= keep {
			break
		}
		delete(i.tokens, k)
	}
}

// actorClaims are the claims of the signed actor token.
type actorClaims struct {
	jwt.RegisteredClaims
	// Audience shadows RegisteredClaims.Audience, which jwt marshals as an
	// array by default (a package-level switch we must not flip); the
	// add-in tokens Exchange knows carry a single string.
	Audience             string `json:"aud"`
	NameID               string `json:"nameid"`
	TrustedForDelegation string `json:"trustedfordelegation"`
}

// outerClaims are the claims of the unsigned user-context token.
type outerClaims struct {
	Audience   string `json:"aud"`
	Issuer     string `json:"iss"`
	NotBefore  int64  `json:"nbf"`
	Expires    int64  `json:"exp"`
	NameID     string `json:"nameid"`
	NII        string `json:"nii"`
	UPN        string `json:"upn"`
	SMTP       string `json:"smtp"`
	ActorToken string `json:"actortoken"`
}

// outerHeader is the fixed header of the user-context token, pre-encoded.
var outerHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"none"}`))

// mint builds a user-context token for user at host around host's actor
// token (actor), valid as long as that is. user and host are already lower
// case and checked.
func (i *Issuer) mint(user, host string, now time.Time) (string, time.Time, error) {
	aud := ExchangeID + "/" + host + "@" + i.realm
	actor, err := i.actor(host, aud, now)
	if err != nil {
		return "", time.Time{}, err
	}
	payload, err := json.Marshal(outerClaims{
		Audience:   aud,
		Issuer:     i.issuer,
		NotBefore:  actor.nbf.Unix(),
		Expires:    actor.exp.Unix(),
		NameID:     user,
		NII:        niiActiveDirectory,
		UPN:        user,
		SMTP:       user,
		ActorToken: actor.signed,
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("encoding user token: %w", err)
	}
	return outerHeader + "." + base64.RawURLEncoding.EncodeToString(payload) + ".", actor.exp, nil
}

// actor returns host's actor token: the cached one until five minutes
// before it expires, else one valid from now-skew to now+lifetime, signed
// with the newest key pair (outside the lock; concurrent signers both
// sign, the last stored wins, and each returns a valid token).
func (i *Issuer) actor(host, aud string, now time.Time) (actorToken, error) {
	i.mu.RLock()
	a, ok := i.actors[host]
	i.mu.RUnlock()
	if ok && now.Before(a.exp.Add(-renewBefore)) {
		return a, nil
	}
	nbf := now.Add(-i.skew).Truncate(time.Second)
	exp := now.Add(i.lifetime).Truncate(time.Second)
	actor := jwt.NewWithClaims(jwt.SigningMethodRS256, actorClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			NotBefore: jwt.NewNumericDate(nbf),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Audience:             aud,
		NameID:               i.issuer,
		TrustedForDelegation: "true",
	})
	actor.Header["x5t"] = i.x5t
	signed, err := actor.SignedString(i.key)
	if err != nil {
		return actorToken{}, fmt.Errorf("signing actor token: %w", err)
	}
	a = actorToken{signed: signed, nbf: nbf, exp: exp}
	i.mu.Lock()
	if len(i.actors) >= i.cacheSize {
		clear(i.actors) // more hosts than people cached: start over
	}
	i.actors[host] = a
	i.mu.Unlock()
	i.log.Debug("signed s2s actor token", "host", host, "exp", exp)
	return a, nil
}

// checkUser accepts a plain SMTP address local@domain.
func checkUser(user string) error {
	local, domain, ok := strings.Cut(user, "@")
	if !ok || local == "" || domain == "" || strings.Contains(domain, "@") ||
		strings.ContainsFunc(user, func(r rune) bool { return r <= ' ' || r == '"' || r == 0x7f }) {
		return fmt.Errorf("user %q is not an smtp address", user)
	}
	return nil
}

// checkHost accepts a URL host: a name or address with an optional port.
func checkHost(host string) error {
	if host == "" || strings.ContainsAny(host, `/\@?#%`) ||
		strings.ContainsFunc(host, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("host %q is not a url host", host)
	}
	return nil
}

// MetadataHandler serves our metadata document (Metadata) as JSON to GET and
// HEAD requests. Mount it where Options.MetadataURL points, for instance at
// SharePoint's path /_layouts/15/metadata/json/1.
func (i *Issuer) MetadataHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(i.metadataJS)))
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write(i.metadataJS)
		}
	})
}

// Metadata returns our metadata document.
func (i *Issuer) Metadata() Metadata { return i.metadata.clone() }
