package store

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestObserveGraceAfterComingBack: Redis down, then back, then a failed
// command at once (go-redis' cached dial error) leaves it up and logs
// nothing; a failure after the grace makes it unreachable again.
func TestObserveGraceAfterComingBack(t *testing.T) {
	var logs bytes.Buffer
	r := &Redis{log: slog.New(slog.NewTextHandler(&logs, nil)), resync: make(chan struct{}, 1)}
	dial := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	count := func(msg string) int { return strings.Count(logs.String(), msg) }

	r.observe(nil, true) // first answer: up, nothing logged
	r.observe(dial, true)
	r.observe(nil, true)
	if count("redis unreachable") != 1 || count("redis reachable again") != 1 {
		t.Fatalf("down and back: %q", logs.String())
	}
	r.observe(dial, true) // just back: the pool's cached dial error
	r.observe(nil, true)
	if count("redis unreachable") != 1 || count("redis reachable again") != 1 || r.state != redisUp {
		t.Errorf("a failure just after coming back flapped the state: %q", logs.String())
	}
	r.back = time.Now().Add(-redisDownGrace) // the grace is over
	r.observe(dial, true)
	if count("redis unreachable") != 2 || r.state != redisDown {
		t.Errorf("a failure after the grace did not make Redis unreachable: %q", logs.String())
	}
}
