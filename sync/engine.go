// Package sync is photosync's engine: it decides, for each request for a
// person's photo, whether to serve the stored copy or pull a fresh one from
// the sources (Exchange, Microsoft Graph, the directory), and it keeps the
// two timers that decide when to ask again. It knows sources only as
// photo.Source and stores only as store.Store; the HTTP face is package web.
//
// The decision follows SharePoint Server 2013's Exchange photo sync. A good
// pull (a photo, not modified, or no photo) starts UserPhotoExpiration; a
// failed one starts UserPhotoErrorExpiration; while either timer runs, no
// source is asked about that photo again. When no timer runs, a request may
// pull, if the trigger policy lets that viewer cause a pull (SharePoint:
// only the owner's own request). Concurrent pulls of one photo are merged
// into one in a process, and into one across replicas by a lock in the
// shared store. A photo we already have is served at once while it is
// refreshed in the background (stale-while-revalidate); a cold one waits
// for its pull at most a short deadline. A failed pull never throws away
// the last good copy, but a copy is not served once it is older than
// MaxStale.
//
// Inside this package "sync" is the standard library's; importers of this
// package alias one of the two.
package sync

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"photosync/internal/spawn"
	"photosync/store"
	"photosync/sync/photo"
)

// ErrNoPhoto is returned by Engine.Photo when there is no photo to serve:
// the owner has none, or none was ever pulled and none may be pulled now.
var ErrNoPhoto = errors.New("sync: no photo")

// Locker is the cross-replica pull lock; *store.Redis is one. TryLock does
// not wait: acquired is false while another replica holds the lock for key.
// The lock is a lease of ttl that its holder renews until release, so a
// holder that dies frees it at most ttl later.
type Locker interface {
	TryLock(ctx context.Context, key store.Key, ttl time.Duration) (release func(), acquired bool, err error)
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

// Options configures an Engine. Store and, when ImportEnabled, Sources are
// required. Zero durations mean the defaults below, written here once.
type Options struct {
	Store store.Store
	// Sources are asked in order for each pull, as photo.Walk says: the
	// first photo wins, a photo deleted on purpose or an error ends the walk.
	Sources []photo.Source
	// Locker, when set, makes replicas sharing Store pull each photo once
	// between them: the others wait for the result in the store.
	Locker Locker

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
	// PullTimeout bounds one whole pull (for Exchange: Autodiscover, token,
	// fetch), which
	// runs on its own context so that one departing viewer does not fail the
	// others waiting on it. Default: 30s.
	PullTimeout time.Duration
	// ColdDeadline is how long a request for a photo we do not have waits
	// for its pull before it is answered without it (the pull goes on).
	// Default: 2s.
	ColdDeadline time.Duration
	// MaxStale bounds how old (since a source last confirmed it) a copy
	// may be and still be served once its timer ran out. Default: 7 days,
	// the lifetime of Exchange's own photo cache.
	MaxStale time.Duration
	// Derive pulls only photo.MasterSize from the sources and scales every
	// smaller size from it here, so all nine sizes of a person cost one
	// source call per expiry window. Turn it off for masters whose own sizes must be
	// served (e.g. hand-cropped thumbnails).
	Derive bool
	// JPEGQuality of derived JPEGs, 1 to 100. Default: 85.
	JPEGQuality int
	// MaxPixels bounds the width × height a photo's header may claim; a
	// larger one is a failed pull (photos.max_pixels).
	// Default: photo.DefaultMaxPixels.
	MaxPixels int64
	// DecodeMemory bounds the bytes of pixels all decodes hold at once,
	// checking pulled photos and deriving sizes (photos.decode_memory).
	// Default: photo.DefaultDecodeMemory.
	DecodeMemory int64
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Stats is where the engine counts; an engine that replaces another
	// (a config reload) is given the old one's, so counters carry on.
	// Default: new counters.
	Stats *Stats
	// Logger receives one line per pull. Default: discard.
	Logger *slog.Logger
}

// The defaults of Options, and of the photos section of the config file,
// which takes them from here.
const (
	DefaultExpiration      = 6 * time.Hour // SharePoint's UserPhotoExpiration
	DefaultErrorExpiration = time.Hour     // SharePoint's UserPhotoErrorExpiration
	DefaultPullTimeout     = 30 * time.Second
	DefaultColdDeadline    = 2 * time.Second
	// DefaultMaxStale is the lifetime of Exchange's own photo cache.
	DefaultMaxStale    = 7 * 24 * time.Hour
	DefaultJPEGQuality = 85
)

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Outcome says how a photo came to be served.
type Outcome uint8

const (
	// OutcomeHit: served from the store with its timer running.
	OutcomeHit Outcome = iota
	// OutcomeStale: served from the store although its timer ran out; Photo.Stale
	// says why.
	OutcomeStale
	// OutcomePulled: this request pulled the photo from its source.
	OutcomePulled
	// OutcomeCoalesced: another request's pull (in this process or on
	// another replica) answered this one.
	OutcomeCoalesced
)

func (o Outcome) String() string {
	return [...]string{"hit", "stale", "pulled", "coalesced"}[o]
}

// Reasons a stale copy (or nothing) was served, for Photo.Stale.
const (
	StaleRevalidating   = "revalidating"    // a background pull is refreshing it
	StaleError          = "error"           // the last pull failed; the error timer runs
	StaleNotOwner       = "not-owner"       // trigger self: only the owner's request pulls
	StaleImportDisabled = "import-disabled" // photos.import_enabled is false
	StaleColdDeadline   = "cold-deadline"   // the pull did not finish in time; it goes on
	StalePeerPull       = "peer-pull"       // another replica's pull did not finish in time
	StaleTooOld         = "max-stale"       // the copy is older than MaxStale: not served
)

// Photo is a photo ready to serve, and how it came to be.
type Photo struct {
	Body        []byte // must not be modified
	ContentType string
	ETag        string        // ours, quoted, derived from the bytes
	MaxAge      time.Duration // how long the running timer has left; 0 when stale
	Outcome     Outcome
	// Stale says why a stale copy, or nothing, was served ("" otherwise).
	Stale string
	// Expired is how long ago the copy's timer ran out, when stale.
	Expired time.Duration
	// Answered says this request's pull reached a source, and Answer is
	// what the source that ended the walk said.
	Answered bool
	Answer   photo.Status
	// Name is the owner's display name as the source gave it, "" when
	// none did; set with ErrNoPhoto too, for the initials placeholder.
	Name string
}

// Stats counts what the engine did. Read it with Engine.Stats.
type Stats struct {
	Hits, Stale, Misses, Coalesced atomic.Int64
	Pulls, PullErrors, NotModified atomic.Int64
	StoreErrors                    atomic.Int64
	// ColdTimeouts counts cold requests answered before their pull ended;
	// TooStale counts copies refused for being older than MaxStale.
	ColdTimeouts, TooStale atomic.Int64
	// PeerWaits counts pulls left to another replica holding the lock.
	PeerWaits atomic.Int64
	// Derived counts sizes scaled here from the master copy.
	Derived atomic.Int64
	// InFlight is the number of pulls asking the sources now.
	InFlight atomic.Int64

	sourceErrors sync.Map // source name → *atomic.Int64, failed pulls by the source that failed
}

// SourceErrors calls f with each source's count of failed pulls, the
// sources the engine was made with first (so each has a count, zero or
// not); a derived size that failed to scale counts under "scale".
func (s *Stats) SourceErrors(f func(source string, n int64)) {
	s.sourceErrors.Range(func(k, v any) bool {
		f(k.(string), v.(*atomic.Int64).Load())
		return true
	})
}

// sourceError counts a failed pull against source.
func (s *Stats) sourceError(source string) {
	n, ok := s.sourceErrors.Load(source)
	if !ok {
		n, _ = s.sourceErrors.LoadOrStore(source, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(1)
}

// Engine decides hit, pull, stale or error for each photo request. It is
// safe for concurrent use.
type Engine struct {
	opts     Options
	log      *slog.Logger
	scaling  chan struct{} // a slot per CPU for deriving sizes
	flightMu sync.Mutex
	flights  map[store.Key]*flight // the pulls in flight, one per photo
	storing  atomic.Int64          // flights answered whose answer is not stored yet
	decoder  *photo.Decoder        // every decode, under one memory budget
	masters  masterFlight          // one decode of a master copy for all sizes derived meanwhile
	stats    *Stats

	writesDown atomic.Bool    // the last write failed: logged once per outage
	background sync.WaitGroup // pulls that may outlive their request
}

// New returns an Engine.
func New(opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, errors.New("sync: Options.Store is required")
	}
	if opts.ImportEnabled && len(opts.Sources) == 0 {
		return nil, errors.New("sync: Options.Sources are required when import is enabled")
	}
	opts.Expiration = orDefault(opts.Expiration, DefaultExpiration)
	opts.ErrorExpiration = orDefault(opts.ErrorExpiration, DefaultErrorExpiration)
	opts.PullTimeout = orDefault(opts.PullTimeout, DefaultPullTimeout)
	opts.ColdDeadline = orDefault(opts.ColdDeadline, DefaultColdDeadline)
	opts.MaxStale = orDefault(opts.MaxStale, DefaultMaxStale)
	if opts.JPEGQuality <= 0 || opts.JPEGQuality > 100 {
		opts.JPEGQuality = DefaultJPEGQuality
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Scaling is CPU work holding a few MiB of pixels each: more at once
	// than there are CPUs finishes no sooner and only piles up memory.
	if opts.Stats == nil {
		opts.Stats = new(Stats)
	}
	e := &Engine{opts: opts, log: log, stats: opts.Stats, scaling: make(chan struct{}, runtime.GOMAXPROCS(0)),
		decoder: photo.NewDecoder(photo.Limits{MaxPixels: opts.MaxPixels, DecodeMemory: opts.DecodeMemory})}
	for _, src := range opts.Sources {
		e.stats.sourceErrors.LoadOrStore(src.Name(), new(atomic.Int64))
	}
	return e, nil
}

// Stats returns the engine's counters.
func (e *Engine) Stats() *Stats { return e.stats }

// Wait blocks until the pulls running in the background (refreshes of stale
// photos, cold pulls whose viewers stopped waiting) have ended, or ctx ends.
// Call it at shutdown, after the HTTP server stopped taking requests.
func (e *Engine) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { e.background.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Photo returns owner's photo at size for viewer ("" when anonymous). Owner
// must already be a valid, lower-case address and size a valid size code.
// It returns ErrNoPhoto when there is nothing to serve; the returned Photo
// still says why (Outcome, Stale).
func (e *Engine) Photo(ctx context.Context, owner, size, viewer string) (Photo, error) {
	key := store.Key{Owner: owner, Size: size}
	rec, found := e.load(ctx, key)
	now := e.opts.Now()
	if found && rec.Timer.Alive(now) {
		if rec.Timer.Kind == store.TimerError {
			// The last pull failed: this is the last good copy, stale.
			e.stats.Stale.Add(1)
			return e.serveStale(rec, now, StaleError)
		}
		e.stats.Hits.Add(1)
		return serve(rec, now, OutcomeHit)
	}
	if !e.opts.ImportEnabled {
		e.stats.Stale.Add(1)
		return e.serveStale(rec, now, StaleImportDisabled)
	}
	if !e.mayPull(owner, viewer) {
		e.stats.Stale.Add(1)
		return e.serveStale(rec, now, StaleNotOwner)
	}

	e.stats.Misses.Add(1)
	f := e.startPull(key, rec)
	if found && rec.State == store.StatePhoto && e.servable(rec, now) {
		// Stale-while-revalidate: the viewer gets our copy now, the
		// background pull refreshes it for the next one.
		return e.serveStale(rec, now, StaleRevalidating)
	}
	timer := time.NewTimer(e.opts.ColdDeadline)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return Photo{}, ctx.Err()
	case <-timer.C:
		e.stats.ColdTimeouts.Add(1)
		return Photo{Outcome: OutcomeStale, Stale: StaleColdDeadline}, ErrNoPhoto
	case <-f.answered:
		// The answer, maybe before it is stored: the flight stays open
		// until it is, so no other pull of this photo starts meanwhile.
		res := f.answer
		now = e.opts.Now()
		switch res.kind {
		case pullFailed:
			return e.serveStale(res.rec, now, StaleError)
		case peerTimedOut:
			return e.serveStale(res.rec, now, StalePeerPull)
		}
		outcome := OutcomePulled
		if e.shared(f) || res.kind == pulledByPeer {
			e.stats.Coalesced.Add(1)
			outcome = OutcomeCoalesced
		}
		p, err := serve(res.rec, now, outcome)
		p.Answered, p.Answer = res.answered, res.answer
		return p, err
	}
}

// flight is one pull of a photo, shared by every caller that asks for the
// photo while it runs. Its answer comes in two steps: answered, once the
// sources (or the master copy, for a derived size) gave the outcome, and
// stored, once the outcome is in the store (or the store refused it). A
// viewer waits only for the first; operators' commands, which count what
// the store refused, for the second. The flight ends, and another pull of
// the photo may start, only after the second: a request arriving between
// the two joins it rather than pulling again.
type flight struct {
	answered chan struct{} // closed when answer is set
	stored   chan struct{} // closed when result is set
	answer   pullResult    // without storeErr
	result   pullResult
	once     sync.Once
	dups     int // callers beside the first; guarded by Engine.flightMu
}

// answerWith publishes the outcome before it is stored; only the first
// call counts. Until the flight ends, the engine reads the answer as if it
// were stored (Engine.pending).
func (f *flight) answerWith(e *Engine, r pullResult) {
	f.once.Do(func() {
		f.answer = r
		f.answer.storeErr = nil
		e.storing.Add(1)
		close(f.answered)
	})
}

// pending returns the answer of key's flight while the store is taking it,
// so that a read in the meantime (another viewer's request, Inspect, a
// Refresh) sees what the store is about to hold.
func (e *Engine) pending(key store.Key) (store.Record, bool) {
	if e.storing.Load() == 0 {
		return store.Record{}, false
	}
	e.flightMu.Lock()
	f, ok := e.flights[key]
	e.flightMu.Unlock()
	if !ok {
		return store.Record{}, false
	}
	select {
	case <-f.answered:
		if f.answer.kind == peerTimedOut {
			return store.Record{}, false // nothing new is being stored
		}
		return f.answer.rec, true
	default:
		return store.Record{}, false
	}
}

// settle waits until the pull of key in flight, if there is one, has
// stored its answer, or ctx ends.
func (e *Engine) settle(ctx context.Context, key store.Key) error {
	e.flightMu.Lock()
	f, ok := e.flights[key]
	e.flightMu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-f.stored:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startPull joins the pull of key in flight, or starts one, and returns its
// flight. The pull runs to its end whether or not anyone still waits; Wait
// waits for it.
func (e *Engine) startPull(key store.Key, rec store.Record) *flight {
	e.flightMu.Lock()
	for {
		f, ok := e.flights[key]
		if !ok {
			break
		}
		select {
		case <-f.answered:
			// Its answer is out and being stored: it may be older than
			// what this caller asks for (whose load missed it), so wait
			// for the store and pull anew, as a caller after the flight
			// would; that pull finds the stored answer if it still holds.
			e.flightMu.Unlock()
			<-f.stored
			e.flightMu.Lock()
			continue
		default:
		}
		f.dups++
		e.flightMu.Unlock()
		return f
	}
	if e.flights == nil {
		e.flights = map[store.Key]*flight{}
	}
	f := &flight{answered: make(chan struct{}), stored: make(chan struct{})}
	e.flights[key] = f
	e.background.Add(1)
	e.flightMu.Unlock()
	spawn.Go(func() {
		defer e.background.Done()
		var r pullResult
		func() {
			// The flight outlives the request that started it: a panic in it
			// must fail this pull, not the process.
			defer func() {
				if p := recover(); p != nil {
					e.log.Error("pull panicked", "owner", key.Owner, "size", key.Size, "panic", p)
					r = pullResult{rec: rec, kind: pullFailed}
				}
			}()
			r = e.pull(key, f)
		}()
		f.answerWith(e, r)
		e.flightMu.Lock()
		delete(e.flights, key)
		e.flightMu.Unlock()
		e.storing.Add(-1)
		f.result = r
		close(f.stored)
	})
	return f
}

// shared reports whether more than one caller asked for f's pull.
func (e *Engine) shared(f *flight) bool {
	e.flightMu.Lock()
	defer e.flightMu.Unlock()
	return f.dups > 0
}

// mayPull applies the trigger policy.
func (e *Engine) mayPull(owner, viewer string) bool {
	return e.opts.Trigger == TriggerAny || strings.EqualFold(owner, viewer)
}

// servable reports whether a copy is recent enough to serve stale: the
// master confirmed it less than MaxStale ago.
func (e *Engine) servable(rec store.Record, now time.Time) bool {
	return now.Sub(rec.PulledAt) <= e.opts.MaxStale
}

// serveStale serves rec although its timer ran out, for reason, unless it
// is older than MaxStale.
func (e *Engine) serveStale(rec store.Record, now time.Time, reason string) (Photo, error) {
	if rec.State == store.StatePhoto && !e.servable(rec, now) {
		e.stats.TooStale.Add(1)
		return Photo{Outcome: OutcomeStale, Stale: StaleTooOld}, ErrNoPhoto
	}
	p, err := serve(rec, now, OutcomeStale)
	p.Stale = reason
	if expired := rec.PulledAt.Add(e.opts.Expiration); now.After(expired) {
		p.Expired = now.Sub(expired)
	}
	return p, err
}

// load reads the store. A store that fails is read as a miss, so photos
// keep being served (from the memory layer and the sources) while it is
// away. A failed read is counted, not logged: a read may be answered from
// memory, so only the store itself can tell when it became unreachable and
// when it is back (store.Redis logs both).
func (e *Engine) load(ctx context.Context, key store.Key) (store.Record, bool) {
	if rec, ok := e.pending(key); ok {
		return rec, true
	}
	rec, err := e.opts.Store.Get(ctx, key)
	switch {
	case err == nil:
		return rec, true
	case errors.Is(err, store.ErrNotFound):
	case errors.Is(err, store.ErrCorrupt):
		e.stats.StoreErrors.Add(1)
		e.log.Error("stored photo fails its checksum; pulling it again", "owner", key.Owner, "size", key.Size)
	default:
		e.stats.StoreErrors.Add(1)
	}
	return store.Record{}, false
}

// writeFailed counts a write the store refused and logs the first of an
// outage; writeOK ends the outage. Writes always reach the backing store,
// so unlike reads they say whether it takes them.
func (e *Engine) writeFailed(err error) {
	e.stats.StoreErrors.Add(1)
	if !e.writesDown.Swap(true) {
		e.log.Error("store refuses writes: pulls are served but not kept, timers kept in memory", "err", err)
	}
}

func (e *Engine) writeOK() {
	if e.writesDown.Swap(false) {
		e.log.Info("store takes writes again")
	}
}

func serve(rec store.Record, now time.Time, outcome Outcome) (Photo, error) {
	if rec.State != store.StatePhoto || len(rec.Body) == 0 {
		return Photo{Outcome: outcome, Name: rec.Name}, ErrNoPhoto
	}
	p := Photo{
		Body:        rec.Body,
		ContentType: rec.ContentType,
		ETag:        etagOf(rec),
		Outcome:     outcome,
		Name:        rec.Name,
	}
	if outcome != OutcomeStale && rec.Timer.Alive(now) {
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

// peerPoll is how often a replica waiting for another's pull looks at the
// store.
const peerPoll = 25 * time.Millisecond

// pullLease is the pull lock's lease: short, since a dead holder costs the
// others up to one lease, and renewed by the holder while its pull runs.
const pullLease = 3 * time.Second

// pullKind is how one pull ended.
type pullKind uint8

const (
	// pulledHere: this pull asked the sources and stored their answer.
	pulledHere pullKind = iota
	// pulledByPeer: another pull (another replica's, or one that ended
	// while this one waited) had stored a fresh answer already.
	pulledByPeer
	// pullFailed: the sources failed (here or at the peer); rec is the last
	// good copy, if any, under the error timer.
	pullFailed
	// peerTimedOut: another replica holds the pull and did not finish in
	// time; rec is what was stored before.
	peerTimedOut
)

type pullResult struct {
	rec  store.Record
	kind pullKind
	// answered says the sources were asked by this pull; answer is what
	// the source that ended the walk said.
	answered bool
	answer   photo.Status
	// storeErr says the outcome could not be stored; the viewer is still
	// answered, operators' commands count it failed.
	storeErr error
}

// pull runs one pull of key and stores its outcome. It runs inside the
// flight, on a context no caller owns.
func (e *Engine) pull(key store.Key, f *flight) pullResult {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.PullTimeout)
	defer cancel()

	// Another request, or another replica, may have pulled while this one
	// waited for the flight: look again before asking the master.
	prev, found := e.load(ctx, key)
	if r, done := e.settled(prev, found); done {
		return r
	}
	// The lock covers derived sizes too: the master copy has a lock of its
	// own, and one replica scaling a size saves the others the work.
	if e.opts.Locker != nil {
		release, acquired, err := e.opts.Locker.TryLock(ctx, key, pullLease)
		if err == nil && !acquired {
			e.stats.PeerWaits.Add(1)
			var r pullResult
			if r, release = e.awaitPeer(ctx, key, prev); release == nil {
				return r
			}
		}
		switch {
		case err != nil:
			// No shared store, no shared lock: pull alone.
			e.stats.StoreErrors.Add(1)
		default:
			defer release()
			// The holder before us may have finished just now.
			if prev, found = e.load(ctx, key); found {
				if r, done := e.settled(prev, found); done {
					return r
				}
			}
		}
	}
	if e.opts.Derive && key.Size != photo.MasterSize {
		return e.pullDerived(ctx, key, prev, f)
	}
	return e.fetchAndStore(ctx, key, prev, found, f)
}

// settled returns the result of a record another pull already refreshed.
func (e *Engine) settled(rec store.Record, found bool) (pullResult, bool) {
	if !found || !rec.Timer.Alive(e.opts.Now()) {
		return pullResult{}, false
	}
	if rec.Timer.Kind == store.TimerError {
		return pullResult{rec: rec, kind: pullFailed}, true
	}
	return pullResult{rec: rec, kind: pulledByPeer}, true
}

// awaitPeer waits for another replica's pull of key to land in the store,
// for as long as a pull may take. It retries the lock as it goes: when the
// holder's lease ends without a result (the holder died), release is the
// lock, now ours, and the caller pulls.
func (e *Engine) awaitPeer(ctx context.Context, key store.Key, prev store.Record) (r pullResult, release func()) {
	tick := time.NewTicker(peerPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return pullResult{rec: prev, kind: peerTimedOut}, nil
		case <-tick.C:
		}
		if rec, found := e.load(ctx, key); found {
			if r, done := e.settled(rec, found); done {
				return r, nil
			}
		}
		if release, ok, err := e.opts.Locker.TryLock(ctx, key, pullLease); err == nil && ok {
			return pullResult{}, release
		}
	}
}

// fetchAndStore asks the sources and stores the outcome with its timer.
func (e *Engine) fetchAndStore(ctx context.Context, key store.Key, prev store.Record, found bool, f *flight) pullResult {
	e.stats.Pulls.Add(1)
	started := time.Now()
	etag := ""
	if prev.State == store.StatePhoto && len(prev.Body) > 0 {
		etag = prev.ETag
	}
	failed := "" // the source whose answer ended the walk in an error
	e.stats.InFlight.Add(1)
	res, pullErr := photo.Walk(ctx, e.opts.Sources, key.Owner, key.Size, prev.Source, etag, e.decoder, func(a photo.Answer) {
		if a.Err != nil {
			failed = a.Source
		}
	})
	e.stats.InFlight.Add(-1)
	if pullErr == nil && res.Status == photo.StatusPhoto {
		// No size is larger than it says: a master copy over its box is
		// scaled down before it is stored.
		if pullErr = e.fitToSize(ctx, &res, key.Size); pullErr != nil {
			failed = "scale"
		}
	}
	now := e.opts.Now()
	next := prev
	switch {
	case pullErr != nil:
		e.stats.PullErrors.Add(1)
		e.stats.sourceError(cmp.Or(failed, "unknown"))
		if !found {
			next = store.Record{State: store.StateUnknown}
		}
		next.Error = pullErr.Error()
		next.ErrorAt = now
		next.Timer = e.timer(store.TimerError, now, pullErr)
		e.log.Warn("pull failed", "owner", key.Owner, "size", key.Size, "err", pullErr,
			"retry_after", next.Timer.Until.Sub(now), "elapsed", time.Since(started))
	case res.Status == photo.StatusNotModified:
		e.stats.NotModified.Add(1)
		next.PulledAt, next.Error, next.ErrorAt = now, "", time.Time{}
		next.Timer = e.timer(store.TimerSuccess, now, nil)
		e.log.Info("photo not modified", "owner", key.Owner, "size", key.Size, "elapsed", time.Since(started))
	case res.Status == photo.StatusNoPhoto || res.Status == photo.StatusDeleted:
		// No photo, or deleted on purpose: drop what we had, so no older
		// copy is ever served again.
		next = store.Record{State: store.StateNoPhoto, PulledAt: now, Timer: e.timer(store.TimerSuccess, now, nil)}
		next.Name = prev.Name // kept below unless the walk names the owner
		e.log.Info("owner has no photo", "owner", key.Owner, "size", key.Size, "dropped", prev.State == store.StatePhoto, "elapsed", time.Since(started))
	default:
		body := res.Result.Body
		next = store.Record{State: store.StatePhoto, Body: body, ContentType: res.Result.ContentType,
			Sum: store.Checksum(body), ETag: res.Result.ETag, PulledAt: now, Timer: e.timer(store.TimerSuccess, now, nil)}
		e.log.Info("photo pulled", "owner", key.Owner, "size", key.Size, "bytes", len(body),
			"type", res.Result.ContentType, "elapsed", time.Since(started))
	}
	if pullErr == nil {
		next.Source = res.Label()
		if res.Result.Name != "" {
			next.Name = res.Result.Name
		}
	}
	if next.State == store.StatePhoto && next.Sum == "" {
		next.Sum = store.Checksum(next.Body)
	}
	r := pullResult{rec: next, kind: pullFailed}
	if pullErr == nil {
		r = pullResult{rec: next, kind: pulledHere, answered: true, answer: res.Status}
	}
	// Those waiting for the photo (and the sizes derived from it) need not
	// wait for the disk as well.
	f.answerWith(e, r)
	r.storeErr = e.put(key, next)
	return r
}

// Retryer is implemented by a source's error that says when asking again
// may succeed: a call refused because the source backs off a host
// (sync/backoff's *Error) ends there, and so does the error timer it starts.
type Retryer interface {
	RetryAt() time.Time
}

// timer is the one place a pull's timer is made: UserPhotoExpiration after
// a good pull, UserPhotoErrorExpiration after a failed one (err), or less
// when err says the source may be asked sooner (a Retryer): one mailbox's
// 503 Retry-After: 120 then costs the people whose pulls the back-off
// refused two minutes of placeholders, not an hour.
func (e *Engine) timer(kind store.TimerKind, now time.Time, err error) store.Timer {
	d := e.opts.Expiration
	if kind == store.TimerError {
		d = e.opts.ErrorExpiration
	}
	until := now.Add(d)
	var r Retryer
	if kind == store.TimerError && errors.As(err, &r) {
		if at := r.RetryAt(); at.Before(until) {
			until = at
		}
	}
	return store.Timer{Kind: kind, Until: until}
}

// put stores a pull's outcome. The pull's own deadline may be what ended
// it, so the write (above all of an error timer) has a context of its own.
func (e *Engine) put(key store.Key, rec store.Record) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := e.opts.Store.Put(ctx, key, rec)
	if err != nil {
		e.writeFailed(err)
	} else {
		e.writeOK()
	}
	return err
}
