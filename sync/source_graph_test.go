package sync_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"image/jpeg"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"photosync/oauth"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/graphtest"
)

const (
	graphClientID = "3f1d2c4b-5a6e-4b7c-8d9e-0f1a2b3c4d5e"
	graphSecret   = "s3cret~value"
)

// graphCert returns a fresh certificate and key, loaded the way serve does.
func graphCert(t testing.TB) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	certPEM, keyPEM, err := oauth.GenerateKeyPair("photosync graph test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "g.crt"), certPEM)
	writeFile(t, filepath.Join(dir, "g.key"), keyPEM)
	cert, key, err := oauth.LoadKeyPair(filepath.Join(dir, "g.crt"), filepath.Join(dir, "g.key"))
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// graphEnv is a Graph simulator with one registered app (secret and
// certificate) and the people of the Exchange tests.
type graphEnv struct {
	sim   *graphtest.Server
	clock *clock
	cert  *x509.Certificate
	key   *rsa.PrivateKey
}

func newGraphEnv(t testing.TB) *graphEnv {
	t.Helper()
	g := &graphEnv{clock: newClock()}
	g.cert, g.key = graphCert(t)
	g.sim = graphtest.NewServer(graphtest.Options{Now: g.clock.Now,
		Apps: []graphtest.App{{ClientID: graphClientID, Secret: graphSecret, Certificates: []*x509.Certificate{g.cert}}}})
	t.Cleanup(g.sim.Close)
	g.sim.SetPhoto(adele, 648)
	g.sim.SetPhoto(alex, 240) // uploaded small: nothing above 240x240
	g.sim.AddUser(nobody)
	return g
}

// source returns a Graph source for the simulator; edit changes its
// options first.
func (g *graphEnv) source(t testing.TB, edit func(*psync.Graph)) *psync.Graph {
	t.Helper()
	o := psync.Graph{ClientID: graphClientID, ClientSecret: graphSecret, TokenURL: g.sim.TokenURL(),
		BaseURL: g.sim.URL(), Client: g.sim.Client(), Now: g.clock.Now, Timeout: 20 * time.Second}
	if edit != nil {
		edit(&o)
	}
	src, err := psync.NewGraph(o)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func withCertificate(cert *x509.Certificate, key *rsa.PrivateKey) func(*psync.Graph) {
	return func(o *psync.Graph) { o.ClientSecret, o.Certificate, o.Key = "", cert, key }
}

func TestGraphSourcePhotos(t *testing.T) {
	g := newGraphEnv(t)
	adele96, adeleTag, _ := g.sim.PhotoBytes(adele, "96x96")
	tests := []struct {
		name       string
		credential func(*psync.Graph)
		owner      string
		size       string
		etag       string
		want       psync.SourceStatus
		wantPx     int
	}{
		{"photo with a secret", nil, adele, "HR96x96", "", psync.SourcePhoto, 96},
		{"photo with a certificate", withCertificate(g.cert, g.key), adele, "HR648x648", "", psync.SourcePhoto, 648},
		{"size up to the uploaded one", nil, alex, "HR240x240", "", psync.SourcePhoto, 240},
		{"size above the uploaded one: no photo", nil, alex, "HR360x360", "", psync.SourceNoPhoto, 0},
		{"user without a photo", nil, nobody, "HR96x96", "", psync.SourceNoPhoto, 0},
		{"unknown user", nil, "someone.else@contoso.com", "HR96x96", "", psync.SourceNoPhoto, 0},
		{"stored ETag still holds: 304", nil, adele, "HR96x96", strings.Trim(adeleTag, `"`), psync.SourceNotModified, 0},
		{"stale ETag: the photo again", nil, adele, "HR96x96", "0123", psync.SourcePhoto, 96},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := g.source(t, tt.credential)
			res, err := src.Photo(ctx(t), tt.owner, tt.size, tt.etag)
			if err != nil {
				t.Fatalf("Photo: %v", err)
			}
			if res.Status != tt.want {
				t.Fatalf("status %v, want %v", res.Status, tt.want)
			}
			if tt.wantPx == 0 {
				return
			}
			img, err := jpeg.Decode(bytes.NewReader(res.Body))
			if err != nil {
				t.Fatalf("body is not a JPEG: %v", err)
			}
			if b := img.Bounds(); b.Dx() != tt.wantPx || b.Dy() != tt.wantPx || res.ContentType != "image/jpeg" || res.ETag == "" {
				t.Errorf("got %dx%d %s etag %q, want %dx%d image/jpeg with an ETag", b.Dx(), b.Dy(), res.ContentType, res.ETag, tt.wantPx, tt.wantPx)
			}
			if tt.size == "HR96x96" && tt.owner == adele && !bytes.Equal(res.Body, adele96) {
				t.Error("body differs from the simulator's photo")
			}
		})
	}
}

func TestGraphSourceBadCredentials(t *testing.T) {
	g := newGraphEnv(t)
	otherCert, otherKey := graphCert(t) // never registered
	tests := []struct {
		name string
		edit func(*psync.Graph)
		want []string // in the error
	}{
		{"wrong secret", func(o *psync.Graph) { o.ClientSecret = "wrong" }, []string{"graph: token", "invalid_client", "AADSTS7000215"}},
		{"assertion signed by an unregistered key", withCertificate(otherCert, otherKey), []string{"graph: token", "invalid_client", "AADSTS700027"}},
		{"registered certificate, another key", withCertificate(g.cert, otherKey), []string{"graph: token", "invalid_client", "AADSTS700027"}},
		{"unknown application", func(o *psync.Graph) { o.ClientID = "00000000-0000-0000-0000-000000000001" }, []string{"unauthorized_client", "AADSTS700016"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.sim.PhotoRequests()
			_, err := g.source(t, tt.edit).Photo(ctx(t), adele, "HR96x96", "")
			if err == nil {
				t.Fatal("Photo succeeded with a bad credential")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), graphSecret) || strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows the secret", err)
			}
			if got := g.sim.PhotoRequests() - before; got != 0 {
				t.Errorf("%d photo requests without a token", got)
			}
		})
	}
}

// TestGraphSourceRejectedToken: a token Graph does not accept is renewed
// and retried once; a second 401 is an error naming Graph's code.
func TestGraphSourceRejectedToken(t *testing.T) {
	g := newGraphEnv(t)
	src := g.source(t, nil)
	if _, err := src.Photo(ctx(t), adele, "HR96x96", ""); err != nil {
		t.Fatal(err)
	}
	g.sim.RevokeTokens()
	res, err := src.Photo(ctx(t), adele, "HR96x96", "")
	if err != nil || res.Status != psync.SourcePhoto {
		t.Fatalf("after a key rollover: %v, %v; want the photo", res.Status, err)
	}
	if got := g.sim.TokenRequests(); got != 2 {
		t.Errorf("%d token requests, want 2 (one renewal after the 401)", got)
	}

}

// TestGraphSourceUnauthorized: a 401 that a fresh token does not cure is an
// error naming Graph's code, after exactly one retry.
func TestGraphSourceUnauthorized(t *testing.T) {
	c := newClock()
	sim := graphtest.NewServer(graphtest.Options{Now: c.Now, TokenAudience: "https://graph.microsoft.us",
		Apps: []graphtest.App{{ClientID: graphClientID, Secret: graphSecret}}})
	defer sim.Close()
	sim.SetPhoto(adele, 96)
	src, err := psync.NewGraph(psync.Graph{ClientID: graphClientID, ClientSecret: graphSecret,
		TokenURL: sim.TokenURL(), BaseURL: sim.URL(), Client: sim.Client(), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Photo(ctx(t), adele, "HR96x96", "")
	var ge *psync.GraphError
	if !errors.As(err, &ge) || ge.Status != 401 || !strings.Contains(err.Error(), "InvalidAuthenticationToken") {
		t.Fatalf("token for another audience: %v; want a 401 naming InvalidAuthenticationToken", err)
	}
	if tok, photos := sim.TokenRequests(), sim.PhotoRequests(); tok != 2 || photos != 2 {
		t.Errorf("%d token and %d photo requests, want 2 and 2 (one retry)", tok, photos)
	}
}

func TestGraphSourceTokenReuse(t *testing.T) {
	g := newGraphEnv(t)
	src := g.source(t, withCertificate(g.cert, g.key))
	var wg stdsync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			size := []string{"HR48x48", "HR96x96", "HR240x240", "HR648x648"}[i%4]
			if _, err := src.Photo(ctx(t), adele, size, ""); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := g.sim.TokenRequests(); got != 1 {
		t.Errorf("%d token requests for 20 concurrent photos, want 1", got)
	}
	// Renewed a few minutes before expires_in (1h), not after.
	g.clock.Advance(50 * time.Minute)
	if _, err := src.Photo(ctx(t), adele, "HR96x96", ""); err != nil {
		t.Fatal(err)
	}
	if got := g.sim.TokenRequests(); got != 1 {
		t.Errorf("after 50m: %d token requests, want 1", got)
	}
	g.clock.Advance(6 * time.Minute)
	if _, err := src.Photo(ctx(t), adele, "HR96x96", ""); err != nil {
		t.Fatal(err)
	}
	if got := g.sim.TokenRequests(); got != 2 {
		t.Errorf("after 56m: %d token requests, want 2 (renewed 5m before expiry)", got)
	}
}

func TestGraphSourceThrottled(t *testing.T) {
	g := newGraphEnv(t)
	src := g.source(t, nil)
	g.sim.Throttle(120 * time.Second)
	_, err := src.Photo(ctx(t), adele, "HR96x96", "")
	var ge *psync.GraphError
	if !errors.As(err, &ge) || ge.Status != 429 || ge.Code != "TooManyRequests" || ge.RetryAfter != "120" {
		t.Fatalf("throttled: %v; want a 429 TooManyRequests with Retry-After 120", err)
	}
	if got := g.sim.PhotoRequests(); got != 1 {
		t.Fatalf("%d photo requests, want 1", got)
	}
	g.sim.Throttle(0)
	for _, wait := range []time.Duration{0, 60 * time.Second, 59 * time.Second} {
		g.clock.Advance(wait)
		if _, err := src.Photo(ctx(t), alex, "HR96x96", ""); !errors.Is(err, psync.ErrBackoff) {
			t.Fatalf("%v into the Retry-After: %v; want ErrBackoff", wait, err)
		}
	}
	if got := g.sim.PhotoRequests(); got != 1 {
		t.Errorf("%d photo requests during Retry-After, want none after the first", got-1)
	}
	g.clock.Advance(2 * time.Second)
	if res, err := src.Photo(ctx(t), alex, "HR96x96", ""); err != nil || res.Status != psync.SourcePhoto {
		t.Fatalf("after Retry-After: %v, %v; want the photo", res.Status, err)
	}
}

// TestGraphChain runs Graph through the engine, alone and after Exchange.
func TestGraphChain(t *testing.T) {
	g := newGraphEnv(t)
	graph96, _, _ := g.sim.PhotoBytes(adele, "96x96")
	g.sim.SetPhoto(nobody, 648) // no mailbox photo, a Graph photo
	nobody96, _, _ := g.sim.PhotoBytes(nobody, "96x96")

	tests := []struct {
		name         string
		chain        func(o *psync.Options, graph psync.Source) []psync.Source
		owner        string
		want         []byte
		wantSrc      string
		fromExchange bool
	}{
		{"graph alone", func(_ *psync.Options, gr psync.Source) []psync.Source { return []psync.Source{gr} }, adele, graph96, "graph", false},
		{"exchange has the photo", func(o *psync.Options, gr psync.Source) []psync.Source {
			return []psync.Source{psync.ExchangeSource{Locator: o.Locator, Master: o.Master}, gr}
		}, adele, nil, "exchange", true},
		{"no mailbox photo: graph's", func(o *psync.Options, gr psync.Source) []psync.Source {
			return []psync.Source{psync.ExchangeSource{Locator: o.Locator, Master: o.Master}, gr}
		}, nobody, nobody96, "graph", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := g.source(t, nil)
			e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.Sources = tt.chain(o, src) }})
			want := tt.want
			if tt.fromExchange {
				want, _, _ = e.sim.PhotoBytes(tt.owner, "HR96x96")
			}
			before := g.sim.PhotoRequests()
			p, err := e.engine.Photo(ctx(t), tt.owner, "HR96x96", tt.owner)
			if err != nil || !bytes.Equal(p.Body, want) {
				t.Fatalf("Photo: %v, %d bytes; want the %d bytes from %s", err, len(p.Body), len(want), tt.wantSrc)
			}
			rec, err := e.store.Get(ctx(t), store.Key{Owner: tt.owner, Size: "HR96x96"})
			if err != nil || rec.Source != tt.wantSrc {
				t.Errorf("stored source %q (%v), want %q", rec.Source, err, tt.wantSrc)
			}
			graphCalls := g.sim.PhotoRequests() - before
			if wantCalls := map[bool]int{true: 0, false: 1}[tt.fromExchange]; graphCalls != wantCalls {
				t.Errorf("%d Graph photo calls, want %d", graphCalls, wantCalls)
			}
		})
	}
}
