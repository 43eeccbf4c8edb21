// Package logging builds the structured logger every hangar binary uses: zap underneath, exposed as a
// logr.Logger through zapr so controller-runtime, client-go (klog) and our code share one sink. It
// does not decide what to log; callers never pass secrets to it.
package logging

import (
	"flag"
	"fmt"
	"strings"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Options selects the log level and encoding.
type Options struct {
	// Level is debug, info, warn or error; a positive integer n means logr V(n) verbosity.
	Level string
	// Format is json (the default, for machines) or console (for people).
	Format string
}

// BindFlags registers --log-level and --log-format on fs.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Level, "log-level", "info", "Log level: debug, info, warn, error, or a logr verbosity number")
	fs.StringVar(&o.Format, "log-format", "json", "Log encoding: json or console")
}

// New builds the logger. The returned func flushes buffered entries; call it before exit.
func New(o Options) (logr.Logger, func(), error) {
	level, err := parseLevel(o.Level)
	if err != nil {
		return logr.Discard(), func() {}, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.EncoderConfig.TimeKey = "ts"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.Sampling = nil // a controller's rare lines matter more than log volume
	switch strings.ToLower(o.Format) {
	case "", "json":
		cfg.Encoding = "json"
	case "console":
		cfg.Encoding = "console"
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	default:
		return logr.Discard(), func() {}, fmt.Errorf("--log-format %q: use json or console", o.Format)
	}
	zl, err := cfg.Build()
	if err != nil {
		return logr.Discard(), func() {}, err
	}
	return zapr.NewLogger(zl), func() { _ = zl.Sync() }, nil
}

func parseLevel(s string) (zapcore.Level, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n < 0 {
			return 0, fmt.Errorf("--log-level %q: verbosity cannot be negative", s)
		}
		// logr's V(n) maps to zap level -n.
		return zapcore.Level(-n), nil
	}
	var l zapcore.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(s))); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn, error or a number", s)
	}
	return l, nil
}
