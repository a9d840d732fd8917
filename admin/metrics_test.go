package admin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"photosync/admin"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestMetricsNames: every metric the README lists is served, with the
// engine's counters read when scraped.
func TestMetricsNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.metrics.ExportCache("autodiscover", "Autodiscover lookups", func() (int64, int64) { return 3, 1 })
	e.metrics.ExportCache("token", "S2S tokens", func() (int64, int64) { return 5, 2 })
	storeUp := true
	e.metrics.ExportStoreUp(func(context.Context) error {
		if storeUp {
			return nil
		}
		return errors.New("redis away")
	})
	if _, err := e.engine.Photo(context.Background(), "adele.vance@contoso.com", "HR96x96", "adele.vance@contoso.com"); err != nil {
		t.Fatal(err)
	}
	photos := e.metrics.Wrap(admin.RouteServerFunc(func(w http.ResponseWriter, r *http.Request) string {
		http.NotFound(w, r)
		return "photo"
	}))
	photos.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/photos/x", nil))
	tr := e.metrics.Transport(roundTrip(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusNotModified, Body: http.NoBody}, nil
	}))
	if _, err := tr.RoundTrip(httptest.NewRequest("GET", "https://mail.contoso.com/ews", nil)); err != nil {
		t.Fatal(err)
	}

	_, body := e.do(t, "GET", "/metrics", "", "")
	page := string(body)
	for _, want := range []string{
		`photosync_http_requests_total{code="404",route="photo"} 1`,
		"photosync_photo_hits_total 0",
		"photosync_photo_misses_total 1",
		"photosync_photo_stale_total 0",
		"photosync_pulls_total 1",
		`photosync_pull_errors_total{source="exchange"} 0`,
		"photosync_pulls_in_flight 0",
		"photosync_store_up 1",
		`photosync_http_request_duration_seconds_count{route="photo"} 1`,
		"photosync_pulls_not_modified_total 0",
		"photosync_coalesced_waits_total 0",
		"photosync_store_errors_total 0",
		"photosync_cold_deadline_total 0",
		"photosync_max_stale_refused_total 0",
		"photosync_peer_pull_waits_total 0",
		"photosync_sizes_derived_total 0",
		"photosync_autodiscover_cache_hits_total 3",
		"photosync_autodiscover_cache_misses_total 1",
		"photosync_token_cache_hits_total 5",
		"photosync_token_cache_misses_total 2",
		`photosync_master_request_duration_seconds_count{code="304"} 1`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(page, "\n"+want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	storeUp = false
	if _, body := e.do(t, "GET", "/metrics", "", ""); !strings.Contains(string(body), "\nphotosync_store_up 0") {
		t.Error("photosync_store_up is not 0 while the readiness check fails")
	}
}

// TestWrapLabelsByRoute: the route label is what the handler names as it
// serves, and the code is the status written (200 when none was).
func TestWrapLabelsByRoute(t *testing.T) {
	e := newEnv(t, envOptions{})
	h := e.metrics.Wrap(admin.RouteServerFunc(func(w http.ResponseWriter, r *http.Request) string {
		switch r.URL.Path {
		case "/users/x/photo/$value":
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusOK) // ignored: the first status counts
		case "/app":
			_, _ = w.Write([]byte("implicit 200"))
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/EWS/"):
			return "ews"
		case strings.HasPrefix(r.URL.Path, "/users/"):
			return "graph"
		}
		return "upstream"
	}))
	tests := []struct {
		path string
		want string
	}{
		{"/EWS/Exchange.asmx/s/GetUserPhoto", `photosync_http_requests_total{code="200",route="ews"} 2`},
		{"/users/x/photo/$value", `photosync_http_requests_total{code="404",route="graph"} 2`},
		{"/app", `photosync_http_requests_total{code="200",route="upstream"} 2`},
	}
	for _, tt := range tests {
		for range 2 {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tt.path, nil))
		}
	}
	_, body := e.do(t, "GET", "/metrics", "", "")
	for _, tt := range tests {
		if !strings.Contains(string(body), "\n"+tt.want+"\n") {
			t.Errorf("/metrics lacks %q", tt.want)
		}
	}
	if strings.Contains(string(body), `route="other"`) {
		t.Error(`a request was labelled "other"`)
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestMetricsGauges: build info, back-off per source, the memory layer and
// failed pulls by source.
func TestMetricsGauges(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.metrics.ExportBuild("v1.2.3", "abc123", "go1.26.0")
	e.metrics.ExportBackoff(func() map[string]int { return map[string]int{"exchange": 2, "graph": 0} })
	e.metrics.ExportMemory(func() int64 { return 4096 }, func() int { return 3 })
	if _, err := e.engine.Photo(context.Background(), broken, "HR96x96", broken); err == nil {
		t.Fatal("the broken mailbox served a photo")
	}
	_, body := e.do(t, "GET", "/metrics", "", "")
	for _, want := range []string{
		`photosync_build_info{goversion="go1.26.0",revision="abc123",version="v1.2.3"} 1`,
		`photosync_hosts_backed_off{source="exchange"} 2`,
		`photosync_hosts_backed_off{source="graph"} 0`,
		"photosync_memory_bytes 4096",
		"photosync_memory_entries 3",
		`photosync_pull_errors_total{source="exchange"} 1`,
	} {
		if !strings.Contains(string(body), "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestMetricsPassPromtoolLint pipes /metrics, every metric exported, into
// `promtool check metrics` when promtool is installed (.ci/test installs
// it): names, units, help texts and label use stay lint-clean.
func TestMetricsPassPromtoolLint(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus)")
	}
	e := newEnv(t, envOptions{})
	e.metrics.ExportCache("autodiscover", "Autodiscover lookups", func() (int64, int64) { return 3, 1 })
	e.metrics.ExportBuild("dev", "", "go1.26.0")
	e.metrics.ExportBackoff(func() map[string]int { return map[string]int{"exchange": 0} })
	e.metrics.ExportMemory(func() int64 { return 0 }, func() int { return 0 })
	photos := e.metrics.Wrap(admin.RouteServerFunc(func(w http.ResponseWriter, r *http.Request) string {
		http.NotFound(w, r)
		return "photo"
	}))
	photos.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/photos/x", nil))
	tr := e.metrics.Transport(roundTrip(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	}))
	if _, err := tr.RoundTrip(httptest.NewRequest("GET", "https://mail.contoso.com/ews", nil)); err != nil {
		t.Fatal(err)
	}
	_, body := e.do(t, "GET", "/metrics", "", "")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkWrap is what counting and timing add to every request on the
// photo listener; the hit path's own cost is web's BenchmarkHit.
func BenchmarkWrap(b *testing.B) {
	m := admin.NewMetrics()
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := m.Wrap(admin.RouteServerFunc(func(w http.ResponseWriter, r *http.Request) string {
		ok.ServeHTTP(w, r)
		return "photo"
	}))
	w := &discardWriter{h: http.Header{}}
	r := httptest.NewRequest(http.MethodGet, "/photos/adele.vance@contoso.com", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// TestWrapConcurrentSeries: requests arriving together on routes and with
// statuses never seen before each count once, in their own series.
func TestWrapConcurrentSeries(t *testing.T) {
	e := newEnv(t, envOptions{})
	routes := []string{"photo", "userphoto", "graph"}
	codes := []int{http.StatusOK, http.StatusNotModified, http.StatusNotFound}
	h := e.metrics.Wrap(admin.RouteServerFunc(func(w http.ResponseWriter, r *http.Request) string {
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		w.WriteHeader(codes[i%len(codes)])
		return routes[i/len(codes)%len(routes)]
	}))
	const each = 20 // requests per route and code
	var wg sync.WaitGroup
	for i := range each * len(routes) * len(codes) {
		wg.Go(func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?i="+strconv.Itoa(i), nil))
		})
	}
	wg.Wait()
	_, body := e.do(t, "GET", "/metrics", "", "")
	for _, route := range routes {
		for _, code := range codes {
			want := fmt.Sprintf(`photosync_http_requests_total{code="%d",route="%s"} %d`, code, route, each)
			if !strings.Contains(string(body), "\n"+want+"\n") {
				t.Errorf("/metrics lacks %q", want)
			}
		}
		if want := fmt.Sprintf(`photosync_http_request_duration_seconds_count{route="%s"} %d`, route, each*len(codes)); !strings.Contains(string(body), "\n"+want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
