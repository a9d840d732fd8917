package scale

import "math"

// plane is one channel (or ch interleaved channels) of 8-bit samples: w
// bytes of each of h rows, stride apart.
type plane struct {
	pix    []uint8
	stride int
	w, h   int
}

// fitPlane scales src into dst (one sample per pixel): a box pre-shrink by
// k when k ≥ 2, then Catmull-Rom the rest of the way.
func fitPlane(dst, src plane, k int) {
	if k >= 2 {
		w, h := (src.w+k-1)/k, (src.h+k-1)/k
		pre := plane{make([]uint8, w*h), w, w, h}
		boxShrink(pre, src, k, 1)
		src = pre
	}
	catmullRom(dst, src)
}

// boxShrink writes into dst the mean of each k×k block of src, ch
// interleaved channels per pixel; partial blocks at the edges average what
// they hold. dst.w and src.w count bytes, channels included.
func boxShrink(dst, src plane, k, ch int) {
	sw, dw := src.w/ch, dst.w/ch
	sums := make([]uint32, dst.w)
	for oy := range dst.h {
		clear(sums)
		y0, y1 := oy*k, min((oy+1)*k, src.h)
		for y := y0; y < y1; y++ {
			row := src.pix[y*src.stride : y*src.stride+src.w]
			if ch == 1 {
				for ox := range dw {
					var s uint32
					for _, v := range row[ox*k : min((ox+1)*k, sw)] {
						s += uint32(v)
					}
					sums[ox] += s
				}
				continue
			}
			for x := range sw {
				p := row[x*ch : x*ch+ch]
				s := sums[(x/k)*ch : (x/k)*ch+ch]
				for c := range ch {
					s[c] += uint32(p[c])
				}
			}
		}
		out := dst.pix[oy*dst.stride : oy*dst.stride+dst.w]
		rows := uint32(y1 - y0)
		for ox := range dw {
			n := rows * uint32(min((ox+1)*k, sw)-ox*k)
			for c := range ch {
				out[ox*ch+c] = uint8((sums[ox*ch+c] + n/2) / n)
			}
		}
	}
}

// Fixed-point scales of the two Catmull-Rom passes: weights carry
// weightBits fraction bits, the horizontal pass keeps midBits of its
// result's fraction for the vertical one.
const (
	weightBits = 12
	midBits    = 6
)

// taps are the filter weights for each output sample along one axis: the
// first source index and n weights (zero-padded at the edges).
type taps struct {
	start []int
	w     []int32
	n     int
}

// catmullRomTaps is what golang.org/x/image/draw.CatmullRom computes for
// one axis from sn samples to dn: the kernel widened by the reduction,
// centred on each output sample, cut at the edges and normalised.
func catmullRomTaps(dn, sn int) taps {
	scale := float64(sn) / float64(dn)
	half, arg := 2.0, 1.0
	if scale > 1 {
		half, arg = 2*scale, 1/scale
	}
	n := min(sn, int(math.Ceil(2*half))+1)
	t := taps{start: make([]int, dn), w: make([]int32, dn*n), n: n}
	fw := make([]float64, n)
	for i := range dn {
		c := (float64(i)+0.5)*scale - 0.5
		lo := max(0, int(math.Ceil(c-half)))
		hi := min(sn-1, int(math.Floor(c+half)))
		if hi-lo+1 > n {
			hi = lo + n - 1
		}
		var total float64
		for j := lo; j <= hi; j++ {
			x := math.Abs(float64(j)-c) * arg
			v := 0.0
			switch {
			case x < 1:
				v = (1.5*x-2.5)*x*x + 1
			case x < 2:
				v = ((-0.5*x+2.5)*x-4)*x + 2
			}
			fw[j-lo] = v
			total += v
		}
		t.start[i] = lo
		w := t.w[i*n : i*n+n]
		var sum, big int32
		for j := lo; j <= hi; j++ {
			w[j-lo] = int32(math.Round(fw[j-lo] / total * (1 << weightBits)))
			sum += w[j-lo]
			if w[j-lo] > w[big] {
				big = int32(j - lo)
			}
		}
		w[big] += 1<<weightBits - sum // the rounding error, where it matters least
		if t.start[i]+n > sn {
			// Keep every tap inside the source: shift the window left,
			// its weights with it (the ones that fall off are zero).
			shift := t.start[i] + n - sn
			copy(w[shift:], w[:n-shift])
			clear(w[:shift])
			t.start[i] -= shift
		}
	}
	return t
}

// catmullRom scales src into dst with Catmull-Rom, horizontally then
// vertically, in fixed point.
func catmullRom(dst, src plane) {
	if dst.w == src.w && dst.h == src.h {
		for y := range dst.h {
			copy(dst.pix[y*dst.stride:y*dst.stride+dst.w], src.pix[y*src.stride:y*src.stride+src.w])
		}
		return
	}
	tx, ty := catmullRomTaps(dst.w, src.w), catmullRomTaps(dst.h, src.h)
	mid := make([]int16, dst.w*src.h)
	for y := range src.h {
		horizontal(mid[y*dst.w:y*dst.w+dst.w], src.pix[y*src.stride:y*src.stride+src.w], tx)
	}
	acc := make([]int32, dst.w)
	for y := range dst.h {
		vertical(dst.pix[y*dst.stride:y*dst.stride+dst.w], acc, mid, ty.start[y], ty.w[y*ty.n:y*ty.n+ty.n])
	}
}

// horizontal is the first pass of catmullRom: each sample of out is row
// filtered by its taps, kept with midBits of fraction. The taps are summed
// four at a time, which spares most of the loop's bounds checks.
func horizontal(out []int16, row []uint8, t taps) {
	const round = 1 << (weightBits - midBits - 1)
	n := t.n
	for x := range out {
		s := row[t.start[x] : t.start[x]+n]
		w := t.w[x*n : x*n+n]
		w = w[:len(s)]
		var acc int32
		j := 0
		for ; j+4 <= len(s); j += 4 {
			s4, w4 := s[j:j+4:j+4], w[j:j+4:j+4]
			acc += w4[0]*int32(s4[0]) + w4[1]*int32(s4[1]) + w4[2]*int32(s4[2]) + w4[3]*int32(s4[3])
		}
		for ; j < len(s); j++ {
			acc += w[j] * int32(s[j])
		}
		out[x] = int16((acc + round) >> (weightBits - midBits))
	}
}

// vertical is the second pass of catmullRom for one output row, out: the
// rows of mid (len(out) samples each) from start on, weighted by w. Rows go
// four at a time into acc, so it is read and written a quarter as often,
// and the last one to three with acc into out.
func vertical(out []uint8, acc []int32, mid []int16, start int, w []int32) {
	const shift = weightBits + midBits
	const round = 1 << (shift - 1)
	dw := len(out)
	acc = acc[:dw]
	row := func(j int) []int16 {
		r := mid[(start+j)*dw : (start+j+1)*dw]
		return r[:len(acc)]
	}
	put := func(x int, a int32) { out[x] = uint8(min(max((a+round)>>shift, 0), 255)) }
	j := 0
	for ; j+4 <= len(w); j += 4 {
		w0, w1, w2, w3 := w[j], w[j+1], w[j+2], w[j+3]
		r0, r1, r2, r3 := row(j), row(j+1), row(j+2), row(j+3)
		if j == 0 {
			for x := range acc {
				acc[x] = w0*int32(r0[x]) + w1*int32(r1[x]) + w2*int32(r2[x]) + w3*int32(r3[x])
			}
			continue
		}
		for x := range acc {
			acc[x] += w0*int32(r0[x]) + w1*int32(r1[x]) + w2*int32(r2[x]) + w3*int32(r3[x])
		}
	}
	if j == 0 {
		clear(acc) // fewer than four taps
	}
	out = out[:len(acc)]
	switch len(w) - j {
	case 0:
		for x, a := range acc {
			put(x, a)
		}
	case 1:
		w0, r0 := w[j], row(j)
		for x, a := range acc {
			put(x, a+w0*int32(r0[x]))
		}
	case 2:
		w0, w1, r0, r1 := w[j], w[j+1], row(j), row(j+1)
		for x, a := range acc {
			put(x, a+w0*int32(r0[x])+w1*int32(r1[x]))
		}
	case 3:
		w0, w1, w2, r0, r1, r2 := w[j], w[j+1], w[j+2], row(j), row(j+1), row(j+2)
		for x, a := range acc {
			put(x, a+w0*int32(r0[x])+w1*int32(r1[x])+w2*int32(r2[x]))
		}
	}
}
