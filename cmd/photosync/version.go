package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time with -ldflags "-X main.version=… -X main.revision=…
// -X main.buildTime=…" where the build has no VCS to stamp (a container
// build without .git); otherwise the build info's module version,
// vcs.revision and vcs.time are used.
var (
	version   = "dev"
	revision  = ""
	buildTime = ""
)

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
	time     string // RFC 3339; "" unknown
	timeKind string // what time is: "commit time" (vcs.time) or "build time" (-X main.buildTime)
}

func readBuild(bi *debug.BuildInfo) (d buildDetails) {
	d = buildDetails{version: version, timeKind: "commit time"}
	defer func() {
		if d.revision == "" {
			d.revision = revision
		}
		if d.time == "" && buildTime != "" {
			d.time, d.timeKind = buildTime, "build time"
		}
	}()
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
		t, d.timeKind = unknown, "no build time given"
	}
	return fmt.Sprintf("photosync %s\n  revision: %s\n  time:     %s (%s)\n  go:       %s %s/%s\n",
		d.version, rev, t, d.timeKind, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildLabels are photosync_build_info's labels: the version and revision
// `photosync version` prints, and the Go release that built the binary.
func buildLabels() (version, revision, goVersion string) {
	bi, _ := debug.ReadBuildInfo()
	d := readBuild(bi)
	return d.version, d.revision, runtime.Version()
}
