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
	"runtime/debug"
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

// serve runs photosync on ln until ctx ends, then shuts down gracefully.
// people, when set, get a directory page at /.
func serve(ctx context.Context, cfg configs.Config, ln net.Listener, log *slog.Logger, people []web.Person) error {
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
