package graph_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"photosync/internal/testclock"
	"photosync/oauth"
	"photosync/sync/backoff"
	"photosync/sync/graph"
	"photosync/sync/graph/graphtest"
	"photosync/sync/photo"
	"photosync/sync/photo/phototest"
)

const (
	adele  = "adele.vance@contoso.com"
	alex   = "alex.wilber@contoso.com"
	nobody = "lee.gu@contoso.com" // without a photo

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
	for name, b := range map[string][]byte{"g.crt": certPEM, "g.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cert, key, err := oauth.LoadKeyPair(filepath.Join(dir, "g.crt"), filepath.Join(dir, "g.key"))
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// graphEnv is a Graph simulator with one registered app (secret and
// certificate) and the people of the engine tests.
type graphEnv struct {
	sim   *graphtest.Server
	clock *testclock.Clock
	cert  *x509.Certificate
	key   *rsa.PrivateKey
}

func newGraphEnv(t testing.TB) *graphEnv {
	t.Helper()
	g := &graphEnv{clock: testclock.New()}
	g.cert, g.key = graphCert(t)
	g.sim = graphtest.NewServer(graphtest.Options{Now: g.clock.Now,
		Apps: []graphtest.App{{ClientID: graphClientID, Secret: graphSecret, Certificates: []*x509.Certificate{g.cert}}}})
	t.Cleanup(g.sim.Close)
	g.sim.SetPhoto(adele, 648)
	g.sim.SetPhoto(alex, 240) // uploaded small: nothing above 240x240
	g.sim.AddUser(nobody)
	g.sim.SetDisplayName(nobody, "Lee Gu")
	return g
}

// source returns a Graph source for the simulator; edit changes its
// options first.
func (g *graphEnv) source(t testing.TB, edit func(*graph.Options)) *graph.Source {
	t.Helper()
	o := graph.Options{ClientID: graphClientID, ClientSecret: graphSecret, TokenURL: g.sim.TokenURL(),
		BaseURL: g.sim.URL(), Client: g.sim.Client(), Now: g.clock.Now, Timeout: 20 * time.Second}
	if edit != nil {
		edit(&o)
	}
	src, err := graph.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func withCertificate(cert *x509.Certificate, key *rsa.PrivateKey) func(*graph.Options) {
	return func(o *graph.Options) { o.ClientSecret, o.Certificate, o.Key = "", cert, key }
}

func TestPhotos(t *testing.T) {
	g := newGraphEnv(t)
	adele96, adeleTag, _ := g.sim.PhotoBytes(adele, "96x96")
	tests := []struct {
		name       string
		credential func(*graph.Options)
		owner      string
		size       string
		etag       string
		want       photo.Status
		wantPx     int
		wantName   string // asked only when there is no photo
	}{
		{"photo with a secret", nil, adele, "HR96x96", "", photo.StatusPhoto, 96, ""},
		{"photo with a certificate", withCertificate(g.cert, g.key), adele, "HR648x648", "", photo.StatusPhoto, 648, ""},
		{"size up to the uploaded one", nil, alex, "HR240x240", "", photo.StatusPhoto, 240, ""},
		{"size above the uploaded one: no photo", nil, alex, "HR360x360", "", photo.StatusNoPhoto, 0, ""},
		{"user without a photo: their displayName", nil, nobody, "HR96x96", "", photo.StatusNoPhoto, 0, "Lee Gu"},
		{"unknown user", nil, "someone.else@contoso.com", "HR96x96", "", photo.StatusNoPhoto, 0, ""},
		{"stored ETag still holds: 304", nil, adele, "HR96x96", strings.Trim(adeleTag, `"`), photo.StatusNotModified, 0, ""},
		{"stale ETag: the photo again", nil, adele, "HR96x96", "0123", photo.StatusPhoto, 96, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := g.source(t, tt.credential)
			res, err := src.Photo(t.Context(), tt.owner, tt.size, tt.etag)
			if err != nil {
				t.Fatalf("Photo: %v", err)
			}
			if res.Status != tt.want || res.Name != tt.wantName {
				t.Fatalf("status %v, name %q; want %v, %q", res.Status, res.Name, tt.want, tt.wantName)
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

func TestBadCredentials(t *testing.T) {
	g := newGraphEnv(t)
	otherCert, otherKey := graphCert(t) // never registered
	tests := []struct {
		name string
		edit func(*graph.Options)
		want []string // in the error
	}{
		{"wrong secret", func(o *graph.Options) { o.ClientSecret = "wrong" }, []string{"graph: token", "invalid_client", "AADSTS7000215"}},
		{"assertion signed by an unregistered key", withCertificate(otherCert, otherKey), []string{"graph: token", "invalid_client", "AADSTS700027"}},
		{"registered certificate, another key", withCertificate(g.cert, otherKey), []string{"graph: token", "invalid_client", "AADSTS700027"}},
		{"unknown application", func(o *graph.Options) { o.ClientID = "00000000-0000-0000-0000-000000000001" }, []string{"unauthorized_client", "AADSTS700016"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.sim.PhotoRequests()
			_, err := g.source(t, tt.edit).Photo(t.Context(), adele, "HR96x96", "")
			if err == nil {
				t.Fatal("Photo succeeded with a bad credential")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if !errors.Is(err, graph.ErrUnauthorized) {
				t.Errorf("errors.Is(%q, ErrUnauthorized) is false", err)
			}
			if !strings.HasPrefix(err.Error(), "graph: ") || strings.Count(err.Error(), "graph:") != 1 || strings.Contains(err.Error(), "oauth:") {
				t.Errorf("error %q: want one graph: prefix and nothing else", err)
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

// TestRejectedToken: a token Graph does not accept is renewed
// and retried once; a second 401 is an error naming Graph's code.
func TestRejectedToken(t *testing.T) {
	g := newGraphEnv(t)
	src := g.source(t, nil)
	if _, err := src.Photo(t.Context(), adele, "HR96x96", ""); err != nil {
		t.Fatal(err)
	}
	g.sim.RevokeTokens()
	res, err := src.Photo(t.Context(), adele, "HR96x96", "")
	if err != nil || res.Status != photo.StatusPhoto {
		t.Fatalf("after a key rollover: %v, %v; want the photo", res.Status, err)
	}
	if got := g.sim.TokenRequests(); got != 2 {
		t.Errorf("%d token requests, want 2 (one renewal after the 401)", got)
	}
}

// TestUnauthorized: a 401 that a fresh token does not cure is an
// error naming Graph's code, after exactly one retry.
func TestUnauthorized(t *testing.T) {
	c := testclock.New()
	sim := graphtest.NewServer(graphtest.Options{Now: c.Now, TokenAudience: "https://graph.microsoft.us",
		Apps: []graphtest.App{{ClientID: graphClientID, Secret: graphSecret}}})
	defer sim.Close()
	sim.SetPhoto(adele, 96)
	src, err := graph.New(graph.Options{ClientID: graphClientID, ClientSecret: graphSecret,
		TokenURL: sim.TokenURL(), BaseURL: sim.URL(), Client: sim.Client(), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = src.Photo(t.Context(), adele, "HR96x96", "")
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Status != 401 || !strings.Contains(err.Error(), "InvalidAuthenticationToken") || !errors.Is(err, graph.ErrUnauthorized) {
		t.Fatalf("token for another audience: %v; want a 401 naming InvalidAuthenticationToken", err)
	}
	if tok, photos := sim.TokenRequests(), sim.PhotoRequests(); tok != 2 || photos != 2 {
		t.Errorf("%d token and %d photo requests, want 2 and 2 (one retry)", tok, photos)
	}
}

func TestTokenReuse(t *testing.T) {
	g := newGraphEnv(t)
	src := g.source(t, withCertificate(g.cert, g.key))
	var wg stdsync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			size := []string{"HR48x48", "HR96x96", "HR240x240", "HR648x648"}[i%4]
			if _, err := src.Photo(t.Context(), adele, size, ""); err != nil {
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
	if _, err := src.Photo(t.Context(), adele, "HR96x96", ""); err != nil {
		t.Fatal(err)
	}
	if got := g.sim.TokenRequests(); got != 1 {
		t.Errorf("after 50m: %d token requests, want 1", got)
	}
	g.clock.Advance(6 * time.Minute)
	if _, err := src.Photo(t.Context(), adele, "HR96x96", ""); err != nil {
		t.Fatal(err)
	}
	if got := g.sim.TokenRequests(); got != 2 {
		t.Errorf("after 56m: %d token requests, want 2 (renewed 5m before expiry)", got)
	}
}

func TestThrottled(t *testing.T) {
	g := newGraphEnv(t)
	src := g.source(t, nil)
	g.sim.Throttle(120 * time.Second)
	_, err := src.Photo(t.Context(), adele, "HR96x96", "")
	var ge *graph.Error
	if !errors.As(err, &ge) || ge.Status != 429 || ge.Code != "TooManyRequests" || ge.RetryAfter != "120" {
		t.Fatalf("throttled: %v; want a 429 TooManyRequests with Retry-After 120", err)
	}
	if got := g.sim.PhotoRequests(); got != 1 {
		t.Fatalf("%d photo requests, want 1", got)
	}
	if wait, _, ok := ge.Backoff(); !ok || wait != 120*time.Second {
		t.Errorf("Backoff() = %v, %v; want 2m, true", wait, ok)
	}
	if got := src.BackedOff(); got != 1 {
		t.Errorf("BackedOff() = %d during Retry-After, want 1", got)
	}
	g.sim.Throttle(0)
	for _, wait := range []time.Duration{0, 60 * time.Second, 59 * time.Second} {
		g.clock.Advance(wait)
		if _, err := src.Photo(t.Context(), alex, "HR96x96", ""); !errors.Is(err, backoff.ErrBackoff) {
			t.Fatalf("%v into the Retry-After: %v; want ErrBackoff", wait, err)
		}
	}
	if got := g.sim.PhotoRequests(); got != 1 {
		t.Errorf("%d photo requests during Retry-After, want none after the first", got-1)
	}
	g.clock.Advance(2 * time.Second)
	if res, err := src.Photo(t.Context(), alex, "HR96x96", ""); err != nil || res.Status != photo.StatusPhoto {
		t.Fatalf("after Retry-After: %v, %v; want the photo", res.Status, err)
	}
	if got := src.BackedOff(); got != 0 {
		t.Errorf("BackedOff() = %d after a photo, want 0", got)
	}
}

func TestErrorBackoff(t *testing.T) {
	tests := []struct {
		err    graph.Error
		wantOK bool
		want   time.Duration
	}{
		{graph.Error{Status: 429, RetryAfter: "7"}, true, 7 * time.Second},
		{graph.Error{Status: 503}, true, backoff.DefaultBusy},
		{graph.Error{Status: 500, RetryAfter: "7"}, false, 0},
		{graph.Error{Status: 403, Code: "Authorization_RequestDenied"}, false, 0},
	}
	for _, tt := range tests {
		wait, _, ok := tt.err.Backoff()
		if ok != tt.wantOK || wait != tt.want {
			t.Errorf("%v: Backoff() = %v, %v; want %v, %v", &tt.err, wait, ok, tt.want, tt.wantOK)
		}
		if got, want := errors.Is(&tt.err, graph.ErrUnauthorized), tt.err.Status == 403; got != want {
			t.Errorf("%v: errors.Is ErrUnauthorized = %v, want %v", &tt.err, got, want)
		}
	}
}

// TestPhotoBadAnswers runs the source against a Graph that misbehaves.
func TestPhotoBadAnswers(t *testing.T) {
	adele96 := func(g *graphEnv) []byte { b, _, _ := g.sim.PhotoBytes(adele, "96x96"); return b }
	tests := []struct {
		name     string
		maxBytes int64
		handler  func(body []byte) http.HandlerFunc
		want     error
		wantText string
	}{
		{"over MaxBytes", 1024, func(b []byte) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(b) }
		}, photo.ErrTooLarge, "graph: photo: photo: larger than the limit"},
		{"not an image", 0, func([]byte) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "image/jpeg")
				_, _ = w.Write([]byte("<html>hello</html>"))
			}
		}, photo.ErrNotImage, "graph: photo: "},
		{"HTML content type", 0, func([]byte) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = w.Write([]byte("<html>"))
			}
		}, photo.ErrNotImage, `Content-Type "text/html; charset=utf-8"`},
		{"304 to an unconditional request", 0, func([]byte) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotModified) }
		}, photo.ErrBadAnswer, "graph: photo: "},
		{"server error", 0, func([]byte) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"error":{"code":"generalException","message":"boom\r\nsecond line"}}`))
			}
		}, nil, "graph: photo: 500 Internal Server Error: generalException: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGraphEnv(t)
			mux := http.NewServeMux()
			mux.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3600,"access_token":"t"}`))
			})
			mux.Handle("GET /v1.0/", tt.handler(adele96(g)))
			srv := httptest.NewTLSServer(mux)
			defer srv.Close()
			src, err := graph.New(graph.Options{ClientID: graphClientID, ClientSecret: graphSecret,
				TokenURL: srv.URL + "/token", BaseURL: srv.URL, Client: srv.Client(), MaxBytes: tt.maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			_, err = src.Photo(t.Context(), adele, "HR96x96", "")
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("Photo: %v; want %v saying %q", err, tt.want, tt.wantText)
			}
			if strings.Contains(err.Error(), "second line") || strings.Count(err.Error(), "graph:") != 1 {
				t.Errorf("error %q: want one line, one graph: prefix", err)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	cert, key := graphCert(t)
	tests := []struct {
		name string
		edit func(*graph.Options)
		want string
	}{
		{"no client id", func(o *graph.Options) { o.ClientID = "" }, "client id is required"},
		{"both credentials", func(o *graph.Options) { o.Certificate, o.Key = cert, key }, "not both"},
		{"no credential", func(o *graph.Options) { o.ClientSecret = "" }, "a client secret or a certificate"},
		{"no tenant", func(o *graph.Options) { o.Tenant = "" }, "a tenant or a token URL"},
		{"http base URL", func(o *graph.Options) { o.BaseURL = "http://graph.example" }, "graph: base URL"},
		{"token URL with a query", func(o *graph.Options) { o.TokenURL = "https://login.example/t?x=1" }, "graph: token URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := graph.Options{Tenant: "contoso.onmicrosoft.com", ClientID: graphClientID, ClientSecret: graphSecret}
			tt.edit(&o)
			if _, err := graph.New(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v; want an error saying %q", err, tt.want)
			}
		})
	}
	src, err := graph.New(graph.Options{Tenant: "contoso.onmicrosoft.com", ClientID: graphClientID, ClientSecret: graphSecret})
	if err != nil || src.Name() != "graph" {
		t.Fatalf("New with defaults: %v, %v", src, err)
	}
	if _, err := src.Photo(t.Context(), adele, "HR97x97", ""); err == nil || !strings.Contains(err.Error(), "unknown size") {
		t.Errorf("unknown size: %v", err)
	}
}

// TestWalk runs Graph in a chain, alone and after a source that may have
// the photo: Graph is asked only when the first has none.
func TestWalk(t *testing.T) {
	g := newGraphEnv(t)
	graph96, _, _ := g.sim.PhotoBytes(adele, "96x96")
	first := func(has bool) photo.Source {
		return photo.Func{SourceName: "exchange", Func: func(context.Context, string, string, string) (photo.Result, error) {
			if has {
				return photo.Result{Status: photo.StatusPhoto, Body: graph96}, nil
			}
			return photo.Result{Status: photo.StatusNoPhoto}, nil
		}}
	}
	tests := []struct {
		name       string
		chain      func(src photo.Source) []photo.Source
		wantSource string
		wantCalls  int
	}{
		{"graph alone", func(src photo.Source) []photo.Source { return []photo.Source{src} }, "graph", 1},
		{"the first source has the photo", func(src photo.Source) []photo.Source { return []photo.Source{first(true), src} }, "exchange", 0},
		{"the first has none: graph's", func(src photo.Source) []photo.Source { return []photo.Source{first(false), src} }, "graph", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := g.sim.PhotoRequests()
			found, err := photo.Walk(t.Context(), tt.chain(g.source(t, nil)), adele, "HR96x96", "", "", nil, nil)
			if err != nil || found.Status != photo.StatusPhoto || found.Source != tt.wantSource || !bytes.Equal(found.Result.Body, graph96) {
				t.Fatalf("Walk: %+v, %v; want the photo from %s", found.Source, err, tt.wantSource)
			}
			if got := g.sim.PhotoRequests() - before; got != tt.wantCalls {
				t.Errorf("%d Graph photo calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestHostileBodies: Graph's bodies pass the walk's checks as Exchange's
// do, within the same photos.max_bytes.
func TestHostileBodies(t *testing.T) {
	g := newGraphEnv(t)
	tests := []struct {
		name string
		body []byte
		want error
	}{
		{"png bomb", phototest.PNGBomb(8000, 8000), photo.ErrTooManyPixels},
		{"jpeg bomb", phototest.JPEGBomb(8000, 8000), photo.ErrTooManyPixels},
		{"giant dimensions", phototest.GiantPNG(100000, 100000), photo.ErrTooManyPixels},
		{"jpeg magic then html", append([]byte("\xff\xd8\xff\xe0"), phototest.HTML...), photo.ErrUndecodable},
		{"truncated jpeg", phototest.JPEG(96, 96)[:500], photo.ErrUndecodable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.sim.SetPhotoBody(tt.body)
			defer g.sim.SetPhotoBody(nil)
			_, err := photo.Walk(t.Context(), []photo.Source{g.source(t, nil)}, adele, "HR96x96", "", "", nil, nil)
			if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "graph: ") {
				t.Fatalf("Walk = %v, want graph: … %v", err, tt.want)
			}
		})
	}
	g.sim.SetPhotoBody(append(phototest.JPEG(96, 96), phototest.HTML...))
	found, err := photo.Walk(t.Context(), []photo.Source{g.source(t, nil)}, adele, "HR96x96", "", "", nil, nil)
	if err != nil || bytes.Contains(found.Result.Body, []byte("<html")) || found.Result.ETag != "hostile" {
		t.Fatalf("a photo followed by a page: %v, %d bytes, ETag %q; want the photo alone", err, len(found.Result.Body), found.Result.ETag)
	}
}
