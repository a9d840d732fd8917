package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"photosync/web"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBrowserShowsTheDirectory loads the demo's people page in Debian's
// Chromium, headless, on a 2x screen: every photo decodes, srcset picks the
// 2x size, and a second load (browser cache off) is answered from
// photosync's store with no master call. A screenshot is saved in
// $PHOTOSYNC_ARTIFACTS (default: the test's temporary folder).
func TestBrowserShowsTheDirectory(t *testing.T) {
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("chromium is not installed (.ci/test installs Debian's chromium): cannot run the browser test")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	demoCtx, stopDemo := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- demo(demoCtx, ln, &stdout, &stderr) }()
	t.Cleanup(func() {
		stopDemo()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	waitHealthy(t, base)

	// A bound on the whole browser session, so a hang fails rather than
	// waits for the suite's timeout; nothing is measured against it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browser),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()

	// Every image response photosync sends, with its outcome header.
	var mu sync.Mutex
	outcomes := map[string]string{}
	listen := func(ev any) {
		r, ok := ev.(*network.EventResponseReceived)
		if !ok || r.Type != network.ResourceTypeImage {
			return
		}
		outcome := ""
		for k, v := range r.Response.Headers {
			if s, ok := v.(string); ok && strings.EqualFold(k, "Cache-Status") {
				outcome = web.OutcomeOf(s)
			}
		}
		mu.Lock()
		outcomes[r.Response.URL] = outcome
		mu.Unlock()
	}
	takeOutcomes := func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		m := outcomes
		outcomes = map[string]string{}
		return m
	}

	type img struct {
		Email        string `json:"email"`
		NaturalWidth int    `json:"naturalWidth"`
		CurrentSrc   string `json:"currentSrc"`
	}
	// decode() rejects for an image that did not load or decode.
	const decodeAll = `Promise.all(Array.from(document.images).map(i => i.decode().then(() =>
		({email: i.dataset.email, naturalWidth: i.naturalWidth, currentSrc: i.currentSrc}))))`
	load := func(name string) []img {
		t.Helper()
		err := chromedp.Do(bctx, chromedp.Navigate(base+"/"))
		var imgs []img
		if err == nil {
			imgs, err = chromedp.Run(bctx, chromedp.Evaluate[[]img](decodeAll, chromedp.EvalAwaitPromise))
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(imgs) != len(demoUsers) {
			t.Fatalf("%s: %d images, want one per person (%d)", name, len(imgs), len(demoUsers))
		}
		for _, im := range imgs {
			if im.NaturalWidth <= 0 {
				t.Errorf("%s: %s's photo did not decode", name, im.Email)
			}
			if !strings.Contains(im.CurrentSrc, "size=HR240x240") {
				t.Errorf("%s: %s: srcset chose %s, want HR240x240 on a 2x screen", name, im.Email, im.CurrentSrc)
			}
		}
		return imgs
	}

	// The first Run starts Chromium; the page is a 2x screen.
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1100, 700, chromedp.EmulateScale(2))); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if err := chromedp.Listen(bctx, listen); err != nil {
		t.Fatal(err)
	}
	load("first load")
	first := takeOutcomes()
	pulled := 0
	for _, o := range first {
		if o == "pulled" || o == "coalesced" {
			pulled++
		}
	}
	if pulled == 0 {
		t.Fatalf("first load pulled nothing from the master: %v", first)
	}

	// Second load with the browser's cache off, so every photo is asked of
	// photosync again: each must be a store hit, no master call.
	if _, err := chromedp.Call(bctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
		t.Fatal(err)
	}
	load("second load")
	second := takeOutcomes()
	if len(second) != len(demoUsers) {
		t.Fatalf("second load: %d image responses, want %d: %v", len(second), len(demoUsers), second)
	}
	for u, o := range second {
		if o != "hit" {
			t.Errorf("second load: %s was %q, want hit (no master call)", u, o)
		}
	}

	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("PHOTOSYNC_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "people.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}
