// Package baseline reads the JPEGs nearly every camera, phone and Exchange
// server writes, baseline sequential DCT (ITU T.81, https://www.w3.org/Graphics/JPEG/itu-t81.pdf),
// and writes them, without image/jpeg, for three jobs image/jpeg does
// slowly:
//
//   - Check walks every entropy-coded block to the end of the scan and so
//     proves the file decodes, without reconstructing a pixel: a small part
//     of a full decode's work, and no pixels held.
//   - Decode reconstructs the picture at 1/8, 2/8, 3/8 or 4/8 of its size
//     straight from the DCT coefficients, a 1-, 2-, 3- or 4-point inverse
//     DCT per 8×8 block (as libjpeg's scaled decoding does), so a smaller
//     size is made without the full-size picture ever existing.
//   - Encode writes a Y′CbCr or grey picture as the baseline JPEG
//     image/jpeg would write (4:2:0 or grey, T.81 annex K's tables), in
//     about a third of its time.
//
// Only a subset is read: 8-bit samples, Huffman coding, one scan holding
// every component, grey or Y′CbCr with chroma at 4:4:4, 4:2:2, 4:2:0 or
// 4:4:0, restart intervals allowed. Anything else (progressive or
// arithmetic coding, 12-bit samples, several scans, CMYK, Adobe's colour
// transform, RGB) is ErrUnsupported, and so is anything this package is
// not sure about: it is strict where decoders are lenient, so that a file
// it accepts is one image/jpeg decodes too (a fuzz test holds it to that).
// Callers decode whatever it does not accept with image/jpeg, and encode
// with image/jpeg the pictures Encode does not take.
package baseline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"math"
	"sync"
)

// ErrUnsupported is returned for a JPEG outside the subset this package
// reads, or one it cannot vouch for: decode it with image/jpeg. Encode
// returns it too, for a picture it does not write (anything but an
// *image.YCbCr or *image.Gray, or an empty one): encode that with
// image/jpeg.
var ErrUnsupported = errors.New("baseline: outside the baseline JPEG this package reads and writes")

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
}

// MaxEighths is the largest scale Decode reconstructs at, 4/8: larger
// pictures are decoded whole by image/jpeg, whose fast 8-point inverse DCT
// this package does not repeat.
const MaxEighths = 4

// Header is what the frame header says.
type Header struct {
	Width, Height int
	Components    int // 1 (grey) or 3 (Y′CbCr)
	// Ratio is the chroma subsampling of a three-component picture.
	Ratio image.YCbCrSubsampleRatio
}

type component struct {
	id     byte
	h, v   int // sampling factors
	tq     int // quantisation table
	td, ta int // DC and AC Huffman tables, from the scan header
	bw, bh int // blocks across and down, whole MCUs
}

type file struct {
	b          []byte
	hdr        Header
	comps      []component
	quant      [4][64]int32 // zig-zag order, as DQT stores them
	haveQuant  [4]bool
	dc, ac     [4]*huffman // nil until DHT defines them
	restart    int
	scan       int // offset of the entropy-coded data
	mcuX, mcuY int
	interleave bool
}

// parse reads b's markers up to the start of its scan: the frame, the
// tables, the restart interval.
func parse(b []byte) (*file, error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != 0xD8 {
		return nil, unsupported("no SOI marker")
	}
	f := &file{b: b}
	i := 2
	frame := false
	for {
		if i+4 > len(b) || b[i] != 0xFF {
			return nil, unsupported("no marker at offset %d", i)
		}
		m := b[i+1]
		if m == 0x01 || m >= 0xD0 && m <= 0xD9 || m == 0xFF || m == 0x00 {
			return nil, unsupported("marker 0x%02X out of place", m)
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return nil, unsupported("segment 0x%02X overruns the file", m)
		}
		seg := b[i+4 : i+2+n]
		i += 2 + n
		var err error
		switch {
		case m == 0xC0 || m == 0xC1: // baseline, extended sequential Huffman
			if frame {
				return nil, unsupported("two frames")
			}
			frame = true
			err = f.frame(seg)
		case m >= 0xC2 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC:
			return nil, unsupported("frame type 0x%02X", m)
		case m == 0xC4:
			err = f.huffmanTables(seg)
		case m == 0xDB:
			err = f.quantTables(seg)
		case m == 0xDD:
			if len(seg) != 2 {
				return nil, unsupported("DRI length %d", len(seg))
			}
			f.restart = int(binary.BigEndian.Uint16(seg))
		case m == 0xEE && len(seg) >= 5 && string(seg[:5]) == "Adobe":
			return nil, unsupported("Adobe colour transform")
		case m >= 0xE0 && m <= 0xEF || m == 0xFE: // APPn, COM
		case m == 0xDA:
			if !frame {
				return nil, unsupported("scan before frame")
			}
			if err := f.scanHeader(seg); err != nil {
				return nil, err
			}
			f.scan = i
			// Every block takes two bits at least (its DC category and
			// its end of block): a header promising more blocks than the
			// data can hold is refused before anything is allocated.
			blocks := int64(f.mcuX) * int64(f.mcuY)
			if f.interleave {
				blocks *= int64(f.comps[0].h*f.comps[0].v + 2)
			}
			if blocks > 4*int64(len(b)-i) {
				return nil, unsupported("%d blocks in %d bytes", blocks, len(b)-i)
			}
			return f, nil
		default:
			return nil, unsupported("marker 0x%02X", m)
		}
		if err != nil {
			return nil, err
		}
	}
}

func (f *file) frame(seg []byte) error {
	if len(seg) < 6 || seg[0] != 8 {
		return unsupported("frame header: not 8-bit")
	}
	h, w, nc := int(binary.BigEndian.Uint16(seg[1:])), int(binary.BigEndian.Uint16(seg[3:])), int(seg[5])
	if w == 0 || h == 0 {
		return unsupported("frame of %dx%d", w, h)
	}
	if (nc != 1 && nc != 3) || len(seg) != 6+3*nc {
		return unsupported("frame of %d components", nc)
	}
	f.hdr = Header{Width: w, Height: h, Components: nc}
	for c := range nc {
		p := seg[6+3*c:]
		comp := component{id: p[0], h: int(p[1] >> 4), v: int(p[1] & 15), tq: int(p[2])}
		if comp.tq > 3 {
			return unsupported("quantisation table %d", comp.tq)
		}
		// T.81 B.2.2: 1 to 4 each, also for the one component of a grey
		// frame, whose factors are then read as 1×1; image/jpeg refuses
		// such a frame, and one with a factor of 3 anywhere.
		if comp.h < 1 || comp.h > 4 || comp.v < 1 || comp.v > 4 || comp.h == 3 || comp.v == 3 {
			return unsupported("sampling factors %d×%d", comp.h, comp.v)
		}
		for _, other := range f.comps {
			if other.id == comp.id {
				return unsupported("component id %d twice", comp.id) // T.81 B.2.2
			}
		}
		f.comps = append(f.comps, comp)
	}
	if nc == 1 {
		// One component is a non-interleaved scan: an MCU is one block.
		f.comps[0].h, f.comps[0].v = 1, 1
		f.mcuX, f.mcuY = (w+7)/8, (h+7)/8
		f.comps[0].bw, f.comps[0].bh = f.mcuX, f.mcuY
		return nil
	}
	if f.comps[0].id == 'R' && f.comps[1].id == 'G' && f.comps[2].id == 'B' {
		return unsupported("RGB components")
	}
	y := f.comps[0]
	if f.comps[1].h != 1 || f.comps[1].v != 1 || f.comps[2].h != 1 || f.comps[2].v != 1 {
		return unsupported("chroma sampling %d×%d", f.comps[1].h, f.comps[1].v)
	}
	switch [2]int{y.h, y.v} {
	case [2]int{1, 1}:
		f.hdr.Ratio = image.YCbCrSubsampleRatio444
	case [2]int{2, 1}:
		f.hdr.Ratio = image.YCbCrSubsampleRatio422
	case [2]int{2, 2}:
		f.hdr.Ratio = image.YCbCrSubsampleRatio420
	case [2]int{1, 2}:
		f.hdr.Ratio = image.YCbCrSubsampleRatio440
	default:
		return unsupported("luma sampling %d×%d", y.h, y.v)
	}
	f.interleave = true
	f.mcuX, f.mcuY = (w+8*y.h-1)/(8*y.h), (h+8*y.v-1)/(8*y.v)
	for c := range f.comps {
		f.comps[c].bw, f.comps[c].bh = f.mcuX*f.comps[c].h, f.mcuY*f.comps[c].v
	}
	return nil
}

func (f *file) quantTables(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if tq > 3 || pq > 1 {
			return unsupported("DQT table %d precision %d", tq, pq)
		}
		size := 64 * int(1+pq)
		if len(seg) < 1+size {
			return unsupported("DQT too short")
		}
		for k := range 64 {
			if pq == 0 {
				f.quant[tq][k] = int32(seg[1+k])
			} else {
				f.quant[tq][k] = int32(binary.BigEndian.Uint16(seg[1+2*k:]))
			}
		}
		f.haveQuant[tq] = true
		seg = seg[1+size:]
	}
	return nil
}

func (f *file) huffmanTables(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return unsupported("DHT too short")
		}
		class, id := seg[0]>>4, int(seg[0]&15)
		if class > 1 || id > 3 {
			return unsupported("DHT class %d table %d", class, id)
		}
		var counts [16]int
		total := 0
		for l := range 16 {
			counts[l] = int(seg[1+l])
			total += counts[l]
		}
		if total == 0 || total > 256 || len(seg) < 17+total {
			return unsupported("DHT of %d codes", total)
		}
		tables := &f.dc
		if class == 1 {
			tables = &f.ac
		}
		t, err := builtTable(seg[:17+total])
		if err != nil {
			return err
		}
		tables[id] = t
		seg = seg[17+total:]
	}
	return nil
}

func (f *file) scanHeader(seg []byte) error {
	if len(seg) < 1 {
		return unsupported("SOS too short")
	}
	ns := int(seg[0])
	if ns != len(f.comps) || len(seg) != 1+2*ns+3 {
		return unsupported("a scan of %d of %d components", ns, len(f.comps))
	}
	for c := range ns {
		// Components in the scan are in frame order in every file seen in
		// practice; a file that reorders them is left to image/jpeg.
		comp := &f.comps[c]
		if seg[1+2*c] != comp.id {
			return unsupported("scan component %d is not the frame's", c)
		}
		tables := seg[2+2*c]
		comp.td, comp.ta = int(tables>>4), int(tables&15)
		if comp.td > 3 || comp.ta > 3 || f.dc[comp.td] == nil || f.ac[comp.ta] == nil || !f.haveQuant[comp.tq] {
			return unsupported("component %d's tables are missing", c)
		}
	}
	if ss, se, a := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]; ss != 0 || se != 63 || a != 0 {
		return unsupported("spectral selection %d–%d, approximation %d", ss, se, a)
	}
	return nil
}

// built holds decoding tables already built, by their DHT bytes (class,
// id, counts, values): most JPEGs carry T.81 annex K's example tables, as
// Go's and libjpeg's encoders write them, so a table is built once per
// process, not once per image. Tables are never changed once built.
var built struct {
	sync.Mutex
	m map[string]*huffman
}

// maxBuilt bounds built: images with tables of their own (optimised
// coding) build theirs each time once it is full.
const maxBuilt = 64

// builtTable returns the table DHT describes with def (its class and id
// byte, 16 counts and the values), building it if need be.
func builtTable(def []byte) (*huffman, error) {
	built.Lock()
	t := built.m[string(def)]
	built.Unlock()
	if t != nil {
		return t, nil
	}
	var counts [16]int
	for l := range 16 {
		counts[l] = int(def[1+l])
	}
	t = new(huffman)
	if err := t.build(counts, def[17:], def[0]>>4 == 0); err != nil {
		return nil, err
	}
	built.Lock()
	if built.m == nil {
		built.m = make(map[string]*huffman)
	}
	if len(built.m) < maxBuilt {
		built.m[string(def)] = t
	}
	built.Unlock()
	return t, nil
}

// huffman is one decoding table: codes of up to lookBits bits are found in
// lookup at once, longer ones through maxCode and valPtr (T.81 F.2.2.3).
type huffman struct {
	lookup [1 << lookBits]uint16 // value | length<<8; 0 when the code is longer
	// skip serves Check, which needs no coefficient's value: for each
	// fastBits prefix, the bits of a code and the extra bits after it,
	// when they fit (<<8), and what the symbol does (skipEOB, skipZRL,
	// else how far it moves along the block); 0 when they do not fit.
	skip [1 << fastBits]uint32
	// runs, in an AC table, is for each prefix the coefficients its bits
	// hold one after another, maybe closed by the end of the block: their
	// bits (<<8), how far they move along the block, and runEOB when the
	// end of the block is the last; 0 when not one fits. One lookup skips
	// them all.
	runs [1 << fastBits]uint32
	// starts, in an AC table, are the blockStarts made with it (startsOf).
	startsMu sync.Mutex
	starts   []startsWith
	maxCode  [17]int32 // largest code of each length, -1 for none
	valPtr   [17]int32 // index in vals of each length's first code, less that code
	vals     [256]uint8
}

const (
	lookBits = 9
	fastBits = 11

	skipEOB = 1 << 6
	skipZRL = 1 << 5
	runEOB  = 1 << 7
)

// build makes t from DHT's counts per code length and values (T.81 C.2),
// refusing a table whose codes overflow their lengths or that uses a code
// of all one bits, and a DC table with a category over 11.
func (t *huffman) build(counts [16]int, vals []byte, dc bool) error {
	*t = huffman{}
	copy(t.vals[:], vals)
	if dc {
		for _, v := range vals {
			if v > 11 {
				return unsupported("DC category %d", v)
			}
		}
	}
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		t.maxCode[l] = -1
		if n > 0 {
			t.valPtr[l] = k - code
			for range n {
				if code >= 1<<l-1 {
					// Past the codes of this length, or the one of all one bits.
					return unsupported("Huffman codes overflow %d bits", l)
				}
				if l <= lookBits {
					lo := code << (lookBits - l)
					for j := range int32(1) << (lookBits - l) {
						t.lookup[lo+j] = uint16(t.vals[k]) | uint16(l)<<8
					}
				}
				if e := skipEntry(t.vals[k], l, dc); e != 0 {
					lo := code << (fastBits - l)
					for j := range int32(1) << (fastBits - l) {
						t.skip[lo+j] = e
					}
				}
				code++
				k++
			}
			t.maxCode[l] = code - 1
		}
		code <<= 1
	}
	if !dc {
		t.runSkips()
	}
	return nil
}

// runSkips fills runs from skip (runFrom from each prefix's start).
func (t *huffman) runSkips() {
	for p := range t.runs {
		t.runs[p] = t.runFrom(p, 0)
	}
}

// runFrom is the runs entry of the AC table t for the prefix p past its
// first bits: symbol after symbol as long as each one's bits are all
// within the prefix, stopping after the end of the block and before a run
// of 16 zeros (left for a lookup of its own). The entry's bits count the
// first ones too; it is 0 when that makes none.
func (t *huffman) runFrom(p, bits int) uint32 {
	e := uint32(bits) << 8
	adv := 0
	for adv < 64 {
		s := t.skip[(p<<bits)&(1<<fastBits-1)]
		l := int(s >> 8 & 31)
		if s == 0 || s&skipZRL != 0 || l > fastBits-bits {
			break
		}
		bits += l
		if s&skipEOB != 0 {
			return runEOB | uint32(bits)<<8 | uint32(adv)
		}
		adv += int(s & 31)
		e = uint32(bits)<<8 | uint32(adv)
	}
	return e
}

// blockStarts is, for a DC and an AC table used together, each fastBits
// prefix's start of a block: the DC difference, then what the AC table's
// runs entry would say after it, in the same form (0 when the DC
// difference does not fit). Most blocks of a photo's smooth areas are a DC
// difference and the end of the block: one lookup reads them.
type blockStarts [1 << fastBits]uint32

// startsOf returns the blockStarts of dc and ac, building them if need be.
// The AC table keeps them, for the first two DC tables it is used with (a
// file uses one with each), so they live as long as the tables do.
func startsOf(dc, ac *huffman) *blockStarts {
	ac.startsMu.Lock()
	defer ac.startsMu.Unlock()
	for _, s := range ac.starts {
		if s.dc == dc {
			return s.b
		}
	}
	b := new(blockStarts)
	for p := range b {
		if e := dc.skip[p]; e != 0 {
			b[p] = ac.runFrom(p, int(e>>8&31))
		}
	}
	if len(ac.starts) < 2 {
		ac.starts = append(ac.starts, startsWith{dc, b})
	}
	return b
}

// startsWith is the blockStarts of an AC table with the DC table dc.
type startsWith struct {
	dc *huffman
	b  *blockStarts
}

// skipEntry is huffman.skip's entry for the symbol v coded in l bits: 0
// when the code and the bits after it do not fit in fastBits, or the
// symbol is one the walk refuses (those go the slow way, to its errors).
func skipEntry(v uint8, l int, dc bool) uint32 {
	run, size := int(v>>4), int(v&15)
	total, what := l, 0
	switch {
	case dc:
		total, what = l+int(v), 1
	case v == 0x00:
		what = skipEOB
	case v == 0xF0:
		what = skipZRL | 16
	case size == 0 || size > 10:
		return 0
	default:
		total, what = l+size, run+1
	}
	if total > fastBits {
		return 0
	}
	return uint32(total)<<8 | uint32(what)
}

var errData = unsupported("entropy-coded data does not decode")

// reader reads the entropy-coded data MSB first, taking out stuffed zero
// bytes and stopping at the first marker.
type reader struct {
	b      []byte
	pos    int
	acc    uint64 // the next n bits, left-aligned
	n      int
	marker bool // pos is at a marker: no more data before it
}

func (r *reader) fill() {
	for r.n <= 56 && !r.marker {
		if r.pos >= len(r.b) {
			r.marker = true
			return
		}
		c := r.b[r.pos]
		if c == 0xFF {
			if r.pos+1 >= len(r.b) || r.b[r.pos+1] != 0x00 {
				r.marker = true
				return
			}
			r.pos++
		}
		r.pos++
		r.acc |= uint64(c) << (56 - r.n)
		r.n += 8
	}
}

func (r *reader) decode(t *huffman) (uint8, error) {
	if r.n < 16 {
		r.fill()
	}
	if e := t.lookup[r.acc>>(64-lookBits)]; e != 0 {
		l := int(e >> 8)
		if l > r.n {
			return 0, errData
		}
		r.acc <<= l
		r.n -= l
		return uint8(e), nil
	}
	code := int32(0)
	for l := 1; l <= 16; l++ {
		if r.n == 0 {
			return 0, errData
		}
		code = code<<1 | int32(r.acc>>63)
		r.acc <<= 1
		r.n--
		if code <= t.maxCode[l] {
			return t.vals[t.valPtr[l]+code], nil
		}
	}
	return 0, errData
}

// receive reads s bits as T.81's RECEIVE and EXTEND do.
func (r *reader) receive(s int) (int32, error) {
	if r.n < s {
		r.fill()
		if r.n < s {
			return 0, errData
		}
	}
	v := int32(r.acc >> (64 - s))
	r.acc <<= s
	r.n -= s
	if v < 1<<(s-1) {
		v -= 1<<s - 1
	}
	return v, nil
}

// boundary expects the data to end where r is, but for the padding of its
// last byte, at a marker; it returns the marker and the offset after it.
func (r *reader) boundary() (byte, int, error) {
	r.fill()
	if r.n >= 8 || !r.marker {
		return 0, 0, unsupported("data left before a marker")
	}
	p := r.pos
	for p+1 < len(r.b) && r.b[p] == 0xFF && r.b[p+1] == 0xFF {
		p++ // fill bytes
	}
	if p+1 >= len(r.b) || r.b[p] != 0xFF {
		return 0, 0, unsupported("entropy-coded data does not end")
	}
	return r.b[p+1], p + 2, nil
}

// skipBlock reads one block's codes and the bits after them, keeping no
// value: what Check does, with the same refusals as the walk's decoding.
// It works on copies of the bit buffer in locals, which the compiler keeps
// in registers, and puts them back before anything else reads r.
func (r *reader) skipBlock(dc, ac *huffman, st *blockStarts) error {
	if r.n < 32 {
		r.fill()
	}
	acc, n := r.acc, r.n
	k := 0 // 0 until the DC difference is read
	// The DC difference and what follows it in one lookup, when it fits;
	// as for runs, the end of the block only where it has not ended.
	if e := st[acc>>(64-fastBits)]; e != 0 && int(e>>8&31) <= n {
		l, next := int(e>>8&31), 1+int(e&127)
		switch {
		case e&runEOB != 0 && next < 64:
			r.acc, r.n = acc<<l, n-l
			return nil
		case e&runEOB == 0 && next <= 64:
			acc <<= l
			n -= l
			k = next
		}
	}
	if k == 0 {
		k = 1
		if e := dc.skip[acc>>(64-fastBits)]; e != 0 && int(e>>8&31) <= n {
			acc <<= e >> 8 & 31
			n -= int(e >> 8 & 31)
		} else {
			r.acc, r.n = acc, n
			if _, err := r.dcDiff(dc); err != nil {
				return err
			}
			acc, n = r.acc, r.n
		}
	}
	for k < 64 {
		if n < 32 {
			r.acc, r.n = acc, n
			r.fill()
			acc, n = r.acc, r.n
		}
		// As many coefficients as one lookup finds, and the end of the
		// block after them, when they stay inside it: the end only counts
		// where the block has not ended already.
		if e := ac.runs[acc>>(64-fastBits)]; e != 0 && int(e>>8&31) <= n {
			if next := k + int(e&127); e&runEOB == 0 && next <= 64 {
				acc <<= e >> 8 & 31
				n -= int(e >> 8 & 31)
				k = next
				continue
			} else if e&runEOB != 0 && next < 64 {
				r.acc, r.n = acc<<(e>>8&31), n-int(e>>8&31)
				return nil
			}
		}
		// One symbol at a time: a run of 16 zeros, the end of a block
		// already full, and codes the tables do not hold.
		e := ac.skip[acc>>(64-fastBits)]
		if e == 0 || int(e>>8&31) > n {
			r.acc, r.n = acc, n
			next, _, _, end, err := r.acSymbol(ac, k)
			if end || err != nil {
				return err
			}
			acc, n = r.acc, r.n
			k = next
			continue
		}
		switch {
		case e&skipEOB != 0:
			r.acc, r.n = acc<<(e>>8&31), n-int(e>>8&31)
			return nil
		case e&skipZRL != 0:
			acc <<= e >> 8 & 31
			n -= int(e >> 8 & 31)
			if k += 16; k > 63 {
				return errData
			}
			continue
		}
		if k += int(e & 31); k > 64 {
			return errData
		}
		acc <<= e >> 8 & 31
		n -= int(e >> 8 & 31)
	}
	r.acc, r.n = acc, n
	return nil
}

// dcDiff reads a block's DC difference (T.81 F.2.2.1).
func (r *reader) dcDiff(t *huffman) (int32, error) {
	s, err := r.decode(t)
	switch {
	case err != nil:
		return 0, err
	case s > 11:
		return 0, errData
	case s == 0:
		return 0, nil
	}
	return r.receive(int(s))
}

// acSymbol reads the AC symbol of a block at zig-zag index k (T.81
// F.2.2.2): the block's end, a run of 16 zeros (at is -1), or the
// coefficient at index at, with its value; next is where the block goes
// on. A run past the block, a size over 10 and a size-0 symbol other than
// those two are refused.
func (r *reader) acSymbol(t *huffman, k int) (next, at int, v int32, end bool, err error) {
	rs, err := r.decode(t)
	if err != nil {
		return 0, 0, 0, false, err
	}
	run, size := int(rs>>4), int(rs&15)
	switch {
	case size == 0 && run == 0:
		return 0, 0, 0, true, nil
	case size == 0 && run == 15:
		if k += 16; k > 63 {
			return 0, 0, 0, false, errData
		}
		return k, -1, 0, false, nil
	case size == 0:
		return 0, 0, 0, false, errData
	}
	if k += run; k > 63 || size > 10 {
		return 0, 0, 0, false, errData
	}
	if v, err = r.receive(size); err != nil {
		return 0, 0, 0, false, err
	}
	return k + 1, k, v, false, nil
}

// zigzag maps a coefficient's zig-zag index to its place in the 8×8 block.
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

// plane is one component's samples at the decode's scale.
type plane struct {
	pix    []uint8
	stride int
}

// walk decodes every block of the scan and reconstructs each as n×n
// samples (n eighths of it) into its component's plane; check is its
// counterpart that keeps nothing.
func (f *file) walk(planes []plane, n int) error {
	r := reader{b: f.b, pos: f.scan}
	var pred [3]int32
	var coef [64]int32
	var keep [64]int8 // zig-zag index → place in an n×n block, -1 when not kept
	for k, z := range zigzag {
		keep[k] = -1
		if u, v := int(z%8), int(z/8); u < n && v < n {
			keep[k] = int8(v*n + u)
		}
	}
	total := f.mcuX * f.mcuY
	rst := 0
	for m := range total {
		if f.restart > 0 && m > 0 && m%f.restart == 0 {
			if err := f.restartAt(&r, &rst); err != nil {
				return err
			}
			pred = [3]int32{}
		}
		mx, my := m%f.mcuX, m/f.mcuX
		for ci := range f.comps {
			c := &f.comps[ci]
			q := &f.quant[c.tq]
			dc, ac := f.dc[c.td], f.ac[c.ta]
			for by := range c.v {
				for bx := range c.h {
					clear(coef[:n*n])
					flat := true // no coefficient kept but DC
					d, err := r.dcDiff(dc)
					if err != nil {
						return err
					}
					pred[ci] += d
					coef[0] = pred[ci] * q[0]
					// acSymbol's steps, written out: this loop runs for
					// every coefficient of a decode, and the call costs 12%.
					for k := 1; k < 64; {
						rs, err := r.decode(ac)
						if err != nil {
							return err
						}
						run, size := int(rs>>4), int(rs&15)
						if size == 0 {
							if run == 0 {
								break // end of block
							}
							if run != 15 {
								return errData
							}
							if k += 16; k > 63 {
								return errData
							}
							continue
						}
						if k += run; k > 63 || size > 10 {
							return errData
						}
						v, err := r.receive(size)
						if err != nil {
							return err
						}
						if p := keep[k]; p >= 0 {
							coef[p] = v * q[k]
							flat = false
						}
						k++
					}
					p := planes[ci]
					x, y := (mx*c.h+bx)*n, (my*c.v+by)*n
					idct(p.pix[y*p.stride+x:], p.stride, &coef, n, flat)
				}
			}
		}
	}
	return r.end()
}

// restartAt expects, where r is, the restart marker after rst others, and
// starts r anew after it.
func (f *file) restartAt(r *reader, rst *int) error {
	mk, next, err := r.boundary()
	if err != nil {
		return err
	}
	if want := 0xD0 + byte(*rst&7); mk != want {
		return unsupported("restart marker 0x%02X, want 0x%02X", mk, want)
	}
	*rst++
	*r = reader{b: f.b, pos: next}
	return nil
}

// end expects the scan to end where r is, with EOI.
func (r *reader) end() error {
	mk, _, err := r.boundary()
	if err != nil {
		return err
	}
	if mk != 0xD9 {
		return unsupported("marker 0x%02X after the scan, want EOI", mk)
	}
	return nil
}

// check reads every block of the scan as walk does, keeping nothing: the
// tables of each block of an MCU are looked up once, not per block.
func (f *file) check() error {
	type unit struct {
		dc, ac *huffman
		starts *blockStarts
	}
	var units [10]unit // T.81 B.2.3: at most 10 blocks in an MCU
	nu := 0
	for ci := range f.comps {
		c := &f.comps[ci]
		for range c.v * c.h {
			if nu == len(units) {
				return unsupported("more than %d blocks in an MCU", len(units))
			}
			units[nu] = unit{f.dc[c.td], f.ac[c.ta], startsOf(f.dc[c.td], f.ac[c.ta])}
			nu++
		}
	}
	r := reader{b: f.b, pos: f.scan}
	rst := 0
	for m := range f.mcuX * f.mcuY {
		if f.restart > 0 && m > 0 && m%f.restart == 0 {
			if err := f.restartAt(&r, &rst); err != nil {
				return err
			}
		}
		for _, u := range units[:nu] {
			if err := r.skipBlock(u.dc, u.ac, u.starts); err != nil {
				return err
			}
		}
	}
	return r.end()
}

// Check parses b and decodes its every block, without reconstructing
// them. nil means b is a whole baseline JPEG that ends with EOI right after
// its one scan; an error wraps ErrUnsupported.
func Check(b []byte) (Header, error) {
	f, err := parse(b)
	if err != nil {
		return Header{}, err
	}
	return f.hdr, f.check()
}

// DecodeHeader parses b up to its scan and returns its header.
func DecodeHeader(b []byte) (Header, error) {
	f, err := parse(b)
	if err != nil {
		return Header{}, err
	}
	return f.hdr, nil
}

// Size is the size of a w×h picture decoded at eighths/8 of it.
func Size(w, h, eighths int) (int, int) { return (w*eighths + 7) / 8, (h*eighths + 7) / 8 }

// Bytes is how many bytes of samples Decode holds for a picture with
// header hd at eighths/8: its planes, in whole MCUs.
func Bytes(hd Header, eighths int) int64 {
	n := int64(eighths)
	mw, mh := int64(1), int64(1)
	switch hd.Ratio {
	case image.YCbCrSubsampleRatio422:
		mw = 2
	case image.YCbCrSubsampleRatio420:
		mw, mh = 2, 2
	case image.YCbCrSubsampleRatio440:
		mh = 2
	}
	bw, bh := (int64(hd.Width)+8*mw-1)/(8*mw), (int64(hd.Height)+8*mh-1)/(8*mh)
	px := bw * bh * n * n // one chroma plane, or a grey picture's MCUs
	if hd.Components == 1 {
		return px
	}
	return px * (mw*mh + 2)
}

// Decode decodes b at eighths/8 of its size (1/8, 2/8, 3/8 or 4/8) into a
// *image.YCbCr, or an *image.Gray for a grey JPEG, whose bounds are
// Size(width, height, eighths).
func Decode(b []byte, eighths int) (image.Image, error) {
	if eighths < 1 || eighths > MaxEighths {
		return nil, fmt.Errorf("baseline: scale %d/8, want 1/8 to %d/8", eighths, MaxEighths)
	}
	f, err := parse(b)
	if err != nil {
		return nil, err
	}
	n := eighths
	planes := make([]plane, len(f.comps))
	for i, c := range f.comps {
		planes[i] = plane{pix: make([]uint8, c.bw*n*c.bh*n), stride: c.bw * n}
	}
	if err := f.walk(planes, n); err != nil {
		return nil, err
	}
	w, h := Size(f.hdr.Width, f.hdr.Height, eighths)
	rect := image.Rect(0, 0, w, h)
	if len(planes) == 1 {
		return &image.Gray{Pix: planes[0].pix, Stride: planes[0].stride, Rect: rect}, nil
	}
	return &image.YCbCr{Y: planes[0].pix, Cb: planes[1].pix, Cr: planes[2].pix,
		YStride: planes[0].stride, CStride: planes[1].stride, SubsampleRatio: f.hdr.Ratio, Rect: rect}, nil
}

// The scaled inverse DCTs below are T.81's 8-point inverse DCT (A.3.3)
// sampled at the centres of n output samples, each standing for 8/n input
// ones, from the n×n lowest frequencies: for output x and coefficient k,
// ½·C(k)·cos((2x+1)kπ/2n), C(0) = 1/√2 and 1 otherwise, computed as rows,
// then columns, with the usual even/odd butterflies, in fixed point with
// idctBits fraction bits per pass.
const (
	idctBits = 13
	c4       = 2896 // ½·cos(π/4)·2^13, also ½·C(0)
	c1       = 3784 // ½·cos(π/8)·2^13
	c3       = 1567 // ½·cos(3π/8)·2^13
)

// idct writes the n×n samples of the block whose n×n lowest dequantised
// coefficients are coef (row-major) at dst, stride apart; flat says all
// but coef[0] are zero, when every sample is the block's mean.
func idct(dst []uint8, stride int, coef *[64]int32, n int, flat bool) {
	if n == 1 || flat {
		v := clamp((int64(coef[0]) + 4) >> 3)
		for y := range n {
			row := dst[y*stride : y*stride+n]
			for x := range row {
				row[x] = v
			}
		}
		return
	}
	const round = 1 << (2*idctBits - 1)
	if n == 3 {
		idct3(dst, stride, coef)
		return
	}
	if n == 2 {
		a, b, c, d := int64(coef[0]), int64(coef[1]), int64(coef[2]), int64(coef[3])
		r0, r1 := c4*(a+b), c4*(a-b) // row 0 along x
		r2, r3 := c4*(c+d), c4*(c-d) // row 1
		dst[0] = clamp((c4*(r0+r2) + round) >> (2 * idctBits))
		dst[1] = clamp((c4*(r1+r3) + round) >> (2 * idctBits))
		dst[stride] = clamp((c4*(r0-r2) + round) >> (2 * idctBits))
		dst[stride+1] = clamp((c4*(r1-r3) + round) >> (2 * idctBits))
		return
	}
	var t [16]int64 // t[v*4+x]: coefficient row v transformed along x
	for v := range 4 {
		r := coef[v*4 : v*4+4]
		if r[0]|r[1]|r[2]|r[3] == 0 {
			continue
		}
		e0, e1 := c4*int64(r[0]+r[2]), c4*int64(r[0]-r[2])
		o0, o1 := c1*int64(r[1])+c3*int64(r[3]), c3*int64(r[1])-c1*int64(r[3])
		t[v*4], t[v*4+1], t[v*4+2], t[v*4+3] = e0+o0, e1+o1, e1-o1, e0-o0
	}
	for x := range 4 {
		e0, e1 := c4*(t[x]+t[8+x]), c4*(t[x]-t[8+x])
		o0, o1 := c1*t[4+x]+c3*t[12+x], c3*t[4+x]-c1*t[12+x]
		dst[x] = clamp((e0 + o0 + round) >> (2 * idctBits))
		dst[stride+x] = clamp((e1 + o1 + round) >> (2 * idctBits))
		dst[2*stride+x] = clamp((e1 - o1 + round) >> (2 * idctBits))
		dst[3*stride+x] = clamp((e0 - o0 + round) >> (2 * idctBits))
	}
}

// basis3[x*3+k] is ½·C(k)·cos((2x+1)kπ/6)·2^idctBits, the 3-point
// inverse DCT the way the others sample the 8-point one.
var basis3 = func() (b [9]int64) {
	for x := range 3 {
		for k := range 3 {
			c := 1.0
			if k == 0 {
				c = 1 / math.Sqrt2
			}
			b[x*3+k] = int64(math.Round(0.5 * c * math.Cos(float64((2*x+1)*k)*math.Pi/6) * (1 << idctBits)))
		}
	}
	return b
}()

// idct3 is idct for n = 3, with the basis as a matrix: there is no
// butterfly worth having at three points.
func idct3(dst []uint8, stride int, coef *[64]int32) {
	const n = 3
	a := basis3[:]
	var t [9]int64
	for v := range n {
		r := coef[v*n : v*n+n]
		for x := range n {
			var acc int64
			for u, c := range r {
				acc += int64(c) * a[x*n+u]
			}
			t[v*n+x] = acc
		}
	}
	const round = 1 << (2*idctBits - 1)
	for y := range n {
		out := dst[y*stride : y*stride+n]
		for x := range out {
			var acc int64
			for v := range n {
				acc += t[v*n+x] * a[y*n+v]
			}
			out[x] = clamp((acc + round) >> (2 * idctBits))
		}
	}
}

func clamp(v int64) uint8 {
	v += 128
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
