package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"photosync/oauth"
	"photosync/sync/exchange/exchangetest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

const doctorUser = "adele.vance@contoso.com"

// doctorSetup is one deployment for photosync doctor.
type doctorSetup struct {
	name   string
	config func(c *doctorConfig) // change the config
	sim    func(s *exchangetest.Server)
	// partner, when set, is the metadata document Exchange reads for us
	// instead of our own (a trust that rejects us).
	partner func(t *testing.T, dir string, realm string) []byte
	exit    int
}

type doctorConfig struct {
	realm, caFile, s2s string
	// allowed is exchange.allowed_hosts, SIM standing for the simulator's
	// host:port; "" for the default.
	allowed string
}

// issuerFrom builds an Issuer from key files, as serve does.
func issuerFrom(t *testing.T, realm string, pairs ...string) *oauth.Issuer {
	t.Helper()
	var kps []oauth.KeyPair
	for _, p := range pairs {
		cert, key, err := oauth.LoadKeyPair(p+".crt", p+".key")
		if err != nil {
			t.Fatal(err)
		}
		kps = append(kps, oauth.KeyPair{Certificate: cert, Key: key})
	}
	i, err := oauth.New(oauth.Options{Certificate: kps[0].Certificate, Key: kps[0].Key, Rotation: kps[1:], Realm: realm})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestDoctor(t *testing.T) {
	// A photo host whose certificate no configured CA issued.
	untrusted := httptest.NewTLSServer(http.NotFoundHandler())
	defer untrusted.Close()
	setups := []doctorSetup{
		{name: "healthy", exit: 0},
		{name: "bad_config", config: func(c *doctorConfig) { c.realm = "contoso" }, exit: 1},
		{name: "untrusted_tls", config: func(c *doctorConfig) { c.caFile = "" }, exit: 1},
		{name: "unknown_mailbox", sim: func(s *exchangetest.Server) { s.RemoveUser(doctorUser) }, exit: 1},
		{name: "no_photos_url", sim: func(s *exchangetest.Server) {
			s.SetAutodiscover(doctorUser, exchangetest.AutodiscoverBehavior{OmitSettings: []string{"ExternalPhotosUrl"}})
		}, exit: 1},
		{name: "no_ecp_photo_url", sim: func(s *exchangetest.Server) {
			s.SetAutodiscover(doctorUser, exchangetest.AutodiscoverBehavior{OmitSettings: []string{"ExternalEcpPhotoUrl"}})
		}, exit: 1},
		{name: "trust_rejects_issuer", partner: func(t *testing.T, dir, realm string) []byte {
			// Exchange trusts a partner with our certificate but another realm.
			return metadataJSON(t, issuerFrom(t, "11111111-2222-3333-4444-555555555555", filepath.Join(dir, "s2s-0")))
		}, exit: 1},
		{name: "rotated_certificate", config: func(c *doctorConfig) {
			c.s2s = "  certificates:\n    - certificate: s2s-0.crt\n      key: s2s-0.key\n    - certificate: s2s-1.crt\n      key: s2s-1.key\n"
		}, partner: func(t *testing.T, dir, realm string) []byte {
			// Exchange still has the metadata from before the rotation.
			return metadataJSON(t, issuerFrom(t, realm, filepath.Join(dir, "s2s-0")))
		}, exit: 1},
		{name: "rotation_published", config: func(c *doctorConfig) {
			c.s2s = "  certificate: s2s-0.crt\n  key: s2s-0.key\n  certificates:\n    - certificate: s2s-1.crt\n      key: s2s-1.key\n"
		}, exit: 0},
		{name: "photo_host_untrusted", config: func(c *doctorConfig) {
			c.allowed = `["SIM", "` + strings.TrimPrefix(untrusted.URL, "https://") + `"]`
		}, sim: func(s *exchangetest.Server) {
			s.SetAutodiscover(doctorUser, exchangetest.AutodiscoverBehavior{
				Settings: map[string]string{"ExternalPhotosUrl": untrusted.URL + "/EWS/Exchange.asmx/s"}})
		}, exit: 1},
		// The same name as the Autodiscover domain on another port is
		// refused like a foreign host.
		{name: "photo_host_other_port", sim: func(s *exchangetest.Server) {
			s.SetAutodiscover(doctorUser, exchangetest.AutodiscoverBehavior{
				Settings: map[string]string{"ExternalPhotosUrl": untrusted.URL + "/EWS/Exchange.asmx/s"}})
		}, exit: 1},
		{name: "no_photo", sim: func(s *exchangetest.Server) {
			s.AddUser(exchangetest.User{Email: doctorUser, Name: "Adele Vance"})
		}, exit: 1},
	}
	for _, st := range setups {
		t.Run(st.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKeyPairs(t, dir, 2)
			realm := oauth.NewRealm()
			c := doctorConfig{realm: realm, caFile: "ca.pem", s2s: "  certificate: s2s-0.crt\n  key: s2s-0.key\n"}
			if st.config != nil {
				st.config(&c)
			}

			var partner []byte
			if st.partner != nil {
				partner = st.partner(t, dir, realm)
			} else if c.realm == realm {
				files := []string{filepath.Join(dir, "s2s-0")}
				if strings.Contains(c.s2s, "s2s-1") {
					files = append(files, filepath.Join(dir, "s2s-1"))
				}
				partner = metadataJSON(t, issuerFrom(t, realm, files...))
			}
			sim := doctorSim(t, dir, partner, st.sim)
			config := fmt.Sprintf("exchange:\n  autodiscover_domain: %q\n  ca_file: %q\ns2s:\n  realm: %s\n%sstore:\n  path: data\n",
				sim.Host(), c.caFile, c.realm, c.s2s)
			if c.allowed != "" {
				config = strings.Replace(config, "exchange:\n", "exchange:\n  allowed_hosts: "+strings.ReplaceAll(c.allowed, "SIM", sim.Host())+"\n", 1)
			}
			got := doctorGolden(t, dir, config, st.exit)
			compareGolden(t, "doctor_"+st.name+".golden", normalize(strings.ReplaceAll(got, realm, "REALM"), sim.Host(), dir))
		})
	}
}

// doctorSim starts the Exchange simulator for doctor: doctorUser has a
// photo, partner is the metadata document it reads for us, change (when
// set) alters it, and its CA is written to dir/ca.pem.
func doctorSim(t *testing.T, dir string, partner []byte, change func(*exchangetest.Server)) *exchangetest.Server {
	t.Helper()
	meta := httptest.NewServer(staticJSON(partner))
	t.Cleanup(meta.Close)
	sim := exchangetest.NewServer(exchangetest.Options{
		PartnerMetadataURL: meta.URL,
		Users:              []exchangetest.User{{Email: doctorUser, Name: "Adele Vance", Photo: true}},
	})
	t.Cleanup(sim.Close)
	if change != nil {
		change(sim)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), sim.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return sim
}

var (
	guidRE   = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`)
	dateRE   = regexp.MustCompile(`\d{4}-\d{2}-\d{2}`)
	etagRE   = regexp.MustCompile(`ETag "[^"]*"`)
	x5tRE    = regexp.MustCompile(`x5t [A-Za-z0-9_=+/-]+`)
	portRE   = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	sharedID = strings.NewReplacer(oauth.SharePointID, "SHAREPOINT-ID", oauth.ExchangeID, "EXCHANGE-ID")
)

// normalize replaces what changes from run to run: the simulator's
// address, the temporary folder, realms and other GUIDs, dates, ETags and
// thumbprints.
func normalize(s, simHost, dir string) string {
	s = strings.ReplaceAll(s, simHost, "EXCHANGE")
	s = strings.ReplaceAll(s, dir, "DIR")
	s = portRE.ReplaceAllString(s, "127.0.0.1:PORT")
	s = sharedID.Replace(s)
	s = guidRE.ReplaceAllString(s, "GUID")
	s = dateRE.ReplaceAllString(s, "DATE")
	s = etagRE.ReplaceAllString(s, `ETag "ETAG"`)
	return x5tRE.ReplaceAllString(s, "x5t X5T")
}

func metadataJSON(t *testing.T, i *oauth.Issuer) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	i.MetadataHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	return rec.Body.Bytes()
}

type staticJSON []byte

func (b staticJSON) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(b)
}
