package web_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"photosync/web"
)

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestIdentityNotAnAddress: a trusted identity header that holds no address
// (oauth2-proxy's X-Forwarded-User in OIDC mode carries the opaque subject)
// makes the request anonymous: stored photos are still served, nothing is
// pulled for it, and one warning a minute names the header, the value's
// shape and the fix, never the value.
func TestIdentityNotAnAddress(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, envOptions{web: func(o *web.Options) {
		o.IdentityHeader = "X-Forwarded-User"
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}})
	const subject = "0f6a4d0c-1111-2222-3333-444455556666"

	// adele's photo is stored by her own request, with an address.
	resp := e.get(t, "/photos/"+adele, proxy, "", "X-Forwarded-User", adele)
	if readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("owner with an address: %d", resp.StatusCode)
	}
	tests := []struct {
		name, target, value string
		status              int
	}{
		{"stored photo", "/photos/" + adele, subject, http.StatusOK},
		{"stored photo, login name", "/photos/" + adele, "adele", http.StatusOK},
		{"not stored: no pull for the anonymous", "/photos/" + alex, subject, http.StatusNotFound},
		{"graph /me is anonymous", "/v1.0/me/photo/$value", subject, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.get(t, tt.target, proxy, "", "X-Forwarded-User", tt.value)
			if body := readAll(t, resp); resp.StatusCode != tt.status {
				t.Fatalf("%d (%q), want %d", resp.StatusCode, body, tt.status)
			}
		})
	}
	if n := e.photoCalls(); n != 1 {
		t.Errorf("%d pulls, want only the owner's", n)
	}
	out := logs.String()
	if n := strings.Count(out, "identity header is not an email address"); n != 1 {
		t.Errorf("%d warnings in a minute, want 1:\n%s", n, out)
	}
	for _, want := range []string{"header=X-Forwarded-User", `"opaque token of 36 characters"`, "X-Forwarded-Email", "OIDC subject"} {
		if !strings.Contains(out, want) {
			t.Errorf("warning lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, subject) {
		t.Errorf("the warning repeats the value:\n%s", out)
	}
}

// TestIdentityNoTrustedProxy: with no trusted proxy configured, nobody's
// identity header is believed, wherever it comes from: the owner's own
// header pulls nothing (the trigger is the owner's), and the routes for the
// signed-in answer as for the anonymous. The same requests with the proxy
// trusted do see the viewer.
func TestIdentityNoTrustedProxy(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		t.Run(map[bool]string{false: "none trusted", true: "proxy trusted"}[trusted], func(t *testing.T) {
			e := newEnv(t, envOptions{web: func(o *web.Options) {
				if !trusted {
					o.TrustedProxies = nil
				}
			}})
			wantPhoto, wantSignedIn, wantPulls := http.StatusNotFound, http.StatusUnauthorized, 0
			if trusted {
				wantPhoto, wantSignedIn, wantPulls = http.StatusOK, http.StatusOK, 2
			}
			for _, tt := range []struct {
				target string
				status int
			}{
				{"/photos/" + adele, wantPhoto},
				{"/v1.0/me/photo/$value", wantSignedIn},
			} {
				resp := e.get(t, tt.target, proxy, adele)
				if body := readAll(t, resp); resp.StatusCode != tt.status {
					t.Errorf("%s: %d (%q), want %d", tt.target, resp.StatusCode, body, tt.status)
				}
			}
			if n := e.photoCalls(); n != wantPulls {
				t.Errorf("%d pulls, want %d", n, wantPulls)
			}
		})
	}
}
