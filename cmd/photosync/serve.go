package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"photosync/admin"
	"photosync/autodiscover"
	"photosync/configs"
	"photosync/oauth"
	"photosync/store"
	psync "photosync/sync"
)

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("config", "", "the admin config file (YAML)")
	check := fs.Bool("check", false, "validate the config file and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "photosync serve: --config FILE is required")
		return errUsage
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		return err
	}
	if *check {
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return nil
	}
	log := newLogger(cfg.Log, stderr)
	setMemoryLimit(cfg.Store, log)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serve(ctx, cfg, ln, log, nil)
}

// setMemoryLimit gives the Go runtime a soft memory limit of the hot
// layer's bound plus headroom, so the garbage collector keeps the process
// near what the operator configured instead of letting the heap double
// between collections. GOMEMLIMIT, when set, wins.
func setMemoryLimit(c configs.Store, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := int64(c.MemoryLimit) + 64<<20
	debug.SetMemoryLimit(limit)
	log.Debug("go memory limit set", "bytes", limit)
}

func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by configs
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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

// app is photosync wired from a config.
type app struct {
	handler http.Handler
	store   store.Store
	engine  *psync.Engine // for the operator commands and the admin API
	metrics *admin.Metrics
	ready   func(context.Context) error // does the store answer?
	sources []psync.Source              // closed with the app (LDAP connections)
}

// Close lets background pulls end (for at most 10s), then closes the store.
func (a *app) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.engine.Wait(ctx)
	closeSources(a.sources)
	return a.store.Close()
}

// build wires every package from cfg. people, when set, get a directory page.
func build(ctx context.Context, cfg configs.Config, log *slog.Logger, people []psync.Person) (*app, error) {
	var backing store.Store
	var locker psync.Locker
	var ready func(context.Context) error // does the store answer?
	if cfg.Store.RedisURL != "" {
		r, err := store.NewRedis(cfg.Store.RedisURL, redisOptions(cfg.Store, log))
		if err != nil {
			return nil, err
		}
		// Redis may be away at start: photosync serves and pulls without it
		// (timers kept in memory) and uses it as soon as it answers.
		pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := r.Ping(pingCtx); err != nil {
			log.Error("redis unreachable at start; serving without it until it answers", "err", err)
		}
		cancel()
		backing, locker, ready = r, r, r.Ping
	} else {
		b, err := store.OpenBolt(cfg.Store.Path, store.BoltOptions{})
		if err != nil {
			return nil, err
		}
		backing = b
		ready = func(ctx context.Context) error {
			_, err := b.Get(ctx, store.Key{Owner: "readyz.probe@photosync.invalid", Size: psync.DefaultSize})
			if err == nil || errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		}
	}
	st := store.Store(backing)
	if cfg.Store.MemoryLimit > 0 {
		var hopts store.HotOptions
		if cfg.Store.RedisURL != "" {
			hopts.MemoryTTL = cfg.Store.MemoryTTL.D()
		}
		st = store.NewHot(backing, int64(cfg.Store.MemoryLimit), hopts)
	}

	eopts := psync.Options{
		Store:           st,
		Locker:          locker,
		ImportEnabled:   cfg.Photos.ImportEnabled,
		Expiration:      cfg.Photos.Expiration.D(),
		ErrorExpiration: cfg.Photos.ErrorExpiration.D(),
		PullTimeout:     cfg.Photos.PullTimeout.D(),
		ColdDeadline:    cfg.Photos.ColdDeadline.D(),
		MaxStale:        cfg.Photos.MaxStale.D(),
		Derive:          cfg.Photos.DeriveSizes,
		JPEGQuality:     cfg.Photos.JPEGQuality,
		Logger:          log.With("component", "sync"),
	}
	if cfg.Photos.Trigger == configs.TriggerAny {
		eopts.Trigger = psync.TriggerAny
	}
	hopts := psync.HandlerOptions{
		IdentityHeader: cfg.Identity.Header,
		TrustedProxies: cfg.Identity.Prefixes,
		People:         people,
		Ready:          ready,
		Upstream:       cfg.UpstreamURL,
		Logger:         log.With("component", "http"),
	}

	metrics := admin.NewMetrics()
	if cfg.Photos.ImportEnabled && cfg.UsesExchange() {
		issuer, client, err := s2s(cfg, log)
		if err != nil {
			backing.Close()
			return nil, err
		}
		scheme := "https"
		if cfg.Exchange.AllowHTTP {
			scheme = "http"
		}
		checkExchange(ctx, client, scheme+"://"+cfg.Exchange.AutodiscoverDomain+"/autodiscover/metadata/json/1", log)
		locator, err := autodiscover.New(autodiscover.Options{
			Domain:       cfg.Exchange.AutodiscoverDomain,
			Scheme:       scheme,
			Tokens:       issuer,
			HTTPClient:   client,
			AllowHTTP:    cfg.Exchange.AllowHTTP,
			AllowedHosts: autodiscover.Hosts(cfg.Exchange.AllowedHosts),
			Fallback:     cfg.Exchange.AutodiscoverFallback,
			CacheTTL:     cfg.Exchange.AutodiscoverCache.D(),
			Logger:       log.With("component", "autodiscover"),
		})
		if err != nil {
			backing.Close()
			return nil, err
		}
		eopts.Locator = locator
		metrics.ExportCache("autodiscover", "Autodiscover lookups", locator.CacheCounts)
		metrics.ExportCache("token", "S2S tokens", issuer.CacheCounts)
		// The master's calls, not Autodiscover's, feed the latency histogram.
		masterClient := *client
		masterClient.Transport = metrics.Transport(client.Transport)
		eopts.Master = &psync.Master{
			Client:         &masterClient,
			Tokens:         issuer,
			AllowHTTP:      cfg.Exchange.AllowHTTP,
			AllowedHosts:   locator.AllowedHosts(),
			MaxBytes:       int64(cfg.Photos.MaxBytes),
			MaxConcurrency: cfg.Exchange.MaxConcurrency,
		}
		hopts.Locator = locator
		hopts.Metadata = issuer.MetadataHandler()
	}
	if cfg.Photos.ImportEnabled {
		sources, err := buildSources(cfg, eopts.Locator, eopts.Master, log)
		if err != nil {
			backing.Close()
			return nil, err
		}
		eopts.Sources = sources
	}

	engine, err := psync.New(eopts)
	if err != nil {
		backing.Close()
		return nil, err
	}
	metrics.Export(engine.Stats())
	return &app{handler: metrics.Wrap(psync.NewHandler(engine, hopts)), store: backing, engine: engine, metrics: metrics, ready: ready, sources: eopts.Sources}, nil
}

// buildSources turns the sources list into the engine's chain, in order.
func buildSources(cfg configs.Config, locator psync.Locator, master *psync.Master, log *slog.Logger) ([]psync.Source, error) {
	var out []psync.Source
	for _, name := range cfg.Sources {
		switch name {
		case configs.SourceExchange:
			out = append(out, psync.ExchangeSource{Locator: locator, Master: master})
		case configs.SourceDirectory:
			d := cfg.Directory
			roots, err := trustedRoots("directory.ca_file", d.CAFile)
			if err != nil {
				return nil, err
			}
			dir, err := psync.NewDirectory(psync.Directory{
				URL: d.URL, BindDN: d.BindDN, BindPassword: d.Password(), BaseDN: d.BaseDN,
				MatchAttributes: d.MatchAttributes, PhotoAttributes: d.PhotoAttributes,
				Timeout: d.Timeout.D(), PoolSize: d.PoolSize,
				TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			})
			if err != nil {
				return nil, fmt.Errorf("directory source: %w", err)
			}
			out = append(out, dir)
		case configs.SourceGraph:
			g, err := graphSource(cfg.Graph, log.With("component", "graph"))
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		default:
			return nil, fmt.Errorf("unknown source %q", name) // validation rejects it first
		}
	}
	return out, nil
}

// s2s loads our signing certificate and builds the token issuer and the
// HTTP client that talks to Exchange.
func s2s(cfg configs.Config, log *slog.Logger) (*oauth.Issuer, *http.Client, error) {
	pairs, err := loadPairs(cfg.S2S)
	if err != nil {
		return nil, nil, err
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
	client, err := exchangeClient(cfg.Exchange)
	if err != nil {
		return nil, nil, err
	}
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

// exchangeClient returns the HTTP client for Exchange: TLS verification on,
// the system roots plus exchange.ca_file, no redirects followed blindly.
func exchangeClient(c configs.Exchange) (*http.Client, error) {
	roots, err := trustedRoots("exchange.ca_file", c.CAFile)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tr.MaxIdleConnsPerHost = 32
	return &http.Client{
		Transport: tr,
		Timeout:   c.Timeout.D(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}, nil
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

// serve runs photosync on ln until ctx ends, then shuts down gracefully.
// people, when set, get a directory page at /.
func serve(ctx context.Context, cfg configs.Config, ln net.Listener, log *slog.Logger, people []psync.Person) error {
	a, err := build(ctx, cfg, log, people)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.Photos.PullTimeout.D() + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("photosync serving", "addr", ln.Addr().String(), "version", version)

	adminSrv, err := serveAdmin(ctx, cfg, a, log, errc)
	if err != nil {
		srv.Close()
		return err
	}
	if adminSrv != nil {
		defer adminSrv.Close()
	}

	select {
	case err := <-errc:
		a.Close()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	a.Close() // after the last request: pulls in flight may still store
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("photosync stopped")
	return nil
}

// serveAdmin starts the admin API on admin.listen, a listener of its own,
// and returns its server (nil when admin.listen is empty). Serve errors go
// to errc.
func serveAdmin(ctx context.Context, cfg configs.Config, a *app, log *slog.Logger, errc chan<- error) (*http.Server, error) {
	if cfg.Admin.Listen == "" {
		return nil, nil
	}
	token := cfg.Admin.Token
	if env := os.Getenv(configs.AdminTokenEnv); env != "" {
		token = env
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	h := admin.NewHandler(ctx, admin.Options{
		Engine:    a.engine,
		Metrics:   a.metrics,
		Token:     token,
		StoreName: storeName(cfg.Store),
		Ready:     a.ready,
		Logger:    log.With("component", "admin"),
	})
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.Photos.PullTimeout.D() + 30*time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin: %w", err)
		}
	}()
	log.Info("admin api serving", "addr", ln.Addr().String(), "token_set", token != "")
	return srv, nil
}
