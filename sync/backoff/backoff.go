// Package backoff is the per-host circuit every HTTP source shares: once a
// master asks photosync to stay away (503 or 429 with Retry-After, EWS's
// ErrorServerBusy with BackOffMilliseconds) or cannot be reached, calls to
// that host are refused until the period ends, capped at Circuit.Max.
// Repeated connection failures double the period each time.
//
// The circuit learns why from the error of a call: an error that asks for a
// back-off implements Throttled; a connection failure is recognised from the
// standard library's network errors. Any other error (a 404, a bad image, a
// rejected token) concerns one photo or one token, not the host, and leaves
// the circuit as it is.
package backoff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrBackoff is matched, with errors.Is, by the *Error Check returns.
var ErrBackoff = errors.New("backoff: backing off")

// Error says which host is backed off, until when and why.
type Error struct {
	Host   string
	Until  time.Time
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("backoff: backing off %s until %s (%s)", e.Host, e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// RetryAt is when the host may be asked again: the end of the back-off. A
// caller that must not import this package (the engine) reads it through
// an interface of its own, to end its error timer there.
func (e *Error) RetryAt() time.Time { return e.Until }

// Is makes errors.Is(err, ErrBackoff) true.
func (e *Error) Is(target error) bool { return target == ErrBackoff }

// Throttled is implemented by an error that carries a master's request to
// stay away: Backoff returns how long (0: DefaultBusy) and why. ok false
// means this error is no reason to back off.
type Throttled interface {
	Backoff() (wait time.Duration, reason string, ok bool)
}

// Periods used when the master names none.
const (
	// DefaultBusy is the back-off for a throttling answer without a period.
	DefaultBusy = 30 * time.Second
	// ConnectFailure is the first back-off after a connection failure; it
	// doubles with each failure in a row.
	ConnectFailure = 5 * time.Second
	// DefaultMax caps any one back-off unless Circuit.Max says otherwise.
	DefaultMax = 15 * time.Minute
)

// Circuit stops calls to a host for the period it asked for. The zero value
// is ready to use. Safe for concurrent use.
type Circuit struct {
	// Max caps one back-off, whatever the master asks. Default: DefaultMax.
	Max time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time

	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	until    time.Time
	reason   string
	failures int // connection failures in a row
}

func (c *Circuit) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Check returns an *Error while host is backed off.
func (c *Circuit) Check(host string) error {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.hosts[host]; h != nil && now.Before(h.until) {
		return &Error{Host: host, Until: h.until, Reason: h.reason}
	}
	return nil
}

// Active returns how many hosts are backed off now.
func (c *Circuit) Active() int {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, h := range c.hosts {
		if now.Before(h.until) {
			n++
		}
	}
	return n
}

// Record updates host's state with the outcome of a call: nil closes the
// circuit; a Throttled error or a connection failure opens it.
func (c *Circuit) Record(host string, err error) {
	wait, reason := reasonFor(err)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.hosts[host]
	if err == nil {
		if h != nil {
			delete(c.hosts, host) // a good answer closes the circuit
		}
		return
	}
	if reason == "" {
		return
	}
	if c.hosts == nil {
		c.hosts = make(map[string]*hostState)
	}
	if h == nil {
		h = &hostState{}
		c.hosts[host] = h
	}
	if reason == reasonConnect {
		h.failures++
		wait = ConnectFailure << min(h.failures-1, 10)
	}
	limit := c.Max
	if limit <= 0 {
		limit = DefaultMax
	}
	wait = min(wait, limit)
	if until := now.Add(wait); until.After(h.until) {
		h.until, h.reason = until, reason
	}
}

const reasonConnect = "connection failure"

// reasonFor says how long err asks the host to be left alone, and why; ""
// means err is no reason to back off.
func reasonFor(err error) (time.Duration, string) {
	if err == nil {
		return 0, ""
	}
	var t Throttled
	if errors.As(err, &t) {
		wait, reason, ok := t.Backoff()
		if !ok {
			return 0, ""
		}
		if wait <= 0 {
			wait = DefaultBusy
		}
		return wait, reason
	}
	if IsConnectionFailure(err) {
		return ConnectFailure, reasonConnect
	}
	return 0, ""
}

// RetryAfter reads a Retry-After value, delay seconds or an HTTP date, as
// a duration; fallback when it is missing or unreadable.
func RetryAfter(v string, fallback time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return fallback
}

// IsConnectionFailure tells a host that cannot be reached (refused, reset,
// unresolvable, dropped mid-answer) from one that answered. A deadline of
// our own is not one: a slow master is handled by the photo's error timer.
func IsConnectionFailure(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}
