package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"photosync/sync/exchange/exchangetest"
)

const adminToken = "test-admin-token-7f3c"

// TestAdminAPI runs serve with its admin listener against the simulator:
// the token guard, the routes, /metrics and the logs of a full pull.
func TestAdminAPI(t *testing.T) {
	addr, adminAddr := freeAddr(t), freeAddr(t)
	base, adminBase := "http://"+addr, "http://"+adminAddr
	users := []exchangetest.User{{Email: "adele.vance@contoso.com", Name: "Adele Vance", Photo: true}}
	o := newOpsEnv(t, users, fmt.Sprintf("listen: %q\nphotos:\n  trigger: any\nadmin:\n  listen: %q\nlog:\n  level: debug\n", addr, adminAddr))
	t.Setenv("PHOTOSYNC_ADMIN_TOKEN", adminToken)

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", o.config}, &stdout, &stderr) }()
	waitHealthy(t, base)
	// The admin listener starts right after the public one.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(adminBase + "/readyz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("admin listener never came up")
		}
	}
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exit %d: %s", code, stderr.String())
		}
	}()

	call := func(method, url, token string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	photo := "/admin/photos/adele.vance@contoso.com"
	tests := []struct {
		name, method, url, token string
		code                     int
	}{
		{"no token", "GET", adminBase + photo, "", 401},
		{"wrong token", "GET", adminBase + photo, "test-admin-token-7f3d", 401},
		{"wrong token on delete", "DELETE", adminBase + photo, "nope", 401},
		{"wrong token on warm", "POST", adminBase + "/admin/warm", "nope", 401},
		{"not on the public listener", "GET", base + photo, adminToken, 404},
		{"refresh not on the public listener", "POST", base + photo + "/refresh", adminToken, 404},
		{"metrics not on the public listener", "GET", base + "/metrics", "", 404},
		{"bad address", "GET", adminBase + "/admin/photos/..%2Fetc", adminToken, 400},
		{"readyz", "GET", adminBase + "/readyz", "", 200},
		{"inspect", "GET", adminBase + photo, adminToken, 200},
		{"heap profile", "GET", adminBase + "/debug/pprof/heap", adminToken, 200},
		{"heap profile without the token", "GET", adminBase + "/debug/pprof/heap", "", 401},
		{"goroutines without the token", "GET", adminBase + "/debug/pprof/goroutine?debug=2", "wrong", 401},
	}
	for _, tt := range tests {
		if code, body := call(tt.method, tt.url, tt.token); code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.code)
		}
	}

	before := scrape(t, adminBase)
	resp, _ := fetch(t, base+"/photos/adele.vance@contoso.com?size=HR240x240")
	if resp.StatusCode != 200 {
		t.Fatalf("photo: %d", resp.StatusCode)
	}
	fetch(t, base+"/photos/adele.vance@contoso.com?size=HR240x240")
	fetch(t, base+"/photos/not-an-address")
	after := scrape(t, adminBase)
	for _, tt := range []struct {
		metric string
		labels map[string]string
		delta  float64
	}{
		{"photosync_http_requests_total", map[string]string{"route": "photo", "code": "200"}, 2},
		{"photosync_http_requests_total", map[string]string{"route": "photo", "code": "400"}, 1},
		{"photosync_photo_hits_total", nil, 1},
		{"photosync_photo_misses_total", nil, 1},
		{"photosync_pulls_total", nil, 1},
		{"photosync_autodiscover_cache_misses_total", nil, 1},
		{"photosync_autodiscover_cache_hits_total", nil, 0},
		{"photosync_token_cache_misses_total", nil, 1},
		{"photosync_token_cache_hits_total", nil, 1},
		{"photosync_master_request_duration_seconds", map[string]string{"code": "200"}, 1},
	} {
		if got := value(after, tt.metric, tt.labels) - value(before, tt.metric, tt.labels); got != tt.delta {
			t.Errorf("%s%v moved by %v, want %v", tt.metric, tt.labels, got, tt.delta)
		}
	}

	// inspect shows the Autodiscover answer the pull cached.
	_, body := call("GET", adminBase+photo, adminToken)
	var rep struct {
		Autodiscover *struct {
			PhotosURL   string    `json:"photos_url"`
			CachedUntil time.Time `json:"cached_until"`
		} `json:"autodiscover"`
	}
	if err := json.Unmarshal(body, &rep); err != nil || rep.Autodiscover == nil ||
		!strings.HasSuffix(rep.Autodiscover.PhotosURL, "/EWS/Exchange.asmx/s") || !rep.Autodiscover.CachedUntil.After(time.Now()) {
		t.Errorf("inspect after a pull: %v %s; want the cached Autodiscover answer", err, body)
	}

	// refresh, forget, and a warm job.
	if code, body := call("POST", adminBase+photo+"/refresh?size=HR240x240&force=1", adminToken); code != 200 || !strings.Contains(string(body), `"outcome": "not-modified"`) {
		t.Errorf("refresh: %d %s", code, body)
	}
	if code, body := call("DELETE", adminBase+photo, adminToken); code != 204 {
		t.Errorf("forget: %d %s", code, body)
	}
	if resp, _ := fetch(t, base+"/photos/adele.vance@contoso.com?size=HR240x240"); !strings.Contains(resp.Header.Get("Cache-Status"), "fwd-status=200") {
		t.Errorf("after forget: Cache-Status %q, want a pull", resp.Header.Get("Cache-Status"))
	}
	req, _ := http.NewRequest("POST", adminBase+"/admin/warm?sizes=HR48x48,HR64x64", strings.NewReader(`["adele.vance@contoso.com"]`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	wresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		ID     string
		Done   bool
		Counts struct{ Total, Pulled, Failed int }
	}
	json.NewDecoder(wresp.Body).Decode(&job)
	wresp.Body.Close()
	if wresp.StatusCode != 202 || job.ID == "" {
		t.Fatalf("warm: %d %+v", wresp.StatusCode, job)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !job.Done && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		_, body := call("GET", adminBase+"/admin/warm/"+job.ID, adminToken)
		json.Unmarshal(body, &job)
	}
	if !job.Done || job.Counts.Total != 2 || job.Counts.Pulled != 2 {
		t.Errorf("warm job: %+v, want done with 2 pulled", job)
	}

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve exit %d", code)
	}
	done <- 0
	// No token or key material in a debug log of full pulls.
	logs := stderr.String()
	if !strings.Contains(logs, "photo pulled") {
		t.Fatalf("no pull logged:\n%s", logs)
	}
	for _, secret := range []string{adminToken, string(o.keyPEM[40:100]), "PRIVATE KEY", "Bearer ", "eyJ"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain secret material %q", secret)
		}
	}
}

func scrape(t *testing.T, adminBase string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(adminBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value is the metric's value with labels (a counter's value, a
// histogram's count), 0 when absent.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return 0
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return 0
}
