package baseline

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// photoLike is a w×h picture with what photos have: smooth gradients, a
// flat area and a sharp disc edge, in colour.
func photoLike(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	cx, cy, r := w/2, h*250/648, min(w, h)*120/648
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255}
			if (x-cx)*(x-cx)+(y-cy)*(y-cy) < r*r {
				c = color.RGBA{240, 220, 200, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

// asYCbCr converts the top left of src to Y′CbCr planes with ratio over
// bounds r, each chroma sample from the first pixel it stands for.
func asYCbCr(src image.Image, r image.Rectangle, ratio image.YCbCrSubsampleRatio) *image.YCbCr {
	m := image.NewYCbCr(r, ratio)
	sb := src.Bounds()
	set := make([]bool, len(m.Cb))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.RGBAModel.Convert(src.At(sb.Min.X+x-r.Min.X, sb.Min.Y+y-r.Min.Y)).(color.RGBA)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			m.Y[m.YOffset(x, y)] = yy
			if ci := m.COffset(x, y); !set[ci] {
				m.Cb[ci], m.Cr[ci], set[ci] = cb, cr, true
			}
		}
	}
	return m
}

// asGray is the top left of src in grey, over bounds r.
func asGray(src image.Image, r image.Rectangle) *image.Gray {
	m := image.NewGray(r)
	draw.Draw(m, r, src, src.Bounds().Min, draw.Src)
	return m
}

// pixelErrors compares the decoded picture got with src, pixel by pixel, in
// RGB: the mean and the largest difference of a channel.
func pixelErrors(tb testing.TB, src, got image.Image) (float64, int) {
	tb.Helper()
	if got.Bounds().Size() != src.Bounds().Size() {
		tb.Fatalf("decoded %v, want the size of %v", got.Bounds(), src.Bounds())
	}
	a := image.NewRGBA(image.Rectangle{Max: src.Bounds().Size()})
	draw.Draw(a, a.Rect, src, src.Bounds().Min, draw.Src)
	b := image.NewRGBA(a.Rect)
	draw.Draw(b, b.Rect, got, got.Bounds().Min, draw.Src)
	sum, worst := 0, 0
	for i := range a.Pix {
		if i%4 == 3 {
			continue
		}
		d := int(a.Pix[i]) - int(b.Pix[i])
		d = max(d, -d)
		sum += d
		worst = max(worst, d)
	}
	return float64(sum) / float64(len(a.Pix)/4*3), worst
}

func encode(tb testing.TB, m image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, m, quality); err != nil {
		tb.Fatalf("Encode: %v", err)
	}
	return buf.Bytes()
}

func encodeGo(tb testing.TB, m image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatalf("image/jpeg: %v", err)
	}
	return buf.Bytes()
}

func decodeGo(tb testing.TB, b []byte) image.Image {
	tb.Helper()
	m, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("image/jpeg cannot decode: %v", err)
	}
	return m
}

// encodeCases are pictures of every kind Encode takes: every subsampling,
// odd and even sizes, bounds that do not start at 0, 0.
func encodeCases() map[string]image.Image {
	src := photoLike(97, 83)
	rect := func(x, y, w, h int) image.Rectangle { return image.Rect(x, y, x+w, y+h) }
	cases := map[string]image.Image{
		"1x1 4:4:4":      asYCbCr(src, rect(0, 0, 1, 1), image.YCbCrSubsampleRatio444),
		"1x1 grey":       asGray(src, rect(0, 0, 1, 1)),
		"2x17 4:2:0":     asYCbCr(src, rect(0, 0, 2, 17), image.YCbCrSubsampleRatio420),
		"16x16 4:2:0":    asYCbCr(src, rect(0, 0, 16, 16), image.YCbCrSubsampleRatio420),
		"97x83 grey":     asGray(src, rect(0, 0, 97, 83)),
		"64x48 grey":     asGray(src, rect(0, 0, 64, 48)),
		"grey at 3,5":    asGray(src, rect(3, 5, 61, 40)),
		"4:2:0 at -7,-2": asYCbCr(src, rect(-7, -2, 50, 41), image.YCbCrSubsampleRatio420),
		"4:4:4 at -8,-9": asYCbCr(src, rect(-8, -9, 48, 33), image.YCbCrSubsampleRatio444),
	}
	for _, r := range []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	} {
		name := strings.TrimPrefix(r.String(), "YCbCrSubsampleRatio")
		name = name[:1] + ":" + name[1:2] + ":" + name[2:]
		cases["97x83 "+name] = asYCbCr(src, rect(0, 0, 97, 83), r)
		cases["96x80 "+name] = asYCbCr(src, rect(0, 0, 96, 80), r)
		// A sub-picture: its planes start inside a larger picture's.
		big := asYCbCr(src, rect(0, 0, 97, 83), r)
		cases["sub-picture at 5,3 "+name] = big.SubImage(image.Rect(5, 3, 94, 70))
		cases["sub-picture at 16,8 "+name] = big.SubImage(image.Rect(16, 8, 80, 72))
	}
	return cases
}

// TestEncodeDecodes checks every kind of picture Encode takes comes out a
// baseline JPEG that image/jpeg and this package's reader decode, at the
// size of the picture, as 4:2:0 colour or grey, and that it is the
// picture: no further from it than image/jpeg's own encoding is.
func TestEncodeDecodes(t *testing.T) {
	for name, m := range encodeCases() {
		t.Run(name, func(t *testing.T) {
			b := encode(t, m, 90)
			got := decodeGo(t, b)
			_, grey := m.(*image.Gray)
			switch d := got.(type) {
			case *image.Gray:
				if !grey {
					t.Fatal("colour decodes as grey")
				}
			case *image.YCbCr:
				if grey || d.SubsampleRatio != image.YCbCrSubsampleRatio420 {
					t.Fatalf("decodes as %v, want 4:2:0", d.SubsampleRatio)
				}
			default:
				t.Fatalf("decodes as %T", got)
			}
			mean, worst := pixelErrors(t, m, got)
			goMean, goWorst := pixelErrors(t, m, decodeGo(t, encodeGo(t, m, 90)))
			if mean > goMean+0.05 || worst > goWorst+4 {
				t.Errorf("differs from the picture by %.3f on average, %d at worst; image/jpeg's by %.3f, %d", mean, worst, goMean, goWorst)
			}
			hd, err := Check(b)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if hd.Width != m.Bounds().Dx() || hd.Height != m.Bounds().Dy() {
				t.Errorf("Check says %dx%d", hd.Width, hd.Height)
			}
			small, err := Decode(b, 4)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if mean, worst := compare(got, small, 4); mean > 3 || worst > 48 {
				t.Errorf("Decode at 4/8 differs from image/jpeg's by %.2f on average, %d at worst", mean, worst)
			}
		})
	}
}

// TestEncodeQuality compares Encode with image/jpeg on photo-like
// pictures, at the sizes and qualities scale makes: decoded, ours must be
// as close to the picture, and as small.
func TestEncodeQuality(t *testing.T) {
	for _, size := range []int{240, 120} {
		src := photoLike(size, size)
		m := asYCbCr(src, src.Rect, image.YCbCrSubsampleRatio444) // as scale makes them
		for _, q := range []int{85, 50} {
			t.Run(fmt.Sprintf("%d q%d", size, q), func(t *testing.T) {
				ours, theirs := encode(t, m, q), encodeGo(t, m, q)
				mean, worst := pixelErrors(t, src, decodeGo(t, ours))
				goMean, goWorst := pixelErrors(t, src, decodeGo(t, theirs))
				t.Logf("mean %.3f worst %d %d bytes; image/jpeg mean %.3f worst %d %d bytes",
					mean, worst, len(ours), goMean, goWorst, len(theirs))
				if mean > goMean+0.05 || worst > goWorst+4 {
					t.Errorf("mean difference %.3f, worst %d; image/jpeg's %.3f, %d", mean, worst, goMean, goWorst)
				}
				if d := math.Abs(float64(len(ours))/float64(len(theirs)) - 1); d > 0.03 {
					t.Errorf("%d bytes, image/jpeg %d: %.1f%% apart", len(ours), len(theirs), 100*d)
				}
				if _, err := Check(ours); err != nil {
					t.Errorf("Check: %v", err)
				}
				if _, err := Decode(ours, 2); err != nil {
					t.Errorf("Decode: %v", err)
				}
			})
		}
	}
}

// segments maps the markers before the scan of a JPEG to their segments.
func segments(tb testing.TB, b []byte) map[byte][]byte {
	tb.Helper()
	s := map[byte][]byte{}
	for i := 2; i+4 <= len(b); {
		m, n := b[i+1], int(b[i+2])<<8|int(b[i+3])
		if b[i] != 0xFF || i+2+n > len(b) {
			tb.Fatalf("no segment at %d", i)
		}
		if _, dup := s[m]; dup {
			tb.Fatalf("two segments 0x%02X", m)
		}
		s[m] = b[i+4 : i+2+n]
		if m == 0xDA {
			break
		}
		i += 2 + n
	}
	return s
}

// TestEncodeWritesImageJPEGsTables checks the frame, scan header and the
// tables are byte for byte image/jpeg's, at every quality (clamped): the
// annex K tables, scaled the same way. A grey picture carries the tables
// it uses only, where image/jpeg writes the chrominance table too.
func TestEncodeWritesImageJPEGsTables(t *testing.T) {
	colour := asYCbCr(photoLike(24, 16), image.Rect(0, 0, 24, 16), image.YCbCrSubsampleRatio444)
	grey := asGray(colour, colour.Rect)
	for _, q := range []int{-3, 1, 10, 25, 49, 50, 51, 75, 85, 99, 100, 200} {
		ours, theirs := segments(t, encode(t, colour, q)), segments(t, encodeGo(t, colour, q))
		for _, m := range []byte{0xDB, 0xC0, 0xC4, 0xDA} {
			if !bytes.Equal(ours[m], theirs[m]) {
				t.Errorf("quality %d: segment 0x%02X\n% x\nimage/jpeg:\n% x", q, m, ours[m], theirs[m])
			}
		}
		if len(ours) != len(theirs) {
			t.Errorf("quality %d: %d segments, image/jpeg %d", q, len(ours), len(theirs))
		}
		ours, theirs = segments(t, encode(t, grey, q)), segments(t, encodeGo(t, grey, q))
		if !bytes.Equal(ours[0xDB], theirs[0xDB][:65]) {
			t.Errorf("quality %d, grey: DQT\n% x\nimage/jpeg:\n% x", q, ours[0xDB], theirs[0xDB])
		}
		for _, m := range []byte{0xC0, 0xC4, 0xDA} {
			if !bytes.Equal(ours[m], theirs[m]) {
				t.Errorf("quality %d, grey: segment 0x%02X\n% x\nimage/jpeg:\n% x", q, m, ours[m], theirs[m])
			}
		}
	}
}

// TestEncodeDjpeg decodes Encode's files with libjpeg-turbo's djpeg too,
// which says so on stderr about anything off in the data.
func TestEncodeDjpeg(t *testing.T) {
	djpeg, err := exec.LookPath("djpeg")
	if err != nil {
		t.Skip("no djpeg (libjpeg-turbo-progs) installed")
	}
	for name, m := range encodeCases() {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(djpeg)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(encode(t, m, 75)), &stdout, &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Fatalf("djpeg: %v: %s", err, stderr.Bytes())
			}
			magic := "P6"
			if _, grey := m.(*image.Gray); grey {
				magic = "P5"
			}
			want := fmt.Sprintf("%s\n%d %d\n255\n", magic, m.Bounds().Dx(), m.Bounds().Dy())
			if !bytes.HasPrefix(stdout.Bytes(), []byte(want)) {
				t.Errorf("djpeg wrote %.20q, want a header %q", stdout.Bytes(), want)
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	tests := map[string]image.Image{
		"RGBA":         image.NewRGBA(image.Rect(0, 0, 8, 8)),
		"NRGBA":        image.NewNRGBA(image.Rect(0, 0, 8, 8)),
		"CMYK":         image.NewCMYK(image.Rect(0, 0, 8, 8)),
		"empty YCbCr":  image.NewYCbCr(image.Rect(4, 4, 4, 9), image.YCbCrSubsampleRatio420),
		"empty grey":   image.NewGray(image.Rectangle{}),
		"65536 across": &image.Gray{Rect: image.Rect(0, 0, 1<<16, 1), Stride: 1 << 16},
	}
	for name, m := range tests {
		var buf bytes.Buffer
		if err := Encode(&buf, m, 85); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: Encode = %v, want ErrUnsupported", name, err)
		}
		if buf.Len() > 0 {
			t.Errorf("%s: %d bytes written", name, buf.Len())
		}
	}
}

type failingWriter struct{}

var errFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errFull }

func TestEncodeReportsTheWriter(t *testing.T) {
	err := Encode(failingWriter{}, image.NewGray(image.Rect(0, 0, 8, 8)), 85)
	if !errors.Is(err, errFull) || errors.Is(err, ErrUnsupported) {
		t.Errorf("Encode = %v, want the writer's error", err)
	}
}

// TestFDCTIsT81s checks the forward DCT and quantisation against T.81's
// definition (A.3.3) computed directly, with quantisation steps of 1: each
// coefficient must be the definition's, rounded (within float32's error).
func TestFDCTIsT81s(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var one quantizer
	var steps [64]uint8
	for i := range steps {
		steps[i] = 1
	}
	one.init(&steps, 50) // quality 50 leaves the table as it is
	var e encoder
	for n := range 200 {
		var px [64]uint8
		for i := range px {
			switch n % 3 {
			case 0:
				px[i] = uint8(rng.IntN(256))
			case 1:
				px[i] = uint8(255 * ((i/8 + i) % 2)) // the highest frequency there is
			default:
				px[i] = uint8(n) // flat
			}
		}
		e.fdctRows(px[:], 0, 8)
		e.fdctColumns(&one)
		for k, z := range zigzag {
			u, v := int(z%8), int(z/8)
			var f float64
			for y := range 8 {
				for x := range 8 {
					f += (float64(px[8*y+x]) - 128) *
						math.Cos(float64((2*x+1)*u)*math.Pi/16) * math.Cos(float64((2*y+1)*v)*math.Pi/16)
				}
			}
			f *= c(u) * c(v) / 4
			if d := math.Abs(float64(e.coef[k]) - f); d > 0.5+1e-3 {
				t.Fatalf("block %d, coefficient %d,%d: %d, T.81 says %.2f", n, u, v, e.coef[k], f)
			}
			if want := e.coef[k] != 0; (e.nz[k] == 1) != want {
				t.Fatalf("block %d, coefficient %d,%d: nz %d for %d", n, u, v, e.nz[k], e.coef[k])
			}
		}
	}
}

func c(u int) float64 {
	if u == 0 {
		return 1 / math.Sqrt2
	}
	return 1
}

// TestChromaPathsAgree checks the chroma read in place (4:2:0) and
// averaged eight at a time (4:4:4) is what the general path makes.
func TestChromaPathsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, r := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio420} {
		m := image.NewYCbCr(image.Rect(-16, 32, 32, 80), r)
		for i := range m.Cb {
			m.Cb[i] = uint8(rng.IntN(256))
		}
		var fast, general encoder
		for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y += 16 {
			for x := m.Rect.Min.X; x < m.Rect.Max.X; x += 16 {
				fast.loadChroma(m, m.Cb, x, y)
				general.averageAny(m, m.Cb, x, y)
				general.fdctRows(general.stage[:], 0, 8)
				if fast.rows != general.rows {
					t.Fatalf("%v, MCU at %d,%d: the fast path differs", r, x, y)
				}
			}
		}
	}
}

// TestConcurrentEncodes checks encoders and tables shared between
// goroutines (run with -race) give each Encode its own file.
func TestConcurrentEncodes(t *testing.T) {
	src := photoLike(61, 45)
	m := asYCbCr(src, src.Rect, image.YCbCrSubsampleRatio444)
	want := map[int][]byte{}
	for q := 40; q < 48; q++ {
		want[q] = encode(t, m, q)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				q := 40 + (g+i)%8
				var buf bytes.Buffer
				if err := Encode(&buf, m, q); err != nil || !bytes.Equal(buf.Bytes(), want[q]) {
					t.Errorf("quality %d: a different file (%v)", q, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkEncode encodes a photo-like picture with 4:4:4 planes, as
// scale hands it over, with Encode and with image/jpeg.
func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{240, 120} {
		src := photoLike(size, size)
		m := asYCbCr(src, src.Rect, image.YCbCrSubsampleRatio444)
		coders := []struct {
			name   string
			encode func(*bytes.Buffer) error
		}{
			{"baseline", func(w *bytes.Buffer) error { return Encode(w, m, 85) }},
			{"image-jpeg", func(w *bytes.Buffer) error { return jpeg.Encode(w, m, &jpeg.Options{Quality: 85}) }},
		}
		for _, enc := range coders {
			b.Run(fmt.Sprintf("%d/%s", size, enc.name), func(b *testing.B) {
				var buf bytes.Buffer
				b.ReportAllocs()
				for b.Loop() {
					buf.Reset()
					if err := enc.encode(&buf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
