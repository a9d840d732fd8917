package photo

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DefaultMaxBytes is the largest photo body a source accepts unless
// photos.max_bytes says otherwise.
const DefaultMaxBytes = 4 << 20

// ErrNotImage is returned for a body that is not an image browsers show.
var ErrNotImage = errors.New("photo: body is not an image")

// ErrTooLarge is returned for a body over the byte limit.
var ErrTooLarge = errors.New("photo: larger than the limit")

// Sniff returns the content type of b when its leading bytes are those of
// an image format browsers show (JPEG, PNG, GIF, WebP, BMP).
func Sniff(b []byte) (string, bool) {
	switch ct := http.DetectContentType(b); ct {
	case "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp":
		return ct, true
	default:
		return "", false
	}
}

// ReadBody reads r to its end, at most max bytes (DefaultMaxBytes when max
// is not positive); a longer body is ErrTooLarge, never cut short silently.
func ReadBody(r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return b, nil
}

// ErrBadAnswer is returned for an answer a source's protocol does not
// allow (a 304 to an unconditional request, an unknown status).
var ErrBadAnswer = errors.New("photo: answer the protocol does not allow")
