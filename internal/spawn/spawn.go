// Package spawn runs work on goroutines kept for the next piece of work.
//
// The engine starts a goroutine for every pull and the Autodiscover client
// one for every lookup, so that the work outlives the request that asked
// for it. A fresh goroutine starts on a small stack and grows it, copying
// it each time, as the work goes down through TLS, HTTP/2 and the store. A
// goroutine that has done a piece of work keeps its grown stack and waits a
// while for the next, up to maxIdle of them at once.
package spawn

import (
	"sync/atomic"
	"time"
)

// idle is how long a goroutine waits for more work before it ends.
const idle = 5 * time.Second

// maxIdle bounds the goroutines waiting at once: after a burst of pulls
// (a stampede of cold photos), the rest end at once instead of keeping
// their stacks for idle.
const maxIdle = 256

// waiting counts the goroutines waiting for work.
var waiting atomic.Int32

// work hands a function to a goroutine waiting for one; unbuffered, so a
// send succeeds only when one is waiting.
var work = make(chan func())

// Go runs f on a goroutine of its own: one left idle by earlier work, or a
// new one. Like the go statement, it does not wait for f, and a panic in f
// that f does not recover ends the process.
func Go(f func()) {
	select {
	case work <- f:
	default:
		go run(f)
	}
}

func run(f func()) {
	var t *time.Timer
	for {
		f()
		f = nil // not kept alive while idle
		if waiting.Add(1) > maxIdle {
			waiting.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(idle)
		} else {
			t.Reset(idle)
		}
		select {
		case f = <-work:
			waiting.Add(-1)
		case <-t.C:
			waiting.Add(-1)
			return
		}
	}
}
