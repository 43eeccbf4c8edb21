package flysim

import (
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"time"
)

// Inspection and out-of-band methods act directly on the emulator's state: no API call is logged, no
// token, limit or fault applies. Out-of-band changes behave as another Fly actor would (the Fly Proxy,
// a user with flyctl, a host failure): they go through the same state machine and events.

// AppInfo describes an app for tests.
type AppInfo struct {
	Name        string
	ID          string
	Org         string
	Network     string // "default" for the org default network
	NetworkID   uint32 // the 32 bits after fdaa: in the app's 6PN addresses
	CreatedAt   time.Time
	SecretsVer  uint64
	IPs         []string // assigned addresses (both of an egress pair)
	FlycastNets []string // for each private_v6 address, the network it is reachable from ("default" for the org's)
	Deleted     bool     // the app was deleted (App only reports the last app of a deleted name)
}

func (s *Server) appInfo(a *app) AppInfo {
	info := AppInfo{
		Name: a.name, ID: a.id, Org: a.org, Network: a.network.displayName(), NetworkID: a.network.id,
		CreatedAt: a.createdAt, SecretsVer: a.secretsVer,
	}
	for _, ip := range a.ips {
		if ip.ip != "" {
			info.IPs = append(info.IPs, ip.ip)
		} else {
			info.IPs = append(info.IPs, ip.pairV4, ip.pairV6)
		}
		if ip.network != nil {
			info.FlycastNets = append(info.FlycastNets, ip.network.displayName())
		}
	}
	return info
}

// App returns the live app of that name or, when none, the last deleted one (Deleted set).
func (s *Server) App(name string) (AppInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[name]; a != nil {
		return s.appInfo(a), true
	}
	if info := s.deletedApps[name]; info != nil {
		return *info, true
	}
	return AppInfo{}, false
}

// Apps returns the live apps of org, by name.
func (s *Server) Apps(org string) []AppInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AppInfo
	for _, a := range s.apps {
		if a.org == org {
			out = append(out, s.appInfo(a))
		}
	}
	slices.SortFunc(out, func(x, y AppInfo) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// NetworkID returns the 32-bit ID of org's network name ("" or "default" for the default network).
func (s *Server) NetworkID(org, name string) (uint32, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgs[org]
	if o == nil {
		return 0, false
	}
	n, err := existingNetwork(o, name)
	if err != nil {
		return 0, false
	}
	return n.id, true
}

// MachineInfo describes a machine for tests.
type MachineInfo struct {
	App            string
	ID             string
	Name           string
	State          string
	Region         string
	Version        string
	Versions       []string // every version, oldest first; the last is Version
	PrivateIP      string
	Config         json.RawMessage // current config as stored (and served)
	Metadata       map[string]string
	Cordoned       bool
	LeaseOwner     string // "" when no active lease
	LeaseNonce     string
	LeaseExpiresAt time.Time
	SecretsVersion uint64 // app secrets version the current version booted with
	SkipSecrets    bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (s *Server) machineInfo(m *machine) MachineInfo {
	v := m.current()
	info := MachineInfo{
		App: m.app.name, ID: m.id, Name: m.name, State: m.state, Region: m.region, Version: v.id,
		PrivateIP: m.privateIP, Config: slices.Clone(v.config), Metadata: configMetadata(v.config),
		Cordoned: m.cordoned, SecretsVersion: v.secretsVersion, SkipSecrets: v.skipSecrets,
		CreatedAt: m.createdAt, UpdatedAt: m.updatedAt,
	}
	for _, ver := range m.versions {
		info.Versions = append(info.Versions, ver.id)
	}
	if l := s.activeLease(m); l != nil {
		info.LeaseOwner, info.LeaseNonce, info.LeaseExpiresAt = l.owner, l.nonce, l.expiresAt
	}
	return info
}

// Machines returns app's machines that are not destroyed, in creation order.
func (s *Server) Machines(app string) []MachineInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[app]
	if a == nil {
		return nil
	}
	ms := slices.Collect(maps.Values(a.machines))
	slices.SortFunc(ms, func(x, y *machine) int { return cmp.Compare(x.seq, y.seq) })
	var out []MachineInfo
	for _, m := range ms {
		if m.state != StateDestroyed {
			out = append(out, s.machineInfo(m))
		}
	}
	return out
}

// Machine returns one machine of a live app, destroyed ones included.
func (s *Server) Machine(app, id string) (MachineInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookupMachine(app, id)
	if err != nil {
		return MachineInfo{}, false
	}
	return s.machineInfo(m), true
}

// Secrets returns app's secret values and its secrets version.
func (s *Server) Secrets(app string) (values map[string]string, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[app]
	if a == nil {
		return nil, 0
	}
	values = map[string]string{}
	for name, sec := range a.secrets {
		values[name] = sec.value
	}
	return values, a.secretsVer
}

// MachineSecrets returns the secret values a machine's current version booted with (none when it was
// created or updated with skip_secrets) and that app secrets version. App secrets written later reach
// the machine only through a new version (an update), as on Fly.
func (s *Server) MachineSecrets(app, id string) (values map[string]string, version uint64, ok bool) {
	boot, ok := s.MachineBoot(app, id)
	if !ok {
		return nil, 0, false
	}
	if boot.Secrets == nil {
		boot.Secrets = map[string]string{}
	}
	return boot.Secrets, boot.SecretsVersion, true
}

func (s *Server) lookupMachine(app, id string) (*machine, error) {
	a := s.apps[app]
	if a == nil {
		return nil, &apiError{httpStatus: http.StatusNotFound, message: msgAppNotFound}
	}
	m := a.machines[id]
	if m == nil {
		return nil, &apiError{httpStatus: http.StatusNotFound, message: msgMachineNotFound}
	}
	return m, nil
}

// outOfBand runs fn on a machine with s.mu held, converting the nil *apiError to a nil error.
func (s *Server) outOfBand(app, id string, fn func(m *machine) *apiError) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.lookupMachine(app, id)
	if err != nil {
		return err
	}
	if apiErr := fn(m); apiErr != nil {
		return apiErr
	}
	return nil
}

// ProxyStop stops a started machine as the Fly Proxy's autostop does. Errors match ErrAppNotFound,
// ErrMachineNotFound or ErrFailedPrecondition.
func (s *Server) ProxyStop(app, id string) error {
	return s.outOfBand(app, id, func(m *machine) *apiError {
		if m.state != StateStarted {
			return stateError("stop", m.state)
		}
		return s.doStop(m, sourceProxy)
	})
}

// ProxySuspend suspends a started machine as autostop with "suspend" does.
func (s *Server) ProxySuspend(app, id string) error {
	return s.outOfBand(app, id, func(m *machine) *apiError { return s.doSuspend(m, sourceProxy) })
}

// ProxyStart starts a stopped or suspended machine as the Fly Proxy's autostart does.
func (s *Server) ProxyStart(app, id string) error {
	return s.outOfBand(app, id, func(m *machine) *apiError {
		if m.state != StateStopped && m.state != StateSuspended {
			return stateError("start", m.state)
		}
		_, err := s.doStart(m, sourceProxy)
		return err
	})
}

// DestroyOutOfBand force-destroys a machine, as someone with flyctl would behind the client's back.
func (s *Server) DestroyOutOfBand(app, id string) error {
	return s.outOfBand(app, id, func(m *machine) *apiError { return s.doDestroy(m, true, sourceUser) })
}

// UpdateOutOfBand changes a machine's config with mutate and makes it a new version, as a user with
// flyctl would. The result is validated like an API update; errors match ErrInvalidConfig then.
func (s *Server) UpdateOutOfBand(app, id string, mutate func(config map[string]any)) error {
	return s.outOfBand(app, id, func(m *machine) *apiError {
		var cfg map[string]any
		if err := decodeJSON(m.current().config, &cfg); err != nil {
			return err
		}
		mutate(cfg)
		enc, err := encodeConfig(cfg)
		if err != nil {
			return err
		}
		stored, err := parseConfig(enc, s.profile.TypedConfig)
		if err != nil {
			return err
		}
		return s.replaceConfig(m, stored, false, false, nil)
	})
}

// FailOutOfBand puts a machine in the failed state, as a crash or a failed boot on the host would.
// It works in any state but destroying and destroyed.
func (s *Server) FailOutOfBand(app, id string) error {
	return s.outOfBand(app, id, func(m *machine) *apiError {
		if err := notDestroyed(m, "fail"); err != nil {
			return err
		}
		s.cancelPending(m)
		s.setState(m, StateFailed, "exit", sourceFlyd)
		return nil
	})
}

// SetCrossNetworkReplays sets org's cross-network replay setting (§9), read by the proxy simulator.
func (s *Server) SetCrossNetworkReplays(org string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.orgs[org]; o != nil {
		o.crossNetworkReplays = on
	}
}

// CrossNetworkReplays reports org's cross-network replay setting; off by default, as on Fly.
func (s *Server) CrossNetworkReplays(org string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.orgs[org]
	return o != nil && o.crossNetworkReplays
}
