package spawn

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
)

// goroutineID is the number runtime.Stack gives the calling goroutine.
func goroutineID(t *testing.T) int {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	f := bytes.Fields(buf) // "goroutine 18 [running]: …"
	id, err := strconv.Atoi(string(f[1]))
	if err != nil {
		t.Errorf("reading the goroutine id from %q: %v", buf, err)
	}
	return id
}

// runAtOnce hands Go n functions that each wait until all n have started
// (so none can take another's goroutine), and returns when all are done.
func runAtOnce(n int) {
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for range n {
		Go(func() {
			defer done.Done()
			started.Done()
			started.Wait()
		})
	}
	done.Wait()
}

// TestGoRunsAllAtOnce: work handed to Go runs concurrently, each on a
// goroutine of its own, however many goroutines are busy: 64 functions
// each waiting for all the others to start all finish.
func TestGoRunsAllAtOnce(t *testing.T) {
	finished := make(chan struct{})
	go func() { runAtOnce(64); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
		t.Fatal("the functions handed to Go did not all run at once")
	}
}

// TestGoKeepsTheGoroutine: work handed to Go after earlier work ended runs
// on the goroutine that did the earlier work, which waited for more.
func TestGoKeepsTheGoroutine(t *testing.T) {
	ids := make(chan int)
	Go(func() { ids <- goroutineID(t) })
	first := <-ids
	// The goroutine reaches its wait for more work soon after first is
	// sent; until it does, Go starts another one.
	for range 1000 {
		time.Sleep(time.Millisecond)
		Go(func() { ids <- goroutineID(t) })
		if <-ids == first {
			return
		}
	}
	t.Fatalf("work after goroutine %d's never ran on it", first)
}

// TestGoKeepsAtMostMaxIdle: after a burst of work larger than maxIdle, no
// more than maxIdle goroutines stay waiting for more.
func TestGoKeepsAtMostMaxIdle(t *testing.T) {
	const n = 2 * maxIdle
	runAtOnce(n)
	deadline := time.Now().Add(5 * time.Second)
	for waiting.Load() < maxIdle && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // room for any beyond the bound to show
	if got := waiting.Load(); got != maxIdle {
		t.Fatalf("%d goroutines waiting after a burst of %d, want %d", got, n, maxIdle)
	}
}
