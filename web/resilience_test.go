package web_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	psync "photosync/sync"
)

// What each route answers when the engine has nothing to serve in time, or
// only a copy too old to serve.

func TestColdPhotoWaitsAtMostTheColdDeadline(t *testing.T) {
	e := newEnv(t, envOptions{engine: func(o *psync.Options) {
		o.ColdDeadline = 100 * time.Millisecond
		o.PullTimeout = 30 * time.Second
	}})
	e.source.setDelay(time.Second)

	resp, _ := e.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("cold photo behind a slow source: %d, want 404 now", resp.StatusCode)
	}
	if cs := resp.Header.Get("Cache-Status"); cs != "photosync; fwd=miss; detail=cold-deadline" {
		t.Errorf("Cache-Status = %q", cs)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", cc)
	}
	sp := e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele+"&size=M", proxy, adele)
	if sp.StatusCode != http.StatusOK || sp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("SharePoint route: %d %s, want the placeholder", sp.StatusCode, sp.Header.Get("Content-Type"))
	}
	if cs := sp.Header.Get("Cache-Status"); cs != "photosync; fwd=miss; detail=cold-deadline-placeholder" {
		t.Errorf("placeholder Cache-Status = %q", cs)
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
		t.Fatalf("source calls = %d, want 1", n)
	}
}

func TestMaxStaleBoundsStaleServing(t *testing.T) {
	e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.MaxStale = 48 * time.Hour }})
	e.ownPhoto(t, adele, "HR96x96")

	e.clock.Advance(47 * time.Hour) // timer ran out long ago, copy not too old
	resp := e.get(t, "/photos/"+adele, proxy, alex)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Status") != "photosync; hit; ttl=-147600; detail=not-owner" {
		t.Fatalf("47h-old copy to another viewer: %d %q", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
	e.clock.Advance(2 * time.Hour)
	resp = e.get(t, "/photos/"+adele, proxy, alex)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Status") != "photosync; fwd=miss; detail=max-stale" {
		t.Fatalf("49h-old copy: %d %q, want 404 with detail=max-stale", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
	resp = e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele, proxy, alex)
	if resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("Cache-Status") != "photosync; fwd=miss; detail=max-stale-placeholder" {
		t.Fatalf("49h-old copy on the SharePoint route: %s %q, want the placeholder", resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Status"))
	}
	if n := e.engine.Stats().TooStale.Load(); n != 2 {
		t.Errorf("TooStale = %d, want 2", n)
	}
	// The owner's own request does not get the old copy either: it waits for
	// the pull.
	resp, _ = e.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Status") != "photosync; fwd=stale; fwd-status=304; stored; ttl=21600" {
		t.Fatalf("owner after max-stale: %d %q, want a revalidating pull", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
}

// TestFailedPullServesLastGoodCopy: while the error timer runs the last
// good copy is served, and Cache-Status says why.
func TestFailedPullServesLastGoodCopy(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, good := e.ownPhoto(t, adele, "HR96x96")
	e.clock.Advance(7 * time.Hour)
	e.source.setFail(errors.New("exchange: 503 Service Unavailable"))

	resp, body := e.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusOK || string(body) != string(good) || resp.Header.Get("Cache-Status") != "photosync; hit; ttl=-3600; detail=revalidating" {
		t.Fatalf("expired copy: %d %q", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}
	e.wait(t)
	e.clock.Advance(30 * time.Minute) // inside the error timer
	resp, body = e.ownPhoto(t, adele, "HR96x96")
	if cs := resp.Header.Get("Cache-Status"); resp.StatusCode != http.StatusOK || string(body) != string(good) || cs != "photosync; hit; ttl=-5400; detail=error" {
		t.Fatalf("during the error timer: %d %q, want the last good copy", resp.StatusCode, cs)
	}
	if got := maxAge(t, resp); got != 0 {
		t.Errorf("max-age of a stale copy = %d, want 0", got)
	}
}
