package sync_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"photosync/store"
	psync "photosync/sync"
)

// slowPuts is a store whose writes wait until release is closed.
type slowPuts struct {
	store.Store
	started chan struct{} // one value per write that began
	release chan struct{}
}

func (s *slowPuts) Put(ctx context.Context, key store.Key, r store.Record) error {
	s.started <- struct{}{}
	<-s.release
	return s.Store.Put(ctx, key, r)
}

// TestAnswerBeforeTheStoreTakesIt: a cold viewer is answered once the
// master copy is pulled and scaled, without waiting for the store's
// writes; until they land, another viewer (one who may not pull), Inspect
// and a Refresh see the answer as if stored, and no second master call is
// made; Refresh returns only once the store has it.
func TestAnswerBeforeTheStoreTakesIt(t *testing.T) {
	var slow *slowPuts
	e := newEnv(t, envOptions{store: func(t testing.TB, now func() time.Time) store.Store {
		b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		slow = &slowPuts{Store: b, started: make(chan struct{}, 16), release: make(chan struct{})}
		return slow
	}})
	released := false
	release := func() {
		if !released {
			released = true
			close(slow.release)
		}
	}
	t.Cleanup(release)

	resp, body := e.ownPhoto(t, adele, "HR96x96") // trigger self: adele may pull her own
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("cold own photo: %d, %d bytes", resp.StatusCode, len(body))
	}
	<-slow.started // a write is held: the answer came before it
	// alex may not pull adele's photo: he gets it only if the answer is seen.
	other := e.get(t, "/photos/"+adele+"?size=HR96x96", proxy, alex)
	other.Body.Close()
	if other.StatusCode != http.StatusOK {
		t.Fatalf("another viewer while the store writes: %d, want the answer", other.StatusCode)
	}
	rep, err := e.engine.Inspect(ctx(t), adele)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Sizes {
		if s.Size == "HR96x96" && !s.Stored {
			t.Error("Inspect does not see the answer being stored")
		}
	}
	done := make(chan psync.RefreshOutcome, 1)
	go func() {
		out, _ := e.engine.Refresh(context.Background(), adele, "HR96x96", false)
		done <- out
	}()
	if out := <-done; out != psync.RefreshSkipped {
		t.Errorf("Refresh while the store writes: %v, want skipped (the answer's timer runs)", out)
	}
	release()
	e.wait(t)
	if n := e.photoCalls(); n != 1 {
		t.Errorf("master calls = %d, want 1", n)
	}
	if _, err := slow.Store.Get(ctx(t), store.Key{Owner: adele, Size: "HR96x96"}); err != nil {
		t.Errorf("stored after Wait: %v", err)
	}
}
