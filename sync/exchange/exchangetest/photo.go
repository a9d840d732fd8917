package exchangetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"image/jpeg"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sizes are the nine GetUserPhoto size codes of Exchange 2013, HR48x48 to
// HR648x648 (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/how-to-get-user-photos-by-using-ews-in-exchange).
var sizes = map[string]int{
	"hr48x48": 48, "hr64x64": 64, "hr96x96": 96, "hr120x120": 120, "hr240x240": 240,
	"hr360x360": 360, "hr432x432": 432, "hr504x504": 504, "hr648x648": 648,
}

// adThumbnailSize is the side of the AD thumbnailPhoto the simulator serves.
const adThumbnailSize = 96

type photoKey struct {
	email   string
	version int
	ad      bool
	px      int
}

// photoFor picks what GetUserPhoto serves for u at px pixels: nil when
// nothing is: the mailbox photo when there is one (scaled down, never up),
// else AD's thumbnailPhoto (always for HR48x48), never AD for a photo
// deleted on purpose.
func photoFor(u userState, px int) *photoKey {
	switch {
	case u.Deleted:
		return nil // deleted on purpose: AD is never consulted
	case u.ADThumbnail && (px == 48 || !u.Photo):
		return &photoKey{email: strings.ToLower(u.Email), ad: true, px: adThumbnailSize}
	case u.Photo:
		return &photoKey{email: strings.ToLower(u.Email), version: u.version, px: min(px, u.MaxSize)}
	}
	return nil
}

// PhotoBytes returns what GetUserPhoto would answer with for a valid token:
// the JPEG bytes and the quoted ETag, or ok false for a 404 or a bad size.
func (s *Server) PhotoBytes(email, size string) (jpegBytes []byte, etag string, ok bool) {
	px, valid := sizes[strings.ToLower(size)]
	u, known := s.user(email)
	if !valid || !known {
		return nil, "", false
	}
	k := photoFor(u, px)
	if k == nil {
		return nil, "", false
	}
	return s.render(*k), etagFor(*k), true
}

// etagFor is a quoted strong ETag that changes with the drawing and its size.
func etagFor(k photoKey) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s|%d|%t|%d", k.email, k.version, k.ad, k.px))
	return `"` + hex.EncodeToString(h[:8]) + `"`
}

func (s *Server) render(k photoKey) []byte {
	if s.opts.LightPhotos {
		base := s.drawing(photoKey{ad: k.ad, px: k.px, version: -1})
		return withComment(base, fmt.Sprintf("%s/%d", k.email, k.version))
	}
	return s.drawing(k)
}

// withComment returns a copy of the JPEG b with a COM segment carrying text
// right after its SOI marker: other bytes, the same picture.
func withComment(b []byte, text string) []byte {
	text = text[:min(len(text), 0xffff-2)]
	out := make([]byte, 0, len(b)+4+len(text))
	out = append(out, b[:2]...) // SOI
	out = append(out, 0xff, 0xfe, byte((len(text)+2)>>8), byte(len(text)+2))
	out = append(out, text...)
	return append(out, b[2:]...)
}

// drawing returns the picture for k, drawn once and kept.
func (s *Server) drawing(k photoKey) []byte {
	s.mu.Lock()
	b, ok := s.photos[k]
	s.mu.Unlock()
	if ok {
		return b
	}
	b = drawPhoto(k)
	s.mu.Lock()
	s.photos[k] = b
	s.mu.Unlock()
	return b
}

// drawPhoto draws a head-and-shoulders silhouette on a background whose
// colour comes from the address and version; the AD thumbnail is grey.
func drawPhoto(k photoKey) []byte {
	n := k.px
	h := fnv.New32a()
	fmt.Fprintf(h, "%s/%d", k.email, k.version)
	sum := h.Sum32()
	bg := color.RGBA{R: 60 + uint8(sum)%160, G: 60 + uint8(sum>>8)%160, B: 60 + uint8(sum>>16)%160, A: 255}
	fg := color.RGBA{R: 255 - bg.R/2, G: 255 - bg.G/2, B: 255 - bg.B/2, A: 255}
	if k.ad {
		bg = color.RGBA{R: 150, G: 150, B: 150, A: 255}
		fg = color.RGBA{R: 90, G: 90, B: 90, A: 255}
	}
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	f := float64(n)
	headX, headY, headR := 0.5*f, 0.38*f, 0.18*f
	bodyX, bodyY, bodyRX, bodyRY := 0.5*f, 1.02*f, 0.36*f, 0.40*f
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			px, py := float64(x)+0.5, float64(y)+0.5
			dx, dy := px-headX, py-headY
			ex, ey := (px-bodyX)/bodyRX, (py-bodyY)/bodyRY
			c := bg
			if dx*dx+dy*dy <= headR*headR || ex*ex+ey*ey <= 1 {
				c = fg
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		panic(fmt.Sprintf("exchangetest: encoding jpeg: %v", err)) // cannot fail on a bytes.Buffer
	}
	return buf.Bytes()
}

// etagMatches reports whether an If-None-Match value names etag, comparing
// without quotes and W/ (RFC 9110, section 13.1.2: weak comparison).
func etagMatches(ifNoneMatch, etag string) bool {
	want := strings.Trim(etag, `"`)
	for _, v := range strings.Split(ifNoneMatch, ",") {
		v = strings.TrimSpace(v)
		v = strings.TrimPrefix(v, "W/")
		v = strings.Trim(v, `"`)
		if v == "*" || (v != "" && v == want) {
			return true
		}
	}
	return false
}

// applyFaults runs the injected delay and fault. It reports whether the
// request has been answered.
func (s *Server) applyFaults(w http.ResponseWriter, r *http.Request, entry *Request) bool {
	s.mu.Lock()
	f := s.faults
	started, ended := s.delayStarted, s.afterDelay
	now := s.now()
	entry.DuringBackoff = now.Before(s.backoffUntil)
	s.mu.Unlock()

	if f.delay > 0 {
		if started != nil {
			started()
		}
		t := time.NewTimer(f.delay)
		var err error
		select {
		case <-t.C:
		case <-r.Context().Done():
			err = r.Context().Err()
		}
		t.Stop()
		if ended != nil {
			ended(err)
		}
		if err != nil {
			// The client is gone; this answer goes nowhere but is logged.
			http.Error(w, "request cancelled", http.StatusServiceUnavailable)
			return true
		}
	}

	s.mu.Lock()
	status := 0
	if s.faults.remaining != 0 && s.faults.status != 0 {
		status = s.faults.status
		if s.faults.remaining > 0 {
			s.faults.remaining--
		}
		if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests || status == http.StatusInternalServerError {
			s.backoffUntil = s.now().Add(time.Second)
		}
	}
	s.mu.Unlock()
	switch status {
	case 0:
		return false
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
		http.Error(w, http.StatusText(status), status)
	case http.StatusInternalServerError:
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(serverBusyFault))
	default:
		http.Error(w, http.StatusText(status), status)
	}
	return true
}

// serverBusyFault is EWS's throttling fault, ErrorServerBusy with
// BackOffMilliseconds (https://learn.microsoft.com/en-us/exchange/client-developer/exchange-web-services/ews-throttling-in-exchange).
const serverBusyFault = `<?xml version="1.0" encoding="utf-8"?>` +
	`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>` +
	`<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>` +
	`<faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>` +
	`<detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>` +
	`<e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message>` +
	`<t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">1000</t:Value></t:MessageXml>` +
	`</detail></s:Fault></s:Body></s:Envelope>`

func (s *Server) servePhoto(w http.ResponseWriter, r *http.Request, entry *Request) {
	q := r.URL.Query()
	entry.Email, entry.Size = q.Get("email"), q.Get("size")
	if s.applyFaults(w, r, entry) {
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	px, ok := sizes[strings.ToLower(entry.Size)]
	switch {
	case entry.Email == "":
		http.Error(w, "missing email parameter", http.StatusBadRequest)
		return
	case !ok:
		http.Error(w, "invalid size parameter", http.StatusBadRequest)
		return
	}
	actor, ok := s.authenticate(w, r, entry)
	if !ok {
		return
	}
	if _, known := s.user(actor); !known {
		http.Error(w, "acting user has no mailbox", http.StatusForbidden)
		return
	}
	u, known := s.user(entry.Email)
	if !known {
		http.NotFound(w, r)
		return
	}
	k := photoFor(u, px)
	s.mu.Lock()
	blank := s.deletedBlank
	s.mu.Unlock()
	switch {
	case k == nil && u.Deleted && blank:
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	case k == nil:
		http.NotFound(w, r)
		return
	}
	etag := etagFor(*k)
	s.mu.Lock()
	if s.faults.etag != "" {
		etag = s.faults.etag
	}
	s.mu.Unlock()
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private")
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || etagMatches(inm, etag)) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := s.render(*k)
	s.mu.Lock()
	bf := s.faults.body
	s.mu.Unlock()
	if bf != BodyOK {
		entry.abort = writeBodyFault(w, bf, body)
		return
	}
	h.Set("Content-Type", "image/jpeg")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
