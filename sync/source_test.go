package sync_test

import (
	"context"
	"errors"
	"image/color"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"photosync/store"
	psync "photosync/sync"
	"photosync/sync/directory"
	"photosync/sync/directory/directorytest"
	"photosync/sync/exchange/exchangetest"
	"photosync/sync/photo"
)

// counting wraps a Source and counts the calls that reach it.
func counting(src photo.Source, n *atomic.Int64) photo.Source {
	return photo.Func{SourceName: src.Name(), Func: func(ctx context.Context, owner, size, etag string) (photo.Result, error) {
		n.Add(1)
		return src.Photo(ctx, owner, size, etag)
	}}
}

// TestSourceChain runs Exchange (the simulator) then the directory (a real
// slapd, every person in it with a photo) and checks who answers.
func TestSourceChain(t *testing.T) {
	const (
		deleted = "megan.bowen@contoso.com" // deleted her mailbox photo on purpose
		down    = "nestor.wilke@contoso.com"
	)
	ldapSrv := directorytest.Start(t)
	dirPhoto := jpegOf(t, 96, color.RGBA{G: 180, A: 255})
	for _, m := range []string{adele, nobody, deleted, down} {
		ldapSrv.AddPerson(directorytest.Person{UID: strings.Split(m, "@")[0], Mail: m, ThumbnailPhoto: dirPhoto})
	}
	dir, err := directory.New(directory.Options{URL: ldapSrv.URL, BindDN: directorytest.BindDN,
		BindPassword: directorytest.Password, BaseDN: directorytest.BaseDN, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	var dirCalls atomic.Int64
	e := newEnv(t, envOptions{engine: func(o *psync.Options) {
		o.Sources = append(o.Sources, counting(dir, &dirCalls))
	}})
	e.sim.AddUser(exchangetest.User{Email: deleted, Name: "Megan Bowen", ADThumbnail: true, Deleted: true})
	e.sim.AddUser(exchangetest.User{Email: down, Name: "Nestor Wilke", Photo: true})
	e.sim.SetDeletedBlank(true)

	mailbox, _, ok := e.sim.PhotoBytes(adele, "HR96x96")
	if !ok {
		t.Fatal("simulator has no photo for adele")
	}
	tests := []struct {
		name      string
		owner     string
		fault     func()
		wantBody  []byte // nil: no photo served
		wantDir   int64  // calls reaching the directory
		wantTimer store.TimerKind
		wantSrc   string
	}{
		{"mailbox photo wins", adele, nil, mailbox, 0, store.TimerSuccess, "exchange"},
		{"no mailbox photo: the directory's", nobody, nil, dirPhoto, 1, store.TimerSuccess, "directory"},
		{"deleted on purpose: placeholder, directory not asked", deleted, nil, nil, 0, store.TimerSuccess, "exchange: deleted on purpose"},
		{"exchange down: error timer, directory not asked", down, func() { e.sim.FailPhotos(http.StatusInternalServerError, 1) }, nil, 0, store.TimerError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dirCalls.Store(0)
			if tt.fault != nil {
				tt.fault()
				defer e.sim.ClearFaults()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := e.engine.Photo(ctx, tt.owner, "HR96x96", tt.owner)
			switch {
			case tt.wantBody == nil && !errors.Is(err, psync.ErrNoPhoto):
				t.Fatalf("Photo: %v, %d bytes; want ErrNoPhoto", err, len(p.Body))
			case tt.wantBody != nil && (err != nil || string(p.Body) != string(tt.wantBody)):
				t.Fatalf("Photo: %v, %d bytes; want the %d expected bytes", err, len(p.Body), len(tt.wantBody))
			}
			if got := dirCalls.Load(); got != tt.wantDir {
				t.Errorf("directory asked %d times, want %d", got, tt.wantDir)
			}
			e.wait(t) // the store takes a pull after its viewer is answered
			rec, err := e.store.Get(ctx, store.Key{Owner: tt.owner, Size: "HR96x96"})
			if err != nil {
				t.Fatalf("stored record: %v", err)
			}
			if rec.Timer.Kind != tt.wantTimer || rec.Source != tt.wantSrc {
				t.Errorf("stored timer %v, source %q; want %v, %q", rec.Timer.Kind, rec.Source, tt.wantTimer, tt.wantSrc)
			}
		})
	}
}
