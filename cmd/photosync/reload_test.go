package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"photosync/configs"
	"photosync/oauth"
	"photosync/sync/exchange/exchangetest"
)

// reloadEnv is serve running on a config file under a test's control, with
// the reload signal injected.
type reloadEnv struct {
	dir, path, base string
	sim             *exchangetest.Server
	realm           string
	hup             chan os.Signal
	done            chan error
	logs            *syncBuffer
}

var reloadUsers = []exchangetest.User{
	{Email: "adele.vance@contoso.com", Name: "Adele Vance", Photo: true},
	{Email: "alex.wilber@contoso.com", Name: "Alex Wilber", Photo: true},
	{Email: "megan.bowen@contoso.com", Name: "Megan Bowen", Photo: true},
}

func newReloadEnv(t *testing.T) *reloadEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &reloadEnv{dir: t.TempDir(), base: "http://" + ln.Addr().String(), realm: oauth.NewRealm(),
		hup: make(chan os.Signal, 1), done: make(chan error, 1), logs: &syncBuffer{}}
	e.sim = exchangetest.NewServer(exchangetest.Options{PartnerMetadataURL: e.base + "/_layouts/15/metadata/json/1", Users: reloadUsers})
	t.Cleanup(e.sim.Close)
	writeTrustFiles(t, e.dir, e.sim)
	e.path = filepath.Join(e.dir, "photosync.yaml")
	e.write(t, "listen: 127.0.0.1:0\nphotos:\n  expiration: 2\n  cold_deadline: 30s\nlog:\n  format: json\n")
	cfg, err := configs.Load(e.path)
	if err != nil {
		t.Fatal(err)
	}
	log, logs := newLogs(cfg.Log, e.logs)
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() {
		exited <- serve(ctx, cfg, ln, log, nil, &reloading{path: e.path, logs: logs, signal: e.hup, done: e.done})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-exited; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	waitHealthy(t, e.base)
	return e
}

// write replaces the config file with doc, the trust sections and the
// store added.
func (e *reloadEnv) write(t *testing.T, doc string) {
	t.Helper()
	doc += trustYAML(e.sim, e.realm) + "\n  public_url: https://photos.contoso.com\nstore:\n  path: data\nadmin:\n  listen: 127.0.0.1:0\n"
	if err := os.WriteFile(e.path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reload sends the signal and returns the reload's outcome.
func (e *reloadEnv) reload(t *testing.T) error {
	t.Helper()
	e.hup <- syscall.SIGHUP
	select {
	case err := <-e.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("no reload outcome")
		return nil
	}
}

// hits reads photosync_photo_hits_total from the admin listener's /metrics.
func (e *reloadEnv) hits(t *testing.T) float64 {
	t.Helper()
	m := regexp.MustCompile(`"msg":"admin api serving","addr":"([^"]+)"`).FindStringSubmatch(e.logs.String())
	if m == nil {
		t.Fatalf("no admin listener in the log:\n%s", tail(e.logs.String()))
	}
	_, body := fetch(t, "http://"+m[1]+"/metrics")
	v := regexp.MustCompile(`(?m)^photosync_photo_hits_total (\S+)$`).FindStringSubmatch(string(body))
	if v == nil {
		t.Fatalf("/metrics has no photosync_photo_hits_total")
	}
	n, err := strconv.ParseFloat(v[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *reloadEnv) photo(t *testing.T, owner string) *http.Response {
	t.Helper()
	resp, _ := fetch(t, e.base+"/photos/"+owner+"?size=HR96x96", "X-Forwarded-Email", owner)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d", owner, resp.StatusCode)
	}
	return resp
}

// TestReload: SIGHUP applies a changed photos.expiration and log format to
// the running process; a changed listen address, and a config that fails
// its check, are refused with the old config still serving; no request in
// flight during a reload fails.
func TestReload(t *testing.T) {
	e := newReloadEnv(t)
	if got := maxAge(t, e.photo(t, reloadUsers[0].Email)); got < 7100 || got > 7200 {
		t.Fatalf("max-age %d, want photos.expiration's 2h", got)
	}

	// Requests keep coming while the config is reloaded.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failures sync.Map
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := reloadUsers[i%2].Email
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, e.base+"/photos/"+owner+"?size=HR96x96", nil)
				req.Header.Set("X-Forwarded-Email", owner)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					failures.Store(err.Error(), true)
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Store(resp.Status, true)
				}
			}
		}()
	}

	e.photo(t, reloadUsers[0].Email)
	hits := e.hits(t)
	e.write(t, "listen: 127.0.0.1:0\nphotos:\n  expiration: 3h\n  cold_deadline: 30s\nlog:\n  format: text\n  level: debug\n")
	if err := e.reload(t); err != nil {
		t.Fatalf("reload: %v", err)
	}
	e.photo(t, reloadUsers[0].Email) // a hit on the new engine
	if after := e.hits(t); after < hits+1 {
		t.Errorf("photosync_photo_hits_total %v after the reload and one more hit, %v before: the counters did not carry on", after, hits)
	}
	if got := maxAge(t, e.photo(t, reloadUsers[2].Email)); got < 10700 || got > 10800 {
		t.Errorf("after the reload: max-age %d, want the new 3h", got)
	}
	if !strings.Contains(e.logs.String(), `level=INFO msg="config reloaded"`) {
		t.Errorf("the reload line is not in the new text format:\n%s", tail(e.logs.String()))
	}
	if !strings.Contains(e.logs.String(), "level=DEBUG msg=request component=http") {
		t.Errorf("log.level: debug did not take effect:\n%s", tail(e.logs.String()))
	}
	for range 2 { // and once more, to retire the live the first reload made
		if err := e.reload(t); err != nil {
			t.Fatalf("second reload: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	failures.Range(func(k, _ any) bool { t.Errorf("request during the reload: %v", k); return true })

	tests := []struct {
		name, doc string
		want      string // in the refusal's log line
	}{
		{"listen", "listen: 127.0.0.1:1\nphotos:\n  expiration: 5h\n", "keys=[listen]"},
		{"store and sources", "listen: 127.0.0.1:0\nsources: [exchange, graph]\ngraph:\n  tenant: t.onmicrosoft.com\n  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e\n  client_secret: s\n", "keys=[sources]"},
		{"broken config", "listen: 127.0.0.1:0\nphotos:\n  expiration: [5]\n", "photos.expiration"},
		{"missing key file", "listen: 127.0.0.1:0\n", "s2s.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.write(t, tt.doc)
			if tt.name == "missing key file" {
				os.Rename(filepath.Join(e.dir, "s2s.key"), filepath.Join(e.dir, "s2s.key.away"))
				defer os.Rename(filepath.Join(e.dir, "s2s.key.away"), filepath.Join(e.dir, "s2s.key"))
			}
			if err := e.reload(t); err == nil {
				t.Fatal("reload taken, want it refused")
			}
			if !strings.Contains(e.logs.String(), "reload refused") || !strings.Contains(e.logs.String(), tt.want) {
				t.Errorf("no refusal naming %q:\n%s", tt.want, tail(e.logs.String()))
			}
			// The old config runs on: 3h timers, same listener.
			resp := e.photo(t, reloadUsers[2].Email)
			if got := maxAge(t, resp); got > 10800 || got < 3*3600-600 {
				t.Errorf("max-age %d after a refused reload, want the running 3h", got)
			}
		})
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// TestSIGHUPReloadsTheProcess builds the binary, runs serve and sends it a
// real SIGHUP: it reloads and keeps running instead of exiting 129.
func TestSIGHUPReloadsTheProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "photosync")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	sim := exchangetest.NewServer(exchangetest.Options{PartnerMetadataURL: "http://" + addr + "/_layouts/15/metadata/json/1", Users: reloadUsers})
	defer sim.Close()
	writeTrustFiles(t, dir, sim)
	path := filepath.Join(dir, "photosync.yaml")
	doc := fmt.Sprintf("listen: %q\n%s\n  public_url: https://photos.contoso.com\nstore:\n  path: data\nadmin:\n  listen: \"\"\n", addr, trustYAML(sim, oauth.NewRealm()))
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	waitHealthy(t, "http://"+addr)

	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "config reloaded") {
		select {
		case err := <-exited:
			t.Fatalf("serve exited on SIGHUP: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, _ := fetch(t, "http://"+addr+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz after SIGHUP: %d", resp.StatusCode)
	}
	var exitErr *exec.ExitError
	select {
	case err := <-exited:
		if errors.As(err, &exitErr) {
			t.Fatalf("serve exited: %v", err)
		}
	default:
	}
}
