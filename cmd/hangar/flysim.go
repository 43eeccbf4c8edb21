package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/logging"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(len(*l), " value(s)") } // never prints tokens
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// flysimConfig is what the flysim flags parse into.
type flysimConfig struct {
	listen string
	opts   flysim.Options
	log    logging.Options
}

// parseFlysimFlags reads the flysim command line. Tokens and orgs pair up in order.
func parseFlysimFlags(args []string, stderr io.Writer) (flysimConfig, error) {
	fs := flag.NewFlagSet("hangar flysim", flag.ContinueOnError)
	var cfg flysimConfig
	var tokens, orgs stringList
	var seed int64
	var profile profileFlags
	d := &cfg.opts.Delays
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:4280", "address to serve the API on (port 4280, like _api.internal)")
	fs.Var(&tokens, "token", "an accepted API token (repeatable; pairs with --org in order)")
	fs.Var(&orgs, "org", "the org slug the matching --token acts in (repeatable)")
	fs.Int64Var(&seed, "seed", 0, "seed for IDs, names and fault decisions (default: from the clock, logged at start)")
	fs.BoolVar(&cfg.opts.DisableRateLimits, "no-rate-limits", false, "do not enforce Fly's published rate limits")
	fs.DurationVar(&d.Create, "create-delay", 0, "created → starting after a launching create (0: "+flysim.DefaultDelays.Create.String()+")")
	fs.DurationVar(&d.Start, "start-delay", 0, "starting → started (0: "+flysim.DefaultDelays.Start.String()+")")
	fs.DurationVar(&d.Stop, "stop-delay", 0, "stopping → stopped (0: "+flysim.DefaultDelays.Stop.String()+")")
	fs.DurationVar(&d.Suspend, "suspend-delay", 0, "suspending → suspended (0: "+flysim.DefaultDelays.Suspend.String()+")")
	fs.DurationVar(&d.Restart, "restart-delay", 0, "restarting → starting (0: "+flysim.DefaultDelays.Restart.String()+")")
	fs.DurationVar(&d.Destroy, "destroy-delay", 0, "destroying → destroyed (0: "+flysim.DefaultDelays.Destroy.String()+")")
	fs.DurationVar(&d.Update, "update-delay", 0, "replacing → the post-update state (0: "+flysim.DefaultDelays.Update.String()+")")
	profile.bind(fs, "fast")
	cfg.log.BindFlags(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return cfg, err
	}
	switch {
	case len(tokens) == 0:
		return cfg, fmt.Errorf("%w: at least one --token and --org pair is required", errUsage)
	case len(tokens) != len(orgs):
		return cfg, fmt.Errorf("%w: %d --token but %d --org: they pair up in order", errUsage, len(tokens), len(orgs))
	}
	for i := range tokens {
		if strings.TrimSpace(tokens[i]) == "" || strings.TrimSpace(orgs[i]) == "" {
			return cfg, fmt.Errorf("%w: --token and --org must not be empty", errUsage)
		}
		cfg.opts.Orgs = append(cfg.opts.Orgs, flysim.OrgToken{Token: tokens[i], Org: orgs[i]})
	}
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	cfg.opts.Seed = seed
	p, err := profile.resolve()
	if err != nil {
		return cfg, err
	}
	if p.Name != "fast" {
		var delays []string
		fs.Visit(func(f *flag.Flag) {
			if strings.HasSuffix(f.Name, "-delay") {
				delays = append(delays, "--"+f.Name)
			}
		})
		if len(delays) > 0 {
			return cfg, fmt.Errorf("%w: %s set the fast profile's fixed delays; the %s profile draws its own (scale them with --fly-time-scale)",
				errUsage, strings.Join(delays, ", "), p.Name)
		}
	}
	cfg.opts.Profile = p
	return cfg, nil
}

// profileFlags are the --fly-profile and --fly-time-scale flags of flysim and dev.
type profileFlags struct {
	name  string
	scale float64
}

func (f *profileFlags) bind(fs *flag.FlagSet, def string) {
	fs.StringVar(&f.name, "fly-profile", def, "how the emulated Fly behaves: "+strings.Join(flysim.ProfileNames, " or ")+
		" (realistic: list lag, asynchronous apps, transitions of seconds, lost answers; see internal/flysim/profiles.go)")
	fs.Float64Var(&f.scale, "fly-time-scale", 1, "multiplies every delay the profile draws (e.g. 0.1); the fast profile draws none")
}

// resolve returns the named profile with the time scale applied.
func (f *profileFlags) resolve() (flysim.Profile, error) {
	p, err := flysim.ProfileByName(f.name)
	if err != nil {
		return p, fmt.Errorf("%w: --fly-profile: %w", errUsage, err)
	}
	if f.scale <= 0 {
		return p, fmt.Errorf("%w: --fly-time-scale must be above 0", errUsage)
	}
	p.TimeScale = f.scale
	return p, nil
}

// runFlysim serves the emulator until ctx ends. onListen, when set, learns the bound address (tests
// listen on port 0).
func runFlysim(ctx context.Context, args []string, stderr io.Writer, onListen func(net.Addr)) error {
	cfg, err := parseFlysimFlags(args, stderr)
	if err != nil {
		return err
	}
	log, flush, err := logging.New(cfg.log)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	defer flush()
	cfg.opts.Logger = log.WithName("flysim")

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.listen, err)
	}
	emulator := flysim.New(cfg.opts)
	server := &http.Server{Handler: emulator, ReadHeaderTimeout: 10 * time.Second}

	orgs := make([]string, 0, len(cfg.opts.Orgs))
	for _, o := range cfg.opts.Orgs {
		orgs = append(orgs, o.Org) // slugs only: tokens are never logged
	}
	log.Info("Serving the Fly Machines API emulator", "address", ln.Addr().String(), "orgs", orgs,
		"seed", cfg.opts.Seed, "rateLimits", !cfg.opts.DisableRateLimits, "profile", cfg.opts.Profile.Name,
		"timeScale", cfg.opts.Profile.TimeScale)
	if onListen != nil {
		onListen(ln.Addr())
	}

	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	select {
	case err := <-served:
		emulator.Close()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("Shutting down the Fly Machines API emulator")
	// Close the emulator first: it answers blocked /wait calls, so Shutdown need not wait up to 60 s.
	emulator.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	return nil
}
