package admin

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	psync "photosync/sync"
)

// Metrics is photosync's Prometheus registry: the engine's own counters,
// read when scraped (nothing is counted twice on the request path), the
// photo routes' requests by route and status, and the master's latency.
// Safe for concurrent use.
//
// What belongs to the process (requests, latencies, build, Go runtime) is
// kept apart from what belongs to one configuration's parts (the sources'
// caches and back-off): Fresh starts a new set of the latter for a reload,
// and the former carry on.
type Metrics struct {
	reg      *prometheus.Registry // where Export… registers
	process  *prometheus.Registry // the process's own; reg itself until Fresh
	routes   *routeTable          // each route's series, shared with Fresh's copies
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	master   *prometheus.HistogramVec
}

// NewMetrics returns a registry of the request and master metrics; Export
// adds the engine's counters.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		routes: newRouteTable(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "photosync_http_requests_total",
			Help: "Requests to the photo listener, by route and status.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "photosync_http_request_duration_seconds",
			Help:    "Time to answer each request to the photo listener, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		master: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "photosync_master_request_duration_seconds",
			Help:    "Time to the response headers of each GetUserPhoto call to Exchange, by status.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"code"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.master, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.process = m.reg
	return m
}

// Fresh returns Metrics that share m's process metrics (requests,
// latencies and whatever was exported on m) and register the rest anew:
// what a reload builds for the configuration that replaces the running
// one, so that nothing is registered twice and no counter of the process
// starts again from zero.
func (m *Metrics) Fresh() *Metrics {
	return &Metrics{reg: prometheus.NewRegistry(), process: m.process, routes: m.routes,
		requests: m.requests, duration: m.duration, master: m.master}
}

// Export adds an engine's counters, read when scraped. Call it once.
func (m *Metrics) Export(st *psync.Stats) {
	for _, c := range []struct {
		name, help string
		read       func() int64
	}{
		{"photosync_photo_hits_total", "Photos served from the store with their timer running.", st.Hits.Load},
		{"photosync_photo_misses_total", "Photo requests that needed a pull.", st.Misses.Load},
		{"photosync_photo_stale_total", "Photos served from the store after their timer ran out.", st.Stale.Load},
		{"photosync_coalesced_waits_total", "Requests answered by another request's pull.", st.Coalesced.Load},
		{"photosync_pulls_total", "Pulls that asked the master.", st.Pulls.Load},
		{"photosync_pulls_not_modified_total", "Pulls the master answered 304.", st.NotModified.Load},
		{"photosync_store_errors_total", "Store reads and writes that failed.", st.StoreErrors.Load},
		{"photosync_cold_deadline_total", "Requests for a photo not held answered before its pull ended (placeholder or 404).", st.ColdTimeouts.Load},
		{"photosync_max_stale_refused_total", "Stale copies not served because they were older than photos.max_stale.", st.TooStale.Load},
		{"photosync_peer_pull_waits_total", "Pulls left to another replica holding the Redis pull lock.", st.PeerWaits.Load},
		{"photosync_sizes_derived_total", "Smaller sizes scaled here from the master copy.", st.Derived.Load},
	} {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help},
			func() float64 { return float64(c.read()) }))
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "photosync_pulls_in_flight",
			Help: "Pulls asking the sources now."}, func() float64 { return float64(st.InFlight.Load()) }),
		&sourceErrors{st: st, desc: prometheus.NewDesc("photosync_pull_errors_total",
			"Pulls that failed, by the source whose answer failed (scale: a derived size that did not scale).", []string{"source"}, nil)},
	)
}

// ExportStoreUp adds photosync_store_up: 1 while ready (the readiness
// check /readyz runs: the store answers and takes writes) says so at
// scrape time, 0 otherwise. Call it once.
func (m *Metrics) ExportStoreUp(ready func(context.Context) error) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "photosync_store_up",
		Help: "1 while the store answers and takes writes (the /readyz check, run when scraped), 0 otherwise."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if ready(ctx) != nil {
			return 0
		}
		return 1
	}))
}

// sourceErrors serves the engine's failed pulls by source, read when
// scraped.
type sourceErrors struct {
	st   *psync.Stats
	desc *prometheus.Desc
}

func (c *sourceErrors) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *sourceErrors) Collect(ch chan<- prometheus.Metric) {
	c.st.SourceErrors(func(source string, n int64) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), source)
	})
}

// ExportBuild adds photosync_build_info{version,revision,goversion}, always
// 1, so dashboards can show and join on what runs. Call it once.
func (m *Metrics) ExportBuild(version, revision, goVersion string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "photosync_build_info",
		Help:        "Always 1; the labels say which photosync build runs.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion}})
	g.Set(1)
	m.reg.MustRegister(g)
}

// ExportBackoff adds photosync_hosts_backed_off{source}: how many hosts
// each source stops calling now (backedOff returns the count by source
// name), read when scraped. Call it once.
func (m *Metrics) ExportBackoff(backedOff func() map[string]int) {
	m.reg.MustRegister(&gaugeBySource{read: backedOff, desc: prometheus.NewDesc("photosync_hosts_backed_off",
		"Hosts a source stops calling now because they asked it to back off or could not be reached.", []string{"source"}, nil)})
}

type gaugeBySource struct {
	read func() map[string]int
	desc *prometheus.Desc
}

func (c *gaugeBySource) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *gaugeBySource) Collect(ch chan<- prometheus.Metric) {
	for source, n := range c.read() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), source)
	}
}

// ExportMemory adds photosync_memory_bytes and photosync_memory_entries,
// the hot layer's size (store.Hot's Bytes and Len), read when scraped.
// Call it once.
func (m *Metrics) ExportMemory(bytes func() int64, entries func() int) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "photosync_memory_bytes",
			Help: "Bytes of photos held in the in-memory layer (bounded by store.memory_limit)."}, func() float64 { return float64(bytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "photosync_memory_entries",
			Help: "Records held in the in-memory layer."}, func() float64 { return float64(entries()) }))
}

// ExportCache adds photosync_NAME_cache_hits_total and _misses_total, read
// from counts when scraped. Call it once per name.
func (m *Metrics) ExportCache(name, what string, counts func() (hits, misses int64)) {
	hits := func() float64 { h, _ := counts(); return float64(h) }
	misses := func() float64 { _, n := counts(); return float64(n) }
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "photosync_" + name + "_cache_hits_total",
			Help: what + " answered from photosync's cache."}, hits),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "photosync_" + name + "_cache_misses_total",
			Help: what + " not in photosync's cache (asked or made afresh)."}, misses))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m.reg == m.process {
		return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	}
	return promhttp.HandlerFor(prometheus.Gatherers{m.process, m.reg}, promhttp.HandlerOpts{})
}

// A RouteServer serves requests and names the route each one took (the web
// face's Handler): a fixed set of names, never the path, so that no
// owner's address becomes a label. It names the route from the routing
// that served the request, so counting costs no second look-up.
type RouteServer interface {
	ServeRoute(w http.ResponseWriter, r *http.Request) (route string)
}

// RouteServerFunc adapts a function to a RouteServer.
type RouteServerFunc func(w http.ResponseWriter, r *http.Request) string

// ServeRoute calls f.
func (f RouteServerFunc) ServeRoute(w http.ResponseWriter, r *http.Request) string { return f(w, r) }

// Wrap counts and times each request h answers by the route h names and
// the status it wrote (200 when none was).
func (m *Metrics) Wrap(h RouteServer) http.Handler {
	if h == nil {
		panic("admin: Wrap needs a handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := writers.Get().(*statusWriter)
		sw.ResponseWriter, sw.code, sw.wroteHeader = w, http.StatusOK, false
		name := h.ServeRoute(sw, r)
		elapsed := time.Since(start)
		code := sw.code
		sw.ResponseWriter = nil
		writers.Put(sw)
		rm := m.route(name)
		rm.counter(m, code).Inc()
		rm.duration.Observe(elapsed.Seconds())
	})
}

// writers recycles Wrap's status writers: one per request otherwise.
var writers = sync.Pool{New: func() any { return new(statusWriter) }}

// routeMetrics are one route's series, looked up once: resolving label
// values on every request (hashing, formatting the status) was a good
// part of what the wrapper cost on the hit path.
type routeMetrics struct {
	name     string
	duration prometheus.Observer
	mu       sync.Mutex // serialises the copies of byCode
	byCode   atomic.Pointer[map[int]prometheus.Counter]
}

// route returns name's series, made on first use. Names come from a fixed
// set (the route table), so the map stays small.
func (m *Metrics) route(name string) *routeMetrics {
	t := m.routes
	if rm := (*t.byName.Load())[name]; rm != nil {
		return rm
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	cur := *t.byName.Load()
	if rm := cur[name]; rm != nil {
		return rm
	}
	rm := &routeMetrics{name: name, duration: m.duration.WithLabelValues(name)}
	rm.byCode.Store(&map[int]prometheus.Counter{})
	next := maps.Clone(cur)
	next[name] = rm
	t.byName.Store(&next)
	return rm
}

// routeTable maps a route's name to its series. Requests read the map
// without a lock, since even a read lock is a write to memory that every
// core shares, on every request; a new route copies it.
type routeTable struct {
	mu     sync.Mutex // serialises the copies
	byName atomic.Pointer[map[string]*routeMetrics]
}

func newRouteTable() *routeTable {
	t := new(routeTable)
	t.byName.Store(&map[string]*routeMetrics{})
	return t
}

// counter returns the request counter of this route and status code. Like
// the route table, it is read without a lock and copied for a new code;
// codes are few.
func (rm *routeMetrics) counter(m *Metrics, code int) prometheus.Counter {
	if c := (*rm.byCode.Load())[code]; c != nil {
		return c
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	cur := *rm.byCode.Load()
	if c := cur[code]; c != nil {
		return c
	}
	c := m.requests.WithLabelValues(rm.name, strconv.Itoa(code))
	next := maps.Clone(cur)
	next[code] = c
	rm.byCode.Store(&next)
	return c
}

type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Transport times each call made through next (nil: http.DefaultTransport)
// into the master latency histogram. Give it to the master's client only,
// not Autodiscover's.
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(r)
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.master.WithLabelValues(code).Observe(time.Since(start).Seconds())
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
