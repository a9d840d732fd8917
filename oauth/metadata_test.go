package oauth

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"photosync/internal/testclock"
	"slices"
	"strings"
	"testing"
	"time"
)

// exchangeDoc renders an Exchange auth metadata document, as Exchange
// serves it at /autodiscover/metadata/json/1 (realm "*", issuer
// 00000002-…@*, keys with x5t and the certificate), for cert with the given
// x5t. See https://learn.microsoft.com/office/dev/add-ins/outlook/inside-the-identity-token.
func exchangeDoc(cert *x509.Certificate, x5t string) []byte {
	return fmt.Appendf(nil, `{"id":"_e2a4f5f0-8d5c-4f6e-9d2b-6a0b6d1c2e3f","version":"1.0","name":"Exchange","realm":"*",
 "serviceName":"00000002-0000-0ff1-ce00-000000000000",
 "issuer":"00000002-0000-0ff1-ce00-000000000000@*",
 "allowedAudiences":["00000002-0000-0ff1-ce00-000000000000@*"],
 "keys":[{"usage":"signing","keyinfo":{"x5t":%q},"keyvalue":{"type":"x509Certificate","value":%q}}],
 "endpoints":[{"location":"https://mail.contoso.com/autodiscover/metadata/json/1","protocol":"OAuth2","usage":"metadata"}]}`,
		x5t, base64.StdEncoding.EncodeToString(cert.Raw))
}

// sharePointDoc renders a SharePoint metadata document in the shape a live
// farm serves it: camel-case keyValue, usage "Signing", no x5t.
func sharePointDoc(cert *x509.Certificate, realm string) []byte {
	return fmt.Appendf(nil, `{"issuer":"00000003-0000-0ff1-ce00-000000000000@%s",
 "keys":[{"keyValue":{"type":"x509certificate","value":%q},"usage":"Signing"}],
 "name":"00000003-0000-0ff1-ce00-000000000000","serviceName":"00000003-0000-0ff1-ce00-000000000000"}`,
		realm, base64.StdEncoding.EncodeToString(cert.Raw))
}

func TestParseMetadata(t *testing.T) {
	cert, _ := newTestKeyPair(t)
	other, _ := newTestKeyPair(t)
	sum := sha1.Sum(cert.Raw)
	b64 := base64.StdEncoding.EncodeToString(cert.Raw)
	twoKeys := fmt.Appendf(nil, `{"issuer":"x@%s","keys":[
		{"usage":"encryption","keyvalue":{"type":"x509Certificate","value":%q}},
		{"usage":"signing","keyinfo":{"x5t":%q},"keyvalue":{"type":"x509Certificate","value":%q}},
		{"usage":"signing","keyinfo":{"x5t":"AAAA"},"keyvalue":{"type":"x509Certificate","value":%q}}]}`,
		testRealm, base64.StdEncoding.EncodeToString(other.Raw), Thumbprint(cert), b64, b64)

	tests := []struct {
		name       string
		doc        []byte
		wantIssuer string
		wantRealm  string
	}{
		{"exchange", exchangeDoc(cert, Thumbprint(cert)), ExchangeID + "@*", "*"},
		{"exchange, padded base64 x5t", exchangeDoc(cert, base64.StdEncoding.EncodeToString(sum[:])), ExchangeID + "@*", "*"},
		{"sharepoint", sharePointDoc(cert, testRealm), SharePointID + "@" + testRealm, testRealm},
		{"only usable keys count", twoKeys, "x@" + testRealm, testRealm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMetadata(tt.doc)
			if err != nil {
				t.Fatal(err)
			}
			if m.Issuer != tt.wantIssuer {
				t.Errorf("Issuer = %q, want %q", m.Issuer, tt.wantIssuer)
			}
			if got := m.Realm(); got != tt.wantRealm {
				t.Errorf("Realm() = %q, want %q", got, tt.wantRealm)
			}
			certs := m.Certificates()
			if len(certs) != 1 || !certs[0].Equal(cert) {
				t.Errorf("Certificates() = %d certificates, want just ours", len(certs))
			}
		})
	}
}

func TestParseMetadataRejects(t *testing.T) {
	cert, _ := newTestKeyPair(t)
	b64 := base64.StdEncoding.EncodeToString(cert.Raw)
	key := func(usage, typ, value, x5t string) string {
		return fmt.Sprintf(`{"issuer":"x@y","keys":[{"usage":%q,"keyinfo":{"x5t":%q},"keyvalue":{"type":%q,"value":%q}}]}`,
			usage, x5t, typ, value)
	}
	tests := []struct {
		name, doc, wantErr string
	}{
		{"empty", ``, "unexpected end"},
		{"not json", `<html>hello</html>`, "invalid character"},
		{"array", `[]`, "cannot unmarshal"},
		{"no issuer", `{"keys":[]}`, "no issuer"},
		{"no keys", `{"issuer":"x@y"}`, "no usable signing key"},
		{"bad base64", key("signing", "x509Certificate", "!!!", ""), "decoding certificate"},
		{"not a certificate", key("signing", "x509Certificate", "AAAA", ""), "parsing certificate"},
		{"encryption key", key("encryption", "x509Certificate", b64, ""), `usage "encryption"`},
		{"other type", key("signing", "rsa", b64, ""), `type "rsa"`},
		{"x5t mismatch", key("signing", "x509Certificate", b64, "qZk-NkcGgWq6PiVxeFDCbJzQ2J0"), "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMetadata([]byte(tt.doc))
			if err == nil {
				t.Fatal("ParseMetadata succeeded, want error")
			}
			if !strings.HasPrefix(err.Error(), "oauth: parsing metadata: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want one starting with the step and containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestMetadataHandler(t *testing.T) {
	clock := testclock.New()
	const metadataURL = "https://photosync.contoso.com/_layouts/15/metadata/json/1"
	i := newTestIssuer(t, clock, func(o *Options) { o.MetadataURL = metadataURL })
	srv := httptest.NewServer(i.MetadataHandler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	m, err := FetchMetadata(ctx, srv.Client(), srv.URL+"/_layouts/15/metadata/json/1")
	if err != nil {
		t.Fatal(err)
	}
	if m.Issuer != i.Issuer() || m.Realm() != testRealm || m.DeclaredRealm != testRealm {
		t.Errorf("issuer %q realm %q (declared %q), want %q and %q", m.Issuer, m.Realm(), m.DeclaredRealm, i.Issuer(), testRealm)
	}
	if certs := m.Certificates(); len(certs) != 1 || !certs[0].Equal(i.cert) {
		t.Errorf("Certificates() = %d certificates, want just ours", len(certs))
	}
	if len(m.Keys) != 1 || m.Keys[0].KeyInfo.X5T != Thumbprint(i.cert) || m.Keys[0].Usage != "signing" ||
		m.Keys[0].KeyValue.Type != "x509Certificate" {
		t.Errorf("keys = %+v", m.Keys)
	}
	wantEndpoints := []Endpoint{{Location: metadataURL, Protocol: "OAuth2", Usage: "metadata"}}
	if !slices.Equal(m.Endpoints, wantEndpoints) {
		t.Errorf("endpoints = %+v, want %+v", m.Endpoints, wantEndpoints)
	}
	if m.Version != "1.0" || !strings.HasPrefix(m.ID, "_") || m.ServiceName != SharePointID ||
		!slices.Equal(m.AllowedAudiences, []string{i.Issuer()}) {
		t.Errorf("document = %+v", m)
	}

	// A token minted now verifies against the fetched document.
	tok, err := i.Token(ctx, "alice@contoso.com", "mail.contoso.com")
	if err != nil {
		t.Fatal(err)
	}
	decodeToken(t, tok, m)

	// Another replica with the same certificate serves the same document.
	again, err := New(Options{Certificate: i.cert, Key: i.key, Realm: testRealm, MetadataURL: metadataURL})
	if err != nil {
		t.Fatal(err)
	}
	if again.Metadata().ID != m.ID {
		t.Errorf("id %q differs between issuers with one certificate (%q)", again.Metadata().ID, m.ID)
	}
	// Metadata returns a copy.
	mine := i.Metadata()
	mine.Keys[0].Usage = "changed"
	if i.Metadata().Keys[0].Usage != "signing" {
		t.Error("changing Metadata()'s result changed the issuer's document")
	}

	t.Run("member names", func(t *testing.T) {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type = %q", ct)
		}
		var raw map[string]json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"id", "version", "name", "realm", "serviceName", "issuer", "allowedAudiences", "keys", "endpoints"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("document lacks %q: %s", k, raw)
			}
		}
		for _, k := range []string{`"keyinfo":{"x5t":`, `"keyvalue":{"type":"x509Certificate","value":`} {
			if !bytes.Contains(raw["keys"], []byte(k)) {
				t.Errorf("keys %s lack %s", raw["keys"], k)
			}
		}
	})

	methods := []struct {
		method     string
		wantStatus int
		wantBody   bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, false},
		{http.MethodPost, http.StatusMethodNotAllowed, true},
		{http.MethodPut, http.StatusMethodNotAllowed, true},
	}
	for _, tt := range methods {
		t.Run(tt.method, func(t *testing.T) {
			rec := httptest.NewRecorder()
			i.MetadataHandler().ServeHTTP(rec, httptest.NewRequest(tt.method, "/_layouts/15/metadata/json/1", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Body.Len() > 0; got != tt.wantBody {
				t.Errorf("has body = %v, want %v", got, tt.wantBody)
			}
			if tt.wantStatus == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", rec.Header().Get("Allow"))
			}
		})
	}
}

func TestFetchMetadataErrors(t *testing.T) {
	cert, _ := newTestKeyPair(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(exchangeDoc(cert, Thumbprint(cert))) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(w, io.MultiReader(bytes.NewReader(exchangeDoc(cert, Thumbprint(cert))), bytes.NewReader(bytes.Repeat([]byte(" "), 1<<20))))
	})
	mux.HandleFunc("/html", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "<html>login</html>") })
	mux.HandleFunc("/nokeys", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"issuer":"x@y","keys":[]}`) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	if _, err := FetchMetadata(context.Background(), srv.Client(), srv.URL+"/ok"); err != nil {
		t.Fatalf("control fetch failed: %v", err)
	}
	tests := []struct {
		name, url, wantErr string
		ctx                context.Context
	}{
		{"404", srv.URL + "/missing", "unexpected status 404", context.Background()},
		{"oversized", srv.URL + "/huge", "larger than 1048576 bytes", context.Background()},
		{"invalid json", srv.URL + "/html", "parsing metadata: invalid character", context.Background()},
		{"no keys", srv.URL + "/nokeys", "no usable signing key", context.Background()},
		{"bad url", "://nowhere", "missing protocol scheme", context.Background()},
		{"canceled", srv.URL + "/ok", "context canceled", canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FetchMetadata(tt.ctx, nil, tt.url)
			if err == nil {
				t.Fatal("FetchMetadata succeeded, want error")
			}
			if prefix := "oauth: fetching metadata from " + tt.url + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckExchangeMetadata(t *testing.T) {
	cert, _ := newTestKeyPair(t)
	parse := func(doc []byte) Metadata {
		t.Helper()
		m, err := ParseMetadata(doc)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	exchange := parse(exchangeDoc(cert, Thumbprint(cert)))
	withRealm := exchange.clone()
	withRealm.Issuer = ExchangeID + "@" + testRealm
	foreignRealm := exchange.clone()
	foreignRealm.Issuer = ExchangeID + "@contoso.com"
	noKeys := exchange.clone()
	noKeys.Keys = nil

	tests := []struct {
		name    string
		m       Metadata
		wantErr string // "" = accepted
	}{
		{"exchange", exchange, ""},
		{"exchange with a realm", withRealm, ""},
		{"sharepoint", parse(sharePointDoc(cert, testRealm)), "is not Exchange's"},
		{"realm not a guid", foreignRealm, "is not Exchange's"},
		{"no issuer", Metadata{}, "is not Exchange's"},
		{"no keys", noKeys, "no usable signing certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckExchangeMetadata(tt.m)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("CheckExchangeMetadata() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CheckExchangeMetadata() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}
