package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"photosync/store"
	"photosync/store/redistest"
)

// logBuf is a slog destination tests can read.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func openURL(t *testing.T, url string, opts store.RedisOptions) *store.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := store.OpenRedis(ctx, url, opts)
	if err != nil {
		t.Fatalf("OpenRedis(%s): %v", store.MaskURL(url), err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func photoRec(body string, ttl time.Duration) store.Record {
	return store.Record{State: store.StatePhoto, Body: []byte(body),
		Timer: store.Timer{Kind: store.TimerSuccess, Until: time.Now().Add(ttl)}}
}

// pullOnce is what a replica's engine does for a cold photo, reduced to the
// store: the record if it is there, else the lease, else wait and retry;
// the holder "asks the master" (calls) and puts the result.
func pullOnce(ctx context.Context, r *store.Redis, key store.Key, lease time.Duration, calls *atomic.Int64) error {
	for ctx.Err() == nil {
		if rec, err := r.Get(ctx, key); err == nil && rec.Timer.Alive(time.Now()) {
			return nil
		}
		release, ok, err := r.TryLock(ctx, key, lease)
		if err != nil || !ok {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		// The holder before us may have finished just now.
		if rec, err := r.Get(ctx, key); err == nil && rec.Timer.Alive(time.Now()) {
			release()
			return nil
		}
		calls.Add(1)
		time.Sleep(5 * time.Millisecond) // the master answers
		err = r.Put(ctx, key, photoRec("photo of "+key.Owner, time.Hour))
		release()
		if err == nil {
			return nil
		}
	}
	return ctx.Err()
}

func TestRedisMaxmemory(t *testing.T) {
	const (
		photos = 1500
		size   = 20 << 10 // 1,500 × 20 KiB = 30 MiB into 20 MB
	)
	body := strings.Repeat("j", size)
	tests := []struct {
		policy string
		warns  bool
	}{
		{"allkeys-lru", false},
		{"volatile-lru", true},
		{"noeviction", true},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			srv := redistest.Start(t, "maxmemory 20mb", "maxmemory-policy "+tt.policy)
			var log logBuf
			r := openURL(t, srv.URL(), store.RedisOptions{Logger: log.logger()})
			if warned := strings.Contains(log.String(), "allkeys-lru"); warned != tt.warns {
				t.Errorf("startup warning naming allkeys-lru = %v, want %v; log:\n%s", warned, tt.warns, log.String())
			}
			ctx := context.Background()
			failed := 0
			for i := range photos {
				key := store.Key{Owner: fmt.Sprintf("p%d@contoso.com", i), Size: "HR96x96"}
				if err := r.Put(ctx, key, photoRec(body, time.Hour)); err != nil {
					failed++
				}
			}
			var withTimer, withoutTimer, gone, readErrs int
			for i := range photos {
				key := store.Key{Owner: fmt.Sprintf("p%d@contoso.com", i), Size: "HR96x96"}
				rec, err := r.Get(ctx, key)
				switch {
				case errors.Is(err, store.ErrNotFound):
					gone++
				case err != nil:
					readErrs++
				case rec.Timer.Alive(time.Now()) && len(rec.Body) == size:
					withTimer++
				default:
					withoutTimer++
				}
			}
			t.Logf("%s: %d puts failed; of %d photos %d stored with their timer, %d record without timer, %d gone, %d reads failed; %d log lines",
				tt.policy, failed, photos, withTimer, withoutTimer, gone, readErrs, strings.Count(log.String(), "\n"))
			if withoutTimer != 0 || readErrs != 0 {
				t.Errorf("%d records lost their timer and %d reads failed; want 0 and 0", withoutTimer, readErrs)
			}
			if withTimer+gone != photos {
				t.Errorf("stored %d + gone %d != %d", withTimer, gone, photos)
			}
			if tt.policy != "allkeys-lru" && failed != gone {
				t.Errorf("%d puts failed but %d photos are gone: a write was lost without an error", failed, gone)
			}
			if tt.policy == "allkeys-lru" && failed != 0 {
				t.Errorf("allkeys-lru: %d puts failed, want 0 (it evicts)", failed)
			}
			if tt.policy != "allkeys-lru" {
				if failed == 0 {
					t.Errorf("%s: no put failed on a full Redis", tt.policy)
				}
				if err := r.Ping(ctx); err == nil {
					t.Errorf("Ping on a full %s Redis succeeded; want not ready", tt.policy)
				}
				// Once per outage: a write that squeezes in (memory
				// fluctuates at the limit) ends one, so allow a few, never
				// one per failed write.
				if n := strings.Count(log.String(), "redis refuses writes"); n < 1 || n > 3 {
					t.Errorf("logged %q %d times for %d failed writes, want once per outage", "redis refuses writes", n, failed)
				}
			}
		})
	}
}

func TestParseRedisURL(t *testing.T) {
	const secret = "s3cr3t-pw"
	tests := []struct {
		url     string
		mode    store.RedisMode
		want    store.RedisMode
		addrs   int
		wantErr string
	}{
		{url: "redis://127.0.0.1:6379/0", want: store.RedisSingle, addrs: 1},
		{url: "rediss://u:" + secret + "@redis.contoso.com:6380/2", want: store.RedisSingle, addrs: 1},
		{url: "redis://:" + secret + "@s1:26379/0?master_name=photos&addr=s2:26379&addr=s3:26379", want: store.RedisSentinel, addrs: 3},
		{url: "redis://s1:26379/0?master_name=photos&password=" + secret, want: store.RedisSentinel, addrs: 1},
		{url: "redis://n1:7000?addr=n2:7000&addr=n3:7000", want: store.RedisCluster, addrs: 3},
		{url: "redis://n1:7000", mode: store.RedisCluster, want: store.RedisCluster, addrs: 1},
		{url: "redis://n1:7000", mode: store.RedisSentinel, wantErr: "master_name"},
		{url: "redis://n1:7000?addr=n2:7000", mode: store.RedisSingle, wantErr: "single"},
		{url: "redis://n1:7000/3?addr=n2:7000", wantErr: "database 0"},
		{url: "rediss://u:" + secret + "@h:6380/0?skip_verify=true", wantErr: "skip_verify"},
		{url: "http://u:" + secret + "@h:6379/0", wantErr: "scheme"},
		{url: "redis://u:" + secret + "@h:port/0", wantErr: "parsing"},
		{url: "redis://u:" + secret + "@h:6379/x", wantErr: "database"},
		{url: "redis://h:6379/0?bogus=1", wantErr: "bogus"},
		{url: "redis://h:6379/0", mode: "ring", wantErr: "mode"},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode)+" "+tt.url, func(t *testing.T) {
			got, err := store.ParseRedisURL(tt.url, tt.mode)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q shows the password", err)
				}
				if strings.Contains(tt.url, "skip_verify") && !errors.Is(err, store.ErrSkipVerify) {
					t.Errorf("error %v is not ErrSkipVerify", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != tt.want || len(got.Addrs) != tt.addrs {
				t.Errorf("mode %s with %d addrs, want %s with %d", got.Mode, len(got.Addrs), tt.want, tt.addrs)
			}
			if strings.Contains(got.URL, secret) || strings.Contains(fmt.Sprintf("%+v", got), secret) {
				t.Errorf("target %+v shows the password", got)
			}
		})
	}
}

func TestMaskURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"redis://user:pw@h:6379/0", "redis://user:********@h:6379/0"},
		{"redis://pw@h:6379/0", "redis://********@h:6379/0"},
		{"redis://h:6379/0?master_name=m&password=pw", "redis://h:6379/0?master_name=m&password=********"},
		{"redis://h:6379/0", "redis://h:6379/0"},
		{"redis://u:pw@h:port/0", "********"},
	}
	for _, tt := range tests {
		if got := store.MaskURL(tt.in); got != tt.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRedisTLS checks a Redis that speaks TLS only and asks for a client
// certificate: reachable with the CA and the certificate, refused without
// either; verification cannot be turned off.
func TestRedisTLS(t *testing.T) {
	srv := redistest.StartTLS(t)
	ctx := context.Background()
	r := openURL(t, srv.URL(), store.RedisOptions{CAFile: srv.CAFile, Certificate: srv.Certificate, Key: srv.Key})
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	mustPut(t, r, key, photoRec("over tls", time.Hour))
	if got := mustGet(t, r, key); string(got.Body) != "over tls" {
		t.Errorf("Get = %q", got.Body)
	}
	tests := []struct {
		name string
		url  string
		opts store.RedisOptions
	}{
		{"no client certificate", srv.URL(), store.RedisOptions{CAFile: srv.CAFile}},
		{"no CA", srv.URL(), store.RedisOptions{Certificate: srv.Certificate, Key: srv.Key}},
		{"plain", "redis://" + srv.Addr + "/0", store.RedisOptions{}},
		{"skip_verify", srv.URL() + "?skip_verify=true", store.RedisOptions{Certificate: srv.Certificate, Key: srv.Key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			r, err := store.OpenRedis(ctx, tt.url, tt.opts)
			if err == nil {
				r.Close()
				t.Fatal("OpenRedis succeeded")
			}
			t.Logf("refused: %v", err)
		})
	}
	if _, err := store.NewRedis(srv.URL(), store.RedisOptions{Certificate: srv.Certificate}); err == nil {
		t.Error("a certificate without its key was accepted")
	}
	if _, err := store.NewRedis("redis://"+srv.Addr+"/0", store.RedisOptions{CAFile: srv.CAFile}); err == nil {
		t.Error("a CA file with a redis:// URL was accepted")
	}
}

// TestRedisReadiness checks that a replica, which answers PING but refuses
// writes, is not ready, and that an outage logs one line each way however
// many commands fail.
func TestRedisReadiness(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.Start(t, fmt.Sprintf("replicaof 127.0.0.1 %d", master.Port()))
	ctx := context.Background()
	ro, err := store.NewRedis(replica.URL(), store.RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Ping(ctx); err == nil || !strings.Contains(err.Error(), "refuses writes") {
		t.Errorf("Ping of a replica = %v, want refuses writes", err)
	}

	var log logBuf
	r := openURL(t, master.URL(), store.RedisOptions{Logger: log.logger()})
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	mustPut(t, r, key, photoRec("x", time.Hour))
	master.Kill()
	for range 5 {
		if _, err := r.Get(ctx, key); err == nil {
			t.Fatal("Get with Redis killed succeeded")
		}
	}
	if err := r.Ping(ctx); err == nil {
		t.Error("Ping with Redis killed succeeded")
	}
	master.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for r.Ping(ctx) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for range 5 {
		_, _ = r.Get(ctx, key)
	}
	out := log.String()
	if n, m := strings.Count(out, "redis unreachable"), strings.Count(out, "redis reachable again"); n != 1 || m != 1 {
		t.Errorf("logged unreachable %d and reachable again %d times, want 1 and 1:\n%s", n, m, out)
	}
}
