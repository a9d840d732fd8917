package store

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// notifyPoll is how long Notify waits for a message before it pings
	// the subscription to learn whether it still stands.
	notifyPoll = time.Second
	// notifyBackoff bounds the wait between two subscription attempts.
	notifyBackoff = 2 * time.Second
)

// Notify implements Notifier over Redis pub/sub: Put and Delete publish
// "origin owner/size" on {prefix}invalidate, and every other store on the
// same Redis and prefix hears it. In a Cluster a publish reaches every
// node; after a Sentinel failover the new master's messages reach the old
// one once it follows. A subscription that breaks, or a Redis that was
// unreachable or read-only and is back, counts as a resubscription: live
// (true) is called again so the listener drops what it may have missed.
func (r *Redis) Notify(ctx context.Context, changed func(Key), live func(bool)) {
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		if r.listen(ctx, changed, live) {
			wait = 50 * time.Millisecond
		}
		live(false)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, notifyBackoff)
	}
}

// listen subscribes and delivers messages until the subscription breaks or
// ctx ends. subscribed reports whether it got as far as a subscription.
func (r *Redis) listen(ctx context.Context, changed func(Key), live func(bool)) (subscribed bool) {
	ps := r.c.Subscribe(ctx)
	defer ps.Close()
	if err := ps.Subscribe(ctx, r.channel); err != nil {
		return false
	}
	// The confirmation proves the subscription stands on a live connection.
	rctx, cancel := context.WithTimeout(ctx, 2*notifyPoll)
	msg, err := ps.Receive(rctx)
	cancel()
	if _, ok := msg.(*redis.Subscription); err != nil || !ok {
		return false
	}
	drainResync(r.resync)
	live(true)
	pinged := false
	for {
		select {
		case <-r.resync:
			live(true) // Redis was away or read-only: we may have missed messages
		default:
		}
		msg, err := ps.ReceiveTimeout(ctx, notifyPoll)
		if err != nil {
			var ne net.Error
			if ctx.Err() != nil || !errors.As(err, &ne) || !ne.Timeout() || pinged {
				return true
			}
			// Quiet for a while: ask, and expect the pong within a poll.
			if ps.Ping(ctx) != nil {
				return true
			}
			pinged = true
			continue
		}
		pinged = false
		m, ok := msg.(*redis.Message)
		if !ok {
			continue // a pong, or a subscription confirmation
		}
		origin, k, ok := strings.Cut(m.Payload, " ")
		if !ok || origin == r.origin {
			continue
		}
		i := strings.LastIndexByte(k, '/')
		if i <= 0 {
			continue
		}
		changed(Key{Owner: k[:i], Size: k[i+1:]})
	}
}

func drainResync(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}
