// Package storetest is the conformance suite every store.Store must pass,
// and the helpers the store tests share. Run it from a test of the
// implementation:
//
//	func TestBolt(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { … })
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"photosync/store"
)

// untilSlack is how far a returned Timer.Until may be from the one put: Redis
// keeps a TTL in milliseconds and counts it down, so Until comes back near,
// not equal to, what was put. Implementations that keep it exactly should
// test that themselves.
const untilSlack = time.Minute

// RedisURL returns the URL of the test redis-server from
// PHOTOSYNC_REDIS_URL. When it is unset the test is skipped, or fails when
// PHOTOSYNC_REQUIRE_REDIS is set (as .ci/test does), so CI never skips Redis
// silently.
func RedisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("PHOTOSYNC_REDIS_URL")
	if u == "" {
		if os.Getenv("PHOTOSYNC_REQUIRE_REDIS") != "" {
			t.Fatal("PHOTOSYNC_REQUIRE_REDIS is set but PHOTOSYNC_REDIS_URL is not")
		}
		t.Skip("PHOTOSYNC_REDIS_URL not set; run .ci/test")
	}
	return u
}

// Run runs the conformance suite as subtests of t. open must return a new,
// empty store for the given (sub)test, using the real clock; Run closes it.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"Sum", testSum},
		{"EmptyBody", testEmptyBody},
		{"LargeBody", testLargeBody},
		{"PutCopiesBody", testPutCopiesBody},
		{"TimerKinds", testTimerKinds},
		{"TimerPast", testTimerPast},
		{"TimerRunsOut", testTimerRunsOut},
		{"KeysBySize", testKeysBySize},
		{"InvalidKey", testInvalidKey},
		{"UnknownTimerKind", testUnknownTimerKind},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

var (
	alice = store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	bob   = store.Key{Owner: "bob@contoso.com", Size: "HR96x96"}
)

// photo returns a StatePhoto record with every field set and a success
// timer an hour after now.
func photo(now time.Time, body string) store.Record {
	return store.Record{
		State:       store.StatePhoto,
		Body:        []byte(body),
		ContentType: "image/jpeg",
		ETag:        "etag-" + body,
		PulledAt:    now.Add(-time.Minute),
		Error:       "last pull: master timed out",
		ErrorAt:     now.Add(-2 * time.Hour).In(time.FixedZone("UTC+2", 2*3600)),
		Timer:       store.Timer{Kind: store.TimerSuccess, Until: now.Add(time.Hour)},
		Source:      "directory",
		Name:        "Alice Wong",
	}
}

func put(t *testing.T, s store.Store, key store.Key, r store.Record) {
	t.Helper()
	if err := s.Put(context.Background(), key, r); err != nil {
		t.Fatalf("Put(%s): %v", key, err)
	}
}

func get(t *testing.T, s store.Store, key store.Key) store.Record {
	t.Helper()
	r, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	return r
}

// diff reports how got differs from want, a record given to Put, or ""
// when it does not. Sum must be Checksum(want.Body), times must be Equal
// (monotonic readings and locations may differ) and Timer.Until must be
// within a minute of want's.
func diff(got, want store.Record) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.State != want.State {
		add("State", got.State, want.State)
	}
	if !bytes.Equal(got.Body, want.Body) {
		add("len(Body)", len(got.Body), len(want.Body))
	}
	if got.ContentType != want.ContentType {
		add("ContentType", got.ContentType, want.ContentType)
	}
	if sum := store.Checksum(want.Body); got.Sum != sum {
		add("Sum", got.Sum, sum)
	}
	if got.ETag != want.ETag {
		add("ETag", got.ETag, want.ETag)
	}
	if got.Source != want.Source {
		add("Source", got.Source, want.Source)
	}
	if !got.PulledAt.Equal(want.PulledAt) {
		add("PulledAt", got.PulledAt, want.PulledAt)
	}
	if got.Error != want.Error {
		add("Error", got.Error, want.Error)
	}
	if !got.ErrorAt.Equal(want.ErrorAt) {
		add("ErrorAt", got.ErrorAt, want.ErrorAt)
	}
	if got.Timer.Kind != want.Timer.Kind {
		add("Timer.Kind", got.Timer.Kind, want.Timer.Kind)
	}
	if w := want.Timer.Until; w.IsZero() != got.Timer.Until.IsZero() ||
		got.Timer.Until.Before(w.Add(-untilSlack)) || got.Timer.Until.After(w.Add(untilSlack)) {
		add("Timer.Until", got.Timer.Until, w)
	}
	return strings.Join(d, "; ")
}

func check(t *testing.T, s store.Store, key store.Key, want store.Record) {
	t.Helper()
	if d := diff(get(t, s, key), want); d != "" {
		t.Errorf("Get(%s): %s", key, d)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	now := time.Now()
	want := photo(now, "jpeg bytes")
	want.Sum = "ignored"
	put(t, s, alice, want)
	check(t, s, alice, want)
}

func testOverwrite(t *testing.T, s store.Store) {
	now := time.Now()
	put(t, s, alice, photo(now, "first, longer photo"))
	// The second record leaves fields empty that the first set: none of the
	// first may survive.
	second := store.Record{
		State:    store.StatePhoto,
		Body:     []byte("second"),
		PulledAt: now,
		Timer:    store.Timer{Kind: store.TimerError, Until: now.Add(time.Hour)},
	}
	put(t, s, alice, second)
	check(t, s, alice, second)
}

func testNotFound(t *testing.T, s store.Store) {
	now := time.Now()
	put(t, s, bob, photo(now, "bob"))
	if _, err := s.Get(context.Background(), alice); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, s store.Store) {
	now := time.Now()
	ctx := context.Background()
	if err := s.Delete(ctx, alice); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	put(t, s, alice, photo(now, "alice"))
	put(t, s, bob, photo(now, "bob"))
	if err := s.Delete(ctx, alice); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, alice); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Delete error = %v, want ErrNotFound", err)
	}
	check(t, s, bob, photo(now, "bob"))
	if err := s.Delete(ctx, alice); err != nil {
		t.Errorf("second Delete = %v, want nil", err)
	}
}

func testSum(t *testing.T, s store.Store) {
	now := time.Now()
	for _, sum := range []string{"", "not a checksum", store.Checksum([]byte("other"))} {
		r := photo(now, "body")
		r.Sum = sum
		put(t, s, alice, r)
		if got := get(t, s, alice).Sum; got != store.Checksum(r.Body) {
			t.Errorf("Put with Sum %q: Get Sum = %q, want Checksum(Body) %q", sum, got, store.Checksum(r.Body))
		}
	}
}

func testEmptyBody(t *testing.T, s store.Store) {
	now := time.Now()
	tests := []struct {
		name string
		r    store.Record
	}{
		{"no-photo", store.Record{
			State:    store.StateNoPhoto,
			Source:   "exchange: deleted on purpose",
			Name:     "Lee Gu",
			PulledAt: now,
			Timer:    store.Timer{Kind: store.TimerSuccess, Until: now.Add(time.Hour)},
		}},
		{"unknown", store.Record{
			State:   store.StateUnknown,
			Error:   "autodiscover: no ExternalPhotosUrl",
			ErrorAt: now,
			Timer:   store.Timer{Kind: store.TimerError, Until: now.Add(time.Hour)},
		}},
		{"empty non-nil body", store.Record{State: store.StateNoPhoto, Body: []byte{}}},
		{"zero record", store.Record{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			put(t, s, alice, tt.r)
			got := get(t, s, alice)
			if len(got.Body) != 0 {
				t.Errorf("len(Body) = %d, want 0", len(got.Body))
			}
			if d := diff(got, tt.r); d != "" {
				t.Errorf("Get: %s", d)
			}
		})
	}
}

func testLargeBody(t *testing.T, s store.Store) {
	now := time.Now()
	r := photo(now, "")
	r.Body = make([]byte, 4<<20)
	for i := range r.Body {
		r.Body[i] = byte(i * 7 / 3)
	}
	put(t, s, alice, r)
	check(t, s, alice, r)
}

func testPutCopiesBody(t *testing.T, s store.Store) {
	now := time.Now()
	r := photo(now, "original")
	want := r
	want.Body = bytes.Clone(r.Body)
	put(t, s, alice, r)
	copy(r.Body, "ORIGINAL")
	check(t, s, alice, want)
}

func testTimerKinds(t *testing.T, s store.Store) {
	now := time.Now()
	for _, kind := range []store.TimerKind{store.TimerSuccess, store.TimerError, store.TimerNone} {
		t.Run(kind.String(), func(t *testing.T) {
			r := photo(now, "body")
			r.Timer = store.Timer{Kind: kind}
			if kind != store.TimerNone {
				r.Timer.Until = now.Add(time.Hour)
			}
			put(t, s, alice, r)
			check(t, s, alice, r)
		})
	}
}

func testTimerPast(t *testing.T, s store.Store) {
	now := time.Now()
	for _, kind := range []store.TimerKind{store.TimerSuccess, store.TimerError} {
		t.Run(kind.String(), func(t *testing.T) {
			r := photo(now, "body")
			r.Timer = store.Timer{Kind: kind, Until: now.Add(-time.Second)}
			put(t, s, alice, r)
			want := r
			want.Timer = store.Timer{}
			check(t, s, alice, want)
		})
	}
}

func testTimerRunsOut(t *testing.T, s store.Store) {
	now := time.Now()
	r := photo(now, "body")
	r.Timer = store.Timer{Kind: store.TimerError, Until: now.Add(300 * time.Millisecond)}
	put(t, s, alice, r)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := get(t, s, alice)
		if got.Timer.Kind == store.TimerNone {
			// The record outlives its timer.
			want := r
			want.Timer = store.Timer{}
			if d := diff(got, want); d != "" {
				t.Errorf("Get after the timer ran out: %s", d)
			}
			return
		}
		if got.Timer.Kind != store.TimerError {
			t.Fatalf("Timer.Kind = %v, want %v or none", got.Timer.Kind, store.TimerError)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer still %v after 5s, Until %v", got.Timer.Kind, got.Timer.Until)
		}
		time.Sleep(20 * time.Millisecond) // polling a clock, not synchronising
	}
}

func testKeysBySize(t *testing.T, s store.Store) {
	now := time.Now()
	small := store.Key{Owner: alice.Owner, Size: "HR48x48"}
	large := store.Key{Owner: alice.Owner, Size: "HR648x648"}
	put(t, s, small, photo(now, "small"))
	put(t, s, large, photo(now, "large"))
	check(t, s, small, photo(now, "small"))
	check(t, s, large, photo(now, "large"))
	if err := s.Delete(context.Background(), small); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	check(t, s, large, photo(now, "large"))
}

func testInvalidKey(t *testing.T, s store.Store) {
	now := time.Now()
	ctx := context.Background()
	for _, key := range []store.Key{
		{Owner: "", Size: "HR96x96"},
		{Owner: alice.Owner, Size: ""},
		{Owner: "alice@contoso.com\x00HR48x48", Size: "HR96x96"},
		{Owner: alice.Owner, Size: "HR\x0096"},
		{Owner: "alice", Size: "contoso.com/HR96x96"},
	} {
		if err := s.Put(ctx, key, photo(now, "x")); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
}

func testUnknownTimerKind(t *testing.T, s store.Store) {
	now := time.Now()
	put(t, s, alice, photo(now, "old"))
	r := photo(now, "new")
	r.Timer.Kind = store.TimerError + 1
	if err := s.Put(context.Background(), alice, r); err == nil {
		t.Error("Put with an unknown timer kind succeeded")
	}
	check(t, s, alice, photo(now, "old"))
}

// testConcurrent has writers replace one record while readers check that
// each record they see is whole: its Sum matches its Body, and its ETag and
// timer kind are the ones written with that Body.
func testConcurrent(t *testing.T, s store.Store) {
	now := time.Now()
	const writers, readers, puts = 4, 4, 25
	ctx := context.Background()
	record := func(w, i int) store.Record {
		r := photo(now, "")
		r.ETag = fmt.Sprintf("w%d-%d", w, i)
		r.Body = bytes.Repeat([]byte(r.ETag+";"), 1+(w*puts+i)%37*50)
		r.Timer.Kind = store.TimerKind(1 + w%2)
		return r
	}
	put(t, s, alice, record(0, 0))

	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, writers+readers)
	for w := range writers {
		wg.Go(func() {
			for i := range puts {
				if err := s.Put(ctx, alice, record(w, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var rg sync.WaitGroup
	for range readers {
		rg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				r, err := s.Get(ctx, alice)
				if err != nil {
					errs <- err
					return
				}
				var w, i int
				if _, err := fmt.Sscanf(r.ETag, "w%d-%d", &w, &i); err != nil {
					errs <- fmt.Errorf("ETag %q: %v", r.ETag, err)
					return
				}
				if d := diff(r, record(w, i)); d != "" {
					errs <- fmt.Errorf("read a mixed record %s: %s", r.ETag, d)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
