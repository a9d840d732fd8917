package sync_test

import (
	"errors"
	"testing"
	"time"

	"photosync/store"
	psync "photosync/sync"
)

// TestDisplayNameKeptWithTheRecord: the name the source that answered gave
// (here Exchange's Autodiscover UserDisplayName) is stored with the record
// and comes back with the photo, and with ErrNoPhoto, from the store too;
// derived sizes carry the master copy's.
func TestDisplayNameKeptWithTheRecord(t *testing.T) {
	for _, derive := range []bool{false, true} {
		e := newEnv(t, envOptions{engine: func(o *psync.Options) { o.Derive = derive }})
		tests := []struct {
			owner, name string
			photo       bool
		}{
			{adele, "Adele Vance", true},
			{nobody, "Lee Gu", false},
		}
		for _, tt := range tests {
			for range 2 { // pulled, then from the store
				p, err := e.engine.Photo(ctx(t), tt.owner, "HR96x96", tt.owner)
				if tt.photo != (err == nil) || (!tt.photo && !errors.Is(err, psync.ErrNoPhoto)) {
					t.Fatalf("derive %v, %s: %v", derive, tt.owner, err)
				}
				if p.Name != tt.name {
					t.Errorf("derive %v, %s: name %q, want %q (outcome %v)", derive, tt.owner, p.Name, tt.name, p.Outcome)
				}
			}
			e.wait(t) // a viewer is answered before the store has taken the pull
			rec, err := e.store.Get(ctx(t), store.Key{Owner: tt.owner, Size: "HR96x96"})
			if err != nil || rec.Name != tt.name {
				t.Errorf("derive %v, %s: stored name %q (%v)", derive, tt.owner, rec.Name, err)
			}
		}
		// After the timer, a not-modified pull keeps the name.
		e.clock.Advance(7 * time.Hour)
		if p, err := e.engine.Photo(ctx(t), adele, "HR96x96", adele); err != nil || p.Name != "Adele Vance" {
			t.Errorf("derive %v, after revalidation: %q, %v", derive, p.Name, err)
		}
	}
}
