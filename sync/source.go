package sync

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// A Source is one place a photo may come from: Exchange, Microsoft Graph,
// the directory. The engine asks the sources of Options.Sources in order
// (PROTOCOLS §5): the first photo wins; Deleted stops the walk, so a photo
// its owner removed on purpose is never replaced by an older copy found
// further down; an error stops the walk too and starts the error timer,
// so an outage never falls through to a lower source.
//
// Photo must honour ctx's deadline and be safe for concurrent use. etag is
// the ETag this same source gave for the stored copy ("" when none); a
// source that supports revalidation answers SourceNotModified when it
// still holds.
type Source interface {
	// Name is the short name recorded with what the source answered
	// ("exchange", "graph", "directory").
	Name() string
	Photo(ctx context.Context, owner, size, etag string) (SourceResult, error)
}

// SourceStatus is what a Source says about one photo.
type SourceStatus uint8

const (
	// SourcePhoto: Body holds the photo.
	SourcePhoto SourceStatus = iota
	// SourceNotModified: the copy with the ETag that was sent still holds.
	SourceNotModified
	// SourceNoPhoto: this source has none; the next source is asked.
	SourceNoPhoto
	// SourceDeleted: the owner removed the photo on purpose; no other
	// source is asked.
	SourceDeleted
)

func (s SourceStatus) String() string {
	return [...]string{"photo", "not modified", "no photo", "deleted"}[s]
}

// SourceResult is a Source's answer.
type SourceResult struct {
	Status      SourceStatus
	Body        []byte // with SourcePhoto: an image, sniffed
	ContentType string // of Body, from its bytes
	ETag        string // unquoted; "" when the source has none
}

// SourceFunc adapts a function to a Source.
type SourceFunc struct {
	SourceName string
	Func       func(ctx context.Context, owner, size, etag string) (SourceResult, error)
}

// Name returns f.SourceName.
func (f SourceFunc) Name() string { return f.SourceName }

// Photo calls f.Func.
func (f SourceFunc) Photo(ctx context.Context, owner, size, etag string) (SourceResult, error) {
	return f.Func(ctx, owner, size, etag)
}

// ExchangeSource is Exchange's REST GetUserPhoto as a Source: Locator finds
// the owner's photos URL, Master fetches from it.
//
// REST answers 404 both when the owner has no photo and when they deleted
// it on purpose (PROTOCOLS §1.1, §5). What tells them apart is what
// Exchange keeps for a deleted photo: a 0-byte JPEG in its photo cache [S23],
// which the documentation describes as requests that "return a blank photo"
// [S24]. So a 200 with an empty body is read as SourceDeleted, and a 404 as
// SourceNoPhoto. Neither signal is confirmed for REST (PROTOCOLS marks it
// UNCONFIRMED); an Exchange that answers 404 for a deleted photo cannot be
// told from one with no photo, and the walk goes on to the next source.
type ExchangeSource struct {
	Locator Locator
	Master  *Master
}

// Name returns "exchange".
func (ExchangeSource) Name() string { return "exchange" }

// Photo asks Exchange for owner's photo.
func (x ExchangeSource) Photo(ctx context.Context, owner, size, etag string) (SourceResult, error) {
	settings, err := x.Locator.Lookup(ctx, owner)
	if err != nil {
		return SourceResult{}, err
	}
	res, err := x.Master.Fetch(ctx, settings.ExternalPhotosURL, owner, size, etag)
	switch {
	case errors.Is(err, ErrBlankPhoto):
		return SourceResult{Status: SourceDeleted}, nil
	case err != nil:
		return SourceResult{}, err
	}
	switch res.status {
	case http.StatusNotModified:
		if etag == "" {
			return SourceResult{}, errors.New("master: 304 Not Modified although no ETag was sent")
		}
		return SourceResult{Status: SourceNotModified, ETag: etag}, nil
	case http.StatusNotFound:
		return SourceResult{Status: SourceNoPhoto}, nil
	}
	return SourceResult{Status: SourcePhoto, Body: res.body, ContentType: res.contentType, ETag: res.etag}, nil
}

// SourceAnswer is what one source said during a walk.
type SourceAnswer struct {
	Source string
	Result SourceResult // ContentType sniffed from Body for a photo
	Err    error
}

// Trace asks sources in order for owner's photo at size exactly as a pull
// does, and returns what each source asked said, in order. Sources after
// the one that ended the walk were not asked and are not listed.
// photosync doctor uses it to show which source answers and why.
func Trace(ctx context.Context, sources []Source, owner, size string) []SourceAnswer {
	var out []SourceAnswer
	_, _ = walk(ctx, sources, owner, size, "", "", func(a SourceAnswer) { out = append(out, a) })
	return out
}

// walk asks sources in order for key's photo, as Source documents. prev is
// the stored record: its ETag is sent only to the source that gave it.
// observe, when not nil, sees each answer.
func walk(ctx context.Context, sources []Source, owner, size string, prevSource, prevETag string, observe func(SourceAnswer)) (fetched, error) {
	for i, src := range sources {
		etag := ""
		if src.Name() == prevSource || (prevSource == "" && i == 0) {
			etag = prevETag
		}
		res, err := src.Photo(ctx, owner, size, etag)
		if err == nil && res.Status == SourcePhoto {
			ct, ok := SniffImage(res.Body)
			if !ok {
				err = ErrNotImage
			}
			res.ContentType = ct
		}
		if observe != nil {
			observe(SourceAnswer{Source: src.Name(), Result: res, Err: err})
		}
		if err != nil {
			return fetched{}, fmt.Errorf("source %s: %w", src.Name(), err)
		}
		switch res.Status {
		case SourceNoPhoto:
			continue
		case SourceDeleted:
			return fetched{status: http.StatusNotFound, source: src.Name(), deleted: true}, nil
		case SourceNotModified:
			return fetched{status: http.StatusNotModified, source: src.Name(), etag: res.ETag}, nil
		default:
			return fetched{status: http.StatusOK, body: res.Body, contentType: res.ContentType, etag: res.ETag, source: src.Name()}, nil
		}
	}
	names := make([]string, len(sources))
	for i, src := range sources {
		names[i] = src.Name()
	}
	return fetched{status: http.StatusNotFound, source: strings.Join(names, ", ")}, nil
}

// sourceLabel is what store.Record.Source keeps for this answer: the
// source's name, and for no photo why.
func (f fetched) sourceLabel() string {
	switch {
	case f.source == "":
		return ""
	case f.deleted:
		return f.source + ": deleted on purpose"
	case f.status == http.StatusNotFound:
		return f.source + ": no photo"
	}
	return f.source
}
