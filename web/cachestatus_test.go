package web

import (
	"testing"
	"time"

	psync "photosync/sync"
	"photosync/sync/photo"
)

// TestCacheStatus: every Cache-Status value the README's table lists, from
// the engine's Photo it describes, and what OutcomeOf reads back from it.
func TestCacheStatus(t *testing.T) {
	body := []byte("jpeg")
	tests := []struct {
		name    string
		a       answer
		want    string
		outcome string
	}{
		{"hit", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomeHit, MaxAge: time.Hour}},
			"photosync; hit; ttl=3600", "hit"},
		{"revalidating", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomeStale, Stale: psync.StaleRevalidating, Expired: 2 * time.Minute}},
			"photosync; hit; ttl=-120; detail=revalidating", "stale"},
		{"just expired reads stale", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomeStale, Stale: psync.StaleRevalidating}},
			"photosync; hit; ttl=-1; detail=revalidating", "stale"},
		{"error timer", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomeStale, Stale: psync.StaleError, Expired: 90 * time.Minute}},
			"photosync; hit; ttl=-5400; detail=error", "stale"},
		{"not owner", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomeStale, Stale: psync.StaleNotOwner, Expired: time.Minute}},
			"photosync; hit; ttl=-60; detail=not-owner", "stale"},
		{"pulled", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomePulled, MaxAge: 6 * time.Hour, Answered: true, Answer: photo.StatusPhoto}},
			"photosync; fwd=miss; fwd-status=200; stored; ttl=21600", "pulled"},
		{"revalidated by another pull", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomeCoalesced, MaxAge: 6 * time.Hour, Answered: true, Answer: photo.StatusNotModified}},
			"photosync; fwd=stale; fwd-status=304; stored; collapsed; ttl=21600", "coalesced"},
		{"pulled: no photo", answer{Photo: psync.Photo{Outcome: psync.OutcomePulled, MaxAge: 6 * time.Hour, Answered: true, Answer: photo.StatusNoPhoto}},
			"photosync; fwd=miss; fwd-status=404; stored; ttl=21600", "pulled"},
		{"pulled: deleted on purpose", answer{Photo: psync.Photo{Outcome: psync.OutcomePulled, MaxAge: 6 * time.Hour, Answered: true, Answer: photo.StatusDeleted}},
			"photosync; fwd=miss; fwd-status=404; stored; ttl=21600", "pulled"},
		{"derived, no source asked", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomePulled, MaxAge: 6 * time.Hour}},
			"photosync; fwd=miss; stored; ttl=21600", "pulled"},
		{"cold deadline", answer{Photo: psync.Photo{Outcome: psync.OutcomeStale, Stale: psync.StaleColdDeadline}},
			"photosync; fwd=miss; detail=cold-deadline", "stale"},
		{"cold deadline placeholder", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomeStale, Stale: psync.StaleColdDeadline, MaxAge: time.Minute}, placeholder: true},
			"photosync; fwd=miss; detail=cold-deadline-placeholder", "stale"},
		{"no photo placeholder", answer{Photo: psync.Photo{Body: body, Outcome: psync.OutcomePulled, MaxAge: time.Minute, Answered: true, Answer: photo.StatusNoPhoto}, placeholder: true},
			"photosync; fwd=miss; fwd-status=404; stored; detail=placeholder", "pulled"},
		{"max stale", answer{Photo: psync.Photo{Outcome: psync.OutcomeStale, Stale: psync.StaleTooOld}},
			"photosync; fwd=miss; detail=max-stale", "stale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cacheStatus(tt.a)
			if got != tt.want {
				t.Errorf("cacheStatus = %q, want %q", got, tt.want)
			}
			if o := OutcomeOf(got); o != tt.outcome {
				t.Errorf("OutcomeOf(%q) = %q, want %q", got, o, tt.outcome)
			}
		})
	}
	if o := OutcomeOf("nginx; hit"); o != "" {
		t.Errorf("OutcomeOf another cache's value = %q, want \"\"", o)
	}
}
