package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"photosync/oauth"
	"photosync/store"
	"photosync/store/redistest"
	"photosync/store/storetest"
	"photosync/sync/exchange/exchangetest"
)

// These tests run photosync as real processes (the binary built from this
// package), the way replicas run in production: several on one Redis, one
// killed with SIGKILL mid-burst, one whose Redis goes away and comes back.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds photosync once per test run.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "photosync-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "photosync")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// replicaSet is what replicas share: the simulator, the S2S key pair and
// realm, and the CA file.
type replicaSet struct {
	dir   string
	sim   *exchangetest.Server
	realm string
}

func newReplicaSet(t *testing.T, users []exchangetest.User) *replicaSet {
	t.Helper()
	rs := &replicaSet{dir: t.TempDir(), realm: oauth.NewRealm()}
	rs.sim = exchangetest.NewServer(exchangetest.Options{Users: users})
	t.Cleanup(rs.sim.Close)
	writeTrustFiles(t, rs.dir, rs.sim)
	return rs
}

// replica is one photosync process.
type replica struct {
	base string
	cmd  *exec.Cmd
	log  string
	conf string
}

// start runs a photosync serve process with the shared settings plus extra
// YAML under store: (e.g. a redis_url) and waits until it answers.
func (rs *replicaSet) start(t *testing.T, name, storeYAML string) *replica {
	t.Helper()
	addr := freeAddr(t)
	conf := filepath.Join(rs.dir, name+".yaml")
	doc := fmt.Sprintf(`listen: %q
photos:
  trigger: any
  cold_deadline: 30s # wait for the pull however busy the machine is
%s
store:
%s
log:
  format: json
admin:
  listen: ""
`, addr, trustYAML(rs.sim, rs.realm), storeYAML)
	if err := os.WriteFile(conf, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &replica{base: "http://" + addr, conf: conf, log: filepath.Join(rs.dir, name+".log")}
	r.run(t)
	if rs.sim != nil {
		// Any replica publishes the same metadata: they share key and realm.
		rs.sim.SetPartnerMetadataURL(r.base + "/_layouts/15/metadata/json/1")
	}
	return r
}

func (r *replica) run(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(r.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(binary(t), "serve", "--config", r.conf)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := r.cmd
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(r.log)
			t.Logf("%s:\n%s", r.log, b)
		}
	})
	waitHealthy(t, r.base)
}

// kill sends SIGKILL: no shutdown, no flush, nothing.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = r.cmd.Wait()
}

func manyUsers(n int) []exchangetest.User {
	users := make([]exchangetest.User, n)
	for i := range users {
		users[i] = exchangetest.User{Email: fmt.Sprintf("person%03d@contoso.com", i), Name: fmt.Sprintf("Person %d", i), Photo: true}
	}
	return users
}

func TestThreeReplicasOnOneRedisMakeOneMasterCall(t *testing.T) {
	redisYAML := fmt.Sprintf("  redis_url: %q\n  redis_prefix: %q", storetest.RedisURL(t), fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano()))
	rs := newReplicaSet(t, manyUsers(1))
	replicas := []*replica{rs.start(t, "a", redisYAML), rs.start(t, "b", redisYAML), rs.start(t, "c", redisYAML)}
	rs.sim.SetPhotoDelay(300 * time.Millisecond) // the pull is slow enough for everyone to pile up

	const n = 300
	var wg sync.WaitGroup
	var bad atomic.Int32
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := http.Get(replicas[i%3].base + "/photos/person000@contoso.com?size=HR240x240")
			if err != nil {
				bad.Add(1)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
				bad.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if b := bad.Load(); b != 0 {
		t.Errorf("%d of %d requests did not get the photo", b, n)
	}
	if calls := rs.sim.PhotoRequests(); calls != 1 {
		t.Fatalf("master calls for %d concurrent requests across 3 replicas = %d, want 1", n, calls)
	}
	// The size asked for is derived from the master copy once, by the
	// replica holding its lock; the others serve what it stored.
	derived := 0
	for _, r := range replicas {
		b, err := os.ReadFile(r.log)
		if err != nil {
			t.Fatal(err)
		}
		derived += strings.Count(string(b), `"msg":"size derived"`)
	}
	if derived != 1 {
		t.Errorf("HR240x240 derived %d times across 3 replicas, want 1", derived)
	}
}

func TestKillMidBurstLeavesNoBrokenPhoto(t *testing.T) {
	users := manyUsers(120)
	rs := newReplicaSet(t, users)
	data := filepath.Join(rs.dir, "data")
	r := rs.start(t, "a", fmt.Sprintf("  path: %q", data))

	sizes := []string{"HR96x96", "HR240x240", "HR648x648"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(users)*len(sizes); i += 8 {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
					r.base+"/photos/"+users[i/len(sizes)].Email+"?size="+sizes[i%len(sizes)], nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // killed
				}
				resp.Body.Close()
			}
		}()
	}
	// Kill it while pulls are landing.
	deadline := time.Now().Add(30 * time.Second)
	for rs.sim.PhotoRequests() < 60 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r.kill(t)
	cancel()
	wg.Wait()
	pulled := rs.sim.PhotoRequests()

	st, err := store.OpenBolt(data, store.BoltOptions{})
	if err != nil {
		t.Fatalf("reopening the store after SIGKILL: %v", err)
	}
	stored := 0
	for _, u := range users {
		for _, size := range sizes {
			rec, err := st.Get(context.Background(), store.Key{Owner: u.Email, Size: size})
			switch {
			case errors.Is(err, store.ErrNotFound):
			case err != nil:
				t.Errorf("%s %s after SIGKILL: %v", u.Email, size, err)
			case rec.State != store.StatePhoto || store.Checksum(rec.Body) != rec.Sum || len(rec.Body) == 0:
				t.Errorf("%s %s after SIGKILL: state %v, %d bytes", u.Email, size, rec.State, len(rec.Body))
			default:
				stored++
			}
		}
	}
	st.Close()
	if stored == 0 {
		t.Fatal("nothing was stored before the kill: the test proved nothing")
	}
	t.Logf("killed after %d master calls; %d photos stored, all pass their checksum", pulled, stored)

	// And the restarted process serves them.
	r.run(t)
	resp, _ := fetch(t, r.base+"/photos/"+users[0].Email+"?size=HR96x96")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after restart: %d", resp.StatusCode)
	}
}

// ownRedis starts a redis-server of this test's own on a free loopback port
// (it must be stopped and started again, so it cannot be the shared one).
func ownRedis(t *testing.T, port int) *exec.Cmd {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("PHOTOSYNC_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server not found")
		}
		t.Skip("redis-server not found; run .ci/test")
	}
	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for c.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd
}

func TestRedisGoesAwayAndComesBack(t *testing.T) {
	storetest.RedisURL(t)      // the same requirement as the other Redis tests
	p := redistest.FreePort(t) // killed and restarted on it: see FreePort
	port := strconv.Itoa(p)
	redisCmd := ownRedis(t, p)
	users := manyUsers(8)
	rs := newReplicaSet(t, users)
	r := rs.start(t, "a", fmt.Sprintf("  redis_url: \"redis://127.0.0.1:%d/0\"", p))

	cached := users[:4]
	for _, u := range cached {
		if resp, _ := fetch(t, r.base+"/photos/"+u.Email); resp.StatusCode != http.StatusOK {
			t.Fatalf("warming %s: %d", u.Email, resp.StatusCode)
		}
	}

	// A steady load on the cached photos for the whole test.
	stop := make(chan struct{})
	var requests, failures atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(r.base + "/photos/" + cached[(i+w)%len(cached)].Email)
				requests.Add(1)
				if err != nil || resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}

	ready := func() int {
		resp, err := http.Get(r.base + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitReady := func(want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for ready() != want {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never answered %d", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Redis goes away.
	_ = redisCmd.Process.Kill()
	_ = redisCmd.Wait()
	waitReady(http.StatusServiceUnavailable)
	before := requests.Load()
	// A photo never seen before is still pulled and served, and then kept in
	// memory with its timer: a second request is a hit, not another pull.
	calls := rs.sim.PhotoRequests()
	for i := 0; i < 2; i++ {
		resp, _ := fetch(t, r.base+"/photos/"+users[4].Email)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("cold photo without Redis: %d", resp.StatusCode)
		}
	}
	if n := rs.sim.PhotoRequests(); n != calls+1 {
		t.Fatalf("master calls for one photo without Redis = %d, want 1", n-calls)
	}
	for requests.Load() < before+50 {
		time.Sleep(5 * time.Millisecond)
	}

	// Redis comes back (empty): photosync uses it again without a restart.
	ownRedis(t, p)
	waitReady(http.StatusOK)
	if resp, _ := fetch(t, r.base+"/photos/"+users[5].Email); resp.StatusCode != http.StatusOK {
		t.Fatalf("after Redis returned: %d", resp.StatusCode)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port})
	defer c.Close()
	// The new photo's size and the master copy it was scaled from are there.
	// (Photos served from memory during the outage may be there too: the
	// memory layer is dropped when Redis is back, since other replicas may
	// have changed what it held, and the next request pulls them again.)
	// A pull's answer is served before the store has written it, so the
	// records may come a moment after the answer.
	var keys []string
	newKeys := 0
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if keys, err = c.Keys(context.Background(), "photosync:rec:*").Result(); err != nil {
			t.Fatalf("keys in the returned Redis: %v", err)
		}
		newKeys = 0
		for _, k := range keys {
			if strings.Contains(k, users[5].Email) {
				newKeys++
			}
		}
		if newKeys == 2 || time.Now().After(deadline) {
			break
		}
	}
	if newKeys != 2 {
		t.Errorf("keys of the photo pulled after Redis returned: %d of %v, want its size and its master copy", newKeys, keys)
	}

	close(stop)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests for cached photos failed while Redis was away", f, requests.Load())
	}
	t.Logf("%d requests for cached photos, none failed, across a Redis outage", requests.Load())
	logs, _ := os.ReadFile(r.log)
	// Redis itself logs its outage, once when it starts and once when it
	// ends, however many requests were answered from memory meanwhile.
	for _, want := range []string{`"msg":"redis unreachable"`, `"msg":"redis reachable again"`} {
		if n := strings.Count(string(logs), want); n != 1 {
			t.Errorf("log has %s %d times, want once", want, n)
		}
	}
}
