package sync_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"photosync/autodiscover"
	"photosync/internal/testclock"
	"photosync/oauth"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/exchange"
	"photosync/sync/exchange/exchangetest"
	"photosync/sync/photo"
	"photosync/web"
)

const (
	adele  = "adele.vance@contoso.com"
	alex   = "alex.wilber@contoso.com"
	nobody = "lee.gu@contoso.com" // in Exchange, without a photo
)

var simUsers = []exchangetest.User{
	{Email: adele, Name: "Adele Vance", Photo: true},
	{Email: alex, Name: "Alex Wilber", Photo: true},
	{Email: nobody, Name: "Lee Gu"},
}

// env is photosync's real pull path (autodiscover client, S2S issuer,
// Exchange source, engine, store, web face) against the Exchange simulator.
type env struct {
	sim      *exchangetest.Server
	clock    *testclock.Clock
	exchange *exchange.Source
	issuer   *oauth.Issuer
	locator  *autodiscover.Client
	engine   *psync.Engine
	handler  http.Handler
	store    store.Store
}

type envOptions struct {
	engine   func(*psync.Options)
	store    func(t testing.TB, now func() time.Time) store.Store
	oauthNow func() time.Time
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{clock: testclock.New()}

	certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "s2s.crt"), filepath.Join(dir, "s2s.key")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)
	cert, key, err := oauth.LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	e.issuer, err = oauth.New(oauth.Options{Certificate: cert, Key: key, Realm: oauth.NewRealm(), Now: o.oauthNow})
	if err != nil {
		t.Fatal(err)
	}
	meta := httptest.NewServer(e.issuer.MetadataHandler())
	t.Cleanup(meta.Close)

	e.sim = exchangetest.NewServer(exchangetest.Options{PartnerMetadataURL: meta.URL, Users: simUsers})
	t.Cleanup(e.sim.Close)

	e.locator, err = autodiscover.New(autodiscover.Options{
		Domain:     e.sim.Host(),
		Tokens:     e.issuer,
		HTTPClient: e.sim.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}

	if o.store != nil {
		e.store = o.store(t, e.clock.Now)
	} else {
		b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		e.store = store.NewHot(b, 8<<20, store.HotOptions{Now: e.clock.Now})
	}

	e.exchange, err = exchange.New(exchange.Options{Locator: e.locator, Client: e.sim.Client(), Tokens: e.issuer, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	opts := psync.Options{
		Store:           e.store,
		Sources:         []photo.Source{e.exchange},
		ImportEnabled:   true,
		Expiration:      6 * time.Hour,
		ErrorExpiration: time.Hour,
		Trigger:         psync.TriggerSelf,
		PullTimeout:     20 * time.Second,
		// Generous: a cold request waits for its pull however busy the
		// machine is; the cold-deadline test sets its own.
		ColdDeadline: 30 * time.Second,
		Now:          e.clock.Now,
	}
	if o.engine != nil {
		o.engine(&opts)
	}
	e.engine, err = psync.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = web.New(e.engine, web.Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
		Edit:           e.exchange,
		Metadata:       e.issuer.MetadataHandler(),
	})
	return e
}

// get sends a request to the handler as if from peer (ip:port), with the
// identity header set to viewer when not empty.
func (e *env) get(t testing.TB, target, peer, viewer string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = peer
	if viewer != "" {
		req.Header.Set("X-Forwarded-Email", viewer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec.Result()
}

const proxy = "127.0.0.1:40000" // a trusted reverse proxy

// ownPhoto requests owner's photo as the owner, through the trusted proxy.
func (e *env) ownPhoto(t testing.TB, owner, size string) (*http.Response, []byte) {
	t.Helper()
	resp := e.get(t, "/photos/"+owner+"?size="+size, proxy, owner)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// wait lets the background pulls (stale-while-revalidate refreshes) end.
func (e *env) wait(t *testing.T) {
	t.Helper()
	if err := e.engine.Wait(ctx(t)); err != nil {
		t.Fatalf("background pulls did not end: %v", err)
	}
}

func (e *env) photoCalls() int { return e.sim.PhotoRequests() }

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

// jpegOf is a w×w JPEG of one colour.
func jpegOf(t *testing.T, w int, c color.Color) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, w))
	for i := range w * w {
		img.Set(i%w, i/w, c)
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
