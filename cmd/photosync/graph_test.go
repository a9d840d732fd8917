package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"photosync/oauth"
	"photosync/sync/exchangetest"
	"photosync/sync/graphtest"
)

// TestServeGraphFallback serves a config with sources [exchange, graph]
// (Graph signed in with a certificate): a person without a mailbox photo
// gets their Graph photo.
func TestServeGraphFallback(t *testing.T) {
	const (
		owner    = "lee.gu@contoso.com"
		clientID = "3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e"
	)
	dir := t.TempDir()
	addr := freeAddr(t)
	base := "http://" + addr

	sim := exchangetest.NewServer(exchangetest.Options{
		PartnerMetadataURL: base + "/_layouts/15/metadata/json/1",
		Users:              []exchangetest.User{{Email: owner, Name: "Lee Gu"}},
	})
	defer sim.Close()
	certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gCertPEM, gKeyPEM, err := oauth.GenerateKeyPair("photosync graph", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(gCertPEM)
	gCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	graph := graphtest.NewServer(graphtest.Options{Apps: []graphtest.App{{ClientID: clientID, Certificates: []*x509.Certificate{gCert}}}})
	defer graph.Close()
	graph.SetPhoto(owner, 648)
	want, _, _ := graph.PhotoBytes(owner, "96x96")

	files := map[string][]byte{"s2s.crt": certPEM, "s2s.key": keyPEM, "ca.pem": sim.CACertPEM(),
		"graph.crt": gCertPEM, "graph.key": gKeyPEM, "graph-ca.pem": graph.CACertPEM()}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := fmt.Sprintf(`listen: %q
photos:
  cold_deadline: 30s
  derive_sizes: false
exchange:
  autodiscover_domain: %q
  ca_file: ca.pem
s2s:
  certificate: s2s.crt
  key: s2s.key
  realm: %s
store:
  path: data
log:
  format: json
admin:
  listen: ""
sources: [exchange, graph]
graph:
  client_id: %s
  certificate: graph.crt
  key: graph.key
  token_url: %s
  base_url: %s
  ca_file: graph-ca.pem
`, addr, sim.Host(), oauth.NewRealm(), clientID, graph.TokenURL(), graph.URL())
	path := filepath.Join(dir, "photosync.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", path}, &stdout, &stderr) }()
	waitHealthy(t, base)

	resp, body := fetch(t, base+"/photos/"+owner+"?size=HR96x96", "X-Forwarded-Email", owner)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Errorf("photo: %d, %d bytes; want 200 with Graph's %d bytes", resp.StatusCode, len(body), len(want))
	}
	if sim.PhotoRequests() != 1 || graph.PhotoRequests() != 1 || graph.TokenRequests() != 1 {
		t.Errorf("exchange %d, graph %d photo calls, %d token requests; want 1, 1, 1",
			sim.PhotoRequests(), graph.PhotoRequests(), graph.TokenRequests())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d: %s", code, stderr.String())
	}
	if logs := stderr.String(); strings.Contains(logs, "eyJ") || strings.Contains(logs, string(gKeyPEM[40:80])) {
		t.Errorf("logs contain token or key material:\n%s", logs)
	}
}
