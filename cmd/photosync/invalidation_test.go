package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"photosync/store/storetest"
)

// TestCommandsReachEveryReplica runs three replicas on one Redis, each
// holding a photo in its memory layer, and checks that what an operator
// command does elsewhere reaches all of them within a second: forget makes
// each pull afresh, and a forced warm that pulled new bytes is what each
// serves next.
func TestCommandsReachEveryReplica(t *testing.T) {
	const owner = "person000@contoso.com"
	redisYAML := fmt.Sprintf("  redis_url: %q\n  redis_prefix: %q", storetest.RedisURL(t), fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano()))
	rs := newReplicaSet(t, manyUsers(1))
	replicas := []*replica{rs.start(t, "a", redisYAML), rs.start(t, "b", redisYAML), rs.start(t, "c", redisYAML)}

	get := func(r *replica) (string, []byte) {
		t.Helper()
		resp, err := http.Get(r.base + "/photos/" + owner + "?size=HR96x96")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("Cache-Status"), b
	}
	old := []byte(nil)
	for _, r := range replicas {
		_, b := get(r)
		if old != nil && !bytes.Equal(b, old) {
			t.Fatal("replicas serve different bytes")
		}
		old = b
		if cs, _ := get(r); !strings.HasPrefix(cs, "photosync; hit") {
			t.Fatalf("second request to %s: %q, want a hit from memory", r.base, cs)
		}
	}

	// lag polls each of b and c until ok says its answer reflects the
	// command, and returns the slowest.
	lag := func(ok func(cs string, body []byte) bool) time.Duration {
		t.Helper()
		start := time.Now()
		var worst time.Duration
		for _, r := range replicas[1:] {
			for {
				if cs, b := get(r); ok(cs, b) {
					break
				}
				if time.Since(start) > 10*time.Second {
					cs, _ := get(r)
					t.Fatalf("%s still serves the old state after %v: %s", r.base, time.Since(start), cs)
				}
				time.Sleep(10 * time.Millisecond)
			}
			worst = max(worst, time.Since(start))
		}
		return worst
	}
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A new photo at the master: the timers still run, so every replica
	// keeps the old one until an operator forgets it.
	rs.sim.SetPhoto(owner)
	if _, b := get(replicas[1]); !bytes.Equal(b, old) {
		t.Fatal("a replica pulled although its timer runs")
	}
	if code := run(ctx, []string{"forget", "--config", replicas[0].conf, owner}, &stdout, &stderr); code != 0 {
		t.Fatalf("forget exited %d: %s", code, stderr.String())
	}
	d := lag(func(_ string, b []byte) bool { return !bytes.Equal(b, old) })
	t.Logf("forget reached the other replicas in %v", d)
	if d > time.Second {
		t.Errorf("forget took %v to reach every replica, want at most 1s", d)
	}
	_, old = get(replicas[0])

	rs.sim.SetPhoto(owner) // and another
	list := filepath.Join(t.TempDir(), "people.txt")
	if err := os.WriteFile(list, []byte(owner+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(ctx, []string{"warm", "--config", replicas[0].conf, "--from", list, "--sizes", "HR96x96", "--force"}, &stdout, &stderr); code != 0 {
		t.Fatalf("warm exited %d: %s", code, stderr.String())
	}
	_, fresh := get(replicas[0])
	if bytes.Equal(fresh, old) {
		t.Fatal("the forced warm did not pull the new photo")
	}
	d = lag(func(_ string, b []byte) bool { return bytes.Equal(b, fresh) })
	t.Logf("a refreshed photo reached the other replicas in %v", d)
	if d > time.Second {
		t.Errorf("the refreshed photo took %v to reach every replica, want at most 1s", d)
	}
}
