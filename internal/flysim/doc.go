// Package flysim emulates the Fly Machines API (apps, networks, IP assignments, secrets, machines,
// leases, metadata, wait) as an in-process http.Handler, faithful to the reference sheet
// shared/reference/fly-machines-api.md, with fault knobs, published rate limits and a call log for tests.
//
// It deliberately does not run anything: machines are records moving through the state machine of the
// sheet (§5) on timers, not VMs, and it does not implement volumes, exec, ps, the events/versions/memory
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
package flysim
