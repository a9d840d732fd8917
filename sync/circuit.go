package sync

import (
	"context"
	"encoding/xml"
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

// ErrBackoff is returned, wrapped in a *BackoffError, while a master has
// asked photosync to stay away (503 or 429 with Retry-After, EWS
// ErrorServerBusy with BackOffMilliseconds) or keeps failing to connect.
var ErrBackoff = errors.New("master: backing off")

// BackoffError says which master is backed off, until when and why.
type BackoffError struct {
	Host   string
	Until  time.Time
	Reason string
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("master: backing off %s until %s (%s)", e.Host, e.Until.UTC().Format(time.RFC3339), e.Reason)
}

// Is makes errors.Is(err, ErrBackoff) true.
func (e *BackoffError) Is(target error) bool { return target == ErrBackoff }

// Back-off after connection failures when the master names no period: it
// doubles with each failure in a row, from connectBackoff.
const (
	connectBackoff = 5 * time.Second
	defaultBusy    = 30 * time.Second
)

// circuit stops calls to a master host for the period it asked for, or
// after connection failures. The per-photo error timer applies on top: a
// pull refused by the circuit is a failed pull.
type circuit struct {
	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	until    time.Time
	reason   string
	failures int // connection failures in a row
}

// check returns a *BackoffError while host is backed off at now.
func (c *circuit) check(host string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.hosts[host]; h != nil && now.Before(h.until) {
		return &BackoffError{Host: host, Until: h.until, Reason: h.reason}
	}
	return nil
}

// record updates host's state with the outcome of a call made at now.
func (c *circuit) record(host string, err error, now time.Time, max time.Duration) {
	wait, reason := backoffFor(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hosts == nil {
		c.hosts = make(map[string]*hostState)
	}
	h := c.hosts[host]
	if err == nil || (wait == 0 && reason == "") {
		if h != nil && err == nil {
			delete(c.hosts, host) // a good answer closes the circuit
		}
		return
	}
	if h == nil {
		h = &hostState{}
		c.hosts[host] = h
	}
	if reason == "connection failure" {
		h.failures++
		wait = connectBackoff << min(h.failures-1, 10)
	}
	wait = min(wait, max)
	if until := now.Add(wait); until.After(h.until) {
		h.until, h.reason = until, reason
	}
}

// backoffFor says how long err asks the master to be left alone, and why;
// a zero reason means err is no reason to back off (a 404, a bad image, a
// rejected token: those concern one photo or one token, not the master).
func backoffFor(err error) (time.Duration, string) {
	var se *StatusError
	switch {
	case err == nil:
		return 0, ""
	case errors.As(err, &se):
		switch {
		case se.Code == http.StatusServiceUnavailable || se.Code == http.StatusTooManyRequests:
			return retryAfter(se.RetryAfter, defaultBusy), fmt.Sprintf("%d with Retry-After %q", se.Code, se.RetryAfter)
		case se.ServerBusy:
			d := se.BackOff
			if d <= 0 {
				d = defaultBusy
			}
			return d, "ErrorServerBusy"
		}
		return 0, ""
	case isConnectionFailure(err):
		return connectBackoff, "connection failure"
	}
	return 0, ""
}

// retryAfter reads a Retry-After value: delay seconds or an HTTP date.
func retryAfter(v string, fallback time.Duration) time.Duration {
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

// isConnectionFailure tells a master that cannot be reached (refused, reset,
// unresolvable, dropped mid-answer) from one that answered. A deadline of
// our own is not one: a slow master is handled by the photo's error timer.
func isConnectionFailure(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	return errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// serverBusy finds EWS's ErrorServerBusy fault in a 500 body and its
// BackOffMilliseconds, matching elements by local name.
func serverBusy(body []byte) (bool, time.Duration) {
	if !strings.Contains(string(body), "ErrorServerBusy") {
		return false, 0
	}
	d := xml.NewDecoder(strings.NewReader(string(body)))
	inBackoff := false
	for {
		tok, err := d.Token()
		if err != nil {
			return true, 0
		}
		switch t := tok.(type) {
		case xml.StartElement:
			inBackoff = false
			if t.Name.Local == "Value" {
				for _, a := range t.Attr {
					if a.Name.Local == "Name" && a.Value == "BackOffMilliseconds" {
						inBackoff = true
					}
				}
			}
		case xml.CharData:
			if inBackoff {
				if ms, err := strconv.Atoi(strings.TrimSpace(string(t))); err == nil && ms > 0 {
					return true, time.Duration(ms) * time.Millisecond
				}
			}
		}
	}
}
