package exchangetest

import (
	"net/http"
	"strconv"
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
	}
	return false
}
