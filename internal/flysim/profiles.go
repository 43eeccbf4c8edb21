package flysim

import (
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Profiles: how close to real Fly the emulator behaves. Options (options.go) and the fault knobs
// (faults.go) are what a test sets on purpose; a profile is the background unkindness of real Fly
// (§11): reads that lag behind writes, answers lost after a change committed, apps that appear and
// disappear asynchronously, transitions that take seconds. The fast profile, the zero value, has
// none of it and is what unit tests use; the realistic profile has all of it.

// Dist is a duration drawn uniformly from [Min, Max]. The zero Dist is "none": the behaviour it
// sets is off.
type Dist struct {
	Min, Max time.Duration
}

// Fixed is a Dist that always draws d.
func Fixed(d time.Duration) Dist { return Dist{Min: d, Max: d} }

func (d Dist) isZero() bool { return d.Min == 0 && d.Max == 0 }

func (d Dist) validate(field string) error {
	if d.Min < 0 || d.Max < d.Min {
		return fmt.Errorf("flysim: profile %s: want 0 <= Min <= Max, got %v..%v", field, d.Min, d.Max)
	}
	return nil
}

// Transition is one row of the transition table: how long a machine stays in the transient state.
// Zero Typical means the fast profile's fixed Options.Delays applies to that transition.
type Transition struct {
	// Typical is where nearly every draw falls.
	Typical Dist
	// Slow is drawn instead with probability Profile.SlowTransitions (a host having a bad day).
	Slow Dist
}

// Transitions is the transition table, one row per asynchronous state change (§5).
type Transitions struct {
	Create  Transition // created → starting, when a machine launches after create
	Start   Transition // starting → started, a cold boot (from created, stopped or failed, or after an update or restart)
	Resume  Transition // starting → started, resuming a suspended machine from its snapshot
	Stop    Transition // stopping → stopped
	Suspend Transition // suspending → suspended
	Restart Transition // restarting → starting
	Update  Transition // replacing → the post-update state (a started machine then boots: Start)
	Destroy Transition // destroying → destroyed
}

// Profile says how the emulator departs from a fast, healthy Fly. Every field is a knob a test may
// tune (start from Fast or Realistic and change fields); the zero value is the fast profile. Every
// draw (durations, rates) comes from random sources seeded by Options.Seed: one per machine and one
// per app for what happens to them, and one for the server's per-request decisions, so a run with the
// same seed and the same sequence of calls replays, whatever order concurrent timers fire in.
type Profile struct {
	// Name labels the profile in logs; it changes nothing.
	Name string
	// TimeScale multiplies every duration the profile draws (not Options.Delays, wait timeouts,
	// lease TTLs or rate limits), so a suite can shrink the realistic delays proportionally while
	// keeping their order and asynchrony, e.g. 0.1. Zero means 1.
	TimeScale float64

	// ListLag is how long the machine list (GET /apps/{app}/machines) takes to reflect a create or a
	// destroy, drawn per write and measured with Options.Now: a new machine is missing from the list
	// until then, and a destroyed one is still listed, in the state it had before. GET by ID is
	// always consistent. Zero: the list is consistent. SetListLag adds a fixed lag on creates.
	ListLag Dist

	// ShortPages is the fraction (0..1) of list pages (machines and apps, when the request has a
	// `limit`) cut short: such a page holds a drawn number of items from 0 to limit-1, while the
	// cursor still says more remain. Zero: pages are full.
	ShortPages float64

	// UnclearFailures maps an action name to the fraction (0..1) of its successful calls that commit
	// and then fail unclearly: the change is made and the client gets a 408 (Fly's request-timeout
	// shape, §7) or, for a fraction UnclearDrop of them, a dropped connection. A fault set with
	// SetFault for the call takes precedence. Nil: none.
	UnclearFailures map[string]float64
	// UnclearDrop is the fraction (0..1) of unclear failures that drop the connection instead of
	// answering 408.
	UnclearDrop float64

	// AppCreateLag is how long an app stays invisible after create answered (GET 404, and 404 for
	// its machines, secrets and IP assignments; the name is taken meanwhile), measured with
	// Options.Now. Zero: visible at once.
	AppCreateLag Dist
	// AppCreateWaitResidual applies to a create sent with ?wait=true (as fly-go sends it): the
	// answer is held until the app is visible but for a residual drawn from this Dist, so wait=true
	// is no guarantee (fly-go still polls GET for up to a minute afterwards).
	AppCreateWaitResidual Dist
	// AppDeleteLag is how long an app delete (202) takes to complete, on a real timer: meanwhile the
	// app, its machines and its name stay; then they are gone. Zero: gone at once.
	AppDeleteLag Dist

	// Transitions is the transition table; zero rows take the fixed Options.Delays.
	Transitions Transitions
	// SlowTransitions is the fraction (0..1) of transitions drawn from their row's Slow Dist.
	SlowTransitions float64
	// ListenDelay is how long after a machine reads `started` its simulated user machine opens its
	// listeners (flysim/usermachine): started means the VM booted, not that the app listens. Zero:
	// at once.
	ListenDelay Dist
	// DestroyedReadable is how long a destroyed machine still answers GET (state destroyed) before
	// every call about it answers 404, measured with Options.Now. Zero: it answers GET for ever.
	DestroyedReadable Dist

	// TypedConfig stores (and returns) only the config fields Fly's typed config knows
	// (configschema.go), dropping any other key at every level, as a typed decoder does.
	TypedConfig bool

	// SecretsLag is how long an app secrets write takes to reach reads and booting machines,
	// measured with Options.Now. A read with version/min_version, and a machine create or update
	// with min_secrets_version, at or below the written version see at least that version at once.
	// Zero: writes are visible at once.
	SecretsLag Dist

	// DuplicateMachineNames lets several live machines of an app share a name. Whether Fly enforces
	// unique machine names within an app is unconfirmed; the fast profile refuses a duplicate
	// (422 name_taken), the realistic one takes the less kind reading and accepts it.
	DuplicateMachineNames bool

	// RequirePublicIP makes the proxy simulator (flysim/proxy) refuse inbound traffic to an entry
	// app without a public address (v4, v6 or shared_v4): apps created through the API have none
	// (§2, §11). Replay targets need none.
	RequirePublicIP bool
}

// Fast is the default profile: consistent reads, no unclear failures, the fixed Options.Delays.
// It equals the zero Profile apart from its Name.
func Fast() Profile { return Profile{Name: "fast"} }

// Realistic is the profile modelled on what is known of real Fly (docs/fly-api.md, §11). Each
// default below cites its source; where the sources give no figure the choice is marked. Its slow
// transition tail is off (SlowTransitions 0) so that it stays usable in tests; set SlowTransitions
// (e.g. 0.01) to get transitions over a minute.
func Realistic() Profile {
	return Profile{
		Name:      "realistic",
		TimeScale: 1,
		// §11 "Read-after-write": the machine list is served from a replicated read side
		// (Corrosion) that can miss a write that just happened (flyctl
		// internal/command/deploy/strategy_bluegreen.go). The figure is chosen: p99 about 1.5 s.
		ListLag: Dist{Min: 100 * time.Millisecond, Max: 1500 * time.Millisecond},
		// §4.3 and §11 "Pagination": `limit` is advisory; a page may be shorter, or empty, while the
		// cursor says more remain (OpenAPI copy). The rate is chosen.
		ShortPages: 0.2,
		// §7 and §11 "Unclear create": launch can answer 408 after committing the machine (flyctl
		// blue-green strategy); the same transport failures hit update and lease acquisition, which
		// fly-go retries blindly for a minute (§4.6). Rates chosen.
		UnclearFailures: map[string]float64{
			actCreateMachine: 0.02,
			actUpdateMachine: 0.02,
			actAcquireLease:  0.02,
		},
		UnclearDrop: 0.5,
		// §2 and §11 "App create": fly-go posts /apps?wait=true and then WaitForApp retries 404/401
		// for up to a minute (fly-go flaps/flaps_apps.go), so an app is not readable at once.
		// Window chosen.
		AppCreateLag:          Dist{Min: 500 * time.Millisecond, Max: 3 * time.Second},
		AppCreateWaitResidual: Dist{Min: 0, Max: 300 * time.Millisecond},
		// §2 "Delete": 202 Accepted, completion asynchronous (docs apps-resource; fly-go). Window chosen.
		AppDeleteLag: Dist{Min: 1 * time.Second, Max: 5 * time.Second},
		Transitions:  realisticTransitions,
		// §4.7, §11 and the warm-pool guide (superfly/docs blueprints/warm-pool-user-machines.html.md):
		// "started doesn't mean ready": the VM booted, the app inside may not listen yet. Chosen.
		ListenDelay: Dist{Min: 200 * time.Millisecond, Max: 1500 * time.Millisecond},
		// §11 "Destroyed": a destroyed machine reads `state: destroyed` for a while, then 404 (public
		// issue logs). The window is chosen.
		DestroyedReadable: Dist{Min: 10 * time.Second, Max: 60 * time.Second},
		// §6 and §11 "Typed config": the config is typed in fly-go (machine_types.go) and the OpenAPI
		// copy; a typed decoder drops unknown keys.
		TypedConfig: true,
		// §3 and §11 "Secrets": flyctl tracks a minimum secrets version and sends it on machine
		// create/update and on reads (flyctl internal/appsecrets/minvers.go), so a write is not
		// visible everywhere at once. Lag chosen.
		SecretsLag: Dist{Min: 200 * time.Millisecond, Max: 2 * time.Second},
		// §4.1 says names are unique within an app, but nothing confirms Fly enforces it: the less
		// kind reading.
		DuplicateMachineNames: true,
		// §2, §11 "Public IPs": apps created through the API get no public IPs; the Fly Proxy needs
		// one to route an app's inbound traffic, but not for fly-replay targets
		// (https://fly.io/docs/networking/app-services/: "App needs an IP? YES (not for Fly-Replay)").
		RequirePublicIP: true,
	}
}

// realisticTransitions is the realistic transition table. Sources: docs/fly-api.md §5 and §11;
// superfly/docs reference/suspend-resume.html.md ("Resume from suspend: a few hundred ms; Cold
// start: ~2+ seconds for common apps"); blueprints/warm-pool-user-machines.html.md (a Machine
// update with its restart takes "~20s"); machines/working-with-machines-api (§8: resuming is faster
// than starting, which is faster than an update, which is faster than a create). The slow tail
// (§11 "bad cases over 60 s"; §5 calls a machine stuck after 5 min in a transient state, 10 min in
// updating) applies only with Profile.SlowTransitions.
var realisticTransitions = Transitions{
	// Create: image pull and placement before the boot begins; a create is the slowest path (§8).
	Create: Transition{Typical: Dist{Min: 2 * time.Second, Max: 8 * time.Second}, Slow: slowTail},
	// Start: a cold boot, "~2+ seconds" (suspend-resume page); §11 "Start takes seconds".
	Start: Transition{Typical: Dist{Min: 1 * time.Second, Max: 3 * time.Second}, Slow: slowTail},
	// Resume: "a few hundred ms" (suspend-resume page).
	Resume: Transition{Typical: Dist{Min: 200 * time.Millisecond, Max: 800 * time.Millisecond}},
	// Stop: bounded by the stop timeout before SIGKILL (§4.5); flyctl's default kill_timeout is 5 s
	// (superfly/docs reference/configuration). Chosen within it.
	Stop: Transition{Typical: Dist{Min: 500 * time.Millisecond, Max: 5 * time.Second}},
	// Suspend: a memory snapshot, slower with more memory (suspend-resume page). Chosen.
	Suspend: Transition{Typical: Dist{Min: 1 * time.Second, Max: 3 * time.Second}},
	// Restart: a stop of the running process before the boot (§5 restarting → starting). Chosen.
	Restart: Transition{Typical: Dist{Min: 500 * time.Millisecond, Max: 3 * time.Second}},
	// Update: §11 "`replacing` lasts seconds", and §8's order: an update (replacing, then the boot
	// of a machine that was running) is slower than a start and faster than a create (its image pull
	// and placement, then the boot). Chosen within those bounds; TestRealisticTransitionsKeepTheOrder
	// holds the order.
	Update: Transition{Typical: Dist{Min: 1500 * time.Millisecond, Max: 6 * time.Second}, Slow: slowTail},
	// Destroy: asynchronous (§4.5 destroying → destroyed). Chosen.
	Destroy: Transition{Typical: Dist{Min: 500 * time.Millisecond, Max: 3 * time.Second}},
}

// slowTail is the slow draw of the rows that can hang on a bad host: over a minute (§11).
var slowTail = Dist{Min: 60 * time.Second, Max: 120 * time.Second}

// ProfileNames are the names ProfileByName knows.
var ProfileNames = []string{"fast", "realistic"}

// ProfileByName returns the named profile ("fast" or "realistic").
func ProfileByName(name string) (Profile, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "fast", "":
		return Fast(), nil
	case "realistic":
		return Realistic(), nil
	}
	return Profile{}, fmt.Errorf("flysim: unknown profile %q (want one of %s)", name, strings.Join(ProfileNames, ", "))
}

// Validate reports a field out of range: a negative TimeScale, a rate outside 0..1, a Dist with
// Min above Max, or an UnclearFailures key that is not an action name.
func (p Profile) Validate() error {
	if p.TimeScale < 0 {
		return fmt.Errorf("flysim: profile TimeScale %v is negative", p.TimeScale)
	}
	rates := map[string]float64{"ShortPages": p.ShortPages, "UnclearDrop": p.UnclearDrop, "SlowTransitions": p.SlowTransitions}
	for _, action := range slices.Sorted(maps.Keys(p.UnclearFailures)) {
		if !slices.Contains(Actions, action) {
			return fmt.Errorf("flysim: profile UnclearFailures: %q is not an action name", action)
		}
		rates["UnclearFailures["+action+"]"] = p.UnclearFailures[action]
	}
	for _, name := range slices.Sorted(maps.Keys(rates)) {
		if r := rates[name]; r < 0 || r > 1 {
			return fmt.Errorf("flysim: profile %s: rate %v is outside 0..1", name, r)
		}
	}
	t := p.Transitions
	dists := []struct {
		name string
		d    Dist
	}{
		{"ListLag", p.ListLag}, {"AppCreateLag", p.AppCreateLag}, {"AppCreateWaitResidual", p.AppCreateWaitResidual},
		{"AppDeleteLag", p.AppDeleteLag}, {"ListenDelay", p.ListenDelay}, {"DestroyedReadable", p.DestroyedReadable},
		{"SecretsLag", p.SecretsLag},
		{"Transitions.Create", t.Create.Typical}, {"Transitions.Create.Slow", t.Create.Slow},
		{"Transitions.Start", t.Start.Typical}, {"Transitions.Start.Slow", t.Start.Slow},
		{"Transitions.Resume", t.Resume.Typical}, {"Transitions.Resume.Slow", t.Resume.Slow},
		{"Transitions.Stop", t.Stop.Typical}, {"Transitions.Stop.Slow", t.Stop.Slow},
		{"Transitions.Suspend", t.Suspend.Typical}, {"Transitions.Suspend.Slow", t.Suspend.Slow},
		{"Transitions.Restart", t.Restart.Typical}, {"Transitions.Restart.Slow", t.Restart.Slow},
		{"Transitions.Update", t.Update.Typical}, {"Transitions.Update.Slow", t.Update.Slow},
		{"Transitions.Destroy", t.Destroy.Typical}, {"Transitions.Destroy.Slow", t.Destroy.Slow},
	}
	for _, d := range dists {
		if err := d.d.validate(d.name); err != nil {
			return err
		}
	}
	return nil
}

// scale applies TimeScale to a drawn duration.
func (p Profile) scale(d time.Duration) time.Duration {
	if p.TimeScale == 0 || p.TimeScale == 1 || d == 0 {
		return d
	}
	return time.Duration(float64(d) * p.TimeScale)
}

// draw returns a scaled duration from d (0 for the zero Dist, without drawing).
func (p Profile) draw(rng *rand.Rand, d Dist) time.Duration {
	if d.isZero() {
		return 0
	}
	v := d.Min
	if d.Max > d.Min {
		v += time.Duration(rng.Int64N(int64(d.Max-d.Min) + 1))
	}
	return p.scale(v)
}

// drawTransition returns a scaled duration from row, or ok=false when the row is zero (the caller
// then uses the fixed Options.Delays).
func (p Profile) drawTransition(rng *rand.Rand, row Transition) (time.Duration, bool) {
	if row.Typical.isZero() {
		return 0, false
	}
	if p.SlowTransitions > 0 && !row.Slow.isZero() && rng.Float64() < p.SlowTransitions {
		return p.draw(rng, row.Slow), true
	}
	return p.draw(rng, row.Typical), true
}

// seededRNG is a random source for one subject (a machine, an app) of a server seeded with seed:
// independent of every other subject, so concurrent timers cannot change each other's draws.
func seededRNG(seed int64, subject string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(subject))
	return rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
}

// decider makes the server's per-request profile decisions (unclear failures, short pages) from
// one seeded source, in request order.
type decider struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newDecider(seed int64) *decider {
	return &decider{rng: rand.New(rand.NewPCG(uint64(seed), 0x666c7973696d5052))} // "flysimPR"
}

// chance draws once and reports whether the draw fell under rate; a zero rate draws nothing.
func (d *decider) chance(rate float64) bool {
	if rate <= 0 {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.Float64() < rate
}

// pageLen is the length of a list page asked with limit: limit, or, for a fraction ShortPages of
// pages, a drawn length from 0 to limit-1.
func (d *decider) pageLen(p Profile, limit int) int {
	if limit <= 0 || !d.chance(p.ShortPages) {
		return limit
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rng.IntN(limit)
}

// Profile returns the server's profile (for the simulators built on it: the proxy reads
// RequirePublicIP, and user machines get their ListenDelay through MachineBoot).
func (s *Server) Profile() Profile { return s.profile.clone() }

// clone copies p, so that neither the caller of New nor of Server.Profile shares its map.
func (p Profile) clone() Profile {
	p.UnclearFailures = maps.Clone(p.UnclearFailures)
	return p
}
