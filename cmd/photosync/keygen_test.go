package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"photosync/configs"
	"photosync/oauth"
)

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "s2s.crt"), filepath.Join(dir, "s2s.key")
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"keygen", "--cert", cert, "--key", key, "--days", "30", "--name", "photos.contoso.com"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	c, _, err := oauth.LoadKeyPair(cert, key)
	if err != nil {
		t.Fatalf("the pair written does not load: %v", err)
	}
	if c.Subject.CommonName != "photos.contoso.com" {
		t.Errorf("CN %q", c.Subject.CommonName)
	}
	fi, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", fi.Mode().Perm())
	}
	out := stdout.String()
	realm := regexp.MustCompile(`realm: ([0-9a-f-]{36})\n`).FindStringSubmatch(out)
	if realm == nil || !strings.Contains(out, "certificate: "+cert+"\n") || !strings.Contains(out, "key: "+key+"\n") {
		t.Fatalf("config lines missing:\n%s", out)
	}

	// The printed lines are a working s2s section.
	cfg := "exchange:\n  autodiscover_domain: autodiscover.contoso.com\n" + out[strings.Index(out, "s2s:\n"):strings.Index(out, "\nThen:")]
	path := filepath.Join(dir, "photosync.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := configs.Load(path); err != nil {
		t.Errorf("the printed lines do not make a valid config: %v\n%s", err, cfg)
	}
}

func TestKeygenRefuses(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "s2s.crt"), filepath.Join(dir, "s2s.key")
	if err := os.WriteFile(cert, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		keep bool // the existing certificate is untouched
	}{
		{"existing file", []string{"keygen", "--cert", cert, "--key", key}, 1, true},
		{"no key flag", []string{"keygen", "--cert", cert}, 2, true},
		{"same file", []string{"keygen", "--cert", cert, "--key", cert}, 2, true},
		{"zero days", []string{"keygen", "--cert", cert, "--key", key, "--days", "0", "--force"}, 2, true},
		{"force", []string{"keygen", "--cert", cert, "--key", key, "--force"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr.String())
			}
			b, _ := os.ReadFile(cert)
			if kept := string(b) == "keep me"; kept != tt.keep {
				t.Errorf("certificate kept %v, want %v", kept, tt.keep)
			}
			if tt.keep {
				if _, err := os.Stat(key); err == nil {
					t.Error("a key was written although the command refused")
				}
			}
		})
	}
}

func TestConfigExample(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"config", "example"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if stdout.String() != string(configs.Example) {
		t.Error("config example did not print the embedded example")
	}
	if _, err := configs.Parse([]byte(stdout.String())); err != nil {
		t.Errorf("printed example does not parse: %v", err)
	}
}
