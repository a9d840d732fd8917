package sync_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strconv"
	"strings"
	gosync "sync"
	"testing"

	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/photo"
	"photosync/sync/photo/phototest"
)

// Limits of the memory test: small, so the bound is tight.
const (
	memTestStoreLimit   = 8 << 20  // store.memory_limit
	memTestDecodeMemory = 64 << 20 // photos.decode_memory (its default)
)

// memTestBodies are the bombs of the memory test: the three, and
// two as large as the limits admit, which do get decoded and scaled.
var memTestBodies = map[string]func() []byte{
	"png 8000x8000":       func() []byte { return phototest.PNGBomb(8000, 8000) },
	"jpeg 8000x8000":      func() []byte { return phototest.JPEGBomb(8000, 8000) },
	"png 100000x100000":   func() []byte { return phototest.GiantPNG(100000, 100000) },
	"png 2800x2800 rgba":  func() []byte { return phototest.PNGBomb(2800, 2800) },
	"jpeg 4000x4000 grey": func() []byte { return phototest.JPEGBomb(4000, 4000) },
}

// TestDecodePeakMemory pulls each bomb for 1, 2 and 8 owners at once, each
// in a process of its own (this test binary again), and reads that
// process's peak resident set (VmHWM): it must stay within
// store.memory_limit + photos.decode_memory + 64 MiB.
func TestDecodePeakMemory(t *testing.T) {
	if name := os.Getenv("PHOTOSYNC_MEMTEST_BODY"); name != "" {
		memTestChild(t, name)
		return
	}
	if testing.Short() {
		t.Skip("starts 15 processes")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory is not photosync's")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc: cannot read the peak resident set")
	}
	const bound = memTestStoreLimit + memTestDecodeMemory + 64<<20
	for _, name := range []string{"png 8000x8000", "jpeg 8000x8000", "png 100000x100000", "png 2800x2800 rgba", "jpeg 4000x4000 grey"} {
		for _, owners := range []int{1, 2, 8} {
			t.Run(fmt.Sprintf("%s/%d owners", name, owners), func(t *testing.T) {
				cmd := exec.Command(os.Args[0], "-test.run=^TestDecodePeakMemory$", "-test.v")
				cmd.Env = append(os.Environ(), "PHOTOSYNC_MEMTEST_BODY="+name, "PHOTOSYNC_MEMTEST_OWNERS="+strconv.Itoa(owners), "GOMEMLIMIT=")
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("child: %v\n%s", err, out)
				}
				_, after, ok := strings.Cut(string(out), "peak_kib=")
				if !ok {
					t.Fatalf("child said no peak:\n%s", out)
				}
				after, _, _ = strings.Cut(after, "\n")
				fields := strings.Fields(after)
				kib, _ := strconv.ParseInt(fields[0], 10, 64)
				t.Logf("peak RSS %d MiB (bound %d MiB); %s", kib>>10, bound>>20, strings.Join(fields[1:], " "))
				if kib<<10 > bound {
					t.Errorf("peak RSS %d MiB, bound %d MiB", kib>>10, bound>>20)
				}
			})
		}
	}
}

// memTestChild is one process of TestDecodePeakMemory: the engine with a
// source answering body for every owner, Derive on, owners pulling HR96x96
// at once.
func memTestChild(t *testing.T, name string) {
	owners, _ := strconv.Atoi(os.Getenv("PHOTOSYNC_MEMTEST_OWNERS"))
	// What serve sets as the runtime's soft limit, with the decode budget.
	debug.SetMemoryLimit(memTestStoreLimit + memTestDecodeMemory + 32<<20)
	body := memTestBodies[name]()
	b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	src := photo.Func{SourceName: "hostile", Func: func(context.Context, string, string, string) (photo.Result, error) {
		return photo.Result{Status: photo.StatusPhoto, Body: body}, nil
	}}
	e, err := psync.New(psync.Options{
		Store: store.NewHot(b, memTestStoreLimit, store.HotOptions{}), Sources: []photo.Source{src},
		ImportEnabled: true, Derive: true, DecodeMemory: memTestDecodeMemory,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg gosync.WaitGroup
	results := make([]string, owners)
	for i := range owners {
		wg.Go(func() {
			got, err := e.Refresh(context.Background(), fmt.Sprintf("owner%d@contoso.com", i), "HR96x96", false)
			results[i] = got.String()
			if err != nil {
				results[i] = "error"
			}
		})
	}
	wg.Wait()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Printf("peak_kib=%s outcomes=%s\n", strings.Fields(v)[0], strings.Join(results, ","))
		}
	}
}
