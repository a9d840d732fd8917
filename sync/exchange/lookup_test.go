package exchange_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"photosync/autodiscover"
	"photosync/sync/exchange"
	"photosync/sync/exchange/exchangetest"
)

// srvStub is a Resolver that answers one SRV record set, without DNS.
type srvStub map[string][]*net.SRV

func (s srvStub) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	key := "_" + service + "._" + proto + "." + name
	if recs, ok := s[key]; ok {
		return key, recs, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: key, IsNotFound: true}
}

// TestLookupOrder builds one deployment per step of the lookup order
// (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-generate-a-list-of-autodiscover-endpoints):
// the email domain, autodiscover.{domain}, the plain-http redirect probe,
// then the DNS SRV record. The configured domain, down.contoso.com, never answers;
// each case makes exactly one later source reachable and checks, on the
// simulator's request log, which host answered and that the photo comes.
func TestLookupOrder(t *testing.T) {
	tests := []struct {
		name     string
		up       []string // host names the simulator answers as (port ignored)
		probe    string   // Location of the plain-http probe on autodiscover.contoso.com:80
		srv      srvStub
		poxOnly  bool
		wantHost string // host of the autodiscover request that succeeded
		wantKind string
		wantErr  string
	}{
		{name: "email domain", up: []string{"contoso.com", "mail.contoso.com"}, wantHost: "contoso.com"},
		{name: "autodiscover.{email domain}", up: []string{"autodiscover.contoso.com"}, wantHost: "autodiscover.contoso.com"},
		{name: "HTTP redirect probe", up: []string{"mail.contoso.com"},
			probe: "https://mail.contoso.com/autodiscover/autodiscover.xml", wantHost: "mail.contoso.com"},
		{name: "DNS SRV", up: []string{"cas.contoso.com"},
			srv: srvStub{"_autodiscover._tcp.contoso.com": {{Target: "cas.contoso.com.", Port: 443, Priority: 0, Weight: 0}}}, wantHost: "cas.contoso.com"},
		{name: "POX only", up: []string{"contoso.com"}, poxOnly: true, wantHost: "contoso.com", wantKind: exchangetest.KindPOX},
		{name: "SRV outside the allowed hosts", up: []string{"evil.example"},
			srv:     srvStub{"_autodiscover._tcp.contoso.com": {{Target: "evil.example.", Port: 443}}},
			wantErr: "outside the allowed hosts"},
		{name: "nothing answers", wantErr: "no endpoint answered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			issuer := newIssuer(t)
			meta := httptest.NewServer(issuer.MetadataHandler())
			t.Cleanup(meta.Close)
			sim := exchangetest.NewServer(exchangetest.Options{
				PartnerMetadataURL: meta.URL, Users: simUsers,
				Hostnames: append([]string{"down.contoso.com"}, tt.up...), POXOnly: tt.poxOnly,
			})
			t.Cleanup(sim.Close)
			probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.probe == "" || r.Method != http.MethodGet || r.Header.Get("Authorization") != "" {
					http.NotFound(w, r)
					return
				}
				http.Redirect(w, r, tt.probe, http.StatusFound)
			}))
			t.Cleanup(probe.Close)

			tr := sim.Client().Transport.(*http.Transport).Clone()
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, _ := net.SplitHostPort(addr)
				switch {
				case host == "autodiscover.contoso.com" && port == "80":
					var d net.Dialer
					return d.DialContext(ctx, network, probe.Listener.Addr().String())
				case slices.Contains(tt.up, host):
					return sim.DialContext(ctx, network, addr)
				}
				return nil, errors.New("connection refused (test network)")
			}
			hc := &http.Client{Transport: tr}
			loc, err := autodiscover.New(autodiscover.Options{
				Domain: "down.contoso.com", Tokens: issuer, HTTPClient: hc,
				Fallback: true, Resolver: tt.srv, ErrorTTL: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			s, err := loc.Lookup(ctx(t), adele)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Lookup = %+v, %v; want error %q", s, err, tt.wantErr)
				}
				for _, r := range sim.Requests() {
					if !strings.HasSuffix(hostOnly(r.Host), "contoso.com") {
						t.Errorf("request to %s", r.Host)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			src, err := exchange.New(exchange.Options{Locator: loc, Tokens: issuer, Client: hc, AllowedHosts: loc.AllowedHosts()})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := src.Check(ctx(t), adele, "HR96x96"); err != nil {
				t.Fatalf("Check from %s: %v", s.ExternalPhotosURL, err)
			}
			if ecp, err := s.EcpPhotoURL(); err != nil || !strings.Contains(ecp, "chgPhoto=1") {
				t.Errorf("EcpPhotoURL = %q, %v", ecp, err)
			}
			kind := tt.wantKind
			if kind == "" {
				kind = exchangetest.KindAutodiscover
			}
			var hosts []string
			for _, r := range sim.Requests() {
				if r.Kind == kind && r.Status == http.StatusOK {
					hosts = append(hosts, hostOnly(r.Host))
				}
			}
			if len(hosts) != 1 || hosts[0] != tt.wantHost {
				t.Errorf("successful %s requests came to %v, want [%s]", kind, hosts, tt.wantHost)
			}
		})
	}
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}
