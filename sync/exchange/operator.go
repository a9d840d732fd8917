package exchange

import (
	"context"
	"errors"
	"fmt"

	"photosync/autodiscover"
	"photosync/sync/photo"
)

// EditURL returns viewer's ExternalEcpPhotoUrl, Outlook on the web's photo
// upload page, which SharePoint's "change photo" link opens. An answer
// without one wraps photo.ErrNoEditURL (and autodiscover.ErrNoEcpPhotoURL,
// which says how an Exchange admin fills it in).
func (s *Source) EditURL(ctx context.Context, viewer string) (string, error) {
	settings, err := s.locator.Lookup(ctx, viewer)
	if err != nil {
		return "", err
	}
	u, err := settings.EcpPhotoURL()
	if errors.Is(err, autodiscover.ErrNoEcpPhotoURL) {
		return "", fmt.Errorf("exchange: %w: %w", photo.ErrNoEditURL, err)
	}
	return u, err
}

// CachedLookup returns what the Locator's cache holds for owner, without
// asking Exchange; false when nothing is cached or the Locator shows no
// cache.
func (s *Source) CachedLookup(owner string) (photo.Lookup, bool) {
	c, ok := s.locator.(lookupCache)
	if !ok {
		return photo.Lookup{}, false
	}
	got, ok := c.Peek(owner)
	if !ok {
		return photo.Lookup{}, false
	}
	l := photo.Lookup{
		PhotosURL:   got.Settings.ExternalPhotosURL,
		EcpPhotoURL: got.Settings.ExternalEcpPhotoURL,
		Redirects:   got.Settings.Redirects,
		CachedUntil: got.Expires,
	}
	if got.Err != nil {
		l.Error = got.Err.Error()
	}
	return l, true
}

// ForgetLookup drops owner's cached Autodiscover answer, so that the next
// pull asks Exchange again; nothing happens when the Locator shows no cache.
func (s *Source) ForgetLookup(owner string) {
	if c, ok := s.locator.(lookupCache); ok {
		c.Forget(owner)
	}
}

// BackedOff returns how many Exchange hosts are in back-off now.
func (s *Source) BackedOff() int { return s.circuit.Active() }

// PhotoInfo describes one GetUserPhoto answer without its bytes, for
// diagnostics.
type PhotoInfo struct {
	Status      photo.Status // StatusPhoto, StatusNoPhoto or StatusDeleted
	Size        int          // body bytes
	ContentType string       // sniffed from the bytes
	ETag        string       // unquoted
}

// Check asks for owner's photo at size as a pull does, without an ETag,
// and describes the answer; the bytes are dropped. photosync doctor uses
// it: a rejected token is a *StatusError matching ErrUnauthorized.
func (s *Source) Check(ctx context.Context, owner, size string) (PhotoInfo, error) {
	settings, err := s.locator.Lookup(ctx, owner)
	if err != nil {
		return PhotoInfo{}, err
	}
	res, err := s.fetch(ctx, settings.ExternalPhotosURL, owner, size, "")
	if err != nil {
		return PhotoInfo{}, err
	}
	if res.Status == photo.StatusNotModified {
		return PhotoInfo{}, fmt.Errorf("exchange: %w: 304 Not Modified although no ETag was sent", photo.ErrBadAnswer)
	}
	return PhotoInfo{Status: res.Status, Size: len(res.Body), ContentType: res.ContentType, ETag: res.ETag}, nil
}
