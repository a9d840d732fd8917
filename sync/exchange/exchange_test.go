package exchange

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"photosync/autodiscover"
	"photosync/internal/testclock"
	"photosync/sync/backoff"
	"photosync/sync/photo"
)

// fixedLocator answers every owner with the same photos URL.
type fixedLocator string

func (f fixedLocator) Lookup(_ context.Context, email string) (autodiscover.Settings, error) {
	return autodiscover.Settings{Email: email, ExternalPhotosURL: string(f)}, nil
}

type fixedToken string

func (f fixedToken) Token(ctx context.Context, user, host string) (string, error) {
	return string(f) + "|" + user + "|" + host, nil
}

// newSource builds a Source for tests, failing t on an error.
func newSource(t *testing.T, opts Options) *Source {
	t.Helper()
	if opts.Locator == nil {
		opts.Locator = fixedLocator("https://mail.contoso.com/EWS/Exchange.asmx/s")
	}
	if opts.Tokens == nil {
		opts.Tokens = fixedToken("tok")
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func smallJPEG(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPhotoURL(t *testing.T) {
	tests := []struct {
		in, want string
		http     bool
		allowed  autodiscover.Hosts
		bad      string
	}{
		{in: "https://mail.contoso.com/EWS/Exchange.asmx/s", want: "https://mail.contoso.com/EWS/Exchange.asmx/s/GetUserPhoto?email=a%40contoso.com&size=HR96x96"},
		{in: "https://mail.contoso.com/EWS/Exchange.asmx/s/", want: "https://mail.contoso.com/EWS/Exchange.asmx/s/GetUserPhoto?email=a%40contoso.com&size=HR96x96"},
		{in: "https://mail.contoso.com/ews/exchange.asmx", want: "https://mail.contoso.com/ews/exchange.asmx/s/GetUserPhoto?email=a%40contoso.com&size=HR96x96"},
		{in: "http://mail.contoso.com/EWS/Exchange.asmx/s", http: true, want: "http://mail.contoso.com/EWS/Exchange.asmx/s/GetUserPhoto?email=a%40contoso.com&size=HR96x96"},
		{in: "http://mail.contoso.com/EWS/Exchange.asmx/s", bad: "allow_http"},
		{in: "javascript:alert(1)", bad: "not an absolute URL"},
		{in: "ftp://mail.contoso.com/s", bad: "want https"},
		{in: "https://user:pw@mail.contoso.com/s", bad: "credentials"},
		{in: "/EWS/Exchange.asmx/s", bad: "not an absolute URL"},
		{in: "", bad: "not an absolute URL"},
		{in: "https://mail.contoso.com/EWS/Exchange.asmx/s", allowed: autodiscover.Hosts{"*.contoso.com"}, want: "https://mail.contoso.com/EWS/Exchange.asmx/s/GetUserPhoto?email=a%40contoso.com&size=HR96x96"},
		{in: "https://mail.contoso.com.evil.net/EWS/Exchange.asmx/s", allowed: autodiscover.Hosts{"*.contoso.com"}, bad: "outside exchange.allowed_hosts"},
		{in: "https://10.0.0.9:8443/EWS/Exchange.asmx/s", allowed: autodiscover.Hosts{"contoso.com"}, bad: "outside exchange.allowed_hosts"},
	}
	for _, tt := range tests {
		got, err := PhotoURL(tt.in, "a@contoso.com", "HR96x96", tt.http, tt.allowed)
		if tt.bad != "" {
			if !errors.Is(err, autodiscover.ErrRefusedURL) || !strings.Contains(err.Error(), tt.bad) {
				t.Errorf("PhotoURL(%q) = %q, %v; want error with %q", tt.in, got, err, tt.bad)
			}
			if err != nil && strings.Contains(err.Error(), "pw") {
				t.Errorf("error leaks credentials: %v", err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("PhotoURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestFetch(t *testing.T) {
	jpg := smallJPEG(t)
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		etag       string
		maxBytes   int64
		wantStatus photo.Status
		wantErr    string
		wantIs     error
	}{
		{name: "photo", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("ETag", `"abc"`)
			w.Write(jpg)
		}, wantStatus: photo.StatusPhoto},
		{name: "not modified", etag: "abc", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("If-None-Match") != `"abc"` {
				http.Error(w, "no etag", 400)
				return
			}
			w.WriteHeader(http.StatusNotModified)
		}, wantStatus: photo.StatusNotModified},
		{name: "no photo", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, wantStatus: photo.StatusNoPhoto},
		{name: "blank photo", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.WriteHeader(http.StatusOK)
		}, wantStatus: photo.StatusDeleted},
		{name: "html body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write([]byte("<html><body>login</body></html>"))
		}, wantErr: "not an image", wantIs: photo.ErrNotImage},
		{name: "wrong content type", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write(jpg)
		}, wantErr: "not an image", wantIs: photo.ErrNotImage},
		{name: "too large announced", maxBytes: 2048, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write(append(jpg, make([]byte, 4096)...))
		}, wantErr: "larger than the limit", wantIs: photo.ErrTooLarge},
		{name: "too large streamed", maxBytes: 2048, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.(http.Flusher).Flush() // chunked: no Content-Length
			w.Write(append(jpg, make([]byte, 4096)...))
		}, wantErr: "larger than the limit", wantIs: photo.ErrTooLarge},
		{name: "truncated", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Content-Length", strconv.Itoa(len(jpg)+100))
			w.Write(jpg)
		}, wantErr: "exchange: "},
		{name: "unauthorized", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="x@*"`)
			w.Header().Set("x-ms-diagnostics", "2000001;reason=\"The token has expired.\"\xff")
			w.WriteHeader(401)
		}, wantErr: `exchange: GetUserPhoto answered 401 Unauthorized; WWW-Authenticate: Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="x@*"; x-ms-diagnostics: 2000001;reason="The token has expired."?`,
			wantIs: ErrUnauthorized},
		{name: "redirect not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
		}, wantErr: "answered 302"},
		{name: "busy", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(503)
		}, wantErr: "Retry-After: 30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotAuth, gotQuery string
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotAuth, gotQuery = r.Header.Get("Authorization"), r.URL.RawQuery
				tt.handler(w, r)
			}))
			defer srv.Close()
			s := newSource(t, Options{Locator: fixedLocator(srv.URL + "/EWS/Exchange.asmx/s"), Client: srv.Client(), MaxBytes: tt.maxBytes})
			res, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", tt.etag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Fatalf("err = %v, want errors.Is %v", err, tt.wantIs)
				}
				if strings.Contains(err.Error(), "master:") {
					t.Errorf("err = %v: still says master", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.wantStatus {
				t.Fatalf("status = %v, want %v", res.Status, tt.wantStatus)
			}
			host := strings.TrimPrefix(srv.URL, "https://")
			if gotAuth != "Bearer tok|a@contoso.com|"+host {
				t.Errorf("Authorization = %q", gotAuth)
			}
			if gotQuery != "email=a%40contoso.com&size=HR96x96" {
				t.Errorf("query = %q", gotQuery)
			}
			switch tt.wantStatus {
			case photo.StatusPhoto:
				if res.ETag != "abc" || res.ContentType != "image/jpeg" || !bytes.Equal(res.Body, jpg) {
					t.Errorf("result = etag %q type %q %d bytes", res.ETag, res.ContentType, len(res.Body))
				}
			case photo.StatusNotModified:
				if res.ETag != tt.etag {
					t.Errorf("not modified with ETag %q, want %q", res.ETag, tt.etag)
				}
			}
		})
	}
}

// TestNotModifiedWithoutETag checks that a 304 to a request that sent no
// ETag is an error, not a revalidation.
func TestNotModifiedWithoutETag(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotModified)
	}))
	defer srv.Close()
	s := newSource(t, Options{Locator: fixedLocator(srv.URL + "/s"), Client: srv.Client()})
	if _, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", ""); !errors.Is(err, photo.ErrBadAnswer) {
		t.Fatalf("Photo = %v, want ErrBadAnswer", err)
	}
	if _, err := s.Check(context.Background(), "a@contoso.com", "HR96x96"); !errors.Is(err, photo.ErrBadAnswer) {
		t.Fatalf("Check = %v, want ErrBadAnswer", err)
	}
}

func TestCheck(t *testing.T) {
	jpg := smallJPEG(t)
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		want    PhotoInfo
	}{
		{"photo", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", `W/"v1"`)
			w.Write(jpg)
		}, PhotoInfo{Status: photo.StatusPhoto, Size: len(jpg), ContentType: "image/jpeg", ETag: "v1"}},
		{"no photo", http.NotFound, PhotoInfo{Status: photo.StatusNoPhoto}},
		{"blank photo", func(w http.ResponseWriter, r *http.Request) {}, PhotoInfo{Status: photo.StatusDeleted}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewTLSServer(tt.handler)
			defer srv.Close()
			s := newSource(t, Options{Locator: fixedLocator(srv.URL + "/s"), Client: srv.Client()})
			got, err := s.Check(context.Background(), "a@contoso.com", "HR96x96")
			if err != nil || got != tt.want {
				t.Fatalf("Check = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts Options
		want []string
	}{
		{"empty", Options{}, []string{"no Locator", "no token source"}},
		{"negative", Options{Locator: fixedLocator("x"), Tokens: fixedToken("t"), MaxBytes: -1, MaxConcurrency: -1, MaxBackoff: -1},
			[]string{"negative MaxBytes", "negative MaxConcurrency", "negative MaxBackoff"}},
		{"bad hosts", Options{Locator: fixedLocator("x"), Tokens: fixedToken("t"), AllowedHosts: autodiscover.Hosts{"*.1.2.3.4"}},
			[]string{"allowed hosts"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) || !strings.HasPrefix(err.Error(), "exchange: ") {
					t.Errorf("New = %v, want %q", err, w)
				}
			}
		})
	}

	// New copies what it is given: the caller's client keeps its redirect
	// policy.
	client := &http.Client{}
	if _, err := New(Options{Locator: fixedLocator("x"), Tokens: fixedToken("t"), Client: client}); err != nil {
		t.Fatal(err)
	}
	if client.CheckRedirect != nil {
		t.Error("New changed the caller's http.Client")
	}
}

func TestRefusesUntrustedTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	defer srv.Close()
	s := newSource(t, Options{Locator: fixedLocator(srv.URL + "/s"), Client: &http.Client{}}) // system roots only
	_, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", "")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
}

func TestBoundsConcurrentCalls(t *testing.T) {
	var inFlight, peak atomic.Int32
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		arrived <- struct{}{}
		<-release
		http.NotFound(w, r)
	}))
	defer srv.Close()
	s := newSource(t, Options{Locator: fixedLocator(srv.URL + "/s"), Client: srv.Client(), MaxConcurrency: 2})
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", "")
			errs <- err
		}()
	}
	<-arrived
	<-arrived // two calls are in; the other three must wait for a slot
	select {
	case <-arrived:
		t.Fatal("a third call reached Exchange while two were in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrent calls = %d, want 2", p)
	}
}

func TestServerBusy(t *testing.T) {
	busyFault := []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>` +
		`<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>` +
		`<detail><t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">` +
		`<t:Value Name="BackOffMilliseconds">297749</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>`)
	busy, wait := serverBusy(busyFault)
	if !busy || wait != 297749*time.Millisecond {
		t.Fatalf("serverBusy = %v, %v", busy, wait)
	}
	if busy, _ := serverBusy([]byte("<html>oops</html>")); busy {
		t.Fatal("an HTML 500 read as ErrorServerBusy")
	}

	// A 500 with the fault, end to end: the host is backed off for the
	// period asked.
	clock := testclock.New()
	calls := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		w.WriteHeader(http.StatusInternalServerError)
		w.Write(busyFault)
	}))
	defer srv.Close()
	s := newSource(t, Options{Locator: fixedLocator(srv.URL + "/s"), Client: srv.Client(), Now: clock.Now})
	var se *StatusError
	if _, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", ""); !errors.As(err, &se) || !se.ServerBusy {
		t.Fatalf("first call: %v, want ErrorServerBusy", err)
	}
	var be *backoff.Error
	if _, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", ""); !errors.As(err, &be) || !be.Until.Equal(clock.Now().Add(wait)) {
		t.Fatalf("second call: %v, want a back-off until %v", err, clock.Now().Add(wait))
	}
	if calls != 1 || s.BackedOff() != 1 {
		t.Fatalf("calls = %d, backed off = %d; want 1, 1", calls, s.BackedOff())
	}
	clock.Advance(wait)
	if s.BackedOff() != 0 {
		t.Fatal("the back-off outlived its period")
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want time.Duration // 0: no back-off
	}{
		{"503 Retry-After", &StatusError{Code: 503, RetryAfter: "120"}, 2 * time.Minute},
		{"429 no Retry-After", &StatusError{Code: 429}, backoff.DefaultBusy},
		{"server busy", &StatusError{Code: 500, ServerBusy: true, BackOff: 297 * time.Second}, 297 * time.Second},
		{"server busy, no period", &StatusError{Code: 500, ServerBusy: true}, backoff.DefaultBusy},
		{"server busy, capped", &StatusError{Code: 500, ServerBusy: true, BackOff: 5 * time.Hour}, 15 * time.Minute},
		{"plain 500", &StatusError{Code: 500}, 0},
		{"401", &StatusError{Code: 401}, 0},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, backoff.ConnectFailure},
		{"our deadline", context.DeadlineExceeded, 0},
		{"not an image", photo.ErrNotImage, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := testclock.New()
			c := backoff.Circuit{Max: 15 * time.Minute, Now: clock.Now}
			c.Record("mail.contoso.com", tt.err)
			err := c.Check("mail.contoso.com")
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Check = %v, want no back-off", err)
				}
				return
			}
			var be *backoff.Error
			if !errors.As(err, &be) || !errors.Is(err, backoff.ErrBackoff) || !be.Until.Equal(clock.Now().Add(tt.want)) {
				t.Fatalf("Check = %v, want a back-off until %v", err, clock.Now().Add(tt.want))
			}
		})
	}
	if !errors.Is(&StatusError{Code: 401}, ErrUnauthorized) || errors.Is(&StatusError{Code: 403}, ErrUnauthorized) {
		t.Error("ErrUnauthorized matches other than a 401")
	}
}

func TestBacksOffAfterConnectionFailure(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	url, client := srv.URL, srv.Client()
	srv.Close() // nothing listens there now
	s := newSource(t, Options{Locator: fixedLocator(url + "/s"), Client: client})
	_, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", "")
	if err == nil || errors.Is(err, backoff.ErrBackoff) {
		t.Fatalf("first call: %v, want a connection error", err)
	}
	_, err = s.Photo(context.Background(), "a@contoso.com", "HR96x96", "")
	if !errors.Is(err, backoff.ErrBackoff) {
		t.Fatalf("second call: %v, want ErrBackoff without dialling", err)
	}
	if s.BackedOff() != 1 {
		t.Fatalf("BackedOff = %d, want 1", s.BackedOff())
	}
}

// TestRefusesHostOutsideAllowed checks that the source neither mints a
// token for nor calls a host outside AllowedHosts, and calls it once allowed.
func TestRefusesHostOutsideAllowed(t *testing.T) {
	for _, pattern := range []string{"", "127.0.0.1", "127.0.0.1:PORT"} {
		calls := 0
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			w.WriteHeader(http.StatusNotFound)
		}))
		allowed := autodiscover.Hosts{"*.contoso.com"}
		if pattern != "" { // without its port, 127.0.0.1 allows 443 only
			allowed = append(allowed, strings.ReplaceAll(pattern, "PORT", strings.TrimPrefix(srv.URL, "https://127.0.0.1:")))
		}
		minted := 0
		tokens := tokenFunc(func(context.Context, string, string) (string, error) { minted++; return "tok", nil })
		s := newSource(t, Options{Locator: fixedLocator(srv.URL + "/EWS/Exchange.asmx/s"), Tokens: tokens, Client: srv.Client(), AllowedHosts: allowed})
		_, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", "")
		srv.Close()
		if !strings.Contains(pattern, "PORT") {
			if !errors.Is(err, autodiscover.ErrRefusedURL) || !strings.Contains(err.Error(), "outside exchange.allowed_hosts") || calls != 0 || minted != 0 {
				t.Errorf("allowed %v: Photo = %v after %d calls, %d tokens; want refused before any", allowed, err, calls, minted)
			}
			continue
		}
		if err != nil || calls != 1 {
			t.Errorf("allowed %v: Photo = %v after %d calls; want one call", allowed, err, calls)
		}
	}
}

type tokenFunc func(ctx context.Context, user, host string) (string, error)

func (f tokenFunc) Token(ctx context.Context, user, host string) (string, error) {
	return f(ctx, user, host)
}

// cachingLocator is a Locator with a visible cache, as *autodiscover.Client.
type cachingLocator struct {
	fixedLocator
	cached  map[string]autodiscover.Cached
	forgot  []string
	lookups int
}

func (c *cachingLocator) Lookup(ctx context.Context, email string) (autodiscover.Settings, error) {
	c.lookups++
	if got, ok := c.cached[email]; ok {
		return got.Settings, got.Err
	}
	return c.fixedLocator.Lookup(ctx, email)
}

func (c *cachingLocator) Peek(email string) (autodiscover.Cached, bool) {
	got, ok := c.cached[email]
	return got, ok
}

func (c *cachingLocator) Forget(email string) { c.forgot = append(c.forgot, email) }

func TestLookupCache(t *testing.T) {
	until := testclock.Start.Add(time.Hour)
	loc := &cachingLocator{fixedLocator: "https://mail.contoso.com/s", cached: map[string]autodiscover.Cached{
		"a@contoso.com": {Settings: autodiscover.Settings{ExternalPhotosURL: "https://mail.contoso.com/s",
			ExternalEcpPhotoURL: "https://mail.contoso.com/ecp/PersonalSettings/EditAccount.aspx?chgPhoto=1",
			Redirects:           []string{"RedirectAddress a@contoso.com"}}, Expires: until},
		"b@contoso.com": {Err: errors.New("autodiscover: invalid user"), Expires: until},
	}}
	s := newSource(t, Options{Locator: loc})
	got, ok := s.CachedLookup("a@contoso.com")
	want := photo.Lookup{PhotosURL: "https://mail.contoso.com/s", EcpPhotoURL: "https://mail.contoso.com/ecp/PersonalSettings/EditAccount.aspx?chgPhoto=1",
		Redirects: []string{"RedirectAddress a@contoso.com"}, CachedUntil: until}
	if !ok || got.PhotosURL != want.PhotosURL || got.EcpPhotoURL != want.EcpPhotoURL || len(got.Redirects) != 1 || !got.CachedUntil.Equal(until) || got.Error != "" {
		t.Errorf("CachedLookup(a) = %+v, %v; want %+v", got, ok, want)
	}
	if got, ok := s.CachedLookup("b@contoso.com"); !ok || got.Error != "autodiscover: invalid user" {
		t.Errorf("CachedLookup(b) = %+v, %v; want the remembered error", got, ok)
	}
	if _, ok := s.CachedLookup("c@contoso.com"); ok || loc.lookups != 0 {
		t.Errorf("CachedLookup(c) found something, or asked Exchange (%d lookups)", loc.lookups)
	}
	s.ForgetLookup("a@contoso.com")
	if len(loc.forgot) != 1 || loc.forgot[0] != "a@contoso.com" {
		t.Errorf("forgot %v", loc.forgot)
	}

	edit, err := s.EditURL(context.Background(), "a@contoso.com")
	if err != nil || edit != want.EcpPhotoURL {
		t.Errorf("EditURL = %q, %v", edit, err)
	}
	if _, err := s.EditURL(context.Background(), "c@contoso.com"); !errors.Is(err, autodiscover.ErrNoEcpPhotoURL) || !errors.Is(err, photo.ErrNoEditURL) {
		t.Errorf("EditURL without ExternalEcpPhotoUrl = %v, want ErrNoEcpPhotoURL and photo.ErrNoEditURL", err)
	}

	// A Locator without a visible cache: nothing to show or forget.
	plain := newSource(t, Options{})
	if _, ok := plain.CachedLookup("a@contoso.com"); ok {
		t.Error("CachedLookup found something without a cache")
	}
	plain.ForgetLookup("a@contoso.com")
}

// TestNotModifiedOnlyForTheValidatorSent: a 304 naming another entity-tag
// than the one sent, or one that does not parse, is a broken answer.
func TestNotModifiedOnlyForTheValidatorSent(t *testing.T) {
	tests := []struct {
		etag string // the 304's ETag header
		ok   bool
	}{
		{"", true},
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"other"`, false},
		{`*`, false},
		{`", *, "`, false},
	}
	for _, tt := range tests {
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tt.etag != "" {
				w.Header().Set("ETag", tt.etag)
			}
			w.WriteHeader(http.StatusNotModified)
		}))
		tokens := tokenFunc(func(context.Context, string, string) (string, error) { return "tok", nil })
		s := newSource(t, Options{Locator: fixedLocator(srv.URL + "/EWS/Exchange.asmx/s"), Tokens: tokens, Client: srv.Client()})
		res, err := s.Photo(context.Background(), "a@contoso.com", "HR96x96", "abc")
		srv.Close()
		if tt.ok != (err == nil && res.Status == photo.StatusNotModified) {
			t.Errorf("304 with ETag %q: %v, %v; want accepted %v", tt.etag, res.Status, err, tt.ok)
		}
		if !tt.ok && !errors.Is(err, photo.ErrBadAnswer) {
			t.Errorf("304 with ETag %q: %v, want ErrBadAnswer", tt.etag, err)
		}
	}
}
