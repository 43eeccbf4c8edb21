// Package router is hangar's fly-replay router: it answers every request with a fly-replay that
// sends the Fly Proxy to the right user app and machine, from an index built out of the cluster's
// UserApps and UserMachines. It deliberately never proxies a byte, never reads a Secret through the
// API (per-app keys are derived from the mounted root key) and writes nothing to the cluster but the
// activity Leases in its own namespace (activity.go: when each machine last got a request, for the
// manager's idle timeouts).
//
// The parts, in the order a request meets them:
//
//   - Source watches UserApps and UserMachines through an informer cache whose transforms drop
//     everything routing does not read, feeds a Builder, and publishes each new Index in a Table
//     (an atomic pointer). A request loads the pointer: no lock, no allocation. The Builder updates
//     the previous Index for what changed (the groups, a UserApp and its UserMachines, that
//     changed, and their hosts), sharing the rest with it.
//   - NormalizeHost makes hosts canonical once (lower case, no port or trailing dot, IDN → xn--);
//     requests with an already canonical Host skip it.
//   - The handler of each listener (public, management) picks the target, checks the app's auth
//     (public Token mode, or the management token) and writes a replay built in advance: the
//     header form, or the JSON form when a header must be deleted. The replay's state is a
//     pkg/replayauth token signed once per target and time bucket, so the hot path does no hashing.
//
// New assembles them into a Router (cmd/router and the local stack use nothing else): the source,
// the public and management listeners, /metrics and /healthz + /readyz. Run serves until its
// context ends, then drains: unready for the drain delay, traffic listeners shut (in-flight
// requests finish), source stopped, then metrics and health.
//
// Answers: ReplayStatus (409) with the replay; 404 for an unknown host on the public listener; 503
// with Retry-After when the target has no machine yet; 401/403 for failed auth; 413 for bodies Fly
// cannot replay; 400 and 421 for malformed or contradictory requests (net/http itself answers 431).
// The management listener answers one 401 to every well-formed request without the named app's
// token, whether its target exists or not, so it tells nothing about the cluster to a caller
// without a token. Client-sent fly-replay* headers are never read.
package router
