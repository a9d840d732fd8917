package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"photosync/configs"
	"photosync/web"
)

// reloading says where serve reads its config again, and when: each value
// on signal (SIGHUP in serve) reloads path. Nil: serve never reloads.
type reloading struct {
	path   string
	logs   *logs            // the process's log level and format
	signal <-chan os.Signal // a value: reload now
	// done, when set, receives each reload's outcome (nil: the new config
	// runs), for tests.
	done chan<- error
}

// restartKeys lists the keys whose change a reload refuses: the listeners
// and the store stay, as they must for no request to be dropped, and the
// upstream and the sources list shape the routes and the engine's chain.
func restartKeys(old, cur configs.Config) []string {
	var keys []string
	diff := func(key string, changed bool) {
		if changed {
			keys = append(keys, key)
		}
	}
	diff("listen", old.Listen != cur.Listen)
	diff("admin.listen", old.Admin.Listen != cur.Admin.Listen)
	diff("store.path", old.Store.Path != cur.Store.Path)
	diff("store.redis_url", old.Store.RedisURL != cur.Store.RedisURL)
	diff("store.redis_prefix", old.Store.RedisPrefix != cur.Store.RedisPrefix)
	diff("store.memory_limit", old.Store.MemoryLimit != cur.Store.MemoryLimit)
	diff("store.memory_ttl", old.Store.MemoryTTL != cur.Store.MemoryTTL)
	diff("store.redis_mode", old.Store.RedisMode != cur.Store.RedisMode)
	diff("store.redis_ca_file", old.Store.RedisCAFile != cur.Store.RedisCAFile)
	diff("store.redis_certificate", old.Store.RedisCertificate != cur.Store.RedisCertificate || old.Store.RedisKey != cur.Store.RedisKey)
	diff("upstream", old.Upstream != cur.Upstream)
	diff("sources", !slices.Equal(old.Sources, cur.Sources))
	return keys
}

// live is one configuration running: its app and admin handler. Every
// request holds mu for reading while it is served, so that retiring a live
// (mu for writing) waits for the requests it is serving.
type live struct {
	cfg    configs.Config
	app    *app
	admin  http.Handler // nil when admin.listen is empty
	mu     sync.RWMutex
	closed bool
}

// current serves each request with the live current when it comes in.
type current struct{ p atomic.Pointer[live] }

// handler serves with pick(the current live).
func (c *current) handler(pick func(*live) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for {
			l := c.p.Load()
			l.mu.RLock()
			if l.closed { // retired between Load and RLock: take its successor
				l.mu.RUnlock()
				continue
			}
			pick(l).ServeHTTP(w, r)
			l.mu.RUnlock()
			return
		}
	})
}

// retire waits for the requests l serves to end, then for its background
// pulls, and closes its sources. The store stays open.
func (l *live) retire() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.app.release()
}

// reload builds a new live from rl.path on the running one's storage and
// swaps it in, or refuses, logging why, and leaves the old one running.
func (c *current) reload(ctx context.Context, rl *reloading, s *storage, log *slog.Logger, people []web.Person) error {
	old := c.p.Load()
	cfg, err := configs.Load(rl.path)
	if err == nil {
		_, err = loadSecrets(cfg)
	}
	if err != nil {
		log.Error("reload refused: the config does not pass its check; the running config stays", "path", rl.path, "err", err)
		return err
	}
	if keys := restartKeys(old.cfg, cfg); len(keys) > 0 {
		log.Error("reload refused: these keys need a restart; the running config stays", "path", rl.path, "keys", keys)
		return fmt.Errorf("reload refused: %v need a restart", keys)
	}
	a, err := buildOn(ctx, cfg, s, log, people)
	if err != nil {
		log.Error("reload refused: wiring the new config failed; the running config stays", "path", rl.path, "err", err)
		return err
	}
	next := &live{cfg: cfg, app: a, admin: adminHandler(ctx, cfg, a, log)}
	if rl.logs != nil {
		rl.logs.set(cfg.Log)
	}
	c.p.Store(next)
	go old.retire()
	log.Info("config reloaded", "path", rl.path)
	return nil
}
