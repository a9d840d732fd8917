package autodiscover

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestDefaultHosts(t *testing.T) {
	tests := []struct {
		domain string
		want   string
	}{
		{"autodiscover.contoso.com", "contoso.com, *.contoso.com"},
		{"Mail.EU.Contoso.com:8443", "eu.contoso.com:8443, *.eu.contoso.com:8443"},
		{"contoso.com", "contoso.com, *.contoso.com"},
		{"contoso.com:443", "contoso.com, *.contoso.com"},
		{"127.0.0.1:4443", "127.0.0.1:4443"},
		{"[::1]:443", "::1"},
		{"[::1]:8443", "[::1]:8443"},
		{"localhost:8443", "localhost:8443"},
		{"exchange", "exchange"},
	}
	for _, tt := range tests {
		if got := DefaultHosts(tt.domain).String(); got != tt.want {
			t.Errorf("DefaultHosts(%q) = %q, want %q", tt.domain, got, tt.want)
		}
	}
}

func TestHostsMatch(t *testing.T) {
	h := Hosts{"*.contoso.com", "mail.fabrikam.com", "10.0.0.5", "::1"}
	tests := []struct {
		host string
		want bool
	}{
		{"mail.contoso.com", true},
		{"MAIL.Contoso.COM.", true},
		{"a.b.contoso.com:443", true},
		{"contoso.com", false}, // the wildcard needs a label
		{"evilcontoso.com", false},
		{"contoso.com.evil.net", false},
		{"mail.fabrikam.com:443", true},
		{"mail.fabrikam.com:8443", false}, // no port in the pattern: 443 only
		{"x.mail.fabrikam.com", false},
		{"10.0.0.5:443", true},
		{"10.0.0.50", false},
		{"[::1]:443", true},
		{"", false},
	}
	for _, tt := range tests {
		if got := h.Match(tt.host); got != tt.want {
			t.Errorf("Match(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	if (Hosts{}).Match("contoso.com") {
		t.Error("empty Hosts matched a host")
	}
}

// TestHostsPorts: a pattern with a port allows that port only, one
// without allows only the scheme's default port.
func TestHostsPorts(t *testing.T) {
	h := Hosts{"mail.contoso.com", "mail.contoso.com:444", "*.fabrikam.com:8443", "10.0.0.5:4443", "[::1]:8443", "::2"}
	tests := []struct {
		url  string
		want bool
	}{
		{"https://mail.contoso.com/ews", true},
		{"https://mail.contoso.com:443/ews", true},
		{"https://mail.contoso.com:444/ews", true},
		{"https://mail.contoso.com:8443/ews", false},
		{"http://mail.contoso.com/ews", true}, // http's default, 80
		{"http://mail.contoso.com:443/ews", false},
		{"https://a.fabrikam.com:8443/", true},
		{"https://a.fabrikam.com/", false},
		{"https://a.fabrikam.com:8444/", false},
		{"https://10.0.0.5:4443/", true},
		{"https://10.0.0.5/", false},
		{"https://[::1]:8443/", true},
		{"https://[::1]/", false},
		{"https://[::2]/", true},
		{"https://[::2]:8443/", false},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.MatchURL(u); got != tt.want {
			t.Errorf("MatchURL(%s) = %v, want %v", tt.url, got, tt.want)
		}
	}
}

func TestHostsCheck(t *testing.T) {
	tests := []struct {
		patterns Hosts
		bad      string // "" means valid
	}{
		{Hosts{"*.contoso.com", "contoso.com", "10.0.0.1", "::1", "mail-01.contoso.com."}, ""},
		{Hosts{"mail.contoso.com:444", "*.contoso.com:8443", "10.0.0.1:1", "[::1]:65535"}, ""},
		{Hosts{"mail.contoso.com:0"}, "bad port"},
		{Hosts{"mail.contoso.com:65536"}, "bad port"},
		{Hosts{"mail.contoso.com:"}, "bad port"},
		{Hosts{"mail.contoso.com:https"}, "bad port"},
		{Hosts{"*"}, `"*"`},
		{Hosts{"mail.*.com"}, `"mail.*.com"`},
		{Hosts{"https://mail.contoso.com"}, `"https://mail.contoso.com"`},
		{Hosts{"*.10.0.0.1"}, "wildcard cannot precede"},
		{Hosts{""}, "empty"},
		{Hosts{"a..b"}, "bad label"},
	}
	for _, tt := range tests {
		err := tt.patterns.Check()
		if tt.bad == "" && err != nil || tt.bad != "" && (err == nil || !strings.Contains(err.Error(), tt.bad)) {
			t.Errorf("Check(%v) = %v, want %q", tt.patterns, err, tt.bad)
		}
	}
}

// TestForeignHostsRefused maps example.com (a name in httptest's certificate)
// to the fake too, so a request that went there would be in the fake's log:
// with example.com outside the allowed hosts no request may carry it, and
// with it allowed the same answer is followed (the test can fail).
func TestForeignHostsRefused(t *testing.T) {
	const svc = "/autodiscover/autodiscover.svc"
	tests := []struct {
		name   string
		answer func(f *fake, foreign string) reply
		msg    string
	}{
		{"HTTP redirect", func(f *fake, foreign string) reply {
			return reply{status: http.StatusFound, header: http.Header{"Location": {"https://" + foreign + svc}}}
		}, "Location"},
		{"RedirectUrl", func(f *fake, foreign string) reply {
			return reply{body: userAnswer("RedirectUrl", "", "https://"+foreign+svc, "", "")}
		}, "RedirectTarget"},
		{"ExternalPhotosUrl", func(f *fake, foreign string) reply {
			return reply{body: userAnswer("NoError", "", "", "", str("ExternalPhotosUrl", "https://"+foreign+"/EWS/Exchange.asmx/s"))}
		}, "ExternalPhotosUrl"},
		{"ExternalEcpPhotoUrl", func(f *fake, foreign string) reply {
			return reply{body: userAnswer("NoError", "", "", "",
				str("ExternalPhotosUrl", "https://mail.contoso.com/EWS/Exchange.asmx/s")+
					str("ExternalEcpPhotoUrl", "https://"+foreign+"/ecp/"))}
		}, "ExternalEcpPhotoUrl"},
		{"ExternalEwsUrl", func(f *fake, foreign string) reply {
			return reply{body: userAnswer("NoError", "", "", "",
				str("ExternalPhotosUrl", "https://mail.contoso.com/EWS/Exchange.asmx/s")+
					str("ExternalEwsUrl", "https://"+foreign+"/EWS/Exchange.asmx"))}
		}, "ExternalEwsUrl"},
	}
	for _, tt := range tests {
		for _, allowForeign := range []bool{false, true} {
			name := tt.name + "/refused"
			if allowForeign {
				name = tt.name + "/allowed"
			}
			t.Run(name, func(t *testing.T) {
				var f *fake
				f = newFake(t, func(r seen) reply {
					if strings.HasPrefix(r.Host, "example.com") {
						return reply{body: allSettings("alice@contoso.com")}
					}
					return tt.answer(f, "example.com:"+portOf(f.host()))
				})
				hc := f.srv.Client()
				tr := hc.Transport.(*http.Transport).Clone()
				tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, f.host())
				}
				hc = &http.Client{Transport: tr}
				allowed := Hosts{f.host(), "*.contoso.com"}
				if allowForeign {
					allowed = append(allowed, "example.com:"+portOf(f.host()))
				}
				c := newClient(t, f, nil, func(o *Options) { o.HTTPClient = hc; o.AllowedHosts = allowed })
				_, err := c.Lookup(context.Background(), "alice@contoso.com")
				if allowForeign {
					if err != nil {
						t.Fatalf("Lookup with the host allowed: %v", err)
					}
					return
				}
				if !errors.Is(err, ErrRefusedURL) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "outside the allowed hosts") {
					t.Fatalf("Lookup error = %v, want %s outside the allowed hosts", err, tt.msg)
				}
				for _, r := range f.requests() {
					if strings.HasPrefix(r.Host, "example.com") {
						t.Errorf("a request went to the foreign host: %s %s%s", r.Method, r.Host, r.Path)
					}
				}
			})
		}
	}
}

func portOf(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

func TestNewRefusesDomainOutsideAllowedHosts(t *testing.T) {
	_, err := New(Options{Domain: "autodiscover.contoso.com", Tokens: &tokens{}, AllowedHosts: Hosts{"*.fabrikam.com"}})
	if err == nil || !strings.Contains(err.Error(), "outside the allowed hosts") {
		t.Fatalf("New = %v, want the domain refused", err)
	}
	_, err = New(Options{Domain: "autodiscover.contoso.com", Tokens: &tokens{}, AllowedHosts: Hosts{"mail.*"}})
	if err == nil || !strings.Contains(err.Error(), "host pattern") {
		t.Fatalf("New = %v, want the pattern refused", err)
	}
}
