package sync_test

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"net/http"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"photosync/store"
	"photosync/store/storetest"
	psync "photosync/sync"
	"photosync/sync/exchange/exchangetest"
	"photosync/web"
)

// lastPhotoRequest returns the simulator's record of its latest GetUserPhoto.
func lastPhotoRequest(t *testing.T, sim *exchangetest.Server) exchangetest.Request {
	t.Helper()
	reqs := sim.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Kind == "photo" {
			return reqs[i]
		}
	}
	t.Fatal("the simulator saw no photo request")
	return exchangetest.Request{}
}

func TestOwnerPullsOnceThenTimerThenRevalidates(t *testing.T) {
	e := newEnv(t, envOptions{})

	resp, first := e.ownPhoto(t, adele, "HR240x240")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d %s", resp.StatusCode, first)
	}
	if img, err := jpeg.Decode(bytes.NewReader(first)); err != nil || img.Bounds().Dx() != 240 {
		t.Fatalf("not a 240px JPEG: %v", err)
	}
	if got := outcome(resp); got != "pulled" {
		t.Errorf("outcome = %q, want pulled", got)
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls after first request = %d, want 1", n)
	}

	// Within UserPhotoExpiration: no master call, however often it is asked.
	for i := 0; i < 5; i++ {
		e.clock.Advance(time.Hour)
		resp, body := e.ownPhoto(t, adele, "HR240x240")
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, first) {
			t.Fatalf("repeat %d: status %d, same bytes %v", i, resp.StatusCode, bytes.Equal(body, first))
		}
		if got := outcome(resp); got != "hit" {
			t.Errorf("repeat %d: outcome = %q, want hit", i, got)
		}
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls within expiration = %d, want 1", n)
	}

	// After it: the copy is served at once (stale-while-revalidate) while one
	// revalidation with If-None-Match is answered 304 without bytes.
	e.clock.Advance(90 * time.Minute)
	resp, body := e.ownPhoto(t, adele, "HR240x240")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, first) {
		t.Fatalf("after expiry: status %d", resp.StatusCode)
	}
	if got := resp.Header.Get("Cache-Status"); got != "photosync; hit; ttl=-1800; detail=revalidating" {
		t.Errorf("after expiry: Cache-Status %q", got)
	}
	e.wait(t)
	if n := e.photoCalls(); n != 2 {
		t.Fatalf("master calls after expiry = %d, want 2", n)
	}
	last := lastPhotoRequest(t, e.sim)
	if last.IfNoneMatch == "" || last.Status != http.StatusNotModified || last.BodyBytes != 0 {
		t.Fatalf("revalidation = %+v, want If-None-Match, 304 and no body", last)
	}
	if s := e.engine.Stats(); s.NotModified.Load() != 1 {
		t.Errorf("NotModified = %d, want 1", s.NotModified.Load())
	}

	// The 304 restarted the timer: still no call an hour later.
	e.clock.Advance(time.Hour)
	e.ownPhoto(t, adele, "HR240x240")
	if n := e.photoCalls(); n != 2 {
		t.Fatalf("master calls after 304 restarted the timer = %d, want 2", n)
	}

	// A change at the master shows only after expiry.
	e.sim.SetPhoto(adele)
	_, body = e.ownPhoto(t, adele, "HR240x240")
	if !bytes.Equal(body, first) {
		t.Fatal("a change at the master showed before the timer ran out")
	}
	e.clock.Advance(6 * time.Hour)
	e.ownPhoto(t, adele, "HR240x240") // stale, and the refresh starts
	e.wait(t)
	resp, body = e.ownPhoto(t, adele, "HR240x240")
	if bytes.Equal(body, first) || outcome(resp) != "hit" {
		t.Fatalf("a change at the master did not show after expiry (%s)", resp.Header.Get("Cache-Status"))
	}
	if resp.Header.Get("ETag") == "" || lastPhotoRequest(t, e.sim).Status != http.StatusOK {
		t.Fatalf("changed photo: ETag %q, last master status %d", resp.Header.Get("ETag"), lastPhotoRequest(t, e.sim).Status)
	}
}

func TestErrorTimerKeepsLastGoodCopy(t *testing.T) {
	tests := []struct {
		name  string
		fault func(sim *exchangetest.Server)
	}{
		{"500", func(sim *exchangetest.Server) { sim.FailPhotos(http.StatusInternalServerError, -1) }},
		{"timeout", func(sim *exchangetest.Server) { sim.SetPhotoDelay(10 * time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.PullTimeout = 300 * time.Millisecond }})
			_, good := e.ownPhoto(t, adele, "HR96x96")
			e.clock.Advance(7 * time.Hour)

			tt.fault(e.sim)
			resp, body := e.ownPhoto(t, adele, "HR96x96")
			e.wait(t)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, good) {
				t.Fatalf("during the failure: status %d, last good copy served: %v", resp.StatusCode, bytes.Equal(body, good))
			}
			if got := outcome(resp); got != "stale" {
				t.Errorf("outcome = %q, want stale", got)
			}
			if got := resp.Header.Get("Cache-Control"); got != "private, max-age=0" {
				t.Errorf("Cache-Control = %q, want max-age=0 on a stale copy", got)
			}
			// A timed-out request reaches the simulator's log only once it
			// notices the client left: wait for it rather than race it.
			calls := waitCalls(t, e, 2)
			rec, err := e.store.Get(ctx(t), store.Key{Owner: adele, Size: "HR96x96"})
			if err != nil || rec.Timer.Kind != store.TimerError || rec.Error == "" {
				t.Fatalf("stored record: timer %v, error %q, %v", rec.Timer.Kind, rec.Error, err)
			}

			// Within UserPhotoErrorExpiration: no master call, good copy served.
			for i := 0; i < 3; i++ {
				e.clock.Advance(15 * time.Minute)
				resp, body := e.ownPhoto(t, adele, "HR96x96")
				if resp.StatusCode != http.StatusOK || !bytes.Equal(body, good) {
					t.Fatalf("within error expiration: status %d", resp.StatusCode)
				}
				if cs := resp.Header.Get("Cache-Status"); !strings.HasSuffix(cs, "; detail=error") {
					t.Errorf("within error expiration: Cache-Status %q", cs)
				}
			}
			if n := e.photoCalls(); n != calls {
				t.Fatalf("master calls within error expiration = %d, want %d", n, calls)
			}

			// After it: asked again; once the master is back, fresh again.
			e.sim.ClearFaults()
			e.clock.Advance(20 * time.Minute)
			e.ownPhoto(t, adele, "HR96x96") // stale, and the refresh starts
			e.wait(t)
			resp, body = e.ownPhoto(t, adele, "HR96x96")
			if n := e.photoCalls(); n != calls+1 {
				t.Fatalf("master calls after error expiration = %d, want %d", n, calls+1)
			}
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, good) || outcome(resp) != "hit" {
				t.Fatalf("after recovery: %d %q", resp.StatusCode, outcome(resp))
			}
			rec, _ = e.store.Get(ctx(t), store.Key{Owner: adele, Size: "HR96x96"})
			if rec.Timer.Kind != store.TimerSuccess || rec.Error != "" {
				t.Fatalf("after recovery: timer %v, error %q", rec.Timer.Kind, rec.Error)
			}
		})
	}
}

func TestColdErrorServesNothingAndStartsErrorTimer(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.sim.FailPhotos(http.StatusServiceUnavailable, -1)
	resp, _ := e.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("cold photo with the master down: %d, want 404", resp.StatusCode)
	}
	resp = e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele+"&size=M", proxy, adele)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("userphoto.aspx with the master down: %d %s, want the placeholder", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls = %d, want 1 (the error timer stops the second)", n)
	}
}

func TestTriggerPolicy(t *testing.T) {
	tests := []struct {
		trigger   psync.Trigger
		wantCalls int
		wantType  string
	}{
		{psync.TriggerSelf, 0, "image/png"}, // the placeholder
		{psync.TriggerAny, 1, "image/jpeg"}, // the photo
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.trigger), func(t *testing.T) {
			e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.Trigger = tt.trigger }})
			resp := e.get(t, "/_layouts/15/userphoto.aspx?accountname="+adele+"&size=L", proxy, alex)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tt.wantType {
				t.Fatalf("another viewer: %d %s, want %s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.wantType)
			}
			if n := e.photoCalls(); n != tt.wantCalls {
				t.Fatalf("master calls = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestSelfTriggerServesStaleCopyToOthers(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, good := e.ownPhoto(t, adele, "HR96x96")
	e.clock.Advance(30 * time.Hour)
	resp := e.get(t, "/photos/"+adele, proxy, alex)
	body := readAll(t, resp)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, good) || outcome(resp) != "stale" {
		t.Fatalf("other viewer after expiry: %d, outcome %q", resp.StatusCode, outcome(resp))
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls = %d, want 1: only the owner may pull", n)
	}
}

func TestImportDisabledNeverPulls(t *testing.T) {
	e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.ImportEnabled = false }})
	resp, _ := e.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusNotFound || e.photoCalls() != 0 {
		t.Fatalf("import off: %d with %d master calls", resp.StatusCode, e.photoCalls())
	}
}

func TestNoPhotoIsRemembered(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := 0; i < 3; i++ {
		resp, _ := e.ownPhoto(t, nobody, "HR96x96")
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("no photo: %d, want 404", resp.StatusCode)
		}
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls = %d, want 1: a 404 starts UserPhotoExpiration", n)
	}
	e.wait(t) // the store takes a pull after its viewer is answered
	rec, err := e.store.Get(ctx(t), store.Key{Owner: nobody, Size: "HR96x96"})
	if err != nil || rec.State != store.StateNoPhoto || rec.Timer.Kind != store.TimerSuccess {
		t.Fatalf("record = %+v, %v", rec, err)
	}

	// A photo deleted at the master is dropped here after expiry.
	e.ownPhoto(t, adele, "HR96x96")
	e.sim.DeletePhoto(adele)
	e.clock.Advance(7 * time.Hour)
	e.ownPhoto(t, adele, "HR96x96") // the old copy, once, while the refresh runs
	e.wait(t)
	for i := 0; i < 2; i++ {
		if resp, _ := e.ownPhoto(t, adele, "HR96x96"); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("deleted photo: %d, want 404", resp.StatusCode)
		}
		e.clock.Advance(7 * time.Hour) // no older copy comes back after later pulls either
		e.ownPhoto(t, adele, "HR96x96")
		e.wait(t)
	}
	rec, _ = e.store.Get(ctx(t), store.Key{Owner: adele, Size: "HR96x96"})
	if rec.State != store.StateNoPhoto || len(rec.Body) != 0 {
		t.Fatalf("deleted photo still stored: state %v, %d bytes", rec.State, len(rec.Body))
	}
}

func TestConcurrentColdRequestsMakeOneMasterCall(t *testing.T) {
	e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.Trigger = psync.TriggerAny }})
	e.sim.SetPhotoDelay(100 * time.Millisecond) // keep the flight open while the others arrive

	const n = 100
	var wg stdsync.WaitGroup
	start := make(chan struct{})
	results := make([][]byte, n)
	statuses := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp := e.get(t, "/photos/"+adele+"?size=HR120x120", proxy, "")
			statuses[i] = resp.StatusCode
			results[i] = readAll(t, resp)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if statuses[i] != http.StatusOK || !bytes.Equal(results[i], results[0]) {
			t.Fatalf("request %d: status %d", i, statuses[i])
		}
	}
	if calls := e.photoCalls(); calls != 1 {
		t.Fatalf("master calls for %d concurrent cold requests = %d, want 1", n, calls)
	}
	if c := e.engine.Stats().Coalesced.Load(); c == 0 {
		t.Errorf("no request was coalesced")
	}
}

func TestRejectedTokenIsAnErrorWithTheReason(t *testing.T) {
	// Tokens minted two hours ago with a one-hour lifetime have expired:
	// the simulator refuses them and the pull fails with its reason.
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	e := newEnv(t, envOptions{oauthNow: past})
	_, err := e.engine.Photo(ctx(t), adele, "HR96x96", adele)
	if !errors.Is(err, psync.ErrNoPhoto) {
		t.Fatalf("err = %v, want ErrNoPhoto", err)
	}
	e.wait(t) // the store takes a pull after its viewer is answered
	rec, err := e.store.Get(ctx(t), store.Key{Owner: adele, Size: "HR96x96"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Timer.Kind != store.TimerError || !strings.Contains(rec.Error, "401") {
		t.Fatalf("record error = %q, timer %v; want a 401 and the error timer", rec.Error, rec.Timer.Kind)
	}
}

func TestTwoInstancesShareRedis(t *testing.T) {
	url := storetest.RedisURL(t)
	prefix := fmt.Sprintf("test:%s:%d:", t.Name(), time.Now().UnixNano())
	open := func(t testing.TB, now func() time.Time) store.Store {
		r, err := store.OpenRedis(ctx(t), url, store.RedisOptions{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return store.NewHot(r, 8<<20, store.HotOptions{})
	}
	a := newEnv(t, envOptions{store: open, engine: func(o *psync.Options) { o.Now = nil }})
	_, first := a.ownPhoto(t, adele, "HR96x96")

	// A second photosync on the same Redis, in front of the same Exchange.
	b := newEnv(t, envOptions{store: open, engine: func(o *psync.Options) { o.Now = nil }})
	b.sim.Close()
	resp, body := b.ownPhoto(t, adele, "HR96x96")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, first) || outcome(resp) != "hit" {
		t.Fatalf("second instance: %d, outcome %q, same bytes %v", resp.StatusCode, outcome(resp), bytes.Equal(body, first))
	}
	if a.photoCalls() != 1 {
		t.Fatalf("master calls = %d, want 1", a.photoCalls())
	}
}

// waitCalls waits (generously) until the simulator has logged want photo
// requests, then returns its count.
func waitCalls(t *testing.T, e *env, want int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.photoCalls() < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.photoCalls(); n != want {
		t.Fatalf("master calls = %d, want %d", n, want)
	}
	return want
}

// outcome says how a response was served: hit, stale, pulled or coalesced.
func outcome(resp *http.Response) string { return web.OutcomeOf(resp.Header.Get("Cache-Status")) }

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
