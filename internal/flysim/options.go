package flysim

import (
	"time"

	"github.com/go-logr/logr"
)

// OrgToken binds one API token to the organization (by slug) it may act in.
type OrgToken struct {
	Token string
	Org   string
}

// Delays sets how long each asynchronous machine transition takes. A zero field takes the small
// default of DefaultDelays, so tests can set only the transition they want to hold.
type Delays struct {
	Create  time.Duration // created → starting, when the machine launches after create
	Start   time.Duration // starting → started
	Stop    time.Duration // stopping → stopped
	Suspend time.Duration // suspending → suspended
	Restart time.Duration // restarting → starting
	Destroy time.Duration // destroying → destroyed
	Update  time.Duration // replacing → the post-update state
}

// DefaultDelays are the transition delays used for zero fields of Options.Delays: short enough for tests,
// long enough that the transient states are observable.
var DefaultDelays = Delays{
	Create:  5 * time.Millisecond,
	Start:   20 * time.Millisecond,
	Stop:    20 * time.Millisecond,
	Suspend: 20 * time.Millisecond,
	Restart: 10 * time.Millisecond,
	Destroy: 20 * time.Millisecond,
	Update:  20 * time.Millisecond,
}

// DefaultRegion is where a machine lands when its create request names no region. Fly picks the region
// nearest to the caller; the emulator has no caller location, so it uses Chicago.
const DefaultRegion = "ord"

// DefaultLeaseTTL is the lease lifetime when the acquire request gives no ttl. Stricter: the sheet leaves
// the real default open; a short one surfaces clients that forget to pass a ttl or to refresh.
const DefaultLeaseTTL = 30 * time.Second

// Options configure a Server.
type Options struct {
	// Orgs lists the accepted tokens and the organization each acts in; at least one is needed.
	// Every org named here exists from the start, with its default private network.
	Orgs []OrgToken
	// Seed makes generated IDs, names, addresses and fault decisions deterministic.
	Seed int64
	// Now is the clock for timestamps, lease expiry, list lag and rate limits; default time.Now.
	// Transition delays, wait timeouts and fault latency use real timers.
	Now func() time.Time
	// Delays of the asynchronous state transitions; zero fields take DefaultDelays.
	Delays Delays
	// DisableRateLimits turns off the published Fly rate limits.
	DisableRateLimits bool
	// Logger receives one line per API call at V(1); optional. Tokens are never logged.
	Logger logr.Logger
	// Profile sets how far the emulator departs from a fast, healthy Fly (profiles.go): the zero
	// value is Fast(), for unit tests; Realistic() models what is known of real Fly (§11).
	Profile Profile
	// CallHook, when set, is called synchronously twice for every API call that reaches its handler:
	// before the handler acts and after it has made its change, before the answer is written
	// (hook.go). It may block, or kill another process; the call continues when it returns.
	CallHook func(CallPoint)
	// Checks runs the machines' health checks (CheckProber): usermachine.Checks probes the
	// emulated machines, so a started machine whose app does not listen yet fails them, as on Fly.
	// Without it, every check of a started machine passes (the fallback of a Server that runs no
	// machines, such as flysim's own unit tests).
	Checks CheckProber
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	d := &o.Delays
	fill := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	fill(&d.Create, DefaultDelays.Create)
	fill(&d.Start, DefaultDelays.Start)
	fill(&d.Stop, DefaultDelays.Stop)
	fill(&d.Suspend, DefaultDelays.Suspend)
	fill(&d.Restart, DefaultDelays.Restart)
	fill(&d.Destroy, DefaultDelays.Destroy)
	fill(&d.Update, DefaultDelays.Update)
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o
}
