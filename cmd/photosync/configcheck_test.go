package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"photosync/oauth"
)

// checkFiles writes, in a temporary folder, the files TestCheckLoadsEveryFile
// points its configs at: a good S2S pair, a second pair, an EC key and a
// CA bundle.
func checkFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"s2s", "other"} {
		c, k, err := oauth.GenerateKeyPair("photosync "+name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		write(name+".crt", c)
		write(name+".key", k)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	write("ec.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	write("notpem.txt", []byte("not a certificate\n"))
	if err := os.Mkdir(filepath.Join(dir, "unreadable.key"), 0o700); err != nil { // reading a folder fails, even as root
		t.Fatal(err)
	}
	return dir
}

// TestCheckLoadsEveryFile: config check and serve --check load every
// certificate, key and CA file serve loads, and fail naming the key.
func TestCheckLoadsEveryFile(t *testing.T) {
	dir := checkFiles(t)
	const head = "listen: 127.0.0.1:0\nadmin:\n  listen: \"\"\nstore:\n  path: data\nexchange:\n  autodiscover_domain: mail.contoso.com\n"
	s2s := func(cert, key string) string {
		return "s2s:\n  certificate: " + cert + "\n  key: " + key + "\n  realm: 6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b\n  public_url: https://photos.contoso.com\n"
	}
	graph := "sources: [exchange, graph]\ngraph:\n  tenant: contoso.onmicrosoft.com\n  client_id: 3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e\n"
	tests := []struct {
		name string
		doc  string
		want []string // in the error; none: the check passes
	}{
		{"good", head + s2s("s2s.crt", "s2s.key"), nil},
		{"missing certificate", head + s2s("gone.crt", "s2s.key"), []string{"s2s.certificate:", "gone.crt", "no such file"}},
		{"missing key", head + s2s("s2s.crt", "gone.key"), []string{"s2s.key:", "gone.key"}},
		{"unreadable key", head + s2s("s2s.crt", "unreadable.key"), []string{"s2s.key:", "unreadable.key"}},
		{"ec key", head + s2s("s2s.crt", "ec.key"), []string{"s2s.key:", "ECDSA, not RSA"}},
		{"key of another certificate", head + s2s("s2s.crt", "other.key"), []string{"s2s.key:", "does not match certificate"}},
		{"certificate given as the key", head + s2s("s2s.crt", "s2s.crt"), []string{"s2s.key:", "holds a certificate, not its key"}},
		{"key given as the certificate", head + s2s("s2s.key", "s2s.key"), []string{"s2s.certificate:", "no CERTIFICATE"}},
		{"rotation pair", head + s2s("s2s.crt", "s2s.key") + "  certificates:\n    - certificate: other.crt\n      key: s2s.key\n", []string{"s2s.certificates[0].key:", "does not match"}},
		{"exchange ca file", head + "  ca_file: notpem.txt\n" + s2s("s2s.crt", "s2s.key"), []string{"exchange.ca_file:", "no PEM certificate"}},
		{"graph key", head + s2s("s2s.crt", "s2s.key") + graph + "  certificate: other.crt\n  key: ec.key\n", []string{"graph.key:", "not RSA"}},
		{"graph ca file", head + s2s("s2s.crt", "s2s.key") + graph + "  client_secret: s\n  ca_file: gone.pem\n", []string{"graph.ca_file:", "gone.pem"}},
		{"directory ca file", head + s2s("s2s.crt", "s2s.key") + "sources: [exchange, directory]\ndirectory:\n  url: ldaps://dc.contoso.com\n  bind_dn: cn=photosync\n  bind_password: p\n  base_dn: dc=contoso\n  ca_file: notpem.txt\n", []string{"directory.ca_file:"}},
		{"every problem at once", head + "  ca_file: gone.pem\n" + s2s("s2s.crt", "ec.key"), []string{"exchange.ca_file:", "s2s.key:"}},
		{"import disabled loads nothing", head + s2s("gone.crt", "gone.key") + "photos:\n  import_enabled: false\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"config", "check", path}, {"serve", "--config", path, "--check"}} {
				code, out, errOut := runCmd(t, args...)
				if tt.want == nil {
					if code != 0 {
						t.Errorf("%s: exit %d: %s", args[0], code, errOut)
					}
					continue
				}
				if code != 1 {
					t.Errorf("%s: exit %d, want 1\n%s%s", args[0], code, out, errOut)
				}
				for _, w := range tt.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("%s: error lacks %q:\n%s", args[0], w, errOut)
					}
				}
			}
		})
	}
}

// TestCheckWarnsAboutThePublicURL: an unset, loopback or http
// s2s.public_url is a warning, and the check still passes.
func TestCheckWarnsAboutThePublicURL(t *testing.T) {
	dir := checkFiles(t)
	const doc = "listen: 127.0.0.1:8080\nadmin:\n  listen: \"\"\nexchange:\n  autodiscover_domain: mail.contoso.com\ns2s:\n  certificate: s2s.crt\n  key: s2s.key\n  realm: 6e5b2c1a-3f4d-4c8e-9a1b-2c3d4e5f6a7b\n"
	tests := []struct{ publicURL, want string }{
		{"", "s2s.public_url is unset"},
		{"https://127.0.0.1:8443", "loopback"},
		{"http://photos.contoso.com", "not https"},
		{"https://photos.contoso.com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.publicURL, func(t *testing.T) {
			d := doc
			if tt.publicURL != "" {
				d += "  public_url: " + tt.publicURL + "\n"
			}
			path := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte(d), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"config", "check", path}, {"serve", "--config", path, "--check"}} {
				code, _, errOut := runCmd(t, args...)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", args[0], code, errOut)
				}
				warned := strings.Contains(errOut, "warning: ")
				if warned != (tt.want != "") || !strings.Contains(errOut, tt.want) {
					t.Errorf("%s: stderr %q, want a warning with %q", args[0], errOut, tt.want)
				}
			}
		})
	}
}
