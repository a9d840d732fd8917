package web_test

import (
	"bytes"
	"image"
	"image/png"
	"net/http"
	"testing"

	"photosync/sync/photo"
	"photosync/web"
)

func TestInitials(t *testing.T) {
	tests := []struct{ name, want string }{
		{"Adele Vance", "AV"},
		{"adele vance", "AV"},
		{"Cher", "C"},
		{"Lee Gu (Contoso)", "LG"},
		{"Gu, Lee", "LG"},
		{"Megan Bowen-Smith", "MB"},
		{"  Ólafur   Arnalds ", "ÓA"},
		{"Jean-Luc de la Croix", "JC"},
		{"田中 太郎", "田太"},
		{"12345", ""},
		{"", ""},
		{"(external)", ""},
	}
	for _, tt := range tests {
		if got := web.Initials(tt.name); got != tt.want {
			t.Errorf("Initials(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestInitialsPlaceholder: with photos.placeholder: initials, a person
// without a photo whose name a source gave gets a round PNG of their
// initials at the size asked, on a colour of their own; a person whose name
// nobody gave, the silhouette.
func TestInitialsPlaceholder(t *testing.T) {
	const carol = "carol.ortiz@contoso.com"
	e := newEnv(t, envOptions{web: func(o *web.Options) { o.Placeholder = web.PlaceholderInitials }})
	e.source.names[nobody] = "Lee Gu"
	e.source.names[carol] = "Carol Ortiz"

	type got struct {
		img  image.Image
		etag string
	}
	fetch := func(t *testing.T, owner, size string) got {
		t.Helper()
		resp := e.get(t, "/_layouts/15/userphoto.aspx?accountname="+owner+"&size="+size, proxy, owner)
		body := readAll(t, resp)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("%s at %s: %d %q", owner, size, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		img, err := png.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s at %s: not a PNG: %v", owner, size, err)
		}
		return got{img, resp.Header.Get("ETag")}
	}
	var lee, leeAgain, carolImg got
	for _, size := range []string{"S", "M", "L", "HR648x648"} {
		sz, _ := web.SharePointSize(size)
		n := photo.Pixels(sz)
		g := fetch(t, nobody, size)
		if b := g.img.Bounds(); b.Dx() != n || b.Dy() != n {
			t.Fatalf("size %s: %v, want %d×%d", size, b, n, n)
		}
		if _, _, _, a := g.img.At(0, 0).RGBA(); a != 0 {
			t.Errorf("size %s: the corner is not transparent: the disc is not round", size)
		}
		if !hasWhite(g.img) {
			t.Errorf("size %s: no white initials drawn", size)
		}
		if size == "M" {
			lee = g
		}
	}
	leeAgain = fetch(t, nobody, "M")
	carolImg = fetch(t, carol, "M")
	if lee.etag != leeAgain.etag || lee.etag == `"placeholder-1"` || lee.etag == carolImg.etag {
		t.Errorf("ETags %s, %s, %s: want one per person and size, and stable", lee.etag, leeAgain.etag, carolImg.etag)
	}
	// No name known: the silhouette.
	resp := e.get(t, "/_layouts/15/userphoto.aspx?accountname=nameless@contoso.com&size=M", proxy, "nameless@contoso.com")
	if readAll(t, resp); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"placeholder-1"` {
		t.Errorf("no name: %d, ETag %s; want the silhouette", resp.StatusCode, resp.Header.Get("ETag"))
	}
	// A photo is still the photo.
	resp = e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele+"&size=M", proxy, adele)
	if readAll(t, resp); resp.Header.Get("Content-Type") != "image/jpeg" {
		t.Errorf("with a photo: %q", resp.Header.Get("Content-Type"))
	}
}

func hasWhite(img image.Image) bool {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, a := img.At(x, y).RGBA(); r > 0xf000 && g > 0xf000 && bl > 0xf000 && a > 0xf000 {
				return true
			}
		}
	}
	return false
}
