package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"photosync/internal/testclock"
	"photosync/store"
	"photosync/store/redistest"
	"photosync/store/storetest"
)

// rawRedis returns a plain go-redis client on the test server, for looking
// under a store.
func rawRedis(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(storetest.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// testPrefix returns a key prefix no other test uses and deletes its keys
// when the test ends (never FLUSHDB: the server may be shared).
func testPrefix(t *testing.T) string {
	t.Helper()
	p := "test:" + t.Name() + ":" + rand.Text() + ":"
	c := rawRedis(t)
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, p+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleaning up %s*: %v", p, err)
		}
	})
	return p
}

func openRedis(t *testing.T, prefix string, opts store.RedisOptions) *store.Redis {
	t.Helper()
	opts.Prefix = prefix
	r, err := store.OpenRedis(context.Background(), storetest.RedisURL(t), opts)
	if err != nil {
		t.Fatalf("OpenRedis: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedis(t *testing.T) {
	url := storetest.RedisURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		r, err := store.OpenRedis(context.Background(), url, store.RedisOptions{Prefix: testPrefix(t)})
		if err != nil {
			t.Fatalf("OpenRedis: %v", err)
		}
		return r
	})
}

func TestRedisKeys(t *testing.T) {
	r := openRedis(t, "", store.RedisOptions{}) // the default prefix; nothing is written
	rec := r.RecordKey(store.Key{Owner: "alice@contoso.com", Size: "HR96x96"})
	if want := "photosync:rec:{alice@contoso.com/HR96x96}"; rec != want {
		t.Errorf("record key = %q, want %q", rec, want)
	}
}

func TestOpenRedisErrors(t *testing.T) {
	const secret = "s3cr3t-pw"
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"unreachable", "redis://user:" + secret + "@127.0.0.1:1/0", "store: connecting to redis at 127.0.0.1:1: "},
		{"bad port", "redis://user:" + secret + "@127.0.0.1:port/0", "store: parsing redis url: "},
		{"bad scheme", "http://user:" + secret + "@127.0.0.1:6379/0", "store: parsing redis url: "},
		{"bad db", "redis://user:" + secret + "@127.0.0.1:6379/x", "store: parsing redis url: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := store.OpenRedis(ctx, tt.url, store.RedisOptions{})
			if err == nil {
				r.Close()
				t.Fatal("OpenRedis succeeded")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q, want prefix %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestRedisUnreachableWritesFail: with Redis away, every write and delete
// is an error (a caller that counts it stored would lose it), and a read is
// an error too, never "not found".
func TestRedisUnreachableWritesFail(t *testing.T) {
	r, err := store.NewRedis("redis://127.0.0.1:1/0", store.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	rec := store.Record{State: store.StatePhoto, Body: []byte("\xff\xd8\xff photo"), ContentType: "image/jpeg",
		Timer: store.Timer{Kind: store.TimerSuccess, Until: time.Now().Add(time.Hour)}}
	if err := r.Put(ctx, key, rec); err == nil {
		t.Error("Put to an unreachable Redis succeeded")
	}
	if err := r.Delete(ctx, key); err == nil {
		t.Error("Delete on an unreachable Redis succeeded")
	}
	if _, err := r.Get(ctx, key); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get from an unreachable Redis = %v, want an error other than ErrNotFound", err)
	}

	// The same once the connections were made and Redis died under them:
	// the pooled connections fail on their first use, and still no write
	// reads as done.
	srv := redistest.Start(t)
	live, err := store.NewRedis(srv.URL(), store.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for i := range 8 { // a few pooled connections
		if err := live.Put(ctx, store.Key{Owner: fmt.Sprintf("p%d@contoso.com", i), Size: "HR96x96"}, rec); err != nil {
			t.Fatal(err)
		}
	}
	srv.Kill()
	for i := range 8 {
		if err := live.Put(ctx, store.Key{Owner: fmt.Sprintf("p%d@contoso.com", i), Size: "HR96x96"}, rec); err == nil {
			t.Fatalf("Put %d after Redis died succeeded", i)
		}
	}
}

// TestRedisOneKey checks that a record and its timer are one hash with no
// TTL, so that eviction takes both or neither, and that the injected clock
// judges the timer.
func TestRedisOneKey(t *testing.T) {
	ctx := context.Background()
	clk := testclock.New()
	r := openRedis(t, testPrefix(t), store.RedisOptions{Now: clk.Now})
	raw := rawRedis(t)
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	until := clk.Now().Add(10 * time.Second)
	mustPut(t, r, key, store.Record{State: store.StatePhoto, Body: []byte("x"),
		Timer: store.Timer{Kind: store.TimerSuccess, Until: until}})
	all, err := raw.Keys(ctx, strings.TrimSuffix(r.RecordKey(key), "rec:{alice@contoso.com/HR96x96}")+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range all {
		if !strings.Contains(k, ":ping:") { // Ping's probe, which has a TTL
			keys = append(keys, k)
		}
	}
	if len(keys) != 1 || keys[0] != r.RecordKey(key) {
		t.Fatalf("keys after Put = %q, want only %q", keys, r.RecordKey(key))
	}
	if ttl := raw.PTTL(ctx, keys[0]).Val(); ttl != -1 {
		t.Errorf("record PTTL = %v, want none (-1)", ttl)
	}
	if f := raw.HKeys(ctx, keys[0]).Val(); len(f) != 2 {
		t.Errorf("record fields = %q, want meta and body", f)
	}
	got := mustGet(t, r, key)
	if got.Timer.Kind != store.TimerSuccess || !got.Timer.Until.Equal(until) {
		t.Errorf("Timer = %+v, want success until %v", got.Timer, until)
	}
	clk.Advance(11 * time.Second)
	if got := mustGet(t, r, key); got.Timer.Kind != store.TimerNone || string(got.Body) != "x" {
		t.Errorf("after the timer: Timer %v, body %q; want none and the record kept", got.Timer.Kind, got.Body)
	}
}

func TestRedisCorrupt(t *testing.T) {
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	tests := []struct {
		field, value string
	}{
		{"body", "jpeg bytez"},
		{"body", ""},
		{"meta", "{not json"},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.value, func(t *testing.T) {
			ctx := context.Background()
			r := openRedis(t, testPrefix(t), store.RedisOptions{})
			if err := r.Put(ctx, key, store.Record{State: store.StatePhoto, Body: []byte("jpeg bytes")}); err != nil {
				t.Fatal(err)
			}
			recKey := r.RecordKey(key)
			if err := rawRedis(t).HSet(ctx, recKey, tt.field, tt.value).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Get(ctx, key); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("Get error = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestRedisShared checks that replicas with the same prefix share records
// and timers, and that another prefix is another store.
func TestRedisShared(t *testing.T) {
	ctx := context.Background()
	prefix := testPrefix(t)
	a := openRedis(t, prefix, store.RedisOptions{})
	b := openRedis(t, prefix, store.RedisOptions{})
	other := openRedis(t, testPrefix(t), store.RedisOptions{})
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}

	want := store.Record{
		State: store.StatePhoto,
		Body:  []byte("from a"),
		Timer: store.Timer{Kind: store.TimerError, Until: time.Now().Add(time.Hour)},
	}
	if err := a.Put(ctx, key, want); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, key)
	if err != nil {
		t.Fatalf("b.Get: %v", err)
	}
	if string(got.Body) != "from a" || got.Timer.Kind != store.TimerError {
		t.Errorf("b.Get = body %q, timer %v; want %q, %v", got.Body, got.Timer.Kind, "from a", store.TimerError)
	}
	if _, err := other.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("other prefix: Get error = %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a.Get after b.Delete: error = %v, want ErrNotFound", err)
	}
}
