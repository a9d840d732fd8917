package web_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/websocket"

	"photosync/web"
)

// seen is one request as the application behind photosync received it.
type seen struct {
	method, uri string
	header      http.Header
	body        []byte
}

// testApp is the application photosync stands in front of: it records every
// request, streams /stream in chunks the test releases one by one, and
// echoes websocket messages on /ws.
type testApp struct {
	*httptest.Server
	got     chan seen
	release chan struct{}
}

func newTestApp(t *testing.T) *testApp {
	t.Helper()
	a := &testApp{got: make(chan seen, 16), release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) {
		a.got <- seen{method: "WS", uri: ws.Request().RequestURI, header: ws.Request().Header.Clone()}
		for {
			var msg string
			if websocket.Message.Receive(ws, &msg) != nil || websocket.Message.Send(ws, msg) != nil {
				return
			}
		}
	}))
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		a.got <- seen{method: r.Method, uri: r.RequestURI, header: r.Header.Clone()}
		w.Header().Set("Content-Type", "text/plain")
		for _, chunk := range []string{"first\n", "second\n", "third\n"} {
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-a.release:
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		a.got <- seen{method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), body: body}
		w.Header().Set("X-App", "yes")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("from the app"))
	})
	a.Server = httptest.NewServer(mux)
	t.Cleanup(a.Close)
	return a
}

// newSidecar serves e's photos in front of app, believing the identity
// header only from trusted.
func newSidecar(t *testing.T, e *env, app *testApp, trusted string) *httptest.Server {
	t.Helper()
	up, err := url.Parse(app.URL)
	if err != nil {
		t.Fatal(err)
	}
	h := web.New(e.engine, web.Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix(trusted)},
		Edit:           toECP,
		Upstream:       up,
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestSidecarPassesOtherRequestsUnchanged(t *testing.T) {
	e := newEnv(t, envOptions{})
	body := append([]byte("binary \x00\xff body\r\n"), bytes.Repeat([]byte("x"), 70000)...)
	tests := []struct {
		name, trusted string
		method, uri   string
		body          []byte
		wantIdentity  string
	}{
		{"post from trusted proxy", "127.0.0.1/32", http.MethodPost, "/api/things?a=1&b=%20two&a=3", body, adele},
		{"put from untrusted peer", "10.0.0.0/8", http.MethodPut, "/things/42/%E2%9C%93?x=%2F", body, ""},
		{"get", "127.0.0.1/32", http.MethodGet, "/", nil, adele},
		{"delete on a photo-like prefix", "127.0.0.1/32", http.MethodDelete, "/photosx/adele", nil, adele},
		{"patch a users path", "127.0.0.1/32", http.MethodPatch, "/users/42/profile", []byte(`{"a":1}`), adele},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newTestApp(t)
			srv := newSidecar(t, e, app, tt.trusted)
			req, err := http.NewRequestWithContext(ctx(t), tt.method, srv.URL+tt.uri, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			sent := http.Header{
				"X-Forwarded-Email": {adele},
				"X-Custom":          {"one", "two"},
				"Cookie":            {"session=abc; theme=dark"},
				"Authorization":     {"Bearer app-token"},
				"Content-Type":      {"application/octet-stream"},
				"Accept-Encoding":   {"identity"},
				"User-Agent":        {"sidecar-test/1"},
			}
			for k, v := range sent {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer := readAll(t, resp)
			if resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-App") != "yes" || string(answer) != "from the app" {
				t.Fatalf("answer %d %q, want the app's", resp.StatusCode, answer)
			}
			got := <-app.got
			if got.method != tt.method || got.uri != tt.uri || !bytes.Equal(got.body, tt.body) {
				t.Fatalf("app saw %s %s with %d bytes; want %s %s with %d", got.method, got.uri, len(got.body), tt.method, tt.uri, len(tt.body))
			}
			for k, v := range sent {
				if k == "X-Forwarded-Email" {
					continue
				}
				if g := got.header.Values(k); strings.Join(g, "\n") != strings.Join(v, "\n") {
					t.Errorf("header %s: app saw %q, sent %q", k, g, v)
				}
			}
			if g := got.header.Get("X-Forwarded-Email"); g != tt.wantIdentity {
				t.Errorf("identity header at the app: %q, want %q", g, tt.wantIdentity)
			}
		})
	}
}

func TestSidecarAnswersItsOwnRoutes(t *testing.T) {
	e := newEnv(t, envOptions{})
	app := newTestApp(t)
	srv := newSidecar(t, e, app, "127.0.0.1/32")
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/photos/" + adele, http.StatusOK},
		{http.MethodGet, "/photos/" + nobody, http.StatusNotFound},
		{http.MethodPost, "/photos/" + adele, http.StatusMethodNotAllowed},
		{http.MethodGet, "/_layouts/15/userphoto.aspx?accountname=" + adele + "&size=S", http.StatusOK},
		{http.MethodGet, "/EWS/Exchange.asmx/s/GetUserPhoto?email=" + adele + "&size=HR48x48", http.StatusOK},
		{http.MethodGet, "/users/" + adele + "/photos/48x48/$value", http.StatusOK},
		{http.MethodGet, "/photos/edit", http.StatusFound},
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(ctx(t), tt.method, srv.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-Email", adele)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		if resp.StatusCode != tt.want || resp.Header.Get("X-App") != "" {
			t.Errorf("%s %s: %d (X-App %q), want photosync's %d", tt.method, tt.path, resp.StatusCode, resp.Header.Get("X-App"), tt.want)
		}
	}
	select {
	case got := <-app.got:
		t.Fatalf("the app received %s %s, a photosync route", got.method, got.uri)
	default:
	}
}

func TestSidecarStreamsIncrementally(t *testing.T) {
	e := newEnv(t, envOptions{})
	app := newTestApp(t)
	srv := newSidecar(t, e, app, "127.0.0.1/32")

	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, srv.URL+"/stream?n=3", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := <-app.got; got.uri != "/stream?n=3" {
		t.Fatalf("app saw %q", got.uri)
	}
	// The app sends the next chunk only after the client has read the one
	// before: a proxy that buffered the response would never deliver it.
	r := bufio.NewReader(resp.Body)
	for i, want := range []string{"first\n", "second\n", "third\n"} {
		line, err := r.ReadString('\n')
		if err != nil || line != want {
			t.Fatalf("chunk %d: %q, %v; want %q", i, line, err, want)
		}
		app.release <- struct{}{}
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Fatalf("after the last chunk: %q, %v", rest, err)
	}
}

func TestSidecarWebsocketEcho(t *testing.T) {
	tests := []struct{ name, trusted, wantIdentity string }{
		{"trusted proxy", "127.0.0.1/32", adele},
		{"untrusted peer", "10.0.0.0/8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			app := newTestApp(t)
			srv := newSidecar(t, e, app, tt.trusted)

			cfg, err := websocket.NewConfig("ws"+strings.TrimPrefix(srv.URL, "http")+"/ws?room=7", srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Header = http.Header{"X-Forwarded-Email": {adele}}
			ws, err := cfg.DialContext(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			got := <-app.got
			if got.uri != "/ws?room=7" || got.header.Get("X-Forwarded-Email") != tt.wantIdentity {
				t.Fatalf("app's handshake: %q with identity %q, want /ws?room=7 with %q", got.uri, got.header.Get("X-Forwarded-Email"), tt.wantIdentity)
			}
			for _, msg := range []string{"hello", strings.Repeat("ü", 5000), "bye"} {
				if err := websocket.Message.Send(ws, msg); err != nil {
					t.Fatal(err)
				}
				var echo string
				if err := websocket.Message.Receive(ws, &echo); err != nil {
					t.Fatal(err)
				}
				if echo != msg {
					t.Fatalf("echo of %d bytes came back as %d bytes", len(msg), len(echo))
				}
			}
		})
	}
}
