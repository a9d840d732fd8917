package sync_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/backoff"
	"photosync/sync/exchange/exchangetest"
)

// TestBrokenAnswersAreNeverStored: whatever the master sends wrong, the
// last good copy stays stored and served, and the error timer starts.
func TestBrokenAnswersAreNeverStored(t *testing.T) {
	tests := []struct {
		name    string
		fault   func(*exchangetest.Server)
		wantErr string
	}{
		{"connection reset", func(s *exchangetest.Server) { s.SetPhotoBodyFault(exchangetest.BodyReset) }, "exchange: "},
		{"truncated body", func(s *exchangetest.Server) { s.SetPhotoBodyFault(exchangetest.BodyTruncated) }, "exchange: "},
		{"wrong content type", func(s *exchangetest.Server) { s.SetPhotoBodyFault(exchangetest.BodyWrongType) }, "not an image"},
		{"html labelled jpeg", func(s *exchangetest.Server) { s.SetPhotoBodyFault(exchangetest.BodyNotImage) }, "not an image"},
		{"503", func(s *exchangetest.Server) { s.FailPhotos(http.StatusServiceUnavailable, -1) }, "503"},
		{"server busy", func(s *exchangetest.Server) { s.FailPhotos(http.StatusInternalServerError, -1) }, "ErrorServerBusy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			_, good := e.ownPhoto(t, adele, "HR96x96")
			e.sim.SetPhoto(adele) // so a broken answer would differ from the good copy
			e.clock.Advance(7 * time.Hour)
			tt.fault(e.sim)
			e.ownPhoto(t, adele, "HR96x96")
			e.wait(t)

			rec, err := e.store.Get(ctx(t), store.Key{Owner: adele, Size: "HR96x96"})
			if err != nil {
				t.Fatalf("stored record: %v", err)
			}
			if !bytes.Equal(rec.Body, good) || rec.Sum != store.Checksum(good) {
				t.Fatalf("stored bytes changed after a broken answer")
			}
			if rec.Timer.Kind != store.TimerError || !strings.Contains(rec.Error, tt.wantErr) {
				t.Fatalf("timer %v, error %q; want the error timer and %q", rec.Timer.Kind, rec.Error, tt.wantErr)
			}
			resp, body := e.ownPhoto(t, adele, "HR96x96")
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, good) {
				t.Fatalf("served %d, last good copy: %v", resp.StatusCode, bytes.Equal(body, good))
			}
			if cs := resp.Header.Get("Cache-Status"); !strings.HasSuffix(cs, "detail=error") {
				t.Errorf("Cache-Status = %q, want the stale reason", cs)
			}
		})
	}
}

func TestColdPhotoWaitsAtMostTheColdDeadline(t *testing.T) {
	e := newEnv(t, envOptions{engine: func(o *psync.Options) {
		o.ColdDeadline = 100 * time.Millisecond
		o.PullTimeout = 30 * time.Second
	}})
	e.sim.SetPhotoDelay(2 * time.Second)

	resp, _ := e.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("cold photo behind a slow master: %d, want 404 now", resp.StatusCode)
	}
	if cs := resp.Header.Get("Cache-Status"); cs != "photosync; fwd=miss; detail=cold-deadline" {
		t.Errorf("Cache-Status = %q", cs)
	}
	// Answered before the master did: nothing stored yet.
	if _, err := e.store.Get(ctx(t), store.Key{Owner: adele, Size: "HR96x96"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the answer waited for the pull (store: %v)", err)
	}
	sp := e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele+"&size=M", proxy, adele)
	if sp.StatusCode != http.StatusOK || sp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("SharePoint route: %d %s, want the placeholder", sp.StatusCode, sp.Header.Get("Content-Type"))
	}
	if c := e.engine.Stats().ColdTimeouts.Load(); c != 2 {
		t.Errorf("ColdTimeouts = %d, want 2", c)
	}

	e.wait(t) // the pull goes on without its viewers
	resp, _ = e.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusOK || outcome(resp) != "hit" {
		t.Fatalf("after the pull: %d %q, want a hit", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls = %d, want 1", n)
	}
}

func TestBackoffStopsCallsToTheMaster(t *testing.T) {
	e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.Trigger = psync.TriggerAny }})
	e.ownPhoto(t, adele, "HR96x96")
	e.ownPhoto(t, alex, "HR96x96")
	e.clock.Advance(7 * time.Hour)

	// Exchange answers 503 Retry-After: 1 to the first refresh...
	e.sim.FailPhotos(http.StatusServiceUnavailable, -1)
	e.ownPhoto(t, adele, "HR96x96")
	e.wait(t)
	calls := e.photoCalls()
	// ...so for that second nobody calls it, for any photo; the photo still
	// gets its error timer.
	resp, _ := e.ownPhoto(t, alex, "HR96x96")
	e.wait(t)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("cached photo during back-off: %d", resp.StatusCode)
	}
	if n := e.photoCalls(); n != calls {
		t.Fatalf("master calls during back-off = %d, want %d", n, calls)
	}
	rec, _ := e.store.Get(ctx(t), store.Key{Owner: alex, Size: "HR96x96"})
	if rec.Timer.Kind != store.TimerError || !strings.Contains(rec.Error, "backing off") {
		t.Fatalf("record during back-off: timer %v, error %q", rec.Timer.Kind, rec.Error)
	}
	if v := e.sim.BackoffViolations(); v != 0 {
		t.Fatalf("the simulator saw %d requests inside its back-off window", v)
	}

	// Once the back-off and the error timer have passed, calls resume.
	e.sim.ClearFaults()
	e.clock.Advance(2 * time.Hour)
	e.ownPhoto(t, alex, "HR96x96")
	e.wait(t)
	if n := e.photoCalls(); n != calls+1 {
		t.Fatalf("master calls after the back-off = %d, want %d", n, calls+1)
	}
}

// The back-off's refusal is what the engine's error timer reads.
var _ psync.Retryer = (*backoff.Error)(nil)

// TestBackoffRefusalEndsWithTheWindow: a pull the back-off refuses starts
// an error timer that ends with the back-off window (the simulator's
// Retry-After: 1), not the full error expiration, and the owner's next
// request after the window pulls.
func TestBackoffRefusalEndsWithTheWindow(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.ownPhoto(t, adele, "HR96x96")
	e.ownPhoto(t, alex, "HR96x96")
	e.clock.Advance(7 * time.Hour)

	e.sim.FailPhotos(http.StatusServiceUnavailable, -1)
	e.ownPhoto(t, adele, "HR96x96") // Exchange's 503 Retry-After: 1
	e.wait(t)
	refusedAt := e.clock.Now()
	e.ownPhoto(t, alex, "HR96x96") // refused by the back-off, no call
	e.wait(t)
	calls := e.photoCalls()

	tests := []struct {
		owner     string
		wantUntil time.Time
	}{
		{adele, refusedAt.Add(time.Hour)},  // Exchange answered 503: the error timer
		{alex, refusedAt.Add(time.Second)}, // never asked: the back-off's end
	}
	for _, tt := range tests {
		e.wait(t) // the store takes a pull after its viewer is answered
		rec, err := e.store.Get(ctx(t), store.Key{Owner: tt.owner, Size: "HR96x96"})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Timer.Kind != store.TimerError || rec.Timer.Until.After(tt.wantUntil) || rec.Timer.Until.Before(tt.wantUntil.Add(-time.Second)) {
			t.Errorf("%s: timer %v until %s, want the error timer until %s", tt.owner, rec.Timer.Kind,
				rec.Timer.Until.Format(time.RFC3339), tt.wantUntil.Format(time.RFC3339))
		}
	}

	e.sim.ClearFaults()
	e.clock.Advance(2 * time.Second)
	e.ownPhoto(t, alex, "HR96x96") // served stale while it refreshes
	e.wait(t)
	rec, _ := e.store.Get(ctx(t), store.Key{Owner: alex, Size: "HR96x96"})
	if n := e.photoCalls(); n != calls+1 || rec.Timer.Kind != store.TimerSuccess {
		t.Fatalf("alex after the window: %d new master calls, timer %v; want one good pull", n-calls, rec.Timer.Kind)
	}
	resp, _ := e.ownPhoto(t, adele, "HR96x96")
	if n := e.photoCalls(); n != calls+1 || !strings.HasSuffix(resp.Header.Get("Cache-Status"), "detail=error") {
		t.Errorf("adele inside her error timer: %d new master calls, %q; want none", n-calls-1, resp.Header.Get("Cache-Status"))
	}
}

func TestMaxStaleBoundsStaleServing(t *testing.T) {
	e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.MaxStale = 48 * time.Hour }})
	e.ownPhoto(t, adele, "HR96x96")

	e.clock.Advance(47 * time.Hour) // timer ran out long ago, copy not too old
	resp := e.get(t, "/photos/"+adele, proxy, alex)
	if resp.StatusCode != http.StatusOK || outcome(resp) != "stale" {
		t.Fatalf("47h-old copy to another viewer: %d %q", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
	e.clock.Advance(2 * time.Hour)
	resp = e.get(t, "/photos/"+adele, proxy, alex)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Status") != "photosync; fwd=miss; detail=max-stale" {
		t.Fatalf("49h-old copy: %d %q, want 404 with detail=max-stale", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
	resp = e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele, proxy, alex)
	if resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("49h-old copy on the SharePoint route: %s, want the placeholder", resp.Header.Get("Content-Type"))
	}
	if n := e.engine.Stats().TooStale.Load(); n != 2 {
		t.Errorf("TooStale = %d, want 2", n)
	}
	// The owner's own request does not get the old copy either: it waits for
	// the pull.
	resp, _ = e.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusOK || outcome(resp) != "pulled" {
		t.Fatalf("owner after max-stale: %d %q, want a fresh pull", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
}
