// Command photosync is the photosync binary: a pull-on-demand profile-photo
// proxy in front of Exchange.
//
//	photosync serve --config FILE   run the service
//	photosync demo                  run it against an in-process Exchange simulator
//	photosync doctor --config FILE EMAIL  check every step of a pull for one mailbox
//	photosync trust --config FILE   print what Exchange needs to trust photosync
//	photosync version               print the version
//
// This package is wiring only: flags and the config file become the options
// of the packages that do the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `photosync: a pull-on-demand profile-photo proxy in front of Exchange

Usage:
  photosync serve --config FILE [--check]   run the service (--check: validate the config and exit)
  photosync demo [--listen ADDR] [--for D]  run against an in-process Exchange simulator
  photosync doctor --config FILE EMAIL      check every step of a pull for one mailbox
  photosync trust --config FILE             print what Exchange needs to trust photosync
  photosync version                         print the version
  photosync warm --config FILE [--from FILE|-] [--concurrency N] [--sizes A,B] [--force]
                                            pull photos for a list of people (one email a line)
  photosync inspect --config FILE EMAIL [--json]   what is stored about one person's photos
  photosync forget --config FILE EMAIL      clear one person's records so the next request pulls
  photosync config check FILE               validate FILE and print it, secrets masked

The config file's keys are documented in configs/photosync.example.yaml.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serveCmd(ctx, args[1:], stdout, stderr)
	case "demo":
		err = demoCmd(ctx, args[1:], stdout, stderr)
	case "warm":
		err = warmCmd(ctx, args[1:], os.Stdin, stdout, stderr)
	case "inspect":
		err = inspectCmd(ctx, args[1:], stdout, stderr)
	case "forget":
		err = forgetCmd(ctx, args[1:], stdout, stderr)
	case "config":
		err = configCmd(args[1:], stdout, stderr)
	case "doctor":
		err = doctorCmd(ctx, args[1:], stdout, stderr)
	case "trust":
		err = trustCmd(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "photosync: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errFailed):
		return 1 // the command has said what failed
	default:
		fmt.Fprintf(stderr, "photosync: %v\n", err)
		return 1
	}
}

var errUsage = errors.New("usage")

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("photosync %s (%s, %s/%s)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// newFlags returns a flag set that reports its errors to stderr and returns
// errUsage instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("photosync "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return errUsage
	}
	return nil
}
