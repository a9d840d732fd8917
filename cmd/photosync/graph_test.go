package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"image"
	_ "image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"photosync/oauth"
	"photosync/sync/exchange/exchangetest"
	"photosync/sync/graph/graphtest"
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

// TestServeGraphOnly is a tenant whose photos are reachable only through
// Graph (EWS switched off): no exchange or s2s section at all.
func TestServeGraphOnly(t *testing.T) {
	const (
		owner    = "adele.vance@contoso.com"
		clientID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
		secret   = "a-secret-for-tests-only"
	)
	dir := t.TempDir()
	addr := freeAddr(t)
	graph := graphtest.NewServer(graphtest.Options{Apps: []graphtest.App{{ClientID: clientID, Secret: secret}}})
	defer graph.Close()
	graph.SetPhoto(owner, 648)
	if err := os.WriteFile(filepath.Join(dir, "graph-ca.pem"), graph.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`listen: %q
photos:
  cold_deadline: 30s
store:
  path: data
admin:
  listen: ""
sources: [graph]
graph:
  client_id: %s
  client_secret_env: PHOTOSYNC_TEST_GRAPH_SECRET
  token_url: %s
  base_url: %s
  ca_file: graph-ca.pem
`, addr, clientID, graph.TokenURL(), graph.URL())
	path := filepath.Join(dir, "photosync.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PHOTOSYNC_TEST_GRAPH_SECRET", secret)

	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", path}, &stdout, &stderr) }()
	waitHealthy(t, "http://"+addr)
	for _, size := range []string{"HR96x96", "HR240x240", "HR648x648"} {
		resp, body := fetch(t, "http://"+addr+"/photos/"+owner+"?size="+size, "X-Forwarded-Email", owner)
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(body)); resp.StatusCode != http.StatusOK || err != nil || cfg.Width != pixelsOfSize(size) {
			t.Errorf("%s from Graph alone: %d, %v", size, resp.StatusCode, err)
		}
	}
	if n := graph.PhotoRequests(); n != 1 {
		t.Errorf("Graph photo calls for three sizes = %d, want 1 (the others derived)", n)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), secret) {
		t.Error("the client secret reached the log")
	}
}

func pixelsOfSize(size string) int {
	n, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(size, "HR"), "x", 2)[0])
	return n
}
