package sync_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/photo"
)

// TestHostileETags lets the master send each ETag: one that is an
// entity-tag of at most 256 bytes is kept and sent back as it was; any
// other is dropped, and the next pull is unconditional and gets the photo.
func TestHostileETags(t *testing.T) {
	tests := []struct {
		name, etag string
		kept       string // the opaque part stored, "" for none
	}{
		{"strong", `"abc123"`, "abc123"},
		{"weak", `W/"abc123"`, "abc123"},
		{"256 bytes", `"` + strings.Repeat("a", 254) + `"`, strings.Repeat("a", 254)},
		{"257 bytes", `"` + strings.Repeat("a", 255) + `"`, ""},
		{"64 KiB", `"` + strings.Repeat("a", 64<<10) + `"`, ""},
		{"a list holding a star", `", *, "`, ""},
		{"bare star", `*`, ""},
		{"unquoted", `abc123`, ""},
		{"a list", `"a", "b"`, ""},
		{"a quote inside", `"a"b"`, ""},
		{"a control character", "\"a\x01b\"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			e.sim.SetPhotoETag(tt.etag)
			if got, err := e.engine.Refresh(ctx(t), adele, photo.DefaultSize, false); err != nil || got != psync.RefreshPulled {
				t.Fatalf("first pull: %v, %v", got, err)
			}
			rec, err := e.store.Get(ctx(t), store.Key{Owner: adele, Size: photo.DefaultSize})
			if err != nil {
				t.Fatal(err)
			}
			if rec.ETag != tt.kept {
				t.Errorf("stored ETag %.40q, want %.40q", rec.ETag, tt.kept)
			}
			e.clock.Advance(7 * time.Hour)
			got, err := e.engine.Refresh(ctx(t), adele, photo.DefaultSize, false)
			sent := lastPhotoRequest(t, e.sim)
			want, wantOutcome := "", psync.RefreshPulled
			if tt.kept != "" {
				want, wantOutcome = `"`+tt.kept+`"`, psync.RefreshNotModified
			}
			if sent.IfNoneMatch != want {
				t.Errorf("second pull sent If-None-Match %.40q, want %.40q", sent.IfNoneMatch, want)
			}
			if tt.kept == "" && got == psync.RefreshNotModified {
				wantOutcome = got // the same bytes again: Refresh says so
			}
			if err != nil || got != wantOutcome || len(sent.IfNoneMatch) > 260 {
				t.Errorf("second pull: %v, %v (status %d); want %v", got, err, sent.Status, wantOutcome)
			}
			if tt.kept == "" && sent.Status != http.StatusOK {
				t.Errorf("an unconditional pull got %d", sent.Status)
			}
		})
	}
}
