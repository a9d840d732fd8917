package sync

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/gif" // master copies may be GIF
	"image/jpeg"
	"image/png"
	"time"

	_ "golang.org/x/image/bmp" // and BMP or WebP: SniffImage accepts them
	"golang.org/x/image/draw"
	_ "golang.org/x/image/webp"

	"photosync/store"
)

// MasterSize is the size pulled from the master when sizes are derived:
// Exchange's largest, or the largest the owner has (Exchange answers a
// larger request with the largest it stores).
const MasterSize = "HR648x648"

// derivedMark prefixes the ETag field of a derived record: it names the
// checksum of the master copy it was made from, so an unchanged master copy
// is not decoded and scaled again.
const derivedMark = "derived:"

// pullDerived serves a smaller size from the owner's master-size copy: it
// pulls that copy (through its own flight, shared with every other size and
// with requests for it) only when its timer ran out, then scales it down
// here. Serving all nine sizes of a person so costs one master call per
// expiry window instead of nine. The derived record carries the master
// copy's timer, so both run out together.
func (e *Engine) pullDerived(ctx context.Context, key store.Key, prev store.Record) pullResult {
	srcKey := store.Key{Owner: key.Owner, Size: MasterSize}
	src, found := e.load(ctx, srcKey)
	status := 0
	if !found || !src.Timer.Alive(e.opts.Now()) {
		select {
		case <-ctx.Done():
			return pullResult{rec: prev, peerTimeout: true}
		case r := <-e.startPull(srcKey, src):
			res := r.Val.(pullResult)
			if res.peerTimeout {
				return pullResult{rec: prev, peerTimeout: true}
			}
			src, status = res.rec, res.status
		}
	}

	next := prev
	switch {
	case src.Timer.Kind == store.TimerError:
		// The master copy's pull failed: keep our last good copy, and its
		// error and error timer.
		if next.State == store.StatePhoto && len(next.Body) == 0 {
			next.State = store.StateUnknown
		}
		next.Error, next.ErrorAt, next.Timer = src.Error, src.ErrorAt, src.Timer
	case src.State != store.StatePhoto:
		next = store.Record{State: src.State, PulledAt: src.PulledAt, Source: src.Source, Timer: src.Timer}
	case prev.State == store.StatePhoto && prev.ETag == derivedMark+src.Sum:
		next.PulledAt, next.Error, next.ErrorAt, next.Timer = src.PulledAt, "", time.Time{}, src.Timer
		next.Source = src.Source
	default:
		select {
		case e.scaling <- struct{}{}:
		case <-ctx.Done():
			return pullResult{rec: prev, peerTimeout: true}
		}
		started := time.Now()
		body, ct, err := scale(src.Body, pixels(key.Size), e.opts.JPEGQuality)
		<-e.scaling
		if err != nil {
			// The master copy is a good image by its signature but does not
			// decode: treat it as a failed pull of this size.
			e.stats.PullErrors.Add(1)
			e.log.Warn("deriving a size failed", "owner", key.Owner, "size", key.Size, "err", err)
			next.Error, next.ErrorAt = err.Error(), e.opts.Now()
			next.Timer = store.Timer{Kind: store.TimerError, Until: e.opts.Now().Add(e.opts.ErrorExpiration)}
			break
		}
		next = store.Record{State: store.StatePhoto, Body: body, ContentType: ct, Sum: store.Checksum(body),
			ETag: derivedMark + src.Sum, PulledAt: src.PulledAt, Source: src.Source, Timer: src.Timer}
		e.stats.Derived.Add(1)
		e.log.Info("size derived", "owner", key.Owner, "size", key.Size, "bytes", len(body), "elapsed", time.Since(started))
	}
	storeErr := e.put(key, next)
	return pullResult{rec: next, status: status, failed: next.Timer.Kind == store.TimerError, storeErr: storeErr}
}

// scale fits img within n×n, keeping its aspect ratio and never enlarging
// it, with a Catmull-Rom filter. JPEG stays JPEG (at quality); PNG and GIF
// become PNG so transparency survives. An image already small enough is
// returned as it is.
func scale(b []byte, n, quality int) ([]byte, string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, "", fmt.Errorf("deriving: reading the master copy: %w", err)
	}
	if cfg.Width <= n && cfg.Height <= n {
		ct, _ := SniffImage(b)
		return b, ct, nil
	}
	if cfg.Width > 8192 || cfg.Height > 8192 {
		return nil, "", fmt.Errorf("deriving: master copy is %dx%d, too large to scale", cfg.Width, cfg.Height)
	}
	src, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, "", fmt.Errorf("deriving: decoding the master copy: %w", err)
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
