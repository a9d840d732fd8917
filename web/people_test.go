package web_test

import (
	"bytes"
	"image"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"photosync/web"
)

func TestDirectoryPage(t *testing.T) {
	e := newEnv(t, envOptions{})
	people := []web.Person{{Email: adele, Name: "Adele Vance"}, {Email: nobody, Name: "Lee <Gu>"}}
	h := web.New(e.engine, web.Options{
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		People:         people,
	})
	tests := []struct {
		name, peer, viewer string
		wantChange         string // whose card has the change-photo link, "" for none
	}{
		{"anonymous", proxy, "", ""},
		{"signed in", proxy, adele, adele},
		{"header from an untrusted peer", "10.1.1.1:1", adele, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.peer
			if tt.viewer != "" {
				req.Header.Set("X-Forwarded-Email", tt.viewer)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			page := rec.Body.String()
			if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("page: %d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if !strings.Contains(page, "Lee &lt;Gu&gt;") {
				t.Error("names are not HTML-escaped")
			}
			cards := strings.Split(page, "<li")[1:]
			if len(cards) != len(people) {
				t.Fatalf("%d cards, want %d", len(cards), len(people))
			}
			for i, c := range cards {
				p := people[i]
				src := "/_layouts/15/userphoto.aspx?accountname=" + strings.ReplaceAll(p.Email, "@", "%40") + "&amp;size="
				want := `src="` + src + `HR120x120" srcset="` + src + `HR120x120 1x, ` + src + `HR240x240 2x, ` + src + `HR360x360 3x"`
				if !strings.Contains(c, want) {
					t.Errorf("card %s lacks %s:\n%s", p.Email, want, c)
				}
				if got := strings.Contains(c, `href="/photos/edit"`); got != (p.Email == tt.wantChange) {
					t.Errorf("card %s: change-photo link %v, want it only on %q", p.Email, got, tt.wantChange)
				}
			}
		})
	}
}

// TestUserPhotoTakesHRSizes: the directory's srcset asks userphoto.aspx for
// HR sizes, and a person without a photo gets a placeholder of that size.
func TestUserPhotoTakesHRSizes(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, size := range []string{"HR120x120", "HR240x240", "hr360X360"} {
		resp := e.get(t, "/_layouts/15/userphoto.aspx?accountname="+nobody+"&size="+size, proxy, nobody)
		body := readAll(t, resp)
		cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
		if resp.StatusCode != http.StatusOK || err != nil || format != "png" {
			t.Fatalf("%s: %d, %s, %v; want the PNG placeholder", size, resp.StatusCode, format, err)
		}
		if want, _ := strconv.Atoi(size[2:5]); cfg.Width != want {
			t.Errorf("%s: placeholder %dx%d", size, cfg.Width, cfg.Height)
		}
	}
	resp := e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele+"&size=HR240x240", proxy, adele)
	if readAll(t, resp); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Fatalf("adele at HR240x240: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
