package sync_test

import (
	"bytes"
	"testing"
	"time"

	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/graph"
	"photosync/sync/graph/graphtest"
	"photosync/sync/photo"
)

// TestGraphChain runs the engine over Exchange (the simulator) and Graph
// (its simulator), in both orders of need: Graph alone, Exchange answering
// first, and Graph answering for a mailbox without a photo.
func TestGraphChain(t *testing.T) {
	const clientID, secret = "6f0b5a1e-3c2d-4b8a-9e7f-1a2b3c4d5e6f", "s3cret-value"
	sim := graphtest.NewServer(graphtest.Options{Apps: []graphtest.App{{ClientID: clientID, Secret: secret}}})
	t.Cleanup(sim.Close)
	sim.SetPhoto(adele, 648)
	sim.SetPhoto(nobody, 648) // no mailbox photo, a Graph photo
	graph96, _, _ := sim.PhotoBytes(adele, "96x96")
	nobody96, _, _ := sim.PhotoBytes(nobody, "96x96")

	tests := []struct {
		name         string
		graphOnly    bool
		owner        string
		want         []byte
		wantSrc      string
		fromExchange bool
	}{
		{"graph alone", true, adele, graph96, "graph", false},
		{"exchange has the photo", false, adele, nil, "exchange", true},
		{"no mailbox photo: graph's", false, nobody, nobody96, "graph", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := graph.New(graph.Options{ClientID: clientID, ClientSecret: secret, TokenURL: sim.TokenURL(),
				BaseURL: sim.URL(), Client: sim.Client(), Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, envOptions{engine: func(o *psync.Options) {
				if tt.graphOnly {
					o.Sources = []photo.Source{src}
				} else {
					o.Sources = append(o.Sources, src)
				}
			}})
			want := tt.want
			if tt.fromExchange {
				want, _, _ = e.sim.PhotoBytes(tt.owner, "HR96x96")
			}
			before := sim.PhotoRequests()
			p, err := e.engine.Photo(ctx(t), tt.owner, "HR96x96", tt.owner)
			if err != nil || !bytes.Equal(p.Body, want) {
				t.Fatalf("Photo: %v, %d bytes; want the %d bytes from %s", err, len(p.Body), len(want), tt.wantSrc)
			}
			e.wait(t) // the store takes a pull after its viewer is answered
			rec, err := e.store.Get(ctx(t), store.Key{Owner: tt.owner, Size: "HR96x96"})
			if err != nil || rec.Source != tt.wantSrc {
				t.Errorf("stored source %q (%v), want %q", rec.Source, err, tt.wantSrc)
			}
			calls := sim.PhotoRequests() - before
			if wantCalls := map[bool]int{true: 0, false: 1}[tt.fromExchange]; calls != wantCalls {
				t.Errorf("%d Graph photo calls, want %d", calls, wantCalls)
			}
		})
	}
}
