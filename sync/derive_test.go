package sync_test

import (
	"bytes"
	"image"
	"net/http"
	"testing"
	"time"

	psync "photosync/sync"
	"photosync/sync/exchange/exchangetest"
	"photosync/sync/photo"
)

func deriving(o *psync.Options) { o.Derive = true }

func TestAllNineSizesCostOneMasterCall(t *testing.T) {
	e := newEnv(t, envOptions{engine: deriving})
	served := map[string][]byte{}
	for round := 0; round < 2; round++ {
		for _, size := range photo.Sizes {
			resp, body := e.ownPhoto(t, adele, size)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", size, resp.StatusCode)
			}
			cfg, format, err := image.DecodeConfig(bytes.NewReader(body))
			if err != nil || format != "jpeg" {
				t.Fatalf("%s: %v %s", size, err, format)
			}
			if want := pixelsOf(size); cfg.Width != want || cfg.Height != want {
				t.Errorf("%s: %dx%d, want %dx%d", size, cfg.Width, cfg.Height, want, want)
			}
			if round == 1 && (outcome(resp) != "hit" || !bytes.Equal(body, served[size])) {
				t.Errorf("%s second round: %q", size, resp.Header.Get("Cache-Status"))
			}
			served[size] = body
		}
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls for nine sizes = %d, want 1", n)
	}
	if n := e.engine.Stats().Derived.Load(); n != int64(len(photo.Sizes)-1) {
		t.Errorf("sizes derived = %d, want %d (all but the master size, once each)", n, len(photo.Sizes)-1)
	}
	if r := lastPhotoRequest(t, e.sim); r.Size != photo.MasterSize {
		t.Errorf("the master was asked for %s, want %s", r.Size, photo.MasterSize)
	}

	// After expiry one revalidation of the master copy (304) renews every
	// size, and unchanged sizes are not scaled again: same bytes, same ETag.
	e.clock.Advance(7 * time.Hour)
	for _, size := range photo.Sizes {
		e.ownPhoto(t, adele, size)
	}
	e.wait(t)
	for _, size := range photo.Sizes {
		resp, body := e.ownPhoto(t, adele, size)
		if outcome(resp) != "hit" || !bytes.Equal(body, served[size]) {
			t.Errorf("%s after revalidation: %q, same bytes %v", size, resp.Header.Get("Cache-Status"), bytes.Equal(body, served[size]))
		}
	}
	if n := e.photoCalls(); n != 2 || lastPhotoRequest(t, e.sim).Status != http.StatusNotModified {
		t.Fatalf("master calls after expiry = %d (last %d), want 2 with a 304", n, lastPhotoRequest(t, e.sim).Status)
	}
}

func TestDerivingNeverUpscales(t *testing.T) {
	e := newEnv(t, envOptions{engine: deriving})
	e.sim.AddUser(exchangetest.User{Email: "small@contoso.com", Name: "Small", Photo: true, MaxSize: 96})
	for _, tt := range []struct {
		size string
		want int
	}{{"HR48x48", 48}, {"HR96x96", 96}, {"HR240x240", 96}, {"HR648x648", 96}} {
		resp, body := e.ownPhoto(t, "small@contoso.com", tt.size)
		cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
		if resp.StatusCode != http.StatusOK || err != nil || cfg.Width != tt.want {
			t.Errorf("%s: %d, %v, %d px; want %d px", tt.size, resp.StatusCode, err, cfg.Width, tt.want)
		}
	}
	if n := e.photoCalls(); n != 1 {
		t.Fatalf("master calls = %d, want 1", n)
	}
}

func TestDerivedSizesFollowTheMasterCopy(t *testing.T) {
	e := newEnv(t, envOptions{engine: deriving})
	// No photo: every size says so after one call.
	for _, size := range []string{"HR48x48", "HR240x240"} {
		if resp, _ := e.ownPhoto(t, nobody, size); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("no photo, %s: %d", size, resp.StatusCode)
		}
	}
	// A failing master: the error timer covers the derived sizes too.
	e.sim.FailPhotos(http.StatusBadGateway, -1)
	if resp, _ := e.ownPhoto(t, alex, "HR120x120"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("failing master, cold: %d", resp.StatusCode)
	}
	if resp, _ := e.ownPhoto(t, alex, "HR64x64"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("failing master, other size: %d", resp.StatusCode)
	}
	if n := e.photoCalls(); n != 2 {
		t.Fatalf("master calls = %d, want 2 (one per person: the error timer holds)", n)
	}
}

func TestDeriveOffAsksForEachSize(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, size := range photo.Sizes {
		e.ownPhoto(t, adele, size)
	}
	if n := e.photoCalls(); n != len(photo.Sizes) {
		t.Fatalf("master calls without derivation = %d, want %d", n, len(photo.Sizes))
	}
}

func pixelsOf(size string) int {
	n := 0
	for _, c := range size[2:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func TestForcedRefreshOfADerivedSizeReachesTheMaster(t *testing.T) {
	e := newEnv(t, envOptions{engine: deriving})
	if got, err := e.engine.Refresh(ctx(t), alex, "HR96x96", false); err != nil || got != psync.RefreshPulled {
		t.Fatalf("Refresh = %v, %v", got, err)
	}
	if got, err := e.engine.Refresh(ctx(t), alex, "HR96x96", true); err != nil || got != psync.RefreshNotModified {
		t.Fatalf("forced Refresh = %v, %v", got, err)
	}
	if n := e.photoCalls(); n != 2 || lastPhotoRequest(t, e.sim).Status != http.StatusNotModified {
		t.Fatalf("master calls = %d, want 2, the second a 304", n)
	}
}
