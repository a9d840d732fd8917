package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// graphNotFound is Microsoft Graph's body for a user without a photo.
const graphNotFound = `{"error":{"code":"ImageNotFound","message":"Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' was thrown."}}`

func TestDialectsAnswerLikeTheirOriginals(t *testing.T) {
	tests := []struct {
		name string
		// url gives the dialect's URL for owner's photo of an Exchange size.
		url      func(owner string) string
		size     string // the Exchange size url asks for
		badSize  string // a URL naming a size the dialect does not know
		missing  func(t *testing.T, resp *http.Response, body []byte)
		badCheck func(t *testing.T, resp *http.Response, body []byte)
	}{
		{
			name:    "ews",
			url:     func(o string) string { return "/EWS/Exchange.asmx/s/GetUserPhoto?email=" + o + "&size=HR240x240" },
			size:    "HR240x240",
			badSize: "/EWS/Exchange.asmx/s/GetUserPhoto?email=" + adele + "&size=HR1024x1024",
			missing: wantTextLine("no photo"),
			badCheck: func(t *testing.T, resp *http.Response, body []byte) {
				wantTextLine("unknown size")(t, resp, body)
			},
		},
		{
			name:     "graph largest",
			url:      func(o string) string { return "/users/" + o + "/photo/$value" },
			size:     "HR648x648",
			badSize:  "/users/" + adele + "/photos/1024x1024/$value",
			missing:  wantJSON(graphNotFound),
			badCheck: wantGraphError("ErrorInvalidSize"),
		},
		{
			name:     "graph sized",
			url:      func(o string) string { return "/users/" + o + "/photos/96x96/$value" },
			size:     "HR96x96",
			badSize:  "/users/" + adele + "/photos/HR96x96/$value",
			missing:  wantJSON(graphNotFound),
			badCheck: wantGraphError("ErrorInvalidSize"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})

			// Present: the owner's own request pulls it, with the native
			// route's bytes and headers.
			resp := e.get(t, tt.url(adele), proxy, adele)
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
				t.Fatalf("present: %d %q (%q), want 200 image/jpeg", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			etag := resp.Header.Get("ETag")
			if !strings.HasPrefix(etag, `"`) || resp.Header.Get("Cache-Control") != "private, max-age=21600" {
				t.Fatalf("present: ETag %q, Cache-Control %q", etag, resp.Header.Get("Cache-Control"))
			}
			native := e.get(t, "/photos/"+adele+"?size="+tt.size, proxy, "")
			if nb := readAll(t, native); !bytes.Equal(nb, body) || native.Header.Get("ETag") != etag {
				t.Fatalf("dialect and native route disagree: %d bytes %s vs %d bytes %s", len(body), etag, len(nb), native.Header.Get("ETag"))
			}
			if got := outcome(resp); got != "pulled" {
				t.Fatalf("outcome %q, want pulled", got)
			}

			// 304 for the ETag the client holds, from anyone.
			resp = e.get(t, tt.url(adele), "10.9.9.9:1", "", "If-None-Match", etag)
			if b := readAll(t, resp); resp.StatusCode != http.StatusNotModified || len(b) != 0 || resp.Header.Get("ETag") != etag {
				t.Fatalf("If-None-Match: %d with %d bytes, ETag %q; want an empty 304", resp.StatusCode, len(b), resp.Header.Get("ETag"))
			}

			// Missing: a person Exchange has no photo for.
			resp = e.get(t, tt.url(nobody), proxy, nobody)
			body = readAll(t, resp)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("missing: %d (%q), want 404", resp.StatusCode, body)
			}
			tt.missing(t, resp, body)

			// Bad size: 400 in the dialect's own error format.
			calls := e.photoCalls()
			resp = e.get(t, tt.badSize, proxy, adele)
			body = readAll(t, resp)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("bad size: %d (%q), want 400", resp.StatusCode, body)
			}
			tt.badCheck(t, resp, body)
			if e.photoCalls() != calls {
				t.Fatal("a bad size reached the master")
			}
		})
	}
}

func TestDialectsRefuseBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name, target string
		check        func(t *testing.T, resp *http.Response, body []byte)
	}{
		{"ews without email", "/EWS/Exchange.asmx/s/GetUserPhoto?size=HR96x96", wantTextLine("email is required")},
		{"ews without size", "/EWS/Exchange.asmx/s/GetUserPhoto?email=" + adele, wantTextLine("size is required")},
		{"ews not an email", "/EWS/Exchange.asmx/s/GetUserPhoto?email=..%2f..%2fx&size=HR96x96", wantTextLine("email:")},
		{"graph id not an email", "/users/0f6a4d0c-1111-2222-3333-444455556666/photo/$value", wantGraphError("BadRequest")},
		{"graph id with a slash", "/users/adele%2F@contoso.com/photo/$value", wantGraphError("BadRequest")},
		{"graph id traversal", "/users/..%2f..%2fetc/photos/48x48/$value", wantGraphError("BadRequest")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := e.get(t, tt.target, proxy, adele)
			body := readAll(t, resp)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: %d (%q), want 400", tt.target, resp.StatusCode, body)
			}
			tt.check(t, resp, body)
		})
	}
	if n := e.photoCalls(); n != 0 {
		t.Fatalf("bad input reached the master %d times", n)
	}
}

func wantTextLine(sub string) func(*testing.T, *http.Response, []byte) {
	return func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		if !strings.Contains(string(body), sub) || strings.Count(string(body), "\n") != 1 {
			t.Errorf("body %q: want one line containing %q", body, sub)
		}
	}
}

func wantJSON(want string) func(*testing.T, *http.Response, []byte) {
	return func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want JSON", ct)
		}
		if got := strings.TrimSpace(string(body)); got != want {
			t.Errorf("body\n%s\nwant\n%s", got, want)
		}
	}
}

func wantGraphError(code string) func(*testing.T, *http.Response, []byte) {
	return func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		var got struct {
			Error struct{ Code, Message string }
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("body %q is not a Graph error: %v", body, err)
		}
		if got.Error.Code != code || got.Error.Message == "" {
			t.Errorf("Graph error %+v, want code %s with a message", got.Error, code)
		}
	}
}
