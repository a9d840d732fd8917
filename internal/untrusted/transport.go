package untrusted

import "net/http"

// MaxResponseHeaderBytes bounds the head of every answer photosync reads
// from a master (net/http's default is 1 MiB).
const MaxResponseHeaderBytes = 64 << 10

// Transport returns rt (http.DefaultTransport when nil) with answers'
// heads bounded to MaxResponseHeaderBytes: an *http.Transport without a
// bound, or with a larger one, is cloned with it; any other RoundTripper
// is returned as it is (it is the caller's, and bounds its own reads).
func Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok || t.MaxResponseHeaderBytes > 0 && t.MaxResponseHeaderBytes <= MaxResponseHeaderBytes {
		return rt
	}
	t = t.Clone()
	t.MaxResponseHeaderBytes = MaxResponseHeaderBytes
	return t
}
