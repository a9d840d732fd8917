package photo

import (
	"errors"
	"time"
)

// ErrNoEditURL is returned (wrapped) when an owner's settings were found
// but name no page where they can change their photo (for Exchange: no
// ExternalEcpPhotoUrl).
var ErrNoEditURL = errors.New("photo: no photo upload page")

// Lookup is what a source found out, and caches, about where one owner's
// photos live (for Exchange: the Autodiscover answer), as operators' tools
// show it. A source that caches such answers offers them to the engine's
// Inspect and Forget through small interfaces the engine declares.
type Lookup struct {
	PhotosURL   string    `json:"photos_url,omitempty"`
	EcpPhotoURL string    `json:"ecp_photo_url,omitempty"`
	Redirects   []string  `json:"redirects,omitempty"`
	Error       string    `json:"error,omitempty"` // a failure remembered for the error TTL
	CachedUntil time.Time `json:"cached_until"`
}
