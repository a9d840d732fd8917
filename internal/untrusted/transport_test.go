package untrusted

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTransportBoundsHeads: an answer whose head is larger than the bound
// is an error, not a megabyte read.
func TestTransportBoundsHeads(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"`+strings.Repeat("a", 2*MaxResponseHeaderBytes)+`"`)
	}))
	defer srv.Close()
	c := &http.Client{Transport: Transport(nil)}
	if resp, err := c.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Fatal("a 128 KiB head was read")
	}
	if tr := Transport(http.DefaultTransport).(*http.Transport); tr == http.DefaultTransport || tr.MaxResponseHeaderBytes != MaxResponseHeaderBytes {
		t.Error("the default transport was not cloned with the bound")
	}
	small := &http.Transport{MaxResponseHeaderBytes: 16 << 10}
	if Transport(small) != small {
		t.Error("a transport with a tighter bound was replaced")
	}
}
