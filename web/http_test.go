package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"photosync/sync/photo"
	"photosync/web"
)

func TestBadInputIs400(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name, target, want string
	}{
		{"no at", "/photos/adele.vance", "not an email"},
		{"two ats", "/photos/a@b@contoso.com", "not an email"},
		{"display name", "/photos/Adele%20%3Cadele@contoso.com%3E", "character"},
		{"traversal in local part", "/photos/..%2f..%2fetc%2fpasswd@contoso.com", "not a photo path"},
		{"dot dot", "/photos/a..b@contoso.com", "character"},
		{"encoded slash", "/photos/adele%2F@contoso.com", "not a photo path"},
		{"backslash", "/photos/adele%5C@contoso.com", "not a photo path"},
		{"nul", "/photos/adele%00@contoso.com", "character"},
		{"percent", "/photos/adele%25@contoso.com", "character"},
		{"domain without dot", "/photos/adele@localhost", "domain"},
		{"domain traversal", "/photos/adele@..", "domain"},
		{"path-like", "/photos/../../etc/passwd", "not a photo path"},
		{"deeper path", "/photos/adele@contoso.com/../../x", "not a photo path"},
		{"too long", "/photos/" + strings.Repeat("a", 250) + "@contoso.com", "longer"},
		{"unknown size", "/photos/" + adele + "?size=HR1024x1024", "unknown size"},
		{"size injection", "/photos/" + adele + "?size=HR96x96%0d%0aX:1", "unknown size"},
		{"sp unknown size", "/_layouts/15/userphoto.aspx?accountname=" + adele + "&size=XL", "unknown size"},
		{"sp no account", "/_layouts/15/userphoto.aspx?size=S", "accountname"},
		{"sp windows login", "/_layouts/15/userphoto.aspx?accountname=contoso%5Cadele", "accountname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.get(t, tt.target, proxy, "")
			body := string(readAll(t, resp))
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: status %d (%q), want 400", tt.target, resp.StatusCode, body)
			}
			if !strings.Contains(body, tt.want) || strings.Count(body, "\n") != 1 {
				t.Errorf("body %q: want one line containing %q", body, tt.want)
			}
		})
	}
	if n := e.photoCalls(); n != 0 {
		t.Fatalf("bad input reached the master %d times", n)
	}
}

func TestIdentityHeaderFromUntrustedPeerIsIgnored(t *testing.T) {
	e := newEnv(t, envOptions{}) // trigger: self
	// From an untrusted peer the header is ignored: the viewer is anonymous,
	// so the owner's photo is not pulled.
	resp := e.get(t, "/photos/"+adele, "10.1.2.3:5555", adele)
	if resp.StatusCode != http.StatusNotFound || e.photoCalls() != 0 {
		t.Fatalf("untrusted peer: %d with %d master calls; want 404 and none", resp.StatusCode, e.photoCalls())
	}
	resp = e.get(t, "/photos/edit", "[2001:db8::1]:5555", adele)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("edit from untrusted peer: %d, want 401", resp.StatusCode)
	}
	// The same header through the trusted proxy is the owner.
	resp = e.get(t, "/photos/"+adele, proxy, adele)
	if resp.StatusCode != http.StatusOK || e.photoCalls() != 1 {
		t.Fatalf("trusted proxy: %d with %d master calls", resp.StatusCode, e.photoCalls())
	}
	// A trusted proxy sending something that is not an address: that
	// request is anonymous, the stored photo is still served
	// (TestIdentityNotAnAddress has the rest).
	resp = e.get(t, "/photos/"+adele, proxy, "not an address")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("garbage identity from trusted proxy: %d, want 200 from the store", resp.StatusCode)
	}
}

func TestCachingHeadersAnd304(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, body := e.ownPhoto(t, adele, "hr64X64") // size case is forgiven
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag = %q, want a quoted strong validator", etag)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/jpeg" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length = %q for %d bytes", cl, len(body))
	}
	if got := maxAge(t, resp); got != 6*3600 {
		t.Errorf("max-age = %d, want the whole 6h timer", got)
	}

	e.clock.Advance(2 * time.Hour)
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		resp := e.get(t, "/photos/"+adele+"?size=HR64x64", proxy, adele, "If-None-Match", inm)
		if resp.StatusCode != http.StatusNotModified || len(readAll(t, resp)) != 0 {
			t.Fatalf("If-None-Match %s: %d, want an empty 304", inm, resp.StatusCode)
		}
		if got := maxAge(t, resp); got != 4*3600 {
			t.Errorf("max-age on 304 = %d, want the 4h the timer has left", got)
		}
	}
	resp = e.get(t, "/photos/"+adele+"?size=HR64x64", proxy, adele, "If-None-Match", `"other"`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("non-matching If-None-Match: %d", resp.StatusCode)
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls = %d, want 1", n)
	}
}

func TestDefaultSizesAndSharePointRoute(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		target string
		px     int
	}{
		{"/photos/" + adele, 96},
		{"/_layouts/15/userphoto.aspx?accountname=" + adele + "&size=S", 48},
		{"/_layouts/15/userphoto.aspx?accountname=" + adele + "&size=m", 96},
		{"/_layouts/15/userphoto.aspx?accountname=" + adele + "&size=L", 240},
		{"/_layouts/15/userphoto.aspx?accountname=i:0%23.f|membership|" + adele + "&size=L", 240},
		{"/_layouts/15/userphoto.aspx?username=" + strings.ToUpper(adele), 96},
	}
	for _, tt := range tests {
		resp := e.get(t, tt.target, proxy, adele)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tt.target, resp.StatusCode, body)
		}
		if px := jpegWidth(t, body); px != tt.px {
			t.Errorf("%s: %d px, want %d", tt.target, px, tt.px)
		}
	}
}

func TestPlaceholderForNoPhoto(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp := e.get(t, "/_layouts/15/userphoto.aspx?accountname="+nobody+"&size=S", proxy, nobody)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("no photo on the SharePoint route: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(body))
	if err != nil || img.Bounds().Dx() != 48 {
		t.Fatalf("placeholder: %v", err)
	}
	if got := maxAge(t, resp); got > 60 {
		t.Errorf("placeholder max-age = %d, want short", got)
	}
	resp = e.get(t, "/photos/"+nobody, proxy, nobody)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("no photo on the native route: %d, want 404", resp.StatusCode)
	}
}

func TestEdit(t *testing.T) {
	noPage := fmt.Errorf("settings for %s: %w", adele, photo.ErrNoEditURL)
	tests := []struct {
		name     string
		edit     web.EditURLer // nil: the env's, which knows ecpURL
		off      bool          // no EditURLer at all
		viewer   string
		want     int
		location string
		body     string
	}{
		{"signed in", nil, false, adele, http.StatusFound, ecpURL, ""},
		{"anonymous", nil, false, "", http.StatusUnauthorized, "", "sign in to change your photo\n"},
		{"no EditURLer", nil, true, adele, http.StatusServiceUnavailable, "", "photo import is off: photos are changed in Exchange\n"},
		{"settings not found", editErr(errors.New("autodiscover: InvalidUser")), false, adele, http.StatusBadGateway, "", "cannot find your photo settings in Exchange\n"},
		{"no upload page", editErr(noPage), false, adele, http.StatusBadGateway, "", "Exchange gave no photo upload page\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{web: func(o *web.Options) {
				if tt.edit != nil || tt.off {
					o.Edit = tt.edit
				}
			}})
			resp := e.get(t, "/photos/edit", proxy, tt.viewer)
			body := string(readAll(t, resp))
			if resp.StatusCode != tt.want || resp.Header.Get("Location") != tt.location {
				t.Fatalf("%d to %q (%q), want %d to %q", resp.StatusCode, resp.Header.Get("Location"), body, tt.want, tt.location)
			}
			if tt.body != "" && body != tt.body {
				t.Errorf("body %q, want %q", body, tt.body)
			}
			if tt.want == http.StatusFound && resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
			}
		})
	}
}

func editErr(err error) web.EditURLer {
	return web.EditURLFunc(func(context.Context, string) (string, error) { return "", err })
}

func TestMetadataAndHealth(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp := e.get(t, "/_layouts/15/metadata/json/1", "192.0.2.7:1000", "")
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK || string(body) != `{"realm":"test"}` {
		t.Fatalf("metadata: %d %q", resp.StatusCode, body)
	}
	if resp := e.get(t, "/healthz", "192.0.2.7:1000", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	if resp := e.get(t, "/nothing-here", "192.0.2.7:1000", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d", resp.StatusCode)
	}
	noMeta := web.New(e.engine, web.Options{})
	if resp := serve(t, noMeta, http.MethodGet, "/_layouts/15/metadata/json/1", proxy, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("metadata without a Metadata handler: %d, want 404", resp.StatusCode)
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		name  string
		ready func(context.Context) error
		want  int
		body  string
	}{
		{"no check", nil, http.StatusOK, "ready\n"},
		{"store answers", func(context.Context) error { return nil }, http.StatusOK, "ready\n"},
		{"store away", func(context.Context) error { return errors.New("redis: connection refused") }, http.StatusServiceUnavailable,
			"store unreachable; serving from memory and the master\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{web: func(o *web.Options) { o.Ready = tt.ready }})
			resp := e.get(t, "/readyz", proxy, "")
			if body := string(readAll(t, resp)); resp.StatusCode != tt.want || body != tt.body {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body, tt.want, tt.body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
		})
	}
}

func maxAge(t *testing.T, resp *http.Response) int {
	t.Helper()
	cc := resp.Header.Get("Cache-Control")
	_, v, ok := strings.Cut(cc, "max-age=")
	if !ok {
		t.Fatalf("Cache-Control = %q, no max-age", cc)
	}
	n, err := strconv.Atoi(strings.SplitN(v, ",", 2)[0])
	if err != nil {
		t.Fatalf("Cache-Control = %q: %v", cc, err)
	}
	return n
}

func jpegWidth(t *testing.T, b []byte) int {
	t.Helper()
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	return cfg.Width
}

func TestRequestIDs(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.get(t, "/healthz", proxy, "")
	b := e.get(t, "/healthz", proxy, "")
	if a.Header.Get("X-Request-Id") == "" || a.Header.Get("X-Request-Id") == b.Header.Get("X-Request-Id") {
		t.Fatalf("request ids %q, %q: want distinct ids", a.Header.Get("X-Request-Id"), b.Header.Get("X-Request-Id"))
	}
	if got := e.get(t, "/healthz", proxy, "", "X-Request-Id", "lb-7f3a.42").Header.Get("X-Request-Id"); got != "lb-7f3a.42" {
		t.Errorf("a proxy's plain id was replaced: %q", got)
	}
	// The id is on the request's log line.
	var logs bytes.Buffer
	h := web.New(e.engine, web.Options{Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	req := httptest.NewRequest(http.MethodGet, "/photos/nobody", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if id := rec.Header().Get("X-Request-Id"); id == "" || !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
		t.Errorf("log %q lacks the request id %q", logs.String(), id)
	}
	for _, bad := range []string{"a b", "x\u00e9", strings.Repeat("a", 65), "id\"; drop"} {
		if got := e.get(t, "/healthz", proxy, "", "X-Request-Id", bad).Header.Get("X-Request-Id"); got == bad {
			t.Errorf("id %q went into the logs as is", bad)
		}
	}
}

// TestQueryEscapes: the size parameter is read by hand on the hit path; an
// escaped value, an escaped key and a plus sign mean what url.ParseQuery
// says they mean.
func TestQueryEscapes(t *testing.T) {
	e := newEnv(t, envOptions{})
	etags := map[string]string{}
	for _, size := range []string{"HR48x48", "HR96x96"} {
		resp, _ := e.ownPhoto(t, adele, size)
		etags[size] = resp.Header.Get("ETag")
	}
	tests := []struct {
		name, query string
		status      int
		size        string // whose ETag the answer carries, on 200
	}{
		{"plain", "size=HR48x48", http.StatusOK, "HR48x48"},
		{"escaped value", "size=HR%34%38x48", http.StatusOK, "HR48x48"},
		{"escaped key", "%73ize=HR48x48", http.StatusOK, "HR48x48"},
		{"escaped key after another", "a=1&%73ize=HR48x48", http.StatusOK, "HR48x48"},
		{"plus in the key", "si+ze=HR48x48", http.StatusOK, "HR96x96"}, // not size: the default
		{"plus in the value", "size=HR48x48+", http.StatusBadRequest, ""},
		{"bad escape", "size=HR48%zz", http.StatusBadRequest, ""},
		{"first of two", "size=HR48x48&size=HR96x96", http.StatusOK, "HR48x48"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.get(t, "/photos/"+adele+"?"+tt.query, proxy, "")
			if body := readAll(t, resp); resp.StatusCode != tt.status {
				t.Fatalf("%d (%q), want %d", resp.StatusCode, body, tt.status)
			}
			if tt.status == http.StatusOK {
				if got := resp.Header.Get("ETag"); got != etags[tt.size] {
					t.Errorf("ETag %s, want %s's %s", got, tt.size, etags[tt.size])
				}
			}
		})
	}
}
