package sync_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/exchange/exchangetest"
	"photosync/sync/photo"
)

func TestRefreshOutcomes(t *testing.T) {
	e := newEnv(t, envOptions{})
	steps := []struct {
		name      string
		owner     string
		force     bool
		advance   time.Duration
		fail      bool
		want      psync.RefreshOutcome
		wantCalls int // master calls so far
	}{
		{name: "cold photo pulls, whatever the trigger", owner: adele, want: psync.RefreshPulled, wantCalls: 1},
		{name: "fresh photo is skipped", owner: adele, want: psync.RefreshSkipped, wantCalls: 1},
		{name: "force asks again and gets a 304", owner: adele, force: true, want: psync.RefreshNotModified, wantCalls: 2},
		{name: "timer ran out: 304", owner: adele, advance: 7 * time.Hour, want: psync.RefreshNotModified, wantCalls: 3},
		{name: "no photo in Exchange", owner: nobody, want: psync.RefreshNoPhoto, wantCalls: 4},
		{name: "master fails", owner: alex, fail: true, want: psync.RefreshFailed, wantCalls: 5},
		{name: "error timer is the back-off", owner: alex, want: psync.RefreshSkipped, wantCalls: 5},
		{name: "the master's back-off holds even when forced", owner: alex, force: true, want: psync.RefreshFailed, wantCalls: 5},
		{name: "forced through the error timer after the back-off", owner: alex, force: true, advance: 2 * time.Second, want: psync.RefreshPulled, wantCalls: 6},
	}
	for _, s := range steps {
		e.clock.Advance(s.advance)
		if s.fail {
			e.sim.FailPhotos(http.StatusInternalServerError, 1)
		}
		got, err := e.engine.Refresh(ctx(t), s.owner, "HR96x96", s.force)
		if (err != nil) != (s.want == psync.RefreshFailed) {
			t.Errorf("%s: err = %v", s.name, err)
		}
		if got != s.want || e.photoCalls() != s.wantCalls {
			t.Errorf("%s: %v after %d master calls, want %v after %d", s.name, got, e.photoCalls(), s.want, s.wantCalls)
		}
	}
}

func TestInspectAndForget(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.engine.Refresh(ctx(t), adele, "HR240x240", false); err != nil {
		t.Fatal(err)
	}
	r, err := e.engine.Inspect(ctx(t), adele)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sizes) != len(photo.Sizes) {
		t.Fatalf("%d sizes, want %d", len(r.Sizes), len(photo.Sizes))
	}
	jpeg, etag, _ := e.sim.PhotoBytes(adele, "HR240x240")
	for _, s := range r.Sizes {
		if s.Size != "HR240x240" {
			if s.Stored {
				t.Errorf("%s reported stored", s.Size)
			}
			continue
		}
		want := psync.SizeReport{Size: s.Size, Stored: true, State: "photo", ETag: s.ETag, MasterETag: strings.Trim(etag, `"`),
			Bytes: len(jpeg), ContentType: "image/jpeg", Checksum: s.Checksum, PulledAt: e.clock.Now(),
			Timer: "expiration", TimerUntil: e.clock.Now().Add(6 * time.Hour), Source: "exchange"}
		if s != want || s.ETag == "" || len(s.Checksum) != 64 {
			t.Errorf("report\n%+v, want\n%+v", s, want)
		}
	}

	if err := e.engine.Forget(ctx(t), adele); err != nil {
		t.Fatal(err)
	}
	r, _ = e.engine.Inspect(ctx(t), adele)
	for _, s := range r.Sizes {
		if s.Stored {
			t.Errorf("%s still stored after Forget", s.Size)
		}
	}
	resp, _ := e.ownPhoto(t, adele, "HR240x240")
	if got := outcome(resp); got != "pulled" || e.photoCalls() != 2 {
		t.Errorf("after Forget: outcome %q after %d master calls, want pulled after 2", got, e.photoCalls())
	}
}

func TestWarmCounts(t *testing.T) {
	e := newEnv(t, envOptions{})
	var last psync.WarmCounts
	opts := psync.WarmOptions{Sizes: []string{"HR48x48", "HR96x96"}, Concurrency: 3,
		Progress: func(c psync.WarmCounts) { last = c }}
	got, err := e.engine.Warm(ctx(t), []string{adele, alex, nobody}, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := psync.WarmCounts{Total: 6, Pulled: 4, NoPhoto: 2}
	if got != want || last != want {
		t.Errorf("first warm %+v (last progress %+v), want %+v", got, last, want)
	}
	got, _ = e.engine.Warm(ctx(t), []string{adele, alex, nobody}, opts)
	if want := (psync.WarmCounts{Total: 6, Skipped: 6}); got != want || e.photoCalls() != 6 {
		t.Errorf("second warm %+v after %d calls, want %+v after 6", got, e.photoCalls(), want)
	}
}

// gatedStore holds every Put until gate is closed.
type gatedStore struct {
	store.Store
	gate chan struct{}
}

func (g gatedStore) Put(ctx context.Context, key store.Key, rec store.Record) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Store.Put(ctx, key, rec)
}

// TestWarmPullsWhileTheStoreWrites: a warm's pull slot goes back to the
// master as soon as its photo is pulled, not once the store has it (a
// bbolt commit and its sync to disk would hold it), and no more than
// StoreWaits photos per slot wait for the store at once.
func TestWarmPullsWhileTheStoreWrites(t *testing.T) {
	gate := make(chan struct{})
	e := newEnv(t, envOptions{store: func(t testing.TB, now func() time.Time) store.Store {
		b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return gatedStore{Store: b, gate: gate}
	}})
	const slots = 2
	held := slots * (1 + psync.StoreWaits) // pulling, or pulled and waiting for the store
	var owners []string
	for i := range held + 6 {
		owner := fmt.Sprintf("warm%02d@contoso.com", i)
		e.sim.AddUser(exchangetest.User{Email: owner, Name: fmt.Sprint("Warm ", i), Photo: true})
		owners = append(owners, owner)
	}
	type result struct {
		counts psync.WarmCounts
		err    error
	}
	done := make(chan result, 1)
	go func() {
		c, err := e.engine.Warm(ctx(t), owners, psync.WarmOptions{Sizes: []string{photo.MasterSize}, Concurrency: slots})
		done <- result{c, err}
	}()

	deadline := time.Now().Add(3 * time.Second) // within the engine's store timeout
	for e.photoCalls() < held && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // room for a pull past the bound to show
	if n := e.photoCalls(); n != held {
		t.Fatalf("with every write held, %d master calls; want %d (%d slots, each with %d waiting for the store)", n, held, slots, psync.StoreWaits)
	}
	close(gate)
	r := <-done
	if want := (psync.WarmCounts{Total: len(owners), Pulled: len(owners)}); r.err != nil || r.counts != want {
		t.Fatalf("warm: %+v, %v; want %+v", r.counts, r.err, want)
	}
}
