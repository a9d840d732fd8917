// Package sync is photosync's engine: it decides, for each request for a
// person's photo, whether to serve the stored copy or pull a fresh one from
// the master (Exchange), and it serves the answer over HTTP.
//
// The decision follows SharePoint Server 2013's Exchange photo sync. A good
// pull (200, 304 or 404 from the master) starts UserPhotoExpiration; a failed
// one starts UserPhotoErrorExpiration; while either timer runs, the master is
// not asked about that photo again. When no timer runs, a request may pull,
// if the trigger policy lets that viewer cause a pull (SharePoint: only the
// owner's own request). Concurrent pulls of one photo are merged into one,
// and a failed pull never throws away the last good copy.
//
// Inside this package "sync" is the standard library's; importers of this
// package alias one of the two.
package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"photosync/autodiscover"
	"photosync/store"
)

// ErrNoPhoto is returned by Engine.Photo when there is no photo to serve:
// the owner has none, or none was ever pulled and none may be pulled now.
var ErrNoPhoto = errors.New("sync: no photo")

// Locator finds where an owner's photos live; *autodiscover.Client is one.
type Locator interface {
	Lookup(ctx context.Context, email string) (autodiscover.Settings, error)
}

// TokenSource mints the S2S bearer token that acts as user toward host
// (host[:port] of the URL being called); *oauth.Issuer is one.
type TokenSource interface {
	Token(ctx context.Context, user, host string) (string, error)
}

// Trigger says whose requests may pull a photo from the master.
type Trigger uint8

const (
	// TriggerSelf: only the owner's own request pulls (SharePoint).
	TriggerSelf Trigger = iota
	// TriggerAny: every viewer's request may pull.
	TriggerAny
)

func (t Trigger) String() string {
	if t == TriggerAny {
		return "any"
	}
	return "self"
}

// Options configures an Engine. Store and, when ImportEnabled, Locator and
// Master are required.
type Options struct {
	Store   store.Store
	Locator Locator
	Master  *Master

	// ImportEnabled is SharePoint's UserPhotoImportEnabled: when false the
	// engine never pulls and serves only what the store holds.
	ImportEnabled bool
	// Expiration is UserPhotoExpiration, started by a good pull. Default: 6h.
	Expiration time.Duration
	// ErrorExpiration is UserPhotoErrorExpiration, started by a failed pull.
	// Default: 1h.
	ErrorExpiration time.Duration
	// Trigger says whose requests may pull. Default: TriggerSelf.
	Trigger Trigger
	// PullTimeout bounds one whole pull (Autodiscover, token, fetch), which
	// runs on its own context so that one departing viewer does not fail the
	// others waiting on it. Default: 30s.
	PullTimeout time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger receives one line per pull. Default: discard.
	Logger *slog.Logger
}

// Outcome says how a photo came to be served.
type Outcome uint8

const (
	// OutcomeHit: served from the store with its timer running.
	OutcomeHit Outcome = iota
	// OutcomeStale: served from the store although its timer ran out,
	// because this viewer may not pull, import is off, or the pull failed.
	OutcomeStale
	// OutcomePulled: this request pulled the photo from the master.
	OutcomePulled
	// OutcomeCoalesced: another request's pull answered this one.
	OutcomeCoalesced
)

func (o Outcome) String() string {
	return [...]string{"hit", "stale", "pulled", "coalesced"}[o]
}

// Photo is a photo ready to serve.
type Photo struct {
	Body        []byte // must not be modified
	ContentType string
	ETag        string        // ours, quoted, derived from the bytes
	MaxAge      time.Duration // how long the running timer has left; 0 when stale
	Outcome     Outcome
}

// Stats counts what the engine did. Read it with Engine.Stats.
type Stats struct {
	Hits, Stale, Misses, Coalesced atomic.Int64
	Pulls, PullErrors, NotModified atomic.Int64
	StoreErrors                    atomic.Int64
}

// Engine decides hit, pull, stale or error for each photo request. It is
// safe for concurrent use.
type Engine struct {
	opts   Options
	log    *slog.Logger
	flight singleflight.Group
	stats  Stats
}

// New returns an Engine.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("sync: Options.Store is required")
	}
	if opts.ImportEnabled && (opts.Locator == nil || opts.Master == nil) {
		return nil, errors.New("sync: Options.Locator and Options.Master are required when import is enabled")
	}
	if opts.Expiration <= 0 {
		opts.Expiration = 6 * time.Hour
	}
	if opts.ErrorExpiration <= 0 {
		opts.ErrorExpiration = time.Hour
	}
	if opts.PullTimeout <= 0 {
		opts.PullTimeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{opts: opts, log: log}, nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// Photo returns owner's photo at size for viewer ("" when anonymous). Owner
// must already be a valid, lower-case address and size a valid size code.
// It returns ErrNoPhoto when there is nothing to serve.
func (e *Engine) Photo(ctx context.Context, owner, size, viewer string) (Photo, error) {
	key := store.Key{Owner: owner, Size: size}
	rec, found := e.load(ctx, key)
	now := e.opts.Now()
	if found && rec.Timer.Alive(now) {
		e.stats.Hits.Add(1)
		return serve(rec, now, OutcomeHit)
	}
	if !e.mayPull(owner, viewer) {
		e.stats.Stale.Add(1)
		return serve(rec, now, OutcomeStale)
	}
	e.stats.Misses.Add(1)

	ch := e.flight.DoChan(key.String(), func() (v any, err error) {
		// The flight outlives the request that started it: a panic in it
		// must fail this pull, not the process.
		defer func() {
			if p := recover(); p != nil {
				e.log.Error("pull panicked", "owner", key.Owner, "size", key.Size, "panic", p)
				v = pullResult{rec: rec, failed: true}
			}
		}()
		return e.pull(key), nil
	})
	select {
	case <-ctx.Done():
		return Photo{}, ctx.Err()
	case r := <-ch:
		res := r.Val.(pullResult)
		outcome := OutcomePulled
		if r.Shared {
			outcome = OutcomeCoalesced
			e.stats.Coalesced.Add(1)
		}
		if res.failed || !res.fresh {
			outcome = OutcomeStale
		}
		return serve(res.rec, e.opts.Now(), outcome)
	}
}

// mayPull applies UserPhotoImportEnabled and the trigger policy.
func (e *Engine) mayPull(owner, viewer string) bool {
	if !e.opts.ImportEnabled {
		return false
	}
	return e.opts.Trigger == TriggerAny || strings.EqualFold(owner, viewer)
}

// load reads the store. A store that fails is logged and read as a miss, so
// photos keep being served from the master while it is away.
func (e *Engine) load(ctx context.Context, key store.Key) (store.Record, bool) {
	rec, err := e.opts.Store.Get(ctx, key)
	switch {
	case err == nil:
		return rec, true
	case errors.Is(err, store.ErrNotFound):
	default:
		e.stats.StoreErrors.Add(1)
		e.log.Warn("store read failed; treating as a miss", "owner", key.Owner, "size", key.Size, "err", err)
	}
	return store.Record{}, false
}

func serve(rec store.Record, now time.Time, outcome Outcome) (Photo, error) {
	if rec.State != store.StatePhoto || len(rec.Body) == 0 {
		return Photo{Outcome: outcome}, ErrNoPhoto
	}
	p := Photo{
		Body:        rec.Body,
		ContentType: rec.ContentType,
		ETag:        etagOf(rec),
		Outcome:     outcome,
	}
	if rec.Timer.Alive(now) && outcome != OutcomeStale {
		p.MaxAge = rec.Timer.Until.Sub(now)
	}
	return p, nil
}

// etagOf is our ETag for a record: a strong validator from its checksum, the
// same on every replica, whatever the master's ETag looks like.
func etagOf(rec store.Record) string {
	sum := rec.Sum
	if sum == "" {
		sum = store.Checksum(rec.Body)
	}
	if len(sum) > 32 {
		sum = sum[:32]
	}
	return `"` + sum + `"`
}

// storeTimeout bounds the write of a pull's outcome.
const storeTimeout = 5 * time.Second

type pullResult struct {
	rec    store.Record
	fresh  bool // the record's timer was started by this pull or another that just ran
	failed bool
}

// pull runs one pull of key from the master and stores its outcome. It runs
// inside the flight, on a context no caller owns.
func (e *Engine) pull(key store.Key) pullResult {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.PullTimeout)
	defer cancel()

	// Another request, or another replica, may have pulled while this one
	// waited for the flight: look again before asking the master.
	prev, found := e.load(ctx, key)
	now := e.opts.Now()
	if found && prev.Timer.Alive(now) {
		return pullResult{rec: prev, fresh: prev.Timer.Kind == store.TimerSuccess, failed: prev.Timer.Kind == store.TimerError}
	}

	e.stats.Pulls.Add(1)
	started := time.Now()
	res, pullErr := e.fetch(ctx, key, prev)
	now = e.opts.Now()
	next := prev
	switch {
	case pullErr != nil:
		e.stats.PullErrors.Add(1)
		if !found {
			next = store.Record{State: store.StateUnknown}
		}
		next.Error = pullErr.Error()
		next.ErrorAt = now
		next.Timer = store.Timer{Kind: store.TimerError, Until: now.Add(e.opts.ErrorExpiration)}
		e.log.Warn("pull failed", "owner", key.Owner, "size", key.Size, "err", pullErr,
			"retry_after", e.opts.ErrorExpiration, "elapsed", time.Since(started))
	case res.status == http.StatusNotModified:
		e.stats.NotModified.Add(1)
		next.PulledAt, next.Error, next.ErrorAt = now, "", time.Time{}
		next.Timer = store.Timer{Kind: store.TimerSuccess, Until: now.Add(e.opts.Expiration)}
		e.log.Info("photo not modified", "owner", key.Owner, "size", key.Size, "elapsed", time.Since(started))
	case res.status == http.StatusNotFound:
		next = store.Record{State: store.StateNoPhoto, PulledAt: now,
			Timer: store.Timer{Kind: store.TimerSuccess, Until: now.Add(e.opts.Expiration)}}
		e.log.Info("owner has no photo", "owner", key.Owner, "size", key.Size, "elapsed", time.Since(started))
	default:
		next = store.Record{State: store.StatePhoto, Body: res.body, ContentType: res.contentType,
			Sum: store.Checksum(res.body), ETag: res.etag, PulledAt: now,
			Timer: store.Timer{Kind: store.TimerSuccess, Until: now.Add(e.opts.Expiration)}}
		e.log.Info("photo pulled", "owner", key.Owner, "size", key.Size, "bytes", len(res.body),
			"type", res.contentType, "elapsed", time.Since(started))
	}
	if next.State == store.StatePhoto && next.Sum == "" {
		next.Sum = store.Checksum(next.Body)
	}
	// The pull's own deadline may be what ended it: store the outcome
	// (above all the error timer) on a context of its own.
	putCtx, cancelPut := context.WithTimeout(context.Background(), storeTimeout)
	defer cancelPut()
	if err := e.opts.Store.Put(putCtx, key, next); err != nil {
		e.stats.StoreErrors.Add(1)
		e.log.Error("store write failed; serving the pulled photo unstored", "owner", key.Owner, "size", key.Size, "err", err)
	}
	return pullResult{rec: next, fresh: pullErr == nil, failed: pullErr != nil}
}

// fetch resolves the owner's photo URL and asks the master, revalidating the
// stored copy when there is one.
func (e *Engine) fetch(ctx context.Context, key store.Key, prev store.Record) (fetched, error) {
	settings, err := e.opts.Locator.Lookup(ctx, key.Owner)
	if err != nil {
		return fetched{}, err
	}
	etag := ""
	if prev.State == store.StatePhoto && len(prev.Body) > 0 {
		etag = prev.ETag
	}
	res, err := e.opts.Master.Fetch(ctx, settings.ExternalPhotosURL, key.Owner, key.Size, etag)
	if err != nil {
		return fetched{}, err
	}
	if res.status == http.StatusNotModified && etag == "" {
		return fetched{}, fmt.Errorf("master: 304 Not Modified although no ETag was sent")
	}
	return res, nil
}
