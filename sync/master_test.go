package sync

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
)

type fixedToken string

func (f fixedToken) Token(ctx context.Context, user, host string) (string, error) {
	return string(f) + "|" + user + "|" + host, nil
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
			if err == nil || !strings.Contains(err.Error(), tt.bad) {
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

func TestMasterFetch(t *testing.T) {
	photo := smallJPEG(t)
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		etag       string
		maxBytes   int64
		wantStatus int
		wantErr    string
	}{
		{name: "photo", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("ETag", `"abc"`)
			w.Write(photo)
		}, wantStatus: 200},
		{name: "not modified", etag: "abc", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("If-None-Match") != `"abc"` {
				http.Error(w, "no etag", 400)
				return
			}
			w.WriteHeader(http.StatusNotModified)
		}, wantStatus: 304},
		{name: "no photo", handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, wantStatus: 404},
		{name: "html body", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write([]byte("<html><body>login</body></html>"))
		}, wantErr: "not an image"},
		{name: "wrong content type", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write(photo)
		}, wantErr: "not an image"},
		{name: "too large announced", maxBytes: 2048, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write(append(photo, make([]byte, 4096)...))
		}, wantErr: "larger than the limit"},
		{name: "too large streamed", maxBytes: 2048, handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.(http.Flusher).Flush() // chunked: no Content-Length
			w.Write(append(photo, make([]byte, 4096)...))
		}, wantErr: "larger than the limit"},
		{name: "truncated", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			w.Header().Set("Content-Length", strconv.Itoa(len(photo)+100))
			w.Write(photo)
		}, wantErr: "master: "},
		{name: "unauthorized", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="x@*"`)
			w.Header().Set("x-ms-diagnostics", "2000001;reason=\"The token has expired.\"\u00e9")
			w.WriteHeader(401)
		}, wantErr: `answered 401 Unauthorized; WWW-Authenticate: Bearer client_id="00000002-0000-0ff1-ce00-000000000000", trusted_issuers="x@*"; x-ms-diagnostics: 2000001;reason="The token has expired."??`},
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
			m := &Master{Client: srv.Client(), Tokens: fixedToken("tok"), MaxBytes: tt.maxBytes}
			res, err := m.Fetch(context.Background(), srv.URL+"/EWS/Exchange.asmx/s", "a@contoso.com", "HR96x96", tt.etag)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.status, tt.wantStatus)
			}
			host := strings.TrimPrefix(srv.URL, "https://")
			if gotAuth != "Bearer tok|a@contoso.com|"+host {
				t.Errorf("Authorization = %q", gotAuth)
			}
			if gotQuery != "email=a%40contoso.com&size=HR96x96" {
				t.Errorf("query = %q", gotQuery)
			}
			if tt.wantStatus == 200 && (res.etag != "abc" || res.contentType != "image/jpeg" || !bytes.Equal(res.body, photo)) {
				t.Errorf("fetched = etag %q type %q %d bytes", res.etag, res.contentType, len(res.body))
			}
		})
	}
}

func TestMasterRefusesUntrustedTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	srv.StartTLS()
	defer srv.Close()
	m := &Master{Client: &http.Client{}, Tokens: fixedToken("tok")} // system roots only
	_, err := m.Fetch(context.Background(), srv.URL+"/s", "a@contoso.com", "HR96x96", "")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
}

func TestMasterBoundsConcurrentCalls(t *testing.T) {
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
	m := &Master{Client: srv.Client(), Tokens: fixedToken("tok"), MaxConcurrency: 2}
	errs := make(chan error, 5)
	for i := 0; i < 5; i++ {
		go func() {
			_, err := m.Fetch(context.Background(), srv.URL+"/s", "a@contoso.com", "HR96x96", "")
			errs <- err
		}()
	}
	<-arrived
	<-arrived // two calls are in; the other three must wait for a slot
	select {
	case <-arrived:
		t.Fatal("a third call reached the master while two were in flight")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	for i := 0; i < 5; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrent calls = %d, want 2", p)
	}
}

func TestCircuit(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	busyFault := []byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>` +
		`<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>` +
		`<detail><t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">` +
		`<t:Value Name="BackOffMilliseconds">297749</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>`)
	busy, backoff := serverBusy(busyFault)
	if !busy || backoff != 297749*time.Millisecond {
		t.Fatalf("serverBusy = %v, %v", busy, backoff)
	}
	if busy, _ := serverBusy([]byte("<html>oops</html>")); busy {
		t.Fatal("an HTML 500 read as ErrorServerBusy")
	}

	tests := []struct {
		name string
		err  error
		want time.Duration // 0: no back-off
	}{
		{"503 Retry-After", &StatusError{Code: 503, RetryAfter: "120"}, 2 * time.Minute},
		{"429 no Retry-After", &StatusError{Code: 429}, defaultBusy},
		{"server busy", &StatusError{Code: 500, ServerBusy: true, BackOff: backoff}, backoff},
		{"server busy, capped", &StatusError{Code: 500, ServerBusy: true, BackOff: 5 * time.Hour}, 15 * time.Minute},
		{"plain 500", &StatusError{Code: 500}, 0},
		{"401", &StatusError{Code: 401}, 0},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, connectBackoff},
		{"our deadline", context.DeadlineExceeded, 0},
		{"not an image", ErrNotImage, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c circuit
			c.record("mail.contoso.com", tt.err, now, 15*time.Minute)
			err := c.check("mail.contoso.com", now)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("check = %v, want no back-off", err)
				}
				return
			}
			var be *BackoffError
			if !errors.As(err, &be) || !errors.Is(err, ErrBackoff) || !be.Until.Equal(now.Add(tt.want)) {
				t.Fatalf("check = %v, want a back-off until %v", err, now.Add(tt.want))
			}
			if c.check("other.contoso.com", now) != nil {
				t.Fatal("the back-off leaked to another master")
			}
			if c.check("mail.contoso.com", now.Add(tt.want)) != nil {
				t.Fatal("the back-off outlived its period")
			}
		})
	}

	// Connection failures in a row back off longer each time; a good answer
	// closes the circuit.
	var c circuit
	refused := &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	for i, want := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		c.record("mail", refused, now, time.Hour)
		var be *BackoffError
		if err := c.check("mail", now); !errors.As(err, &be) || be.Until.Sub(now) != want {
			t.Fatalf("failure %d: %v, want %v", i+1, err, want)
		}
	}
	c.record("mail", nil, now, time.Hour)
	if err := c.check("mail", now); err != nil {
		t.Fatalf("after a good answer: %v", err)
	}
}

func TestMasterBacksOffAfterConnectionFailure(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	url, client := srv.URL, srv.Client()
	srv.Close() // nothing listens there now
	m := &Master{Client: client, Tokens: fixedToken("tok")}
	_, err := m.Fetch(context.Background(), url+"/s", "a@contoso.com", "HR96x96", "")
	if err == nil || errors.Is(err, ErrBackoff) {
		t.Fatalf("first call: %v, want a connection error", err)
	}
	_, err = m.Fetch(context.Background(), url+"/s", "a@contoso.com", "HR96x96", "")
	if !errors.Is(err, ErrBackoff) {
		t.Fatalf("second call: %v, want ErrBackoff without dialling", err)
	}
}

// TestFetchRefusesHostOutsideAllowed checks that the master neither mints a
// token for nor calls a host outside AllowedHosts, and calls it once allowed.
func TestFetchRefusesHostOutsideAllowed(t *testing.T) {
	for _, allowed := range []autodiscover.Hosts{{"*.contoso.com"}, {"*.contoso.com", "127.0.0.1"}} {
		calls := 0
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			w.WriteHeader(http.StatusNotFound)
		}))
		m := &Master{Client: srv.Client(), Tokens: fixedToken("tok"), AllowedHosts: allowed}
		_, err := m.Fetch(context.Background(), srv.URL+"/EWS/Exchange.asmx/s", "a@contoso.com", "HR96x96", "")
		srv.Close()
		if len(allowed) == 1 {
			if err == nil || !strings.Contains(err.Error(), "outside exchange.allowed_hosts") || calls != 0 {
				t.Errorf("allowed %v: Fetch = %v after %d calls; want refused before any call", allowed, err, calls)
			}
			continue
		}
		if err != nil || calls != 1 {
			t.Errorf("allowed %v: Fetch = %v after %d calls; want one call", allowed, err, calls)
		}
	}
}
