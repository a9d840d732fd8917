package sync

import (
	"context"
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
func (e *Engine) pullDerived(ctx context.Context, key store.Key, prev store.Record) pullResult {
	srcKey := store.Key{Owner: key.Owner, Size: photo.MasterSize}
	src, found := e.load(ctx, srcKey)
	var master pullResult
	if !found || !src.Timer.Alive(e.opts.Now()) {
		select {
		case <-ctx.Done():
			return pullResult{rec: prev, kind: peerTimedOut}
		case r := <-e.startPull(srcKey, src):
			master = r.Val.(pullResult)
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
		next = store.Record{State: src.State, PulledAt: src.PulledAt, Source: src.Source, Timer: src.Timer}
	case prev.State == store.StatePhoto && prev.ETag == derivedMark+src.Sum:
		next.PulledAt, next.Error, next.ErrorAt, next.Timer = src.PulledAt, "", time.Time{}, src.Timer
		next.Source = src.Source
	default:
		select {
		case e.scaling <- struct{}{}:
		case <-ctx.Done():
			return pullResult{rec: prev, kind: peerTimedOut}
		}
		started := time.Now()
		body, ct, err := scale.Fit(src.Body, photo.Pixels(key.Size), e.opts.JPEGQuality)
		<-e.scaling
		if err != nil {
			// The master copy is a good image by its signature but does not
			// decode: treat it as a failed pull of this size.
			e.stats.PullErrors.Add(1)
			e.stats.sourceError("scale")
			e.log.Warn("deriving a size failed", "owner", key.Owner, "size", key.Size, "err", err)
			now := e.opts.Now()
			next.Error, next.ErrorAt, next.Timer = err.Error(), now, e.timer(store.TimerError, now, err)
			break
		}
		next = store.Record{State: store.StatePhoto, Body: body, ContentType: ct, Sum: store.Checksum(body),
			ETag: derivedMark + src.Sum, PulledAt: src.PulledAt, Source: src.Source, Timer: src.Timer}
		e.stats.Derived.Add(1)
		e.log.Info("size derived", "owner", key.Owner, "size", key.Size, "bytes", len(body), "elapsed", time.Since(started))
	}
	e.put(key, next)
	if next.Timer.Kind == store.TimerError {
		return pullResult{rec: next, kind: pullFailed}
	}
	return pullResult{rec: next, kind: pulledHere, answered: master.answered, answer: master.answer}
}
