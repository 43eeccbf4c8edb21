// Package proxy simulates the Fly Proxy: it routes requests to machines and follows their fly-replay answers.
//
// Section marks (§N) in this package's comments refer to docs/fly-api.md ("the sheet"), whose §9
// describes fly-replay. The replay grammar (ParseReplayHeader, ParseReplayJSON, Replay,
// ErrReplayMalformed) is exported so that tests elsewhere can read a router's answers with a parser of
// their own; it depends on nothing of the router.
//
// Start(srv, machines, Options{EntryApp: "router"}) listens on addresses standing for Fly's public ports
// (DefaultListen: 127.0.0.1:8080 as port 80 and 127.0.0.1:9090 as port 9090; Addr tells the bound
// address when ":0" was asked). Every inbound request goes to a machine of the entry app with an http
// service on that public port; the machine's answer is relayed, unless it is a replay. When the
// Server's profile sets RequirePublicIP (the realistic profile does), the entry app needs a public
// address (v4, v6 or shared_v4 assignment): apps created through the API have none, and on Fly no
// request reaches such an app, so the simulator answers 503 without contacting any machine. Replay
// targets need no address (https://fly.io/docs/networking/app-services/: "App needs an IP? YES (not
// for Fly-Replay)").
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
//   - Autostart: a stopped or suspended target is started out of band (Server.ProxyStart, recorded with
//     source fly-proxy) when its service allows autostart (absent means on; disable_machine_autostart
//     turns it off), then waited for; autostart off gives 503. A machine created with skip_launch is not
//     started.
//   - The target gets fly-replay-src `instance=<replaying machine>;region=<its region>;t=<µs>;state=<state>`
//     (client-sent fly-replay-src and other Fly-owned request headers are always dropped), and a JSON
//     form's transform: `path` replaces path and query, then delete_headers, then set_headers (Host
//     included); Fly-owned headers survive a transform.
//   - `timeout` bounds finding, starting and connecting to the target (default ConnectTimeout, 30 s),
//     which includes the Server's transition delays (seconds under the realistic profile) and the
//     user machine's listen delay;
//     once connected, the request is delivered and never cut. `fallback` (force_self: the replaying
//     machine; prefer_self: it, else any machine of its app) sends the original request back with
//     fly-replay-failed `instance=…;app=…;region=…;replay_source=…;reason=timeout|no_candidate|
//     retries_exhausted;elapsed_ms=N`; a fallback answer cannot replay again (502).
//   - Cross-network rule: a replay into an app on another private network of the org needs the org's
//     cross-network replay setting (Server.SetCrossNetworkReplays); cross-org replays are always refused.
//   - Statuses chosen where Fly's are not documented: 502 for an instruction that cannot be followed
//     (malformed, unknown app or instance, instance of another app, cross-network or cross-org refused,
//     more than 10 replays of one request, a machine failing mid-request), 503 when nothing can serve
//     (no service on the port, autostart off, no machines, an entry app missing or without a public
//     address under RequirePublicIP), 504 when the replay timeout passed, 413 when
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
// The proxy reads and acts on the Server only through its seam (SnapshotApp, SnapshotApps,
// SnapshotMachine, ProxyStart, ProxyStop, ProxySuspend, Done, NewRequestID), and reaches machines
// through the usermachine.Machines it is given (Endpoint, IsExternal).
//
// A local stack wires the three packages like this (errors elided):
//
//	srv := flysim.New(flysim.Options{Orgs: []flysim.OrgToken{{Token: tok, Org: "personal"}}})
//	machines := usermachine.Start(srv, usermachine.Options{})
//	// create the router app and one machine with http services 80→8080 and 9090→9090 through the
//	// API, start the router process on two local ports, then:
//	_ = machines.RegisterExternal("router", routerMachineID, map[int]string{8080: "127.0.0.1:18080", 9090: "127.0.0.1:19090"})
//	p, _ := proxy.Start(srv, machines, proxy.Options{EntryApp: "router"})
//	// curl -H 'Host: alice.example' http://127.0.0.1:8080/ reaches alice's machine through the router's replay.
//	defer srv.Close(); defer machines.Close(); defer p.Close() // proxy first, then machines, then srv
package proxy
