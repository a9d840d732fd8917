package exchangetest

import (
	"net/http"
	"strconv"

	"photosync/sync/photo/phototest"
)

// BodyFault breaks the body of GetUserPhoto's 200 answers, the way real
// networks and misconfigured front ends do.
type BodyFault int

const (
	// BodyOK answers normally.
	BodyOK BodyFault = iota
	// BodyReset drops the connection before any answer (a reset).
	BodyReset
	// BodyTruncated announces the whole photo, sends half of it, then drops
	// the connection.
	BodyTruncated
	// BodyWrongType answers 200 with an HTML page as text/html, as a login
	// page or proxy error page would.
	BodyWrongType
	// BodyNotImage answers 200 labelled image/jpeg with bytes that are not
	// an image.
	BodyNotImage
	// BodyPNGBomb answers with a real 8000×8000 PNG, about 250 KB on the
	// wire and 256 MB of pixels.
	BodyPNGBomb
	// BodyJPEGBomb answers with a real 8000×8000 JPEG of about 500 KB.
	BodyJPEGBomb
	// BodyGiantPNG answers with a PNG of under 100 bytes whose header
	// claims 100000×100000.
	BodyGiantPNG
	// BodyJPEGThenHTML answers with JPEG magic bytes followed by an HTML
	// page, labelled image/jpeg.
	BodyJPEGThenHTML
	// BodyPhotoThenHTML answers with the real photo with an HTML page
	// appended, labelled image/jpeg.
	BodyPhotoThenHTML
	// BodyLarge answers with a real 1296×1296 JPEG: larger than any size.
	BodyLarge
)

// SetPhotoBodyFault breaks every GetUserPhoto 200 answer with f until
// ClearFaults (or SetPhotoBodyFault(BodyOK)).
func (s *Server) SetPhotoBodyFault(f BodyFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.body = f
}

const notAnImage = "<!DOCTYPE html><html><body><h1>Sign in</h1></body></html>\n"

// writeBodyFault answers with fault f instead of body and reports whether
// the connection must then be dropped.
func writeBodyFault(w http.ResponseWriter, f BodyFault, body []byte) (abort bool) {
	h := w.Header()
	switch f {
	case BodyReset:
		return true
	case BodyTruncated:
		h.Set("Content-Type", "image/jpeg")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body[:len(body)/2])
		_ = http.NewResponseController(w).Flush()
		return true
	case BodyWrongType:
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(notAnImage))
	case BodyNotImage:
		h.Set("Content-Type", "image/jpeg")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(notAnImage))
	default:
		h.Set("Content-Type", "image/jpeg")
		if f == BodyPNGBomb || f == BodyGiantPNG {
			h.Set("Content-Type", "image/png")
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(hostileBody(f, body))
	}
	return false
}

// hostileBody is what a hostile master sends instead of body.
func hostileBody(f BodyFault, body []byte) []byte {
	switch f {
	case BodyPNGBomb:
		return phototest.PNGBomb(8000, 8000)
	case BodyJPEGBomb:
		return phototest.JPEGBomb(8000, 8000)
	case BodyGiantPNG:
		return phototest.GiantPNG(100000, 100000)
	case BodyJPEGThenHTML:
		return append([]byte("\xff\xd8\xff\xe0"), phototest.HTML...)
	case BodyPhotoThenHTML:
		return append(append([]byte{}, body...), phototest.HTML...)
	case BodyLarge:
		return phototest.JPEG(1296, 1296)
	}
	return body
}

// SetPhotoETag makes GetUserPhoto send v, as it is, as the ETag header of
// every photo (and answer 304 when If-None-Match holds it, byte for byte,
// or by the simulator's usual list matching); "" restores the real ETags.
func (s *Server) SetPhotoETag(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.etag = v
}
