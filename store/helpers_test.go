package store_test

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"photosync/store"
)

// openBolt opens a Bolt in dir and closes it when the test ends.
func openBolt(t *testing.T, dir string, opts store.BoltOptions) *store.Bolt {
	t.Helper()
	b, err := store.OpenBolt(dir, opts)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// memStore is an in-memory fake Store that keeps records as given, apart
// from Sum; it ignores timers' aliveness, which Hot must judge itself.
type memStore struct {
	mu   sync.Mutex
	recs map[store.Key]store.Record
}

func newMemStore() *memStore { return &memStore{recs: make(map[store.Key]store.Record)} }

func (m *memStore) Get(_ context.Context, key store.Key) (store.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[key]
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	r.Body = bytes.Clone(r.Body)
	return r, nil
}

func (m *memStore) Put(_ context.Context, key store.Key, r store.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r.Body = bytes.Clone(r.Body)
	r.Sum = store.Checksum(r.Body)
	m.recs[key] = r
	return nil
}

func (m *memStore) Delete(_ context.Context, key store.Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.recs, key)
	return nil
}

func (m *memStore) Close() error { return nil }

// counting wraps a Store, counts the calls that reach it and can fail Put.
type counting struct {
	store.Store
	gets, puts, deletes atomic.Int64
	putErr              error
}

func (c *counting) Get(ctx context.Context, key store.Key) (store.Record, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *counting) Put(ctx context.Context, key store.Key, r store.Record) error {
	c.puts.Add(1)
	if c.putErr != nil {
		return c.putErr
	}
	return c.Store.Put(ctx, key, r)
}

func (c *counting) Delete(ctx context.Context, key store.Key) error {
	c.deletes.Add(1)
	return c.Store.Delete(ctx, key)
}
