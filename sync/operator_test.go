package sync_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	psync "photosync/sync"
	"photosync/sync/photo"
)

func TestRefreshOutcomes(t *testing.T) {
	e := newEnv(t, envOptions{})
	steps := []struct {
		name      string
		owner     string
		force     bool
		advance   time.Duration
		fail      bool
		want      psync.RefreshOutcome
		wantCalls int // master calls so far
	}{
		{name: "cold photo pulls, whatever the trigger", owner: adele, want: psync.RefreshPulled, wantCalls: 1},
		{name: "fresh photo is skipped", owner: adele, want: psync.RefreshSkipped, wantCalls: 1},
		{name: "force asks again and gets a 304", owner: adele, force: true, want: psync.RefreshNotModified, wantCalls: 2},
		{name: "timer ran out: 304", owner: adele, advance: 7 * time.Hour, want: psync.RefreshNotModified, wantCalls: 3},
		{name: "no photo in Exchange", owner: nobody, want: psync.RefreshNoPhoto, wantCalls: 4},
		{name: "master fails", owner: alex, fail: true, want: psync.RefreshFailed, wantCalls: 5},
		{name: "error timer is the back-off", owner: alex, want: psync.RefreshSkipped, wantCalls: 5},
		{name: "the master's back-off holds even when forced", owner: alex, force: true, want: psync.RefreshFailed, wantCalls: 5},
		{name: "forced through the error timer after the back-off", owner: alex, force: true, advance: 2 * time.Second, want: psync.RefreshPulled, wantCalls: 6},
	}
	for _, s := range steps {
		e.clock.Advance(s.advance)
		if s.fail {
			e.sim.FailPhotos(http.StatusInternalServerError, 1)
		}
		got, err := e.engine.Refresh(ctx(t), s.owner, "HR96x96", s.force)
		if (err != nil) != (s.want == psync.RefreshFailed) {
			t.Errorf("%s: err = %v", s.name, err)
		}
		if got != s.want || e.photoCalls() != s.wantCalls {
			t.Errorf("%s: %v after %d master calls, want %v after %d", s.name, got, e.photoCalls(), s.want, s.wantCalls)
		}
	}
}

func TestInspectAndForget(t *testing.T) {
	e := newEnv(t, envOptions{})
	if _, err := e.engine.Refresh(ctx(t), adele, "HR240x240", false); err != nil {
		t.Fatal(err)
	}
	r, err := e.engine.Inspect(ctx(t), adele)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sizes) != len(photo.Sizes) {
		t.Fatalf("%d sizes, want %d", len(r.Sizes), len(photo.Sizes))
	}
	jpeg, etag, _ := e.sim.PhotoBytes(adele, "HR240x240")
	for _, s := range r.Sizes {
		if s.Size != "HR240x240" {
			if s.Stored {
				t.Errorf("%s reported stored", s.Size)
			}
			continue
		}
		want := psync.SizeReport{Size: s.Size, Stored: true, State: "photo", ETag: s.ETag, MasterETag: strings.Trim(etag, `"`),
			Bytes: len(jpeg), ContentType: "image/jpeg", Checksum: s.Checksum, PulledAt: e.clock.Now(),
			Timer: "expiration", TimerUntil: e.clock.Now().Add(6 * time.Hour), Source: "exchange"}
		if s != want || s.ETag == "" || len(s.Checksum) != 64 {
			t.Errorf("report\n%+v, want\n%+v", s, want)
		}
	}

	if err := e.engine.Forget(ctx(t), adele); err != nil {
		t.Fatal(err)
	}
	r, _ = e.engine.Inspect(ctx(t), adele)
	for _, s := range r.Sizes {
		if s.Stored {
			t.Errorf("%s still stored after Forget", s.Size)
		}
	}
	resp, _ := e.ownPhoto(t, adele, "HR240x240")
	if got := outcome(resp); got != "pulled" || e.photoCalls() != 2 {
		t.Errorf("after Forget: outcome %q after %d master calls, want pulled after 2", got, e.photoCalls())
	}
}

func TestWarmCounts(t *testing.T) {
	e := newEnv(t, envOptions{})
	var last psync.WarmCounts
	opts := psync.WarmOptions{Sizes: []string{"HR48x48", "HR96x96"}, Concurrency: 3,
		Progress: func(c psync.WarmCounts) { last = c }}
	got, err := e.engine.Warm(ctx(t), []string{adele, alex, nobody}, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := psync.WarmCounts{Total: 6, Pulled: 4, NoPhoto: 2}
	if got != want || last != want {
		t.Errorf("first warm %+v (last progress %+v), want %+v", got, last, want)
	}
	got, _ = e.engine.Warm(ctx(t), []string{adele, alex, nobody}, opts)
	if want := (psync.WarmCounts{Total: 6, Skipped: 6}); got != want || e.photoCalls() != 6 {
		t.Errorf("second warm %+v after %d calls, want %+v after 6", got, e.photoCalls(), want)
	}
}
