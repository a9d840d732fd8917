package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"photosync/store"
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
	rec, timer := r.Keys(store.Key{Owner: "alice@contoso.com", Size: "HR96x96"})
	if want := "photosync:rec:{alice@contoso.com/HR96x96}"; rec != want {
		t.Errorf("record key = %q, want %q", rec, want)
	}
	if want := "photosync:timer:{alice@contoso.com/HR96x96}"; timer != want {
		t.Errorf("timer key = %q, want %q", timer, want)
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

// TestRedisTimerKey checks that the timer is a real Redis key whose TTL is
// the time the timer has left, and that it goes away with TimerNone.
func TestRedisTimerKey(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	r := openRedis(t, testPrefix(t), store.RedisOptions{Now: clk.Now})
	raw := rawRedis(t)
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	_, timerKey := r.Keys(key)

	tests := []struct {
		name  string
		timer store.Timer
		value string        // of the timer key; "" when there must be none
		ttl   time.Duration // requested; the key's PTTL must be in (0, ttl]
	}{
		{"success", store.Timer{Kind: store.TimerSuccess, Until: clk.Now().Add(10 * time.Second)}, "expiration", 10 * time.Second},
		{"error", store.Timer{Kind: store.TimerError, Until: clk.Now().Add(1500 * time.Millisecond)}, "error-expiration", 1500 * time.Millisecond},
		{"none", store.Timer{}, "", 0},
		{"past", store.Timer{Kind: store.TimerSuccess, Until: clk.Now().Add(-time.Second)}, "", 0},
		{"now", store.Timer{Kind: store.TimerError, Until: clk.Now()}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := r.Put(ctx, key, store.Record{State: store.StatePhoto, Body: []byte("x"), Timer: tt.timer}); err != nil {
				t.Fatal(err)
			}
			v, err := raw.Get(ctx, timerKey).Result()
			if tt.value == "" {
				if !errors.Is(err, redis.Nil) {
					t.Fatalf("GET timer = %q, %v; want no key", v, err)
				}
				return
			}
			if err != nil || v != tt.value {
				t.Fatalf("GET timer = %q, %v; want %q", v, err, tt.value)
			}
			pttl, err := raw.PTTL(ctx, timerKey).Result()
			if err != nil {
				t.Fatal(err)
			}
			if pttl <= 0 || pttl > tt.ttl {
				t.Errorf("PTTL = %v, want in (0, %v]", pttl, tt.ttl)
			}
			got, err := r.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if got.Timer.Kind != tt.timer.Kind || !got.Timer.Alive(clk.Now()) || got.Timer.Until.After(tt.timer.Until) {
				t.Errorf("Get Timer = %+v, want %v alive and not after %v", got.Timer, tt.timer.Kind, tt.timer.Until)
			}
		})
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
			recKey, _ := r.Keys(key)
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
