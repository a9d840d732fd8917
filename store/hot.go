package store

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patrickmn/go-cache"
)

const (
	// hotOverhead approximates what one cached entry costs besides its
	// strings and bytes: the entry, its list element and two map slots.
	hotOverhead = 320
	// hotSweep is how often go-cache drops entries whose timer ran out.
	hotSweep = time.Minute
	// hotKeyBuf is the stack buffer for hit-path lookups; longer keys
	// still work, with one allocation.
	hotKeyBuf = 128
)

// HotOptions configures NewHot.
type HotOptions struct {
	// Now is the clock that decides whether a cached timer is still alive.
	// Default: time.Now.
	Now func() time.Time
	// MemoryTTL bounds how long an entry is served from memory while Hot
	// is not told of other processes' changes: always, when the backing
	// store is no Notifier, and while a Notifier's subscription is down.
	// Zero means no bound beyond the record's timer.
	MemoryTTL time.Duration
}

// Hot is a bounded in-memory layer in front of another Store. It keeps a
// record only while its timer is alive, which is exactly when the record may
// be served without asking the master, so it never serves what the backing
// store would not.
//
// When the backing store is a Notifier (Redis), Hot listens to it: a Put or
// Delete by another replica or command drops the key here as soon as the
// message arrives, a resubscription drops everything, and while the
// subscription is down entries live at most MemoryTTL. A fill that raced
// with a change (the read began before the message arrived) is not cached.
//
// Writes go through to the backing store first and are cached only after
// they succeed. The cache holds at most maxBytes, counting each record's
// bytes and strings plus a fixed overhead; when a new record does not fit,
// the oldest cached ones are dropped (FIFO).
//
// A cache hit takes a read lock, does not read the clock beyond Now once,
// and does not allocate or copy: the record comes back as stored, so
// callers must not modify its Body.
type Hot struct {
	backing Store
	max     int64
	now     func() time.Time
	c       *cache.Cache // key string → *hotEntry; drops what expires
	// locks serialise, per key, a write or a fill with its cache update,
	// so an older record cannot overwrite a newer one in the cache. A lock
	// is one key's only: a Get of one person never waits for the write of
	// another (striped locks made a warm's reads queue behind bbolt
	// commits of other keys).
	locksMu sync.Mutex
	locks   map[Key]*keyLock

	ttl    time.Duration
	live   atomic.Bool   // the Notifier's subscription stands
	epoch  atomic.Uint64 // counts changes heard; a fill that saw one is not cached
	stop   context.CancelFunc
	notify chan struct{} // closed when the listener ended

	mu      sync.RWMutex // guards the accounting below, never held during I/O
	bytes   int64
	entries map[string]*hotEntry // what c holds or is about to drop; answers hits
	fifo    list.List            // of *hotEntry, oldest first
}

// hotEntry is one cached record; it never changes once cached.
type hotEntry struct {
	key    string
	rec    Record
	size   int64
	elem   *list.Element
	cached time.Time
}

var (
	_ Store  = (*Hot)(nil)
	_ Pinger = (*Hot)(nil)
)

// NewHot returns a Hot in front of backing that holds at most maxBytes. A
// maxBytes of zero or less caches nothing. When backing is a Notifier, Hot
// listens to it until Close. NewHot panics if backing is nil.
func NewHot(backing Store, maxBytes int64, opts HotOptions) *Hot {
	if backing == nil {
		panic("store: NewHot with nil backing store")
	}
	h := &Hot{
		backing: backing,
		max:     maxBytes,
		now:     opts.Now,
		c:       cache.New(cache.NoExpiration, hotSweep),
		locks:   make(map[Key]*keyLock),
		entries: make(map[string]*hotEntry),
		ttl:     opts.MemoryTTL,
	}
	if h.now == nil {
		h.now = time.Now
	}
	h.c.OnEvicted(h.evicted)
	if n, ok := backing.(Notifier); ok {
		ctx, cancel := context.WithCancel(context.Background())
		h.stop, h.notify = cancel, make(chan struct{})
		go func() {
			defer close(h.notify)
			n.Notify(ctx, h.changed, h.setLive)
		}()
	}
	return h
}

// changed drops key, which another process wrote or deleted.
func (h *Hot) changed(key Key) {
	h.epoch.Add(1)
	h.remove(key)
}

// setLive records whether changes are heard; a (re)subscription drops
// everything, since changes may have gone unheard before it.
func (h *Hot) setLive(up bool) {
	h.epoch.Add(1)
	if up {
		h.flush()
	}
	h.live.Store(up)
}

// flush drops every cached entry.
func (h *Hot) flush() {
	h.mu.Lock()
	keys := make([]string, 0, len(h.entries))
	for k := range h.entries {
		keys = append(keys, k)
	}
	h.mu.Unlock()
	for _, k := range keys {
		h.c.Delete(k)
	}
}

// Ping implements Pinger: the backing store answers, when it can say.
func (h *Hot) Ping(ctx context.Context) error {
	if p, ok := h.backing.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Get implements Store. A record with an alive timer comes from memory and
// is shared: callers must not modify its Body. Otherwise the backing store
// answers, and its record is cached if its timer is alive.
func (h *Hot) Get(ctx context.Context, key Key) (Record, error) {
	if r, ok := h.cached(key); ok {
		return r, nil
	}
	unlock, err := h.acquire(ctx, key)
	if err != nil {
		return Record{}, fmt.Errorf("store: get %s: %w", key, err)
	}
	defer unlock()
	// Another Get may have filled the cache while this one waited.
	if r, ok := h.cached(key); ok {
		return r, nil
	}
	epoch := h.epoch.Load()
	r, err := h.backing.Get(ctx, key)
	if err != nil {
		return Record{}, err
	}
	if h.epoch.Load() == epoch {
		h.add(key, r)
	}
	return r, nil
}

// Put implements Store: it writes r to the backing store and caches a copy
// if its timer is alive, also when the backing store failed (see below).
func (h *Hot) Put(ctx context.Context, key Key, r Record) error {
	if err := key.check(); err != nil {
		return err
	}
	r, err := prepare(r, h.now())
	if err != nil {
		return err
	}
	unlock, err := h.acquire(ctx, key)
	if err != nil {
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	defer unlock()
	epoch := h.epoch.Load()
	if p, ok := h.backing.(preparedPutter); ok {
		err = p.putPrepared(ctx, key, r)
	} else {
		err = h.backing.Put(ctx, key, r)
	}
	if h.epoch.Load() != epoch {
		// Another replica changed something meanwhile, maybe this key: let
		// the next Get ask the store which write won.
		h.remove(key)
		return err
	}
	// Even when the backing store failed (Redis away, disk full), memory
	// keeps r: this process then serves and times the photo by itself until
	// the store is back, instead of asking the master on every request. The
	// error still tells the caller the record is not durable.
	r.Body = clone(r.Body) // the caller keeps its slice
	h.add(key, r)
	return err
}

// Delete implements Store: it removes key from the backing store and from
// memory.
func (h *Hot) Delete(ctx context.Context, key Key) error {
	unlock, err := h.acquire(ctx, key)
	if err != nil {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	defer unlock()
	err = h.backing.Delete(ctx, key)
	h.remove(key)
	return err
}

// Close implements Store: it stops listening, empties the cache and closes
// the backing store.
func (h *Hot) Close() error {
	if h.stop != nil {
		h.stop()
		<-h.notify
	}
	h.c.Flush()
	h.mu.Lock()
	h.entries = make(map[string]*hotEntry)
	h.fifo.Init()
	h.bytes = 0
	h.mu.Unlock()
	return h.backing.Close()
}

// Bytes returns how many bytes the cache accounts for now; never more than
// maxBytes.
func (h *Hot) Bytes() int64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.bytes
}

// Len returns how many records the cache holds now.
func (h *Hot) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.entries)
}

// cached returns the cached record for key if its timer is alive at now.
//
// It reads entries rather than go-cache, whose Get reads the clock on every
// hit for an expiry the timer check below makes anyway. The two hold the
// same entries whenever no call changing them is under way: add unlinks
// what it replaces or evicts before go-cache drops it, and whatever go-cache
// drops (its sweep, a Delete) goes through evicted before that returns.
// Looking a map up with string(k) of a byte slice does not allocate.
func (h *Hot) cached(key Key) (Record, bool) {
	var buf [hotKeyBuf]byte
	k := appendKey(buf[:0], key)
	h.mu.RLock()
	e := h.entries[string(k)]
	h.mu.RUnlock()
	if e == nil {
		return Record{}, false
	}
	now := h.now()
	if !e.rec.Timer.Alive(now) {
		return Record{}, false
	}
	if h.ttl > 0 && !h.live.Load() && now.Sub(e.cached) >= h.ttl {
		return Record{}, false // unheard changes may have made it stale
	}
	return e.rec, true
}

// add caches r under key if its timer is alive and it fits, dropping the
// oldest entries to make room; otherwise it drops what is cached for key.
// The caller holds key's lock (acquire).
func (h *Hot) add(key Key, r Record) {
	k := string(appendKey(nil, key))
	left := r.Timer.Until.Sub(h.now())
	size := hotOverhead + int64(len(k)+len(r.Body)+len(r.ContentType)+
		len(r.Sum)+len(r.ETag)+len(r.Error))
	if r.Timer.Kind == TimerNone || left <= 0 || size > h.max {
		h.c.Delete(k)
		return
	}
	e := &hotEntry{key: k, rec: r, size: size, cached: h.now()}
	var victims []string
	h.mu.Lock()
	if old := h.entries[k]; old != nil {
		h.unlink(old) // c.Set below replaces it without calling evicted
	}
	for h.bytes+size > h.max && h.fifo.Len() > 0 {
		oldest := h.fifo.Front().Value.(*hotEntry)
		h.unlink(oldest)
		victims = append(victims, oldest.key)
	}
	e.elem = h.fifo.PushBack(e)
	h.entries[k] = e
	h.bytes += size
	h.c.Set(k, e, left)
	h.mu.Unlock()
	// c.Delete calls evicted, which takes h.mu. The victims are already
	// unaccounted for, so evicted ignores them; if one was re-added in the
	// meantime, evicted unaccounts the new entry that c.Delete dropped.
	for _, v := range victims {
		h.c.Delete(v)
	}
}

// remove drops what is cached for key; evicted does the accounting.
func (h *Hot) remove(key Key) {
	h.c.Delete(string(appendKey(nil, key)))
}

// evicted is go-cache's OnEvicted hook, called after go-cache released its
// lock when Delete or the expiry sweep dropped v. An entry that was replaced
// or dropped by add is no longer in entries and is ignored.
func (h *Hot) evicted(k string, v any) {
	e := v.(*hotEntry)
	h.mu.Lock()
	if h.entries[k] == e {
		h.unlink(e)
	}
	h.mu.Unlock()
}

// unlink removes e from the accounting. The caller holds h.mu.
func (h *Hot) unlink(e *hotEntry) {
	delete(h.entries, e.key)
	h.fifo.Remove(e.elem)
	h.bytes -= e.size
}

// keyLock is one key's lock, kept while anyone holds or waits for it.
type keyLock struct {
	ch    chan struct{} // holds a token while the lock is taken
	users int           // holders and waiters; guarded by Hot.locksMu
}

// acquire takes key's lock, giving up when ctx ends; the function it
// returns gives it back.
func (h *Hot) acquire(ctx context.Context, key Key) (func(), error) {
	h.locksMu.Lock()
	l := h.locks[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		h.locks[key] = l
	}
	l.users++
	h.locksMu.Unlock()
	leave := func() {
		h.locksMu.Lock()
		if l.users--; l.users == 0 {
			delete(h.locks, key)
		}
		h.locksMu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}
