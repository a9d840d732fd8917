// Package scale fits an image within an n×n box: it keeps the aspect
// ratio, never enlarges, and keeps the format a browser needs (JPEG stays
// JPEG, anything with transparency becomes PNG).
//
// A box pre-shrink by a whole factor does the bulk of a large reduction
// cheaply and Catmull-Rom finishes it, the way libvips' thumbnailer does.
// A JPEG is scaled as it decodes, as Y, Cb and Cr planes (*image.YCbCr):
// no RGBA copy of the full-size picture is ever made, and the result goes
// as planes again to package baseline's encoder, which writes what
// image/jpeg would in about a third of its time (image/jpeg encodes what
// baseline does not take). One decoded picture can serve any number of
// sizes (FitImage).
package scale

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif" // master copies may be GIF
	"image/jpeg"
	"image/png"
	"net/http"

	_ "golang.org/x/image/bmp" // and BMP or WebP: photo.Sniff accepts them
	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"photosync/sync/photo/baseline"
)

// Fit fits the image b within n×n, keeping its aspect ratio and never
// enlarging it, with a Catmull-Rom filter. JPEG stays JPEG (at quality);
// other formats become PNG so transparency survives. An image already
// small enough is returned as it is. Fit decodes b without a memory
// budget: callers that hold untrusted bytes check them first (the engine
// decodes through photo.Decoder and calls FitImage).
func Fit(b []byte, n, quality int) ([]byte, string, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, "", fmt.Errorf("scale: reading the master copy: %w", err)
	}
	if cfg.Width <= n && cfg.Height <= n {
		return b, http.DetectContentType(b), nil
	}
	if cfg.Width > 8192 || cfg.Height > 8192 {
		return nil, "", fmt.Errorf("scale: master copy is %dx%d, too large to scale", cfg.Width, cfg.Height)
	}
	src, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, "", fmt.Errorf("scale: decoding the master copy: %w", err)
	}
	return FitImage(src, format, n, quality)
}

// FitImage fits the decoded picture src (format as image.Decode names it)
// within n×n and encodes it: JPEG stays JPEG at quality, anything else
// becomes PNG. Unlike Fit it encodes a picture already small enough too.
// src is only read, so one picture may serve several FitImage calls at
// once.
func FitImage(src image.Image, format string, n, quality int) ([]byte, string, error) {
	sb := src.Bounds()
	w, h := Box(sb.Dx(), sb.Dy(), n)
	return To(src, format, w, h, quality)
}

// To scales the decoded picture src to w×h and encodes it as FitImage
// does. It is for a picture decoded already reduced (photo's
// DecodeReduced), whose fitted size comes from the full size, Box of the
// image's own width and height: w×h must not be larger than src.
func To(src image.Image, format string, w, h, quality int) ([]byte, string, error) {
	sb := src.Bounds()
	if w > sb.Dx() || h > sb.Dy() {
		return nil, "", fmt.Errorf("scale: %dx%d is larger than the %dx%d picture", w, h, sb.Dx(), sb.Dy())
	}
	var out image.Image
	switch m := src.(type) {
	case *image.YCbCr:
		out = fitYCbCr(m, w, h)
	case *image.Gray:
		out = fitGray(m, w, h)
	default:
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		pre := shrink(src, shrinkFactor(sb.Dx(), sb.Dy(), w, h))
		draw.CatmullRom.Scale(dst, dst.Bounds(), pre, pre.Bounds(), draw.Src, nil)
		out = dst
	}
	var buf bytes.Buffer
	if format == "jpeg" {
		err := encodeJPEG(&buf, out, quality)
		return buf.Bytes(), "image/jpeg", err
	}
	err := png.Encode(&buf, out)
	return buf.Bytes(), "image/png", err
}

// encodeJPEG writes m to buf with baseline.Encode, or with image/jpeg if
// m is not a picture baseline writes (the RGBA made from other formats).
func encodeJPEG(buf *bytes.Buffer, m image.Image, quality int) error {
	err := baseline.Encode(buf, m, quality)
	if errors.Is(err, baseline.ErrUnsupported) {
		return jpeg.Encode(buf, m, &jpeg.Options{Quality: quality})
	}
	return err
}

// Box is the size of a sw×sh image fitted within n×n, never enlarged.
func Box(sw, sh, n int) (w, h int) {
	if sw <= n && sh <= n {
		return sw, sh
	}
	w, h = n, n
	if sw > sh {
		h = max(1, sh*n/sw)
	} else if sh > sw {
		w = max(1, sw*n/sh)
	}
	return w, h
}

// shrinkFactor is the whole factor the box pre-shrink reduces a sw×sh image
// by on its way to w×h: as much as leaves Catmull-Rom at least a factor of
// two to go on the tighter side (the gap libvips keeps by default too).
func shrinkFactor(sw, sh, w, h int) int {
	return max(1, min(sw/(2*w), sh/(2*h)))
}

// fitYCbCr scales src to w×h plane by plane: each plane is box-shrunk by
// the whole factor, then Catmull-Rom finishes it. The result is 4:4:4
// whatever src's subsampling: its chroma planes are scaled to w×h too (the
// encoder averages them to 4:2:0).
func fitYCbCr(src *image.YCbCr, w, h int) *image.YCbCr {
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	k := shrinkFactor(sw, sh, w, h)
	dst := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio444)
	scw, sch := chromaSize(src.SubsampleRatio, sw, sh)
	dcw, dch := w, h
	kc := shrinkFactor(scw, sch, dcw, dch)
	yo, co := src.YOffset(sb.Min.X, sb.Min.Y), src.COffset(sb.Min.X, sb.Min.Y)
	fitPlane(plane{dst.Y, dst.YStride, w, h}, plane{src.Y[yo:], src.YStride, sw, sh}, k)
	fitPlane(plane{dst.Cb, dst.CStride, dcw, dch}, plane{src.Cb[co:], src.CStride, scw, sch}, kc)
	fitPlane(plane{dst.Cr, dst.CStride, dcw, dch}, plane{src.Cr[co:], src.CStride, scw, sch}, kc)
	return dst
}

func fitGray(src *image.Gray, w, h int) *image.Gray {
	sb := src.Bounds()
	dst := image.NewGray(image.Rect(0, 0, w, h))
	k := shrinkFactor(sb.Dx(), sb.Dy(), w, h)
	fitPlane(plane{dst.Pix, dst.Stride, w, h}, plane{src.Pix[src.PixOffset(sb.Min.X, sb.Min.Y):], src.Stride, sb.Dx(), sb.Dy()}, k)
	return dst
}

// chromaSize is the size of the chroma planes of a w×h image, as
// image.NewYCbCr lays them out.
func chromaSize(r image.YCbCrSubsampleRatio, w, h int) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	case image.YCbCrSubsampleRatio410:
		return (w + 3) / 4, (h + 1) / 2
	}
	return w, h
}

// shrink returns img as RGBA reduced by the whole factor k with a box
// filter (each pixel the mean of a k×k block; partial blocks at the edges
// average what they hold), for Catmull-Rom to finish (see shrinkFactor).
// RGBA and NRGBA pictures are averaged in place of a copy; others (GIF's
// and PNG's palettes, 16-bit PNGs) are converted to RGBA first.
func shrink(img image.Image, k int) image.Image {
	b := img.Bounds()
	var full plane
	switch m := img.(type) {
	case *image.RGBA:
		if k < 2 {
			return m
		}
		full = plane{m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, 4 * b.Dx(), b.Dy()}
	case *image.NRGBA:
		if k < 2 {
			return m
		}
		full = plane{m.Pix[m.PixOffset(b.Min.X, b.Min.Y):], m.Stride, 4 * b.Dx(), b.Dy()}
	default:
		cp := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(cp, cp.Bounds(), img, b.Min, draw.Src)
		if k < 2 {
			return cp
		}
		full = plane{cp.Pix, cp.Stride, 4 * b.Dx(), b.Dy()}
	}
	w, h := (b.Dx()+k-1)/k, (b.Dy()+k-1)/k
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	boxShrink(plane{out.Pix, out.Stride, 4 * w, h}, full, k, 4)
	if _, ok := img.(*image.NRGBA); ok {
		return &image.NRGBA{Pix: out.Pix, Stride: out.Stride, Rect: out.Rect}
	}
	return out
}
