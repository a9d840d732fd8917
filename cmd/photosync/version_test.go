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
		{"no build info", nil, []string{"photosync dev\n", "revision:    unknown (built without -buildvcs)", "commit time: unknown (built without -buildvcs)"}},
		{"devel, no vcs", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, []string{"photosync dev\n", "unknown (built without -buildvcs)"}},
		{"clean", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.time", Value: "2026-12-01T16:50:00Z"}, {Key: "vcs.modified", Value: "false"},
		}}, []string{"photosync v1.2.0\n", "revision:    0123456789abcdef\n", "commit time: 2026-12-01T16:50:00Z\n"}},
		{"dirty", &debug.BuildInfo{Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"},
		}}, []string{"revision:    0123456789abcdef+dirty\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := versionText(tt.bi)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("lacks %q:\n%s", w, got)
				}
			}
		})
	}
}
