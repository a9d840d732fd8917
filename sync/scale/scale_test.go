package scale

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"

	"golang.org/x/image/draw"

	"photosync/sync/photo"
	"photosync/sync/photo/baseline"
)

func TestScaleKeepsAspectAndFormat(t *testing.T) {
	wide := image.NewNRGBA(image.Rect(0, 0, 300, 150))
	for x := 0; x < 300; x++ {
		wide.Set(x, 75, color.NRGBA{255, 0, 0, 128}) // half-transparent: PNG must stay PNG
	}
	var pngBuf, jpgBuf bytes.Buffer
	if err := png.Encode(&pngBuf, wide); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jpgBuf, image.NewRGBA(image.Rect(0, 0, 120, 240)), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		in         []byte
		n          int
		w, h       int
		ct, format string
	}{
		{"wide png", pngBuf.Bytes(), 96, 96, 48, "image/png", "png"},
		{"tall jpeg", jpgBuf.Bytes(), 48, 24, 48, "image/jpeg", "jpeg"},
		{"already small", jpgBuf.Bytes(), 648, 120, 240, "image/jpeg", "jpeg"},
	}
	for _, tt := range tests {
		out, ct, err := Fit(tt.in, tt.n, 85)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || cfg.Width != tt.w || cfg.Height != tt.h || ct != tt.ct || format != tt.format {
			t.Errorf("%s: %dx%d %s (%s), %v; want %dx%d %s", tt.name, cfg.Width, cfg.Height, format, ct, err, tt.w, tt.h, tt.format)
		}
	}
	if _, _, err := Fit([]byte("\xff\xd8\xff not really"), 48, 85); err == nil {
		t.Error("a JPEG signature with garbage after it scaled without error")
	}
}

// TestShrinkKeepsThePicture checks that scaling the decoded planes (box
// pre-shrink, then fixed-point Catmull-Rom per plane) changes nothing a
// viewer would see: the result is compared with x/image/draw's Catmull-Rom
// over the whole reduction of the decoded picture, pixel by pixel.
func TestShrinkKeepsThePicture(t *testing.T) {
	// 648×648 is Exchange's largest size; 500×500, a master copy of
	// another size, is where Reduction picks 3/8 (HR120x120 from 188).
	for _, side := range []int{648, 500} {
		t.Run(fmt.Sprint(side), func(t *testing.T) { testShrinkKeepsThePicture(t, side) })
	}
}

func testShrinkKeepsThePicture(t *testing.T, side int) {
	master := masterJPEGSized(t, side)
	src, err := jpeg.Decode(bytes.NewReader(master))
	if err != nil {
		t.Fatal(err)
	}
	ycc, ok := src.(*image.YCbCr)
	if !ok {
		t.Fatalf("the master copy decodes to %T, want *image.YCbCr", src)
	}
	for _, n := range []int{48, 64, 96, 120, 240, 360, 432, 504} {
		if n >= side {
			continue
		}
		direct := image.NewRGBA(image.Rect(0, 0, n, n))
		draw.CatmullRom.Scale(direct, direct.Bounds(), src, src.Bounds(), draw.Src, nil)
		check := func(how string, planes image.Image) {
			fast := image.NewRGBA(image.Rect(0, 0, n, n))
			draw.Draw(fast, fast.Bounds(), planes, image.Point{}, draw.Src)
			var sum, worst int
			for i := range direct.Pix {
				d := int(direct.Pix[i]) - int(fast.Pix[i])
				d = max(d, -d)
				sum += d
				worst = max(worst, d)
			}
			mean := float64(sum) / float64(len(direct.Pix))
			t.Logf("%d px, %s: mean %.2f worst %d", n, how, mean, worst)
			if mean > 1 || worst > 32 {
				t.Errorf("%d px, %s: mean difference %.2f, worst %d (of 255)", n, how, mean, worst)
			}
		}
		check("from the whole decode", fitYCbCr(ycc, n, n))
		// The engine's way: decoded reduced in the DCT domain where the
		// size allows, then scaled the rest of the way.
		eighths := photo.Reduction(master, n)
		_, pic, release, err := photo.NewDecoder(photo.Limits{}).DecodeReduced(context.Background(), master, eighths)
		if err != nil {
			t.Fatal(err)
		}
		if want := (side*eighths + 7) / 8; pic.Bounds().Dx() != want {
			t.Fatalf("%d px: decoded %v at %d/8", n, pic.Bounds(), eighths)
		}
		check(fmt.Sprintf("from a %d/8 decode", eighths), fitYCbCr(pic.(*image.YCbCr), n, n))
		release()
	}
}

func TestShrinkAveragesPartialBlocks(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 5, 1))
	for x, v := range []uint8{10, 20, 30, 40, 200} {
		img.Pix[4*x], img.Pix[4*x+3] = v, 255
	}
	got := shrink(img, 2).(*image.RGBA)
	if got.Bounds().Dx() != 3 || got.Bounds().Dy() != 1 {
		t.Fatalf("bounds %v, want 3×1", got.Bounds())
	}
	for i, want := range []uint8{15, 35, 200} {
		if r := got.Pix[4*i]; r != want {
			t.Errorf("pixel %d: red %d, want %d", i, r, want)
		}
	}
}

// TestCatmullRomSumsEveryTap checks the unrolled passes of catmullRom
// against the filter written as its definition: per output sample, the
// sum over its taps, horizontally into midBits of fraction, then
// vertically. The two must agree exactly, for tap counts below, at and
// above the unrolling's four, shrinking and enlarging.
func TestCatmullRomSumsEveryTap(t *testing.T) {
	for _, c := range []struct{ sw, sh, dw, dh int }{
		{324, 324, 240, 240}, {162, 162, 240, 240}, {81, 81, 48, 48}, {648, 300, 96, 40},
		{3, 2, 2, 1}, {5, 9, 4, 7}, {40, 30, 41, 29}, {1, 7, 1, 3},
	} {
		src := plane{make([]uint8, c.sw*c.sh), c.sw, c.sw, c.sh}
		for i := range src.pix {
			src.pix[i] = uint8(i*37 ^ i>>3*11) // edges and ramps
		}
		got := plane{make([]uint8, c.dw*c.dh), c.dw, c.dw, c.dh}
		catmullRom(got, src)
		tx, ty := catmullRomTaps(c.dw, c.sw), catmullRomTaps(c.dh, c.sh)
		mid := make([]int32, c.dw*c.sh)
		for y := range c.sh {
			for x := range c.dw {
				var a int32
				for j := range tx.n {
					a += tx.w[x*tx.n+j] * int32(src.pix[y*c.sw+tx.start[x]+j])
				}
				mid[y*c.dw+x] = int32(int16((a + 1<<(weightBits-midBits-1)) >> (weightBits - midBits)))
			}
		}
		for y := range c.dh {
			for x := range c.dw {
				var a int32
				for j := range ty.n {
					a += ty.w[y*ty.n+j] * mid[(ty.start[y]+j)*c.dw+x]
				}
				want := uint8(min(max((a+1<<(weightBits+midBits-1))>>(weightBits+midBits), 0), 255))
				if g := got.pix[y*c.dw+x]; g != want {
					t.Fatalf("%dx%d → %dx%d at (%d,%d): %d, want %d", c.sw, c.sh, c.dw, c.dh, x, y, g, want)
				}
			}
		}
	}
}

// TestToEncodesEveryPicture checks To's JPEGs from every kind of decoded
// picture: planes are scaled and written by package baseline, anything
// else (a CMYK JPEG decodes to CMYK) is made RGBA and written by
// image/jpeg.
func TestToEncodesEveryPicture(t *testing.T) {
	ycc := image.NewYCbCr(image.Rect(0, 0, 101, 77), image.YCbCrSubsampleRatio420)
	grey := image.NewGray(image.Rect(0, 0, 101, 77))
	cmyk := image.NewCMYK(image.Rect(0, 0, 101, 77))
	for i := range grey.Pix {
		ycc.Y[i], grey.Pix[i], cmyk.Pix[i] = uint8(i), uint8(i*3), uint8(i*5)
	}
	tests := []struct {
		name   string
		src    image.Image
		planes image.Image // what baseline encodes, nil for image/jpeg
	}{
		{"YCbCr", ycc, fitYCbCr(ycc, 50, 38)},
		{"grey", grey, fitGray(grey, 50, 38)},
		{"CMYK", cmyk, nil},
	}
	for _, tt := range tests {
		b, ct, err := To(tt.src, "jpeg", 50, 38, 85)
		if err != nil || ct != "image/jpeg" {
			t.Fatalf("%s: %s, %v", tt.name, ct, err)
		}
		got, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: image/jpeg cannot decode it: %v", tt.name, err)
		}
		if got.Bounds() != image.Rect(0, 0, 50, 38) {
			t.Errorf("%s: decodes to %v, want 50×38", tt.name, got.Bounds())
		}
		if tt.planes == nil {
			continue
		}
		var want bytes.Buffer
		if err := baseline.Encode(&want, tt.planes, 85); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want.Bytes()) {
			t.Errorf("%s: not baseline.Encode's file", tt.name)
		}
	}
}
