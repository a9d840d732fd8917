package sync

import (
	"context"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"golang.org/x/sync/errgroup"

	"photosync/store"
	"photosync/sync/photo"
)

// This file holds the operators' entry points: pull now (Refresh), say
// everything known about a person (Inspect), start afresh (Forget) and pull
// a list of people (Warm). They go through the same store and the same
// single flight per photo as the request path, so an operator's pull and a
// viewer's request for one photo never both reach the master.

// RefreshOutcome says what a Refresh did.
type RefreshOutcome uint8

const (
	// RefreshSkipped: the photo's timer was running, nothing was asked.
	RefreshSkipped RefreshOutcome = iota
	// RefreshPulled: the master sent a photo (new bytes or the same).
	RefreshPulled
	// RefreshNotModified: the master answered 304; the stored photo stands.
	RefreshNotModified
	// RefreshNoPhoto: the master says the owner has no photo.
	RefreshNoPhoto
	// RefreshFailed: the pull failed; the error timer runs.
	RefreshFailed
)

func (o RefreshOutcome) String() string {
	return [...]string{"skipped", "pulled", "not-modified", "no-photo", "failed"}[o]
}

// ErrImportDisabled is returned by Refresh when photos.import_enabled is off.
var ErrImportDisabled = errors.New("sync: photo import is disabled")

// ErrPeerPull is returned by Refresh when another replica holds the pull of
// the photo and did not finish in time.
var ErrPeerPull = errors.New("sync: another replica's pull of this photo did not finish in time")

// Refresh pulls owner's photo at size from the master whatever the trigger
// policy says. A photo whose timer runs (either timer) is skipped unless
// force, which ends the timer first. It returns an error only when no pull
// could be tried: import is off, the store failed, or ctx ended; a failed
// pull is RefreshFailed with the master's error.
func (e *Engine) Refresh(ctx context.Context, owner, size string, force bool) (RefreshOutcome, error) {
	return e.refresh(ctx, owner, size, force, nil)
}

// refresh is Refresh calling pulled, when set, once the pull's answer is in
// (or no pull was needed), before waiting for the store to take it.
func (e *Engine) refresh(ctx context.Context, owner, size string, force bool, pulled func()) (RefreshOutcome, error) {
	if !e.opts.ImportEnabled {
		return RefreshSkipped, ErrImportDisabled
	}
	key := store.Key{Owner: owner, Size: size}
	prev, err := e.opts.Store.Get(ctx, key)
	if p, ok := e.pending(key); ok {
		prev, err = p, nil
	}
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		e.stats.StoreErrors.Add(1)
		return RefreshSkipped, fmt.Errorf("refreshing %s: reading the store: %w", key, err)
	}
	if found && prev.Timer.Alive(e.opts.Now()) {
		if !force {
			return RefreshSkipped, nil
		}
		if err := e.endTimer(ctx, key, prev); err != nil {
			return RefreshSkipped, err
		}
	}
	if force && e.opts.Derive && size != photo.MasterSize {
		// A derived size comes from the master copy: end its timer too, so
		// the forced pull reaches the master.
		src := store.Key{Owner: owner, Size: photo.MasterSize}
		if rec, err := e.opts.Store.Get(ctx, src); err == nil && rec.Timer.Alive(e.opts.Now()) {
			if err := e.endTimer(ctx, src, rec); err != nil {
				return RefreshSkipped, err
			}
		}
	}
	e.stats.Misses.Add(1)
	var res pullResult
	f := e.startPull(key, prev)
	select {
	case <-ctx.Done():
		return RefreshSkipped, ctx.Err()
	case <-f.answered:
	}
	if pulled != nil {
		pulled() // the sources are done; the store may still be writing
	}
	select {
	case <-ctx.Done():
		return RefreshSkipped, ctx.Err()
	case <-f.stored:
		res = f.result
		if e.shared(f) {
			e.stats.Coalesced.Add(1)
		}
	}
	switch {
	case res.kind == peerTimedOut:
		return RefreshFailed, ErrPeerPull
	case res.kind == pullFailed:
		return RefreshFailed, errors.New(res.rec.Error)
	case res.storeErr != nil:
		return RefreshFailed, fmt.Errorf("storing the pulled photo: %w", res.storeErr)
	case res.rec.State == store.StateNoPhoto:
		return RefreshNoPhoto, nil
	case found && prev.State == store.StatePhoto && res.rec.Sum == prev.Sum && res.rec.ETag == prev.ETag:
		return RefreshNotModified, nil
	default:
		return RefreshPulled, nil
	}
}

// endTimer stops rec's running timer: pull re-checks the timer inside the
// flight, and a forced pull must really ask the master.
func (e *Engine) endTimer(ctx context.Context, key store.Key, rec store.Record) error {
	rec.Timer = store.Timer{}
	if err := e.opts.Store.Put(ctx, key, rec); err != nil {
		e.stats.StoreErrors.Add(1)
		return fmt.Errorf("refreshing %s: ending the timer: %w", key, err)
	}
	return nil
}

// SizeReport is what is stored for one size of a person's photo.
type SizeReport struct {
	Size        string    `json:"size"`
	Stored      bool      `json:"stored"` // false: nothing stored, the next request pulls
	State       string    `json:"state,omitempty"`
	ETag        string    `json:"etag,omitempty"` // ours, as served
	MasterETag  string    `json:"master_etag,omitempty"`
	Bytes       int       `json:"bytes"`
	ContentType string    `json:"content_type,omitempty"`
	Checksum    string    `json:"checksum,omitempty"`
	PulledAt    time.Time `json:"pulled_at,omitzero"`
	Timer       string    `json:"timer,omitempty"`
	TimerUntil  time.Time `json:"timer_until,omitzero"`
	Error       string    `json:"error,omitempty"`
	ErrorAt     time.Time `json:"error_at,omitzero"`
	StoreError  string    `json:"store_error,omitempty"` // the store could not read it
	// Source is which source gave the stored state, and why for no photo
	// ("directory", "exchange: deleted on purpose").
	Source string `json:"source,omitempty"`
}

// Report is everything known about one person's photos.
type Report struct {
	Owner string       `json:"owner"`
	Sizes []SizeReport `json:"sizes"`
	// Autodiscover is the owner's Autodiscover answer as this process has
	// it cached; nil when nothing is cached here (the cache lives in the
	// serving process: the admin API shows it, a separate command cannot).
	Autodiscover *photo.Lookup `json:"autodiscover,omitempty"`
}

// lookupCache is a source that caches where owners' photos live and can
// show it (the Exchange source: its Autodiscover answers).
type lookupCache interface {
	CachedLookup(owner string) (photo.Lookup, bool)
}

// lookupForgetter is a source that can drop what it caches about an owner.
type lookupForgetter interface {
	ForgetLookup(owner string)
}

// Inspect reports, per size, the stored record of owner's photo. A size
// the store cannot read is reported with StoreError rather than failing the
// whole report; Inspect fails only when ctx ends.
func (e *Engine) Inspect(ctx context.Context, owner string) (Report, error) {
	r := Report{Owner: owner, Sizes: make([]SizeReport, 0, len(photo.Sizes))}
	for _, size := range photo.Sizes {
		if err := ctx.Err(); err != nil {
			return Report{}, err
		}
		sr := SizeReport{Size: size}
		rec, err := e.opts.Store.Get(ctx, store.Key{Owner: owner, Size: size})
		if p, ok := e.pending(store.Key{Owner: owner, Size: size}); ok {
			rec, err = p, nil
		}
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			sr.StoreError = err.Error()
		default:
			sr.Stored = true
			sr.State = rec.State.String()
			sr.MasterETag = rec.ETag
			sr.Bytes = len(rec.Body)
			sr.ContentType = rec.ContentType
			sr.Checksum = rec.Sum
			sr.PulledAt = rec.PulledAt
			sr.Timer = rec.Timer.Kind.String()
			sr.TimerUntil = rec.Timer.Until
			sr.Error = rec.Error
			sr.ErrorAt = rec.ErrorAt
			sr.Source = rec.Source
			if rec.State == store.StatePhoto && len(rec.Body) > 0 {
				sr.ETag = etagOf(rec)
			}
		}
		r.Sizes = append(r.Sizes, sr)
	}
	for _, src := range e.opts.Sources {
		if c, ok := src.(lookupCache); ok {
			if l, ok := c.CachedLookup(owner); ok {
				r.Autodiscover = &l
				break
			}
		}
	}
	return r, nil
}

// Forget deletes owner's records and timers at every size, and what the
// sources cache about owner (Exchange's Autodiscover answer), so that the
// next request pulls afresh (Exchange's Remove-UserPhoto
// -ClearMailboxPhotoRecord, on our side).
func (e *Engine) Forget(ctx context.Context, owner string) error {
	var errs []error
	for _, size := range photo.Sizes {
		key := store.Key{Owner: owner, Size: size}
		// A pull of this photo in flight here would store its answer after
		// the delete and undo it: let it land first.
		if err := e.settle(ctx, key); err != nil {
			return err
		}
		if err := e.opts.Store.Delete(ctx, key); err != nil {
			e.stats.StoreErrors.Add(1)
			errs = append(errs, fmt.Errorf("forgetting %s/%s: %w", owner, size, err))
		}
	}
	for _, src := range e.opts.Sources {
		if f, ok := src.(lookupForgetter); ok {
			f.ForgetLookup(owner)
		}
	}
	return errors.Join(errs...)
}

// WarmOptions configures Warm.
type WarmOptions struct {
	// Sizes to pull for each person. Default: every size.
	Sizes []string
	// Concurrency bounds the pulls in flight (asking the sources, or
	// deriving a size); as many again may be waiting for the store to
	// take what they pulled. Default: 4.
	Concurrency int
	// Force pulls photos whose timer still runs.
	Force bool
	// Progress, when set, is called after each photo, from any goroutine
	// but never twice at once, with the counts so far.
	Progress func(WarmCounts)
}

// WarmCounts counts a warm's photos by outcome.
type WarmCounts struct {
	Total       int `json:"total"` // photos to do: people × sizes
	Pulled      int `json:"pulled"`
	NotModified int `json:"not_modified"`
	NoPhoto     int `json:"no_photo"`
	Failed      int `json:"failed"`
	Skipped     int `json:"skipped"`
}

// Done is how many photos have been dealt with.
func (c WarmCounts) Done() int {
	return c.Pulled + c.NotModified + c.NoPhoto + c.Failed + c.Skipped
}

func (c *WarmCounts) add(o RefreshOutcome) {
	switch o {
	case RefreshPulled:
		c.Pulled++
	case RefreshNotModified:
		c.NotModified++
	case RefreshNoPhoto:
		c.NoPhoto++
	case RefreshFailed:
		c.Failed++
	default:
		c.Skipped++
	}
}

// storeWaits is, per pull slot of a warm, how many pulled photos may be
// waiting for the store at once.
const storeWaits = 8

// Warm refreshes every size in opts.Sizes of every owner, at most
// opts.Concurrency at a time, respecting the timers unless opts.Force. A
// pull that fails counts as failed and starts its error timer, which is the
// master's back-off: the next warm skips it until the timer ends. Owners
// must be valid, lower-case addresses. Warm stops early, returning the
// counts so far and ctx's error, when ctx ends; otherwise it returns the
// first error that stopped a refresh before it reached the master (a store
// failure), with every photo counted.
func (e *Engine) Warm(ctx context.Context, owners []string, opts WarmOptions) (WarmCounts, error) {
	sizes := opts.Sizes
	if len(sizes) == 0 {
		sizes = photo.Sizes
	}
	n := opts.Concurrency
	if n <= 0 {
		n = 4
	}
	var (
		mu       stdsync.Mutex
		counts   = WarmCounts{Total: len(owners) * len(sizes)}
		firstErr error
	)
	// n pulls ask the sources at once; up to storeWaits times as many more
	// may be waiting for the store to take what they pulled (each holding
	// one photo), so a commit and its sync to disk never hold a pull's
	// place: the store batches while the pulls go at the master's pace.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit((1 + storeWaits) * n)
	pulls := make(chan struct{}, n)
	for _, owner := range owners {
		for _, size := range sizes {
			if gctx.Err() != nil {
				break
			}
			g.Go(func() error {
				select {
				case pulls <- struct{}{}:
				case <-gctx.Done():
					return gctx.Err()
				}
				var once stdsync.Once
				pulled := func() { once.Do(func() { <-pulls }) }
				out, err := e.refresh(gctx, owner, size, opts.Force, pulled)
				pulled()
				if err != nil && out != RefreshFailed {
					if ctxErr := gctx.Err(); ctxErr != nil {
						return ctxErr
					}
					out = RefreshFailed
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				mu.Lock()
				defer mu.Unlock()
				counts.add(out)
				if opts.Progress != nil {
					opts.Progress(counts)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return counts, err
	}
	if err := ctx.Err(); err != nil {
		return counts, err
	}
	return counts, firstErr
}
