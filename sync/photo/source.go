package photo

import (
	"context"
	"fmt"
	"strings"
)

// A Source is one place a photo may come from: Exchange, Microsoft Graph,
// the directory. Photo asks it for owner's photo at size (both already
// validated); etag is the ETag this same source gave for the stored copy
// ("" when none), and a source that can revalidate answers NotModified
// while it still holds. Photo honours ctx's deadline, bounds what it reads,
// returns only sniffed image bytes with StatusPhoto, and is safe for
// concurrent use. The walk checks every body (Decoder.Check) and every
// ETag (ValidOpaqueETag) again, so no source is trusted to have. An error means the source could not say (unreachable,
// refused, throttled, a broken answer), never "no photo".
type Source interface {
	// Name is the short name recorded with what the source answered
	// ("exchange", "graph", "directory").
	Name() string
	Photo(ctx context.Context, owner, size, etag string) (Result, error)
}

// Status is what a Source says about one photo.
type Status uint8

const (
	// StatusPhoto: Result.Body holds the photo.
	StatusPhoto Status = iota
	// StatusNotModified: the copy with the ETag that was sent still holds.
	StatusNotModified
	// StatusNoPhoto: this source has none; the next source is asked.
	StatusNoPhoto
	// StatusDeleted: the owner removed the photo on purpose; no other
	// source is asked.
	StatusDeleted
)

func (s Status) String() string {
	return [...]string{"photo", "not modified", "no photo", "deleted"}[s]
}

// Result is a Source's answer.
type Result struct {
	Status      Status
	Body        []byte // with StatusPhoto: an image, sniffed
	ContentType string // of Body, from its bytes
	ETag        string // unquoted; "" when the source has none
	// Name is the owner's display name as this source knows it, "" when
	// it gave none; it is kept with the record for the initials
	// placeholder. A source may give it with any status.
	Name string
	// Width and Height of Body, set by the walk from its decode.
	Width, Height int
}

// Func adapts a function to a Source named SourceName.
type Func struct {
	SourceName string
	Func       func(ctx context.Context, owner, size, etag string) (Result, error)
}

// Name returns f.SourceName.
func (f Func) Name() string { return f.SourceName }

// Photo calls f.Func.
func (f Func) Photo(ctx context.Context, owner, size, etag string) (Result, error) {
	return f.Func(ctx, owner, size, etag)
}

// Answer is what one source said during a walk.
type Answer struct {
	Source string
	Result Result
	Err    error
}

// Found is how a walk ended: the status of the source that ended it (a
// walk that every source passed ends in StatusNoPhoto), its result, and
// Label, what a record keeps of where the answer came from.
type Found struct {
	Status Status
	Result Result
	// Source is the name of the source that ended the walk; for a walk
	// every source passed, the names of all, comma-separated.
	Source string
}

// Label is what an inspection shows of where the answer came from: the
// source's name, and for no photo why ("exchange: deleted on purpose",
// "exchange, directory: no photo").
func (f Found) Label() string {
	switch {
	case f.Source == "":
		return ""
	case f.Status == StatusDeleted:
		return f.Source + ": deleted on purpose"
	case f.Status == StatusNoPhoto:
		return f.Source + ": no photo"
	}
	return f.Source
}

// Walk asks sources in order for owner's photo at size. The first photo
// wins; StatusDeleted stops the walk, so a photo its owner removed on
// purpose is never replaced by an older copy found further down; an error
// stops the walk too, so an outage never falls through to a lower source.
// prevETag is sent only to prevSource, the source that gave the stored
// copy (the first source when that is not known). Every photo passes dec's
// Check here, the one place all sources' bodies pass (nil: the default
// Limits): a body that fails is that source's error, and what is kept is
// the image cut at its end. An ETag that is not an entity-tag's opaque
// part is dropped. observe, when not nil, sees each answer in order. The
// result's Name is the first display name any source asked gave.
func Walk(ctx context.Context, sources []Source, owner, size, prevSource, prevETag string, dec *Decoder, observe func(Answer)) (Found, error) {
	name := "" // the first display name a source gave
	for i, src := range sources {
		etag := ""
		if src.Name() == prevSource || (prevSource == "" && i == 0) {
			etag = prevETag
		}
		// A source's own errors name it ("exchange: …"); what the walk
		// itself finds wrong is wrapped with the source's name here.
		res, err := src.Photo(ctx, owner, size, etag)
		if err == nil && res.Status == StatusPhoto {
			img, cerr := dec.Check(ctx, res.Body)
			if cerr != nil {
				err = fmt.Errorf("%s: %w", src.Name(), cerr)
			}
			res.Body, res.ContentType, res.Width, res.Height = img.Body, img.ContentType, img.Width, img.Height
			if !ValidOpaqueETag(res.ETag) {
				res.ETag = ""
			}
		}
		if err == nil && res.Status == StatusNotModified && etag == "" {
			err = fmt.Errorf("%s: %w: not modified although no ETag was sent", src.Name(), ErrBadAnswer)
		}
		if observe != nil {
			observe(Answer{Source: src.Name(), Result: res, Err: err})
		}
		if err != nil {
			return Found{}, err
		}
		if name == "" {
			name = res.Name
		}
		if res.Status != StatusNoPhoto {
			res.Name = name
			return Found{Status: res.Status, Result: res, Source: src.Name()}, nil
		}
	}
	names := make([]string, len(sources))
	for i, src := range sources {
		names[i] = src.Name()
	}
	return Found{Status: StatusNoPhoto, Source: strings.Join(names, ", "), Result: Result{Status: StatusNoPhoto, Name: name}}, nil
}

// Trace asks sources in order for owner's photo at size exactly as a pull
// does, and returns what each source asked said, in order. Sources after
// the one that ended the walk were not asked and are not listed.
// photosync doctor uses it to show which source answers and why.
func Trace(ctx context.Context, sources []Source, owner, size string, dec *Decoder) []Answer {
	var out []Answer
	_, _ = Walk(ctx, sources, owner, size, "", "", dec, func(a Answer) { out = append(out, a) })
	return out
}
