package web

import (
	"html/template"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
)

// card is one person on the people page.
type card struct {
	Person
	// Src and SrcSet are the photo URLs: the card shows the photo at
	// cardPixels CSS pixels, and a high-density screen picks a larger HR size.
	Src    string
	SrcSet string
	// Self: the signed-in viewer, who gets the "change photo" link.
	Self bool
}

// cardPixels is the photo's edge on the page, in CSS pixels; cardSizes are
// the HR sizes offered for 1x, 2x and 3x screens.
const cardPixels = 120

var cardSizes = []struct{ size, density string }{
	{"HR120x120", "1x"},
	{"HR240x240", "2x"},
	{"HR360x360", "3x"},
}

// photoURL is the userphoto.aspx URL of email's photo at size: it answers
// with the placeholder when the person has no photo, so no card is broken.
func photoURL(email, size string) string {
	return "/_layouts/15/userphoto.aspx?" + url.Values{"accountname": {email}, "size": {size}}.Encode()
}

// people serves the people page: a card per Person, its photo from
// userphoto.aspx at the density the screen wants.
func (h *Handler) people(c echo.Context) error {
	viewer := h.viewer(c)
	cards := make([]card, len(h.opts.People))
	for i, p := range h.opts.People {
		cards[i] = card{Person: p, Src: photoURL(p.Email, cardSizes[0].size), Self: p.Email == viewer}
		for j, s := range cardSizes {
			if j > 0 {
				cards[i].SrcSet += ", "
			}
			cards[i].SrcSet += photoURL(p.Email, s.size) + " " + s.density
		}
	}
	hdr := c.Response().Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	// The page differs per viewer (the "change photo" link).
	hdr.Set("Vary", h.opts.IdentityHeader)
	c.Response().WriteHeader(http.StatusOK)
	return peoplePage.Execute(c.Response(), struct {
		Pixels int
		Cards  []card
	}{cardPixels, cards})
}

var peoplePage = template.Must(template.New("people").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>People</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:0;background:#f3f4f6;color:#1f2328}
header{background:#fff;border-bottom:1px solid #d8dee4;padding:1rem 2rem}
h1{font-size:1.4rem;font-weight:600;margin:0}
main{padding:1.5rem 2rem;max-width:1100px}
ul{list-style:none;padding:0;margin:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:1rem}
li{background:#fff;border-radius:10px;padding:1.25rem 1rem;text-align:center;box-shadow:0 1px 3px #0002}
li.self{outline:2px solid #0969da}
img{display:block;margin:0 auto;border-radius:50%;object-fit:cover;background:#d8dee4}
.name{font-weight:600;margin-top:.75rem}
.mail{font-size:.78rem;color:#656d76;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;margin-top:.25rem}
.change{display:inline-block;margin-top:.6rem;font-size:.85rem;color:#0969da}
footer{padding:0 2rem 2rem;color:#656d76;font-size:.85rem}
</style></head><body>
<header><h1>People</h1></header>
<main><ul>{{range .Cards}}
<li{{if .Self}} class="self"{{end}}>
<img src="{{.Src}}" srcset="{{.SrcSet}}" width="{{$.Pixels}}" height="{{$.Pixels}}" alt="Photo of {{.Name}}" data-email="{{.Email}}">
<div class="name">{{.Name}}</div><div class="mail" title="{{.Email}}">{{.Email}}</div>
{{- if .Self}}
<a class="change" href="/photos/edit">Change your photo</a>{{end}}
</li>{{end}}
</ul></main>
<footer>Photos are pulled on demand from Exchange, then served from photosync's store.</footer>
</body></html>
`))
