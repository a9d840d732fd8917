package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// A command is one subcommand's help: what `photosync help NAME` and
// `photosync NAME --help` print, above and below its flags.
type command struct {
	name    string // as typed: "serve", "config check"
	summary string // one line, lower case, no full stop
	usage   string // the arguments after the name, positional ones included
	example string // one or more command lines
}

// commands lists every subcommand in the order the top-level usage shows
// them. Each command's flags come from its own flag set, so they cannot
// drift from what it parses.
var commands = []command{
	{"serve", "run the service", "--config FILE [--check]",
		"photosync serve --config /etc/photosync/photosync.yaml --check\nphotosync serve --config /etc/photosync/photosync.yaml"},
	{"demo", "run against an in-process Exchange simulator, with a people page", "[--listen ADDR] [--for DURATION]",
		"photosync demo --listen 127.0.0.1:8080"},
	{"doctor", "check every step of a pull for one mailbox", "--config FILE [--size SIZE] [--timeout DURATION] EMAIL",
		"photosync doctor --config /etc/photosync/photosync.yaml adele@contoso.com"},
	{"trust", "print what Exchange needs to trust photosync", "--config FILE",
		"photosync trust --config /etc/photosync/photosync.yaml"},
	{"keygen", "write a new S2S certificate and key, and print a new realm", "--cert FILE --key FILE [--days N] [--name CN] [--force]",
		"photosync keygen --cert /etc/photosync/s2s.crt --key /etc/photosync/s2s.key"},
	{"warm", "pull the photos of a list of people (one email a line)", "--config FILE [--from FILE|-] [--concurrency N] [--sizes A,B] [--force]",
		"photosync warm --config /etc/photosync/photosync.yaml --from people.txt --sizes HR96x96,HR240x240"},
	{"inspect", "show what is stored about one person's photos", "--config FILE [--json] EMAIL",
		"photosync inspect --config /etc/photosync/photosync.yaml adele@contoso.com"},
	{"forget", "clear one person's records so that the next request pulls", "--config FILE EMAIL",
		"photosync forget --config /etc/photosync/photosync.yaml adele@contoso.com"},
	{"config check", "validate a config file and print it, secrets masked", "FILE",
		"photosync config check /etc/photosync/photosync.yaml"},
	{"config example", "print the example config, which documents every key", "",
		"photosync config example > /etc/photosync/photosync.yaml"},
	{"health", "exit 0 when photosync's /healthz answers 200 (for a container HEALTHCHECK)", "[--url URL] [--timeout DURATION] [--allow-remote]",
		"photosync health --url http://127.0.0.1:8080/healthz"},
	{"version", "print the version, VCS revision and build details", "",
		"photosync version"},
}

// lookupCommand returns the help of the command called name.
func lookupCommand(name string) (command, bool) {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands[i], true
}

// topUsage is the top-level usage: every command with its summary.
func topUsage() string {
	var b strings.Builder
	b.WriteString("photosync: a pull-on-demand profile-photo proxy in front of Exchange\n\nUsage:\n  photosync COMMAND [ARGUMENTS]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-15s %s\n", c.name, c.summary)
	}
	b.WriteString("\n\"photosync help COMMAND\" or \"photosync COMMAND --help\" describes one command.\n")
	b.WriteString("\"photosync config example\" prints the config file's keys, documented.\n")
	return b.String()
}

// writeHelp writes the help of command name: its summary, its usage, the
// flags of fs with their descriptions, and an example. A name missing from
// commands (a programmer's error) gets its flags only.
func writeHelp(w io.Writer, name string, fs *flag.FlagSet) {
	c, _ := lookupCommand(name)
	if c.summary != "" {
		fmt.Fprintf(w, "photosync %s: %s\n\n", name, c.summary)
	}
	fmt.Fprintf(w, "Usage:\n  photosync %s\n", strings.TrimSpace(name+" "+c.usage))
	var n int
	fs.VisitAll(func(f *flag.Flag) {
		if n == 0 {
			fmt.Fprint(w, "\nFlags:\n")
		}
		n++
		arg, desc := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  --%s", f.Name)
		if arg != "" {
			fmt.Fprintf(w, " %s", arg)
		}
		fmt.Fprintf(w, "\n        %s", desc)
		if !isZeroDefault(f) {
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
	if c.example != "" {
		fmt.Fprint(w, "\nExample:\n")
		for _, line := range strings.Split(c.example, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

// isZeroDefault reports whether f's default is not worth printing.
func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "false", "0", "0s":
		return true
	}
	return false
}

// helpArgs reports whether args (after the command's name) ask for help:
// -h, -help or --help before any "--".
func helpArgs(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}
