package main

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"photosync/admin"
	"photosync/autodiscover"
	"photosync/configs"
	"photosync/oauth"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/directory"
	"photosync/sync/exchange"
	"photosync/sync/graph"
	"photosync/sync/photo"
	"photosync/web"
)

// This file is the one place photosync is wired from a config: serve, demo,
// doctor, warm, inspect and forget all build their parts here, so that the
// Exchange source, the chain and the store are made the same way for all.

// app is photosync wired from a config.
type app struct {
	handler http.Handler
	store   store.Store
	engine  *psync.Engine // for the operator commands and the admin API
	metrics *admin.Metrics
	ready   func(context.Context) error // does the store answer?
	sources []photo.Source              // closed with the app (LDAP connections)
}

// Close lets background pulls end (for at most 10s), then closes the store.
func (a *app) Close() error {
	a.release()
	return a.store.Close()
}

// release lets background pulls end (for at most 10s), then closes the
// sources, leaving the store open: what a reload does to the app it
// replaces.
func (a *app) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.engine.Wait(ctx)
	closeSources(a.sources)
}

// storage is the store an app runs on, opened once per process: a reload
// builds a new app on the same storage.
type storage struct {
	backing store.Store // closed last
	store   store.Store // backing, or the hot layer in front of it
	hot     *store.Hot  // nil without store.memory_limit
	locker  psync.Locker
	ready   func(context.Context) error
	// stats and metrics belong to the process too, so that a reload's
	// engine counts on where the last one stopped.
	stats   *psync.Stats
	metrics *admin.Metrics
}

// openStorage opens the store of cfg, with its hot layer.
func openStorage(ctx context.Context, cfg configs.Config, log *slog.Logger) (*storage, error) {
	backing, locker, ready, err := openStore(ctx, cfg.Store, log)
	if err != nil {
		return nil, err
	}
	s := &storage{backing: backing, store: backing, locker: locker, ready: readyLogged(ready, log.With("component", "store"))}
	if cfg.Store.MemoryLimit > 0 {
		var hopts store.HotOptions
		if cfg.Store.RedisURL != "" {
			// Other replicas write too: memory is bounded in time while the
			// invalidation subscription is down.
			hopts.MemoryTTL = cfg.Store.MemoryTTL.D()
		}
		s.hot = store.NewHot(backing, int64(cfg.Store.MemoryLimit), hopts)
		s.store = s.hot
	}
	s.stats = new(psync.Stats)
	s.metrics = admin.NewMetrics()
	s.metrics.ExportBuild(buildLabels())
	s.metrics.ExportStoreUp(s.ready)
	s.metrics.Export(s.stats)
	if s.hot != nil {
		s.metrics.ExportMemory(s.hot.Bytes, s.hot.Len)
	}
	return s, nil
}

// build wires every package from cfg. people, when set, get a people page.
func build(ctx context.Context, cfg configs.Config, log *slog.Logger, people []web.Person) (*app, error) {
	if _, err := loadSecrets(cfg); err != nil { // before the store is opened
		return nil, err
	}
	s, err := openStorage(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	a, err := buildOn(ctx, cfg, s, log, people)
	if err != nil {
		s.backing.Close()
		return nil, err
	}
	return a, nil
}

// buildOn wires everything but the store from cfg, on s: the sources, the
// engine, the web face and the metrics. It leaves s open when it fails.
func buildOn(ctx context.Context, cfg configs.Config, s *storage, log *slog.Logger, people []web.Person) (*app, error) {
	sec, err := loadSecrets(cfg)
	if err != nil {
		return nil, err
	}
	metrics := s.metrics.Fresh() // this configuration's part of the metrics
	eopts := engineOptions(cfg, log)
	eopts.Store, eopts.Locker, eopts.Stats = s.store, s.locker, s.stats
	wopts := web.Options{
		IdentityHeader: cfg.Identity.Header,
		TrustedProxies: cfg.Identity.Prefixes,
		People:         people,
		Placeholder:    cfg.Photos.Placeholder,
		Ready:          s.ready,
		Upstream:       cfg.UpstreamURL,
		AccessLog:      cfg.Log.Access,
		Logger:         log.With("component", "http"),
	}

	if cfg.Photos.ImportEnabled {
		var x *exchangeParts
		if cfg.UsesExchange() {
			if x, err = newExchange(cfg, sec, log, metrics.Transport); err != nil {
				return nil, err
			}
			checkExchange(ctx, x.client, x.metadataURL, log)
			metrics.ExportCache("autodiscover", "Autodiscover lookups", x.locator.CacheCounts)
			metrics.ExportCache("token", "S2S tokens", x.issuer.CacheCounts)
			wopts.Edit = x.source
			wopts.Metadata = x.issuer.MetadataHandler()
		}
		if eopts.Sources, err = buildSources(cfg, sec, x, log); err != nil {
			return nil, err
		}
	}

	engine, err := psync.New(eopts)
	if err != nil {
		closeSources(eopts.Sources)
		return nil, err
	}
	metrics.ExportBackoff(func() map[string]int { return backedOff(eopts.Sources) })
	h := web.New(engine, wopts)
	return &app{handler: metrics.Wrap(h), store: s.backing, engine: engine, metrics: metrics, ready: s.ready, sources: eopts.Sources}, nil
}

// engineOptions is the engine's part of cfg, without the store and sources.
func engineOptions(cfg configs.Config, log *slog.Logger) psync.Options {
	o := psync.Options{
		ImportEnabled:   cfg.Photos.ImportEnabled,
		Expiration:      cfg.Photos.Expiration.D(),
		ErrorExpiration: cfg.Photos.ErrorExpiration.D(),
		PullTimeout:     cfg.Photos.PullTimeout.D(),
		ColdDeadline:    cfg.Photos.ColdDeadline.D(),
		MaxStale:        cfg.Photos.MaxStale.D(),
		Derive:          cfg.Photos.DeriveSizes,
		JPEGQuality:     cfg.Photos.JPEGQuality,
		MaxPixels:       cfg.Photos.MaxPixels,
		DecodeMemory:    int64(cfg.Photos.DecodeMemory),
		Logger:          log.With("component", "sync"),
	}
	if cfg.Photos.Trigger == configs.TriggerAny {
		o.Trigger = psync.TriggerAny
	}
	return o
}

// secrets is every file serve reads for its sources, loaded and checked:
// the S2S certificates and keys, the Graph certificate and key, the CA
// bundles. build wires them in, and config check and serve --check load
// them with this same code, so a check that passes means serve can read
// them.
type secrets struct {
	s2s            []oauth.KeyPair // s2s.certificate/key, then s2s.certificates
	exchangeRoots  *x509.CertPool
	graphCert      *x509.Certificate // nil: Graph authenticates by secret
	graphKey       *rsa.PrivateKey
	graphRoots     *x509.CertPool
	directoryRoots *x509.CertPool
}

// loadSecrets loads what the sources cfg uses read (nothing while
// photos.import_enabled is false) and reports every problem at once, each
// naming its config key.
func loadSecrets(cfg configs.Config) (*secrets, error) {
	s := &secrets{}
	if !cfg.Photos.ImportEnabled {
		return s, nil
	}
	var errs []error
	if cfg.UsesExchange() {
		errs = append(errs, s.loadExchange(cfg))
	}
	if slices.Contains(cfg.Sources, configs.SourceGraph) {
		errs = append(errs, s.loadGraph(cfg.Graph))
	}
	if slices.Contains(cfg.Sources, configs.SourceDirectory) {
		var err error
		s.directoryRoots, err = trustedRoots("directory.ca_file", cfg.Directory.CAFile)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// loadExchange loads the S2S pairs and exchange.ca_file.
func (s *secrets) loadExchange(cfg configs.Config) error {
	var err1, err2 error
	s.s2s, err1 = loadPairs(cfg.S2S)
	s.exchangeRoots, err2 = trustedRoots("exchange.ca_file", cfg.Exchange.CAFile)
	return errors.Join(err1, err2)
}

// loadGraph loads graph.certificate/key, when set, and graph.ca_file.
func (s *secrets) loadGraph(c configs.Graph) error {
	var err1, err2 error
	if c.Certificate != "" {
		if s.graphCert, s.graphKey, err1 = oauth.LoadKeyPair(c.Certificate, c.Key); err1 != nil {
			err1 = keyPairError("graph", err1)
		}
	}
	s.graphRoots, err2 = trustedRoots("graph.ca_file", c.CAFile)
	return errors.Join(err1, err2)
}

// openStore opens the configured store: Redis when store.redis_url is set
// (with the pull lock), the embedded store otherwise. ready says whether it
// answers, for /readyz.
func openStore(ctx context.Context, c configs.Store, log *slog.Logger) (store.Store, psync.Locker, func(context.Context) error, error) {
	if c.RedisURL != "" {
		// go-redis logs through one logger of its own for the process.
		redis.SetLogger(redisLog{log.With("component", "redis")})
		r, err := store.NewRedis(c.RedisURL, redisOptions(c, log))
		if err != nil {
			return nil, nil, nil, err
		}
		// Redis may be away at start: photosync serves and pulls without it
		// (timers kept in memory) and uses it as soon as it answers.
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := r.Ping(pingCtx); err != nil {
			log.Error("redis unreachable at start; serving without it until it answers", "err", err)
		}
		cancel()
		return r, r, r.Ping, nil
	}
	b, err := store.OpenBolt(c.Path, store.BoltOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	ready := func(ctx context.Context) error {
		_, err := b.Get(ctx, store.Key{Owner: "readyz.probe@photosync.invalid", Size: photo.DefaultSize})
		if err == nil || errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}
	return b, nil, ready, nil
}

// redisOptions is the one place a config becomes store.RedisOptions; config
// check parses the URL with the same options.
func redisOptions(c configs.Store, log *slog.Logger) store.RedisOptions {
	return store.RedisOptions{
		Mode:        store.RedisMode(c.RedisMode),
		Prefix:      c.RedisPrefix,
		CAFile:      c.RedisCAFile,
		Certificate: c.RedisCertificate,
		Key:         c.RedisKey,
		Logger:      log.With("component", "store"),
	}
}

// exchangeParts is Exchange wired from the config: the S2S issuer, the
// HTTP client to Exchange, the Autodiscover client and the photo source.
type exchangeParts struct {
	issuer      *oauth.Issuer
	client      *http.Client
	locator     *autodiscover.Client
	source      *exchange.Source
	metadataURL string // Exchange's auth metadata document
}

// newExchange wires Exchange from cfg. wrap, when set, wraps the transport
// of the photo calls (the latency histogram); Autodiscover's calls are not
// wrapped. sec holds the loaded S2S pairs and exchange.ca_file (see
// secrets.loadExchange). doctor passes exchangeNoErrorCache so that a retry after a fix
// asks again.
func newExchange(cfg configs.Config, sec *secrets, log *slog.Logger, wrap func(http.RoundTripper) http.RoundTripper, opts ...func(*autodiscover.Options)) (*exchangeParts, error) {
	issuer, client, err := s2s(cfg, sec, log)
	if err != nil {
		return nil, err
	}
	scheme := "https"
	if cfg.Exchange.AllowHTTP {
		scheme = "http"
	}
	aopts := autodiscover.Options{
		Domain:       cfg.Exchange.AutodiscoverDomain,
		Scheme:       scheme,
		Tokens:       issuer,
		HTTPClient:   client,
		AllowHTTP:    cfg.Exchange.AllowHTTP,
		AllowedHosts: autodiscover.Hosts(cfg.Exchange.AllowedHosts),
		Fallback:     cfg.Exchange.AutodiscoverFallback,
		CacheTTL:     cfg.Exchange.AutodiscoverCache.D(),
		Logger:       log.With("component", "autodiscover"),
	}
	for _, o := range opts {
		o(&aopts)
	}
	locator, err := autodiscover.New(aopts)
	if err != nil {
		return nil, err
	}
	photoClient := client
	if wrap != nil {
		c := *client
		c.Transport = wrap(client.Transport)
		photoClient = &c
	}
	src, err := exchange.New(exchange.Options{
		Locator:        locator,
		Tokens:         issuer,
		Client:         photoClient,
		AllowHTTP:      cfg.Exchange.AllowHTTP,
		AllowedHosts:   locator.AllowedHosts(),
		MaxBytes:       int64(cfg.Photos.MaxBytes),
		MaxConcurrency: cfg.Exchange.MaxConcurrency,
	})
	if err != nil {
		return nil, err
	}
	return &exchangeParts{issuer: issuer, client: client, locator: locator, source: src,
		metadataURL: scheme + "://" + cfg.Exchange.AutodiscoverDomain + "/autodiscover/metadata/json/1"}, nil
}

// exchangeNoErrorCache makes the Autodiscover client remember no failure.
func exchangeNoErrorCache(o *autodiscover.Options) { o.ErrorTTL = -1 }

// buildSources turns the sources list into the engine's chain, in order,
// from the files in sec. x is Exchange, wired when the list names it.
func buildSources(cfg configs.Config, sec *secrets, x *exchangeParts, log *slog.Logger) ([]photo.Source, error) {
	var out []photo.Source
	fail := func(err error) ([]photo.Source, error) {
		closeSources(out)
		return nil, err
	}
	for _, name := range cfg.Sources {
		switch name {
		case configs.SourceExchange:
			if x == nil {
				return fail(errors.New("exchange source: not wired")) // programmer error: build wires it first
			}
			out = append(out, x.source)
		case configs.SourceDirectory:
			d := cfg.Directory
			dir, err := directory.New(directory.Options{
				URL: d.URL, BindDN: d.BindDN, BindPassword: d.Password(), BaseDN: d.BaseDN,
				MatchAttributes: d.MatchAttributes, PhotoAttributes: d.PhotoAttributes,
				Timeout: d.Timeout.D(), PoolSize: d.PoolSize, RootCAs: sec.directoryRoots,
				MaxBytes: int64(cfg.Photos.MaxBytes), Logger: log.With("component", "directory"),
			})
			if err != nil {
				return fail(err)
			}
			out = append(out, dir)
		case configs.SourceGraph:
			g, err := graphSource(cfg.Graph, sec, int64(cfg.Photos.MaxBytes), log.With("component", "graph"))
			if err != nil {
				return fail(err)
			}
			out = append(out, g)
		default:
			return fail(fmt.Errorf("unknown source %q", name)) // validation rejects it first
		}
	}
	return out, nil
}

// backedOff counts, for each source that has a back-off circuit (the
// Exchange and Graph sources), the hosts it stops calling now.
func backedOff(sources []photo.Source) map[string]int {
	n := map[string]int{}
	for _, s := range sources {
		if b, ok := s.(interface{ BackedOff() int }); ok {
			n[s.Name()] = b.BackedOff()
		}
	}
	return n
}

// closeSources closes the sources that hold connections.
func closeSources(sources []photo.Source) {
	for _, s := range sources {
		if c, ok := s.(io.Closer); ok {
			c.Close()
		} else if c, ok := s.(interface{ Close() }); ok {
			c.Close()
		}
	}
}

// graphSource builds the Microsoft Graph source from the graph section and
// sec's Graph files: TLS verified against the system roots plus
// graph.ca_file, the certificate loaded and checked as s2s's is.
func graphSource(c configs.Graph, sec *secrets, maxBytes int64, log *slog.Logger) (*graph.Source, error) {
	return graph.New(graph.Options{
		Tenant:       c.Tenant,
		ClientID:     c.ClientID,
		ClientSecret: c.Secret(),
		TokenURL:     c.TokenURL,
		BaseURL:      c.BaseURL,
		Client:       verifiedClient(sec.graphRoots),
		Timeout:      c.Timeout.D(),
		MaxBytes:     maxBytes,
		Logger:       log,
		Certificate:  sec.graphCert,
		Key:          sec.graphKey,
	})
}

// s2s builds, from our loaded signing pairs, the token issuer and the HTTP
// client that talks to Exchange.
func s2s(cfg configs.Config, sec *secrets, log *slog.Logger) (*oauth.Issuer, *http.Client, error) {
	pairs := sec.s2s
	if len(pairs) == 0 {
		return nil, nil, errors.New("s2s.certificate: no certificate loaded") // programmer error: loadSecrets loads them first
	}
	issuer, err := oauth.New(oauth.Options{
		Certificate: pairs[0].Certificate,
		Key:         pairs[0].Key,
		Rotation:    pairs[1:],
		ClockSkew:   cfg.S2S.ClockSkew.D(),
		Realm:       cfg.S2S.Realm,
		ClientID:    cfg.S2S.ClientID,
		Lifetime:    cfg.S2S.TokenLifetime.D(),
		MetadataURL: metadataURL(cfg),
		Logger:      log.With("component", "oauth"),
	})
	if err != nil {
		return nil, nil, err
	}
	client := verifiedClient(sec.exchangeRoots)
	client.Timeout = cfg.Exchange.Timeout.D()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return issuer, client, nil
}

// trustedRoots is the system roots plus the PEM certificates in file (the
// config key named by key), for TLS to a server with a private CA.
func trustedRoots(key, file string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if file == "" {
		return roots, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: %s holds no PEM certificate", key, file)
	}
	return roots, nil
}

// verifiedClient is an HTTP client whose TLS trusts roots (from
// trustedRoots); verification is always on.
func verifiedClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 32
	tr.MaxResponseHeaderBytes = 64 << 10
	return &http.Client{Transport: tr}
}

// checkExchange reads Exchange's auth metadata document at startup, to say
// early in the log whether Exchange is reachable and who it is. A failure is
// logged, not fatal: Exchange may come up after photosync.
func checkExchange(ctx context.Context, client *http.Client, url string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := oauth.FetchMetadata(ctx, client, url)
	if err == nil {
		err = oauth.CheckExchangeMetadata(m)
	}
	if err != nil {
		log.Warn("exchange metadata check failed; photos cannot be pulled until it passes", "url", url, "err", err)
		return
	}
	log.Info("exchange metadata ok", "url", url, "issuer", m.Issuer, "certificates", len(m.Certificates()))
}
