package sync_test

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"photosync/autodiscover"
	"photosync/oauth"
	psync "photosync/sync"
	"photosync/sync/exchangetest"
)

// TestAllowedHostsAgainstSimulator runs the real autodiscover and master
// clients against the simulator answering as several host names, and reads
// the simulator's request log: a redirect to a host outside the allowed
// hosts is refused before any request reaches it, and the same redirect is
// followed once the host is allowed (so the log check can fail).
func TestAllowedHostsAgainstSimulator(t *testing.T) {
	const evil = "evil.example"
	tests := []struct {
		name      string
		redirect  bool               // Autodiscover answers RedirectUrl to evil.example
		allowed   autodiscover.Hosts // nil: the default
		master    autodiscover.Hosts // the master's re-check
		wantErr   string             // "" means the photo is fetched
		wantEvil  bool               // a request reached evil.example
		wantPhoto int                // photo requests in the log
	}{
		{name: "default hosts, no redirect", wantPhoto: 1},
		{name: "redirect outside the allowed hosts", redirect: true, wantErr: "outside the allowed hosts"},
		{name: "redirect allowed, master refuses", redirect: true, allowed: autodiscover.Hosts{"*.contoso.com", evil},
			master: autodiscover.Hosts{"*.contoso.com"}, wantErr: "outside exchange.allowed_hosts", wantEvil: true},
		{name: "redirect allowed everywhere", redirect: true, allowed: autodiscover.Hosts{"*.contoso.com", evil},
			master: autodiscover.Hosts{"*.contoso.com", evil}, wantEvil: true, wantPhoto: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := newIssuer(t)
			meta := httptest.NewServer(issuer.MetadataHandler())
			t.Cleanup(meta.Close)
			sim := exchangetest.NewServer(exchangetest.Options{
				PartnerMetadataURL: meta.URL, Users: simUsers,
				Hostnames: []string{"autodiscover.contoso.com", evil},
			})
			t.Cleanup(sim.Close)
			_, port, _ := net.SplitHostPort(sim.Host())
			if tt.redirect {
				sim.SetAutodiscover(adele, exchangetest.AutodiscoverBehavior{
					ErrorCode: "RedirectUrl", OnHost: "autodiscover.contoso.com", RedirectTarget: "https://" + evil + ":" + port + "/autodiscover/autodiscover.svc"})
			}
			loc, err := autodiscover.New(autodiscover.Options{
				Domain: "autodiscover.contoso.com:" + port, Tokens: issuer,
				HTTPClient: sim.Client(), AllowedHosts: tt.allowed,
			})
			if err != nil {
				t.Fatal(err)
			}
			m := &psync.Master{Client: sim.Client(), Tokens: issuer, AllowedHosts: tt.master}
			if m.AllowedHosts == nil {
				m.AllowedHosts = loc.AllowedHosts()
			}

			s, err := loc.Lookup(ctx(t), adele)
			if err == nil {
				_, err = m.Fetch(ctx(t), s.ExternalPhotosURL, adele, "HR96x96", "")
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("pull: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("pull error = %v, want %q", err, tt.wantErr)
			}
			gotEvil, photos := false, 0
			for _, r := range sim.Requests() {
				gotEvil = gotEvil || strings.HasPrefix(r.Host, evil)
				if r.Kind == exchangetest.KindPhoto {
					photos++
				}
			}
			if gotEvil != tt.wantEvil || photos != tt.wantPhoto {
				t.Errorf("log: a request to %s = %v, photo requests = %d; want %v, %d", evil, gotEvil, photos, tt.wantEvil, tt.wantPhoto)
			}
		})
	}
}

func newIssuer(t *testing.T) *oauth.Issuer {
	t.Helper()
	certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir+"/s2s.crt", certPEM)
	writeFile(t, dir+"/s2s.key", keyPEM)
	cert, key, err := oauth.LoadKeyPair(dir+"/s2s.crt", dir+"/s2s.key")
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := oauth.New(oauth.Options{Certificate: cert, Key: key, Realm: oauth.NewRealm()})
	if err != nil {
		t.Fatal(err)
	}
	return issuer
}
