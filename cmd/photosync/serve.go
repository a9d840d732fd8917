package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"photosync/admin"
	"photosync/configs"
	"photosync/web"
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
	if *check {
		if _, err := checkConfig(*path, stderr, "photosync serve"); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return nil
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		return err
	}
	log, logs := newLogs(cfg.Log, stderr)
	setMemoryLimit(cfg, log)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// SIGHUP reloads the config file (systemd's ExecReload) instead of
	// ending the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return serve(ctx, cfg, ln, log, nil, &reloading{path: *path, logs: logs, signal: hup})
}

// setMemoryLimit gives the Go runtime a soft memory limit of the memory
// layer's bound plus the decode budget plus headroom, so the garbage
// collector keeps the process near what the operator configured instead of
// letting the heap double between collections. GOMEMLIMIT, when set, wins.
func setMemoryLimit(c configs.Config, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := int64(c.Store.MemoryLimit) + int64(c.Photos.DecodeMemory) + 64<<20
	debug.SetMemoryLimit(limit)
	log.Debug("go memory limit set", "bytes", limit)
}

// serve runs photosync on ln until ctx ends, then shuts down gracefully.
// people, when set, get a directory page at /. rl, when set, reloads the
// config on its signal.
func serve(ctx context.Context, cfg configs.Config, ln net.Listener, log *slog.Logger, people []web.Person, rl *reloading) error {
	if _, err := loadSecrets(cfg); err != nil { // before the store is opened
		ln.Close()
		return err
	}
	st, err := openStorage(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	defer st.backing.Close() // after the last app is released
	a, err := buildOn(ctx, cfg, st, log, people)
	if err != nil {
		ln.Close()
		return err
	}
	var cur current
	cur.p.Store(&live{cfg: cfg, app: a, admin: adminHandler(ctx, cfg, a, log)})
	defer func() { cur.p.Load().app.release() }()

	srv := httpServer(cfg, cur.handler(func(l *live) http.Handler { return l.app.handler }), log)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("photosync serving", "addr", ln.Addr().String(), "version", version)

	adminSrv, err := serveAdmin(cfg, cur.handler(func(l *live) http.Handler { return l.admin }), log, errc)
	if err != nil {
		srv.Close()
		return err
	}
	if adminSrv != nil {
		defer adminSrv.Close()
	}

	var reload <-chan os.Signal
	if rl != nil {
		reload = rl.signal
	}
	for {
		select {
		case err := <-errc:
			return fmt.Errorf("serving: %w", err)
		case <-reload:
			err := cur.reload(ctx, rl, st, log, people)
			if rl.done != nil {
				rl.done <- err
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Pulls in flight may still store after the last request: the deferred
	// release and close run after Shutdown.
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("photosync stopped")
	return nil
}

// adminHandler is the admin API of a, or nil when admin.listen is empty.
func adminHandler(ctx context.Context, cfg configs.Config, a *app, log *slog.Logger) http.Handler {
	if cfg.Admin.Listen == "" {
		return nil
	}
	token := cfg.Admin.Token
	if env := os.Getenv(configs.AdminTokenEnv); env != "" {
		token = env
	}
	return admin.NewHandler(ctx, admin.Options{
		Engine:    a.engine,
		Metrics:   a.metrics,
		Token:     token,
		StoreName: storeName(cfg.Store),
		Ready:     a.ready,
		Logger:    log.With("component", "admin"),
	})
}

// httpServer is the server of both listeners, the photos' and the
// admin API's: bounded headers and reads, a write timeout a pull fits in
// (photos.pull_timeout, plus time to send the answer), idle keep-alive
// connections closed after two minutes, net/http's own lines in our log.
func httpServer(cfg configs.Config, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.Photos.PullTimeout.D() + 30*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveAdmin starts h, the admin API, on admin.listen, a listener of its
// own, and returns its server (nil when admin.listen is empty). Serve
// errors go to errc.
func serveAdmin(cfg configs.Config, h http.Handler, log *slog.Logger, errc chan<- error) (*http.Server, error) {
	if cfg.Admin.Listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	srv := httpServer(cfg, h, log)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin: %w", err)
		}
	}()
	tokenSet := cfg.Admin.Token != "" || os.Getenv(configs.AdminTokenEnv) != ""
	log.Info("admin api serving", "addr", ln.Addr().String(), "token_set", tokenSet)
	return srv, nil
}
