package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// subcommand is one `hangar <name>` command. run gets the arguments after the name and returns when
// ctx is cancelled (SIGINT/SIGTERM) or the work ends.
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stderr io.Writer) error
}

// subcommands is the table main dispatches on; each entry lives in its own file.
var subcommands = map[string]subcommand{
	"version": {summary: "print the version, commit and build date of this build", run: runVersion},
	"flysim": {summary: "serve the Fly Machines API emulator", run: func(ctx context.Context, args []string, stderr io.Writer) error {
		return runFlysim(ctx, args, stderr, nil)
	}},
	"dev": {summary: "run the local stack: apiserver, Fly emulator and proxy, manager, router", run: runDev},
	"plan": {summary: "print the Fly calls the manager would make for UserApps and UserMachines in files, making none", run: func(ctx context.Context, args []string, stderr io.Writer) error {
		return runPlan(ctx, args, os.Stdout, stderr)
	}},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and turns its outcome into an exit code: 0 success, 2 usage errors,
// 1 anything else.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hangar: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(ctx, args[1:], stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "hangar %s: %v\nRun 'hangar %s -h' for its flags.\n", args[0], err, args[0])
		return 2
	default:
		fmt.Fprintf(stderr, "hangar %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage marks errors in how a command was called.
var errUsage = errors.New("usage error")

// parseFlags parses a subcommand's flags. The flag package would print a parse error and the whole
// usage itself, and run prints the returned error again: so the flag package stays silent, run
// prints the error once, and the usage is printed only when asked for with -h.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stderr)
		fs.Usage()
		return err
	case err != nil:
		return fmt.Errorf("%w: %w", errUsage, err)
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	return nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: hangar <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(subcommands))
	for name := range subcommands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(w, "  %-10s %s\n", name, subcommands[name].summary)
	}
	fmt.Fprintln(w, "\nRun 'hangar <command> -h' for a command's flags.")
}
