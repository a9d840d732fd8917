package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every Redis key unless RedisOptions.Prefix says
// otherwise (store.redis_prefix).
const DefaultPrefix = "photosync:"

// RedisOptions configures OpenRedis.
type RedisOptions struct {
	// Prefix starts every key, so that several deployments can share one
	// Redis. Default: "photosync:".
	Prefix string
	// Now is the clock that turns a timer's Until into a TTL and back.
	// Default: time.Now.
	Now func() time.Time
}

// Redis is the shared store: every replica that points at the same Redis
// (single, Sentinel or Cluster) sees the same records and timers.
//
// A record lives in the hash {prefix}rec:{owner/size} (fields meta, JSON, and
// body) and never expires; its timer is the key {prefix}timer:{owner/size},
// holding the timer's kind, with a TTL equal to the time the timer has left,
// so Redis itself ends it for every replica. The braces are a Cluster hash
// tag: both keys land in one slot, which MULTI/EXEC needs.
type Redis struct {
	c      redis.UniversalClient
	addr   string // host:port, for errors
	prefix string
	now    func() time.Time
}

var _ Store = (*Redis)(nil)

// OpenRedis connects to the Redis at rawURL (redis:// or rediss://, in the form
// go-redis' ParseURL accepts) and pings it with ctx. Errors name the host and
// port, never the password.
func OpenRedis(ctx context.Context, rawURL string, opts RedisOptions) (*Redis, error) {
	r, err := NewRedis(rawURL, opts)
	if err != nil {
		return nil, err
	}
	if err := r.Ping(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// NewRedis is OpenRedis without the ping: the client connects on first use
// and reconnects by itself, so a service can start, and keep running, while
// Redis is away. Only a malformed URL is an error.
func NewRedis(rawURL string, opts RedisOptions) (*Redis, error) {
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store: parsing redis url: %w", redactURL(err))
	}
	// Fail fast when Redis is away: photosync then serves from memory and
	// the master, and a request must not wait seconds on retries and dials.
	// A URL's own settings (dial_timeout=…, max_retries=…) are kept.
	if opt.DialTimeout == 0 {
		opt.DialTimeout = time.Second
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = 2 * time.Second
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = 2 * time.Second
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = time.Second
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = 1
	}
	if opt.DialerRetries == 0 {
		opt.DialerRetries = 1
	}
	r := &Redis{c: redis.NewClient(opt), addr: opt.Addr, prefix: opts.Prefix, now: opts.Now}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// Ping checks that Redis answers. Errors name the host and port, never the
// password.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: connecting to redis at %s: %w", r.addr, err)
	}
	return nil
}

// redactURL drops the URL from a *url.Error, whose message quotes the whole
// URL, password included.
func redactURL(err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err
	}
	return err
}

// keys returns the record and timer keys of a checked key.
func (r *Redis) keys(k Key) (rec, timer string) {
	tag := "{" + k.Owner + "/" + k.Size + "}"
	return r.prefix + "rec:" + tag, r.prefix + "timer:" + tag
}

// Get implements Store in one round trip: a MULTI/EXEC of HMGET, GET and
// PTTL, so the timer read belongs to the same record as the bytes.
func (r *Redis) Get(ctx context.Context, key Key) (Record, error) {
	if err := key.check(); err != nil {
		return Record{}, err
	}
	rk, tk := r.keys(key)
	var (
		fields *redis.SliceCmd
		kind   *redis.StringCmd
		pttl   *redis.DurationCmd
	)
	_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		fields = p.HMGet(ctx, rk, "meta", "body")
		kind = p.Get(ctx, tk)
		pttl = p.PTTL(ctx, tk)
		return nil
	})
	// redis.Nil can only come from GET: no timer key, so no timer. A missing
	// record shows as a nil meta field instead.
	if err != nil && !errors.Is(err, redis.Nil) {
		return Record{}, fmt.Errorf("store: get %s: %w", key, err)
	}
	// A failed connection can leave EXEC's error empty and the commands'
	// errors set: an unanswered HMGET must never read as "not found".
	if err := fields.Err(); err != nil {
		return Record{}, fmt.Errorf("store: get %s: %w", key, err)
	}
	v := fields.Val()
	if len(v) != 2 {
		return Record{}, fmt.Errorf("store: get %s: redis answered %d fields, want 2", key, len(v))
	}
	m, ok := v[0].(string)
	if !ok {
		return Record{}, ErrNotFound
	}
	body, _ := v[1].(string)
	rec, err := decode(key, []byte(m), []byte(body))
	if err != nil {
		return Record{}, err
	}
	rec.Timer = Timer{}
	// PTTL is negative when the key is gone (it may expire between GET and
	// PTTL) or has no TTL; we never write one without, so treat it as over.
	if left := pttl.Val(); left > 0 {
		switch kind.Val() {
		case TimerSuccess.String():
			rec.Timer.Kind = TimerSuccess
		case TimerError.String():
			rec.Timer.Kind = TimerError
		}
		if rec.Timer.Kind != TimerNone {
			rec.Timer.Until = r.now().Add(left)
		}
	}
	return rec, nil
}

// Put implements Store: the record and its timer are written in one
// MULTI/EXEC. The TTL is rounded up to whole milliseconds, Redis' unit.
func (r *Redis) Put(ctx context.Context, key Key, rec Record) error {
	if err := key.check(); err != nil {
		return err
	}
	now := r.now()
	rec, err := prepare(rec, now)
	if err != nil {
		return err
	}
	timer := rec.Timer
	rec.Timer = Timer{} // kept in its own key, not in meta
	m, err := encodeMeta(rec)
	if err != nil {
		return err
	}
	rk, tk := r.keys(key)
	_, err = r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, rk, "meta", m, "body", rec.Body)
		if timer.Kind == TimerNone {
			p.Del(ctx, tk)
			return nil
		}
		ttl := timer.Until.Sub(now)
		ttl = (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
		p.Set(ctx, tk, timer.Kind.String(), ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	return nil
}

// Delete implements Store: it removes the record and its timer.
func (r *Redis) Delete(ctx context.Context, key Key) error {
	if err := key.check(); err != nil {
		return err
	}
	rk, tk := r.keys(key)
	if err := r.c.Del(ctx, rk, tk).Err(); err != nil {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	return nil
}

// Close implements Store: it closes the connections.
func (r *Redis) Close() error {
	if err := r.c.Close(); err != nil {
		return fmt.Errorf("store: closing redis: %w", err)
	}
	return nil
}
