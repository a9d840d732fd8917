// Command photosync is the photosync binary: a pull-on-demand profile-photo
// proxy in front of Exchange.
//
//	photosync serve --config FILE   run the service
//	photosync demo                  run it against an in-process Exchange simulator
//	photosync doctor --config FILE EMAIL  check every step of a pull for one mailbox
//	photosync trust --config FILE   print what Exchange needs to trust photosync
//	photosync keygen --cert FILE --key FILE  write a new S2S key pair and realm
//	photosync health                check the local /healthz, for a HEALTHCHECK
//	photosync version               print the version
//
// "photosync help" lists every command; "photosync help CMD" describes one.
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
	"syscall"
)

// usage is the top-level usage, built from the command registry (help.go).
var usage = topUsage()

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
	if args[0] == "help" && len(args) > 1 {
		// photosync help CMD [SUBCMD] is photosync CMD [SUBCMD] --help.
		args = append(args[1:len(args):len(args)], "--help")
	}
	if len(args) > 1 && helpArgs(args[1:]) {
		// CMD --help: the command's flag set prints its help (newFlags),
		// to stdout, and the command stops there with flag.ErrHelp.
		stderr = stdout
		if args[0] == "config" && len(args) > 2 && !helpArgs(args[1:2]) {
			args = []string{"config", args[1], "--help"}
		} else {
			args = []string{args[0], "--help"}
		}
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
	case "keygen":
		err = keygenCmd(args[1:], stdout, stderr)
	case "health":
		err = healthCmd(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		err = versionCmd(args[1:], stdout, stderr)
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
	case errors.Is(err, errFailed), errors.Is(err, errUnhealthy):
		return 1 // the command has said what failed
	default:
		fmt.Fprintf(stderr, "photosync: %v\n", err)
		return 1
	}
}

var errUsage = errors.New("usage")

// newFlags returns a flag set that reports its errors to stderr and returns
// errUsage instead of exiting. Its usage is the command's help (help.go):
// on --help, run has pointed stderr at stdout.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("photosync "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { writeHelp(fs.Output(), name, fs) }
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
