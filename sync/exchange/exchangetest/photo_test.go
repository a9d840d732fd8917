package exchangetest

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGetUserPhoto(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "alice@contoso.com")
	tests := []struct {
		name, email, size string
		wantStatus        int
		wantPx            int  // side of the decoded JPEG
		wantAD            bool // the grey AD thumbnail
	}{
		{"mailbox photo", "alice@contoso.com", "HR240x240", 200, 240, false},
		{"size code any case", "ALICE@contoso.com", "hr96X96", 200, 96, false},
		{"largest size", "alice@contoso.com", "HR648x648", 200, 648, false},
		{"capped to MaxSize", "erin@contoso.com", "HR240x240", 200, 96, false},
		{"below MaxSize", "erin@contoso.com", "HR64x64", 200, 64, false},
		{"AD fallback without mailbox photo", "bob@contoso.com", "HR240x240", 200, 96, true},
		{"HR48x48 prefers AD", "carol@contoso.com", "HR48x48", 200, 96, true},
		{"mailbox photo over AD", "carol@contoso.com", "HR120x120", 200, 120, false},
		{"no photo at all", "dave@contoso.com", "HR96x96", 404, 0, false},
		{"unknown target", "nobody@contoso.com", "HR96x96", 404, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.do(t, http.MethodGet, photoPathFor(tt.email, tt.size), tok, nil, "")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			etag := resp.Header.Get("ETag")
			if len(etag) < 3 || etag[0] != '"' || etag[len(etag)-1] != '"' {
				t.Errorf("ETag %q is not a quoted strong tag", etag)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "image/jpeg" {
				t.Errorf("Content-Type %q", ct)
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length %q, body %d bytes", cl, len(body))
			}
			img, err := jpeg.Decode(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("decoding jpeg: %v", err)
			}
			if b := img.Bounds(); b.Dx() != tt.wantPx || b.Dy() != tt.wantPx {
				t.Errorf("image %v, want %dx%d", b, tt.wantPx, tt.wantPx)
			}
			r, g, b, _ := img.At(1, 1).RGBA()
			grey := absDiff(r, g) < 0x800 && absDiff(g, b) < 0x800
			if grey != tt.wantAD {
				t.Errorf("background grey = %v, want AD thumbnail %v", grey, tt.wantAD)
			}
			want, wantTag, ok := f.s.PhotoBytes(tt.email, tt.size)
			if !ok || !bytes.Equal(want, body) || wantTag != etag {
				t.Errorf("PhotoBytes disagrees with the response (ok %v, etag %q vs %q)", ok, wantTag, etag)
			}
		})
	}
	if got, want := f.s.PhotoRequests(), len(tests); got != want {
		t.Errorf("PhotoRequests = %d, want %d", got, want)
	}
	if got := f.s.PhotoRequestsFor("Alice@Contoso.com"); got != 3 {
		t.Errorf("PhotoRequestsFor(alice) = %d, want 3", got)
	}
}

func absDiff(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return b - a
}

func TestConditionalAndChanges(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "alice@contoso.com")
	get := func(email, size, inm string) (*http.Response, []byte) {
		t.Helper()
		var hdr map[string]string
		if inm != "" {
			hdr = map[string]string{"If-None-Match": inm}
		}
		return f.do(t, http.MethodGet, photoPathFor(email, size), tok, hdr, "")
	}
	resp, _ := get("alice@contoso.com", "HR96x96", "")
	etag := resp.Header.Get("ETag")
	bare := strings.Trim(etag, `"`)

	for _, inm := range []string{etag, bare, "W/" + etag, `"other", ` + etag, "*"} {
		resp, body := get("alice@contoso.com", "HR96x96", inm)
		if resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("If-None-Match %q: status %d with %d bytes, want 304 and no body", inm, resp.StatusCode, len(body))
		}
	}
	if resp, _ := get("alice@contoso.com", "HR96x96", `"stale"`); resp.StatusCode != http.StatusOK {
		t.Errorf("stale If-None-Match: status %d, want 200", resp.StatusCode)
	}
	if resp, _ := get("alice@contoso.com", "HR240x240", etag); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
		t.Errorf("other size: status %d, ETag %q; want 200 and a different ETag", resp.StatusCode, resp.Header.Get("ETag"))
	}

	f.s.SetPhoto("alice@contoso.com")
	resp, _ = get("alice@contoso.com", "HR96x96", etag)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
		t.Fatalf("after SetPhoto: status %d, ETag %q; want 200 and a new ETag", resp.StatusCode, resp.Header.Get("ETag"))
	}

	// Deleted on purpose: 404 even though carol has an AD thumbnail.
	f.s.DeletePhoto("carol@contoso.com")
	for _, size := range []string{"HR48x48", "HR240x240"} {
		if resp, _ := get("carol@contoso.com", size, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("deleted photo %s: status %d, want 404", size, resp.StatusCode)
		}
	}
	// In blank mode the same photo is a 200 with no bytes, AD still unread.
	f.s.SetDeletedBlank(true)
	for _, size := range []string{"HR48x48", "HR240x240"} {
		resp, body := get("carol@contoso.com", size, "")
		if resp.StatusCode != http.StatusOK || len(body) != 0 || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Errorf("blank deleted photo %s: status %d, %d bytes, type %q; want 200, 0 bytes, image/jpeg",
				size, resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
		}
	}
	if resp, _ := get("alice@contoso.com", "HR96x96", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("blank mode, photo present: status %d, want 200", resp.StatusCode)
	}
	f.s.SetDeletedBlank(false)
	f.s.SetPhoto("carol@contoso.com")
	if resp, _ := get("carol@contoso.com", "HR240x240", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("after SetPhoto on a deleted photo: status %d, want 200", resp.StatusCode)
	}

	f.s.RemoveUser("bob@contoso.com")
	if resp, _ := get("bob@contoso.com", "HR96x96", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("removed user: status %d, want 404", resp.StatusCode)
	}
	if n := len(f.s.Users()); n != len(testUsers)-1 {
		t.Errorf("Users() has %d, want %d", n, len(testUsers)-1)
	}
}

func TestPhotoRequestRules(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "alice@contoso.com")
	stranger := f.token(t, "mallory@fabrikam.com")
	tests := []struct {
		name, method, path, token string
		wantStatus                int
		wantKind                  string
	}{
		{"ok", "GET", photoPathFor("alice@contoso.com", "HR96x96"), tok, 200, KindPhoto},
		{"POST", "POST", photoPathFor("alice@contoso.com", "HR96x96"), tok, 405, KindPhoto},
		{"missing email", "GET", photoPath + "?size=HR96x96", tok, 400, KindPhoto},
		{"missing size", "GET", photoPath + "?email=alice@contoso.com", tok, 400, KindPhoto},
		{"2016 size", "GET", photoPathFor("alice@contoso.com", "HR1024x1024"), tok, 400, KindPhoto},
		{"bad request before auth", "GET", photoPath + "?size=HR96x96", "", 400, KindPhoto},
		{"no token", "GET", photoPathFor("alice@contoso.com", "HR96x96"), "", 401, KindPhoto},
		{"unknown acting user", "GET", photoPathFor("alice@contoso.com", "HR96x96"), stranger, 403, KindPhoto},
		{"path case differs", "GET", "/ews/exchange.asmx/s/GetUserPhoto?email=alice@contoso.com&size=HR96x96", tok, 404, KindOther},
		{"trailing slash", "GET", photoPath + "/?email=alice@contoso.com&size=HR96x96", tok, 404, KindOther},
		{"without /s", "GET", "/EWS/Exchange.asmx/GetUserPhoto?email=alice@contoso.com&size=HR96x96", tok, 404, KindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.s.ResetRequests()
			resp, _ := f.do(t, tt.method, tt.path, tt.token, nil, "")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			reqs := f.s.Requests()
			if len(reqs) != 1 || reqs[0].Kind != tt.wantKind || reqs[0].Status != tt.wantStatus {
				t.Fatalf("request log %+v, want one %s request with status %d", reqs, tt.wantKind, tt.wantStatus)
			}
			if tt.wantStatus == 200 && reqs[0].Actor != "alice@contoso.com" {
				t.Errorf("logged actor %q", reqs[0].Actor)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, "alice@contoso.com")
	path := photoPathFor("alice@contoso.com", "HR96x96")
	tests := []struct {
		name       string
		status, n  int
		want       []int
		retryAfter string
	}{
		{"503 twice", 503, 2, []int{503, 503, 200}, "1"},
		{"429 once", 429, 1, []int{429, 200}, "1"},
		{"500 busy fault", 500, 1, []int{500, 200}, ""},
		{"404 until cleared", 404, -1, []int{404, 404, 404}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.s.ClearFaults()
			f.s.ResetRequests()
			f.s.FailPhotos(tt.status, tt.n)
			for i, want := range tt.want {
				resp, body := f.do(t, http.MethodGet, path, tok, nil, "")
				if resp.StatusCode != want {
					t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, want)
				}
				if want == tt.status && resp.Header.Get("Retry-After") != tt.retryAfter {
					t.Errorf("Retry-After %q, want %q", resp.Header.Get("Retry-After"), tt.retryAfter)
				}
				if want == 500 && !bytes.Contains(body, []byte("BackOffMilliseconds")) {
					t.Errorf("500 body has no BackOffMilliseconds: %s", body)
				}
			}
			if got := f.s.PhotoRequests(); got != len(tt.want) {
				t.Errorf("PhotoRequests = %d, want %d", got, len(tt.want))
			}
		})
	}
	// The clock stands still, so every request after a throttling answer
	// falls inside its back-off window.
	f.s.ClearFaults()
	f.s.ResetRequests()
	f.s.FailPhotos(503, 1)
	f.do(t, http.MethodGet, path, tok, nil, "")
	f.do(t, http.MethodGet, path, tok, nil, "")
	f.clock.Advance(2 * time.Second)
	f.do(t, http.MethodGet, path, tok, nil, "")
	if got := f.s.BackoffViolations(); got != 1 {
		t.Errorf("BackoffViolations = %d, want 1", got)
	}
}

func TestPhotoDelayHonoursContext(t *testing.T) {
	f := newFixture(t)
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	f.s.mu.Lock()
	f.s.delayStarted = func() { started <- struct{}{} }
	f.s.afterDelay = func(err error) { ended <- err }
	f.s.mu.Unlock()
	f.s.SetPhotoDelay(time.Hour)

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.s.URL()+photoPathFor("alice@contoso.com", "HR96x96"), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.token(t, "alice@contoso.com"))
	done := make(chan error, 1)
	go func() {
		resp, err := f.s.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v, want context.Canceled", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("server delay ended with %v, want context.Canceled", err)
	}
}

func TestLightPhotosKeepNothingPerMailbox(t *testing.T) {
	s := NewServer(Options{LightPhotos: true})
	defer s.Close()
	for _, e := range []string{"a@contoso.com", "b@contoso.com"} {
		s.AddUser(User{Email: e, Photo: true})
	}
	a, etagA, okA := s.PhotoBytes("a@contoso.com", "HR240x240")
	b, etagB, okB := s.PhotoBytes("b@contoso.com", "HR240x240")
	if !okA || !okB {
		t.Fatal("PhotoBytes: no photo")
	}
	if bytes.Equal(a, b) || etagA == etagB {
		t.Fatal("two mailboxes share bytes or ETag")
	}
	for _, body := range [][]byte{a, b} {
		img, err := jpeg.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("decoding a light photo: %v", err)
		}
		if got := img.Bounds().Dx(); got != 240 {
			t.Fatalf("width %d, want 240", got)
		}
	}
	again, _, _ := s.PhotoBytes("a@contoso.com", "HR240x240")
	if !bytes.Equal(a, again) {
		t.Fatal("the same mailbox got other bytes")
	}
	s.mu.Lock()
	n := len(s.photos)
	s.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d drawings kept, want 1 (one per size)", n)
	}
}
