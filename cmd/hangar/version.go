package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hangar-dev/hangar/internal/version"
)

// runVersion is `hangar version`: it prints the build's version, commit, build date and Go version
// on stdout, the line a bug report needs.
func runVersion(_ context.Context, args []string, stderr io.Writer) error {
	return printVersion(os.Stdout, stderr, args)
}

func printVersion(stdout, stderr io.Writer, args []string) error {
	fs := flag.NewFlagSet("hangar version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q: version takes none", errUsage, fs.Args())
	}
	_, err := fmt.Fprintln(stdout, "hangar", version.Get())
	return err
}
