package web

import (
	"bytes"
	"image"
	"image/color"
	"image/png"

	"photosync/sync/photo"
)

// placeholderETag marks the placeholder image; it is the same on every
// replica and never equal to a photo's ETag.
const placeholderETag = `"placeholder-1"`

// placeholder is the image shown in place of owner's missing photo at
// size, and its ETag: their initials when Options asks for them and a
// source gave their name, the silhouette otherwise.
func (h *Handler) placeholder(owner, name, size string) ([]byte, string) {
	if h.initials != nil && name != "" {
		if body, etag, ok := h.initials.get(owner, name, size); ok {
			return body, etag
		}
	}
	return h.placeholders[size], placeholderETag
}

// newPlaceholders draws the "no photo" silhouette SharePoint shows, once
// per size photosync's SharePoint route serves.
func newPlaceholders() map[string][]byte {
	m := make(map[string][]byte, len(photo.Sizes))
	for _, size := range photo.Sizes {
		m[size] = drawPlaceholder(photo.Pixels(size))
	}
	return m
}

// drawPlaceholder draws a grey head and shoulders on a light background.
func drawPlaceholder(n int) []byte {
	img := image.NewPaletted(image.Rect(0, 0, n, n), color.Palette{
		color.RGBA{0xe1, 0xe4, 0xe8, 0xff}, color.RGBA{0x9a, 0xa1, 0xab, 0xff},
	})
	fn := float64(n)
	headX, headY, headR := fn/2, fn*0.38, fn*0.19
	bodyX, bodyY, bodyRX, bodyRY := fn/2, fn*1.02, fn*0.36, fn*0.38
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			dx, dy := px-headX, py-headY
			head := dx*dx+dy*dy <= headR*headR
			ex, ey := (px-bodyX)/bodyRX, (py-bodyY)/bodyRY
			body := ex*ex+ey*ey <= 1
			if head || body {
				img.SetColorIndex(x, y, 1)
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic("web: encoding placeholder: " + err.Error()) // cannot happen with a bytes.Buffer
	}
	return buf.Bytes()
}
