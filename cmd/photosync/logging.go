package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	"photosync/configs"
	"photosync/internal/untrusted"
)

// newLogger is the process's logger for the log section: text or JSON at
// its level. Its level and format change in place (logs.set, on reload),
// so every logger derived from it with With follows.
func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	l, _ := newLogs(c, w)
	return l
}

// newLogs is newLogger and the switch that changes it.
func newLogs(c configs.Log, w io.Writer) (*slog.Logger, *logs) {
	s := &logs{w: w}
	s.set(c)
	return slog.New(&switchHandler{root: s}), s
}

// logs holds the current log level and handler behind every logger
// newLogs made.
type logs struct {
	w     io.Writer
	level slog.LevelVar
	base  atomic.Pointer[slog.Handler]
}

// set switches to c's level and format.
func (s *logs) set(c configs.Log) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by configs
	s.level.Set(level)
	opts := &slog.HandlerOptions{Level: &s.level}
	var h slog.Handler
	if c.Format == "json" {
		opts.ReplaceAttr = durationSeconds
		h = slog.NewJSONHandler(s.w, opts)
	} else {
		h = slog.NewTextHandler(s.w, opts)
	}
	s.base.Store(&h)
}

// durationSeconds writes durations as seconds (a float) in JSON, the unit
// log pipelines and Prometheus use, instead of slog's integer nanoseconds.
func durationSeconds(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}

// switchHandler sends each record to the current handler of root, with
// the attributes and groups of its With calls applied. The derived handler
// is cached per base handler, so a record costs one pointer compare unless
// the format changed.
type switchHandler struct {
	root  *logs
	ops   []func(slog.Handler) slog.Handler // WithAttrs and WithGroup, in order
	cache atomic.Pointer[derivedHandler]
}

type derivedHandler struct {
	base *slog.Handler
	h    slog.Handler
}

func (h *switchHandler) current() slog.Handler {
	base := h.root.base.Load()
	if d := h.cache.Load(); d != nil && d.base == base {
		return d.h
	}
	out := *base
	for _, op := range h.ops {
		out = op(out)
	}
	h.cache.Store(&derivedHandler{base: base, h: out})
	return out
}

func (h *switchHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.root.level.Level()
}

func (h *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.current().Handle(ctx, r)
}

func (h *switchHandler) with(op func(slog.Handler) slog.Handler) *switchHandler {
	ops := append(h.ops[:len(h.ops):len(h.ops)], op)
	return &switchHandler{root: h.root, ops: ops}
}

func (h *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithAttrs(as) })
}

func (h *switchHandler) WithGroup(name string) slog.Handler {
	return h.with(func(b slog.Handler) slog.Handler { return b.WithGroup(name) })
}

// redisLog carries go-redis' own log lines (reconnects, pool and Sentinel
// notices), which it would print as plain text on stderr, into photosync's
// log. Its pool writes a line per failed dial, many a second while Redis is
// away, and store.Redis already logs the outage once when it starts and
// once when it ends: those lines are debug; the rest (Sentinel's notices of
// a new master, among them) are info.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	level := slog.LevelInfo
	if strings.Contains(msg, "connection pool") || strings.Contains(msg, "dial") {
		level = slog.LevelDebug
	}
	l.log.Log(ctx, level, "redis client", "detail", untrusted.Text(msg, 0))
}

// readyLogged wraps a readiness check so that a change (ready to not
// ready, and back) is logged once, not once per probe: probes come every
// few seconds from each load balancer and orchestrator.
func readyLogged(ready func(context.Context) error, log *slog.Logger) func(context.Context) error {
	var down atomic.Bool
	return func(ctx context.Context) error {
		err := ready(ctx)
		switch {
		case err != nil && !down.Swap(true):
			log.Warn("not ready: the store does not answer", "err", err)
		case err == nil && down.Swap(false):
			log.Info("ready again: the store answers")
		}
		return err
	}
}
