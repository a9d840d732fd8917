package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=…"; the
// module version from the build info is used when it is not.
var version = "dev"

// versionCmd runs `photosync version`.
func versionCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Fprint(stdout, versionText(bi))
	return nil
}

// buildDetails is what the build info says about this binary.
type buildDetails struct {
	version  string // module version or -X main.version
	revision string // VCS revision, "+dirty" when built from a modified tree; "" unknown
	time     string // the revision's commit time, RFC 3339; "" unknown
}

func readBuild(bi *debug.BuildInfo) buildDetails {
	d := buildDetails{version: version}
	if bi == nil {
		return d
	}
	if d.version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		d.version = bi.Main.Version
	}
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			d.revision = s.Value
		case "vcs.time":
			d.time = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if d.revision != "" && dirty {
		d.revision += "+dirty"
	}
	return d
}

// versionText is what `photosync version` prints for build info bi (nil:
// none).
func versionText(bi *debug.BuildInfo) string {
	const unknown = "unknown (built without -buildvcs)"
	d := readBuild(bi)
	rev, t := d.revision, d.time
	if rev == "" {
		rev = unknown
	}
	if t == "" {
		t = unknown
	}
	return fmt.Sprintf("photosync %s\n  revision:    %s\n  commit time: %s\n  go:          %s %s/%s\n",
		d.version, rev, t, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
