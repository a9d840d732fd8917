package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"photosync/internal/testclock"
	"photosync/store"
	"photosync/store/storetest"
)

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		b, err := store.OpenBolt(t.TempDir(), store.BoltOptions{})
		if err != nil {
			t.Fatalf("OpenBolt: %v", err)
		}
		return b
	})
}

func TestOpenBoltCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "photosync")
	openBolt(t, dir, store.BoltOptions{})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode = %v, want 0700", perm)
	}
	if _, err := os.Stat(filepath.Join(dir, store.BoltFile)); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestBoltLocked(t *testing.T) {
	dir := t.TempDir()
	openBolt(t, dir, store.BoltOptions{})
	b, err := store.OpenBolt(dir, store.BoltOptions{})
	if err == nil {
		b.Close()
		t.Fatal("second OpenBolt on the same dir succeeded")
	}
	if !errors.Is(err, store.ErrLocked) || !errors.Is(err, bolterrors.ErrTimeout) {
		t.Errorf("error %v does not wrap ErrLocked and bbolt's timeout", err)
	}
	want := "locked by another process: " + filepath.Join(dir, store.BoltFile)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
}

func TestBoltPing(t *testing.T) {
	b := openBolt(t, t.TempDir(), store.BoltOptions{})
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Ping(ctx); err == nil {
		t.Error("Ping with an ended context succeeded")
	}
}

// TestBoltPersists checks that a record and its absolute timer survive a
// restart, and that the injected clock decides whether the timer is alive.
func TestBoltPersists(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clk := testclock.New()
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	until := clk.Now().Add(time.Hour)

	b, err := store.OpenBolt(dir, store.BoltOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	err = b.Put(ctx, key, store.Record{
		State: store.StatePhoto,
		Body:  []byte("photo"),
		Timer: store.Timer{Kind: store.TimerSuccess, Until: until},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = openBolt(t, dir, store.BoltOptions{Now: clk.Now})
	tests := []struct {
		advance time.Duration
		want    store.Timer
	}{
		{0, store.Timer{Kind: store.TimerSuccess, Until: until}},
		{time.Hour - time.Nanosecond, store.Timer{Kind: store.TimerSuccess, Until: until}},
		{time.Nanosecond, store.Timer{}}, // now == Until: run out
	}
	for _, tt := range tests {
		clk.Advance(tt.advance)
		r, err := b.Get(ctx, key)
		if err != nil {
			t.Fatalf("at %v: Get: %v", clk.Now(), err)
		}
		if string(r.Body) != "photo" {
			t.Errorf("at %v: Body = %q, want %q", clk.Now(), r.Body, "photo")
		}
		if r.Timer.Kind != tt.want.Kind || !r.Timer.Until.Equal(tt.want.Until) {
			t.Errorf("at %v: Timer = %+v, want %+v", clk.Now(), r.Timer, tt.want)
		}
	}
}

func TestBoltCorrupt(t *testing.T) {
	key := store.Key{Owner: "alice@contoso.com", Size: "HR96x96"}
	tests := []struct {
		name   string
		bucket string
		change func(v []byte) []byte // nil deletes the value
	}{
		{"flipped byte", "body", func(v []byte) []byte { v[len(v)/2] ^= 0x01; return v }},
		{"truncated", "body", func(v []byte) []byte { return v[:len(v)-1] }},
		{"missing body", "body", nil},
		{"bad metadata", "meta", func(v []byte) []byte { return v[:len(v)/2] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			b, err := store.OpenBolt(dir, store.BoltOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Put(ctx, key, store.Record{State: store.StatePhoto, Body: []byte("jpeg bytes")}); err != nil {
				t.Fatal(err)
			}
			b.Close()

			db, err := bolt.Open(filepath.Join(dir, store.BoltFile), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket([]byte(tt.bucket))
				k := store.AppendKey(nil, key)
				if tt.change == nil {
					return bk.Delete(k)
				}
				v := bk.Get(k)
				if v == nil {
					return errors.New("nothing stored")
				}
				return bk.Put(k, tt.change(append([]byte(nil), v...)))
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}

			b = openBolt(t, dir, store.BoltOptions{})
			if _, err := b.Get(ctx, key); !errors.Is(err, store.ErrCorrupt) {
				t.Errorf("Get error = %v, want ErrCorrupt", err)
			}
		})
	}
}
