package photo

import "time"

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
