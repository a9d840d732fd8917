// Package phototest makes the hostile images a master may send, for the
// tests and the simulators: pixel bombs that are small on the wire, a
// header claiming giant dimensions, a JPEG with a page behind it, a
// truncated JPEG. It imports only the standard library.
package phototest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
)

// HTML is what a login page behind a photo's magic bytes looks like.
const HTML = "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>\n"

// JPEG is a real w×h JPEG of smooth gradients.
func JPEG(w, h int) []byte {
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			img.Y[y*img.YStride+x] = uint8((x + y) * 255 / (w + h))
		}
	}
	for i := range img.Cb {
		img.Cb[i], img.Cr[i] = 100, 160
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 80}); err != nil {
		panic(err) // cannot fail on a bytes.Buffer
	}
	return b.Bytes()
}

// PNGBomb is a real w×h RGBA PNG of transparent black: w×h×4 bytes of
// pixels in a small body (8000×8000: about 1.6 MB), written straight as
// deflate's fixed-code matches of 258 zeros, so making it costs nothing.
func PNGBomb(w, h int) []byte {
	return pngOf(w, h, 6, zeros(int64(h)*int64(1+4*w))) // filter byte 0, then the pixels
}

// zeros is a zlib stream of n zero bytes (RFC 1950, RFC 1951): one block
// with the fixed codes, a literal 0, then copies of length 258 from
// distance 1, the last few bytes as literals.
func zeros(n int64) []byte {
	var out bytes.Buffer
	out.Write([]byte{0x78, 0x01})
	var acc uint64
	bits := uint(0)
	put := func(v uint64, nb uint) { // LSB first
		acc |= v << bits
		bits += nb
		for bits >= 8 {
			out.WriteByte(byte(acc))
			acc >>= 8
			bits -= 8
		}
	}
	huff := func(code uint64, nb uint) { // Huffman codes go MSB first
		var r uint64
		for i := uint(0); i < nb; i++ {
			r = r<<1 | (code>>i)&1
		}
		put(r, nb)
	}
	put(1, 1)     // BFINAL
	put(1, 2)     // BTYPE 01: fixed codes
	huff(0x30, 8) // literal 0
	left := n - 1
	for ; left >= 258; left -= 258 {
		huff(0xC5, 8) // length code 285: 258
		huff(0, 5)    // distance code 0: 1
	}
	for ; left > 0; left-- {
		huff(0x30, 8)
	}
	huff(0, 7) // end of block
	if bits > 0 {
		out.WriteByte(byte(acc))
	}
	// Adler-32 of n zeros: s1 stays 1, s2 adds 1 per byte.
	_ = binary.Write(&out, binary.BigEndian, uint32(n%65521)<<16|1)
	return out.Bytes()
}

// GiantPNG is a PNG of under 100 bytes whose header claims w×h: an IHDR, a token
// IDAT and IEND.
func GiantPNG(w, h int) []byte {
	return pngOf(w, h, 0, zeros(8))
}

func pngOf(w, h int, colorType byte, idat []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, colorType // 8 bits per sample
	chunk("IHDR", ihdr)
	chunk("IDAT", idat)
	chunk("IEND", nil)
	return b.Bytes()
}

// JPEGBomb is a w×h greyscale JPEG of one colour, made without holding its
// pixels: a 16×16 JPEG whose frame header is rewritten to w×h, its scan
// extended with the code of an all-zero block for every block added
// (8000×8000: about 500 KB). It decodes in full to w×h pixels.
func JPEGBomb(w, h int) []byte {
	img := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	var small bytes.Buffer
	_ = jpeg.Encode(&small, img, &jpeg.Options{Quality: 50})
	b := small.Bytes()
	// An 8×8 block of mid grey is DC difference 0 then EOB: with
	// image/jpeg's standard tables, 00 (DC, 2 bits) 1010 (EOB, 4 bits).
	// The one block there is becomes the first of w/8 × h/8 such blocks.
	sof := bytes.Index(b, []byte{0xFF, 0xC0})
	binary.BigEndian.PutUint16(b[sof+5:], uint16(h))
	binary.BigEndian.PutUint16(b[sof+7:], uint16(w))
	sos := bytes.Index(b, []byte{0xFF, 0xDA})
	n := int(binary.BigEndian.Uint16(b[sos+2:]))
	head := b[:sos+2+n]
	blocks := ((w + 7) / 8) * ((h + 7) / 8)
	// Each block is 6 bits, "001010": four blocks fill three bytes.
	var scan bytes.Buffer
	scan.Write(head)
	var acc uint32
	bits := 0
	for range blocks {
		acc = acc<<6 | 0b001010
		bits += 6
		for bits >= 8 {
			scan.WriteByte(byte(acc >> (bits - 8)))
			bits -= 8
		}
	}
	if bits > 0 {
		scan.WriteByte(byte(acc<<(8-bits)) | byte(0xFF>>bits)) // pad with ones
	}
	scan.Write([]byte{0xFF, 0xD9})
	return scan.Bytes()
}

// Gray is a w×w JPEG of one colour, for sizes a test compares.
func Gray(w int, c color.Gray) []byte {
	img := image.NewGray(image.Rect(0, 0, w, w))
	for i := range img.Pix {
		img.Pix[i] = c.Y
	}
	var b bytes.Buffer
	_ = jpeg.Encode(&b, img, nil)
	return b.Bytes()
}
