package exchange_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"photosync/autodiscover"
	"photosync/oauth"
	"photosync/sync/exchange"
	"photosync/sync/exchange/exchangetest"
	"photosync/sync/photo"
)

const adele = "adele.vance@contoso.com"

var simUsers = []exchangetest.User{
	{Email: adele, Name: "Adele Vance", Photo: true},
	{Email: "alex.wilber@contoso.com", Name: "Alex Wilber", Photo: true},
	{Email: "lee.gu@contoso.com", Name: "Lee Gu"}, // in Exchange, without a photo
}

// TestAllowedHostsAgainstSimulator runs the real autodiscover client and
// Exchange source against the simulator answering as several host names, and reads
// the simulator's request log: a redirect to a host outside the allowed
// hosts is refused before any request reaches it, and the same redirect is
// followed once the host is allowed (so the log check can fail).
func TestAllowedHostsAgainstSimulator(t *testing.T) {
	const evil = "evil.example"
	tests := []struct {
		name      string
		redirect  bool               // Autodiscover answers RedirectUrl to evil.example
		target    string             // the redirect's host[:port], PORT the simulator's; default evil.example:PORT
		allowed   autodiscover.Hosts // nil: the default; PORT stands for the simulator's port
		master    autodiscover.Hosts // the source's re-check
		wantErr   string             // "" means the photo is fetched
		wantEvil  bool               // a request reached evil.example
		wantPhoto int                // photo requests in the log
	}{
		{name: "default hosts, no redirect", wantPhoto: 1},
		{name: "redirect outside the allowed hosts", redirect: true, wantErr: "outside the allowed hosts"},
		{name: "redirect allowed, master refuses", redirect: true, allowed: autodiscover.Hosts{"*.contoso.com:PORT", evil + ":PORT"},
			master: autodiscover.Hosts{"*.contoso.com:PORT"}, wantErr: "outside exchange.allowed_hosts", wantEvil: true},
		{name: "redirect allowed everywhere", redirect: true, allowed: autodiscover.Hosts{"*.contoso.com:PORT", evil + ":PORT"},
			master: autodiscover.Hosts{"*.contoso.com:PORT", evil + ":PORT"}, wantEvil: true, wantPhoto: 1},
		{name: "allowed name without the port", redirect: true, allowed: autodiscover.Hosts{"*.contoso.com:PORT", evil},
			wantErr: "outside the allowed hosts"},
		{name: "the domain's name on another port", redirect: true, target: "autodiscover.contoso.com:1",
			wantErr: "outside the allowed hosts"},
		{name: "an allowed name on another port", redirect: true, target: "mail.contoso.com:444",
			allowed: autodiscover.Hosts{"*.contoso.com:PORT", "mail.contoso.com"}, wantErr: "outside the allowed hosts"},
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
			withPort := func(h autodiscover.Hosts) autodiscover.Hosts {
				var out autodiscover.Hosts
				for _, p := range h {
					out = append(out, strings.ReplaceAll(p, "PORT", port))
				}
				return out
			}
			if tt.redirect {
				target := evil + ":" + port
				if tt.target != "" {
					target = tt.target
				}
				sim.SetAutodiscover(adele, exchangetest.AutodiscoverBehavior{
					ErrorCode: "RedirectUrl", OnHost: "autodiscover.contoso.com", RedirectTarget: "https://" + target + "/autodiscover/autodiscover.svc"})
			}
			loc, err := autodiscover.New(autodiscover.Options{
				Domain: "autodiscover.contoso.com:" + port, Tokens: issuer,
				HTTPClient: sim.Client(), AllowedHosts: withPort(tt.allowed),
			})
			if err != nil {
				t.Fatal(err)
			}
			hosts := withPort(tt.master)
			if hosts == nil {
				hosts = loc.AllowedHosts()
			}
			src, err := exchange.New(exchange.Options{Locator: loc, Tokens: issuer, Client: sim.Client(), AllowedHosts: hosts})
			if err != nil {
				t.Fatal(err)
			}

			res, err := src.Photo(ctx(t), adele, "HR96x96", "")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("pull: %v", err)
			case tt.wantErr != "" && (!errors.Is(err, autodiscover.ErrRefusedURL) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("pull error = %v, want %q", err, tt.wantErr)
			case tt.wantErr == "" && res.Status != photo.StatusPhoto:
				t.Fatalf("pull = %v, want a photo", res.Status)
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

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// ctx returns a context for one test step.
func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
