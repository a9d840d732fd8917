package store_test

import (
	"context"
	"testing"
	"time"

	"photosync/store"
)

func TestRedisLock(t *testing.T) {
	prefix := testPrefix(t)
	a := openRedis(t, prefix, store.RedisOptions{})
	b := openRedis(t, prefix, store.RedisOptions{})
	ctx := context.Background()
	key := store.Key{Owner: "adele@contoso.com", Size: "HR96x96"}

	releaseA, ok, err := a.TryLock(ctx, key, time.Minute)
	if err != nil || !ok {
		t.Fatalf("first TryLock = %v, %v; want acquired", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, key, time.Minute); err != nil || ok {
		t.Fatalf("second replica's TryLock = %v, %v; want refused", ok, err)
	}
	other := store.Key{Owner: "adele@contoso.com", Size: "HR48x48"}
	if release, ok, err := b.TryLock(ctx, other, time.Minute); err != nil || !ok {
		t.Fatalf("TryLock of another size = %v, %v; want acquired", ok, err)
	} else {
		release()
	}
	releaseA()
	releaseB, ok, err := b.TryLock(ctx, key, time.Minute)
	if err != nil || !ok {
		t.Fatalf("TryLock after release = %v, %v; want acquired", ok, err)
	}
	releaseB()
}

// TestRedisLease checks that a held lease outlives its ttl while its
// holder lives, ends within one ttl after the holder stops renewing, and
// that the stale holder's release does not free its successor's lease.
func TestRedisLease(t *testing.T) {
	prefix := testPrefix(t)
	a := openRedis(t, prefix, store.RedisOptions{})
	b := openRedis(t, prefix, store.RedisOptions{})
	ctx := context.Background()
	key := store.Key{Owner: "adele@contoso.com", Size: "HR96x96"}
	const lease = 400 * time.Millisecond

	releaseA, ok, err := a.TryLock(ctx, key, lease)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	// Renewed: still held after three leases.
	for end := time.Now().Add(3 * lease); time.Now().Before(end); time.Sleep(lease / 4) {
		if _, ok, err := b.TryLock(ctx, key, lease); err != nil || ok {
			t.Fatalf("TryLock while the holder renews = %v, %v; want refused", ok, err)
		}
	}
	// The holder dies: its client closes, renewals stop.
	a.Close()
	stopped := time.Now()
	var releaseB func()
	for releaseB == nil && time.Since(stopped) < 10*time.Second {
		if r, ok, err := b.TryLock(ctx, key, time.Minute); err != nil {
			t.Fatal(err)
		} else if ok {
			releaseB = r
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if releaseB == nil {
		t.Fatal("the dead holder's lease never ended")
	}
	t.Logf("lease of %v taken over %v after its holder stopped", lease, time.Since(stopped).Round(time.Millisecond))
	// The first holder's late release must not free the second's lease.
	c := openRedis(t, prefix, store.RedisOptions{})
	releaseA()
	if _, ok, err := c.TryLock(ctx, key, time.Minute); err != nil || ok {
		t.Fatalf("TryLock after the stale holder's release = %v, %v; want refused", ok, err)
	}
	releaseB()
	if release, ok, err := c.TryLock(ctx, key, time.Minute); err != nil || !ok {
		t.Fatalf("TryLock after release = %v, %v; want acquired", ok, err)
	} else {
		release()
	}
}

func TestNewRedisStartsWithoutRedis(t *testing.T) {
	r, err := store.NewRedis("redis://127.0.0.1:1/0", store.RedisOptions{})
	if err != nil {
		t.Fatalf("NewRedis without a server: %v", err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Ping(ctx); err == nil {
		t.Fatal("Ping of a closed port succeeded")
	}
	if _, err := store.NewRedis("http://x", store.RedisOptions{}); err == nil {
		t.Fatal("NewRedis accepted an http URL")
	}
}
