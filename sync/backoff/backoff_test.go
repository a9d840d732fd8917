package backoff

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"photosync/internal/testclock"
)

type throttled struct {
	wait time.Duration
	ok   bool
}

func (t throttled) Error() string { return "throttled" }
func (t throttled) Backoff() (time.Duration, string, bool) {
	return t.wait, "asked", t.ok
}

func TestCircuit(t *testing.T) {
	connErr := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name    string
		errs    []error
		after   time.Duration
		backed  bool
		maxWait time.Duration
	}{
		{"a good answer leaves it closed", []error{nil}, 0, false, 0},
		{"an ordinary error leaves it closed", []error{errors.New("404")}, 0, false, 0},
		{"throttled opens it for its period", []error{throttled{2 * time.Minute, true}}, time.Minute, true, 0},
		{"and it ends with the period", []error{throttled{2 * time.Minute, true}}, 2*time.Minute + time.Second, false, 0},
		{"a throttling error that declines does not", []error{throttled{time.Minute, false}}, 0, false, 0},
		{"no period means DefaultBusy", []error{throttled{0, true}}, DefaultBusy - time.Second, true, 0},
		{"wrapped still counts", []error{fmt.Errorf("exchange: %w", throttled{time.Minute, true})}, 30 * time.Second, true, 0},
		{"capped at Max", []error{throttled{time.Hour, true}}, 11 * time.Minute, false, 10 * time.Minute},
		{"connection failure", []error{connErr}, ConnectFailure - time.Second, true, 0},
		{"connection failures double", []error{connErr, connErr, connErr}, 3 * ConnectFailure, true, 0},
		{"a good answer closes it", []error{connErr, nil}, 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := testclock.New()
			c := Circuit{Now: clk.Now, Max: tc.maxWait}
			for _, err := range tc.errs {
				c.Record("mail.contoso.com", err)
			}
			clk.Advance(tc.after)
			err := c.Check("mail.contoso.com")
			if got := errors.Is(err, ErrBackoff); got != tc.backed {
				t.Fatalf("backed off = %v (%v), want %v", got, err, tc.backed)
			}
			if c.Check("other.contoso.com") != nil {
				t.Fatal("another host is backed off too")
			}
			if n := c.Active(); (n == 1) != tc.backed {
				t.Fatalf("Active() = %d", n)
			}
			var be *Error
			if tc.backed && (!errors.As(err, &be) || be.Host != "mail.contoso.com") {
				t.Fatalf("err = %#v", err)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"120", 2 * time.Minute},
		{" 5 ", 5 * time.Second},
		{"", time.Second},
		{"soon", time.Second},
		{"-3", time.Second},
	} {
		if got := RetryAfter(tc.in, time.Second); got != tc.want {
			t.Errorf("RetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	if got := RetryAfter(future, 0); got < 59*time.Minute || got > time.Hour {
		t.Errorf("RetryAfter(date) = %v", got)
	}
}
