// Package usermachine simulates started Fly machines as loopback HTTP listeners that answer with their identity.
//
// Start(srv, Options{}) follows the state changes of a flysim.Server: every started machine gets one
// listener on 127.0.0.1 (an ephemeral port) per internal port of its services (and per port its
// checks probe), at once or, under a
// Server profile with a ListenDelay, that drawn delay after it reads started (started means the VM
// booted, not that the app listens; the proxy waits for the listeners); leaving started (stop,
// suspend, restart, update, destroy, app delete) closes them and the connections on them, and starting
// again opens new ones. Each answers any method and path with an Answer (JSON): app, machine, region,
// version, service (internal port and the config's service `name`), method, path, query, host, headers
// (Authorization redacted), body size, whether fly-replay-src carried a state that pkg/replayauth
// verified with the app's HANGAR_REPLAY_KEY, whether `Authorization: Bearer <HANGAR_MANAGEMENT_TOKEN>`
// matched, the secrets version the machine booted with and the names (never the values) of its
// secrets. A machine sees the app secrets as they were when its current version was made (create or
// update; none with skip_secrets): app secrets written later reach it only through an update, and the
// Server's MachineSecrets reports what it sees. Endpoints(app, id) returns the listener addresses.
//
// A machine that is a real process, such as the router, is registered with
// RegisterExternal(app, id, map[internalPort]"host:port"): it gets no simulated listeners and the proxy
// forwards to the given addresses (its state in the emulator still matters: it must be started, and
// the proxy starts it when it is stopped, as for any machine).
//
// Checks (NewChecks, given to both flysim.Options.Checks and Options.Checks) runs the machines'
// health checks against these listeners and registered addresses, so a started machine whose app
// does not listen yet fails them, as on Fly.
//
// It reads the Server only through its seam (Subscribe, SnapshotApps, SnapshotMachine, MachineBoot);
// the Fly Proxy simulator (flysim/proxy) finds the listeners with Endpoint and IsExternal.
package usermachine
