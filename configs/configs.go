// Package configs reads photosync's admin config file: a YAML document whose
// keys are named after SharePoint's settings where SharePoint has one
// (UserPhotoExpiration is photos.expiration, ExchangeAutodiscoverDomain is
// exchange.autodiscover_domain, …).
//
// Load fills in defaults, resolves relative file paths against the config
// file's folder and validates everything at once: every problem is reported,
// each naming its key, the line it is on and the reason. The example file
// photosync.example.yaml beside this package documents every key.
package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"photosync/autodiscover"
	"photosync/oauth"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/directory"
	"photosync/sync/exchange"
	"photosync/sync/graph"
	"photosync/sync/photo"
	"photosync/web"
)

// Trigger values for photos.trigger.
const (
	// TriggerSelf: only the owner's own request pulls their photo from the
	// master, as SharePoint does.
	TriggerSelf = "self"
	// TriggerAny: any viewer's request may pull.
	TriggerAny = "any"
)

// Config is the whole admin config file.
type Config struct {
	Listen   string   `yaml:"listen"`
	Photos   Photos   `yaml:"photos"`
	Exchange Exchange `yaml:"exchange"`
	S2S      S2S      `yaml:"s2s"`
	Store    Store    `yaml:"store"`
	Identity Identity `yaml:"identity"`
	Log      Log      `yaml:"log"`
	Admin    Admin    `yaml:"admin"`

	// Sources are where photos are pulled from, asked in order: the first
	// photo wins, a photo deleted on purpose or an error stops the walk.
	// Names: exchange, graph, directory. Default: [exchange]
	Sources   []string  `yaml:"sources"`
	Directory Directory `yaml:"directory"`
	Graph     Graph     `yaml:"graph"`

	// Upstream, when set, is the application photosync stands in front of
	// (sidecar mode): http(s)://host[:port]. Default: "" (photo routes only)
	Upstream string `yaml:"upstream"`
	// UpstreamURL is Upstream parsed, filled by validation; nil when unset.
	UpstreamURL *url.URL `yaml:"-"`
}

// Photos holds the photo-sync policy.
type Photos struct {
	ImportEnabled   bool     `yaml:"import_enabled"`   // SharePoint UserPhotoImportEnabled. Default: true
	Expiration      Hours    `yaml:"expiration"`       // UserPhotoExpiration; a bare number is hours. Default: 6h
	ErrorExpiration Hours    `yaml:"error_expiration"` // UserPhotoErrorExpiration; a bare number is hours. Default: 1h
	Trigger         string   `yaml:"trigger"`          // self or any. Default: self
	MaxBytes        ByteSize `yaml:"max_bytes"`        // largest photo accepted from the master. Default: 4MiB
	PullTimeout     Duration `yaml:"pull_timeout"`     // whole pull (autodiscover, token, fetch). Default: 30s
	ColdDeadline    Duration `yaml:"cold_deadline"`    // longest a request waits for a photo we lack. Default: 2s
	MaxStale        Duration `yaml:"max_stale"`        // oldest copy served once its timer ran out. Default: 168h
	DeriveSizes     bool     `yaml:"derive_sizes"`     // pull HR648x648 once, scale the rest here. Default: true
	JPEGQuality     int      `yaml:"jpeg_quality"`     // of derived JPEGs, 1-100. Default: 85
	Placeholder     string   `yaml:"placeholder"`      // silhouette or initials, for a person without a photo. Default: silhouette
	// MaxPixels bounds width × height as a photo's header claims it;
	// a larger photo is a failed pull, never decoded. Default: 16777216 (16 megapixels)
	MaxPixels int64 `yaml:"max_pixels"`
	// DecodeMemory bounds the pixels all decodes (checking pulled photos,
	// deriving sizes) hold at once; the process's peak stays within
	// store.memory_limit + this + 64MiB. Default: 64MiB
	DecodeMemory ByteSize `yaml:"decode_memory"`
}

// Source names for Config.Sources.
const (
	SourceExchange  = "exchange"
	SourceDirectory = "directory"
	SourceGraph     = "graph"
)

// Graph is the Microsoft Graph source (used when sources lists graph): an
// app registration with User.Read.All, authenticated by a client secret or
// a certificate.
type Graph struct {
	Tenant          string   `yaml:"tenant"`            // tenant id or verified domain, for the default token_url
	ClientID        string   `yaml:"client_id"`         // the application (client) id, a GUID
	ClientSecret    string   `yaml:"client_secret"`     // or client_secret_env, or certificate and key
	ClientSecretEnv string   `yaml:"client_secret_env"` // name of an environment variable holding the secret
	Certificate     string   `yaml:"certificate"`       // PEM certificate registered on the application
	Key             string   `yaml:"key"`               // its PEM RSA private key
	TokenURL        string   `yaml:"token_url"`         // Default: https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token
	BaseURL         string   `yaml:"base_url"`          // Default: https://graph.microsoft.com
	CAFile          string   `yaml:"ca_file"`           // extra PEM CA bundle for TLS to Graph and the token endpoint
	Timeout         Duration `yaml:"timeout"`           // one photo call, token included. Default: 15s
}

// Secret returns the client secret, from the environment when
// client_secret_env names a variable.
func (g Graph) Secret() string {
	if g.ClientSecretEnv != "" {
		return os.Getenv(g.ClientSecretEnv)
	}
	return g.ClientSecret
}

// Directory is the LDAP directory source (used when sources lists directory).
type Directory struct {
	URL             string   `yaml:"url"`               // ldap://host[:port] or ldaps://host[:port]
	BindDN          string   `yaml:"bind_dn"`           // the service account
	BindPassword    string   `yaml:"bind_password"`     // its password; or bind_password_env
	BindPasswordEnv string   `yaml:"bind_password_env"` // name of an environment variable holding it
	BaseDN          string   `yaml:"base_dn"`           // where people are searched
	MatchAttributes []string `yaml:"match_attributes"`  // compared with the address. Default: [mail, userPrincipalName]
	PhotoAttributes []string `yaml:"photo_attributes"`  // read in order. Default: [thumbnailPhoto, jpegPhoto]
	Timeout         Duration `yaml:"timeout"`           // dial, bind, each search. Default: 5s
	PoolSize        int      `yaml:"pool_size"`         // idle connections kept. Default: 4
	CAFile          string   `yaml:"ca_file"`           // extra PEM CA bundle for ldaps:// (an enterprise CA)
}

// Password returns the bind password, from the environment when
// bind_password_env names a variable.
func (d Directory) Password() string {
	if d.BindPasswordEnv != "" {
		return os.Getenv(d.BindPasswordEnv)
	}
	return d.BindPassword
}

// Exchange says how to reach the master.
type Exchange struct {
	AutodiscoverDomain string   `yaml:"autodiscover_domain"` // ExchangeAutodiscoverDomain: host[:port]
	CAFile             string   `yaml:"ca_file"`             // extra PEM CA bundle for TLS to Exchange
	AllowHTTP          bool     `yaml:"allow_http"`          // plain http refused unless true
	Timeout            Duration `yaml:"timeout"`             // one HTTP exchange with Exchange. Default: 15s
	AutodiscoverCache  Duration `yaml:"autodiscover_cache"`  // how long an Autodiscover answer is kept. Default: 1h
	MaxConcurrency     int      `yaml:"max_concurrency"`     // photo calls to Exchange in flight at once. Default: 16
	// AllowedHosts are host patterns (mail.contoso.com, *.contoso.com, an IP)
	// every URL from Autodiscover and every redirect must match.
	// Default (empty): the autodiscover domain's parent domain and its
	// subdomains, or the host itself for an IP or a single-label name.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// AutodiscoverFallback tries the email domain's endpoints (https://{d},
	// https://autodiscover.{d}, the HTTP redirect probe, DNS SRV) when the
	// configured domain does not answer. Default: true
	AutodiscoverFallback bool `yaml:"autodiscover_fallback"`
}

// S2S holds our side of the server-to-server OAuth trust.
type S2S struct {
	Certificate   string   `yaml:"certificate"`    // PEM certificate whose key signs actor tokens
	Key           string   `yaml:"key"`            // PEM RSA private key
	Realm         string   `yaml:"realm"`          // our realm, a GUID
	ClientID      string   `yaml:"client_id"`      // Default: SharePoint's 00000003-0000-0ff1-ce00-000000000000
	TokenLifetime Duration `yaml:"token_lifetime"` // Default: 1h
	// Certificates are more certificate/key pairs, for rotation: all are
	// published in our metadata document, tokens are signed with the newest
	// (latest NotBefore). Certificate/Key may then be left empty.
	Certificates []CertificatePair `yaml:"certificates"`
	// ClockSkew is how far in the past our tokens' nbf is set. Default: 5m
	ClockSkew Duration `yaml:"clock_skew"`
	// PublicURL is where Exchange reaches photosync (our metadata document
	// is at {PublicURL}/_layouts/15/metadata/json/1).
	// Default: https://{listen}
	PublicURL string `yaml:"public_url"`
}

// CertificatePair is one entry of s2s.certificates.
type CertificatePair struct {
	Certificate string `yaml:"certificate"` // PEM certificate
	Key         string `yaml:"key"`         // its RSA private key (PEM)
}

// Store says where photos are kept.
type Store struct {
	Path string `yaml:"path"` // folder of the embedded store. Default: ./data
	// RedisURL, when set, makes Redis hold records, bytes, timers and the
	// pull lock: redis://[user:pass@]host:port/db for one node,
	// …?master_name=NAME&addr=host:port&addr=… for Sentinel (the hosts are
	// sentinels), …?addr=host:port&addr=… for a Cluster; rediss:// for TLS.
	RedisURL string `yaml:"redis_url"`
	// RedisMode forces how RedisURL is read: auto, single, sentinel or
	// cluster (e.g. a Cluster reached through one seed). Default: auto
	RedisMode   string `yaml:"redis_mode"`
	RedisPrefix string `yaml:"redis_prefix"` // starts every key and the invalidation channel. Default: photosync:
	// RedisCAFile is a PEM file of the CAs that sign Redis' certificate
	// (rediss:// only). Default: the system's roots
	RedisCAFile string `yaml:"redis_ca_file"`
	// RedisCertificate and RedisKey are the PEM client certificate and key
	// for a Redis with tls-auth-clients. Both or neither. Default: none
	RedisCertificate string   `yaml:"redis_certificate"`
	RedisKey         string   `yaml:"redis_key"`
	MemoryLimit      ByteSize `yaml:"memory_limit"` // bound of the in-memory hot layer. Default: 64MiB
	// MemoryTTL bounds how long, with Redis, a photo is served from memory
	// while this replica is not subscribed to the others' changes.
	// Default: 30s
	MemoryTTL Duration `yaml:"memory_ttl"`
}

// Identity says who is asking.
type Identity struct {
	Header         string   `yaml:"header"`          // set by the reverse proxy. Default: X-Forwarded-Email
	TrustedProxies []string `yaml:"trusted_proxies"` // CIDRs whose Header is believed. Default: loopback

	// Prefixes is TrustedProxies parsed, filled by Load.
	Prefixes []netip.Prefix `yaml:"-"`
}

// Log says how photosync logs.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error. Default: info
	Format string `yaml:"format"` // text or json. Default: text
	// Access logs one line per request at info: status, bytes,
	// Cache-Status, elapsed, request id, route. Default: false (debug only)
	Access bool `yaml:"access"`
}

// Admin configures the operators' HTTP API (inspect, forget, refresh, warm,
// /metrics, /readyz), served on a listener of its own.
type Admin struct {
	Listen string `yaml:"listen"` // host:port; empty disables the admin API. Default: 127.0.0.1:9090
	Token  string `yaml:"token"`  // bearer token; env PHOTOSYNC_ADMIN_TOKEN overrides. Required off loopback
}

// AdminTokenEnv names the environment variable that, when set, overrides
// admin.token, so the token need not be written in the config file.
const AdminTokenEnv = "PHOTOSYNC_ADMIN_TOKEN"

// SharePointClientID is SharePoint's well-known principal ID, the default
// s2s.client_id.
const SharePointClientID = oauth.SharePointID

// Default returns the configuration used for every key the file leaves out.
// A default that a package applies to its own zero value is taken from that
// package, so each is written once; the rest (listen addresses, paths, the
// booleans that default to true) are photosync's own and live here.
func Default() Config {
	return Config{
		Listen: "127.0.0.1:8080",
		Photos: Photos{
			ImportEnabled:   true,
			Expiration:      Hours(psync.DefaultExpiration),
			ErrorExpiration: Hours(psync.DefaultErrorExpiration),
			Trigger:         TriggerSelf,
			MaxBytes:        photo.DefaultMaxBytes,
			PullTimeout:     Duration(psync.DefaultPullTimeout),
			ColdDeadline:    Duration(psync.DefaultColdDeadline),
			MaxStale:        Duration(psync.DefaultMaxStale),
			DeriveSizes:     true,
			JPEGQuality:     psync.DefaultJPEGQuality,
			Placeholder:     "silhouette",
			MaxPixels:       photo.DefaultMaxPixels,
			DecodeMemory:    photo.DefaultDecodeMemory,
		},
		Exchange: Exchange{
			Timeout:              Duration(autodiscover.DefaultTimeout),
			AutodiscoverCache:    Duration(autodiscover.DefaultCacheTTL),
			AutodiscoverFallback: true,
			MaxConcurrency:       exchange.DefaultMaxConcurrency,
		},
		S2S: S2S{
			ClientID:      SharePointClientID,
			TokenLifetime: Duration(oauth.DefaultLifetime),
			ClockSkew:     Duration(oauth.DefaultClockSkew),
		},
		Store: Store{Path: "./data", RedisMode: string(store.RedisAuto), RedisPrefix: store.DefaultPrefix,
			MemoryLimit: 64 << 20, MemoryTTL: Duration(30 * time.Second)},
		Identity:  Identity{Header: web.DefaultIdentityHeader, TrustedProxies: []string{"127.0.0.1/32", "::1/128"}},
		Log:       Log{Level: "info", Format: "text"},
		Admin:     Admin{Listen: "127.0.0.1:9090"},
		Sources:   []string{SourceExchange},
		Directory: Directory{Timeout: Duration(directory.DefaultTimeout), PoolSize: directory.DefaultPoolSize},
		Graph:     Graph{Timeout: Duration(graph.DefaultTimeout)},
	}
}

// Load reads, defaults and validates the config file at path. Relative file
// paths in it are taken relative to the file's folder.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("configs: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("configs: %s: %w", path, err)
	}
	c.resolvePaths(filepath.Dir(path))
	return c, nil
}

// Parse reads, defaults and validates a config document. File paths are
// left as written.
func Parse(b []byte) (Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return Config{}, fmt.Errorf("not valid YAML: %w", err)
	}
	c := Default()
	if len(root.Content) == 0 { // an empty file: all defaults
		return c, c.validate(nil)
	}
	doc := root.Content[0]
	if err := checkKeys(doc, "", keysOf(c)); err != nil {
		return Config{}, err
	}
	if errs := checkTypes(doc, reflect.TypeOf(c), ""); len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	if err := doc.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("%w", cleanDecodeError(err))
	}
	return c, c.validate(doc)
}

func (c *Config) resolvePaths(dir string) {
	paths := []*string{&c.Exchange.CAFile, &c.S2S.Certificate, &c.S2S.Key, &c.Store.Path,
		&c.Store.RedisCAFile, &c.Store.RedisCertificate, &c.Store.RedisKey,
		&c.Graph.Certificate, &c.Graph.Key, &c.Graph.CAFile, &c.Directory.CAFile}
	for i := range c.S2S.Certificates {
		paths = append(paths, &c.S2S.Certificates[i].Certificate, &c.S2S.Certificates[i].Key)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// UsesExchange reports whether Exchange is one of the sources, and so
// whether the exchange and s2s sections are needed. A tenant that reads
// photos only through Graph (EWS is switched off in Exchange Online) needs
// neither.
func (c *Config) UsesExchange() bool {
	return slices.Contains(c.Sources, SourceExchange)
}

// Validate checks a Config built in code (Load and Parse validate already)
// and fills in Identity.Prefixes.
func (c *Config) Validate() error { return c.validate(nil) }

// validate checks every key and reports all problems at once. doc, when not
// nil, lets each problem name its line.
func (c *Config) validate(doc *yaml.Node) error {
	var errs []error
	bad := func(key, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line := lineOf(doc, key); line > 0 {
			errs = append(errs, fmt.Errorf("line %d: %s: %s", line, key, msg))
			return
		}
		errs = append(errs, fmt.Errorf("%s: %s", key, msg))
	}

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	}

	c.UpstreamURL = nil
	if c.Upstream != "" {
		u, err := parseUpstream(c.Upstream)
		if err != nil {
			bad("upstream", "%v", err)
		}
		c.UpstreamURL = u
	}

	if c.Photos.Expiration <= 0 {
		bad("photos.expiration", "must be positive")
	}
	if c.Photos.ErrorExpiration <= 0 {
		bad("photos.error_expiration", "must be positive")
	}
	if c.Photos.Trigger != TriggerSelf && c.Photos.Trigger != TriggerAny {
		bad("photos.trigger", "want %q or %q, got %q", TriggerSelf, TriggerAny, c.Photos.Trigger)
	}
	if c.Photos.MaxBytes < 1024 {
		bad("photos.max_bytes", "must be at least 1KiB")
	}
	if c.Photos.MaxPixels < 648*648 {
		bad("photos.max_pixels", "must be at least 419904 (648×648, the master size), got %d", c.Photos.MaxPixels)
	}
	if c.Photos.DecodeMemory < 16<<20 {
		bad("photos.decode_memory", "must be at least 16MiB (a progressive 648×648 JPEG needs about 8MiB)")
	}
	if c.Photos.PullTimeout <= 0 {
		bad("photos.pull_timeout", "must be positive")
	}
	if c.Photos.ColdDeadline <= 0 {
		bad("photos.cold_deadline", "must be positive")
	}
	if c.Photos.Placeholder != "silhouette" && c.Photos.Placeholder != "initials" {
		bad("photos.placeholder", "want silhouette or initials, got %q", c.Photos.Placeholder)
	}
	if c.Photos.JPEGQuality < 1 || c.Photos.JPEGQuality > 100 {
		bad("photos.jpeg_quality", "want 1 to 100, got %d", c.Photos.JPEGQuality)
	}
	if c.Photos.MaxStale.D() < c.Photos.Expiration.D() {
		bad("photos.max_stale", "must be at least photos.expiration (%v)", c.Photos.Expiration)
	}

	if c.Photos.ImportEnabled && c.UsesExchange() {
		if c.Exchange.AutodiscoverDomain == "" {
			bad("exchange.autodiscover_domain", "required when photos.import_enabled is true and sources lists exchange")
		} else if err := checkHostPort(c.Exchange.AutodiscoverDomain); err != nil {
			bad("exchange.autodiscover_domain", "%v", err)
		}
		if c.S2S.Certificate == "" && len(c.S2S.Certificates) == 0 {
			bad("s2s.certificate", "required when photos.import_enabled is true (or list s2s.certificates)")
		}
		if c.S2S.Key == "" && c.S2S.Certificate != "" {
			bad("s2s.key", "required with s2s.certificate")
		}
		if c.S2S.Key == "" && len(c.S2S.Certificates) == 0 {
			bad("s2s.key", "required when photos.import_enabled is true")
		}
		if !guidRE.MatchString(c.S2S.Realm) {
			bad("s2s.realm", "want a GUID such as 6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b, got %q", c.S2S.Realm)
		}
	}
	for _, p := range c.Exchange.AllowedHosts {
		if !validHostPattern(p) {
			bad("exchange.allowed_hosts", "want host names, *.domain or IP addresses, each with an optional :port, without scheme, got %q", p)
		}
	}
	for n, p := range c.S2S.Certificates {
		if p.Certificate == "" || p.Key == "" {
			bad("s2s.certificates", "entry %d: want both certificate and key", n+1)
		}
	}
	if c.S2S.ClockSkew < 0 || c.S2S.ClockSkew.D() > time.Hour {
		bad("s2s.clock_skew", "want 0 to 1h, got %s", c.S2S.ClockSkew.D())
	}
	if c.S2S.PublicURL != "" {
		if u, err := url.Parse(c.S2S.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			bad("s2s.public_url", "want an absolute http(s) URL such as https://photos.contoso.com, got %q", c.S2S.PublicURL)
		}
	}
	c.validateSources(bad)
	if c.Exchange.Timeout <= 0 {
		bad("exchange.timeout", "must be positive")
	}
	if c.Exchange.AutodiscoverCache <= 0 {
		bad("exchange.autodiscover_cache", "must be positive")
	}
	if c.Exchange.MaxConcurrency < 1 || c.Exchange.MaxConcurrency > 1024 {
		bad("exchange.max_concurrency", "want 1 to 1024, got %d", c.Exchange.MaxConcurrency)
	}
	if !guidRE.MatchString(c.S2S.ClientID) {
		bad("s2s.client_id", "want a GUID, got %q", c.S2S.ClientID)
	}
	if c.S2S.TokenLifetime.D() < 10*time.Minute {
		bad("s2s.token_lifetime", "must be at least 10m (tokens are renewed 5m before they expire)")
	}

	if c.Store.RedisURL == "" && c.Store.Path == "" {
		bad("store.path", "required when store.redis_url is empty")
	}
	if c.Store.RedisURL != "" {
		// The URL is parsed in full by the store (config check runs that
		// parser too); here are the checks that need a line number.
		u, err := url.Parse(c.Store.RedisURL)
		switch {
		case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "":
			bad("store.redis_url", "want redis://host:port/db, …?master_name=NAME&addr=… (Sentinel), …?addr=…&addr=… (Cluster) or rediss://…")
		case u.Query().Has("skip_verify"):
			bad("store.redis_url", "skip_verify is refused: Redis' certificate is always verified (set store.redis_ca_file for a private CA)")
		case u.Scheme == "redis" && (c.Store.RedisCAFile != "" || c.Store.RedisCertificate != ""):
			bad("store.redis_url", "store.redis_ca_file and store.redis_certificate need a rediss:// URL")
		}
	}
	switch c.Store.RedisMode {
	case "auto", "single", "sentinel", "cluster":
	default:
		bad("store.redis_mode", "want auto, single, sentinel or cluster, got %q", c.Store.RedisMode)
	}
	if (c.Store.RedisCertificate == "") != (c.Store.RedisKey == "") {
		bad("store.redis_certificate", "want both redis_certificate and redis_key, or neither")
	}
	if c.Store.MemoryTTL <= 0 {
		bad("store.memory_ttl", "must be positive")
	}
	if c.Store.RedisPrefix == "" || strings.ContainsAny(c.Store.RedisPrefix, "{} \t\n") {
		bad("store.redis_prefix", "must be non-empty, without braces or spaces")
	}
	if c.Store.MemoryLimit < 0 {
		bad("store.memory_limit", "must not be negative")
	}

	if !validHeaderName(c.Identity.Header) {
		bad("identity.header", "not a valid HTTP header name: %q", c.Identity.Header)
	}
	c.Identity.Prefixes = c.Identity.Prefixes[:0]
	for _, s := range c.Identity.TrustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			bad("identity.trusted_proxies", "want CIDRs such as 10.0.0.0/8, got %q", s)
			continue
		}
		c.Identity.Prefixes = append(c.Identity.Prefixes, p.Masked())
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "want text or json, got %q", c.Log.Format)
	}
	if c.Admin.Listen != "" {
		host, _, err := net.SplitHostPort(c.Admin.Listen)
		switch {
		case err != nil:
			bad("admin.listen", "want host:port, got %q", c.Admin.Listen)
		case c.Admin.Token == "" && os.Getenv(AdminTokenEnv) == "" && !loopbackHost(host):
			bad("admin.listen", "%s is not loopback: set admin.token or %s", c.Admin.Listen, AdminTokenEnv)
		}
	}
	return errors.Join(errs...)
}

// loopbackHost reports whether host (of host:port) only listens on loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// parseUpstream accepts http(s)://host[:port] with nothing after it but an
// optional "/": requests reach the application with their own path unchanged.
func parseUpstream(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, fmt.Errorf("want an http or https URL, got %q", s)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("want an http or https URL, got %q", s)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("want a host in %q", s)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("want scheme://host[:port] only, got %q", s)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// checkHostPort accepts host or host:port, without a scheme or a path.
func checkHostPort(s string) error {
	if strings.Contains(s, "://") || strings.ContainsAny(s, "/?#@ ") {
		return fmt.Errorf("want host[:port] without scheme or path, got %q", s)
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		host = h
		if port == "" {
			return fmt.Errorf("empty port in %q", s)
		}
	}
	if host == "" {
		return fmt.Errorf("want host[:port], got %q", s)
	}
	return nil
}

var hostPatternRE = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)

// validHostPattern accepts what autodiscover.Hosts accepts: a host name,
// *.domain or an IP address, each with or without a port (an IPv6 address
// with a port in brackets: [::1]:8443).
func validHostPattern(p string) bool {
	if strings.HasPrefix(p, "[") || strings.Count(p, ":") == 1 {
		h, port, err := net.SplitHostPort(p)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || port[0] == '0' {
			return false
		}
		if strings.HasPrefix(p, "[") {
			_, err := netip.ParseAddr(h)
			return err == nil && strings.Contains(h, ":")
		}
		p = h
	}
	if _, err := netip.ParseAddr(p); err == nil {
		return true
	}
	return len(p) <= 253 && hostPatternRE.MatchString(p)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// validateSources checks sources and, when it lists directory, the
// directory section.
func (c *Config) validateSources(bad func(key, format string, args ...any)) {
	if len(c.Sources) == 0 {
		bad("sources", "list at least one source (exchange, graph, directory)")
	}
	seen := map[string]bool{}
	for _, s := range c.Sources {
		switch {
		case s != SourceExchange && s != SourceDirectory && s != SourceGraph:
			bad("sources", "want %q, %q or %q, got %q", SourceExchange, SourceGraph, SourceDirectory, s)
		case seen[s]:
			bad("sources", "%q is listed twice", s)
		}
		seen[s] = true
	}
	if seen[SourceGraph] {
		c.validateGraph(bad)
	}
	if !seen[SourceDirectory] {
		return
	}
	d := c.Directory
	if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || u.User != nil {
		bad("directory.url", "want ldap://host[:port] or ldaps://host[:port], got %q", d.URL)
	}
	if d.BindDN == "" {
		bad("directory.bind_dn", "required when sources lists directory")
	}
	switch {
	case d.BindPassword != "" && d.BindPasswordEnv != "":
		bad("directory.bind_password", "set bind_password or bind_password_env, not both")
	case d.BindPasswordEnv != "" && os.Getenv(d.BindPasswordEnv) == "":
		bad("directory.bind_password_env", "environment variable %q is empty or unset", d.BindPasswordEnv)
	case d.BindPassword == "" && d.BindPasswordEnv == "":
		bad("directory.bind_password", "required when sources lists directory (or set bind_password_env)")
	}
	if d.BaseDN == "" {
		bad("directory.base_dn", "required when sources lists directory")
	}
	if d.Timeout <= 0 {
		bad("directory.timeout", "must be positive")
	}
	if d.PoolSize < 1 || d.PoolSize > 64 {
		bad("directory.pool_size", "want 1 to 64, got %d", d.PoolSize)
	}
}

var tenantRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)

// validateGraph checks the graph section (sources lists graph).
func (c *Config) validateGraph(bad func(key, format string, args ...any)) {
	g := c.Graph
	switch {
	case g.Tenant == "" && g.TokenURL == "":
		bad("graph.tenant", "required when sources lists graph (or set token_url)")
	case g.Tenant != "" && !tenantRE.MatchString(g.Tenant):
		bad("graph.tenant", "want a tenant id (GUID) or a domain such as contoso.onmicrosoft.com, got %q", g.Tenant)
	}
	if !guidRE.MatchString(g.ClientID) {
		bad("graph.client_id", "want the application (client) id, a GUID, got %q", g.ClientID)
	}
	secrets := 0
	for _, set := range []bool{g.ClientSecret != "", g.ClientSecretEnv != "", g.Certificate != "" || g.Key != ""} {
		if set {
			secrets++
		}
	}
	switch {
	case secrets > 1:
		bad("graph.client_secret", "set one of client_secret, client_secret_env, or certificate and key")
	case secrets == 0:
		bad("graph.client_secret", "required when sources lists graph (or client_secret_env, or certificate and key)")
	case g.ClientSecretEnv != "" && os.Getenv(g.ClientSecretEnv) == "":
		bad("graph.client_secret_env", "environment variable %q is empty or unset", g.ClientSecretEnv)
	case g.Certificate != "" && g.Key == "":
		bad("graph.key", "required with graph.certificate")
	case g.Key != "" && g.Certificate == "":
		bad("graph.certificate", "required with graph.key")
	}
	for key, v := range map[string]string{"graph.token_url": g.TokenURL, "graph.base_url": g.BaseURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			bad(key, "want an absolute https URL without credentials or query, got %q", v)
		}
	}
	if g.Timeout <= 0 {
		bad("graph.timeout", "must be positive")
	}
}
