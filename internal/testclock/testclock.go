// Package testclock is the one fake clock photosync's tests share: a time
// that moves only when a test advances it, so timer and back-off policy is
// tested without sleeping.
package testclock

import (
	"sync"
	"time"
)

// Start is where a new Clock stands: a fixed Monday morning, UTC.
var Start = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// Clock is a fake clock. Safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a Clock standing at Start.
func New() *Clock { return &Clock{now: Start} }

// Now returns the clock's time; pass c.Now where a func() time.Time is wanted.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
