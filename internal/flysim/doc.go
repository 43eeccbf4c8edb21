// Package flysim emulates the Fly Machines API (apps, networks, IP assignments, secrets, machines,
// leases, metadata, wait) as an in-process http.Handler, faithful to the reference sheet
// shared/reference/fly-machines-api.md, with fault knobs, published rate limits and a call log for tests,
// plus a Fly Proxy simulator that replays requests (fly-replay) to simulated user machines.
//
// It deliberately does not run user code: machines are records moving through the state machine of the
// sheet (§5) on timers, not VMs, and a started machine is simulated by loopback HTTP listeners that answer
// with their identity. It does not implement volumes, exec, ps, the events/versions/memory
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
// # Simulated user machines
//
// StartUserMachines(srv, UserMachinesOptions{}) follows the Server's state changes: every started
// machine gets one listener on 127.0.0.1 (an ephemeral port) per internal port of its services; leaving
// started (stop, suspend, restart, update, destroy, app delete) closes them and the connections on them,
// and starting again opens new ones. Each answers any method and path with a UserMachineAnswer (JSON):
// app, machine, region, version, service (internal port and the config's service `name`), method, path,
// query, host, headers (Authorization redacted), body size, whether fly-replay-src carried a state that
// pkg/replayauth verified with the app's HANGAR_REPLAY_KEY, whether `Authorization: Bearer
// <HANGAR_MANAGEMENT_TOKEN>` matched, the secrets version the machine booted with and the names (never
// the values) of its secrets. A machine sees the app secrets as they were when its current version was
// made (create or update; none with skip_secrets): app secrets written later reach it only through an
// update, and MachineSecrets reports what it sees. Endpoints(app, id) returns the listener addresses.
//
// A machine that is a real process, such as the router, is registered with
// RegisterExternal(app, id, map[internalPort]"host:port"): it gets no simulated listeners and the proxy
// forwards to the given addresses (its state in the emulator still matters: it must be started, and
// the proxy starts it when it is stopped, as for any machine).
//
// # Fly Proxy simulator
//
// StartProxy(srv, machines, ProxyOptions{EntryApp: "router"}) listens on addresses standing for Fly's
// public ports (DefaultProxyListen: 127.0.0.1:8080 as port 80 and 127.0.0.1:9090 as port 9090; Addr
// tells the bound address when ":0" was asked). Every inbound request goes to a machine of the entry app
// with an http service on that public port; the machine's answer is relayed, unless it is a replay:
//
//   - Forms: the fly-replay header (`;`-separated fields, quoted values, the sheet's lenient `,`) or an
//     application/vnd.fly.replay+json body (ParseReplayHeader, ParseReplayJSON); both at once, unknown
//     or repeated fields and bad values are refused with 502 (stricter than Fly is known to be).
//   - Target: `app` (default: the replaying machine's app), `instance` (must be a machine of that app),
//     `prefer_instance` (used when it can serve; otherwise another machine gets the request with
//     fly-preferred-instance-unavailable), `region` (codes and "any"; other aliases match nothing),
//     `elsewhere`. Without an instance the proxy picks the machine with the fewest requests in flight,
//     started ones first; cordoned machines are skipped.
//   - Port matching: the target service is the one whose public port equals the inbound port and has
//     the http handler; none gives 503.
//   - Autostart: a stopped or suspended target is started out of band (ProxyStart, recorded with source
//     fly-proxy) when its service allows autostart (absent means on; disable_machine_autostart turns it
//     off), then waited for; autostart off gives 503. A machine created with skip_launch is not started.
//   - The target gets fly-replay-src `instance=<replaying machine>;region=<its region>;t=<µs>;state=<state>`
//     (client-sent fly-replay-src and other Fly-owned request headers are always dropped), and a JSON
//     form's transform: `path` replaces path and query, then delete_headers, then set_headers (Host
//     included); Fly-owned headers survive a transform.
//   - `timeout` bounds finding, starting and connecting to the target (default ConnectTimeout, 30 s);
//     once connected, the request is delivered and never cut. `fallback` (force_self: the replaying
//     machine; prefer_self: it, else any machine of its app) sends the original request back with
//     fly-replay-failed `instance=…;app=…;region=…;replay_source=…;reason=timeout|no_candidate|
//     retries_exhausted;elapsed_ms=N`; a fallback answer cannot replay again (502).
//   - Cross-network rule: a replay into an app on another private network of the org needs the org's
//     cross-network replay setting (Server.SetCrossNetworkReplays); cross-org replays are always refused.
//   - Statuses chosen where Fly's are not documented: 502 for an instruction that cannot be followed
//     (malformed, unknown app or instance, instance of another app, cross-network or cross-org refused,
//     more than 10 replays of one request, a machine failing mid-request), 503 when nothing can serve
//     (no service on the port, autostart off, no machines), 504 when the replay timeout passed, 413 when
//     a request body over MaxReplayBody (1 MiB) would have to be replayed (the entry machine still gets
//     the whole body; only the replay is refused), 501 for protocol upgrades: WebSockets are not
//     simulated. Error bodies are one plain-text line starting "flysim proxy: ".
//   - Every answer carries fly-request-id, `server: Fly/flysim` and `via: 1.1 fly.io`; requests carry
//     Fly-Client-IP, Fly-Forwarded-Port, Fly-Region, Fly-Request-Id, X-Forwarded-For/-Proto/-Port, Via.
//   - Autostop: every Autostop.Interval (default 1 min) a pass stops or suspends, per app and region, one
//     started machine idle for Autostop.IdleAfter (default 5 min), honouring autostop off/stop/suspend
//     and min_machines_running (counted over all regions: there is no primary region); RunAutostop runs
//     a pass on demand. External machines are never autostopped.
//   - Not simulated: the replay cache, fly-prefer-region and fly-force-instance-id request headers,
//     concurrency limits, TLS and raw TCP services.
//
// A local stack wires them like this (errors elided):
//
//	srv := flysim.New(flysim.Options{Orgs: []flysim.OrgToken{{Token: tok, Org: "personal"}}})
//	machines := flysim.StartUserMachines(srv, flysim.UserMachinesOptions{})
//	// create the router app and one machine with http services 80→8080 and 9090→9090 through the
//	// API, start the router process on two local ports, then:
//	_ = machines.RegisterExternal("router", routerMachineID, map[int]string{8080: "127.0.0.1:18080", 9090: "127.0.0.1:19090"})
//	proxy, _ := flysim.StartProxy(srv, machines, flysim.ProxyOptions{EntryApp: "router"})
//	// curl -H 'Host: alice.example' http://127.0.0.1:8080/ reaches alice's machine through the router's replay.
//	defer srv.Close(); defer machines.Close(); defer proxy.Close() // proxy first, then machines, then srv
package flysim
