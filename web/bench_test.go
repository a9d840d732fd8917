package web_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// discard is a ResponseWriter that keeps nothing, so a benchmark measures
// photosync and not the recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func benchRequest(b *testing.B, e *env, target string, hdr ...string) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = proxy
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := &discard{h: make(http.Header, 8)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		e.handler.ServeHTTP(w, req)
	}
}

// BenchmarkHit is the cache-hit path: a photo whose timer runs, answered
// from the hot layer.
func BenchmarkHit(b *testing.B) {
	e := newEnv(b, envOptions{})
	e.ownPhoto(b, adele, "HR96x96")
	benchRequest(b, e, "/photos/"+adele+"?size=HR96x96")
}

// BenchmarkNotModified is a browser revalidating what it has: 304.
func BenchmarkNotModified(b *testing.B) {
	e := newEnv(b, envOptions{})
	resp, _ := e.ownPhoto(b, adele, "HR96x96")
	benchRequest(b, e, "/photos/"+adele+"?size=HR96x96", "If-None-Match", resp.Header.Get("ETag"))
}
