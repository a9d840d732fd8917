package photo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif" // the formats Sniff accepts
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/webp"
	"golang.org/x/sync/semaphore"

	"photosync/sync/photo/baseline"
)

// The defaults of Limits, and of photos.max_pixels and photos.decode_memory,
// which take them from here.
const (
	// DefaultMaxPixels is 16 megapixels (16 × 2²⁰), four times a 2048×2048
	// camera portrait and forty times Exchange's largest size.
	DefaultMaxPixels = 16 << 20
	// DefaultDecodeMemory is what all decodes at once may hold in pixels.
	DefaultDecodeMemory = 64 << 20
)

// ErrTooManyPixels is returned for an image whose header claims more
// pixels than Limits.MaxPixels, or whose decode would need more memory
// than the whole decode budget.
var ErrTooManyPixels = errors.New("photo: more pixels than the limit")

// ErrUndecodable is returned for a body that starts like an image but does
// not decode to its end: truncated, corrupt, or something else behind an
// image's magic bytes.
var ErrUndecodable = errors.New("photo: image does not decode")

// Limits bound what decoding one body may cost.
type Limits struct {
	// MaxPixels bounds width × height as the image's header states it,
	// checked before anything is decoded. Default: DefaultMaxPixels.
	MaxPixels int64
	// DecodeMemory bounds the bytes of pixels that all decodes of one
	// Decoder hold at once; a decode waits until its share is free. A
	// decode needing more than all of it is ErrTooManyPixels.
	// Default: DefaultDecodeMemory.
	DecodeMemory int64
}

// A Decoder decodes image bodies under Limits. The zero value is not
// usable; a nil *Decoder uses the default Limits with a budget of its own
// per call. Safe for concurrent use.
type Decoder struct {
	maxPixels int64
	memory    int64
	sem       *semaphore.Weighted
}

// NewDecoder returns a Decoder for l, zero fields meaning their defaults.
func NewDecoder(l Limits) *Decoder {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.DecodeMemory <= 0 {
		l.DecodeMemory = DefaultDecodeMemory
	}
	return &Decoder{maxPixels: l.MaxPixels, memory: l.DecodeMemory, sem: semaphore.NewWeighted(l.DecodeMemory)}
}

// Image is a body that passed Check: one whole image and nothing else.
type Image struct {
	Body          []byte // the image's bytes, cut at its end
	ContentType   string // from the bytes
	Format        string // as image.Decode names it: "jpeg", "png", …
	Width, Height int
}

// Check returns b as one whole image within d's limits: a format browsers
// show (Sniff), its header's width × height within MaxPixels, bytes after
// the image's end cut off (so a stored photo is never also an HTML page or
// a script), and the rest proven to decode to its end. A baseline JPEG,
// what nearly every camera and Exchange writes, is proven by reading every
// block of its scan without making its pixels (baseline.Check); any other
// image is decoded whole, under the decode budget.
func (d *Decoder) Check(ctx context.Context, b []byte) (Image, error) {
	img, _, release, err := d.decode(ctx, b, 0)
	if err != nil {
		return Image{}, err
	}
	release()
	return img, nil
}

// Decode decodes b as Check checks it and returns the picture as its
// decoder makes it (JPEG: *image.YCbCr or *image.Gray). The picture's
// share of the decode budget stays taken until release is called, once,
// when the caller no longer holds the picture.
func (d *Decoder) Decode(ctx context.Context, b []byte) (Image, image.Image, func(), error) {
	return d.decode(ctx, b, 8)
}

// DecodeReduced is Decode for a picture that is going to be scaled down:
// a baseline JPEG is decoded at eighths/8 of its size (1 to 4, from
// Reduction), straight from its DCT coefficients; 8, or any other image,
// is decoded whole. Image keeps the full size; the picture's bounds say
// which it got.
func (d *Decoder) DecodeReduced(ctx context.Context, b []byte, eighths int) (Image, image.Image, func(), error) {
	return d.decode(ctx, b, eighths)
}

// Reduction is the smallest scale, in eighths, at which DecodeReduced
// may decode the image b on its way to fitting within n×n, or 8 (whole)
// when b is no baseline JPEG or no scale up to 4/8 leaves enough. Enough is
// a quarter more than the fitted size on its longer side (so on both),
// left for the scaler's Catmull-Rom to smooth what the reduced inverse
// DCT's sharp cut-off leaves at edges: HR240x240 from a 3/8 decode of
// 648×648, 243 pixels, rings at 37 of 255 at worst against Catmull-Rom over
// the whole picture. A 1/8 decode keeps each block's mean only, a box 8
// pixels wide, and needs half again: HR48x48 from 63 pixels, 1/8 of 500,
// was 36 at worst.
func Reduction(b []byte, n int) int {
	hd, err := baseline.DecodeHeader(b)
	if err != nil {
		return 8
	}
	long := max(hd.Width, hd.Height)
	fitted := min(n, long)
	for eighths := 1; eighths <= baseline.MaxEighths; eighths++ {
		// long×eighths/8 ≥ fitted × 1.5 (at 1/8) or × 1.25, in integers.
		if eighths == 1 && long >= 12*fitted || eighths > 1 && long*eighths >= 10*fitted {
			return eighths
		}
	}
	return 8
}

// decode checks b and, unless eighths is 0 (a check only), decodes its
// picture at eighths/8 where that is a baseline JPEG, whole otherwise.
func (d *Decoder) decode(ctx context.Context, b []byte, eighths int) (Image, image.Image, func(), error) {
	if d == nil {
		d = NewDecoder(Limits{})
	}
	ct, ok := Sniff(b)
	if !ok {
		return Image{}, nil, nil, ErrNotImage
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return Image{}, nil, nil, fmt.Errorf("%w: header: %v", ErrUndecodable, err)
	}
	px := int64(cfg.Width) * int64(cfg.Height)
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return Image{}, nil, nil, fmt.Errorf("%w: %dx%d", ErrUndecodable, cfg.Width, cfg.Height)
	}
	if px > d.maxPixels {
		return Image{}, nil, nil, fmt.Errorf("%w: %dx%d is more than %d pixels", ErrTooManyPixels, cfg.Width, cfg.Height, d.maxPixels)
	}
	end, weight, err := layout(b, format, cfg)
	if err != nil {
		return Image{}, nil, nil, err
	}
	body := b[:end]
	info := Image{Body: body, ContentType: ct, Format: format, Width: cfg.Width, Height: cfg.Height}
	if format == "jpeg" && eighths < 8 {
		if info, pic, release, err := d.baseline(ctx, info, eighths); !errors.Is(err, baseline.ErrUnsupported) {
			return info, pic, release, err
		}
		// Not a JPEG baseline reads, or not one it vouches for: image/jpeg
		// decides, at full size.
	}
	if weight > d.memory {
		return Image{}, nil, nil, fmt.Errorf("%w: decoding %dx%d %s needs %d bytes, the decode budget is %d",
			ErrTooManyPixels, cfg.Width, cfg.Height, format, weight, d.memory)
	}
	if err := d.sem.Acquire(ctx, weight); err != nil {
		return Image{}, nil, nil, fmt.Errorf("photo: waiting for decode memory: %w", err)
	}
	release := func() { d.sem.Release(weight) }
	pic, _, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		release()
		return Image{}, nil, nil, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	if r := pic.Bounds(); r.Dx() != cfg.Width || r.Dy() != cfg.Height {
		release()
		return Image{}, nil, nil, fmt.Errorf("%w: header says %dx%d, pixels are %dx%d", ErrUndecodable, cfg.Width, cfg.Height, r.Dx(), r.Dy())
	}
	return info, pic, release, nil
}

// baseline checks (eighths 0) or decodes at eighths/8 the JPEG of info with
// package baseline; an error wrapping baseline.ErrUnsupported sends it to
// image/jpeg. A check holds no pixels, so it takes nothing from the
// budget; a reduced decode takes what its planes hold.
func (d *Decoder) baseline(ctx context.Context, info Image, eighths int) (Image, image.Image, func(), error) {
	if eighths == 0 {
		hd, err := baseline.Check(info.Body)
		if err == nil && (hd.Width != info.Width || hd.Height != info.Height) {
			err = fmt.Errorf("%w: frame of %dx%d", baseline.ErrUnsupported, hd.Width, hd.Height)
		}
		return info, nil, func() {}, err
	}
	hd, err := baseline.DecodeHeader(info.Body)
	if err != nil {
		return Image{}, nil, nil, err
	}
	weight := baseline.Bytes(hd, eighths) + decodeOverhead
	if weight > d.memory {
		return Image{}, nil, nil, fmt.Errorf("%w: decoding %dx%d jpeg at %d/8 needs %d bytes, the decode budget is %d",
			ErrTooManyPixels, info.Width, info.Height, eighths, weight, d.memory)
	}
	if err := d.sem.Acquire(ctx, weight); err != nil {
		return Image{}, nil, nil, fmt.Errorf("photo: waiting for decode memory: %w", err)
	}
	pic, err := baseline.Decode(info.Body, eighths)
	if err != nil {
		d.sem.Release(weight)
		return Image{}, nil, nil, err
	}
	return info, pic, func() { d.sem.Release(weight) }, nil
}

// decodeOverhead is what a decode holds beside its pixels: the decoder's
// buffers and the small images a scaler makes from it.
const decodeOverhead = 2 << 20

// layout returns where the image in b ends and how many bytes decoding it
// holds at most: its pixels in the decoder's own model, and for a
// progressive JPEG the coefficients kept until the last scan.
func layout(b []byte, format string, cfg image.Config) (end int, weight int64, err error) {
	px := int64(cfg.Width) * int64(cfg.Height)
	bpp := int64(4)
	switch cfg.ColorModel {
	case color.GrayModel, color.AlphaModel:
		bpp = 1
	case color.Gray16Model, color.Alpha16Model:
		bpp = 2
	case color.RGBA64Model, color.NRGBA64Model:
		bpp = 8
	case color.YCbCrModel:
		bpp = 3 // 4:4:4 at most
	}
	if _, ok := cfg.ColorModel.(color.Palette); ok {
		bpp = 1
	}
	switch format {
	case "jpeg":
		var progressive bool
		end, progressive, err = jpegEnd(b)
		if progressive {
			// image/jpeg keeps a [64]int32 block per 8×8 of each component.
			bpp += 4 * bpp
		}
	case "png":
		end, err = pngEnd(b)
		bpp *= 2 // an interlaced PNG is decoded pass by pass, then merged
	case "gif":
		end, err = gifEnd(b)
		bpp = 5 // the frame and, for a frame smaller than the screen, the screen
	case "webp":
		end, err = riffEnd(b)
		bpp = 4
	case "bmp":
		end, err = bmpEnd(b)
	default:
		return 0, 0, fmt.Errorf("%w: format %s", ErrNotImage, format)
	}
	return end, px*bpp + decodeOverhead, err
}

var errNoEnd = fmt.Errorf("%w: truncated: the image does not end", ErrUndecodable)

// jpegEnd walks a JPEG's segments (ITU T.81, annex B) to the end of its
// EOI marker, skipping each scan's entropy-coded data, where 0xFF is
// followed by 0x00 (a stuffed byte) or a restart marker.
func jpegEnd(b []byte) (end int, progressive bool, err error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xD8 {
		return 0, false, errNoEnd
	}
	i := 2
	for {
		for i < len(b) && b[i] == 0xFF && i+1 < len(b) && b[i+1] == 0xFF {
			i++ // fill bytes
		}
		if i+1 >= len(b) {
			return 0, false, errNoEnd
		}
		if b[i] != 0xFF {
			return 0, false, fmt.Errorf("%w: bytes between JPEG segments", ErrUndecodable)
		}
		m := b[i+1]
		i += 2
		switch {
		case m == 0xD9: // EOI
			return i, progressive, nil
		case m >= 0xD0 && m <= 0xD7 || m == 0x01: // RSTn, TEM: no length
			continue
		case m == 0xD8 || m == 0x00:
			return 0, false, fmt.Errorf("%w: marker 0x%02X out of place", ErrUndecodable, m)
		}
		if i+2 > len(b) {
			return 0, false, errNoEnd
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 || i+n > len(b) {
			return 0, false, errNoEnd
		}
		if m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE {
			progressive = true
		}
		i += n
		if m != 0xDA { // SOS: entropy-coded data follows
			continue
		}
		for {
			if i+1 >= len(b) {
				return 0, false, errNoEnd
			}
			if b[i] == 0xFF {
				if next := b[i+1]; next != 0x00 && !(next >= 0xD0 && next <= 0xD7) && next != 0xFF {
					break // a marker ends the scan
				}
				if b[i+1] == 0xFF {
					i++
					continue
				}
				i += 2
				continue
			}
			i++
		}
	}
}

// pngEnd walks a PNG's chunks to the end of IEND
// (https://www.w3.org/TR/png-3/#5Chunk-layout).
func pngEnd(b []byte) (int, error) {
	i := 8
	for i+12 <= len(b) {
		n := int64(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		next := int64(i) + 12 + n
		if next > int64(len(b)) {
			break
		}
		i = int(next)
		if typ == "IEND" {
			return i, nil
		}
	}
	return 0, errNoEnd
}

// gifEnd walks a GIF's blocks to its trailer, 0x3B
// (https://www.w3.org/Graphics/GIF/spec-gif89a.txt).
func gifEnd(b []byte) (int, error) {
	if len(b) < 13 {
		return 0, errNoEnd
	}
	i := 13
	if b[10]&0x80 != 0 {
		i += 3 << (b[10]&7 + 1)
	}
	subBlocks := func() bool {
		for i < len(b) {
			n := int(b[i])
			i += 1 + n
			if n == 0 {
				return i <= len(b)
			}
		}
		return false
	}
	for i < len(b) {
		switch b[i] {
		case 0x3B:
			return i + 1, nil
		case 0x21: // extension: label, sub-blocks
			i += 2
			if !subBlocks() {
				return 0, errNoEnd
			}
		case 0x2C: // image: descriptor, local colour table, LZW size, sub-blocks
			if i+10 > len(b) {
				return 0, errNoEnd
			}
			flags := b[i+9]
			i += 10
			if flags&0x80 != 0 {
				i += 3 << (flags&7 + 1)
			}
			i++
			if !subBlocks() {
				return 0, errNoEnd
			}
		default:
			return 0, fmt.Errorf("%w: GIF block 0x%02X", ErrUndecodable, b[i])
		}
	}
	return 0, errNoEnd
}

// riffEnd is where a WebP's RIFF container ends, by its header's length
// (https://developers.google.com/speed/webp/docs/riff_container).
func riffEnd(b []byte) (int, error) {
	if len(b) < 12 {
		return 0, errNoEnd
	}
	end := 8 + int64(binary.LittleEndian.Uint32(b[4:]))
	end += end & 1 // chunks are padded to even lengths
	if end > int64(len(b)) {
		return 0, errNoEnd
	}
	return int(end), nil
}

// bmpEnd is where a BMP ends, by its file header's bfSize; a writer that
// left it 0 leaves the whole body.
func bmpEnd(b []byte) (int, error) {
	if len(b) < 14 {
		return 0, errNoEnd
	}
	size := int64(binary.LittleEndian.Uint32(b[2:]))
	switch {
	case size == 0:
		return len(b), nil
	case size > int64(len(b)):
		return 0, errNoEnd
	}
	return int(size), nil
}
