// Package flysim emulates the Fly Machines API as an in-process http.Handler, for tests and the local stack.
//
// The Server serves apps, networks, IP assignments, secrets, machines, leases, metadata and wait,
// faithful to docs/fly-api.md ("the sheet"), with fault knobs, Fly's published rate limits and a call
// log for tests. Section marks (§N) in this package's comments refer to docs/fly-api.md.
//
// It deliberately does not run user code: machines are records moving through the state machine of the
// sheet (§5) on timers, not VMs. It does not implement volumes, exec, ps, the events/versions/memory
// endpoints, secret keys, deploy tokens or the org-wide machine list (those paths answer the plain-text
// `404 page not found` that flyctl reads as "route missing"). It does not import internal/flyapi: configs
// are kept as JSON exactly as sent (apart from the autostop normalisation Fly itself performs, and the
// unknown keys a typed-config profile drops), and only the fields it validates are inspected.
//
// Where the sheet marks a behaviour unconfirmed ("?"), the emulator picks the stricter reading; every such
// choice carries a comment with "Stricter:" (or "Open in the sheet:" where strictness does not apply) so
// they can be found with grep.
//
// A standalone server runs with `hangar flysim` (see cmd/hangar). Example:
//
//	hangar flysim --listen 127.0.0.1:4280 --token devtoken --org personal &
//	curl -s -H 'Authorization: Bearer devtoken' -d '{"app_name":"my-app","org_slug":"personal"}' \
//	     http://127.0.0.1:4280/v1/apps
//	# {"id":"…16 chars…","created_at":1767225600000}
//
// # Knobs
//
// Options (options.go) set the tokens and orgs, the seed of every generated ID and fault decision, the
// clock, the transition delays, whether rate limits apply (ratelimit.go), the profile (below) and the
// call hook. Faults (faults.go) make matching calls fail, slow down, fail after committing or drop the
// connection, and SetListLag hides new machines from lists for a fixed time. Inspection and
// out-of-band methods (inspect.go) read the state and change it as another Fly actor would; Calls
// (calllog.go) records every API call.
//
// # Profiles
//
// Options.Profile (profiles.go) says how far the emulator departs from a fast, healthy Fly. The zero
// value is the fast profile (Fast()): reads consistent with writes, the fixed Options.Delays, no lost
// answers; unit tests use it. Realistic() models where real Fly is less kind (§11), each default citing
// its source in profiles.go:
//
//   - ListLag: the machine list learns of a create or a destroy only after a drawn lag (GET by ID
//     stays consistent); a destroyed machine is listed meanwhile in its state before.
//   - ShortPages: with `limit`, list pages (machines, apps) may be shorter than asked, or empty, while
//     the cursor says more remain.
//   - UnclearFailures, UnclearDrop: create_machine, update_machine and acquire_lease commit and then
//     answer 408 or drop the connection, at a rate per action.
//   - AppCreateLag, AppCreateWaitResidual, AppDeleteLag: an app is invisible (404 everywhere, name
//     taken) for a while after its create; ?wait=true holds the answer for most of that window, but
//     not all; a delete answers 202 and completes later, the app and its name staying meanwhile.
//   - Transitions, SlowTransitions: how long each transition takes, from a table citing its sources
//     (create, start, resume, stop, suspend, restart, update, destroy), with an optional slow tail over
//     a minute (off in Realistic so that it stays usable in tests).
//   - ListenDelay: a started machine's simulated app listens a little later (MachineBoot.ListenDelay,
//     honoured by flysim/usermachine).
//   - DestroyedReadable: a destroyed machine reads `destroyed` for a while, then every call is a 404.
//   - TypedConfig: configs keep only the fields of Fly's typed config (configschema.go).
//   - SecretsLag: a secrets write reaches reads and booting machines later; version/min_version reads
//     and min_secrets_version get at least that version at once.
//   - DuplicateMachineNames: a second live machine may take a name (unconfirmed either way on Fly; the
//     fast profile refuses it with name_taken).
//   - RequirePublicIP: the proxy simulator routes inbound traffic only to an entry app with a public
//     address; replay targets need none.
//
// TimeScale multiplies every duration the profile draws, so a suite keeps the order and asynchrony of
// the realistic delays in a fraction of the time (0.1, 0.01). Every draw comes from sources seeded by
// Options.Seed (one per machine, one per app, one for per-request decisions): the same seed and the
// same calls replay the same run. Windows that only change what reads see (list lag, app visibility,
// destroyed reads, secrets lag) are measured with Options.Now, so a fake clock steps through them;
// changes of state (transitions, app deletion, listeners opening) run on real timers.
//
// # Call hook
//
// Options.CallHook is called synchronously for every API call that reaches its handler, twice: with a
// CallPoint whose Committed is false before the handler acts, and true after it has made its change
// but before the answer is written (hook.go). Both carry the call's sequence number (per Server, in
// arrival order), action name (as in the call log), app and machine ID when known (for create_machine
// the new ID at the committed point) and, when committed, the handler's status. The hook may block or
// kill another process; the call goes on when it returns. Calls refused before their handler
// (authentication, rate limits, a fault failing first) are not seen.
//
// # What builds on it
//
// Two packages build on the Server, and nothing here imports them: flysim/usermachine simulates every
// started machine as loopback HTTP listeners that answer with their identity, and flysim/proxy is the Fly
// Proxy simulator that replays requests (fly-replay) to them. They use the Server only through the seam
// documented in seam.go (Subscribe, the snapshots, MachineBoot, ProxyStart/ProxyStop/ProxySuspend,
// Done, NewRequestID, Profile). flysim/proxy shows how a local stack wires the three.
package flysim
