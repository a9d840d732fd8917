// Package scale fits an image within an n×n box: it keeps the aspect
// ratio, never enlarges, and keeps the format a browser needs (JPEG stays
// JPEG, anything with transparency becomes PNG). A box pre-shrink by a
// whole factor does the bulk of a large reduction cheaply and Catmull-Rom
// finishes it, the way libvips' thumbnailer does.
package scale

import (
	"bytes"
	"fmt"
	"image"
	_ "image/gif" // master copies may be GIF
	"image/jpeg"
	"image/png"
	"net/http"

	_ "golang.org/x/image/bmp" // and BMP or WebP: photo.Sniff accepts them
	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"
)

// Fit fits the image b within n×n, keeping its aspect ratio and never enlarging
// it, with a Catmull-Rom filter. JPEG stays JPEG (at quality); PNG and GIF
// become PNG so transparency survives. An image already small enough is
// returned as it is.
func Fit(b []byte, n, quality int) ([]byte, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, "", fmt.Errorf("scale: reading the master copy: %w", err)
	}
	if cfg.Width <= n && cfg.Height <= n {
		ct := http.DetectContentType(b)
		return b, ct, nil
	}
	if cfg.Width > 8192 || cfg.Height > 8192 {
		return nil, "", fmt.Errorf("scale: master copy is %dx%d, too large to scale", cfg.Width, cfg.Height)
	}
	src, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, "", fmt.Errorf("scale: decoding the master copy: %w", err)
	}
	w, h := n, n
	if cfg.Width > cfg.Height {
		h = max(1, cfg.Height*n/cfg.Width)
	} else if cfg.Height > cfg.Width {
		w = max(1, cfg.Width*n/cfg.Height)
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	pre := shrink(src, shrinkFactor(cfg.Width, cfg.Height, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), pre, pre.Bounds(), draw.Src, nil)

	var buf bytes.Buffer
	switch format {
	case "jpeg":
		err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: quality})
		return buf.Bytes(), "image/jpeg", err
	default:
		err = png.Encode(&buf, dst)
		return buf.Bytes(), "image/png", err
	}
}

// shrinkFactor is the whole factor the box pre-shrink reduces a sw×sh image
// by on its way to w×h: as much as leaves Catmull-Rom at least a factor of
// two to go on the tighter side (the gap libvips keeps by default too).
func shrinkFactor(sw, sh, w, h int) int {
	return max(1, min(sw/(2*w), sh/(2*h)))
}

// shrink returns img as premultiplied RGBA, first reduced by the whole
// factor k with a box filter (each pixel the mean of a k×k block; partial
// blocks at the edges average what they hold), for Catmull-Rom to finish
// (see shrinkFactor). The picture is the same (TestShrinkKeepsThePicture):
// a box mean over the block is itself an area filter; the work is a
// fraction, as the kernel's taps grow with the reduction and each tap on
// a YCbCr source converts a pixel.
func shrink(img image.Image, k int) *image.RGBA {
	b := img.Bounds()
	full := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(full, full.Bounds(), img, b.Min, draw.Src)
	if k < 2 {
		return full
	}
	w, h := (b.Dx()+k-1)/k, (b.Dy()+k-1)/k
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	sums := make([]uint32, 4*w)
	counts := make([]uint32, w)
	for oy := range h {
		clear(sums)
		clear(counts)
		for y := oy * k; y < min((oy+1)*k, b.Dy()); y++ {
			row := full.Pix[y*full.Stride : y*full.Stride+4*b.Dx()]
			for x := 0; x < b.Dx(); x++ {
				ox := x / k
				p := row[4*x : 4*x+4 : 4*x+4]
				s := sums[4*ox : 4*ox+4 : 4*ox+4]
				s[0] += uint32(p[0])
				s[1] += uint32(p[1])
				s[2] += uint32(p[2])
				s[3] += uint32(p[3])
				counts[ox]++
			}
		}
		dst := out.Pix[oy*out.Stride : oy*out.Stride+4*w]
		for ox := range w {
			n := counts[ox]
			for c := range 4 {
				dst[4*ox+c] = uint8((sums[4*ox+c] + n/2) / n)
			}
		}
	}
	return out
}
