// Command glovebox is the one Glovebox binary: the node (serve), the auditor (verify), key management,
// the transaction commands that sign locally and submit over HTTP, and benchmarks.
//
// It owns flags and wiring only: what a command does lives in the packages it imports (node, verify,
// client, …), and nothing imports it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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

// errUsage makes main print the usage line of the command and exit 2; errUsageShown makes it exit 2
// without a word (the flag package has printed the error and the command's help).
var (
	errUsage      = errors.New("usage")
	errUsageShown = errors.New("usage shown")
)

func usage(w io.Writer) {
	fmt.Fprintf(w, "glovebox %s: an open, verifiable node for vehicle data\n\nUsage:\n", version)
	slices.SortFunc(commands, func(a, b command) int { return strings.Compare(a.name, b.name) })
	for _, c := range commands {
		fmt.Fprintf(w, "  glovebox %-20s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun 'glovebox COMMAND --help' for a command's flags.\n")
}

// group returns the commands whose name starts with the word g and a space ("key new", "key show"), by
// name.
func group(g string) []command {
	var out []command
	for _, c := range commands {
		if strings.HasPrefix(c.name, g+" ") {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b command) int { return strings.Compare(a.name, b.name) })
	return out
}

func groupUsage(w io.Writer, g string, cs []command) {
	fmt.Fprintf(w, "Usage:\n")
	for _, c := range cs {
		fmt.Fprintf(w, "  glovebox %-20s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nRun 'glovebox %s COMMAND --help' for a command's flags.\n", g)
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:]))
}

// run finds the longest command name that prefixes args and runs it; it returns the exit code.
func run(ctx context.Context, args []string) int {
	if len(args) == 0 || isHelp(args[0]) {
		if len(args) == 0 {
			usage(os.Stderr)
			return 2
		}
		usage(stdout)
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "glovebox", version)
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
		if cs := group(args[0]); len(cs) > 0 {
			// "glovebox key" or "glovebox key --help": the group's commands.
			if len(args) > 1 && isHelp(args[1]) {
				groupUsage(stdout, args[0], cs)
				return 0
			}
			if len(args) > 1 {
				fmt.Fprintf(os.Stderr, "glovebox: unknown command %q%s\n\n", args[0]+" "+args[1], suggest(args))
			}
			groupUsage(os.Stderr, args[0], cs)
			return 2
		}
		fmt.Fprintf(os.Stderr, "glovebox: unknown command %q%s\nRun 'glovebox --help' for the list of commands.\n", args[0], suggest(args))
		return 2
	}
	err := best.run(ctx, rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsageShown):
		return 2
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "usage: glovebox %s %s\nRun 'glovebox %s --help' for its flags.\n", best.name, best.args, best.name)
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

// suggest returns "; did you mean …?" naming the command closest to what args begin with, or "" when
// none is close: within two edits per word typed, so that a typo is caught and a different word is not.
func suggest(args []string) string {
	best, bestDist := "", 0
	for _, c := range commands {
		names := []string{c.name}
		if g, _, ok := strings.Cut(c.name, " "); ok {
			names = append(names, g) // a group: "vehicel" → "vehicle"
		}
		for _, name := range names {
			n := len(strings.Fields(name))
			if n > len(args) {
				continue
			}
			d := editDistance(strings.Join(args[:n], " "), name)
			if d > 0 && d <= 2*n && (best == "" || d < bestDist || (d == bestDist && len(name) > len(best))) {
				best, bestDist = name, d
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// newFlags returns a flag set for command c whose errors are returned, not fatal, and whose --help
// prints the command's usage line, what it does and its flags.
func newFlags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet("glovebox "+c, flag.ContinueOnError)
	fs.Usage = func() {
		w := fs.Output()
		for _, cmd := range commands {
			if cmd.name == c {
				fmt.Fprintf(w, "usage: glovebox %s %s\n\nglovebox %s: %s.\n", c, cmd.args, c, cmd.short)
			}
		}
		fmt.Fprintf(w, "\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// envDefault returns the environment variable's value, or def.
func envDefault(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}
