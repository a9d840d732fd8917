package sync_test

import "testing"

// BenchmarkMiss is a pull: Autodiscover (cached), token (cached) and a
// GetUserPhoto round trip to the simulator, then the store write.
func BenchmarkMiss(b *testing.B) {
	e := newEnv(b, envOptions{})
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		e.clock.Advance(7 * 3600e9) // every photo expired: each request pulls (a 304)
		if _, err := e.engine.Refresh(ctx, adele, "HR96x96", false); err != nil {
			b.Fatal(err)
		}
	}
}
