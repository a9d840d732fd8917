package exchangetest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"photosync/internal/testclock"
)

const (
	testRealm = "3b7d6a52-6bd2-4a6e-9f4e-5a1d1f1c2b3a"
	spID      = "00000003-0000-0ff1-ce00-000000000000"
)

// t0 is where every fixture's clock starts.
var t0 = testclock.Start

// signer is a partner signing key and its certificate.
type signer struct {
	key *rsa.PrivateKey
	der []byte
}

func (s signer) x5t() string {
	sum := sha1.Sum(s.der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func newSigner(t *testing.T) signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "photosync test partner"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return signer{key: key, der: der}
}

// partner imitates photosync's metadata endpoint, SharePoint-style (no
// realm, keyValue, x509certificate, Signing) to exercise lenient parsing.
type partner struct {
	signer
	issuer string
	srv    *httptest.Server

	mu      sync.Mutex
	certs   [][]byte
	fetches int
}

func newPartner(t *testing.T) *partner {
	t.Helper()
	p := &partner{signer: newSigner(t), issuer: spID + "@" + testRealm}
	p.certs = [][]byte{p.der}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.fetches++
		var keys []map[string]any
		for _, der := range p.certs {
			keys = append(keys, map[string]any{
				"keyValue": map[string]any{"type": "x509certificate", "value": base64.StdEncoding.EncodeToString(der)},
				"usage":    "Signing",
			})
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": p.issuer, "keys": keys, "name": spID, "serviceName": spID})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *partner) publish(certs ...[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.certs = certs
}

func (p *partner) fetchCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetches
}

// mintSpec is a token pair before encoding; tests edit it to break one rule.
type mintSpec struct {
	actorHeader map[string]any
	actor       jwt.MapClaims
	method      jwt.SigningMethod
	key         any
	outerHeader map[string]any
	outer       map[string]any
	noActor     bool
	outerSig    string
}

// mint builds a user-context token for user at host as [MS-XOAUTH]
// describes (https://learn.microsoft.com/en-us/openspecs/exchange_server_protocols/ms-xoauth/), independently of photosync's oauth package.
func (p *partner) mint(t *testing.T, host, user string, edit func(*mintSpec)) string {
	t.Helper()
	aud := ExchangeClientID + "/" + host + "@" + testRealm
	sp := &mintSpec{
		actorHeader: map[string]any{"x5t": p.x5t()},
		actor: jwt.MapClaims{
			"aud": aud, "iss": p.issuer, "nameid": p.issuer,
			"nbf": t0.Add(-5 * time.Minute).Unix(), "exp": t0.Add(time.Hour).Unix(),
			"trustedfordelegation": "true",
		},
		method:      jwt.SigningMethodRS256,
		key:         p.key,
		outerHeader: map[string]any{"typ": "JWT", "alg": "none"},
		outer: map[string]any{
			"aud": aud, "iss": p.issuer,
			"nbf": t0.Add(-5 * time.Minute).Unix(), "exp": t0.Add(time.Hour).Unix(),
			"nameid": "s-1-5-21-1111-2222-3333-1001", "nii": "urn:office:idp:activedirectory",
			"upn": user, "smtp": user,
		},
	}
	if edit != nil {
		edit(sp)
	}
	at := jwt.NewWithClaims(sp.method, sp.actor)
	for k, v := range sp.actorHeader {
		if v == nil {
			delete(at.Header, k)
		} else {
			at.Header[k] = v
		}
	}
	actor, err := at.SignedString(sp.key)
	if err != nil {
		t.Fatalf("signing actor token: %v", err)
	}
	if !sp.noActor {
		sp.outer["actortoken"] = actor
	}
	return segment(t, sp.outerHeader) + "." + segment(t, sp.outer) + "." + sp.outerSig
}

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// testUsers cover every photo state.
var testUsers = []User{
	{Email: "alice@contoso.com", Name: "Alice", Photo: true},
	{Email: "bob@contoso.com", Name: "Bob", ADThumbnail: true},
	{Email: "carol@contoso.com", Name: "Carol", Photo: true, ADThumbnail: true},
	{Email: "dave@contoso.com", Name: "Dave"},
	{Email: "erin@contoso.com", Name: "Erin", Photo: true, MaxSize: 96},
}

type fixture struct {
	s     *Server
	p     *partner
	clock *testclock.Clock
}

func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureWith(t, nil) }

// newFixtureWith starts a server whose options edit may change.
func newFixtureWith(t *testing.T, edit func(*Options)) *fixture {
	t.Helper()
	p := newPartner(t)
	c := testclock.New()
	opts := Options{PartnerMetadataURL: p.srv.URL, Users: append([]User(nil), testUsers...), Now: c.Now}
	if edit != nil {
		edit(&opts)
	}
	s := NewServer(opts)
	t.Cleanup(s.Close)
	return &fixture{s: s, p: p, clock: c}
}

func (f *fixture) token(t *testing.T, user string) string {
	t.Helper()
	return f.p.mint(t, f.s.Host(), user, nil)
}

// do sends a request to the simulator and returns the response with its body read.
func (f *fixture) do(t *testing.T, method, path, token string, hdr map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := f.s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func photoPathFor(email, size string) string {
	return fmt.Sprintf("%s?email=%s&size=%s", photoPath, email, size)
}
