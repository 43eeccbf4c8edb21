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
// are kept as JSON exactly as sent (apart from the autostop normalisation Fly itself performs), and only the
// fields it validates are inspected.
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
// clock, the transition delays and whether rate limits apply (ratelimit.go). Faults (faults.go) make
// matching calls fail, slow down, fail after committing or drop the connection, and list lag hides new
// machines from lists; where real Fly is less kind than a fast emulator (§11) is modelled next to them.
// Inspection and out-of-band methods (inspect.go) read the state and change it as another Fly actor
// would; Calls (calllog.go) records every API call.
//
// # What builds on it
//
// Two packages build on the Server, and nothing here imports them: flysim/usermachine simulates every
// started machine as loopback HTTP listeners that answer with their identity, and flysim/proxy is the Fly
// Proxy simulator that replays requests (fly-replay) to them. They use the Server only through the seam
// documented in seam.go (Subscribe, the snapshots, MachineBoot, ProxyStart/ProxyStop/ProxySuspend,
// Done, NewRequestID). flysim/proxy shows how a local stack wires the three.
package flysim
