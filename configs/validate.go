package configs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file checks a Config: one function per section, every problem
// reported at once with its key (and its line, when read from a file).

// A reporter records one problem with a key; validation calls it for every
// problem, so all of them are reported at once.
type reporter func(key, format string, args ...any)

// validate checks every key and reports all problems at once, one section
// at a time. doc, when not nil, lets each problem name its line.
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
	c.validateListeners(bad)
	c.Photos.validate(bad)
	if c.Photos.ImportEnabled && c.UsesExchange() {
		c.validateExchangeNeeds(bad)
	}
	c.Exchange.validate(bad)
	c.S2S.validate(bad)
	c.validateSources(bad)
	c.Store.validate(bad)
	c.Identity.validate(bad)
	c.Log.validate(bad)
	c.Admin.validate(bad)
	return errors.Join(errs...)
}

// validateListeners checks listen and upstream, and fills in UpstreamURL.
func (c *Config) validateListeners(bad reporter) {
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
}

func (p *Photos) validate(bad reporter) {
	if p.Expiration <= 0 {
		bad("photos.expiration", "must be positive")
	}
	if p.ErrorExpiration <= 0 {
		bad("photos.error_expiration", "must be positive")
	}
	if p.Trigger != TriggerSelf && p.Trigger != TriggerAny {
		bad("photos.trigger", "want %q or %q, got %q", TriggerSelf, TriggerAny, p.Trigger)
	}
	if p.MaxBytes < 1024 {
		bad("photos.max_bytes", "must be at least 1KiB")
	}
	if p.MaxPixels < 648*648 {
		bad("photos.max_pixels", "must be at least 419904 (648×648, the master size), got %d", p.MaxPixels)
	}
	if p.DecodeMemory < 16<<20 {
		bad("photos.decode_memory", "must be at least 16MiB (a progressive 648×648 JPEG needs about 8MiB)")
	}
	if p.PullTimeout <= 0 {
		bad("photos.pull_timeout", "must be positive")
	}
	if p.ColdDeadline <= 0 {
		bad("photos.cold_deadline", "must be positive")
	}
	if p.Placeholder != "silhouette" && p.Placeholder != "initials" {
		bad("photos.placeholder", "want silhouette or initials, got %q", p.Placeholder)
	}
	if p.JPEGQuality < 1 || p.JPEGQuality > 100 {
		bad("photos.jpeg_quality", "want 1 to 100, got %d", p.JPEGQuality)
	}
	if p.MaxStale.D() < p.Expiration.D() {
		bad("photos.max_stale", "must be at least photos.expiration (%v)", p.Expiration)
	}
}

// validateExchangeNeeds checks what pulling from Exchange requires: where
// Autodiscover is, and our S2S identity.
func (c *Config) validateExchangeNeeds(bad reporter) {
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

func (e *Exchange) validate(bad reporter) {
	for _, p := range e.AllowedHosts {
		if !validHostPattern(p) {
			bad("exchange.allowed_hosts", "want host names, *.domain or IP addresses, each with an optional :port, without scheme, got %q", p)
		}
	}
	if e.Timeout <= 0 {
		bad("exchange.timeout", "must be positive")
	}
	if e.AutodiscoverCache <= 0 {
		bad("exchange.autodiscover_cache", "must be positive")
	}
	if e.MaxConcurrency < 1 || e.MaxConcurrency > 1024 {
		bad("exchange.max_concurrency", "want 1 to 1024, got %d", e.MaxConcurrency)
	}
}

func (s *S2S) validate(bad reporter) {
	for n, p := range s.Certificates {
		if p.Certificate == "" || p.Key == "" {
			bad("s2s.certificates", "entry %d: want both certificate and key", n+1)
		}
	}
	if s.ClockSkew < 0 || s.ClockSkew.D() > time.Hour {
		bad("s2s.clock_skew", "want 0 to 1h, got %s", s.ClockSkew.D())
	}
	if s.PublicURL != "" {
		if u, err := url.Parse(s.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			bad("s2s.public_url", "want an absolute http(s) URL such as https://photos.contoso.com, got %q", s.PublicURL)
		}
	}
	if !guidRE.MatchString(s.ClientID) {
		bad("s2s.client_id", "want a GUID, got %q", s.ClientID)
	}
	if s.TokenLifetime.D() < 10*time.Minute {
		bad("s2s.token_lifetime", "must be at least 10m (tokens are renewed 5m before they expire)")
	}
}

func (s *Store) validate(bad reporter) {
	if s.RedisURL == "" && s.Path == "" {
		bad("store.path", "required when store.redis_url is empty")
	}
	if s.RedisURL != "" {
		// The URL is parsed in full by the store (config check runs that
		// parser too); here are the checks that need a line number.
		u, err := url.Parse(s.RedisURL)
		switch {
		case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "":
			bad("store.redis_url", "want redis://host:port/db, …?master_name=NAME&addr=… (Sentinel), …?addr=…&addr=… (Cluster) or rediss://…")
		case u.Query().Has("skip_verify"):
			bad("store.redis_url", "skip_verify is refused: Redis' certificate is always verified (set store.redis_ca_file for a private CA)")
		case u.Scheme == "redis" && (s.RedisCAFile != "" || s.RedisCertificate != ""):
			bad("store.redis_url", "store.redis_ca_file and store.redis_certificate need a rediss:// URL")
		}
	}
	switch s.RedisMode {
	case "auto", "single", "sentinel", "cluster":
	default:
		bad("store.redis_mode", "want auto, single, sentinel or cluster, got %q", s.RedisMode)
	}
	if (s.RedisCertificate == "") != (s.RedisKey == "") {
		bad("store.redis_certificate", "want both redis_certificate and redis_key, or neither")
	}
	if s.MemoryTTL <= 0 {
		bad("store.memory_ttl", "must be positive")
	}
	if s.RedisPrefix == "" || strings.ContainsAny(s.RedisPrefix, "{} \t\n") {
		bad("store.redis_prefix", "must be non-empty, without braces or spaces")
	}
	if s.MemoryLimit < 0 {
		bad("store.memory_limit", "must not be negative")
	}
}

// validate checks the header and the trusted proxies, and fills in
// Prefixes.
func (id *Identity) validate(bad reporter) {
	if !validHeaderName(id.Header) {
		bad("identity.header", "not a valid HTTP header name: %q", id.Header)
	}
	id.Prefixes = id.Prefixes[:0]
	for _, s := range id.TrustedProxies {
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
		id.Prefixes = append(id.Prefixes, p.Masked())
	}
}

func (l *Log) validate(bad reporter) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", l.Level)
	}
	if l.Format != "text" && l.Format != "json" {
		bad("log.format", "want text or json, got %q", l.Format)
	}
}

func (a *Admin) validate(bad reporter) {
	if a.Listen == "" {
		return
	}
	host, _, err := net.SplitHostPort(a.Listen)
	switch {
	case err != nil:
		bad("admin.listen", "want host:port, got %q", a.Listen)
	case a.Token == "" && os.Getenv(AdminTokenEnv) == "" && !loopbackHost(host):
		bad("admin.listen", "%s is not loopback: set admin.token or %s", a.Listen, AdminTokenEnv)
	}
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
func (c *Config) validateSources(bad reporter) {
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
func (c *Config) validateGraph(bad reporter) {
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
