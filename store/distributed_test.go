package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"photosync/store"
	"photosync/store/redistest"
)

// TestRedisSentinelFailover writes records and runs three replicas' pulls
// through a SENTINEL FAILOVER: no record whose Put succeeded after the
// failover is lost, and no photo is pulled twice.
func TestRedisSentinelFailover(t *testing.T) {
	g := redistest.StartSentinel(t)
	var replicas []*store.Redis
	for range 3 {
		replicas = append(replicas, openURL(t, g.URL(), store.RedisOptions{}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var (
		mu        sync.Mutex
		after     []store.Key // put without error once the failover was over
		putErrs   atomic.Int64
		failedOut atomic.Bool
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the writer: light load, one put every 5ms
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			key := store.Key{Owner: fmt.Sprintf("w%d@contoso.com", i), Size: "HR96x96"}
			over := failedOut.Load()
			if err := replicas[0].Put(ctx, key, photoRec("w", time.Hour)); err != nil {
				putErrs.Add(1)
				continue
			}
			if over {
				mu.Lock()
				after = append(after, key)
				mu.Unlock()
			}
		}
	}()
	// Pullers: 40 photos, each wanted by all three replicas, spread over
	// the failover.
	const photos = 40
	calls := make([]atomic.Int64, photos)
	for p := range photos {
		for _, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(p) * 25 * time.Millisecond)
				key := store.Key{Owner: fmt.Sprintf("p%d@contoso.com", p), Size: "HR96x96"}
				if err := pullOnce(ctx, r, key, time.Second, &calls[p]); err != nil {
					t.Errorf("pull %s: %v", key, err)
				}
			}()
		}
	}
	time.Sleep(200 * time.Millisecond)
	g.Failover(t)
	failedOut.Store(true)
	// Readiness follows the new master.
	deadline := time.Now().Add(20 * time.Second)
	for replicas[0].Ping(ctx) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	lost := 0
	for _, k := range after {
		if _, err := replicas[1].Get(ctx, k); err != nil {
			lost++
		}
	}
	dup := 0
	for p := range photos {
		if calls[p].Load() != 1 {
			dup++
		}
	}
	t.Logf("sentinel failover: %d records written after it, %d lost; %d puts refused during it; %d photos pulled by 3 replicas, %d pulled other than once",
		len(after), lost, putErrs.Load(), photos, dup)
	if len(after) == 0 {
		t.Fatal("no record was written after the failover")
	}
	if lost != 0 || dup != 0 {
		t.Errorf("%d records lost after the failover, %d photos not pulled exactly once; want 0 and 0", lost, dup)
	}
}

// TestRedisClusterStampede has three replicas, one through a single seed
// with the mode forced, pull the same photos at once on a three-master
// Cluster: every record lands, one master call each, and Delete clears
// them.
func TestRedisClusterStampede(t *testing.T) {
	c := redistest.StartCluster(t)
	replicas := []*store.Redis{
		openURL(t, c.URL(), store.RedisOptions{}),
		openURL(t, c.URL(), store.RedisOptions{}),
		openURL(t, "redis://"+c.Nodes[2].Addr, store.RedisOptions{Mode: store.RedisCluster}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const photos = 36
	var calls atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for p := range photos {
		for _, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				key := store.Key{Owner: fmt.Sprintf("p%d@contoso.com", p), Size: "HR96x96"}
				if err := pullOnce(ctx, r, key, time.Second, &calls); err != nil {
					t.Errorf("pull %s: %v", key, err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	stored := 0
	for p := range photos {
		key := store.Key{Owner: fmt.Sprintf("p%d@contoso.com", p), Size: "HR96x96"}
		if _, err := replicas[2].Get(ctx, key); err == nil {
			stored++
		}
	}
	// The keys spread over the three masters.
	var spread []string
	for _, n := range c.Nodes {
		spread = append(spread, redistest.Info(t, n, "keyspace", "db0"))
	}
	t.Logf("cluster stampede: 3 replicas, %d photos: %d records stored, %d master calls; keyspace per node %q", photos, stored, calls.Load(), spread)
	if stored != photos || calls.Load() != photos {
		t.Errorf("stored %d, master calls %d; want %d and %d", stored, calls.Load(), photos, photos)
	}
	for p := range photos {
		key := store.Key{Owner: fmt.Sprintf("p%d@contoso.com", p), Size: "HR96x96"}
		if err := replicas[p%3].Delete(ctx, key); err != nil {
			t.Fatalf("Delete(%s): %v", key, err)
		}
		if _, err := replicas[(p+1)%3].Get(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%s) after Delete = %v, want ErrNotFound", key, err)
		}
	}
	if err := replicas[2].Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// TestHotInvalidation has three replicas, each a Hot over its own Redis
// client: a write or delete on one reaches the others' memory within a
// second, and a broken subscription flushes memory.
func TestHotInvalidation(t *testing.T) {
	srv := redistest.Start(t)
	var hots []*store.Hot
	for range 3 {
		r := openURL(t, srv.URL(), store.RedisOptions{})
		h := store.NewHot(r, 8<<20, store.HotOptions{MemoryTTL: 30 * time.Second})
		t.Cleanup(func() { h.Close() })
		hots = append(hots, h)
	}
	ctx := context.Background()
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	body := func(h *store.Hot) string {
		r, err := h.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return "(none)"
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(r.Body)
	}
	// Wait until all three listen: a write is then seen by the others.
	waitSeen := func(want string) time.Duration {
		t.Helper()
		start := time.Now()
		for _, h := range hots[1:] {
			for body(h) != want {
				if time.Since(start) > 10*time.Second {
					t.Fatalf("a replica still serves %q, want %q", body(h), want)
				}
				time.Sleep(time.Millisecond)
			}
		}
		return time.Since(start)
	}
	mustPut(t, hots[0], key, photoRec("v0", time.Hour))
	waitSeen("v0")

	var worst time.Duration
	for i := 1; i <= 10; i++ {
		want := fmt.Sprintf("v%d", i)
		if i == 10 {
			if err := hots[0].Delete(ctx, key); err != nil {
				t.Fatal(err)
			}
			want = "(none)"
		} else {
			mustPut(t, hots[0], key, photoRec(want, time.Hour))
		}
		// The others have the old record in memory, with its timer alive.
		worst = max(worst, waitSeen(want))
		mustPut(t, hots[0], key, photoRec(want+"-cached", time.Hour))
		waitSeen(want + "-cached")
	}
	t.Logf("invalidation lag on the other replicas, worst of ten: %v", worst)
	if worst > time.Second {
		t.Errorf("worst invalidation lag %v, want within 1s", worst)
	}

	// A broken subscription: Redis restarts empty (no persistence), and
	// nobody published the loss. Each replica drops its memory when it
	// resubscribes, and so serves what Redis holds.
	mustPut(t, hots[0], key, photoRec("before", time.Hour))
	waitSeen("before")
	srv.Kill()
	srv.Restart(t)
	start := time.Now()
	waitSeen("(none)")
	t.Logf("after a Redis restart the replicas flushed their memory within %v", time.Since(start))
}

// leaseHolderEnv makes the test binary, re-executed by TestRedisLeaseKill9,
// a lock holder: it takes the lease, says "held" and renews it until it is
// killed.
const leaseHolderEnv = "PHOTOSYNC_TEST_LEASE_HOLDER"

func TestRedisLeaseKill9(t *testing.T) {
	if v := os.Getenv(leaseHolderEnv); v != "" {
		holdLease(v)
		return
	}
	srv := redistest.Start(t)
	const lease = time.Second
	prefix := "lease:"
	key := store.Key{Owner: "adele@contoso.com", Size: "HR96x96"}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRedisLeaseKill9$")
	cmd.Env = append(os.Environ(), leaseHolderEnv+"="+srv.URL()+" "+prefix+" "+lease.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	held := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "held" {
				held <- true
				return
			}
		}
		held <- false
	}()
	select {
	case ok := <-held:
		if !ok {
			t.Fatal("the holder exited without taking the lease")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the holder never took the lease")
	}
	// The child renews: two leases later it still holds.
	a := openURL(t, srv.URL(), store.RedisOptions{Prefix: prefix})
	b := openURL(t, srv.URL(), store.RedisOptions{Prefix: prefix})
	time.Sleep(2 * lease)
	if _, ok, err := a.TryLock(context.Background(), key, lease); err != nil || ok {
		t.Fatalf("TryLock while the holder lives = %v, %v; want refused", ok, err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var calls atomic.Int64
	took := make([]time.Duration, 2)
	var wg sync.WaitGroup
	for i, r := range []*store.Redis{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pullOnce(ctx, r, key, lease, &calls); err != nil {
				t.Error(err)
			}
			took[i] = time.Since(killed)
		}()
	}
	wg.Wait()
	t.Logf("kill -9 of the lease holder (lease %v): the others had the photo after %v and %v, %d master call(s)",
		lease, took[0].Round(time.Millisecond), took[1].Round(time.Millisecond), calls.Load())
	if calls.Load() != 1 {
		t.Errorf("master calls = %d, want 1", calls.Load())
	}
}

// holdLease is the child of TestRedisLeaseKill9.
func holdLease(arg string) {
	f := strings.Fields(arg)
	lease, _ := time.ParseDuration(f[2])
	r, err := store.OpenRedis(context.Background(), f[0], store.RedisOptions{Prefix: f[1]})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	_, ok, err := r.TryLock(context.Background(), store.Key{Owner: "adele@contoso.com", Size: "HR96x96"}, lease)
	if err != nil || !ok {
		fmt.Println("not held:", ok, err)
		os.Exit(1)
	}
	fmt.Println("held")
	select {} // renewing, until SIGKILL
}
