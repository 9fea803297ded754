package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/glovebox/glovebox/ledger"
	"github.com/holiman/uint256"
)

// ---- flag helpers ----

// newCommandFlags returns a flag set whose -h prints the command's usage line, help text and flags.
func newCommandFlags(name, args, help string) *flag.FlagSet {
	fl := newFlags(name)
	fl.Usage = func() {
		w := fl.Output()
		fmt.Fprintf(w, "usage: glovebox %s %s\n\n%s\n", name, args, help)
		n := 0
		fl.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nFlags:\n")
			fl.PrintDefaults()
		}
	}
	return fl
}

// parseArgs parses flags that may come before, between or after the positional arguments, and demands
// exactly npos positional arguments.
func parseArgs(fl *flag.FlagSet, args []string, npos int) ([]string, error) {
	var pos []string
	for {
		if err := fl.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, errUsageShown // the flag package has printed what was wrong and the help
		}
		rest := fl.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	fl.VisitAll(func(f *flag.Flag) {
		if v, ok := f.Value.(keyFileValue); ok && *v.p == "" {
			*v.p = os.Getenv("GLOVEBOX_KEY")
		}
	})
	if len(pos) != npos {
		if npos == 0 {
			return nil, usageError(fl, "unexpected argument %q", pos[0])
		}
		return nil, usageError(fl, "want %d argument(s), got %d", npos, len(pos))
	}
	return pos, nil
}

// usageError prints what is wrong with the command line and returns errUsage, so main prints the usage
// line and exits 2.
func usageError(fl *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fl.Output(), "%s: %s\n", fl.Name(), fmt.Sprintf(format, args...))
	return errUsage
}

// required demands that each named flag has a non-empty value.
func required(fl *flag.FlagSet, names ...string) error {
	for _, n := range names {
		f := fl.Lookup(n)
		if f == nil {
			panic("required: no flag " + n)
		}
		if f.Value.String() == "" {
			return usageError(fl, "missing --%s", n)
		}
	}
	return nil
}

// addrFlag is an address flag: all-lower, all-upper or EIP-55 hex.
type addrFlag struct {
	a   common.Address
	set bool
}

func (f *addrFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.a.Hex()
}

func (f *addrFlag) Set(s string) error {
	a, err := ledger.ParseAddress(s)
	if err != nil {
		return err
	}
	f.a, f.set = a, true
	return nil
}

// idFlag is a vehicle id.
type idFlag struct {
	id  uint64
	set bool
}

func (f *idFlag) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatUint(f.id, 10)
}

func (f *idFlag) Set(s string) error {
	id, err := parseVehicleID(s)
	if err != nil {
		return err
	}
	f.id, f.set = id, true
	return nil
}

func parseVehicleID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("a vehicle id is a positive decimal integer, not %q", s)
	}
	return id, nil
}

func (f *idFlag) u256() uint256.Int {
	var v uint256.Int
	v.SetUint64(f.id)
	return v
}

// listFlag is a repeatable string flag.
type listFlag []string

func (f *listFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(*f, ",")
}

func (f *listFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

// nodeFlag adds --node.
func nodeFlag(fl *flag.FlagSet) *string {
	return fl.String("node", envDefault("GLOVEBOX_NODE", "http://127.0.0.1:8080"), "the node's base `URL` (env GLOVEBOX_NODE)")
}

// keyFileValue is the --key flag of a command that signs: the path of a key file. Its default,
// GLOVEBOX_KEY, is applied by parseArgs after parsing rather than as the flag's default value, so that
// --help and usage errors never print the variable (which might hold a private key by mistake).
type keyFileValue struct{ p *string }

func (v keyFileValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v keyFileValue) Set(s string) error { *v.p = s; return nil }

// keyFileFlag adds --key, a key file (env GLOVEBOX_KEY), to fl.
func keyFileFlag(fl *flag.FlagSet, usage string) *string {
	p := new(string)
	fl.Var(keyFileValue{p}, "key", usage)
	return p
}
