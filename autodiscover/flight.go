package autodiscover

import (
	"fmt"
	"sync"

	"photosync/internal/spawn"
)

// flightGroup runs one lookup per key at a time; callers of the same key
// share its result. Unlike golang.org/x/sync/singleflight's Do, the work runs
// on its own goroutine so that each caller can stop waiting when its own ctx
// ends without failing the others.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one running lookup; e is valid once done is closed.
type flight struct {
	done chan struct{}
	e    entry
}

// start returns the running flight for key, or starts fn as a new one.
func (g *flightGroup) start(key string, fn func() entry) *flight {
	g.mu.Lock()
	if f, ok := g.m[key]; ok {
		g.mu.Unlock()
		return f
	}
	if g.m == nil {
		g.m = map[string]*flight{}
	}
	f := &flight{done: make(chan struct{})}
	g.m[key] = f
	g.mu.Unlock()

	spawn.Go(func() {
		defer func() {
			// The goroutine outlives the request: a bug in a lookup must
			// not take the process down.
			if r := recover(); r != nil {
				f.e = entry{err: fmt.Errorf("autodiscover: lookup of %q panicked: %v", key, r)}
			}
			g.mu.Lock()
			delete(g.m, key)
			g.mu.Unlock()
			close(f.done)
		}()
		f.e = fn()
	})
	return f
}
