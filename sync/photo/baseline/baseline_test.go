package baseline

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The files under testdata were written by libjpeg-turbo's cjpeg from one
// 101×77 picture, with the options their names say (-sample, -restart,
// -optimize, -grayscale, -progressive, -rgb, -arithmetic).
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// goJPEG is what Go's own encoder writes for a w×h picture: 4:2:0, or grey.
func goJPEG(tb testing.TB, w, h int, grey bool) []byte {
	tb.Helper()
	var img image.Image
	if grey {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				g.Pix[y*g.Stride+x] = uint8(x*6 + y*3)
			}
		}
		img = g
	} else {
		c := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				c.Set(x, y, color.RGBA{uint8(x * 3), uint8(y * 5), uint8(x ^ y), 255})
			}
		}
		img = c
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func supported(tb testing.TB) map[string][]byte {
	files := map[string][]byte{}
	for _, name := range []string{"444.jpg", "422.jpg", "420-restart.jpg", "440.jpg", "gray-restart.jpg", "444-restart1.jpg"} {
		files[name] = fixture(tb, name)
	}
	files["go 648x648"] = goJPEG(tb, 648, 648, false)
	files["go 1x1"] = goJPEG(tb, 1, 1, false)
	files["go 17x9"] = goJPEG(tb, 17, 9, false)
	files["go grey 33x15"] = goJPEG(tb, 33, 15, true)
	return files
}

func TestCheckAcceptsBaseline(t *testing.T) {
	for name, b := range supported(t) {
		hd, err := Check(b)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: image/jpeg: %v", name, err)
		}
		if hd.Width != cfg.Width || hd.Height != cfg.Height {
			t.Errorf("%s: %dx%d, image/jpeg says %dx%d", name, hd.Width, hd.Height, cfg.Width, cfg.Height)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	good := fixture(t, "420-restart.jpg")
	sos := bytes.Index(good, []byte{0xFF, 0xDA})
	stray := append(append(bytes.Clone(good[:sos+40]), 0xFF, 0xD3), good[sos+40:]...)
	// Each component named 1, in the frame and in the scan: image/jpeg
	// refuses a repeated identifier.
	sameIDs := bytes.Clone(good)
	sof := bytes.Index(sameIDs, []byte{0xFF, 0xC0})
	for c := range 3 {
		sameIDs[sof+10+3*c], sameIDs[sos+5+2*c] = 1, 1
	}
	tests := map[string][]byte{
		"progressive":          fixture(t, "progressive.jpg"),
		"4:1:1":                fixture(t, "411.jpg"),
		"RGB":                  fixture(t, "rgb.jpg"),
		"arithmetic":           fixture(t, "arithmetic.jpg"),
		"cut inside the scan":  good[:sos+200],
		"cut before EOI":       good[:len(good)-2],
		"a stray RST marker":   stray,
		"two SOIs":             append([]byte{0xFF, 0xD8}, good...),
		"HTML behind SOI":      []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00<html><script>"),
		"EOI right after SOI":  {0xFF, 0xD8, 0xFF, 0xD9},
		"scan before frame":    {0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02},
		"nothing":              nil,
		"bytes after the scan": append(bytes.Clone(good[:len(good)-2]), 0x12, 0x34, 0xFF, 0xD9),
		"a component id twice": sameIDs,
	}
	for name, b := range tests {
		_, err := Check(b)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: Check = %v, want ErrUnsupported", name, err)
		}
		if _, err := Decode(b, 4); err == nil {
			t.Errorf("%s: Decode succeeded", name)
		}
	}
}

// TestDecodeMatchesImageJPEG compares each scaled decode with image/jpeg's
// full-size decode averaged over the same 2×2, 4×4 or 8×8 blocks, plane by
// plane: a scaled decode must be the same picture, smaller.
func TestDecodeMatchesImageJPEG(t *testing.T) {
	for name, b := range supported(t) {
		full, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: image/jpeg: %v", name, err)
		}
		for _, eighths := range []int{1, 2, 3, 4} {
			small, err := Decode(b, eighths)
			if err != nil {
				t.Errorf("%s %d/8: %v", name, eighths, err)
				continue
			}
			fb := full.Bounds()
			w, h := Size(fb.Dx(), fb.Dy(), eighths)
			if small.Bounds() != image.Rect(0, 0, w, h) {
				t.Errorf("%s %d/8: bounds %v, want %dx%d", name, eighths, small.Bounds(), w, h)
				continue
			}
			mean, worst := compare(full, small, eighths)
			t.Logf("%s %d/8: mean %.2f worst %d", name, eighths, mean, worst)
			if mean > 3 || worst > 48 {
				t.Errorf("%s %d/8: mean difference %.2f, worst %d (of 255)", name, eighths, mean, worst)
			}
		}
	}
}

// compare averages full's samples over the region each of small's stands
// for (8/eighths of them across and down: for 3/8 the full samples whose
// centres fall inside it) and compares them with small's, over the luma
// (or grey) plane and both chroma planes.
func compare(full, small image.Image, eighths int) (float64, int) {
	type planeOf struct {
		pix    []uint8
		stride int
		w, h   int
	}
	var fp, sp []planeOf
	switch f := full.(type) {
	case *image.Gray:
		s := small.(*image.Gray)
		fp = []planeOf{{f.Pix, f.Stride, f.Rect.Dx(), f.Rect.Dy()}}
		sp = []planeOf{{s.Pix, s.Stride, s.Rect.Dx(), s.Rect.Dy()}}
	case *image.YCbCr:
		s := small.(*image.YCbCr)
		cw, ch := chroma(f)
		scw, sch := chroma(s)
		fp = []planeOf{{f.Y, f.YStride, f.Rect.Dx(), f.Rect.Dy()}, {f.Cb, f.CStride, cw, ch}, {f.Cr, f.CStride, cw, ch}}
		sp = []planeOf{{s.Y, s.YStride, s.Rect.Dx(), s.Rect.Dy()}, {s.Cb, s.CStride, scw, sch}, {s.Cr, s.CStride, scw, sch}}
	}
	// from(i) is the first full sample whose centre is in small sample i.
	from := func(i int) int { return (16*i + eighths - 1) / (2 * eighths) }
	var sum, n, worst int
	for i := range fp {
		f, s := fp[i], sp[i]
		for y := range s.h {
			for x := range s.w {
				var acc, cnt int
				for fy := from(y); fy < min(from(y+1), f.h); fy++ {
					for fx := from(x); fx < min(from(x+1), f.w); fx++ {
						acc += int(f.pix[fy*f.stride+fx])
						cnt++
					}
				}
				if cnt == 0 {
					continue
				}
				d := (acc+cnt/2)/cnt - int(s.pix[y*s.stride+x])
				d = max(d, -d)
				sum += d
				n++
				worst = max(worst, d)
			}
		}
	}
	return float64(sum) / float64(max(n, 1)), worst
}

func chroma(m *image.YCbCr) (int, int) {
	w, h := m.Rect.Dx(), m.Rect.Dy()
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	}
	return w, h
}

func TestBytesCoversDecode(t *testing.T) {
	for name, b := range supported(t) {
		hd, err := DecodeHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, eighths := range []int{1, 2, 3, 4} {
			img, err := Decode(b, eighths)
			if err != nil {
				t.Fatal(err)
			}
			var held int
			switch m := img.(type) {
			case *image.Gray:
				held = len(m.Pix)
			case *image.YCbCr:
				held = len(m.Y) + len(m.Cb) + len(m.Cr)
			}
			if got := Bytes(hd, eighths); got != int64(held) {
				t.Errorf("%s %d/8: Bytes %d, Decode holds %d", name, eighths, got, held)
			}
		}
	}
}

// FuzzCheck holds Check to its promise: whatever it accepts, image/jpeg
// decodes, to the size the header says, and Decode does at every scale.
func FuzzCheck(f *testing.F) {
	for _, b := range supported(f) {
		if len(b) < 3000 {
			f.Add(b)
		}
	}
	f.Add(fixture(f, "progressive.jpg"))
	f.Fuzz(func(t *testing.T, b []byte) {
		hd, err := Check(b)
		for _, eighths := range []int{1, 2, 3, 4} {
			if img, derr := Decode(b, eighths); (derr == nil) != (err == nil) {
				t.Fatalf("Check says %v, Decode %d/8 says %v", err, eighths, derr)
			} else if derr == nil {
				w, h := Size(hd.Width, hd.Height, eighths)
				if img.Bounds() != image.Rect(0, 0, w, h) {
					t.Fatalf("%d/8: bounds %v, header %dx%d", eighths, img.Bounds(), hd.Width, hd.Height)
				}
			}
		}
		if err != nil {
			return
		}
		img, jerr := jpeg.Decode(bytes.NewReader(b))
		if jerr != nil {
			t.Fatalf("Check accepted what image/jpeg refuses: %v", jerr)
		}
		if r := img.Bounds(); r.Dx() != hd.Width || r.Dy() != hd.Height {
			t.Fatalf("header %dx%d, image/jpeg %v", hd.Width, hd.Height, r)
		}
	})
}

// The benchmarks compare Check and each scaled Decode of a 648×648 master
// copy with image/jpeg's full decode of it.
func BenchmarkMaster(b *testing.B) {
	src := goJPEG(b, 648, 648, false)
	b.Run("image-jpeg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(src)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Check(src); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, eighths := range []int{1, 2, 3, 4} {
		b.Run(fmt.Sprintf("decode-%d/8", eighths), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(src, eighths); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConcurrentChecksShareTables: the built tables are shared between
// images; checks and decodes running at once only read them (-race).
func TestConcurrentChecksShareTables(t *testing.T) {
	files := supported(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for name, b := range files {
				if _, err := Check(b); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				if _, err := Decode(b, 4); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
	wg.Wait()
}
