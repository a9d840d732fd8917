package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClientsTrustingTheCAReachTheServer(t *testing.T) {
	p, err := New("testpki test CA", "exchange.contoso.test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.Leaf}}
	srv.StartTLS()
	defer srv.Close()

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.CAPEM) {
		t.Fatal("CAPEM does not parse")
	}
	for _, tt := range []struct {
		name  string
		roots *x509.CertPool
		ok    bool
	}{
		{"CAPEM", roots, true},
		{"Pool", p.Pool, true},
		{"system roots", nil, false},
	} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tt.roots}}}
		resp, err := c.Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
	if _, err := tls.X509KeyPair(p.LeafPEM, p.KeyPEM); err != nil {
		t.Errorf("LeafPEM and KeyPEM are not a key pair: %v", err)
	}
	leaf, _ := x509.ParseCertificate(p.Leaf.Certificate[0])
	if err := leaf.VerifyHostname("exchange.contoso.test"); err != nil {
		t.Errorf("extra hostname: %v", err)
	}
}
