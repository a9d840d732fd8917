package main

import (
	"bytes"
	"testing"
	"time"
)

// TestStatusLine: a log line written while the bar shows clears the bar's
// line, comes out whole, and the bar is drawn again below it.
func TestStatusLine(t *testing.T) {
	var buf bytes.Buffer
	s := &statusLine{w: &buf}

	_, _ = s.Write([]byte("before any bar\n"))
	s.Set("[==  ] 1/2")
	_, _ = s.Write([]byte("level=WARN msg=\"pull failed\"\n"))
	s.Set("[====] 2/2")
	s.Done()
	_, _ = s.Write([]byte("after\n"))

	want := "before any bar\n" +
		clearLine + "[==  ] 1/2" +
		clearLine + "level=WARN msg=\"pull failed\"\n" + "[==  ] 1/2" +
		clearLine + "[====] 2/2" + "\n" +
		"after\n"
	if got := buf.String(); got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestProgressText(t *testing.T) {
	tests := []struct {
		name                string
		done, total, failed int
		elapsed             time.Duration
		bar                 bool
		want                string
	}{
		{"start", 0, 100, 0, 0, true, "[                              ] 0/100 done, failed 0"},
		{"half, bar", 50, 100, 2, 10 * time.Second, true, "[===============               ] 50/100 done, failed 2, 5.0 photos/s, 10s left"},
		{"half, plain", 50, 100, 2, 10 * time.Second, false, "warm: 50/100 done, failed 2, 5.0 photos/s, 10s left"},
		{"done", 100, 100, 0, 20 * time.Second, false, "warm: 100/100 done, failed 0, 5.0 photos/s"},
		{"nothing to do", 0, 0, 0, time.Second, true, "[                              ] 0/0 done, failed 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := progressText(tt.done, tt.total, tt.failed, tt.elapsed, tt.bar); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
