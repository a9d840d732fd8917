package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			_, _ = w.Write([]byte("ok\n"))
		case "/down":
			http.Error(w, "down", http.StatusServiceUnavailable)
		case "/moved":
			http.Redirect(w, r, "/healthz", http.StatusFound)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	defer close(release)

	tests := []struct {
		name string
		args []string
		code int
		say  string // in stdout (code 0) or stderr
	}{
		{"healthy", []string{"--url", srv.URL + "/healthz"}, 0, "ok"},
		{"503", []string{"--url", srv.URL + "/down"}, 1, "503"},
		{"redirect not followed", []string{"--url", srv.URL + "/moved"}, 1, "302"},
		{"too slow", []string{"--url", srv.URL + "/slow", "--timeout", "100ms"}, 1, "deadline"},
		{"nothing listening", []string{"--url", "http://127.0.0.1:1/healthz"}, 1, "refused"},
		{"remote refused", []string{"--url", "http://photos.contoso.com/healthz"}, 2, "not loopback"},
		{"not http", []string{"--url", "file:///etc/passwd"}, 2, "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			start := time.Now()
			code := run(context.Background(), append([]string{"health"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tt.code, stdout.String(), stderr.String())
			}
			out := stderr.String()
			if code == 0 {
				out = stdout.String()
			}
			if !strings.Contains(out, tt.say) {
				t.Errorf("output lacks %q: %s", tt.say, out)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
