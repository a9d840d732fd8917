package baseline

// Encode writes what image/jpeg's encoder writes, the same structure and
// tables, in about a third of its time, because scale derives every
// smaller size of a photo through it. Where the time goes: a forward DCT
// with five multiplications a row (Arai, Agui and Nakajima's, in float32)
// whose scale factors are folded into the quantisation, so that a
// coefficient is quantised by one multiplication, not a division; planes
// read in place, and 4:4:4 chroma averaged eight bytes at a time; the
// zero coefficients between two others skipped in one step, by a bit
// mask; and the bits written 32 at a time into a buffer kept from one
// Encode to the next.

import (
	"encoding/binary"
	"fmt"
	"image"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
)

// Encode writes m as a baseline JPEG at quality (1 to 100, clamped, as
// image/jpeg's Options.Quality), with the structure image/jpeg writes:
// a grey picture as one component, any other as Y′CbCr with chroma at
// 4:2:0 (each chroma sample the mean of the 2×2 pixels it stands for),
// T.81 annex K's tables scaled for quality, and edge blocks filled by
// repeating the last column and row. m must be an *image.YCbCr, of any
// subsampling, or an *image.Gray, between 1×1 and 65535×65535; anything
// else is an error wrapping ErrUnsupported, for image/jpeg to encode.
func Encode(w io.Writer, m image.Image, quality int) error {
	var grey bool
	switch m.(type) {
	case *image.YCbCr:
	case *image.Gray:
		grey = true
	default:
		return fmt.Errorf("baseline: encoding %T: %w", m, ErrUnsupported)
	}
	r := m.Bounds()
	if r.Dx() < 1 || r.Dy() < 1 || r.Dx() > 0xFFFF || r.Dy() > 0xFFFF {
		return fmt.Errorf("baseline: encoding a %dx%d picture: %w", r.Dx(), r.Dy(), ErrUnsupported)
	}
	e := encoders.Get().(*encoder)
	defer e.release()
	if n := min(r.Dx()*r.Dy()/4, maxKept) + 1024; cap(e.buf) < n { // most photos take less
		e.buf = make([]byte, 0, n)
	}
	t := tablesFor(quality)
	e.buf = appendHeaders(e.buf[:0], t, r.Dx(), r.Dy(), grey)
	switch m := m.(type) {
	case *image.YCbCr:
		e.scanYCbCr(m, t)
	case *image.Gray:
		e.scanGray(m, t)
	}
	e.finish()
	if _, err := w.Write(e.buf); err != nil {
		return fmt.Errorf("baseline: writing the JPEG: %w", err)
	}
	return nil
}

// encoders keeps encoders, and their output buffers, from one Encode to
// the next.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// maxKept is the largest output buffer an encoder keeps for the next
// Encode: a rare huge picture should not pin its megabytes.
const maxKept = 1 << 20

// release returns e to encoders.
func (e *encoder) release() {
	if cap(e.buf) > maxKept {
		e.buf = nil
	}
	encoders.Put(e)
}

// An encoder holds one Encode's output and the block being coded.
type encoder struct {
	bitWriter
	stage [64]uint8   // samples gathered for a block not read in place
	rows  [64]float32 // the block, transformed along its rows
	coef  [64]int32   // its quantised coefficients, in zig-zag order
	nz    [64]uint8   // 1 for each of them that is not zero, 0 for the others
}

// scanGray writes the scan of a grey picture: one block an MCU.
func (e *encoder) scanGray(m *image.Gray, t *tables) {
	r := m.Rect
	var prev int32
	for y := r.Min.Y; y < r.Max.Y; y += 8 {
		for x := r.Min.X; x < r.Max.X; x += 8 {
			e.load(m.Pix, m.Stride, r, x, y)
			prev = e.putBlock(&t.luma, &codes[lumaDC], &codes[lumaAC], prev)
		}
	}
}

// scanYCbCr writes the scan of a colour picture: a 16×16 MCU is four Y′
// blocks, then one Cb and one Cr, each sample the mean of 2×2 pixels'.
func (e *encoder) scanYCbCr(m *image.YCbCr, t *tables) {
	r := m.Rect
	var prevY, prevCb, prevCr int32
	for y := r.Min.Y; y < r.Max.Y; y += 16 {
		for x := r.Min.X; x < r.Max.X; x += 16 {
			for i := range 4 {
				e.load(m.Y, m.YStride, r, x+8*(i&1), y+4*(i&2))
				prevY = e.putBlock(&t.luma, &codes[lumaDC], &codes[lumaAC], prevY)
			}
			e.loadChroma(m, m.Cb, x, y)
			prevCb = e.putBlock(&t.chroma, &codes[chromaDC], &codes[chromaAC], prevCb)
			e.loadChroma(m, m.Cr, x, y)
			prevCr = e.putBlock(&t.chroma, &codes[chromaDC], &codes[chromaAC], prevCr)
		}
	}
}

// load transforms the 8×8 block at x, y of the plane pix (stride apart,
// covering r) along its rows, repeating the last column and row where the
// block crosses r's edge.
func (e *encoder) load(pix []uint8, stride int, r image.Rectangle, x, y int) {
	if x+8 <= r.Max.X && y+8 <= r.Max.Y {
		e.fdctRows(pix, (y-r.Min.Y)*stride+(x-r.Min.X), stride)
	} else {
		s := &e.stage
		for j := range 8 {
			row := pix[(min(y+j, r.Max.Y-1)-r.Min.Y)*stride:]
			for i := range 8 {
				s[8*j+i] = row[min(x+i, r.Max.X-1)-r.Min.X]
			}
		}
		e.fdctRows(s[:], 0, 8)
	}
}

// loadChroma transforms the chroma block of the MCU at x, y from the
// plane c of m along its rows: each sample the mean, rounded, of the
// chroma of 2×2 pixels, as image/jpeg makes it. 4:2:0 chroma samples that
// line up with the MCU are read in place (at negative coordinates they do
// not: m.COffset pairs pixel -1 with 0), and 4:4:4 inside the picture is
// averaged eight at a time; anything else finds each pixel's chroma as
// m.COffset does.
func (e *encoder) loadChroma(m *image.YCbCr, c []uint8, x, y int) {
	r := m.Rect
	inside := x+16 <= r.Max.X && y+16 <= r.Max.Y
	switch {
	case inside && m.SubsampleRatio == image.YCbCrSubsampleRatio420 && x >= 0 && y >= 0 && (x|y)&1 == 0:
		e.fdctRows(c, m.COffset(x, y), m.CStride)
	case inside && m.SubsampleRatio == image.YCbCrSubsampleRatio444:
		e.average444(c, m.COffset(x, y), m.CStride)
		e.fdctRows(e.stage[:], 0, 8)
	default:
		e.averageAny(m, c, x, y)
		e.fdctRows(e.stage[:], 0, 8)
	}
}

// average444 stores in e.stage the means of the 2×2 samples of the 16×16
// at c[off:], stride apart, eight bytes at a time.
func (e *encoder) average444(c []uint8, off, stride int) {
	for j := range 8 {
		a := c[off+2*j*stride : off+2*j*stride+16]
		b := c[off+(2*j+1)*stride : off+(2*j+1)*stride+16]
		left := mean2x2(binary.LittleEndian.Uint64(a), binary.LittleEndian.Uint64(b))
		right := mean2x2(binary.LittleEndian.Uint64(a[8:]), binary.LittleEndian.Uint64(b[8:]))
		binary.LittleEndian.PutUint64(e.stage[8*j:], uint64(right)<<32|uint64(left))
	}
}

// mean2x2 is the rounded means of the four 2×2 squares in two rows of eight
// samples, a above b, in the bytes of the result from the lowest up: the
// sums are made in 16-bit lanes, which four samples cannot overflow.
func mean2x2(a, b uint64) uint32 {
	const lanes = 0x00FF00FF00FF00FF
	s := a&lanes + a>>8&lanes + b&lanes + b>>8&lanes + 0x0002000200020002
	s = s >> 2 & lanes
	s = (s | s>>8) & 0x0000FFFF0000FFFF
	return uint32(s | s>>16)
}

// averageAny is average444 for any subsampling and for MCUs crossing the
// picture's edge: the chroma offset of pixel x, y is a sum of one term in
// x and one in y, m.COffset(x, Min.Y) + m.COffset(Min.X, y).
func (e *encoder) averageAny(m *image.YCbCr, c []uint8, x, y int) {
	r := m.Rect
	var cols, rows [16]int
	for i := range 16 {
		cols[i] = m.COffset(min(x+i, r.Max.X-1), r.Min.Y)
		rows[i] = m.COffset(r.Min.X, min(y+i, r.Max.Y-1))
	}
	s := &e.stage
	for j := range 8 {
		a, b := rows[2*j], rows[2*j+1]
		for i := range 8 {
			u, v := cols[2*i], cols[2*i+1]
			sum := uint32(c[a+u]) + uint32(c[a+v]) + uint32(c[b+u]) + uint32(c[b+v])
			s[8*j+i] = uint8((sum + 2) >> 2)
		}
	}
}

// The forward DCT is T.81 A.3.3's, computed as rows then columns with
// Arai, Agui and Nakajima's factorisation, five multiplications a row:
// term u, v comes out 8·aanScale[u]·aanScale[v] times T.81's, and
// quantizer's factors take that out with the division by the step.
var aanScale = [8]float64{
	1, 1.387039845, 1.306562965, 1.175875602, // 1, then √2·cos(kπ/16)
	1, 0.785694958, 0.541196100, 0.275899379,
}

// fdctRows transforms the 8×8 samples at pix[off:], stride apart, along
// their rows into e.rows, taking 128 from every sample on the way (A.3.1's
// level shift, which only the DC term sees).
func (e *encoder) fdctRows(pix []uint8, off, stride int) {
	for y := range 8 {
		s := pix[off+y*stride : off+y*stride+8]
		r := (*[8]float32)(e.rows[8*y : 8*y+8])
		d0, d1, d2, d3 := int32(s[0]), int32(s[1]), int32(s[2]), int32(s[3])
		d4, d5, d6, d7 := int32(s[4]), int32(s[5]), int32(s[6]), int32(s[7])
		t0, t1, t2, t3 := d0+d7, d1+d6, d2+d5, d3+d4
		r[0] = float32(t0 + t1 + t2 + t3 - 8*128)
		r[4] = float32(t0 - t1 - t2 + t3)
		r[2], r[6] = aanEven(float32(t1-t2), float32(t0-t3))
		r[1], r[3], r[5], r[7] = aanOdd(float32(d3-d4), float32(d2-d5), float32(d1-d6), float32(d0-d7))
	}
}

// fdctColumns finishes the transform fdctRows began, along the columns,
// and quantises the result with q into e.coef and e.nz.
func (e *encoder) fdctColumns(q *quantizer) {
	b, f := &e.rows, &q.factor
	for x := range 8 {
		d0, d1, d2, d3 := b[x], b[8+x], b[16+x], b[24+x]
		d4, d5, d6, d7 := b[32+x], b[40+x], b[48+x], b[56+x]
		t0, t1, t2, t3 := d0+d7, d1+d6, d2+d5, d3+d4
		r2, r6 := aanEven(t1-t2, t0-t3)
		r1, r3, r5, r7 := aanOdd(d3-d4, d2-d5, d1-d6, d0-d7)
		e.store(x, (t0+t1+t2+t3)*f[x])
		e.store(8+x, r1*f[8+x])
		e.store(16+x, r2*f[16+x])
		e.store(24+x, r3*f[24+x])
		e.store(32+x, (t0-t1-t2+t3)*f[32+x])
		e.store(40+x, r5*f[40+x])
		e.store(48+x, r6*f[48+x])
		e.store(56+x, r7*f[56+x])
	}
}

// store rounds v, the quantised coefficient n (row by row), to the
// nearest integer and stores it in zig-zag order. The offset makes v
// positive, so that the conversion's truncation is a floor: T.81's
// coefficients of 8-bit samples are within ±1024.
func (e *encoder) store(n int, v float32) {
	k := unzig[n&63] & 63
	c := int32(v+(1<<12+0.5)) - 1<<12
	e.coef[k] = c
	var nz uint8
	if c != 0 {
		nz = 1
	}
	e.nz[k] = nz
}

// unzig is the inverse of zigzag: a coefficient's zig-zag index by its
// place in the block.
var unzig = func() (u [64]uint8) {
	for k, z := range zigzag {
		u[z] = uint8(k)
	}
	return u
}()

// aanEven makes terms 2 and 6 from the even half's differences
// t12 = (d1+d6)-(d2+d5) and t13 = (d0+d7)-(d3+d4).
func aanEven(t12, t13 float32) (r2, r6 float32) {
	z1 := (t12 + t13) * 0.707106781 // cos(π/4)
	return t13 + z1, t13 - z1
}

// aanOdd makes the odd terms 1, 3, 5 and 7 from the differences
// t4 = d3-d4, t5 = d2-d5, t6 = d1-d6 and t7 = d0-d7.
func aanOdd(t4, t5, t6, t7 float32) (r1, r3, r5, r7 float32) {
	t10, t11, t12 := t4+t5, t5+t6, t6+t7
	z5 := (t10 - t12) * 0.382683433 // cos(3π/8)
	z2 := t10*0.541196100 + z5      // cos(π/8) - cos(3π/8)
	z4 := t12*1.306562965 + z5      // cos(π/8) + cos(3π/8)
	z3 := t11 * 0.707106781
	z11, z13 := t7+z3, t7-z3
	return z11 + z4, z13 - z2, z13 + z2, z11 - z4
}

// putBlock finishes the DCT of the block load or loadChroma began,
// quantises it with q and writes it with the DC and AC codes dc and ac
// (T.81 F.1.2), the DC as its difference from prev; it returns the
// block's quantised DC.
func (e *encoder) putBlock(q *quantizer, dc, ac *[256]huffmanCode, prev int32) int32 {
	e.fdctColumns(q)
	z := &e.coef
	e.putValue(dc, 0, z[0]-prev)
	last := 0
	for nonzero := e.nonzero() &^ 1; nonzero != 0; nonzero &= nonzero - 1 {
		k := bits.TrailingZeros64(nonzero)
		run := k - last - 1
		for ; run > 15; run -= 16 {
			e.putCode(ac[0xF0]) // sixteen zeros
		}
		e.putValue(ac, run, z[k&63])
		last = k
	}
	if last != 63 {
		e.putCode(ac[0x00]) // end of block
	}
	return z[0]
}

// nonzero is a mask of e.coef's nonzero coefficients, bit k for the kth,
// made from e.nz eight at a time: multiplying a word of eight 0 or 1
// bytes by 0x0102040810204080 puts byte i's bit at bit 56+i, and nothing
// else there.
func (e *encoder) nonzero() uint64 {
	var m uint64
	for i := range 8 {
		m |= binary.LittleEndian.Uint64(e.nz[8*i:]) * 0x0102040810204080 >> 56 << (8 * i)
	}
	return m
}

// putCode writes the code c.
func (e *encoder) putCode(c huffmanCode) { e.put(uint32(c>>8), uint(c&0xFF)) }

// putValue writes v, not zero unless it is a DC difference, after the
// code for run zeros and v's size category, as F.1.2.1 and F.1.2.2 do:
// a negative v as v-1 in its size's bits.
func (e *encoder) putValue(t *[256]huffmanCode, run int, v int32) {
	sign := v >> 31
	size := uint(bits.Len32(uint32((v ^ sign) - sign)))
	c := t[(run<<4|int(size))&0xFF]
	extra := uint32(v+sign) & (1<<size - 1)
	e.put(uint32(c>>8)<<size|extra, uint(c&0xFF)+size)
}

// finish ends the entropy-coded data, padding its last byte with 1-bits
// (T.81 F.1.2.3), and appends EOI.
func (e *encoder) finish() {
	e.put(0x7F, 7)
	for e.n >= 8 {
		e.n -= 8
		e.buf = appendStuffed(e.buf, byte(e.acc>>e.n))
	}
	e.n = 0
	e.buf = append(e.buf, 0xFF, 0xD9)
}

// A bitWriter appends entropy-coded bits to buf, with a 0 byte stuffed
// after each 0xFF (T.81 B.1.1.5).
type bitWriter struct {
	buf []byte
	acc uint64 // the low n bits are not yet in buf
	n   uint
}

// put writes the low n bits of v, n at most 32 (v has no others).
func (w *bitWriter) put(v uint32, n uint) {
	w.acc = w.acc<<n | uint64(v)
	w.n += n
	if w.n >= 32 {
		w.flush32()
	}
}

// flush32 moves the oldest 32 of the pending bits to buf. It stays out of
// put, so that put is inlined.
//
//go:noinline
func (w *bitWriter) flush32() {
	w.n -= 32
	v := uint32(w.acc >> w.n)
	if (^v-0x01010101)&v&0x80808080 == 0 { // no byte of v is 0xFF
		w.buf = binary.BigEndian.AppendUint32(w.buf, v)
		return
	}
	for s := 24; s >= 0; s -= 8 {
		w.buf = appendStuffed(w.buf, byte(v>>s))
	}
}

// appendStuffed appends the byte c of entropy-coded data, and a 0 after it
// if it is 0xFF.
func appendStuffed(b []byte, c byte) []byte {
	if c == 0xFF {
		return append(b, 0xFF, 0)
	}
	return append(b, c)
}

// appendHeaders appends everything before the entropy-coded data: SOI,
// the quantisation and Huffman tables the picture uses, the frame and the
// scan header. A grey picture has one component and needs the luminance
// tables only; colour has Y′ at 2×2 and Cb, Cr at 1×1.
func appendHeaders(b []byte, t *tables, w, h int, grey bool) []byte {
	nc := 3
	quants := []*quantizer{&t.luma, &t.chroma}
	specs := huffmanSpecs[:]
	if grey {
		nc, quants, specs = 1, quants[:1], specs[:2]
	}
	b = append(b, 0xFF, 0xD8)
	b = appendMarker(b, 0xDB, 65*len(quants))
	for i, q := range quants {
		b = append(b, uint8(i))
		b = append(b, q.dqt[:]...)
	}
	b = appendMarker(b, 0xC0, 6+3*nc)
	b = append(b, 8, uint8(h>>8), uint8(h), uint8(w>>8), uint8(w), uint8(nc))
	if grey {
		b = append(b, 1, 0x11, 0)
	} else {
		b = append(b, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
	}
	n := 0
	for _, s := range specs {
		n += 17 + len(s.values)
	}
	b = appendMarker(b, 0xC4, n)
	for i, s := range specs {
		b = append(b, "\x00\x10\x01\x11"[i]) // class and id
		b = append(b, s.counts[:]...)
		b = append(b, s.values...)
	}
	b = appendMarker(b, 0xDA, 4+2*nc)
	if grey {
		b = append(b, 1, 1, 0x00)
	} else {
		b = append(b, 3, 1, 0x00, 2, 0x11, 3, 0x11)
	}
	return append(b, 0, 63, 0) // spectral selection 0 to 63, no approximation
}

// appendMarker appends a marker and the length field of a segment of n
// bytes after it.
func appendMarker(b []byte, m byte, n int) []byte {
	return append(b, 0xFF, m, uint8((n+2)>>8), uint8(n+2))
}

// A quantizer is one quantisation table, as DQT writes it and as the
// factors fdctColumns multiplies the coefficients by in place of dividing
// them: the reciprocals of its entries, with the scale of each of the
// forward DCT's terms (aanScale) taken out.
type quantizer struct {
	dqt    [64]uint8   // zig-zag order
	factor [64]float32 // row by row
}

// init scales table (row by row) for quality as image/jpeg and libjpeg
// do: by 5000/quality percent below 50, by 200-2·quality from there.
func (q *quantizer) init(table *[64]uint8, quality int) {
	scale := 200 - 2*quality
	if quality < 50 {
		scale = 5000 / quality
	}
	for k, z := range zigzag {
		v := min(max((int(table[z])*scale+50)/100, 1), 255)
		q.dqt[k] = uint8(v)
		q.factor[z] = float32(1 / (8 * float64(v) * aanScale[z>>3] * aanScale[z&7]))
	}
}

// tables are the quantizers for one quality.
type tables struct{ luma, chroma quantizer }

// byQuality caches tables by quality, 1 to 100: built once, never changed.
var byQuality [100]atomic.Pointer[tables]

// tablesFor returns the tables for quality, clamped to 1 to 100.
func tablesFor(quality int) *tables {
	quality = min(max(quality, 1), 100)
	p := &byQuality[quality-1]
	if t := p.Load(); t != nil {
		return t
	}
	t := new(tables)
	t.luma.init(&lumaQuant, quality)
	t.chroma.init(&chromaQuant, quality)
	p.CompareAndSwap(nil, t) // a concurrent build made the same tables
	return p.Load()
}

// lumaQuant and chromaQuant are tables K.1 and K.2, row by row.
var lumaQuant = [64]uint8{
	16, 11, 10, 16, 24, 40, 51, 61,
	12, 12, 14, 19, 26, 58, 60, 55,
	14, 13, 16, 24, 40, 57, 69, 56,
	14, 17, 22, 29, 51, 87, 80, 62,
	18, 22, 37, 56, 68, 109, 103, 77,
	24, 35, 55, 64, 81, 104, 113, 92,
	49, 64, 78, 87, 103, 121, 120, 101,
	72, 92, 95, 98, 112, 100, 103, 99,
}

var chromaQuant = [64]uint8{
	17, 18, 24, 47, 99, 99, 99, 99,
	18, 21, 26, 66, 99, 99, 99, 99,
	24, 26, 56, 99, 99, 99, 99, 99,
	47, 66, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
	99, 99, 99, 99, 99, 99, 99, 99,
}

// A huffmanSpec is one of annex K.3's tables, as DHT writes it: how many
// codes of each length 1 to 16, then the symbols in code order.
type huffmanSpec struct {
	counts [16]uint8
	values []uint8
}

// huffmanSpecs are K.3.3.1's luminance DC, luminance AC, chrominance DC and
// chrominance AC tables (K.3, K.5, K.4, K.6), in the order DHT writes them.
var huffmanSpecs = [4]huffmanSpec{
	{
		[16]uint8{0, 1, 5, 1, 1, 1, 1, 1, 1},
		[]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
	},
	{
		[16]uint8{0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d},
		[]uint8{
			0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12,
			0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
			0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
			0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
			0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16,
			0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
			0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
			0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
			0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
			0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
			0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79,
			0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
			0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
			0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
			0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
			0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
			0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
			0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
			0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
			0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		},
	},
	{
		[16]uint8{0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		[]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
	},
	{
		[16]uint8{0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77},
		[]uint8{
			0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21,
			0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
			0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
			0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
			0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34,
			0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
			0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
			0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
			0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
			0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
			0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78,
			0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
			0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
			0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
			0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
			0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
			0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
			0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
			0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
			0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
			0xf9, 0xfa,
		},
	},
}

// A huffmanCode is a symbol's code: its bits above, its length in the
// low byte.
type huffmanCode uint32

// codes are huffmanSpecs' codes by symbol, made as T.81 annex C makes
// them: within each length in turn, consecutive codes.
var codes = func() (c [4][256]huffmanCode) {
	for i, s := range huffmanSpecs {
		code, k := uint32(0), 0
		for l, n := range s.counts {
			for range n {
				c[i][s.values[k]] = huffmanCode(code<<8 | uint32(l+1))
				code++
				k++
			}
			code <<= 1
		}
	}
	return c
}()

// The tables in huffmanSpecs and codes.
const (
	lumaDC = iota
	lumaAC
	chromaDC
	chromaAC
)
