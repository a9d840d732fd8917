package sync

import (
	"context"
	"fmt"
	gosync "sync"
	"testing"

	"photosync/sync/photo"
	"photosync/sync/photo/phototest"
)

// TestMasterFlightSharesOneDecode: sizes derived at the same time get the
// same decoded picture, and its share of the budget returns when the last
// leaves.
func TestMasterFlightSharesOneDecode(t *testing.T) {
	for _, eighths := range []int{8, 4} { // whole, and reduced by baseline
		t.Run(fmt.Sprintf("%d/8", eighths), func(t *testing.T) {
			testMasterFlight(t, eighths)
		})
	}
}

func testMasterFlight(t *testing.T, eighths int) {
	body := phototest.JPEG(648, 648)
	// A budget for one decode only: a second decode would wait for ever.
	dec := photo.NewDecoder(photo.Limits{DecodeMemory: 648*648*3 + 2<<20})
	var f masterFlight
	first, leaveFirst := f.join(context.Background(), dec, "sum", eighths, body)
	if first.err != nil {
		t.Fatal(first.err)
	}
	var wg gosync.WaitGroup
	for range 7 {
		wg.Go(func() {
			d, leave := f.join(context.Background(), dec, "sum", eighths, body)
			defer leave()
			if d != first {
				t.Error("a size got a decode of its own")
			}
		})
	}
	wg.Wait()
	leaveFirst()
	// All left: the budget is whole again, and the next join decodes anew.
	again, leave := f.join(context.Background(), dec, "sum", eighths, body)
	defer leave()
	if again == first || again.err != nil {
		t.Errorf("after all left: same decode %v, err %v", again == first, again.err)
	}
}
