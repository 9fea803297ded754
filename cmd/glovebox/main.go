// Command glovebox is the one Glovebox binary: the node (serve), the auditor (verify), key management,
// the transaction commands that sign locally and submit over HTTP, and benchmarks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// version is the binary's version, set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand. Subcommands with children (e.g. "vehicle register") use a name with a space.
type command struct {
	name  string
	args  string // usage of the arguments, e.g. "[flags] URL"
	short string // one line of help
	run   func(ctx context.Context, args []string) error
}

var commands []command

func register(c command) { commands = append(commands, c) }

// errUsage makes main print the usage of the command and exit 2.
var errUsage = errors.New("usage")

func usage() {
	fmt.Fprintf(os.Stderr, "glovebox %s: an open, verifiable node for vehicle data\n\nUsage:\n", version)
	slices.SortFunc(commands, func(a, b command) int { return strings.Compare(a.name, b.name) })
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  glovebox %-18s %s\n", c.name, c.short)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'glovebox COMMAND -h' for a command's flags.\n")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run finds the longest command name that prefixes args and runs it; it returns the exit code.
func run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Println("glovebox", version)
		return 0
	}
	var best *command
	var rest []string
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(words) <= len(args) && slices.Equal(words, args[:len(words)]) && (best == nil || len(words) > len(strings.Fields(best.name))) {
			best, rest = &commands[i], args[len(words):]
		}
	}
	if best == nil {
		fmt.Fprintf(os.Stderr, "glovebox: unknown command %q\n\n", strings.Join(args, " "))
		usage()
		return 2
	}
	err := best.run(ctx, rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "usage: glovebox %s %s\n", best.name, best.args)
		return 2
	}
	var ex exitError
	if errors.As(err, &ex) {
		fmt.Fprintln(os.Stderr, "glovebox:", ex.err)
		return ex.code
	}
	fmt.Fprintln(os.Stderr, "glovebox:", err)
	return 1
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// newFlags returns a flag set for a command whose errors are returned, not fatal.
func newFlags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet("glovebox "+c, flag.ContinueOnError)
	return fs
}

// envDefault returns the environment variable's value, or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
