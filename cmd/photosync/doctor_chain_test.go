package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"photosync/oauth"
	"photosync/sync/directory/directorytest"
	"photosync/sync/exchange/exchangetest"
	"photosync/sync/graph/graphtest"
)

// TestDoctorSourceChain runs photosync doctor on configs whose chain has
// more than Exchange: each source's answer, the sources not asked and
// what is served end up in the report (golden files under testdata).
func TestDoctorSourceChain(t *testing.T) {
	dirSrv := directorytest.Start(t)
	img := image.NewRGBA(image.Rect(0, 0, 96, 96))
	for i := range img.Pix {
		img.Pix[i] = 0x80
	}
	var thumb bytes.Buffer
	if err := jpeg.Encode(&thumb, img, nil); err != nil {
		t.Fatal(err)
	}
	dirSrv.AddPerson(directorytest.Person{UID: "adele", Mail: doctorUser, ThumbnailPhoto: thumb.Bytes()})
	directory := func(password string) string {
		return fmt.Sprintf("sources: [exchange, directory]\ndirectory:\n  url: %s\n  bind_dn: %q\n  bind_password: %q\n  base_dn: %q\n",
			dirSrv.URL, directorytest.BindDN, password, directorytest.BaseDN)
	}
	// ldaps: the directory's certificate comes from a private CA, trusted
	// through directory.ca_file (written by each run as ldap-ca.pem).
	ldaps := func(caFile string) string {
		return fmt.Sprintf("sources: [exchange, directory]\ndirectory:\n  url: %s\n  bind_dn: %q\n  bind_password: %q\n  base_dn: %q\n  ca_file: %q\n",
			dirSrv.LDAPSURL, directorytest.BindDN, directorytest.Password, directorytest.BaseDN, caFile)
	}
	noPhoto := func(s *exchangetest.Server) { s.AddUser(exchangetest.User{Email: doctorUser, Name: "Adele Vance"}) }

	tests := []struct {
		name    string
		sim     func(s *exchangetest.Server)
		sources string
		exit    int
	}{
		{"chain_mailbox_photo_wins", nil, directory(directorytest.Password), 0},
		{"chain_directory_fallback", noPhoto, directory(directorytest.Password), 0},
		{"chain_deleted_on_purpose", func(s *exchangetest.Server) {
			s.SetDeletedBlank(true)
			s.AddUser(exchangetest.User{Email: doctorUser, Name: "Adele Vance", Deleted: true})
		}, directory(directorytest.Password), 1},
		{"chain_directory_bad_bind", noPhoto, directory("wrong"), 1},
		{"chain_directory_ldaps", noPhoto, ldaps("ldap-ca.pem"), 0},
		{"chain_directory_ldaps_untrusted", noPhoto, ldaps(""), 1},
		{"chain_exchange_fails", func(s *exchangetest.Server) { s.RemoveUser(doctorUser) }, directory(directorytest.Password), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKeyPairs(t, dir, 1)
			if err := os.WriteFile(filepath.Join(dir, "ldap-ca.pem"), dirSrv.CAPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			realm := oauth.NewRealm()
			sim := doctorSim(t, dir, metadataJSON(t, issuerFrom(t, realm, filepath.Join(dir, "s2s-0"))), tt.sim)
			config := fmt.Sprintf("exchange:\n  autodiscover_domain: %q\n  ca_file: ca.pem\ns2s:\n  realm: %s\n  certificate: s2s-0.crt\n  key: s2s-0.key\nstore:\n  path: data\n%s",
				sim.Host(), realm, tt.sources)
			got := doctorGolden(t, dir, config, tt.exit)
			got = normalize(strings.ReplaceAll(got, realm, "REALM"), sim.Host(), dir)
			compareGolden(t, "doctor_"+tt.name+".golden", got)
			if tt.name == "chain_deleted_on_purpose" && strings.Contains(got, "PASS  directory") {
				t.Error("the directory was asked although the owner deleted their photo on purpose")
			}
		})
	}
}

// TestDoctorGraphOnly runs doctor on a tenant that reads photos only
// through Microsoft Graph: no Exchange step is run.
func TestDoctorGraphOnly(t *testing.T) {
	const clientID, secret = "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "graph-test-secret"
	graph := graphtest.NewServer(graphtest.Options{Apps: []graphtest.App{{ClientID: clientID, Secret: secret}}})
	defer graph.Close()
	graph.SetPhoto(doctorUser, 648)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "graph-ca.pem"), graph.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PHOTOSYNC_TEST_GRAPH_SECRET", secret)
	config := fmt.Sprintf("sources: [graph]\nstore:\n  path: data\ngraph:\n  client_id: %s\n  client_secret_env: PHOTOSYNC_TEST_GRAPH_SECRET\n  token_url: %s\n  base_url: %s\n  ca_file: graph-ca.pem\n",
		clientID, graph.TokenURL(), graph.URL())
	got := normalize(doctorGolden(t, dir, config, 0), "graph.invalid", dir)
	compareGolden(t, "doctor_graph_only.golden", got)

	t.Setenv("PHOTOSYNC_TEST_GRAPH_SECRET", "not-the-secret")
	got = normalize(doctorGolden(t, dir, config, 1), "graph.invalid", dir)
	compareGolden(t, "doctor_graph_bad_secret.golden", got)
}

// doctorGolden writes config into dir, runs doctor for doctorUser and
// returns its output.
func doctorGolden(t *testing.T, dir, config string, exit int) string {
	t.Helper()
	path := filepath.Join(dir, "photosync.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := run(ctx, []string{"doctor", "--config", path, doctorUser}, &stdout, &stderr); code != exit {
		t.Errorf("exit %d, want %d; stderr: %s\n%s", code, exit, stderr.String(), stdout.String())
	}
	return stdout.String()
}

// compareGolden compares got with testdata/name, or rewrites it with -update.
func compareGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/photosync -run TestDoctor -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
}
