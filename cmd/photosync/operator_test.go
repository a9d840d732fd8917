package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"photosync/configs"
	"photosync/oauth"
	psync "photosync/sync"
	"photosync/sync/exchange/exchangetest"
)

// opsEnv is a config file on disk for an Exchange simulator that trusts
// photosync's certificate, whose metadata document a test server publishes.
type opsEnv struct {
	sim    *exchangetest.Server
	config string
	dir    string
	keyPEM []byte
}

func newOpsEnv(t *testing.T, users []exchangetest.User, extra string) *opsEnv {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "s2s.crt"), filepath.Join(dir, "s2s.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key, err := oauth.LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	realm := oauth.NewRealm()
	issuer, err := oauth.New(oauth.Options{Certificate: cert, Key: key, Realm: realm})
	if err != nil {
		t.Fatal(err)
	}
	meta := httptest.NewServer(issuer.MetadataHandler())
	t.Cleanup(meta.Close)
	sim := exchangetest.NewServer(exchangetest.Options{PartnerMetadataURL: meta.URL, Users: users})
	t.Cleanup(sim.Close)
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), sim.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	// These tests pull hundreds of photos under -race: ask the simulator for
	// the small sizes themselves rather than drawing and scaling HR648x648
	// for each (derivation has its own tests).
	photos := "photos:\n  derive_sizes: false\n"
	if strings.Contains(extra, "photos:\n") {
		extra, photos = strings.Replace(extra, "photos:\n", photos, 1), ""
	}
	config := photos + fmt.Sprintf(`%s
store:
  path: data
%s`, trustYAML(sim, realm), extra)
	path := filepath.Join(dir, "photosync.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return &opsEnv{sim: sim, config: path, dir: dir, keyPEM: keyPEM}
}

// people returns n simulated users with photos.
func people(n int) []exchangetest.User {
	us := make([]exchangetest.User, n)
	for i := range us {
		us[i] = exchangetest.User{Email: fmt.Sprintf("user%03d@contoso.com", i), Name: fmt.Sprintf("User %d", i), Photo: true}
	}
	return us
}

func (o *opsEnv) writeList(t *testing.T, users []exchangetest.User) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# people to warm\n\n")
	for _, u := range users {
		b.WriteString(strings.ToUpper(u.Email[:1]) + u.Email[1:] + "\n")
	}
	path := filepath.Join(o.dir, "people.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestWarm(t *testing.T) {
	users := people(200)
	o := newOpsEnv(t, users, "")
	list := o.writeList(t, users)
	warm := []string{"warm", "--config", o.config, "--from", list, "--sizes", "HR96x96", "--concurrency", "8"}

	code, out, errOut := runCmd(t, warm...)
	if code != 0 || !strings.Contains(out, "pulled 200, not modified 0, no photo 0, failed 0, skipped 0") {
		t.Fatalf("first warm: exit %d\n%s%s", code, out, errOut)
	}
	if got := o.sim.PhotoRequests(); got != 200 {
		t.Errorf("first warm: %d master calls, want 200", got)
	}
	if !strings.Contains(errOut, "warm: 200/200 done, failed 0") || strings.Contains(errOut, "\r") {
		t.Errorf("progress off a terminal: want plain lines, got %q", errOut)
	}

	code, out, errOut = runCmd(t, warm...)
	if code != 0 || !strings.Contains(out, "pulled 0, not modified 0, no photo 0, failed 0, skipped 200") || o.sim.PhotoRequests() != 200 {
		t.Fatalf("second warm: exit %d, %d master calls\n%s%s", code, o.sim.PhotoRequests(), out, errOut)
	}

	// What warm stored is what a request finds: every photo a hit.
	cfg, err := configs.Load(o.config)
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(context.Background(), cfg, newLogger(cfg.Log, &syncBuffer{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		p, err := a.engine.Photo(context.Background(), u.Email, "HR96x96", "")
		if err != nil || p.Outcome != psync.OutcomeHit {
			t.Errorf("%s after warm: %v %v, want a hit", u.Email, p.Outcome, err)
		}
	}
	a.Close()

	// With the master failing for some, the summary counts them and warm exits 1.
	// (502: a failure that is no request to back off, so the others go on.)
	o.sim.FailPhotos(502, 7)
	code, out, errOut = runCmd(t, append(warm, "--force")...)
	if code != 1 || !strings.Contains(out, "pulled 0, not modified 193, no photo 0, failed 7, skipped 0") {
		t.Fatalf("warm with failures: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(errOut, string(o.keyPEM[40:80])) || strings.Contains(errOut, "eyJ") {
		t.Errorf("warm logged key or token material:\n%s", errOut)
	}
}

func TestWarmRefusesBadInput(t *testing.T) {
	o := newOpsEnv(t, nil, "")
	bad := filepath.Join(o.dir, "bad.txt")
	if err := os.WriteFile(bad, []byte("adele@contoso.com\n../etc/passwd\nx\x1b[2J@y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"warm", "--from", bad}, 2, "--config FILE is required"},
		{[]string{"warm", "--config", o.config, "--from", bad}, 1, `line 2: "../etc/passwd"`},
		{[]string{"warm", "--config", o.config, "--from", bad}, 1, `line 3: "x\x1b[2J@y"`},
		{[]string{"warm", "--config", o.config, "--sizes", "HR1x1"}, 2, `unknown size "HR1x1"`},
		{[]string{"warm", "--config", o.config, "--concurrency", "0"}, 2, "--concurrency must be"},
		{[]string{"inspect", "--config", o.config}, 2, "want --config FILE EMAIL"},
		{[]string{"inspect", "--config", o.config, "a/b@c.com"}, 2, "not allowed"},
		{[]string{"forget", "a@b.com"}, 2, "want --config FILE EMAIL"},
		{[]string{"config"}, 2, "config check FILE"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.contains) {
				t.Fatalf("exit %d, output %q; want exit %d containing %q", code, out+errOut, tt.code, tt.contains)
			}
		})
	}
}

// normalise replaces what changes between runs (times, temporary folders,
// checksums and ETags of generated photos) with fixed words.
func normalise(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "DIR")
	s = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`).ReplaceAllString(s, "TIME")
	s = regexp.MustCompile(`\b[0-9a-f]{64}\b`).ReplaceAllString(s, "CHECKSUM")
	s = regexp.MustCompile(`\b[0-9a-f]{32}\b`).ReplaceAllString(s, "ETAG")
	s = regexp.MustCompile(`\b[0-9a-f]{16}\b`).ReplaceAllString(s, "MASTERETAG")
	return s
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestInspectAndForget(t *testing.T) {
	users := []exchangetest.User{{Email: "adele.vance@contoso.com", Name: "Adele Vance", Photo: true}}
	o := newOpsEnv(t, users, "")
	list := o.writeList(t, users)
	if code, out, errOut := runCmd(t, "warm", "--config", o.config, "--from", list, "--sizes", "HR48x48,HR240x240"); code != 0 {
		t.Fatalf("warm: exit %d\n%s%s", code, out, errOut)
	}
	o.sim.FailPhotos(503, 1)
	if code, _, _ := runCmd(t, "warm", "--config", o.config, "--from", list, "--sizes", "HR48x48", "--force"); code != 1 {
		t.Fatalf("failing warm: exit %d, want 1", code)
	}

	for _, tt := range []struct {
		args   []string
		golden string
	}{
		{[]string{"inspect", "--config", o.config, "Adele.Vance@contoso.com"}, "inspect.txt"},
		{[]string{"inspect", "--config", o.config, "adele.vance@contoso.com", "--json"}, "inspect.json"},
	} {
		code, out, errOut := runCmd(t, tt.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errOut)
		}
		golden(t, tt.golden, normalise(out, o.dir))
	}

	code, out, errOut := runCmd(t, "forget", "--config", o.config, "adele.vance@contoso.com")
	if code != 0 || !strings.Contains(out, "forgot adele.vance@contoso.com at 9 sizes") {
		t.Fatalf("forget: exit %d\n%s%s", code, out, errOut)
	}
	_, out, _ = runCmd(t, "inspect", "--config", o.config, "adele.vance@contoso.com", "--json")
	if strings.Contains(out, `"stored": true`) {
		t.Errorf("records survive forget:\n%s", out)
	}
	before := o.sim.PhotoRequests()
	code, out, _ = runCmd(t, "warm", "--config", o.config, "--from", list, "--sizes", "HR240x240")
	if code != 0 || !strings.Contains(out, "pulled 1,") || o.sim.PhotoRequests() != before+1 {
		t.Errorf("after forget the next warm should pull: exit %d, %d new master calls\n%s", code, o.sim.PhotoRequests()-before, out)
	}
}

func TestConfigCheck(t *testing.T) {
	o := newOpsEnv(t, nil, `  redis_url: redis://photosync:hunter2@127.0.0.1:6379/0
admin:
  listen: 0.0.0.0:9090
  token: s3cret-admin-token
`)
	code, out, errOut := runCmd(t, "config", "check", o.config)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, secret := range []string{"hunter2", "s3cret-admin-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("config check prints the secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"redis://photosync:********@127.0.0.1:6379/0", "token: '********'", "expiration: 6h0m0s", "listen: 0.0.0.0:9090"} {
		if !strings.Contains(out, want) {
			t.Errorf("config check output lacks %q:\n%s", want, out)
		}
	}

	// Every secret a config may hold, on its own keys.
	withSources := filepath.Join(o.dir, "sources.yaml")
	doc := `sources: [graph, directory]
graph:
  tenant: contoso.onmicrosoft.com
  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e
  client_secret: graph-s3cret-value
directory:
  url: ldaps://ldap.contoso.com
  bind_dn: cn=photosync,dc=contoso,dc=com
  bind_password: ldap-s3cret-value
  base_dn: dc=contoso,dc=com
store:
  path: ` + filepath.Join(o.dir, "data2") + "\n"
	if err := os.WriteFile(withSources, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd(t, "config", "check", withSources)
	if code != 0 {
		t.Fatalf("config with graph and directory: exit %d: %s", code, errOut)
	}
	for _, secret := range []string{"graph-s3cret-value", "ldap-s3cret-value"} {
		if strings.Contains(out+errOut, secret) {
			t.Errorf("config check prints the secret %q:\n%s", secret, out)
		}
	}
	if n := strings.Count(out, "'********'"); n != 2 {
		t.Errorf("config check masks %d secrets of graph and directory, want 2:\n%s", n, out)
	}

	bad := filepath.Join(o.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("log:\n  level: loud\nadmin:\n  listen: 10.0.0.1:9090\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd(t, "config", "check", bad)
	for _, want := range []string{"line 2: log.level", "line 4: admin.listen: 10.0.0.1:9090 is not loopback"} {
		if code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("bad config: exit %d, want 1 and %q in\n%s%s", code, want, out, errOut)
		}
	}
}
