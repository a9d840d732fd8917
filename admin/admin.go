// Package admin is photosync's operators' HTTP API, served on a listener of
// its own: inspect, forget and refresh one person's photos, warm a list of
// people as a background job, read /metrics and /readyz, and profile the
// process (/debug/pprof/, Go's runtime profiles).
//
// Every /admin/ and /debug/pprof/ route needs "Authorization: Bearer
// TOKEN", compared in constant time; without a configured token they all
// answer 401. /metrics and /readyz need none: the listener is loopback by
// default, and neither says anything about a person.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	psync "photosync/sync"
	"photosync/sync/photo"
)

// Options configures the admin Handler.
type Options struct {
	// Engine does the work. Required.
	Engine *psync.Engine
	// Metrics is served at /metrics. Nil: no /metrics.
	Metrics *Metrics
	// Token is the bearer token /admin/ routes need. Empty: they answer 401.
	Token string
	// StoreName says where the bytes are, in inspect's answer.
	StoreName string
	// Ready reports whether photosync can serve, for /readyz. Nil: always.
	Ready func(ctx context.Context) error
	// Logger receives a line per admin action. Default: discard.
	Logger *slog.Logger
}

// maxList bounds a warm request's body.
const maxList = 4 << 20

// NewHandler returns the admin API. Warm jobs run on ctx, the server's
// lifetime, and stop when it ends.
func NewHandler(ctx context.Context, opts Options) http.Handler {
	if opts.Engine == nil {
		panic("admin: Options.Engine is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{ctx: ctx, opts: opts, log: log, jobs: map[string]*job{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/photos/{email}", h.auth(h.inspect))
	mux.HandleFunc("DELETE /admin/photos/{email}", h.auth(h.forget))
	mux.HandleFunc("POST /admin/photos/{email}/refresh", h.auth(h.refresh))
	mux.HandleFunc("POST /admin/warm", h.auth(h.warm))
	mux.HandleFunc("GET /admin/warm/{id}", h.auth(h.warmStatus))
	mux.HandleFunc("/admin/", h.auth(func(w http.ResponseWriter, r *http.Request) { fail(w, http.StatusNotFound, "no such admin route") }))
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics.Handler())
	}
	mux.HandleFunc("GET /readyz", h.readyz)
	// Profiles carry stacks and sizes, never photo bytes or tokens, but
	// they do say what the process is doing: the token guards them too.
	mux.HandleFunc("GET /debug/pprof/", h.auth(pprof.Index))
	mux.HandleFunc("GET /debug/pprof/cmdline", h.auth(pprof.Cmdline))
	mux.HandleFunc("GET /debug/pprof/profile", h.auth(pprof.Profile))
	mux.HandleFunc("GET /debug/pprof/symbol", h.auth(pprof.Symbol))
	mux.HandleFunc("GET /debug/pprof/trace", h.auth(pprof.Trace))
	return mux
}

type handler struct {
	ctx  context.Context
	opts Options
	log  *slog.Logger

	mu   sync.Mutex
	jobs map[string]*job
}

func (h *handler) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || h.opts.Token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="photosync admin"`)
			fail(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		next(w, r)
	}
}

func (h *handler) owner(w http.ResponseWriter, r *http.Request) (string, bool) {
	owner, err := photo.NormalizeEmail(r.PathValue("email"))
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return "", false
	}
	return owner, true
}

func (h *handler) inspect(w http.ResponseWriter, r *http.Request) {
	owner, ok := h.owner(w, r)
	if !ok {
		return
	}
	rep, err := h.opts.Engine.Inspect(r.Context(), owner)
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "inspect failed")
		return
	}
	reply(w, http.StatusOK, struct {
		Store string `json:"store"`
		psync.Report
	}{h.opts.StoreName, rep})
}

func (h *handler) forget(w http.ResponseWriter, r *http.Request) {
	owner, ok := h.owner(w, r)
	if !ok {
		return
	}
	if err := h.opts.Engine.Forget(r.Context(), owner); err != nil {
		h.log.Error("admin forget failed", "owner", owner, "err", err)
		fail(w, http.StatusServiceUnavailable, "forget failed")
		return
	}
	h.log.Info("admin forget", "owner", owner)
	w.WriteHeader(http.StatusNoContent)
}

// refresh pulls one size (?size=, default HR96x96; ?force=1 ends the timer).
func (h *handler) refresh(w http.ResponseWriter, r *http.Request) {
	owner, ok := h.owner(w, r)
	if !ok {
		return
	}
	size := photo.DefaultSize
	if s := r.URL.Query().Get("size"); s != "" {
		if size, ok = photo.CanonicalSize(s); !ok {
			fail(w, http.StatusBadRequest, "unknown size")
			return
		}
	}
	force := r.URL.Query().Get("force") == "1" || r.URL.Query().Get("force") == "true"
	out, err := h.opts.Engine.Refresh(r.Context(), owner, size, force)
	ans := map[string]string{"owner": owner, "size": size, "outcome": out.String()}
	switch {
	case err == nil:
	case out == psync.RefreshFailed:
		ans["error"] = err.Error()
	case errors.Is(err, psync.ErrImportDisabled):
		fail(w, http.StatusConflict, "photo import is disabled")
		return
	default:
		h.log.Error("admin refresh failed", "owner", owner, "size", size, "err", err)
		fail(w, http.StatusServiceUnavailable, "refresh failed")
		return
	}
	h.log.Info("admin refresh", "owner", owner, "size", size, "outcome", out.String())
	reply(w, http.StatusOK, ans)
}

// job is one warm running in the background.
type job struct {
	ID      string `json:"id"`
	People  int    `json:"people"`
	Started time.Time
	mu      sync.Mutex
	counts  psync.WarmCounts
	done    bool
	errText string
}

type jobStatus struct {
	ID     string           `json:"id"`
	People int              `json:"people"`
	Done   bool             `json:"done"`
	Counts psync.WarmCounts `json:"counts"`
	Error  string           `json:"error,omitempty"`
}

func (j *job) status() jobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	return jobStatus{ID: j.ID, People: j.People, Done: j.done, Counts: j.counts, Error: j.errText}
}

// maxJobs bounds the finished jobs kept for GET /admin/warm/{id}.
const maxJobs = 32

// warm starts a warm of the body's list: a JSON array of addresses, or one
// address a line. ?sizes=a,b (default all), ?concurrency=N (default 4),
// ?force=1. One warm runs at a time.
func (h *handler) warm(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxList))
	if err != nil {
		fail(w, http.StatusRequestEntityTooLarge, "list too large")
		return
	}
	owners, err := parseList(body)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	opts := psync.WarmOptions{Concurrency: 4, Force: r.URL.Query().Get("force") == "1"}
	if s := r.URL.Query().Get("sizes"); s != "" {
		for _, f := range strings.Split(s, ",") {
			size, ok := photo.CanonicalSize(strings.TrimSpace(f))
			if !ok {
				fail(w, http.StatusBadRequest, "unknown size")
				return
			}
			opts.Sizes = append(opts.Sizes, size)
		}
	}
	if c := r.URL.Query().Get("concurrency"); c != "" {
		if _, err := fmt.Sscanf(c, "%d", &opts.Concurrency); err != nil || opts.Concurrency < 1 || opts.Concurrency > 64 {
			fail(w, http.StatusBadRequest, "concurrency must be between 1 and 64")
			return
		}
	}

	h.mu.Lock()
	for _, j := range h.jobs {
		if !j.status().Done {
			h.mu.Unlock()
			fail(w, http.StatusConflict, "a warm is already running: "+j.ID)
			return
		}
	}
	if len(h.jobs) >= maxJobs {
		var oldest *job
		for _, j := range h.jobs {
			if oldest == nil || j.Started.Before(oldest.Started) {
				oldest = j
			}
		}
		delete(h.jobs, oldest.ID)
	}
	j := &job{ID: newID(), People: len(owners), Started: time.Now()}
	h.jobs[j.ID] = j
	h.mu.Unlock()

	opts.Progress = func(c psync.WarmCounts) {
		j.mu.Lock()
		j.counts = c
		j.mu.Unlock()
	}
	h.log.Info("admin warm started", "job", j.ID, "people", len(owners))
	go func() {
		defer func() {
			if p := recover(); p != nil {
				h.log.Error("admin warm panicked", "job", j.ID, "panic", p)
				j.mu.Lock()
				j.done, j.errText = true, "internal error"
				j.mu.Unlock()
			}
		}()
		counts, err := h.opts.Engine.Warm(h.ctx, owners, opts)
		j.mu.Lock()
		j.counts, j.done = counts, true
		if err != nil {
			j.errText = err.Error()
		}
		j.mu.Unlock()
		h.log.Info("admin warm done", "job", j.ID, "pulled", counts.Pulled, "failed", counts.Failed, "skipped", counts.Skipped)
	}()
	w.Header().Set("Location", "/admin/warm/"+j.ID)
	reply(w, http.StatusAccepted, j.status())
}

func (h *handler) warmStatus(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	j, ok := h.jobs[r.PathValue("id")]
	h.mu.Unlock()
	if !ok {
		fail(w, http.StatusNotFound, "no such warm job")
		return
	}
	reply(w, http.StatusOK, j.status())
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := h.opts.Ready(ctx); err != nil {
			h.log.Debug("not ready", "err", err) // Ready logs each change
			fail(w, http.StatusServiceUnavailable, "store unavailable")
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ready\n")
}

// parseList reads a JSON array of addresses or one address a line, and
// reports the first bad one.
func parseList(b []byte) ([]string, error) {
	var raw []string
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "[") {
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, errors.New("body is not a JSON array of addresses")
		}
	} else {
		for _, l := range strings.Split(t, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				raw = append(raw, l)
			}
		}
	}
	if len(raw) == 0 {
		return nil, errors.New("empty list")
	}
	seen := map[string]bool{}
	var out []string
	for i, s := range raw {
		e, err := photo.NormalizeEmail(s)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out, nil
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	reply(w, code, map[string]string{"error": msg})
}
