package configs

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `
exchange:
  autodiscover_domain: mail.contoso.com:8443
s2s:
  certificate: s2s.crt
  key: keys/s2s.key
  realm: 6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b
`

func TestExampleFileIsValidAndComplete(t *testing.T) {
	c, err := Load("photosync.example.yaml")
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	// The example documents every key: each one the code knows must appear.
	b, err := os.ReadFile("photosync.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for key := range keysOf(Config{}) {
		last := key[strings.LastIndexByte(key, '.')+1:]
		if !strings.Contains(string(b), last+":") {
			t.Errorf("example file does not document %s", key)
		}
	}
	d := Default()
	if c.Photos.Expiration != d.Photos.Expiration || c.Photos.Trigger != TriggerSelf || c.Store.MemoryLimit != 64<<20 {
		t.Errorf("example disagrees with defaults: %+v", c.Photos)
	}
}

func TestDefaultsAndPaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "photosync.yaml")
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.S2S.Key, filepath.Join(dir, "keys/s2s.key"); got != want {
		t.Errorf("key path = %q, want %q", got, want)
	}
	if got, want := c.Store.Path, filepath.Join(dir, "data"); got != want {
		t.Errorf("store path = %q, want %q", got, want)
	}
	if c.Photos.Expiration.D() != 6*time.Hour || c.Photos.ErrorExpiration.D() != time.Hour {
		t.Errorf("timers = %v, %v", c.Photos.Expiration, c.Photos.ErrorExpiration)
	}
	if !c.Photos.ImportEnabled || c.S2S.ClientID != SharePointClientID || c.Identity.Header != "X-Forwarded-Email" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if len(c.Identity.Prefixes) != 2 || !c.Identity.Prefixes[0].Contains(mustAddr(t, "127.0.0.1")) {
		t.Errorf("trusted proxies = %v", c.Identity.Prefixes)
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "6", want: 6 * time.Hour},
		{in: "0.5", want: 30 * time.Minute},
		{in: "90s", want: 90 * time.Second},
		{in: "2h30m", want: 150 * time.Minute},
		{in: "300ms", want: 300 * time.Millisecond},
		{in: "six hours", bad: true},
		{in: "1e300", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := Parse([]byte(minimal + "photos:\n  expiration: " + tt.in + "\n"))
			if tt.bad {
				if err == nil || !strings.Contains(err.Error(), "line") {
					t.Fatalf("err = %v, want an error naming the line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Photos.Expiration.D() != tt.want {
				t.Errorf("got %v, want %v", c.Photos.Expiration, tt.want)
			}
		})
	}
}

// TestBareNumbersAreHoursOnlyForTheSharePointTimers: photos.expiration and
// photos.error_expiration read a bare number as hours, as SharePoint's
// UserPhotoExpiration does; every other duration wants its unit, and a bare
// number there names the key and the line.
func TestBareNumbersAreHoursOnlyForTheSharePointTimers(t *testing.T) {
	c, err := Parse([]byte(minimal + "photos:\n  expiration: 12\n  error_expiration: 0.5\n  max_stale: 168h\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Photos.Expiration.D() != 12*time.Hour || c.Photos.ErrorExpiration.D() != 30*time.Minute {
		t.Errorf("timers = %v, %v; want 12h, 30m", c.Photos.Expiration, c.Photos.ErrorExpiration)
	}
	tests := []struct{ doc, key, line string }{
		{minimal + "exchange:\n  timeout: 15\n", "exchange.timeout", "line 3"}, // duplicate mapping: see below
		{minimal + "photos:\n  cold_deadline: 2\n", "photos.cold_deadline", "line 9"},
		{minimal + "photos:\n  pull_timeout: 30\n", "photos.pull_timeout", "line 9"},
		{minimal + "photos:\n  max_stale: 168\n", "photos.max_stale", "line 9"},
		{minimal + "  token_lifetime: 1\n", "s2s.token_lifetime", "line 8"},
		{minimal + "  clock_skew: 5\n", "s2s.clock_skew", "line 8"},
		{minimal + "sources: [graph]\ngraph:\n  timeout: 15\n", "graph.timeout", "line 10"},
		{minimal + "directory:\n  timeout: 5\n", "directory.timeout", "line 9"},
	}
	tests[0].doc = strings.Replace(minimal, "8443\n", "8443\n  timeout: 15\n", 1)
	tests[0].line = "line 4"
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatal("a bare number was accepted")
			}
			for _, w := range []string{tt.line, tt.key + ": want a duration with a unit"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if c, err := Parse([]byte(minimal + "  clock_skew: 0\n")); err != nil || c.S2S.ClockSkew != 0 {
		t.Errorf("clock_skew: 0 = %v, %v; want zero, accepted", c.S2S.ClockSkew, err)
	}
}

// TestDecodeErrorsNameTheKey: a value of the wrong kind names its key and
// line and what the key wants, never a Go type; every one is reported.
func TestDecodeErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"list for a duration", minimal + "photos:\n  expiration: [1]\n", []string{"line 9", "photos.expiration: want a duration"}},
		{"text for a number", strings.Replace(minimal, "8443\n", "8443\n  max_concurrency: lots\n", 1), []string{"line 4", "exchange.max_concurrency: want a whole number", `"lots"`}},
		{"text for a bool", minimal + "photos:\n  derive_sizes: maybe\n", []string{"line 9", "photos.derive_sizes: want true or false"}},
		{"mapping for text", "listen: [a]\n" + minimal, []string{"line 1", "listen: want text, got a list"}},
		{"text for a list", minimal + "sources: exchange\n", []string{"line 8", "sources: want a list"}},
		{"text for a section", "photos: 6h\n" + minimal, []string{"line 1", "photos: want a mapping"}},
		{"bad size", minimal + "photos:\n  max_bytes: lots\n", []string{"line 9", "photos.max_bytes: want a size"}},
		{"certificates item not a mapping", minimal + "  certificates: [a.crt]\n", []string{"s2s.certificates: entry 1: want a mapping"}},
		{"all at once", minimal + "photos:\n  jpeg_quality: high\n  cold_deadline: 2\n", []string{"line 9", "photos.jpeg_quality", "line 10", "photos.cold_deadline"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, leak := range []string{"configs.", "!!", "[]", "unmarshal", "time.Duration"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q names a Go or YAML type (%q)", err, leak)
				}
			}
		})
	}
}

func TestByteSizes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "4194304", want: 4 << 20},
		{in: "4MiB", want: 4 << 20},
		{in: "512KiB", want: 512 << 10},
		{in: "1GB", want: 1e9},
		{in: "4 MiB", want: 4 << 20},
		{in: "lots", bad: true},
		{in: "-5", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
	}
	if s := ByteSize(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %q", s)
	}
}

func TestValidationNamesKeyLineAndReason(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // substrings, all must appear
	}{
		{"unknown key", minimal + "photos:\n  expirashun: 6h\n", []string{"line 9", "photos.expirashun: unknown key", "photos.expiration"}},
		{"unknown top key", "lisen: x\n" + minimal, []string{"line 1", "lisen: unknown key"}},
		{"bad trigger", minimal + "photos:\n  trigger: everyone\n", []string{"line 9", "photos.trigger", `"everyone"`}},
		{"negative timer", minimal + "photos:\n  error_expiration: -1h\n", []string{"photos.error_expiration: must be positive"}},
		{"domain with scheme", strings.Replace(minimal, "mail.contoso.com:8443", "https://mail.contoso.com", 1), []string{"line 3", "exchange.autodiscover_domain", "without scheme"}},
		{"realm not a guid", strings.Replace(minimal, "6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b", "contoso", 1), []string{"line 7", "s2s.realm", "GUID"}},
		{"missing exchange", "s2s:\n  realm: x\n", []string{"exchange.autodiscover_domain: required", "s2s.certificate: required", "s2s.key: required", "s2s.realm"}},
		{"bad proxy", minimal + "identity:\n  trusted_proxies: [\"10.0.0.0/8\", \"lan\"]\n", []string{"identity.trusted_proxies", `"lan"`}},
		{"bad header", minimal + "identity:\n  header: \"X Email\"\n", []string{"identity.header"}},
		{"bad redis", minimal + "store:\n  redis_url: http://x\n", []string{"store.redis_url"}},
		{"redis skip_verify", minimal + "store:\n  redis_url: rediss://:pw@h:6380/0?skip_verify=true\n", []string{"line 9", "store.redis_url", "skip_verify is refused"}},
		{"redis mode", minimal + "store:\n  redis_url: redis://h:6379/0\n  redis_mode: ring\n", []string{"line 10", "store.redis_mode", `"ring"`}},
		{"redis half a certificate", minimal + "store:\n  redis_url: rediss://h:6380/0\n  redis_certificate: c.pem\n", []string{"store.redis_certificate", "redis_key"}},
		{"redis tls files without rediss", minimal + "store:\n  redis_url: redis://h:6379/0\n  redis_ca_file: ca.pem\n", []string{"line 9", "rediss://"}},
		{"memory ttl", minimal + "store:\n  memory_ttl: 0s\n", []string{"store.memory_ttl: must be positive"}},
		{"unknown source", minimal + "sources: [exchange, ews]\n", []string{"line 8", "sources", `"ews"`}},
		{"graph without its section", minimal + "sources: [exchange, graph]\n", []string{"graph.tenant: required", "graph.client_id", "graph.client_secret: required"}},
		{"graph two credentials", minimal + "sources: [graph]\ngraph:\n  tenant: contoso.onmicrosoft.com\n  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e\n  client_secret: s\n  certificate: g.crt\n  key: g.key\n", []string{"line 12", "graph.client_secret", "one of"}},
		{"graph certificate without key", minimal + "sources: [graph]\ngraph:\n  tenant: contoso.onmicrosoft.com\n  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e\n  certificate: g.crt\n", []string{"graph.key: required with graph.certificate"}},
		{"graph bad tenant and client id", minimal + "sources: [graph]\ngraph:\n  tenant: \"contoso/x\"\n  client_id: app\n  client_secret: s\n", []string{"line 10", "graph.tenant", "line 11", "graph.client_id", "GUID"}},
		{"graph plain http token url", minimal + "sources: [graph]\ngraph:\n  token_url: http://login.local/t\n  base_url: https://graph.local?x=1\n  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e\n  client_secret: s\n", []string{"line 10", "graph.token_url", "line 11", "graph.base_url", "https"}},
		{"graph secret env unset", minimal + "sources: [graph]\ngraph:\n  tenant: contoso.onmicrosoft.com\n  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e\n  client_secret_env: PHOTOSYNC_TEST_UNSET_VARIABLE\n", []string{"line 12", "graph.client_secret_env", "PHOTOSYNC_TEST_UNSET_VARIABLE"}},
		{"graph timeout", minimal + "sources: [graph]\ngraph:\n  tenant: contoso.onmicrosoft.com\n  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e\n  client_secret: s\n  timeout: 0s\n", []string{"line 13", "graph.timeout"}},
		{"source twice", minimal + "sources: [exchange, exchange]\n", []string{"line 8", "listed twice"}},
		{"no source", minimal + "sources: []\n", []string{"line 8", "at least one source"}},
		{"directory without its section", minimal + "sources: [exchange, directory]\n", []string{"directory.url", "directory.bind_dn", "directory.bind_password", "directory.base_dn"}},
		{"directory plain URL", minimal + "sources: [directory]\ndirectory:\n  url: http://dc\n  bind_dn: cn=x\n  bind_password: p\n  base_dn: dc=x\n", []string{"line 10", "directory.url", "ldap://"}},
		{"directory password env unset", minimal + "sources: [directory]\ndirectory:\n  url: ldaps://dc\n  bind_dn: cn=x\n  bind_password_env: PHOTOSYNC_TEST_UNSET_VARIABLE\n  base_dn: dc=x\n", []string{"line 12", "directory.bind_password_env", "PHOTOSYNC_TEST_UNSET_VARIABLE"}},
		{"bad listen", "listen: 8080\n" + minimal, []string{"line 1", "listen: want host:port"}},
		{"wrong type", minimal + "photos:\n  import_enabled: maybe\n", []string{"line 9", "maybe"}},
		{"not yaml", "photos: [\n", []string{"not valid YAML"}},
		{"not a mapping", "- a\n- b\n", []string{"mapping"}},
		{"upstream without scheme", "upstream: 127.0.0.1:3000\n" + minimal, []string{"line 1", "upstream: want an http or https URL"}},
		{"upstream ftp", "upstream: ftp://app:21\n" + minimal, []string{"line 1", "upstream: want an http or https URL"}},
		{"upstream without host", "upstream: http:///x\n" + minimal, []string{"line 1", "upstream: want a host"}},
		{"upstream with a path", "upstream: http://127.0.0.1:3000/app\n" + minimal, []string{"line 1", "upstream: want scheme://host[:port] only"}},
		{"upstream with a password", "upstream: http://u:p@127.0.0.1:3000\n" + minimal, []string{"line 1", "upstream: want scheme://host[:port] only"}},
		{"bad allowed host", strings.Replace(minimal, "8443\n", "8443\n  allowed_hosts: [\"*.contoso.com\", \"https://evil.net\"]\n", 1), []string{"line 4", "exchange.allowed_hosts", `"https://evil.net"`}},
		{"allowed host with a bad port", strings.Replace(minimal, "8443\n", "8443\n  allowed_hosts: [\"mail.contoso.com:0\", \"mail.contoso.com:https\", \"*\"]\n", 1), []string{"exchange.allowed_hosts", `"mail.contoso.com:0"`, `"mail.contoso.com:https"`, `"*"`}},
		{"typo in a certificates item", minimal + "  certificates:\n    - certificate: a.crt\n      kye: a.key\n", []string{"line 10", "s2s.certificates.kye: unknown key"}},
		{"certificates item without key", minimal + "  certificates:\n    - certificate: a.crt\n", []string{"s2s.certificates: entry 1: want both"}},
		{"bad clock skew", minimal + "  clock_skew: 2h\n", []string{"s2s.clock_skew"}},
		{"bad public url", minimal + "  public_url: photos.contoso.com\n", []string{"s2s.public_url"}},
		{"token lifetime", minimal + "  token_lifetime: 1m\n", []string{"s2s.token_lifetime"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestUpstream(t *testing.T) {
	tests := []struct{ value, want string }{
		{"", ""},
		{"http://127.0.0.1:3000", "http://127.0.0.1:3000"},
		{"https://app.internal/", "https://app.internal"},
		{"http://[::1]:3000", "http://[::1]:3000"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte("upstream: \"" + tt.value + "\"\n" + minimal))
		if err != nil {
			t.Fatalf("upstream %q: %v", tt.value, err)
		}
		got := ""
		if c.UpstreamURL != nil {
			got = c.UpstreamURL.String()
		}
		if got != tt.want {
			t.Errorf("upstream %q parsed as %q, want %q", tt.value, got, tt.want)
		}
	}
}

func TestImportDisabledNeedsNoExchange(t *testing.T) {
	c, err := Parse([]byte("photos:\n  import_enabled: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Photos.ImportEnabled {
		t.Error("import_enabled not read")
	}
}

func TestEmptyFileIsDefaultsButInvalid(t *testing.T) {
	// Defaults alone lack the Exchange and S2S settings: an empty file is an
	// error naming them, not a service that silently cannot pull.
	_, err := Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "exchange.autodiscover_domain") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAllowedHostsAccepted(t *testing.T) {
	doc := strings.Replace(minimal, "8443\n", "8443\n  allowed_hosts: [\"*.contoso.com\", \"mail.fabrikam.com\", \"10.0.0.5\", \"::1\", \"mail.contoso.com:444\", \"*.contoso.com:8443\", \"10.0.0.5:4443\", \"[::1]:8443\"]\n", 1)
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Exchange.AllowedHosts, " "); got != "*.contoso.com mail.fabrikam.com 10.0.0.5 ::1 mail.contoso.com:444 *.contoso.com:8443 10.0.0.5:4443 [::1]:8443" {
		t.Errorf("AllowedHosts = %q", got)
	}
}

func TestCertificatesListAloneIsEnough(t *testing.T) {
	doc := "exchange:\n  autodiscover_domain: mail.contoso.com\ns2s:\n  realm: 6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b\n" +
		"  certificates:\n    - certificate: old.crt\n      key: old.key\n    - certificate: /etc/new.crt\n      key: new.key\n"
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	got := c.S2S.Certificates
	if len(got) != 2 || got[0].Certificate != filepath.Join(dir, "old.crt") || got[1].Certificate != "/etc/new.crt" || got[1].Key != filepath.Join(dir, "new.key") {
		t.Errorf("Certificates = %+v", got)
	}
}

func TestGraphSectionAccepted(t *testing.T) {
	c, err := Parse([]byte(minimal + "sources: [exchange, graph]\ngraph:\n  tenant: contoso.onmicrosoft.com\n  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e\n  certificate: g.crt\n  key: g.key\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Graph.Timeout.D() != 15*time.Second || c.Graph.Certificate != "g.crt" || len(c.Sources) != 2 {
		t.Errorf("graph section %+v, sources %v", c.Graph, c.Sources)
	}
}
