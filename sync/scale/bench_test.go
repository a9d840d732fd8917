package scale

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"testing"

	"photosync/sync/photo"
)

// masterJPEG is a 648×648 photo-like JPEG: smooth gradients and an edge.
func masterJPEG(tb testing.TB) []byte { return masterJPEGSized(tb, 648) }

// masterJPEGSized is masterJPEG drawn at s×s.
func masterJPEGSized(tb testing.TB, s int) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, s, s))
	cx, cy, r := s/2, s*250/648, s*120/648
	for y := range s {
		for x := range s {
			c := color.RGBA{R: uint8(x * 255 / s), G: uint8(y * 255 / s), B: 128, A: 255}
			if (x-cx)*(x-cx)+(y-cy)*(y-cy) < r*r {
				c = color.RGBA{R: 240, G: 220, B: 200, A: 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDerive is the work of serving one smaller size from the master
// copy: decode, Catmull-Rom scale, encode.
func BenchmarkDerive(b *testing.B) {
	src := masterJPEG(b)
	for _, size := range []string{"HR48x48", "HR96x96", "HR240x240", "HR504x504"} {
		b.Run(size, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Fit(src, photo.Pixels(size), 85); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDeriveAllEight is the work of deriving every smaller size from
// one master copy as the engine does it: sizes that photo.Reduction reduces
// alike share one decode (HR48 and HR64 a 1/8 decode, HR96 and HR120 a
// 1/4, HR240 a 1/2, the three larger the whole picture), then each is
// scaled and encoded from those planes. Compare its ns/op with the CPU
// vipsthumbnail spends on the same eight.
//
// PHOTOSYNC_BENCH_MASTER names a JPEG to use instead of the drawn one:
// bench/run gives it the master copy photosync served, the file it hands
// vipsthumbnail too.
func BenchmarkDeriveAllEight(b *testing.B) {
	src := masterJPEG(b)
	if f := os.Getenv("PHOTOSYNC_BENCH_MASTER"); f != "" {
		var err error
		if src, err = os.ReadFile(f); err != nil {
			b.Fatal(err)
		}
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(src))
	if err != nil {
		b.Fatal(err)
	}
	dec := photo.NewDecoder(photo.Limits{})
	sizes := photo.Sizes[:len(photo.Sizes)-1]
	b.ReportAllocs()
	for b.Loop() {
		decoded := map[int]image.Image{}
		var releases []func()
		for _, size := range sizes {
			n := photo.Pixels(size)
			eighths := photo.Reduction(src, n)
			pic, ok := decoded[eighths]
			if !ok {
				_, p, release, err := dec.DecodeReduced(context.Background(), src, eighths)
				if err != nil {
					b.Fatal(err)
				}
				releases = append(releases, release)
				pic, decoded[eighths] = p, p
			}
			w, h := Box(cfg.Width, cfg.Height, n)
			if _, _, err := To(pic, "jpeg", w, h, 85); err != nil { // bench/run's vipsthumbnail uses Q=85 too
				b.Fatal(err)
			}
		}
		for _, release := range releases {
			release()
		}
	}
}

// BenchmarkDecodeMaster is one decode of the 648×648 master copy.
func BenchmarkDecodeMaster(b *testing.B) {
	src := masterJPEG(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := image.Decode(bytes.NewReader(src)); err != nil {
			b.Fatal(err)
		}
	}
}
