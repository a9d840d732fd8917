package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"photosync/internal/testclock"
	"photosync/store"
	"photosync/store/storetest"
)

func TestHot(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int64
	}{
		{"roomy", 64 << 20},
		{"tight", 4 << 10}, // evicts all the time; the 4 MiB body is never cached
		{"off", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{})
				if err != nil {
					t.Fatalf("OpenBolt: %v", err)
				}
				return store.NewHot(b, tt.maxBytes, store.HotOptions{})
			})
		})
	}
}

var hotKey = store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}

// alive returns a photo record whose success timer runs for an hour after now.
func alive(now time.Time, body string) store.Record {
	return store.Record{
		State: store.StatePhoto,
		Body:  []byte(body),
		Timer: store.Timer{Kind: store.TimerSuccess, Until: now.Add(time.Hour)},
	}
}

func mustGet(t *testing.T, s store.Store, key store.Key) store.Record {
	t.Helper()
	r, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return r
}

func mustPut(t *testing.T, s store.Store, key store.Key, r store.Record) {
	t.Helper()
	if err := s.Put(context.Background(), key, r); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func TestHotHit(t *testing.T) {
	clk := testclock.New()
	back := &counting{Store: openBolt(t, t.TempDir(), store.BoltOptions{Now: clk.Now})}
	h := store.NewHot(back, 1<<20, store.HotOptions{Now: clk.Now})
	want := alive(clk.Now(), "photo")
	mustPut(t, h, hotKey, want)
	for range 3 {
		got := mustGet(t, h, hotKey)
		if !bytes.Equal(got.Body, want.Body) || got.Sum != store.Checksum(want.Body) ||
			got.Timer.Kind != want.Timer.Kind || !got.Timer.Until.Equal(want.Timer.Until) {
			t.Fatalf("Get = %+v, want %+v with Sum set", got, want)
		}
	}
	if n := back.gets.Load(); n != 0 {
		t.Errorf("backing Get called %d times on hits, want 0", n)
	}
	if _, err := h.Get(context.Background(), store.Key{Owner: "bob@contoso.com", Size: "HR96x96"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}
	if n := back.gets.Load(); n != 1 {
		t.Errorf("backing Get called %d times after a miss, want 1", n)
	}
}

func TestHotFill(t *testing.T) {
	clk := testclock.New()
	bolt := openBolt(t, t.TempDir(), store.BoltOptions{Now: clk.Now})
	back := &counting{Store: bolt}
	h := store.NewHot(back, 1<<20, store.HotOptions{Now: clk.Now})
	expired := alive(clk.Now(), "expired")
	expired.Timer.Until = clk.Now().Add(-time.Second)

	tests := []struct {
		name   string
		r      store.Record
		cached bool
	}{
		{"alive", alive(clk.Now(), "photo"), true},
		{"expired", expired, false},
		{"no timer", store.Record{State: store.StateNoPhoto}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := h.Delete(context.Background(), hotKey); err != nil {
				t.Fatal(err)
			}
			mustPut(t, bolt, hotKey, tt.r) // behind Hot's back
			before := back.gets.Load()
			mustGet(t, h, hotKey)
			mustGet(t, h, hotKey)
			want := int64(2)
			if tt.cached {
				want = 1
			}
			if n := back.gets.Load() - before; n != want {
				t.Errorf("two Gets reached the backing store %d times, want %d", n, want)
			}
		})
	}
}

func TestHotTimerRunsOut(t *testing.T) {
	clk := testclock.New()
	back := &counting{Store: openBolt(t, t.TempDir(), store.BoltOptions{Now: clk.Now})}
	h := store.NewHot(back, 1<<20, store.HotOptions{Now: clk.Now})
	mustPut(t, h, hotKey, alive(clk.Now(), "photo"))
	mustGet(t, h, hotKey)
	if n := back.gets.Load(); n != 0 {
		t.Fatalf("backing Get called %d times while the timer runs, want 0", n)
	}

	clk.Advance(time.Hour) // Until == now: run out
	for i := int64(1); i <= 2; i++ {
		r := mustGet(t, h, hotKey)
		if r.Timer.Kind != store.TimerNone || string(r.Body) != "photo" {
			t.Errorf("Get = timer %v, body %q; want none, %q", r.Timer.Kind, r.Body, "photo")
		}
		if n := back.gets.Load(); n != i {
			t.Errorf("after %d Gets past the timer, backing Get called %d times, want %d", i, n, i)
		}
	}
}

func TestHotTooBig(t *testing.T) {
	clk := testclock.New()
	back := &counting{Store: newMemStore()}
	h := store.NewHot(back, 4<<10, store.HotOptions{Now: clk.Now})
	mustPut(t, h, hotKey, alive(clk.Now(), strings.Repeat("x", 8<<10)))
	if h.Len() != 0 || h.Bytes() != 0 {
		t.Errorf("after a Put bigger than the cache: Len %d, Bytes %d; want 0, 0", h.Len(), h.Bytes())
	}
	if r := mustGet(t, h, hotKey); len(r.Body) != 8<<10 {
		t.Errorf("len(Body) = %d, want %d", len(r.Body), 8<<10)
	}
	if n := back.gets.Load(); n != 1 {
		t.Errorf("backing Get called %d times, want 1", n)
	}
}

// TestHotPutFails checks that a failed write-through still keeps the new
// record in memory, timer included, so the process carries on by itself
// while its store is away, and that the error reaches the caller.
func TestHotPutFails(t *testing.T) {
	clk := testclock.New()
	back := &counting{Store: newMemStore()}
	h := store.NewHot(back, 1<<20, store.HotOptions{Now: clk.Now})
	mustPut(t, h, hotKey, alive(clk.Now(), "old"))
	back.putErr = errors.New("redis away")
	if err := h.Put(context.Background(), hotKey, alive(clk.Now(), "new")); !errors.Is(err, back.putErr) {
		t.Fatalf("Put error = %v, want %v", err, back.putErr)
	}
	if r := mustGet(t, h, hotKey); string(r.Body) != "new" || back.gets.Load() != 0 {
		t.Errorf("Get = %q after %d backing Gets, want %q from memory", r.Body, back.gets.Load(), "new")
	}
	// Once its timer runs out, the store is asked again.
	clk.Advance(2 * time.Hour)
	if r := mustGet(t, h, hotKey); string(r.Body) != "old" || back.gets.Load() != 1 {
		t.Errorf("after the timer: Get = %q after %d backing Gets, want %q from the store", r.Body, back.gets.Load(), "old")
	}
}

func TestHotDelete(t *testing.T) {
	clk := testclock.New()
	back := &counting{Store: newMemStore()}
	h := store.NewHot(back, 1<<20, store.HotOptions{Now: clk.Now})
	mustPut(t, h, hotKey, alive(clk.Now(), "photo"))
	if err := h.Delete(context.Background(), hotKey); err != nil {
		t.Fatal(err)
	}
	if h.Len() != 0 || h.Bytes() != 0 || back.deletes.Load() != 1 {
		t.Errorf("after Delete: Len %d, Bytes %d, backing Deletes %d; want 0, 0, 1", h.Len(), h.Bytes(), back.deletes.Load())
	}
	if _, err := h.Get(context.Background(), hotKey); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
}

// TestHotFIFO checks that the oldest entries make room for a new one.
func TestHotFIFO(t *testing.T) {
	clk := testclock.New()
	key := func(i int) store.Key { return store.Key{Owner: fmt.Sprintf("user%d@contoso.com", i), Size: "HR96x96"} }
	body := strings.Repeat("x", 1000)

	probe := store.NewHot(newMemStore(), 1<<20, store.HotOptions{Now: clk.Now})
	mustPut(t, probe, key(0), alive(clk.Now(), body))
	entry := probe.Bytes()
	if entry < int64(len(body)) {
		t.Fatalf("one entry accounts for %d bytes, less than its body", entry)
	}

	back := &counting{Store: newMemStore()}
	h := store.NewHot(back, 3*entry+entry/2, store.HotOptions{Now: clk.Now})
	for i := range 5 {
		mustPut(t, h, key(i), alive(clk.Now(), body))
	}
	if h.Len() != 3 || h.Bytes() != 3*entry {
		t.Errorf("Len %d, Bytes %d; want 3, %d", h.Len(), h.Bytes(), 3*entry)
	}
	// Hits first: a miss fills the cache and evicts in turn.
	for _, c := range []struct {
		i   int
		hit bool
	}{{2, true}, {3, true}, {4, true}, {0, false}, {1, false}} {
		before := back.gets.Load()
		mustGet(t, h, key(c.i))
		if hit := back.gets.Load() == before; hit != c.hit {
			t.Errorf("key %d: hit %v, want %v", c.i, hit, c.hit)
		}
	}
}

// TestHotBytesBound puts records of many sizes, some bigger than the whole
// cache, and checks after every Put that the bound holds and that the record
// just put is served from memory when it fits.
func TestHotBytesBound(t *testing.T) {
	const maxBytes = 64 << 10
	clk := testclock.New()
	back := &counting{Store: newMemStore()}
	h := store.NewHot(back, maxBytes, store.HotOptions{Now: clk.Now})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		key := store.Key{Owner: fmt.Sprintf("user%d@contoso.com", rng.IntN(100)), Size: "HR96x96"}
		r := alive(clk.Now(), strings.Repeat("x", rng.IntN(maxBytes*5/4)))
		r.ETag = strings.Repeat("e", rng.IntN(64))
		mustPut(t, h, key, r)
		if b := h.Bytes(); b > maxBytes || b < 0 {
			t.Fatalf("put %d: Bytes = %d, want in [0, %d]", i, b, maxBytes)
		}
		before := back.gets.Load()
		mustGet(t, h, key)
		hit := back.gets.Load() == before
		if fits := len(r.Body)+1024 < maxBytes; fits && !hit {
			t.Fatalf("put %d: a %d-byte record was not cached", i, len(r.Body))
		}
	}
	if h.Len() == 0 {
		t.Error("nothing cached at the end")
	}
}

// TestHotBoundTenThousandPhotos passes 10,000 distinct photos of realistic
// sizes (2–40 KB) through a 1 MiB hot layer, reading each back once: the
// bound holds throughout, and recent photos are still served from memory.
func TestHotBoundTenThousandPhotos(t *testing.T) {
	const maxBytes = 1 << 20
	clk := testclock.New()
	back := &counting{Store: newMemStore()}
	h := store.NewHot(back, maxBytes, store.HotOptions{Now: clk.Now})
	rng := rand.New(rand.NewPCG(3, 4))
	var peak int64
	for i := range 10000 {
		key := store.Key{Owner: fmt.Sprintf("person%05d@contoso.com", i), Size: "HR240x240"}
		mustPut(t, h, key, alive(clk.Now(), strings.Repeat("p", 2000+rng.IntN(38000))))
		mustGet(t, h, key)
		peak = max(peak, h.Bytes())
		if peak > maxBytes {
			t.Fatalf("after %d photos the hot layer holds %d bytes, limit %d", i+1, peak, maxBytes)
		}
	}
	if back.gets.Load() != 0 {
		t.Errorf("%d reads of a just-put photo missed memory", back.gets.Load())
	}
	if h.Len() < 20 || peak < maxBytes/2 {
		t.Errorf("hot layer barely used: %d entries, peak %d bytes", h.Len(), peak)
	}
	t.Logf("10,000 photos through a %d-byte hot layer: peak %d bytes, %d entries at the end", maxBytes, peak, h.Len())
}

// TestHotBytesBoundConcurrent has goroutines put, get and delete at once
// while another one checks the bound; run with -race.
func TestHotBytesBoundConcurrent(t *testing.T) {
	const maxBytes = 32 << 10
	clk := testclock.New()
	h := store.NewHot(newMemStore(), maxBytes, store.HotOptions{Now: clk.Now})
	ctx := context.Background()

	done := make(chan struct{})
	errs := make(chan error, 9)
	var check sync.WaitGroup
	check.Go(func() {
		for {
			if b := h.Bytes(); b > maxBytes || b < 0 {
				errs <- fmt.Errorf("Bytes = %d, want in [0, %d]", b, maxBytes)
				return
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for range 300 {
				key := store.Key{Owner: fmt.Sprintf("user%d@contoso.com", rng.IntN(20)), Size: "HR96x96"}
				var err error
				switch rng.IntN(4) {
				case 0:
					err = h.Delete(ctx, key)
				case 1:
					_, err = h.Get(ctx, key)
					if errors.Is(err, store.ErrNotFound) {
						err = nil
					}
				default:
					err = h.Put(ctx, key, alive(clk.Now(), strings.Repeat("x", rng.IntN(maxBytes/3))))
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	check.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b := h.Bytes(); b > maxBytes {
		t.Errorf("Bytes = %d at the end, want <= %d", b, maxBytes)
	}
}

// TestHotHitAllocs checks that a hit allocates nothing, even for a key
// longer than the runtime's small string buffer.
func TestHotHitAllocs(t *testing.T) {
	ctx := context.Background()
	key := store.Key{Owner: "firstname.middlename.lastname@subsidiary.contoso.com", Size: "HR648x648"}
	h := store.NewHot(newMemStore(), 1<<20, store.HotOptions{})
	mustPut(t, h, key, alive(time.Now(), "photo"))
	var err error
	allocs := testing.AllocsPerRun(100, func() { _, err = h.Get(ctx, key) })
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("a hit allocates %v times, want 0", allocs)
	}
}

// fakeNotifier is a memStore that is a store.Notifier the test drives.
type fakeNotifier struct {
	*memStore
	ready   chan struct{}
	changed func(store.Key)
	live    func(bool)
}

func (f *fakeNotifier) Notify(ctx context.Context, changed func(store.Key), live func(bool)) {
	f.changed, f.live = changed, live
	close(f.ready)
	<-ctx.Done()
}

// TestHotNotified checks what Hot does with what its Notifier says: a
// change drops the key, a resubscription drops everything, and while the
// subscription is down entries live at most MemoryTTL.
func TestHotNotified(t *testing.T) {
	clk := testclock.New()
	n := &fakeNotifier{memStore: newMemStore(), ready: make(chan struct{})}
	back := &counting{Store: n}
	h := store.NewHot(n, 1<<20, store.HotOptions{Now: clk.Now, MemoryTTL: 30 * time.Second})
	defer h.Close()
	<-n.ready
	n.live(true)
	other := store.Key{Owner: "bob@contoso.com", Size: "HR96x96"}
	mustPut(t, h, hotKey, alive(clk.Now(), "v1"))
	mustPut(t, h, other, alive(clk.Now(), "b1"))

	// Another replica writes v2 behind this one's back, and says so.
	_ = back.Put(context.Background(), hotKey, alive(clk.Now(), "v2"))
	if got := mustGet(t, h, hotKey); string(got.Body) != "v1" {
		t.Fatalf("before the message: %q, want the cached v1", got.Body)
	}
	n.changed(hotKey)
	if got := mustGet(t, h, hotKey); string(got.Body) != "v2" {
		t.Errorf("after the message: %q, want v2", got.Body)
	}

	// Subscribed: entries live as long as their timer.
	clk.Advance(time.Minute)
	_ = back.Put(context.Background(), other, alive(clk.Now(), "b2"))
	if got := mustGet(t, h, other); string(got.Body) != "b1" {
		t.Errorf("subscribed, a minute on: %q, want the cached b1", got.Body)
	}
	// Down: after MemoryTTL, memory asks the store again.
	n.live(false)
	if got := mustGet(t, h, other); string(got.Body) != "b2" {
		t.Errorf("unsubscribed, older than MemoryTTL: %q, want b2 from the store", got.Body)
	}
	_ = back.Put(context.Background(), other, alive(clk.Now(), "b3"))
	clk.Advance(10 * time.Second)
	if got := mustGet(t, h, other); string(got.Body) != "b2" {
		t.Errorf("unsubscribed, younger than MemoryTTL: %q, want the cached b2", got.Body)
	}
	// Resubscribed: everything is dropped.
	n.live(true)
	if got := mustGet(t, h, other); string(got.Body) != "b3" {
		t.Errorf("after resubscribing: %q, want b3 from the store", got.Body)
	}
	if h.Len() != 1 {
		t.Errorf("Len = %d, want 1 (only what was read since the flush)", h.Len())
	}
}

// blockingPut is a memStore whose Put waits until release is closed.
type blockingPut struct {
	*memStore
	entered chan struct{}
	release chan struct{}
}

func (b *blockingPut) Put(ctx context.Context, key store.Key, r store.Record) error {
	b.entered <- struct{}{}
	<-b.release
	return b.memStore.Put(ctx, key, r)
}

// TestHotLocksOneKey: while one person's write waits for the backing
// store, reads and writes of other people go on, and a read of the same
// person waits for the write (so it never caches an older record).
func TestHotLocksOneKey(t *testing.T) {
	clk := testclock.New()
	back := &blockingPut{memStore: newMemStore(), entered: make(chan struct{}, 1), release: make(chan struct{})}
	h := store.NewHot(back, 1<<20, store.HotOptions{Now: clk.Now})
	defer h.Close()
	written := make(chan error, 1)
	go func() { written <- h.Put(context.Background(), hotKey, alive(clk.Now(), "v1")) }()
	<-back.entered

	// 200 other people: with 64 striped locks one of them would share
	// alice's stripe, and wait for her write.
	for i := range 200 {
		other := store.Key{Owner: fmt.Sprintf("p%d@contoso.com", i), Size: "HR96x96"}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := h.Get(ctx, other); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get of %s while alice's write is held: %v", other.Owner, err)
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Get(ctx, hotKey); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get of alice during her write: %v, want it to wait", err)
	}
	close(back.release)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if r, err := h.Get(context.Background(), hotKey); err != nil || string(r.Body) != "v1" {
		t.Errorf("after the write: %q, %v", r.Body, err)
	}
}
