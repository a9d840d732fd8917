package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// unlockScript deletes the lock only while it still holds our token: a
// holder whose lease ran out and was taken over must not release the new
// holder's lock.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// renewScript extends the lease only while it still holds our token.
var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// MinLease is the shortest lease TryLock grants: a renewal must have time
// to reach Redis before the lease ends.
const MinLease = 300 * time.Millisecond

// TryLock takes the cross-replica pull lock of key as a lease of ttl, so
// that replicas facing the same cold or expired photo make one master call
// between them. It does not wait: acquired is false while another holder's
// lease runs.
//
// The holder renews the lease every ttl/3 until release, so a pull may run
// longer than ttl, while a holder that dies (kill -9, a lost machine) stops
// renewing and its lease ends at most ttl later; waiters should retry
// TryLock when they see no result by then. The lock carries a random token
// and renewal and release act only while the token is still ours (an
// owner check). release is safe to call once; it uses its own short
// deadline. A ttl below MinLease is raised to it.
func (r *Redis) TryLock(ctx context.Context, key Key, ttl time.Duration) (release func(), acquired bool, err error) {
	if err := key.check(); err != nil {
		return nil, false, err
	}
	ttl = max(ttl, MinLease)
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	token := hex.EncodeToString(b[:])
	name := r.lockKey(key)
	ok, err := r.c.SetNX(ctx, name, token, ttl).Result()
	r.observe(err, true)
	if err != nil {
		return nil, false, fmt.Errorf("store: lock %s: %w", key, err)
	}
	if !ok {
		return nil, false, nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go r.renew(name, token, ttl, stop, done)
	return func() {
		close(stop)
		<-done
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = unlockScript.Run(ctx, r.c, []string{name}, token).Err() // it ends anyway
	}, true, nil
}

// renew extends the lease name every ttl/3 until stop is closed or the
// lease is no longer ours.
func (r *Redis) renew(name, token string, ttl time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer func() { _ = recover() }() // a lease that is not renewed just ends
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		n, err := renewScript.Run(ctx, r.c, []string{name}, token, ttl.Milliseconds()).Int()
		cancel()
		if err == nil && n == 0 {
			return // taken over: our lease had ended
		}
	}
}

func (r *Redis) lockKey(k Key) string {
	return r.prefix + "lock:{" + k.Owner + "/" + k.Size + "}"
}
