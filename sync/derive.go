package sync

import (
	"context"
	"fmt"
	"image"
	"sync"
	"time"

	"photosync/store"
	"photosync/sync/photo"
	"photosync/sync/scale"
)

// When sizes are derived, photo.MasterSize is the one pulled: Exchange's
// largest, or the largest the owner has (Exchange answers a larger request
// with the largest it stores).

// derivedMark prefixes the ETag field of a derived record: it names the
// checksum of the master copy it was made from, so an unchanged master copy
// is not decoded and scaled again.
const derivedMark = "derived:"

// pullDerived serves a smaller size from the owner's master-size copy: it
// pulls that copy (through its own flight, shared with every other size and
// with requests for it) only when its timer ran out, then scales it down
// here. Serving all nine sizes of a person so costs one master call per
// expiry window instead of nine. The derived record carries the master
// copy's timer, so both run out together.
func (e *Engine) pullDerived(ctx context.Context, key store.Key, prev store.Record, f *flight) pullResult {
	srcKey := store.Key{Owner: key.Owner, Size: photo.MasterSize}
	src, found := e.load(ctx, srcKey)
	var master pullResult
	if !found || !src.Timer.Alive(e.opts.Now()) {
		mf := e.startPull(srcKey, src)
		select {
		case <-ctx.Done():
			return pullResult{rec: prev, kind: peerTimedOut}
		case <-mf.answered:
			// The master copy as pulled, maybe not stored yet: it is
			// scaled while the store takes it.
			master = mf.answer
			if master.kind == peerTimedOut {
				return pullResult{rec: prev, kind: peerTimedOut}
			}
			src = master.rec
		}
	}

	next := prev
	switch {
	case src.Timer.Kind == store.TimerError:
		// The master copy's pull failed: keep our last good copy, and its
		// error and error timer.
		if next.State == store.StatePhoto && len(next.Body) == 0 {
			next.State = store.StateUnknown
		}
		next.Error, next.ErrorAt, next.Timer = src.Error, src.ErrorAt, src.Timer
	case src.State != store.StatePhoto:
		next = store.Record{State: src.State, PulledAt: src.PulledAt, Source: src.Source, Name: src.Name, Timer: src.Timer}
	case prev.State == store.StatePhoto && prev.ETag == derivedMark+src.Sum:
		next.PulledAt, next.Error, next.ErrorAt, next.Timer = src.PulledAt, "", time.Time{}, src.Timer
		next.Source, next.Name = src.Source, src.Name
	default:
		select {
		case e.scaling <- struct{}{}:
		case <-ctx.Done():
			return pullResult{rec: prev, kind: peerTimedOut}
		}
		started := time.Now()
		body, ct, err := e.derive(ctx, src, photo.Pixels(key.Size))
		<-e.scaling
		if err != nil {
			// The master copy passed its checks when it was stored, but
			// an older one may not have, or the decode budget stayed taken
			// for the whole pull: a failed pull of this size.
			e.stats.PullErrors.Add(1)
			e.stats.sourceError("scale")
			e.log.Warn("deriving a size failed", "owner", key.Owner, "size", key.Size, "err", err)
			now := e.opts.Now()
			next.Error, next.ErrorAt, next.Timer = err.Error(), now, e.timer(store.TimerError, now, err)
			break
		}
		next = store.Record{State: store.StatePhoto, Body: body, ContentType: ct, Sum: store.Checksum(body),
			ETag: derivedMark + src.Sum, PulledAt: src.PulledAt, Source: src.Source, Name: src.Name, Timer: src.Timer}
		e.stats.Derived.Add(1)
		e.log.Info("size derived", "owner", key.Owner, "size", key.Size, "bytes", len(body), "elapsed", time.Since(started))
	}
	r := pullResult{rec: next, kind: pulledHere, answered: master.answered, answer: master.answer}
	if next.Timer.Kind == store.TimerError {
		r = pullResult{rec: next, kind: pullFailed}
	}
	f.answerWith(e, r)
	r.storeErr = e.put(key, next)
	return r
}

// derive fits the master copy src within n×n. A copy that fits already is
// served as it is; otherwise the sizes derived at the same time share one
// decode of it (masterFlight).
//
// A baseline JPEG is decoded reduced to 1/8 to 4/8 in the DCT domain when
// the size allows (photo.Reduction): HR240x240 from a 648×648 copy is made
// from a 324×324 decode, HR96x96 from 162×162. Sizes that reduce alike
// share a decode.
func (e *Engine) derive(ctx context.Context, src store.Record, n int) ([]byte, string, error) {
	eighths := photo.Reduction(src.Body, n)
	d, leave := e.masters.join(ctx, e.decoder, src.Sum, eighths, src.Body)
	defer leave()
	if d.err != nil {
		return nil, "", fmt.Errorf("sync: decoding the master copy: %w", d.err)
	}
	if d.info.Width <= n && d.info.Height <= n {
		return d.info.Body, d.info.ContentType, nil
	}
	w, h := scale.Box(d.info.Width, d.info.Height, n)
	return scale.To(d.pic, d.info.Format, w, h, e.opts.JPEGQuality)
}

// fitToSize scales a pulled photo larger than size down to fit it, so
// that no stored size is larger than it says.
func (e *Engine) fitToSize(ctx context.Context, found *photo.Found, size string) error {
	n := photo.Pixels(size)
	r := &found.Result
	if r.Width <= n && r.Height <= n {
		return nil
	}
	info, pic, release, err := e.decoder.DecodeReduced(ctx, r.Body, photo.Reduction(r.Body, n))
	if err != nil {
		return fmt.Errorf("%s: %w", found.Source, err)
	}
	defer release()
	w, h := scale.Box(info.Width, info.Height, n)
	body, ct, err := scale.To(pic, info.Format, w, h, e.opts.JPEGQuality)
	if err != nil {
		return fmt.Errorf("sync: scaling a %dx%d photo to %s: %w", r.Width, r.Height, size, err)
	}
	e.log.Info("photo larger than its size scaled down", "size", size, "width", r.Width, "height", r.Height)
	r.Body, r.ContentType = body, ct
	r.Width, r.Height = scale.Box(r.Width, r.Height, n)
	return nil
}

// masterFlight shares one decode of a master copy among the sizes being
// derived from it at the same time, keyed by the copy's checksum and the
// reduction it is decoded at. The decoded picture, and its share of the
// decode budget, is let go when the last of them leaves. It is not
// x/sync/singleflight: the result must stay until its last user is done
// with it, not only until the call returns.
type masterFlight struct {
	mu sync.Mutex
	m  map[masterKey]*decodedMaster
}

type masterKey struct {
	sum     string
	eighths int // the scale it is decoded at
}

type decodedMaster struct {
	done    chan struct{} // closed when the decode ended
	info    photo.Image
	pic     image.Image
	err     error
	release func() // the budget's share; nil after a failed decode
	users   int
}

// join returns the decode of body (checksum sum) at eighths/8, starting it
// when none is in flight; leave must be called once the caller is done
// with it.
func (f *masterFlight) join(ctx context.Context, dec *photo.Decoder, sum string, eighths int, body []byte) (*decodedMaster, func()) {
	key := masterKey{sum, eighths}
	f.mu.Lock()
	if f.m == nil {
		f.m = map[masterKey]*decodedMaster{}
	}
	d, inFlight := f.m[key]
	if !inFlight {
		d = &decodedMaster{done: make(chan struct{})}
		f.m[key] = d
	}
	d.users++
	f.mu.Unlock()
	leave := func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if d.users--; d.users == 0 {
			delete(f.m, key)
			if d.release != nil {
				d.release()
			}
		}
	}
	if !inFlight {
		d.info, d.pic, d.release, d.err = dec.DecodeReduced(ctx, body, eighths)
		close(d.done)
		return d, leave
	}
	select {
	case <-d.done:
		return d, leave
	case <-ctx.Done():
		return &decodedMaster{err: ctx.Err()}, leave
	}
}
