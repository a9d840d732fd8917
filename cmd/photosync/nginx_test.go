package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNginxInFront runs the deploy/nginx example with a real nginx on
// loopback in front of the demo photosync and a stand-in application:
// photos and the identity nginx establishes flow through, and an identity
// header sent by the client does not.
func TestNginxInFront(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if nginx, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed (.ci/test installs Debian's nginx-light): cannot exercise deploy/nginx")
		}
	}

	// photosync: the demo, with its Exchange simulator.
	psLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- demo(ctx, psLn, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	waitHealthy(t, "http://"+psLn.Addr().String())

	// The application: a session check for auth_request, and pages that
	// report the identity header they were given.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/session/check" {
			if c, err := r.Cookie("session"); err == nil && c.Value == "adele-session" {
				w.Header().Set("X-Auth-Email", "adele.vance@contoso.com")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("X-App-Saw-Email", r.Header.Get("X-Forwarded-Email"))
		_, _ = w.Write([]byte("application page"))
	}))
	t.Cleanup(app.Close)

	base := startNginx(t, nginx, psLn.Addr().String(), app.Listener.Addr().String())
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	const signedIn, forged = "Cookie", "X-Forwarded-Email"

	tests := []struct {
		name   string
		path   string
		hdr    []string
		status int
		check  func(t *testing.T, resp *http.Response)
	}{
		{"sharepoint url", "/_layouts/15/userphoto.aspx?accountname=adele.vance@contoso.com&size=L", nil, http.StatusOK, wantPhoto},
		{"native url", "/photos/alex.wilber@contoso.com?size=HR96x96", nil, http.StatusOK, wantPhoto},
		{"no photo", "/photos/lee.gu@contoso.com", nil, http.StatusNotFound, nil},
		{"metadata", "/_layouts/15/metadata/json/1", nil, http.StatusOK, nil},
		{"edit, signed in", "/photos/edit", []string{signedIn, "session=adele-session"}, http.StatusFound, func(t *testing.T, resp *http.Response) {
			if !strings.Contains(resp.Header.Get("Location"), "/ecp/") {
				t.Errorf("edit went to %q, want the ECP photo page", resp.Header.Get("Location"))
			}
		}},
		{"edit, anonymous with a forged header", "/photos/edit", []string{forged, "adele.vance@contoso.com"}, http.StatusUnauthorized, nil},
		{"app, signed in", "/app/page", []string{signedIn, "session=adele-session"}, http.StatusOK, wantAppSaw("adele.vance@contoso.com")},
		{"app, forged header", "/app/page", []string{forged, "adele.vance@contoso.com"}, http.StatusOK, wantAppSaw("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(tt.path, tt.hdr...)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s: %d, want %d", tt.path, resp.StatusCode, tt.status)
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
		})
	}

	// The browser's cached copy revalidates through nginx.
	path := "/_layouts/15/userphoto.aspx?accountname=adele.vance@contoso.com&size=L"
	etag := get(path).Header.Get("ETag")
	if resp := get(path, "If-None-Match", etag); etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %q through nginx: %d, want 304", etag, resp.StatusCode)
	}
}

func wantPhoto(t *testing.T, resp *http.Response) {
	t.Helper()
	if resp.Header.Get("Content-Type") != "image/jpeg" || resp.Header.Get("ETag") == "" || resp.Header.Get("Cache-Status") == "" {
		t.Errorf("not photosync's photo: %v", resp.Header)
	}
}

func wantAppSaw(email string) func(*testing.T, *http.Response) {
	return func(t *testing.T, resp *http.Response) {
		t.Helper()
		if got := resp.Header.Get("X-App-Saw-Email"); got != email || resp.Header.Get("Cache-Status") != "" {
			t.Errorf("the application saw identity %q, want %q", got, email)
		}
	}
}

// startNginx runs deploy/nginx/site.example.conf, changed only where a test
// must change it (loopback ports, no TLS, file locations), and returns its
// base URL.
func startNginx(t *testing.T, nginx, photosyncAddr, appAddr string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "deploy", "nginx")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nginx binds it next; on loopback nothing else takes it first

	edits := map[string][][2]string{
		"photosync-upstream.conf":  {{"server 127.0.0.1:8080;", "server " + photosyncAddr + ";"}},
		"photosync-locations.conf": {{"/etc/nginx/photosync/", dir + "/"}},
		"photosync-proxy.conf":     nil,
		"site.example.conf": {
			{"/etc/nginx/photosync/", dir + "/"},
			{"server 127.0.0.1:3000;", "server " + appAddr + ";"},
			{"listen 443 ssl;", "listen " + addr + ";"},
			{"    ssl_certificate     /etc/ssl/certs/intranet.pem;\n", ""},
			{"    ssl_certificate_key /etc/ssl/private/intranet.key;\n", ""},
		},
	}
	for name, subs := range edits {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, sub := range subs {
			if !strings.Contains(s, sub[0]) {
				t.Fatalf("deploy/nginx/%s no longer contains %q", name, sub[0])
			}
			s = strings.ReplaceAll(s, sub[0], sub[1])
		}
		writeTestFile(t, filepath.Join(dir, name), s)
	}
	// A single foreground process as the test's own user, its files in dir.
	writeTestFile(t, filepath.Join(dir, "nginx.conf"), `master_process off;
daemon off;
pid `+dir+`/nginx.pid;
error_log `+dir+`/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path `+dir+`/body;
    proxy_temp_path `+dir+`/proxy;
    fastcgi_temp_path `+dir+`/fastcgi;
    uwsgi_temp_path `+dir+`/uwsgi;
    scgi_temp_path `+dir+`/scgi;
    include `+dir+`/site.example.conf;
}
`)
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s\n%s", out.String(), log)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx never listened on %s: %s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeTestFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
