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
// loopback in front of the demo photosync, a stand-in application and a
// stand-in for oauth2-proxy's /oauth2/auth: photos and the identity nginx
// establishes flow through, on every URL dialect; an identity header sent
// by the client does not; the metadata document and /healthz need no
// sign-in. (TestOAuth2Proxy runs the same files with the real oauth2-proxy.)
func TestNginxInFront(t *testing.T) {
	nginx := nginxPath(t)
	psAddr := startDemo(t)

	// The application: pages that report the identity header they were
	// given. /oauth2/auth answers as oauth2-proxy does with
	// --set-xauthrequest: 202 with X-Auth-Request-Email, or 401.
	sessions := map[string]string{"adele-session": adeleAddr, "alex-session": alexAddr}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth2/auth" {
			c, err := r.Cookie("_oauth2_proxy")
			if err != nil || sessions[c.Value] == "" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("X-Auth-Request-Email", sessions[c.Value])
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("X-App-Saw-Email", r.Header.Get("X-Forwarded-Email"))
		_, _ = w.Write([]byte("application page"))
	}))
	t.Cleanup(app.Close)

	base := startNginx(t, nginx, psAddr, app.Listener.Addr().String(), app.Listener.Addr().String())
	const forged = "X-Forwarded-Email"
	adele := []string{"Cookie", "_oauth2_proxy=adele-session"}
	alex := []string{"Cookie", "_oauth2_proxy=alex-session"}
	with := func(a []string, b ...string) []string { return append(append([]string(nil), a...), b...) }

	tests := []struct {
		name   string
		path   string
		hdr    []string
		status int
		check  func(t *testing.T, resp *http.Response)
	}{
		{"sharepoint url", "/_layouts/15/userphoto.aspx?accountname=" + adeleAddr + "&size=L", adele, http.StatusOK, wantPhoto},
		{"native url", "/photos/" + alexAddr + "?size=HR96x96", adele, http.StatusOK, wantPhoto},
		{"ews url", "/EWS/Exchange.asmx/s/GetUserPhoto?email=" + adeleAddr + "&size=HR240x240", adele, http.StatusOK, wantPhoto},
		{"graph url", "/users/" + adeleAddr + "/photo/$value", adele, http.StatusOK, wantPhoto},
		{"graph url, v1.0", "/v1.0/users/" + adeleAddr + "/photos/96x96/$value", adele, http.StatusOK, wantPhoto},
		{"graph url, beta, me", "/beta/me/photos/48x48/$value", adele, http.StatusOK, wantPhoto},
		{"graph metadata", "/v1.0/me/photo", adele, http.StatusOK, wantContentType("application/json")},
		{"graph metadata, sized", "/v1.0/users/" + adeleAddr + "/photos/240x240", adele, http.StatusOK, wantContentType("application/json")},
		{"no photo", "/photos/lee.gu@contoso.com", adele, http.StatusNotFound, nil},
		{"photo, anonymous", "/photos/" + adeleAddr, nil, http.StatusUnauthorized, nil},
		{"photo, anonymous with a forged header", "/photos/" + adeleAddr, []string{forged, adeleAddr}, http.StatusUnauthorized, nil},
		{"metadata, anonymous", "/_layouts/15/metadata/json/1", nil, http.StatusOK, nil},
		{"healthz, anonymous", "/healthz", nil, http.StatusOK, nil},
		{"edit, signed in", "/photos/edit", adele, http.StatusFound, func(t *testing.T, resp *http.Response) {
			if !strings.Contains(resp.Header.Get("Location"), "/ecp/") {
				t.Errorf("edit went to %q, want the ECP photo page", resp.Header.Get("Location"))
			}
		}},
		{"app, signed in", "/app/page", adele, http.StatusOK, wantAppSaw(adeleAddr)},
		{"app, forged header", "/app/page", with(alex, forged, adeleAddr), http.StatusOK, wantAppSaw(alexAddr)},
		{"app, anonymous", "/app/page", []string{forged, adeleAddr}, http.StatusFound, func(t *testing.T, resp *http.Response) {
			if !strings.Contains(resp.Header.Get("Location"), "/oauth2/start?rd=/app/page") {
				t.Errorf("anonymous sent to %q, want oauth2-proxy's sign-in", resp.Header.Get("Location"))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := httpGet(t, base+tt.path, tt.hdr...)
			if resp.StatusCode != tt.status {
				t.Fatalf("%s: %d, want %d", tt.path, resp.StatusCode, tt.status)
			}
			if tt.check != nil {
				tt.check(t, resp)
			}
		})
	}

	// /me is the viewer nginx established, whatever header the browser
	// forged: alex, claiming to be adele, gets alex's photo.
	own := httpGet(t, base+"/v1.0/users/"+alexAddr+"/photo/$value", alex...).Header.Get("ETag")
	if got := httpGet(t, base+"/v1.0/me/photo/$value", with(alex, forged, adeleAddr)...).Header.Get("ETag"); own == "" || got != own {
		t.Errorf("/me with a forged header: ETag %q, want alex's %q", got, own)
	}

	// The browser's cached copy revalidates through nginx.
	path := "/_layouts/15/userphoto.aspx?accountname=" + adeleAddr + "&size=L"
	etag := httpGet(t, base+path, adele...).Header.Get("ETag")
	if resp := httpGet(t, base+path, with(adele, "If-None-Match", etag)...); etag == "" || resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match %q through nginx: %d, want 304", etag, resp.StatusCode)
	}
}

const (
	adeleAddr = "adele.vance@contoso.com"
	alexAddr  = "alex.wilber@contoso.com"
)

// nginxPath finds nginx, or skips the test saying why.
func nginxPath(t *testing.T) string {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if nginx, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed (.ci/test installs Debian's nginx-light): cannot exercise deploy/nginx")
		}
	}
	return nginx
}

// startDemo runs the demo photosync, with its Exchange simulator, on a
// loopback port until the test ends, and returns its address.
func startDemo(t *testing.T) string {
	t.Helper()
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
	return psLn.Addr().String()
}

// httpGet gets url without following redirects, with hdr's name/value
// pairs, and closes the body.
func httpGet(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func wantContentType(ct string) func(*testing.T, *http.Response) {
	return func(t *testing.T, resp *http.Response) {
		t.Helper()
		if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, ct) {
			t.Errorf("Content-Type %q, want %s", got, ct)
		}
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
// base URL. The application and oauth2-proxy may be one server.
func startNginx(t *testing.T, nginx, photosyncAddr, appAddr, oauth2ProxyAddr string) string {
	t.Helper()
	return startNginxOn(t, nginx, freeAddr(t), photosyncAddr, appAddr, oauth2ProxyAddr)
}

// startNginxOn is startNginx listening on addr.
func startNginxOn(t *testing.T, nginx, addr, photosyncAddr, appAddr, oauth2ProxyAddr string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "deploy", "nginx")

	edits := map[string][][2]string{
		"photosync-upstream.conf":  {{"server 127.0.0.1:8080;", "server " + photosyncAddr + ";"}},
		"photosync-locations.conf": {{"/etc/nginx/photosync/", dir + "/"}},
		"photosync-proxy.conf":     nil,
		"site.example.conf": {
			{"/etc/nginx/photosync/", dir + "/"},
			{"server 127.0.0.1:3000;", "server " + appAddr + ";"},
			{"server 127.0.0.1:4180;", "server " + oauth2ProxyAddr + ";"},
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
