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
	const round = 1 << (weightBits - midBits - 1)
	for y := range src.h {
		row := src.pix[y*src.stride : y*src.stride+src.w]
		out := mid[y*dst.w : y*dst.w+dst.w]
		for x := range dst.w {
			w := tx.w[x*tx.n : x*tx.n+tx.n]
			s := row[tx.start[x] : tx.start[x]+tx.n]
			var acc int32
			for j, v := range s {
				acc += w[j] * int32(v)
			}
			out[x] = int16((acc + round) >> (weightBits - midBits))
		}
	}
	acc := make([]int32, dst.w)
	const shift = weightBits + midBits
	for y := range dst.h {
		clear(acc)
		w := ty.w[y*ty.n : y*ty.n+ty.n]
		for j, wj := range w {
			if wj == 0 {
				continue
			}
			r := mid[(ty.start[y]+j)*dst.w : (ty.start[y]+j)*dst.w+dst.w]
			for x, v := range r {
				acc[x] += wj * int32(v)
			}
		}
		out := dst.pix[y*dst.stride : y*dst.stride+dst.w]
		for x, a := range acc {
			v := (a + 1<<(shift-1)) >> shift
			out[x] = uint8(min(max(v, 0), 255))
		}
	}
}
