package store

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// RedisMode says how to reach Redis: one node, a Sentinel group or a
// Cluster.
type RedisMode string

const (
	// RedisAuto picks the mode from the URL: Sentinel when it names a
	// master_name, Cluster when it lists further addr parameters, one node
	// otherwise.
	RedisAuto RedisMode = "auto"
	// RedisSingle is one redis-server (or a proxy in front of several).
	RedisSingle RedisMode = "single"
	// RedisSentinel asks the sentinels in the URL where master_name's
	// master is, and follows it through failovers.
	RedisSentinel RedisMode = "sentinel"
	// RedisCluster treats every address in the URL as a seed of one Redis
	// Cluster; a single seed is enough.
	RedisCluster RedisMode = "cluster"
)

// ErrSkipVerify is returned by ParseRedisURL for a URL that asks to skip
// the verification of Redis' certificate, which photosync never does.
var ErrSkipVerify = errors.New("skip_verify is refused: photosync always verifies Redis' certificate (set store.redis_ca_file for a private CA)")

// RedisTarget is what ParseRedisURL found in a URL: enough to say where a
// store points, with no secret in it.
type RedisTarget struct {
	Mode       RedisMode // never RedisAuto
	Addrs      []string  // host:port of the node, the seeds or the sentinels
	MasterName string    // with RedisSentinel
	TLS        bool      // rediss://
	// URL is the URL with its passwords masked, safe to print.
	URL string

	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// ParseRedisURL parses a store.redis_url in one of go-redis' URL forms:
//
//	redis://[user:pass@]host:port/db                      one node
//	redis://[user:pass@]host:port?master_name=NAME&addr=…  Sentinel (the hosts are sentinels;
//	                                                      the master's own credentials go in
//	                                                      username= and password=)
//	redis://[user:pass@]host:port?addr=host:port&addr=…    Cluster
//
// rediss:// turns TLS on. mode forces one form; "" means RedisAuto. serve
// and config check both parse with it, so they never disagree. Errors never
// contain a password.
func ParseRedisURL(rawURL string, mode RedisMode) (RedisTarget, error) {
	t, err := parseRedisURL(rawURL, mode)
	if err != nil {
		return RedisTarget{}, fmt.Errorf("store: parsing redis url: %w", hideSecrets(err, rawURL))
	}
	return t, nil
}

func parseRedisURL(rawURL string, mode RedisMode) (RedisTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return RedisTarget{}, err
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return RedisTarget{}, fmt.Errorf("want a redis:// or rediss:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return RedisTarget{}, errors.New("no host")
	}
	q := u.Query()
	if q.Has("skip_verify") {
		return RedisTarget{}, ErrSkipVerify
	}
	if mode == "" || mode == RedisAuto {
		switch {
		case q.Has("master_name"):
			mode = RedisSentinel
		case q.Has("addr"):
			mode = RedisCluster
		default:
			mode = RedisSingle
		}
	}
	t := RedisTarget{Mode: mode, TLS: u.Scheme == "rediss", URL: MaskURL(rawURL)}
	switch mode {
	case RedisSingle:
		if q.Has("addr") || q.Has("master_name") {
			return RedisTarget{}, errors.New("store.redis_mode single takes one host, without addr or master_name")
		}
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return RedisTarget{}, err
		}
		t.single, t.Addrs = o, []string{o.Addr}
	case RedisSentinel:
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return RedisTarget{}, err
		}
		if o.MasterName == "" {
			return RedisTarget{}, errors.New("sentinel mode needs master_name=NAME")
		}
		t.failover, t.Addrs, t.MasterName = o, o.SentinelAddrs, o.MasterName
	case RedisCluster:
		if q.Has("master_name") {
			return RedisTarget{}, errors.New("cluster mode takes no master_name")
		}
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return RedisTarget{}, fmt.Errorf("a Cluster has database 0 only, got /%s", p)
		}
		u.Path = ""
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return RedisTarget{}, err
		}
		t.cluster, t.Addrs = o, o.Addrs
	default:
		return RedisTarget{}, fmt.Errorf("unknown redis mode %q: want auto, single, sentinel or cluster", mode)
	}
	return t, nil
}

// masked stands for a password in what photosync prints.
const masked = "********"

// MaskURL returns rawURL with its passwords (in the userinfo and in a
// password= parameter) replaced by asterisks; a user-only userinfo is
// masked too, since Redis reads redis://secret@host as a password. A URL
// that does not parse comes back fully masked.
func MaskURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return masked
	}
	info := ""
	if u.User != nil {
		info = masked + "@"
		if _, ok := u.User.Password(); ok {
			info = url.User(u.User.Username()).String() + ":" + masked + "@"
		}
		u.User = nil
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "MASKED")
		u.RawQuery = strings.Replace(q.Encode(), "password=MASKED", "password="+masked, 1)
	}
	out := u.String()
	if info != "" {
		scheme, rest, _ := strings.Cut(out, "://")
		out = scheme + "://" + info + rest
	}
	return out
}

// hideSecrets drops the URL from a *url.Error (its message quotes the
// whole URL) and replaces any password of rawURL left in err's message.
func hideSecrets(err error, rawURL string) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	msg := err.Error()
	for _, s := range secretsOf(rawURL) {
		msg = strings.ReplaceAll(msg, s, masked)
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// secretsOf returns the passwords written in rawURL, as best it can find
// them even in a URL that does not parse.
func secretsOf(rawURL string) []string {
	var out []string
	if i := strings.Index(rawURL, "://"); i >= 0 {
		rest := rawURL[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			info := rest[:at]
			if c := strings.IndexByte(info, ':'); c >= 0 {
				info = info[c+1:]
			}
			if info != "" {
				out = append(out, info)
				if dec, err := url.PathUnescape(info); err == nil && dec != info {
					out = append(out, dec)
				}
			}
		}
	}
	if i := strings.Index(rawURL, "password="); i >= 0 {
		v := rawURL[i+len("password="):]
		if amp := strings.IndexByte(v, '&'); amp >= 0 {
			v = v[:amp]
		}
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
