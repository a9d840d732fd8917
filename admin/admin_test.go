package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"photosync/admin"
	"photosync/internal/testclock"
	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/photo"
)

const (
	token  = "s3cret-admin-token"
	adele  = "adele.vance@contoso.com"
	nobody = "lee.gu@contoso.com" // no photo at the source
	broken = "broken@contoso.com" // the source fails for this one
)

// env is the admin API on a real engine and store, with one in-process
// photo source.
type env struct {
	clock   *testclock.Clock
	engine  *psync.Engine
	store   store.Store
	calls   atomic.Int64
	handler http.Handler
	metrics *admin.Metrics
}

type envOptions struct {
	token    string // default: token; "-" for none
	noImport bool
	ready    func(context.Context) error
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{clock: testclock.New()}
	b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.store = b
	jpg := tinyJPEG(t)
	src := photo.Func{SourceName: "exchange", Func: func(ctx context.Context, owner, size, etag string) (photo.Result, error) {
		e.calls.Add(1)
		switch owner {
		case nobody:
			return photo.Result{Status: photo.StatusNoPhoto}, nil
		case broken:
			return photo.Result{}, errors.New("exchange: 503 Service Unavailable")
		}
		if etag == "v1" {
			return photo.Result{Status: photo.StatusNotModified, ETag: "v1"}, nil
		}
		return photo.Result{Status: photo.StatusPhoto, Body: jpg, ETag: "v1"}, nil
	}}
	e.engine, err = psync.New(psync.Options{
		Store:           e.store,
		Sources:         []photo.Source{src},
		ImportEnabled:   !o.noImport,
		Expiration:      6 * time.Hour,
		ErrorExpiration: time.Hour,
		Trigger:         psync.TriggerSelf,
		PullTimeout:     20 * time.Second,
		ColdDeadline:    20 * time.Second,
		Now:             e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok := o.token
	switch tok {
	case "":
		tok = token
	case "-":
		tok = ""
	}
	e.metrics = admin.NewMetrics()
	e.metrics.Export(e.engine.Stats())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e.handler = admin.NewHandler(ctx, admin.Options{
		Engine:    e.engine,
		Metrics:   e.metrics,
		Token:     tok,
		StoreName: "embedded",
		Ready:     o.ready,
	})
	return e
}

func tinyJPEG(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// do sends method target with body, with the bearer token when auth is set.
func (e *env) do(t *testing.T, method, target, auth, body string) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	resp := rec.Result()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("answer %q is not JSON: %v", b, err)
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name, token  string // the configured token ("-": none)
		method, path string
		auth         string
		want         int
	}{
		{"inspect with the token", "", "GET", "/admin/photos/" + adele, "Bearer " + token, http.StatusOK},
		{"inspect without a token", "", "GET", "/admin/photos/" + adele, "", http.StatusUnauthorized},
		{"inspect with a wrong token", "", "GET", "/admin/photos/" + adele, "Bearer nope", http.StatusUnauthorized},
		{"token not as bearer", "", "GET", "/admin/photos/" + adele, token, http.StatusUnauthorized},
		{"none configured refuses all", "-", "GET", "/admin/photos/" + adele, "Bearer ", http.StatusUnauthorized},
		{"forget without a token", "", "DELETE", "/admin/photos/" + adele, "", http.StatusUnauthorized},
		{"refresh without a token", "", "POST", "/admin/photos/" + adele + "/refresh", "", http.StatusUnauthorized},
		{"warm without a token", "", "POST", "/admin/warm", "", http.StatusUnauthorized},
		{"unknown admin route, no token", "", "GET", "/admin/nothing", "", http.StatusUnauthorized},
		{"unknown admin route", "", "GET", "/admin/nothing", "Bearer " + token, http.StatusNotFound},
		{"pprof without a token", "", "GET", "/debug/pprof/", "", http.StatusUnauthorized},
		{"pprof with the token", "", "GET", "/debug/pprof/", "Bearer " + token, http.StatusOK},
		{"metrics need none", "", "GET", "/metrics", "", http.StatusOK},
		{"readyz needs none", "-", "GET", "/readyz", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{token: tt.token})
			resp, body := e.do(t, tt.method, tt.path, tt.auth, "")
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: %d (%q), want %d", tt.method, tt.path, resp.StatusCode, body, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="photosync admin"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
				var ans struct{ Error string }
				if decode(t, body, &ans); ans.Error == "" {
					t.Errorf("401 without a reason: %q", body)
				}
			}
		})
	}
	if n := newEnv(t, envOptions{}).calls.Load(); n != 0 {
		t.Fatalf("the source was asked %d times", n)
	}
}

func TestInspectAndForget(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.engine.Photo(context.Background(), adele, "HR96x96", adele); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Store string
		Owner string
		Sizes []struct {
			Size, State, Source, Timer string
			Stored                     bool
			Bytes                      int
		}
	}
	resp, body := e.do(t, "GET", "/admin/photos/"+strings.ToUpper(adele), "Bearer "+token, "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("inspect: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
	}
	decode(t, body, &rep)
	if rep.Store != "embedded" || rep.Owner != adele || len(rep.Sizes) != len(photo.Sizes) {
		t.Fatalf("inspect: store %q owner %q with %d sizes", rep.Store, rep.Owner, len(rep.Sizes))
	}
	for _, s := range rep.Sizes {
		if got, want := s.Stored, s.Size == "HR96x96"; got != want {
			t.Errorf("%s stored %v, want %v", s.Size, got, want)
		}
		if s.Size == "HR96x96" && (s.Source != "exchange" || s.Bytes == 0) {
			t.Errorf("%s: source %q, %d bytes", s.Size, s.Source, s.Bytes)
		}
	}

	resp, body = e.do(t, "DELETE", "/admin/photos/"+adele, "Bearer "+token, "")
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("forget: %d %q, want an empty 204", resp.StatusCode, body)
	}
	if _, err := e.store.Get(context.Background(), store.Key{Owner: adele, Size: "HR96x96"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after forget the store has: %v", err)
	}

	for _, m := range []string{"GET", "DELETE"} {
		resp, body := e.do(t, m, "/admin/photos/not-an-address", "Bearer "+token, "")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "not an email") {
			t.Errorf("%s of a bad address: %d %q, want 400", m, resp.StatusCode, body)
		}
	}
}

func TestRefresh(t *testing.T) {
	tests := []struct {
		name     string
		noImport bool
		prepare  func(e *env) // before the request
		target   string
		want     int
		outcome  string // the answer's outcome; "" when it is an error
		errSub   string
	}{
		{"pulls", false, nil, "/admin/photos/" + adele + "/refresh", http.StatusOK, "pulled", ""},
		{"skips a running timer", false, func(e *env) { e.refresh(adele, "HR96x96") }, "/admin/photos/" + adele + "/refresh", http.StatusOK, "skipped", ""},
		{"force asks anyway", false, func(e *env) { e.refresh(adele, "HR48x48") }, "/admin/photos/" + adele + "/refresh?size=hr48x48&force=1", http.StatusOK, "not-modified", ""},
		{"no photo", false, nil, "/admin/photos/" + nobody + "/refresh", http.StatusOK, "no-photo", ""},
		{"failed", false, nil, "/admin/photos/" + broken + "/refresh", http.StatusOK, "failed", "503"},
		{"unknown size", false, nil, "/admin/photos/" + adele + "/refresh?size=HR1x1", http.StatusBadRequest, "", "unknown size"},
		{"bad address", false, nil, "/admin/photos/adele/refresh", http.StatusBadRequest, "", "not an email"},
		{"import disabled", true, nil, "/admin/photos/" + adele + "/refresh", http.StatusConflict, "", "disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{noImport: tt.noImport})
			if tt.prepare != nil {
				tt.prepare(e)
			}
			resp, body := e.do(t, "POST", tt.target, "Bearer "+token, "")
			if resp.StatusCode != tt.want {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, tt.want)
			}
			var ans map[string]string
			decode(t, body, &ans)
			if ans["outcome"] != tt.outcome || !strings.Contains(ans["error"], tt.errSub) {
				t.Fatalf("answer %v: want outcome %q, error containing %q", ans, tt.outcome, tt.errSub)
			}
			if tt.outcome != "" && (ans["owner"] == "" || ans["size"] == "") {
				t.Errorf("answer %v lacks owner or size", ans)
			}
		})
	}
}

// refresh pulls owner's photo at size, as a request would.
func (e *env) refresh(owner, size string) {
	_, _ = e.engine.Refresh(context.Background(), owner, size, false)
}

func TestWarm(t *testing.T) {
	e := newEnv(t, envOptions{})
	resp, body := e.do(t, "POST", "/admin/warm?sizes=HR48x48,HR96x96&concurrency=2", "Bearer "+token,
		"# people\n"+adele+"\n"+nobody+"\n"+strings.ToUpper(adele)+"\n")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("warm: %d %q", resp.StatusCode, body)
	}
	var job struct {
		ID     string
		People int
		Done   bool
		Counts psync.WarmCounts
	}
	decode(t, body, &job)
	if job.People != 2 || resp.Header.Get("Location") != "/admin/warm/"+job.ID {
		t.Fatalf("job %+v at %q: want 2 people", job, resp.Header.Get("Location"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for !job.Done {
		if time.Now().After(deadline) {
			t.Fatalf("warm not done: %+v", job)
		}
		time.Sleep(10 * time.Millisecond)
		_, body = e.do(t, "GET", "/admin/warm/"+job.ID, "Bearer "+token, "")
		decode(t, body, &job)
	}
	if c := job.Counts; c.Total != 4 || c.Pulled != 2 || c.NoPhoto != 2 || c.Failed != 0 {
		t.Fatalf("counts %+v, want 4: 2 pulled, 2 no photo", c)
	}

	tests := []struct {
		name, target, body string
		want               int
	}{
		{"empty list", "/admin/warm", "# nobody\n", http.StatusBadRequest},
		{"bad address", "/admin/warm", `["` + adele + `", "adele"]`, http.StatusBadRequest},
		{"not JSON", "/admin/warm", `[1, 2`, http.StatusBadRequest},
		{"unknown size", "/admin/warm?sizes=HR1x1", adele, http.StatusBadRequest},
		{"concurrency too high", "/admin/warm?concurrency=65", adele, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if resp, body := e.do(t, "POST", tt.target, "Bearer "+token, tt.body); resp.StatusCode != tt.want {
				t.Fatalf("%d %q, want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
	if resp, _ := e.do(t, "GET", "/admin/warm/nope", "Bearer "+token, ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown job: %d, want 404", resp.StatusCode)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name  string
		ready func(context.Context) error
		want  int
	}{
		{"no check", nil, http.StatusOK},
		{"store answers", func(context.Context) error { return nil }, http.StatusOK},
		{"store away", func(context.Context) error { return errors.New("redis: connection refused") }, http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{ready: tt.ready})
			resp, body := e.do(t, "GET", "/readyz", "", "")
			if resp.StatusCode != tt.want || strings.Contains(string(body), "redis") {
				t.Fatalf("%d %q, want %d without the reason", resp.StatusCode, body, tt.want)
			}
		})
	}
}
