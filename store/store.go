// Package store keeps pulled profile photos and the two SharePoint timers
// that decide when the master may be asked again.
//
// A Record is what photosync knows about one (owner, size): the bytes and
// ETag of the last good photo, or the fact that the owner has none, plus the
// last pull error. Its Timer is UserPhotoExpiration after a good pull and
// UserPhotoErrorExpiration after a failed one; while it is alive nobody asks
// the master about that photo.
//
// Two implementations share one contract (and one conformance suite, in
// storetest): Bolt, a single-file embedded store for one machine, and Redis,
// which every replica can share; there the timer is a key with a TTL so all
// replicas agree on it. Hot puts a bounded in-memory layer in front of either.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// ErrNotFound is returned by Get when nothing is stored under a key.
var ErrNotFound = errors.New("store: not found")

// ErrCorrupt is returned by Get when the stored bytes do not match their
// checksum. The record must not be served.
var ErrCorrupt = errors.New("store: stored photo fails its checksum")

// Key names one photo: an owner's SMTP address (lower case) and an Exchange
// size code such as "HR96x96".
type Key struct {
	Owner string
	Size  string
}

// String returns "owner/size", for logs and in-memory maps.
func (k Key) String() string { return k.Owner + "/" + k.Size }

// State says what the master last told us about a photo.
type State uint8

const (
	// StateUnknown: the master has never answered this photo successfully
	// (every pull so far failed).
	StateUnknown State = iota
	// StatePhoto: Body holds the photo.
	StatePhoto
	// StateNoPhoto: the master said the owner has no photo (404).
	StateNoPhoto
)

func (s State) String() string {
	switch s {
	case StatePhoto:
		return "photo"
	case StateNoPhoto:
		return "no-photo"
	default:
		return "unknown"
	}
}

// TimerKind says which of the two timers is running.
type TimerKind uint8

const (
	// TimerNone: no timer is running (never set, or it ran out).
	TimerNone TimerKind = iota
	// TimerSuccess is SharePoint's UserPhotoExpiration, started by a good pull.
	TimerSuccess
	// TimerError is SharePoint's UserPhotoErrorExpiration, started by a failed pull.
	TimerError
)

func (k TimerKind) String() string {
	switch k {
	case TimerSuccess:
		return "expiration"
	case TimerError:
		return "error-expiration"
	default:
		return "none"
	}
}

// Timer is the running timer of a photo.
type Timer struct {
	Kind  TimerKind
	Until time.Time // when it runs out; zero with TimerNone
}

// Alive reports whether the timer still runs at now.
func (t Timer) Alive(now time.Time) bool {
	return t.Kind != TimerNone && now.Before(t.Until)
}

// Record is everything stored for one Key.
type Record struct {
	State       State
	Body        []byte    // the photo, with StatePhoto only
	ContentType string    // of Body, as sniffed from its bytes
	Sum         string    // Checksum(Body); set by Put, verified by Get
	ETag        string    // the master's ETag, unquoted; sent back in If-None-Match
	PulledAt    time.Time // last time the master confirmed State (200, 304 or 404)
	Error       string    // the last pull's error, "" after a good pull
	ErrorAt     time.Time // when Error happened
	Timer       Timer     // the running timer
	// Source says which source gave State (and why, for no photo), as
	// the engine's source chain records it: "exchange", "directory",
	// "exchange: deleted on purpose", …; "" before the chain existed.
	Source string
	// Name is the owner's display name as the source gave it, for the
	// initials placeholder; "" when none did (and in records stored
	// before it was kept).
	Name string
}

// Checksum returns the hex SHA-256 of b, the form of Record.Sum.
func Checksum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A Store holds records. Implementations are safe for concurrent use, and
// every method fails with ErrInvalidKey for a key they cannot store
// unambiguously (see ErrInvalidKey).
type Store interface {
	// Get returns the record for key, ErrNotFound when there is none, or
	// ErrCorrupt when its bytes fail their checksum. A timer that has run out
	// comes back as TimerNone.
	Get(ctx context.Context, key Key) (Record, error)
	// Put replaces the record for key, bytes and timer at once: a reader
	// sees the old record or the new one, never a mix. r.Sum is computed
	// from r.Body; the value given is ignored. A timer whose Until is not in
	// the future is stored as TimerNone; a TimerKind other than the three
	// defined is an error.
	Put(ctx context.Context, key Key, r Record) error
	// Delete removes the record and its timer; deleting nothing is no error.
	Delete(ctx context.Context, key Key) error
	// Close releases the store.
	Close() error
}

// ErrLocked is returned by OpenBolt when another process holds the store's
// file.
var ErrLocked = errors.New("store: locked by another process")

// A Pinger says whether a store can serve reads and writes now; every store
// in this package is one. Ping must return within ctx and cost one round
// trip at most, since readiness probes call it often.
type Pinger interface {
	Ping(ctx context.Context) error
}

// A Notifier is a shared store that tells a memory layer what other
// processes change in it; Redis is one, and Hot listens to its backing
// store when that is one.
type Notifier interface {
	// Notify runs until ctx ends. It calls changed for each key another
	// process put or deleted, live(true) each time it is (re)subscribed,
	// after which anything learned before may be stale and must be
	// dropped, and live(false) when it lost its subscription. It calls them
	// from one goroutine, and they must not block.
	Notify(ctx context.Context, changed func(Key), live func(bool))
}
