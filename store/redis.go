package store

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix starts every Redis key unless RedisOptions.Prefix says
// otherwise (store.redis_prefix).
const DefaultPrefix = "photosync:"

// RedisOptions configures OpenRedis and NewRedis.
type RedisOptions struct {
	// Mode forces how the URL is read (see ParseRedisURL). Default: RedisAuto.
	Mode RedisMode
	// Prefix starts every key and the invalidation channel, so that several
	// deployments can share one Redis. Default: "photosync:".
	Prefix string
	// CAFile is a PEM file of the CAs that sign Redis' certificate, for a
	// rediss:// URL. Default: the system's roots.
	CAFile string
	// Certificate and Key are PEM files of the client certificate a Redis
	// with tls-auth-clients asks for. Both or neither.
	Certificate, Key string
	// Now is the clock that starts and judges timers. Default: time.Now.
	Now func() time.Time
	// Logger receives a line when Redis becomes unreachable or refuses
	// writes, and when it is back; never one per failed command. Default:
	// discard.
	Logger *slog.Logger
}

// Redis is the shared store: every replica that points at the same Redis
// (one node, a Sentinel group or a Cluster) sees the same records and
// timers, and hears through pub/sub what the others write (see Notify).
//
// A record lives in one hash, {prefix}rec:{owner/size}, with the fields
// meta (JSON, the timer's kind and end included) and body. It has no TTL:
// a record outlives its timer (a stale copy may still be served), and
// eviction takes the record and its timer together or not at all. The
// braces are a Cluster hash tag, shared with the photo's lock key.
//
// Reads are one HMGET, never inside MULTI, so they work on a Redis that
// reached maxmemory and refuses writes. Timers are absolute times of the
// writer's clock, so replicas must keep their clocks in sync (NTP).
type Redis struct {
	c       redis.UniversalClient
	target  RedisTarget
	prefix  string
	channel string // invalidations: "origin owner/size"
	origin  string // this store's id in invalidations, to skip its own
	now     func() time.Time
	log     *slog.Logger

	// state is what the last command taught us about Redis; changes log
	// one line and wake Notify, which then flushes its listener.
	mu       sync.Mutex
	state    redisState
	back     time.Time // when Redis last came back after being down; guarded by mu
	resync   chan struct{}
	policyOK atomic.Bool // maxmemory-policy was read (or refused) once
}

type redisState uint8

// redisDownGrace is how long after Redis came back a failed command does
// not make it unreachable again. For a moment after Redis returns, go-redis'
// pool keeps answering some commands with the dial error it cached (until
// its background dial succeeds) while others already succeed on new
// connections: without the grace the log said "unreachable" and "reachable
// again" a dozen times within a second of one outage's end.
const redisDownGrace = time.Second

const (
	redisUnknown redisState = iota
	redisUp
	redisDown     // no answer
	redisReadOnly // answers, refuses writes (READONLY, OOM)
)

var (
	_ Store    = (*Redis)(nil)
	_ Pinger   = (*Redis)(nil)
	_ Notifier = (*Redis)(nil)
)

// OpenRedis connects to the Redis at rawURL (see ParseRedisURL) and pings
// it with ctx. Errors name the hosts, never a password.
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
// Redis is away. Only a malformed URL or an unreadable TLS file is an error.
func NewRedis(rawURL string, opts RedisOptions) (*Redis, error) {
	t, err := ParseRedisURL(rawURL, opts.Mode)
	if err != nil {
		return nil, err
	}
	tc, err := redisTLS(t, opts)
	if err != nil {
		return nil, err
	}
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	r := &Redis{
		target: t,
		prefix: opts.Prefix,
		origin: fmt.Sprintf("%x", b),
		now:    opts.Now,
		log:    opts.Logger,
		resync: make(chan struct{}, 1),
	}
	if r.prefix == "" {
		r.prefix = DefaultPrefix
	}
	r.channel = r.prefix + "invalidate"
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.c = newUniversal(t, tc)
	return r, nil
}

// Fail fast when Redis is away: photosync then serves from memory and the
// master, and a request must not wait seconds on retries and dials. A
// URL's own settings (dial_timeout=…, max_retries=…) are kept.
func fastFail(dial, read, write, pool *time.Duration, retries, dialRetries *int) {
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{dial, time.Second}, {read, 2 * time.Second}, {write, 2 * time.Second}, {pool, time.Second}} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
	if *retries == 0 {
		*retries = 1
	}
	if *dialRetries == 0 {
		*dialRetries = 1
	}
}

// newUniversal builds the go-redis client of t's mode.
func newUniversal(t RedisTarget, tc *tls.Config) redis.UniversalClient {
	switch {
	case t.single != nil:
		o := *t.single
		fastFail(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries, &o.DialerRetries)
		o.TLSConfig = tc
		return redis.NewClient(&o)
	case t.failover != nil:
		o := *t.failover
		fastFail(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries, &o.DialerRetries)
		o.TLSConfig = tc
		return redis.NewFailoverClient(&o)
	default:
		o := *t.cluster
		fastFail(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries, &o.DialerRetries)
		o.TLSConfig = tc
		return redis.NewClusterClient(&o)
	}
}

// redisTLS returns the TLS configuration for t: nil for redis://, else one
// that always verifies the server, against CAFile when given, and presents
// the client certificate when given.
func redisTLS(t RedisTarget, opts RedisOptions) (*tls.Config, error) {
	if (opts.Certificate == "") != (opts.Key == "") {
		return nil, errors.New("store: redis client certificate: want both the certificate and the key")
	}
	if !t.TLS {
		if opts.CAFile != "" || opts.Certificate != "" {
			return nil, errors.New("store: redis TLS files are set but the URL is redis://, not rediss://")
		}
		return nil, nil
	}
	// As go-redis does, every node (or sentinel) is verified against the
	// URL's host name: their certificates must all carry it.
	host, _, err := net.SplitHostPort(t.Addrs[0])
	if err != nil {
		return nil, fmt.Errorf("store: redis address %s: %w", t.Addrs[0], err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("store: reading redis CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("store: redis CA file %s holds no PEM certificate", opts.CAFile)
		}
		tc.RootCAs = pool
	}
	if opts.Certificate != "" {
		cert, err := tls.LoadX509KeyPair(opts.Certificate, opts.Key)
		if err != nil {
			return nil, fmt.Errorf("store: loading redis client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Target says where the store points, passwords masked.
func (r *Redis) Target() RedisTarget { return r.target }

// Ping checks that Redis answers and accepts writes: a replica left behind
// by a failover, or a full Redis under noeviction, is not ready. The first
// ping that succeeds reads maxmemory-policy and warns when it does not fit
// (see CheckPolicy). Errors name the hosts, never a password.
func (r *Redis) Ping(ctx context.Context) error {
	err := r.c.Ping(ctx).Err()
	if err == nil {
		// A write, deleted at once: only a master with room accepts it. The
		// key has no TTL, so a volatile-* policy cannot make room for it by
		// evicting (it would evict a TTL key, and photosync's have none).
		// Redis refuses a write only while it is over maxmemory, and a full
		// one hovers around the limit, so it also counts as full when its
		// memory is within a margin of maxmemory and its policy evicts
		// nothing of ours.
		key := r.prefix + "ping:{" + r.origin + "}"
		var info *redis.StringCmd
		_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, "1", 0)
			p.Del(ctx, key)
			info = p.Info(ctx, "memory")
			return nil
		})
		if err == nil && nearlyFull(info.Val()) {
			err = errFull
		}
	}
	r.observe(err, true)
	if err != nil {
		if redis.IsReadOnlyError(err) || redis.IsOOMError(err) || errors.Is(err, errFull) {
			return fmt.Errorf("store: redis at %s refuses writes: %w", r.where(), err)
		}
		return fmt.Errorf("store: connecting to redis at %s: %w", r.where(), err)
	}
	if !r.policyOK.Swap(true) {
		_, _ = r.CheckPolicy(ctx)
	}
	return nil
}

// errFull is Ping's verdict on a Redis at its maxmemory whose policy evicts
// none of photosync's keys.
var errFull = errors.New("at maxmemory and its policy evicts nothing of ours")

// nearlyFull reads INFO memory: maxmemory set, a policy other than
// allkeys-* (photosync's keys have no TTL, so volatile-* and noeviction
// evict none of them), and used_memory within 2% (at least 256KiB) of the
// limit.
func nearlyFull(info string) bool {
	var used, limit int64
	var policy string
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_memory":
			used, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory":
			limit, _ = strconv.ParseInt(v, 10, 64)
		case "maxmemory_policy":
			policy = v
		}
	}
	if limit <= 0 || strings.HasPrefix(policy, "allkeys-") {
		return false
	}
	return used >= limit-max(limit/50, 256<<10)
}

// CheckPolicy reads maxmemory-policy (CONFIG GET, on every master of a
// Cluster) and logs a warning when it would evict nothing but refuse
// writes (noeviction, and volatile-* since photosync's keys carry no TTL).
// allkeys-lru fits a photo cache. A Redis that refuses CONFIG (managed
// services often do) is no error: the policy comes back "".
func (r *Redis) CheckPolicy(ctx context.Context) (string, error) {
	var (
		mu     sync.Mutex
		policy string
	)
	read := func(ctx context.Context, c *redis.Client) error {
		v, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
		if err != nil {
			var rerr redis.Error
			if errors.As(err, &rerr) {
				return nil // refused (renamed, ACL): nothing to check
			}
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if p := v["maxmemory-policy"]; policy == "" || !fitPolicy(p) {
			policy = p
		}
		return nil
	}
	var err error
	switch c := r.c.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, read)
	case *redis.Client:
		err = read(ctx, c)
	}
	if err != nil {
		return "", fmt.Errorf("store: reading maxmemory-policy at %s: %w", r.where(), err)
	}
	if policy != "" && !fitPolicy(policy) {
		r.log.Warn("redis maxmemory-policy does not fit a photo cache: when Redis is full it refuses writes instead of evicting; set maxmemory-policy allkeys-lru",
			"policy", policy, "redis", r.target.URL)
	}
	return policy, nil
}

// fitPolicy reports whether policy evicts photosync's keys, which have no
// TTL, when Redis is full.
func fitPolicy(p string) bool { return strings.HasPrefix(p, "allkeys-") }

// where names the hosts of the store for errors.
func (r *Redis) where() string { return strings.Join(r.target.Addrs, ",") }

// observe records what a command's outcome (a write or not) says about Redis, logging and
// waking Notify only when that changes. Answers that are errors (redis.Nil,
// WRONGTYPE…) still mean Redis is up.
func (r *Redis) observe(err error, write bool) {
	next := redisUp
	switch {
	case err == nil || errors.Is(err, redis.Nil):
	case redis.IsReadOnlyError(err) || redis.IsOOMError(err) || errors.Is(err, errFull):
		next = redisReadOnly
	case errors.Is(err, context.Canceled):
		return // the caller left; says nothing about Redis
	default:
		var rerr redis.Error
		if errors.As(err, &rerr) && !redis.IsLoadingError(err) && !redis.IsClusterDownError(err) && !redis.IsMasterDownError(err) {
			return // an answer, though an error
		}
		next = redisDown
	}
	now := time.Now()
	r.mu.Lock()
	prev := r.state
	if next == redisUp && !write && prev == redisReadOnly {
		next = prev // a read says nothing about writes
	}
	switch {
	case next == redisUp && prev == redisDown:
		r.back = now
	case next == redisDown && prev == redisUp && now.Sub(r.back) < redisDownGrace:
		r.mu.Unlock()
		return
	}
	r.state = next
	r.mu.Unlock()
	if prev == next {
		return
	}
	switch next {
	case redisDown:
		r.log.Error("redis unreachable", "redis", r.target.URL, "err", err)
	case redisReadOnly:
		r.log.Error("redis refuses writes", "redis", r.target.URL, "err", err)
	case redisUp:
		if prev == redisUnknown {
			return
		}
		r.log.Info("redis reachable again", "redis", r.target.URL)
	}
	if prev != redisUnknown {
		// What this replica holds in memory may have missed invalidations.
		select {
		case r.resync <- struct{}{}:
		default:
		}
	}
}

// recordKey returns the key of a checked key's record.
func (r *Redis) recordKey(k Key) string {
	return r.prefix + "rec:{" + k.Owner + "/" + k.Size + "}"
}

// Get implements Store in one round trip, a single HMGET.
func (r *Redis) Get(ctx context.Context, key Key) (Record, error) {
	if err := key.check(); err != nil {
		return Record{}, err
	}
	v, err := r.c.HMGet(ctx, r.recordKey(key), "meta", "body").Result()
	r.observe(err, false)
	// An unanswered read must never read as "not found".
	if err != nil {
		return Record{}, fmt.Errorf("store: get %s: %w", key, err)
	}
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
	rec.Timer = alive(rec.Timer, r.now())
	return rec, nil
}

// Put implements Store: one HSET replaces meta and body together, then the
// change is published to every replica. A write Redis refuses (READONLY
// after a failover, OOM under noeviction) is an error.
func (r *Redis) Put(ctx context.Context, key Key, rec Record) error {
	if err := key.check(); err != nil {
		return err
	}
	rec, err := prepare(rec, r.now())
	if err != nil {
		return err
	}
	return r.putPrepared(ctx, key, rec)
}

// putPrepared is Put of a record prepare has made ready (preparedPutter).
func (r *Redis) putPrepared(ctx context.Context, key Key, rec Record) error {
	m, err := encodeMeta(rec)
	if err != nil {
		return err
	}
	// The write and its announcement go in one round trip; concurrent
	// Puts (a warm) share the client's connection pool.
	var hset, pub *redis.IntCmd
	_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		hset = p.HSet(ctx, r.recordKey(key), "meta", m, "body", rec.Body)
		pub = p.Publish(ctx, r.channel, r.message(key))
		return nil
	})
	var refused redis.Error
	if err != nil && hset.Err() == nil && errors.As(pub.Err(), &refused) {
		// Redis stored the record and refused only the announcement (an
		// error reply, not a lost connection, which leaves every command
		// unanswered): the write stands. A replica that missed it lost its
		// subscription too and flushes when it is back.
		err = nil
	}
	r.observe(err, true)
	if err != nil {
		return fmt.Errorf("store: put %s: %w", key, err)
	}
	return nil
}

// Delete implements Store: it removes the record (and so its timer) and
// tells every replica.
func (r *Redis) Delete(ctx context.Context, key Key) error {
	if err := key.check(); err != nil {
		return err
	}
	err := r.c.Del(ctx, r.recordKey(key)).Err()
	r.observe(err, true)
	if err != nil {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	r.publish(ctx, key)
	return nil
}

// publish tells the other replicas that key changed. The write itself
// succeeded, so a failure here is not the caller's: a replica that missed
// the message has lost its subscription too, and flushes when it is back.
func (r *Redis) publish(ctx context.Context, key Key) {
	err := r.c.Publish(ctx, r.channel, r.message(key)).Err()
	r.observe(err, true)
}

// message is what publish announces: who wrote (so a replica skips its own
// writes) and which key.
func (r *Redis) message(key Key) string { return r.origin + " " + key.Owner + "/" + key.Size }

// Close implements Store: it closes the connections.
func (r *Redis) Close() error {
	if err := r.c.Close(); err != nil {
		return fmt.Errorf("store: closing redis: %w", err)
	}
	return nil
}
