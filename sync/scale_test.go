package sync

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
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
		out, ct, err := scale(tt.in, tt.n, 85)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		cfg, format, err := image.DecodeConfig(bytes.NewReader(out))
		if err != nil || cfg.Width != tt.w || cfg.Height != tt.h || ct != tt.ct || format != tt.format {
			t.Errorf("%s: %dx%d %s (%s), %v; want %dx%d %s", tt.name, cfg.Width, cfg.Height, format, ct, err, tt.w, tt.h, tt.format)
		}
	}
	if _, _, err := scale([]byte("\xff\xd8\xff not really"), 48, 85); err == nil {
		t.Error("a JPEG signature with garbage after it scaled without error")
	}
}
