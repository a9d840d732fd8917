package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"photosync/configs"
)

// TestJSONDurationsAreSeconds: JSON lines carry durations as seconds;
// text lines keep Go's notation.
func TestJSONDurationsAreSeconds(t *testing.T) {
	tests := []struct{ format, want string }{
		{"json", `"elapsed":1.5`},
		{"text", "elapsed=1.5s"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		newLogger(configs.Log{Level: "info", Format: tt.format}, &buf).With("component", "x").Info("m", "elapsed", 1500*time.Millisecond)
		if !strings.Contains(buf.String(), tt.want) {
			t.Errorf("%s: %q lacks %q", tt.format, buf.String(), tt.want)
		}
	}
}

// TestLogsSwitchInPlace: a changed level and format reach loggers made
// before the change, With attributes kept.
func TestLogsSwitchInPlace(t *testing.T) {
	var buf bytes.Buffer
	log, sw := newLogs(configs.Log{Level: "info", Format: "text"}, &buf)
	derived := log.With("component", "sync")
	derived.Debug("hidden")
	derived.Info("as text")
	sw.set(configs.Log{Level: "debug", Format: "json"})
	derived.Debug("as json")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "msg=\"as text\" component=sync") {
		t.Fatalf("lines:\n%s", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &m); err != nil || m["msg"] != "as json" || m["component"] != "sync" || m["level"] != "DEBUG" {
		t.Errorf("after the switch: %q (%v)", lines[1], err)
	}
}

// TestRedisLinesGoThroughOurLogger: go-redis' Printf lines become our
// lines, in our format: its per-dial pool noise at debug, the rest at info.
func TestRedisLinesGoThroughOurLogger(t *testing.T) {
	for _, tt := range []struct {
		format string
		args   []any
		level  string
		detail string
	}{
		{"redis: %s:%d: connection pool: %v\n", []any{"127.0.0.1", 6379, "timeout"}, "DEBUG", "redis: 127.0.0.1:6379: connection pool: timeout"},
		{"redis: sentinel: new master=%q addr=%q", []any{"photos", "10.0.0.2:6379"}, "INFO", `redis: sentinel: new master="photos" addr="10.0.0.2:6379"`},
	} {
		var buf bytes.Buffer
		l := redisLog{newLogger(configs.Log{Level: "debug", Format: "json"}, &buf)}
		l.Printf(context.Background(), tt.format, tt.args...)
		var m map[string]any
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil || m["msg"] != "redis client" || m["detail"] != tt.detail || m["level"] != tt.level {
			t.Errorf("%q (%v), want %s %q", buf.String(), err, tt.level, tt.detail)
		}
	}
}

// TestReadinessChangesAreLoggedOnce: a run of failing probes logs one
// warning, recovery one line, a run of good probes nothing.
func TestReadinessChangesAreLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	var down bool
	ready := readyLogged(func(context.Context) error {
		if down {
			return errors.New("connection refused")
		}
		return nil
	}, newLogger(configs.Log{Level: "info", Format: "text"}, &buf))
	for _, d := range []bool{false, false, true, true, true, false, false, true} {
		down = d
		if err := ready(context.Background()); (err != nil) != d {
			t.Fatalf("ready = %v with the store down %v", err, d)
		}
	}
	if n := strings.Count(buf.String(), "not ready"); n != 2 {
		t.Errorf("%d not-ready lines, want 2 (one per outage):\n%s", n, buf.String())
	}
	if n := strings.Count(buf.String(), "ready again"); n != 1 {
		t.Errorf("%d recovery lines, want 1:\n%s", n, buf.String())
	}
}
