package web

import (
	"bytes"
	"container/list"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomedium"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"

	"photosync/sync/photo"
)

// The placeholders Options.Placeholder names.
const (
	// PlaceholderSilhouette is a grey head and shoulders, as SharePoint
	// shows for a person without a photo.
	PlaceholderSilhouette = "silhouette"
	// PlaceholderInitials is the person's initials in white on a round
	// colour derived from their address, as Outlook and Teams show; the
	// silhouette when no source gave their name.
	PlaceholderInitials = "initials"
)

// initialsCacheBytes bounds the rendered initials kept in memory. A
// rendering is 1 to 15 KiB, so this keeps several thousand.
const initialsCacheBytes = 8 << 20

// initialsPalette are the background colours, each dark enough for white
// text (contrast above 4.5:1).
var initialsPalette = []color.RGBA{
	{0x75, 0x0b, 0x1c, 0xff}, {0xa4, 0x26, 0x2c, 0xff}, {0xc2, 0x39, 0x34, 0xff}, {0x8e, 0x56, 0x2e, 0xff},
	{0x98, 0x6f, 0x0b, 0xff}, {0x49, 0x82, 0x05, 0xff}, {0x0b, 0x6a, 0x0b, 0xff}, {0x03, 0x83, 0x87, 0xff},
	{0x00, 0x5b, 0x70, 0xff}, {0x00, 0x78, 0xd4, 0xff}, {0x00, 0x41, 0x54, 0xff}, {0x4f, 0x6b, 0xed, 0xff},
	{0x5c, 0x2e, 0x91, 0xff}, {0x88, 0x17, 0x98, 0xff}, {0xc2, 0x39, 0xb3, 0xff}, {0x7a, 0x75, 0x74, 0xff},
}

// Initials returns what the initials placeholder shows for name: the first
// letters of its first and last words, upper case ("Adele Vance" → "AV",
// "Gu, Lee" → "LG", "Cher" → "C"); a part in parentheses or brackets
// ("Lee Gu (Contoso)") is left out. "" when name has no letter.
func Initials(name string) string {
	// "Last, First" is the directory's usual order; show it as First Last.
	if last, first, ok := strings.Cut(name, ","); ok && strings.TrimSpace(first) != "" {
		name = first + " " + last
	}
	var words []string
	depth := 0
	for _, w := range strings.Fields(name) {
		skip := depth > 0 || strings.ContainsAny(w[:1], "([{")
		depth += strings.Count(w, "(") + strings.Count(w, "[") + strings.Count(w, "{")
		depth -= strings.Count(w, ")") + strings.Count(w, "]") + strings.Count(w, "}")
		if !skip {
			words = append(words, w)
		}
	}
	first := func(w string) (rune, bool) {
		for _, r := range w {
			if unicode.IsLetter(r) {
				return unicode.ToUpper(r), true
			}
		}
		return 0, false
	}
	var out []rune
	for _, w := range words {
		if r, ok := first(w); ok {
			out = append(out, r)
			break
		}
	}
	for i := len(words) - 1; i > 0 && len(out) == 1; i-- {
		if r, ok := first(words[i]); ok {
			out = append(out, r)
		}
	}
	return string(out)
}

// initialsRenderer draws initials placeholders and keeps the most recent
// ones, bounded in bytes. Safe for concurrent use.
type initialsRenderer struct {
	font *opentype.Font // safe for concurrent use; a Face is not

	mu    sync.Mutex
	lru   *list.List // of *initialsEntry, most recent first
	byKey map[string]*list.Element
	bytes int
}

type initialsEntry struct {
	key  string
	png  []byte
	etag string
}

func newInitialsRenderer() *initialsRenderer {
	f, err := opentype.Parse(gomedium.TTF)
	if err != nil {
		panic("web: parsing Go Medium: " + err.Error()) // a font compiled in
	}
	return &initialsRenderer{font: f, lru: list.New(), byKey: map[string]*list.Element{}}
}

// get returns the initials placeholder of owner, named name, at size and
// its ETag (the same on every replica); ok is false when name has no
// initials.
func (r *initialsRenderer) get(owner, name, size string) (body []byte, etag string, ok bool) {
	text := Initials(name)
	if text == "" {
		return nil, "", false
	}
	key := owner + "\x00" + text + "\x00" + size
	r.mu.Lock()
	if el, hit := r.byKey[key]; hit {
		r.lru.MoveToFront(el)
		e := el.Value.(*initialsEntry)
		r.mu.Unlock()
		return e.png, e.etag, true
	}
	r.mu.Unlock()

	// Drawn outside the lock: two requests may draw the same one, which
	// costs a little CPU and gives the same bytes.
	h := fnv.New32a()
	h.Write([]byte(owner))
	bg := initialsPalette[h.Sum32()%uint32(len(initialsPalette))]
	body = r.draw(text, bg, photo.Pixels(size))
	h.Write([]byte{0})
	h.Write([]byte(key))
	etag = `"initials-` + strconv.FormatUint(uint64(h.Sum32()), 36) + `"`

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, hit := r.byKey[key]; !hit && len(body) <= initialsCacheBytes {
		r.byKey[key] = r.lru.PushFront(&initialsEntry{key: key, png: body, etag: etag})
		r.bytes += len(body)
		for r.bytes > initialsCacheBytes {
			old := r.lru.Remove(r.lru.Back()).(*initialsEntry)
			delete(r.byKey, old.key)
			r.bytes -= len(old.png)
		}
	}
	return body, etag, true
}

// draw renders text in white, centred on a disc of colour bg filling an
// n×n transparent PNG.
func (r *initialsRenderer) draw(text string, bg color.RGBA, n int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, n, n))
	// The disc, its edge anti-aliased by the pixel's coverage.
	c := float64(n) / 2
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			d := math.Hypot(float64(x)+0.5-c, float64(y)+0.5-c)
			a := math.Max(0, math.Min(1, c-d+0.5))
			if a > 0 {
				img.SetNRGBA(x, y, color.NRGBA{bg.R, bg.G, bg.B, uint8(a*255 + 0.5)})
			}
		}
	}
	face, err := opentype.NewFace(r.font, &opentype.FaceOptions{Size: float64(n) * 0.4, DPI: 72, Hinting: font.HintingNone})
	if err == nil {
		defer face.Close()
		d := &font.Drawer{Dst: img, Src: image.NewUniform(color.White), Face: face}
		// Centred on the glyphs' own bounds, not the line's, so that
		// initials sit in the middle of the disc.
		bounds, _ := d.BoundString(text)
		w := bounds.Max.X - bounds.Min.X
		h := bounds.Max.Y - bounds.Min.Y
		half := fixed.I(n) / 2
		d.Dot = fixed.Point26_6{X: half - w/2 - bounds.Min.X, Y: half - h/2 - bounds.Min.Y}
		d.DrawString(text)
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, img); err != nil {
		panic("web: encoding initials: " + err.Error()) // cannot happen with a bytes.Buffer
	}
	return buf.Bytes()
}
