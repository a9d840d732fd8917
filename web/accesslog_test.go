package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"photosync/web"
)

// TestAccessLog: with AccessLog every request gets one line at info with
// its status, bytes, Cache-Status, elapsed time, request id and route;
// without it those lines are debug only.
func TestAccessLog(t *testing.T) {
	tests := []struct {
		name   string
		access bool
		want   int // lines at info
	}{
		{"on", true, 3},
		{"off", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
			e := newEnv(t, envOptions{web: func(o *web.Options) { o.AccessLog, o.Logger = tt.access, log }})
			e.ownPhoto(t, adele, "HR96x96")
			e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele+"&size=S", proxy, adele, "X-Request-Id", "req-42")
			e.get(t, "/nowhere", proxy, "")
			e.wait(t) // no pull outlives the test (TestRoute counts every allocation)

			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
				if l == "" {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
				if m["msg"] == "request" {
					lines = append(lines, m)
				}
			}
			if len(lines) != tt.want {
				t.Fatalf("%d request lines at info, want %d:\n%s", len(lines), tt.want, buf.String())
			}
			if tt.want == 0 {
				return
			}
			for _, key := range []string{"status", "bytes", "cache_status", "elapsed", "request_id", "route"} {
				if _, ok := lines[0][key]; !ok {
					t.Errorf("access line lacks %q: %v", key, lines[0])
				}
			}
			if lines[0]["route"] != "photo" || lines[0]["status"] != float64(http.StatusOK) || !strings.HasPrefix(lines[0]["cache_status"].(string), "photosync") {
				t.Errorf("first line: %v", lines[0])
			}
			if lines[1]["request_id"] != "req-42" || lines[1]["route"] != "userphoto" {
				t.Errorf("SharePoint line: %v", lines[1])
			}
			if lines[2]["route"] != "other" || lines[2]["status"] != float64(http.StatusNotFound) {
				t.Errorf("unknown path line: %v", lines[2])
			}
		})
	}
}

// TestReadyLogsNothingPerProbe: a failing /readyz answers 503 each time but
// leaves the logging of the change to whoever gives Ready (cmd logs it once
// per change); the handler itself writes nothing above debug.
func TestReadyLogsNothingPerProbe(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e := newEnv(t, envOptions{web: func(o *web.Options) {
		o.Logger = log
		o.Ready = func(context.Context) error { return errors.New("store down") }
	}})
	for range 3 {
		if resp := e.get(t, "/readyz", "10.0.0.9:1234", ""); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("readyz = %d", resp.StatusCode)
		}
	}
	if strings.Contains(buf.String(), "not ready") {
		t.Errorf("a line per probe:\n%s", buf.String())
	}
}
