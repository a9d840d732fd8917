package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want []string
	}{
		{"no build info", nil, []string{"photosync dev\n", "revision: unknown (built without -buildvcs)", "time:     unknown (built without -buildvcs)"}},
		{"devel, no vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, []string{"photosync dev\n", "unknown (built without -buildvcs)"}},
		{"clean", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-01T16:50:00Z"}, {Key: "vcs.modified", Value: "false"},
		}}, []string{"photosync v1.2.0\n", "revision: 0123456789abcdef\n", "time:     2026-12-01T16:50:00Z (commit time)\n"}},
		{"dirty", &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"},
		}}, []string{"revision: 0123456789abcdef+dirty\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := versionText(tt.bi)
			if tt.bi == nil && !strings.Contains(got, "(no build time given)") {
				t.Errorf("no time source named:\n%s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
		})
	}
}

// TestVersionFromLdflags: a container build without .git passes the
// revision and build time with -X.
func TestVersionFromLdflags(t *testing.T) {
	oldRev, oldTime := revision, buildTime
	t.Cleanup(func() { revision, buildTime = oldRev, oldTime })
	revision, buildTime = "fedcba98", "2026-12-02T10:00:00Z"
	got := versionText(&debug.BuildInfo{})
	for _, w := range []string{"revision: fedcba98\n", "time:     2026-12-02T10:00:00Z (build time)\n"} {
		if !strings.Contains(got, w) {
			t.Errorf("lacks %q:\n%s", w, got)
		}
	}
}
