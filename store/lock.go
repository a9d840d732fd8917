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
// holder whose lock expired and was taken over must not release the new
// holder's lock.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// TryLock takes the cross-replica pull lock of key for at most ttl, so that
// replicas facing the same cold or expired photo make one master call
// between them. It does not wait: acquired is false when another replica
// holds the lock. The lock carries a random token, and release removes it
// only while the token is still ours (an owner check), so a lock that
// outlived its ttl and was taken by another replica is never released by
// the first. release is safe to call once; it uses its own short deadline.
func (r *Redis) TryLock(ctx context.Context, key Key, ttl time.Duration) (release func(), acquired bool, err error) {
	if err := key.check(); err != nil {
		return nil, false, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, false, fmt.Errorf("store: lock token: %w", err)
	}
	token := hex.EncodeToString(b[:])
	name := r.lockKey(key)
	ok, err := r.c.SetNX(ctx, name, token, ttl).Result()
	if err != nil {
		return nil, false, fmt.Errorf("store: lock %s: %w", key, err)
	}
	if !ok {
		return nil, false, nil
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = unlockScript.Run(ctx, r.c, []string{name}, token).Err() // it expires anyway
	}, true, nil
}

func (r *Redis) lockKey(k Key) string {
	return r.prefix + "lock:{" + k.Owner + "/" + k.Size + "}"
}
