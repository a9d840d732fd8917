package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"photosync/store"
)

// TestBoltConcurrentPutsDurable: Puts that share one batched transaction
// each return only once it is committed: after a reopen every one of them
// is there, with its own bytes.
func TestBoltConcurrentPutsDurable(t *testing.T) {
	dir := t.TempDir()
	b, err := store.OpenBolt(dir, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	until := time.Now().Add(time.Hour)
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = b.Put(ctx, key(i), store.Record{
				State: store.StatePhoto, Body: []byte(fmt.Sprintf("photo %d", i)), ContentType: "image/jpeg",
				Timer: store.Timer{Kind: store.TimerSuccess, Until: until},
			})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Put %d: %v", i, err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = openBolt(t, dir, store.BoltOptions{})
	for i := range n {
		r, err := b.Get(ctx, key(i))
		if err != nil {
			t.Fatalf("Get %d after reopen: %v", i, err)
		}
		if want := fmt.Sprintf("photo %d", i); string(r.Body) != want {
			t.Errorf("Get %d = %q, want %q", i, r.Body, want)
		}
	}
}

func key(i int) store.Key {
	return store.Key{Owner: fmt.Sprintf("p%03d@contoso.com", i), Size: "HR96x96"}
}
