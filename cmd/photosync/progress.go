package main

import (
	"fmt"
	"io"
	"strings"
	stdsync "sync"
	"time"
)

// statusLine owns the last line of a terminal: it shows a status (the warm
// progress bar) there, and every other write (a log line) is put above it
// by clearing the line, writing, and drawing the status again. Give it to
// the logger as its writer so that log lines never run through the bar.
// Safe for concurrent use.
type statusLine struct {
	mu     stdsync.Mutex
	w      io.Writer
	status string // shown on the last line; "" none
}

// clearLine returns the cursor to the line's start and erases the line.
const clearLine = "\r\x1b[K"

// Write writes p, one or more whole log lines, above the status.
func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != "" {
		if _, err := io.WriteString(s.w, clearLine); err != nil {
			return 0, err
		}
	}
	n, err := s.w.Write(p)
	if err != nil {
		return n, err
	}
	if s.status != "" {
		_, err = io.WriteString(s.w, s.status)
	}
	return n, err
}

// Set replaces the status and draws it.
func (s *statusLine) Set(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
	fmt.Fprint(s.w, clearLine+status)
}

// Done ends the status line: it stays on screen, and later writes go below.
func (s *statusLine) Done() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != "" {
		fmt.Fprintln(s.w)
		s.status = ""
	}
}

// progressText is one progress report: done of total, failed, the rate
// since the start and the time left at that rate. bar draws a bar of 30
// cells in front (a terminal); without it the text is a plain log line.
func progressText(done, total, failed int, elapsed time.Duration, bar bool) string {
	var b strings.Builder
	if bar {
		const width = 30
		filled := 0
		if total > 0 {
			filled = min(width, width*done/total)
		}
		fmt.Fprintf(&b, "[%s%s] ", strings.Repeat("=", filled), strings.Repeat(" ", width-filled))
	} else {
		b.WriteString("warm: ")
	}
	fmt.Fprintf(&b, "%d/%d done, failed %d", done, total, failed)
	if elapsed > 0 && done > 0 {
		rate := float64(done) / elapsed.Seconds()
		fmt.Fprintf(&b, ", %.1f photos/s", rate)
		if left := total - done; left > 0 {
			eta := time.Duration(float64(left) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", %s left", eta.Round(time.Second))
		}
	}
	return b.String()
}
