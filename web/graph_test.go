package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	psync "photosync/sync"
)

// TestGraphURLsAsSDKsSendThem: every Graph photo URL with /v1.0, /beta or
// no version, for a user and for /me, answers as Graph does.
func TestGraphURLsAsSDKsSendThem(t *testing.T) {
	// Any viewer may pull, so that each size is there for the anonymous.
	e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.Trigger = psync.TriggerAny }})
	for _, v := range []string{"", "/v1.0", "/beta"} {
		tests := []struct {
			target, viewer string
			status         int
			contentType    string
			check          func(t *testing.T, resp *http.Response, body []byte)
		}{
			{v + "/users/" + adele + "/photo/$value", "", 200, "image/jpeg", nil},
			{v + "/users/" + adele + "/photos/96x96/$value", "", 200, "image/jpeg", nil},
			{v + "/me/photo/$value", adele, 200, "image/jpeg", nil},
			{v + "/me/photos/48x48/$value", adele, 200, "image/jpeg", nil},
			{v + "/me/photo/$value", "", 401, "application/json", wantGraphError("InvalidAuthenticationToken")},
			{v + "/me/photos/48x48", "", 401, "application/json", wantGraphError("InvalidAuthenticationToken")},
			{v + "/users/" + adele + "/photo", "", 200, "application/json", wantMetadata("648X648", 648)},
			{v + "/users/" + adele + "/photos/240x240", "", 200, "application/json", wantMetadata("240X240", 240)},
			{v + "/me/photo", adele, 200, "application/json", wantMetadata("648X648", 648)},
			{v + "/me/photos/120x120", adele, 200, "application/json", wantMetadata("120X120", 120)},
			{v + "/users/" + nobody + "/photo/$value", "", 404, "application/json", wantJSON(graphNotFound)},
			{v + "/users/" + nobody + "/photo", "", 404, "application/json", wantJSON(graphNotFound)},
			{v + "/users/" + adele + "/photos/1x1", "", 400, "application/json", wantGraphError("ErrorInvalidSize")},
			{v + "/users/0f6a4d0c-1111-2222-3333-444455556666/photo", "", 400, "application/json", wantGraphError("BadRequest")},
		}
		for _, tt := range tests {
			t.Run(tt.target+" as "+tt.viewer, func(t *testing.T) {
				resp := e.get(t, tt.target, proxy, tt.viewer)
				body := readAll(t, resp)
				if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.contentType) {
					t.Fatalf("%d %q (%q), want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.contentType)
				}
				if tt.check != nil {
					tt.check(t, resp, body)
				}
			})
		}
	}
	// Errors that do not come from a Graph handler are Graph's JSON too
	// on a Graph route.
	resp := serve(t, e.handler, http.MethodPost, "/v1.0/users/"+adele+"/photo/$value", proxy, "")
	if body := readAll(t, resp); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d %q", resp.StatusCode, body)
	} else {
		wantGraphError("notSupported")(t, resp, body)
	}
}

func wantMetadata(id string, pixels int) func(*testing.T, *http.Response, []byte) {
	return func(t *testing.T, resp *http.Response, body []byte) {
		t.Helper()
		var got map[string]any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("metadata %q: %v", body, err)
		}
		if got["id"] != id || got["width"] != float64(pixels) || got["height"] != float64(pixels) ||
			got["@odata.mediaContentType"] != "image/jpeg" || !strings.HasPrefix(got["@odata.mediaEtag"].(string), `"`) ||
			!strings.Contains(got["@odata.context"].(string), "/$metadata#users('"+adele+"')") {
			t.Errorf("metadata %s, want id %s, %d×%d, a JPEG with a quoted ETag", body, id, pixels, pixels)
		}
	}
}

// TestEWSAnswersLikeExchange: the EWS URL's validators and expiry as the
// EWS Managed API reads them.
func TestEWSAnswersLikeExchange(t *testing.T) {
	e := newEnv(t, envOptions{})
	url := "/EWS/Exchange.asmx/s/GetUserPhoto?email=" + adele + "&size=HR96x96"
	resp := e.get(t, url, proxy, adele)
	readAll(t, resp)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || etag == "" {
		t.Fatalf("first: %d, ETag %q", resp.StatusCode, etag)
	}
	exp, err := http.ParseTime(resp.Header.Get("Expires"))
	if err != nil || exp.Before(time.Now().Add(5*time.Hour)) || exp.After(time.Now().Add(7*time.Hour)) {
		t.Errorf("Expires %q (%v), want about 6h from now, beside Cache-Control %q", resp.Header.Get("Expires"), err, resp.Header.Get("Cache-Control"))
	}
	for _, inm := range []string{etag, strings.Trim(etag, `"`), `"other", ` + etag, "W/" + etag, "*"} {
		resp := e.get(t, url, proxy, "", "If-None-Match", inm)
		if readAll(t, resp); resp.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match %s: %d, want 304", inm, resp.StatusCode)
		}
	}
	resp = e.get(t, url, proxy, "", "If-None-Match", "deadbeef")
	if readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match of another photo: %d, want 200", resp.StatusCode)
	}
	resp = e.get(t, "/EWS/Exchange.asmx/s/GetUserPhoto?email="+nobody+"&size=HR96x96", proxy, nobody)
	if readAll(t, resp); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Expires") == "" {
		t.Errorf("no photo: %d, Expires %q; want 404 with Expires", resp.StatusCode, resp.Header.Get("Expires"))
	}
}
