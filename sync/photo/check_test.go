package photo_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"testing"

	"photosync/sync/photo"
	"photosync/sync/photo/phototest"
)

func TestCheck(t *testing.T) {
	jpg := phototest.JPEG(64, 48)
	var pngBuf, gifBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewNRGBA(image.Rect(0, 0, 30, 20))); err != nil {
		t.Fatal(err)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 10, 10), color.Palette{color.Black, color.White})
	if err := gif.Encode(&gifBuf, pal, nil); err != nil {
		t.Fatal(err)
	}
	tail := []byte(phototest.HTML)
	tests := []struct {
		name   string
		body   []byte
		limits photo.Limits
		want   error // nil: passes
		kept   []byte
		w, h   int
	}{
		{"jpeg", jpg, photo.Limits{}, nil, jpg, 64, 48},
		{"jpeg followed by html", append(append([]byte{}, jpg...), tail...), photo.Limits{}, nil, jpg, 64, 48},
		{"png followed by html", append(append([]byte{}, pngBuf.Bytes()...), tail...), photo.Limits{}, nil, pngBuf.Bytes(), 30, 20},
		{"gif followed by html", append(append([]byte{}, gifBuf.Bytes()...), tail...), photo.Limits{}, nil, gifBuf.Bytes(), 10, 10},
		{"jpeg magic then html", append([]byte("\xff\xd8\xff\xe0"), tail...), photo.Limits{}, photo.ErrUndecodable, nil, 0, 0},
		{"truncated jpeg", jpg[:len(jpg)/2], photo.Limits{}, photo.ErrUndecodable, nil, 0, 0},
		{"jpeg without its EOI", jpg[:len(jpg)-2], photo.Limits{}, photo.ErrUndecodable, nil, 0, 0},
		{"truncated png", pngBuf.Bytes()[:len(pngBuf.Bytes())-12], photo.Limits{}, photo.ErrUndecodable, nil, 0, 0},
		{"html", tail, photo.Limits{}, photo.ErrNotImage, nil, 0, 0},
		{"giant dimensions header", phototest.GiantPNG(100000, 100000), photo.Limits{}, photo.ErrTooManyPixels, nil, 0, 0},
		{"png pixel bomb", phototest.PNGBomb(8000, 8000), photo.Limits{}, photo.ErrTooManyPixels, nil, 0, 0},
		{"jpeg pixel bomb", phototest.JPEGBomb(8000, 8000), photo.Limits{}, photo.ErrTooManyPixels, nil, 0, 0},
		{"within max pixels, over the decode budget", phototest.PNGBomb(1000, 1000), photo.Limits{DecodeMemory: 4 << 20}, photo.ErrTooManyPixels, nil, 0, 0},
		{"a bomb the limits admit decodes", phototest.JPEGBomb(1024, 1024), photo.Limits{}, nil, nil, 1024, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := photo.NewDecoder(tt.limits).Check(context.Background(), tt.body)
			switch {
			case tt.want != nil:
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if tt.kept != nil && !bytes.Equal(img.Body, tt.kept) {
				t.Errorf("kept %d bytes, want the image's %d", len(img.Body), len(tt.kept))
			}
			if img.Width != tt.w || img.Height != tt.h {
				t.Errorf("%dx%d, want %dx%d", img.Width, img.Height, tt.w, tt.h)
			}
			if bytes.Contains(img.Body, []byte("<html")) {
				t.Error("the page behind the image was kept")
			}
		})
	}
}

func TestParseETag(t *testing.T) {
	long := `"` + string(bytes.Repeat([]byte("a"), photo.MaxETag-2)) + `"`
	tests := []struct {
		in, want string
		ok       bool
	}{
		{`"abc"`, "abc", true},
		{`W/"abc"`, "abc", true},
		{` "abc" `, "abc", true},
		{`""`, "", true},
		{long, long[1 : len(long)-1], true},
		{long[:1] + "a" + long[1:], "", false}, // 257 bytes
		{`", *, "`, "", false},
		{`*`, "", false},
		{`abc`, "", false},
		{`"abc`, "", false},
		{`"a"b"`, "", false},
		{`"a", "b"`, "", false},
		{"\"a\x00b\"", "", false},
		{"\"a\tb\"", "", false},
		{"\"caf\xc3\xa9\"", "caf\xc3\xa9", true}, // obs-text
	}
	for _, tt := range tests {
		got, ok := photo.ParseETag(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseETag(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestCheckBaselineHoldsNoPixels: a baseline JPEG is checked block by block
// without its pixels, so it passes under a budget no decode fits in, while
// a PNG, decoded whole, does not.
func TestCheckBaselineHoldsNoPixels(t *testing.T) {
	dec := photo.NewDecoder(photo.Limits{DecodeMemory: 1})
	if _, err := dec.Check(context.Background(), phototest.JPEG(640, 480)); err != nil {
		t.Errorf("baseline JPEG: %v", err)
	}
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewNRGBA(image.Rect(0, 0, 30, 20))); err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Check(context.Background(), pngBuf.Bytes()); !errors.Is(err, photo.ErrTooManyPixels) {
		t.Errorf("PNG: %v, want ErrTooManyPixels", err)
	}
}

func TestDecodeReduced(t *testing.T) {
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, image.NewNRGBA(image.Rect(0, 0, 648, 648))); err != nil {
		t.Fatal(err)
	}
	jpg := phototest.JPEG(648, 648)
	tests := []struct {
		name    string
		body    []byte
		n       int
		eighths int // Reduction's answer
		full, w int // the image's width, the picture's
	}{
		{"HR48 from a JPEG", jpg, 48, 1, 648, 81},
		{"HR96", jpg, 96, 2, 648, 162},
		{"HR120", jpg, 120, 2, 648, 162},
		{"HR240", jpg, 240, 4, 648, 324},
		{"HR120 from 500x500: 3/8", phototest.JPEG(500, 500), 120, 3, 500, 188},
		{"HR360: too large to reduce", jpg, 360, 8, 648, 648},
		{"a PNG is decoded whole", pngBuf.Bytes(), 48, 8, 648, 648},
	}
	dec := photo.NewDecoder(photo.Limits{})
	for _, tt := range tests {
		eighths := photo.Reduction(tt.body, tt.n)
		if eighths != tt.eighths {
			t.Errorf("%s: Reduction %d, want %d", tt.name, eighths, tt.eighths)
		}
		info, pic, release, err := dec.DecodeReduced(context.Background(), tt.body, eighths)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if info.Width != tt.full || pic.Bounds().Dx() != tt.w {
			t.Errorf("%s: image %d wide, picture %v; want %d and %d", tt.name, info.Width, pic.Bounds(), tt.full, tt.w)
		}
		release()
	}
}
