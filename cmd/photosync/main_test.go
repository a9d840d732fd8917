package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"photosync/oauth"
	"photosync/sync/exchange/exchangetest"
)

// syncBuffer is a bytes.Buffer safe to write from the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitHealthy polls base/healthz until it answers, generously.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never became healthy", base)
}

func fetch(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestDemoShowsEveryonesPhoto(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- demo(ctx, ln, &stdout, &stderr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	waitHealthy(t, base)
	if !strings.Contains(stdout.String(), base+"/") {
		t.Fatalf("demo did not print its address %s: %q", base, stdout.String())
	}

	resp, page := fetch(t, base+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Adele Vance") {
		t.Fatalf("people page: %d %.200s", resp.StatusCode, page)
	}
	for round := 0; round < 2; round++ {
		for _, u := range demoUsers {
			if !strings.Contains(string(page), u.Email) {
				t.Errorf("people page lacks %s", u.Email)
			}
			resp, body := fetch(t, base+"/_layouts/15/userphoto.aspx?accountname="+u.Email+"&size=L")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d %s", u.Email, resp.StatusCode, body)
			}
			img, format, err := image.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("%s: photo does not decode: %v", u.Email, err)
			}
			wantFormat := "jpeg"
			if !u.Photo && !u.ADThumbnail {
				wantFormat = "png" // the placeholder
			}
			if format != wantFormat || img.Bounds().Dx() == 0 {
				t.Errorf("%s: %s %v, want %s", u.Email, format, img.Bounds(), wantFormat)
			}
			if wantFormat == "png" && !strings.HasPrefix(resp.Header.Get("ETag"), `"initials-`) {
				t.Errorf("%s: placeholder ETag %s, want the demo's initials", u.Email, resp.Header.Get("ETag"))
			}
			outcome := resp.Header.Get("Cache-Status")
			if round == 1 && !strings.HasPrefix(outcome, "photosync; hit; ttl=") {
				t.Errorf("%s on the second load: outcome %q, want hit", u.Email, outcome)
			}
		}
	}
	if strings.Contains(stderr.String(), "level=ERROR") || strings.Contains(stderr.String(), "metadata check failed") {
		t.Errorf("demo logged errors:\n%s", stderr.String())
	}
}

// TestServeFromConfigFile runs `photosync serve --config FILE` against the
// simulator: the config file, key files, CA file and wiring of a real
// deployment.
func TestServeFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr

	sim := exchangetest.NewServer(exchangetest.Options{
		PartnerMetadataURL: base + "/_layouts/15/metadata/json/1",
		Users:              []exchangetest.User{{Email: "adele.vance@contoso.com", Name: "Adele Vance", Photo: true}},
	})
	defer sim.Close()
	keyPEM := writeTrustFiles(t, dir, sim)
	config := fmt.Sprintf(`listen: %q
photos:
  expiration: 2
  error_expiration: 90s
  cold_deadline: 30s
%s
store:
  path: data
log:
  format: json
admin:
  listen: ""
`, addr, trustYAML(sim, oauth.NewRealm()))
	path := filepath.Join(dir, "photosync.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr syncBuffer
	if code := run(context.Background(), []string{"serve", "--config", path, "--check"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--check: exit %d: %s", code, stderr.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", path}, &stdout, &stderr) }()
	waitHealthy(t, base)

	// The owner, signed in through the (loopback, trusted) proxy.
	resp, body := fetch(t, base+"/photos/adele.vance@contoso.com?size=HR360x360", "X-Forwarded-Email", "Adele.Vance@contoso.com")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("photo: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	// The timer started when the pull ended, a moment before this answer.
	if got := maxAge(t, resp); got > 7200 || got < 7100 {
		t.Errorf("Cache-Control max-age = %d, want the 2h of photos.expiration", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "photosync.db")); err != nil {
		t.Errorf("embedded store not under the config's folder: %v", err)
	}
	if sim.PhotoRequests() != 1 {
		t.Errorf("master calls = %d, want 1", sim.PhotoRequests())
	}

	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d: %s", code, stderr.String())
	}
	logs := stderr.String()
	for _, want := range []string{`"msg":"exchange metadata ok"`, `"msg":"photo pulled"`, `"msg":"photosync stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	for _, secret := range []string{string(keyPEM[40:80]), "Bearer ", "eyJ"} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain secret material %q", secret)
		}
	}
}

func TestCommandLine(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("photos:\n  trigger: everyone\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"version"}, 0, "photosync "},
		{[]string{"help"}, 0, "Usage:"},
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve"}, 2, "--config FILE is required"},
		{[]string{"serve", "--config"}, 2, "flag needs an argument"},
		{[]string{"serve", "--config", bad, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"serve", "--config", bad}, 1, "line 2: photos.trigger"},
		{[]string{"serve", "--config", filepath.Join(t.TempDir(), "none.yaml")}, 1, "no such file"},
		{[]string{"demo", "--listen"}, 2, "flag needs an argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr syncBuffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != tt.code || !strings.Contains(out, tt.contains) {
				t.Fatalf("exit %d, output %q; want exit %d containing %q", code, out, tt.code, tt.contains)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func maxAge(t *testing.T, resp *http.Response) int {
	t.Helper()
	cc := resp.Header.Get("Cache-Control")
	_, v, ok := strings.Cut(cc, "max-age=")
	n, err := strconv.Atoi(v)
	if !ok || err != nil {
		t.Fatalf("Cache-Control = %q, no max-age", cc)
	}
	return n
}

// writeTrustFiles writes what a config under dir names in trustYAML: a fresh S2S
// key pair (s2s.crt, s2s.key) and the simulator's CA (ca.pem). It returns
// the key, for tests that look for it in logs.
func writeTrustFiles(t *testing.T, dir string, sim *exchangetest.Server) (keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"s2s.crt": certPEM, "s2s.key": keyPEM, "ca.pem": sim.CACertPEM()} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return keyPEM
}

// trustYAML is the exchange and s2s sections of a config that reaches sim
// with the files writeTrustFiles wrote.
func trustYAML(sim *exchangetest.Server, realm string) string {
	return fmt.Sprintf(`exchange:
  autodiscover_domain: %q
  ca_file: ca.pem
s2s:
  certificate: s2s.crt
  key: s2s.key
  realm: %s`, sim.Host(), realm)
}
