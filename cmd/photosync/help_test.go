package main

import (
	"context"
	"strings"
	"testing"
)

// TestHelp asks every command for its help both ways: `CMD --help` and
// `help CMD` print to stdout, exit 0, and show the usage, the flags and an
// example.
func TestHelp(t *testing.T) {
	for _, c := range commands {
		name := strings.Fields(c.name)
		for _, args := range [][]string{
			append(append([]string{}, name...), "--help"),
			append(append([]string{}, name...), "-h"),
			append([]string{"help"}, name...),
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr strings.Builder
				if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
					t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr.String())
				}
				if stderr.Len() != 0 {
					t.Errorf("help went to stderr:\n%s", stderr.String())
				}
				out := stdout.String()
				for _, want := range []string{"photosync " + c.name + ": " + c.summary, "Usage:\n  photosync " + c.name, "Example:\n  photosync "} {
					if !strings.Contains(out, want) {
						t.Errorf("help lacks %q:\n%s", want, out)
					}
				}
				if strings.Contains(c.usage, "--") && !strings.Contains(out, "Flags:\n  --") {
					t.Errorf("help lists no flags:\n%s", out)
				}
			})
		}
	}
}

// TestUnknownFlag: a wrong flag is a usage error, exit 2, the help on stderr.
func TestUnknownFlag(t *testing.T) {
	for _, args := range [][]string{{"keygen", "--nope"}, {"health", "--nope"}, {"trust", "--nope"}, {"config", "check", "--nope"}, {"version", "--nope"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr strings.Builder
			if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2", code)
			}
			if stdout.Len() != 0 || !strings.Contains(stderr.String(), "flag provided but not defined: -nope") || !strings.Contains(stderr.String(), "Usage:") {
				t.Errorf("stdout %q, stderr:\n%s", stdout.String(), stderr.String())
			}
		})
	}
}

func TestTopUsageListsEveryCommand(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range commands {
		if !strings.Contains(stdout.String(), "  "+c.name+" ") {
			t.Errorf("usage lacks %s:\n%s", c.name, stdout.String())
		}
	}
	if strings.Contains(stdout.String(), "configs/photosync.example.yaml") {
		t.Error("usage points at a file a binary lacks")
	}
}

func TestConfigHelpListsBoth(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run(context.Background(), []string{"config", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"photosync config check FILE", "photosync config example"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("lacks %q:\n%s", want, stdout.String())
		}
	}
}
