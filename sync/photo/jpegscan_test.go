package photo

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// jpegSamples are JPEGs of every kind image/jpeg reads: its own test files
// (progressive, restart markers, subsampling ratios, CMYK, grey) when the
// Go tree is there, and encodings of our own.
func jpegSamples(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", "image", "testdata", "*.jpeg"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	for _, q := range []int{5, 50, 95} {
		for _, n := range []int{1, 7, 64, 121} {
			m := image.NewRGBA(image.Rect(0, 0, n, n+3))
			for i := range m.Pix {
				m.Pix[i] = uint8(i*7 + q)
			}
			var buf bytes.Buffer
			if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: q}); err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("rgba q%d %d", q, n)] = buf.Bytes()
			g := image.NewGray(image.Rect(0, 0, n, n))
			for i := range g.Pix {
				g.Pix[i] = color.Gray{uint8(i * 3)}.Y
			}
			buf.Reset()
			if err := jpeg.Encode(&buf, g, &jpeg.Options{Quality: q}); err != nil {
				t.Fatal(err)
			}
			out[fmt.Sprintf("gray q%d %d", q, n)] = buf.Bytes()
		}
	}
	return out
}

// sameVerdict fails when jpegCheck and image/jpeg disagree about b.
func sameVerdict(t *testing.T, name string, b []byte) {
	t.Helper()
	_, decErr := jpeg.Decode(bytes.NewReader(b))
	checkErr := jpegCheck(bytes.NewReader(b))
	if (decErr == nil) != (checkErr == nil) {
		t.Errorf("%s: image/jpeg says %v, jpegCheck says %v", name, decErr, checkErr)
		return
	}
	if decErr != nil && decErr.Error() != checkErr.Error() {
		t.Errorf("%s: image/jpeg says %q, jpegCheck says %q", name, decErr, checkErr)
	}
}

// TestJPEGCheckAgreesWithDecode: the check that makes no pixels accepts
// every JPEG image/jpeg decodes and refuses, with the same error, every one
// it refuses: whole files, every cut of them, and bytes changed in them.
func TestJPEGCheckAgreesWithDecode(t *testing.T) {
	samples := jpegSamples(t)
	if len(samples) < 20 {
		t.Fatalf("only %d samples", len(samples))
	}
	for name, b := range samples {
		sameVerdict(t, name, b)
		step := max(1, len(b)/41)
		for n := 0; n < len(b); n += step {
			sameVerdict(t, name+" cut", b[:n])
		}
		for i := 0; i < len(b); i += max(1, len(b)/29) {
			for _, v := range []byte{0xFF, b[i] ^ 0x10} {
				c := bytes.Clone(b)
				c[i] = v
				sameVerdict(t, name+" changed", c)
			}
		}
	}
}

func FuzzJPEGCheck(f *testing.F) {
	for _, b := range jpegSamples(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		if cfg, err := jpeg.DecodeConfig(bytes.NewReader(b)); err == nil && int64(cfg.Width)*int64(cfg.Height) > 1<<22 {
			return // image/jpeg would allocate it all
		}
		sameVerdict(t, "fuzzed", b)
	})
}

// BenchmarkCheckJPEG is Check of a 648×648 photo against Decode of it.
func BenchmarkCheckJPEG(b *testing.B) {
	m := image.NewYCbCr(image.Rect(0, 0, 648, 648), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = uint8(i%648/3 + i/648/5) // a smooth face-sized gradient, ~20 KB as JPEG
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 85}); err != nil {
		b.Fatal(err)
	}
	body := buf.Bytes()
	dec := NewDecoder(Limits{})
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if _, err := dec.Check(b.Context(), body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			_, _, release, err := dec.Decode(b.Context(), body)
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
}
