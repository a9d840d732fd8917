package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"photosync/internal/testclock"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/photo"
	"photosync/web"
)

const (
	adele  = "adele.vance@contoso.com"
	alex   = "alex.wilber@contoso.com"
	nobody = "lee.gu@contoso.com" // known, without a photo
)

// ecpURL is the photo upload page the test's EditURLer sends adele to.
const ecpURL = "https://mail.contoso.com/ecp/PersonalSettings/EditPhoto.aspx?chgPhoto=1"

// toECP sends every viewer to ecpURL.
var toECP = web.EditURLFunc(func(context.Context, string) (string, error) { return ecpURL, nil })

// source is an in-process photo source: a JPEG of each size for the
// owners it has, revalidated by ETag, and faults a test switches on.
type source struct {
	mu    sync.Mutex
	has   map[string]bool
	jpegs map[string][]byte // by owner and size
	delay time.Duration
	fail  error
	calls atomic.Int64
	gen   map[string]int // per owner: SetPhoto changes the bytes
	names map[string]string
}

func newSource(owners ...string) *source {
	s := &source{has: map[string]bool{}, jpegs: map[string][]byte{}, gen: map[string]int{}, names: map[string]string{}}
	for _, o := range owners {
		s.has[o] = true
	}
	return s
}

// SetPhoto gives owner a new photo.
func (s *source) SetPhoto(owner string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.has[owner] = true
	s.gen[owner]++
}

func (s *source) setDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

func (s *source) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *source) photo(ctx context.Context, owner, size, etag string) (photo.Result, error) {
	s.calls.Add(1)
	s.mu.Lock()
	delay, fail, has, gen, name := s.delay, s.fail, s.has[owner], s.gen[owner], s.names[owner]
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return photo.Result{}, ctx.Err()
		}
	}
	if fail != nil {
		return photo.Result{}, fail
	}
	if !has {
		return photo.Result{Status: photo.StatusNoPhoto, Name: name}, nil
	}
	body := s.jpeg(owner, size, gen)
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:8])
	if etag == tag {
		return photo.Result{Status: photo.StatusNotModified, ETag: tag}, nil
	}
	return photo.Result{Status: photo.StatusPhoto, Body: body, ETag: tag}, nil
}

// jpeg draws owner's photo at size, the same bytes every time.
func (s *source) jpeg(owner, size string, gen int) []byte {
	key := owner + "/" + size + "/" + strconv.Itoa(gen)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.jpegs[key]; ok {
		return b
	}
	n := photo.Pixels(size)
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	c := color.RGBA{uint8(len(owner) * 37), uint8(gen * 80), 0x80, 0xff}
	for i := range n * n {
		img.Set(i%n, i/n, c)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		panic(err)
	}
	s.jpegs[key] = buf.Bytes()
	return buf.Bytes()
}

// env is the web face on a real engine and store, with source as its only
// photo source.
type env struct {
	clock   *testclock.Clock
	source  *source
	store   store.Store
	engine  *psync.Engine
	handler *web.Handler
}

type envOptions struct {
	engine func(*psync.Options)
	web    func(*web.Options)
}

// proxies are the reverse proxies tests send the identity header from.
var proxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{clock: testclock.New(), source: newSource(adele, alex)}
	b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.store = store.NewHot(b, 8<<20, store.HotOptions{Now: e.clock.Now})

	opts := psync.Options{
		Store:           e.store,
		Sources:         []photo.Source{photo.Func{SourceName: "exchange", Func: e.source.photo}},
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
	wopts := web.Options{
		TrustedProxies: proxies,
		Edit:           toECP,
		Metadata: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"realm":"test"}`)
		}),
	}
	if o.web != nil {
		o.web(&wopts)
	}
	e.handler = web.New(e.engine, wopts)
	return e
}

// get sends a request to the handler as if from peer (ip:port), with the
// identity header set to viewer when not empty, and hdr's name/value pairs.
func (e *env) get(t testing.TB, target, peer, viewer string, hdr ...string) *http.Response {
	t.Helper()
	return serve(t, e.handler, http.MethodGet, target, peer, viewer, hdr...)
}

func serve(t testing.TB, h http.Handler, method, target, peer, viewer string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = peer
	if viewer != "" {
		req.Header.Set("X-Forwarded-Email", viewer)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
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

func (e *env) photoCalls() int { return int(e.source.calls.Load()) }

// ctx returns a context for one test step.
func ctx(t testing.TB) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func outcome(resp *http.Response) string { return web.OutcomeOf(resp.Header.Get("Cache-Status")) }

func readAll(t testing.TB, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
