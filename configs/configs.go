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
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"
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
