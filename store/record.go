package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrInvalidKey is returned when a Key cannot be stored unambiguously: an
// empty owner or size, a NUL byte in either, or a "/" in the size.
var ErrInvalidKey = errors.New("store: invalid key")

// check reports whether k can be encoded without colliding with another
// key: Bolt joins owner and size with NUL, Redis with "/".
func (k Key) check() error {
	switch {
	case k.Owner == "" || k.Size == "":
		return fmt.Errorf("%w %q: empty owner or size", ErrInvalidKey, k.String())
	case strings.IndexByte(k.Owner, 0) >= 0 || strings.IndexByte(k.Size, 0) >= 0:
		return fmt.Errorf("%w %q: contains NUL", ErrInvalidKey, k.String())
	case strings.IndexByte(k.Size, '/') >= 0:
		return fmt.Errorf("%w %q: size contains '/'", ErrInvalidKey, k.String())
	}
	return nil
}

// appendKey appends the unambiguous byte form of a checked key, owner + NUL
// + size, to b. Bolt and Hot use it.
func appendKey(b []byte, k Key) []byte {
	b = append(b, k.Owner...)
	b = append(b, 0)
	return append(b, k.Size...)
}

// meta is the stored form of a Record without its Body. Bolt keeps the
// timer in it; Redis leaves Timer and Until zero and keeps the timer in a
// key of its own.
type meta struct {
	State       State     `json:"state"`
	ContentType string    `json:"content_type,omitempty"`
	Sum         string    `json:"sum"`
	ETag        string    `json:"etag,omitempty"`
	PulledAt    time.Time `json:"pulled_at,omitzero"`
	Error       string    `json:"error,omitempty"`
	ErrorAt     time.Time `json:"error_at,omitzero"`
	Timer       TimerKind `json:"timer,omitempty"`
	Until       time.Time `json:"until,omitzero"`
	Source      string    `json:"source,omitempty"`
	Name        string    `json:"name,omitempty"`
}

// prepare validates r for Put at now: it sets Sum from Body and turns a
// timer that is not alive into TimerNone.
func prepare(r Record, now time.Time) (Record, error) {
	switch r.Timer.Kind {
	case TimerNone, TimerSuccess, TimerError:
	default:
		return Record{}, fmt.Errorf("store: unknown timer kind %d", r.Timer.Kind)
	}
	if !r.Timer.Alive(now) {
		r.Timer = Timer{}
	}
	r.Sum = Checksum(r.Body)
	return r, nil
}

// preparedPutter is a store whose Put is prepare, then putPrepared. Hot,
// which prepares a record for memory anyway, hands its backing store the
// prepared record, so that the body is checksummed once, not twice.
type preparedPutter interface {
	putPrepared(ctx context.Context, key Key, r Record) error
}

// encodeMeta returns the JSON form of everything in r but Body.
func encodeMeta(r Record) ([]byte, error) {
	b, err := json.Marshal(meta{
		State:       r.State,
		ContentType: r.ContentType,
		Sum:         r.Sum,
		ETag:        r.ETag,
		PulledAt:    r.PulledAt,
		Error:       r.Error,
		ErrorAt:     r.ErrorAt,
		Timer:       r.Timer.Kind,
		Until:       r.Timer.Until,
		Source:      r.Source,
		Name:        r.Name,
	})
	if err != nil {
		return nil, fmt.Errorf("store: encoding record: %w", err)
	}
	return b, nil
}

// decode rebuilds the record for key from its stored metadata and body,
// which it keeps (the caller hands over a copy). It returns ErrCorrupt when
// the metadata is unreadable or the body fails its checksum. The timer is
// the one in the metadata; the caller replaces it when it keeps it elsewhere.
func decode(key Key, m, body []byte) (Record, error) {
	var md meta
	if err := json.Unmarshal(m, &md); err != nil {
		return Record{}, fmt.Errorf("%w: %s: decoding metadata: %w", ErrCorrupt, key, err)
	}
	if len(body) == 0 {
		body = nil
	}
	if Checksum(body) != md.Sum {
		return Record{}, fmt.Errorf("%w: %s", ErrCorrupt, key)
	}
	return Record{
		State:       md.State,
		Body:        body,
		ContentType: md.ContentType,
		Sum:         md.Sum,
		ETag:        md.ETag,
		PulledAt:    md.PulledAt,
		Error:       md.Error,
		ErrorAt:     md.ErrorAt,
		Timer:       Timer{Kind: md.Timer, Until: md.Until},
		Source:      md.Source,
		Name:        md.Name,
	}, nil
}

// alive returns t, or TimerNone when t has run out at now.
func alive(t Timer, now time.Time) Timer {
	if !t.Alive(now) {
		return Timer{}
	}
	return t
}

// clone copies b, returning nil for an empty slice so that every store
// hands back the same value for "no bytes".
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}
