package admin_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMetricsNames: every metric the README lists is served, with the
// engine's counters read when scraped.
func TestMetricsNames(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.metrics.ExportCache("autodiscover", "Autodiscover lookups", func() (int64, int64) { return 3, 1 })
	e.metrics.ExportCache("token", "S2S tokens", func() (int64, int64) { return 5, 2 })
	if _, err := e.engine.Photo(context.Background(), "adele.vance@contoso.com", "HR96x96", "adele.vance@contoso.com"); err != nil {
		t.Fatal(err)
	}
	photos := e.metrics.Wrap(http.NotFoundHandler(), func(*http.Request) string { return "photo" })
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
		"photosync_pull_errors_total 0",
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
}

// TestWrapLabelsByRoute: the route label is what the route func names, and
// the code is the status written (200 when none was).
func TestWrapLabelsByRoute(t *testing.T) {
	e := newEnv(t, envOptions{})
	route := func(r *http.Request) string {
		switch {
		case strings.HasPrefix(r.URL.Path, "/EWS/"):
			return "ews"
		case strings.HasPrefix(r.URL.Path, "/users/"):
			return "graph"
		}
		return "upstream"
	}
	h := e.metrics.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/users/x/photo/$value":
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusOK) // ignored: the first status counts
		case "/app":
			_, _ = w.Write([]byte("implicit 200"))
		}
	}), route)
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
