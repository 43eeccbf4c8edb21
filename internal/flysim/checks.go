package flysim

import (
	"encoding/json"
	"slices"
	"time"
)

// Check statuses, as the Machines API reports them in a machine's `checks`.
const (
	CheckPassing  = "passing"
	CheckWarning  = "warning"
	CheckCritical = "critical"
)

// CheckProber runs a machine's health checks (config.checks), as Fly's hosts run them against the
// machine. The Server asks it for the status of every check of a started machine each time a read
// renders the machine (GET and list of machines): it is called with the Server's lock held, so it
// must answer at once from what it knows, run any probe on a goroutine of its own, and never call
// the Server. usermachine.Checks probes the emulated machines' listeners.
type CheckProber interface {
	CheckStatus(CheckTarget) CheckResult
}

// CheckTarget is one check of one started machine version.
type CheckTarget struct {
	App, MachineID, Version string
	// Boot is the ID of the event that started the machine: a new value is a new boot, whose
	// checks start over.
	Boot string
	// StartedAt is when the machine reached started; the grace period counts from it.
	StartedAt time.Time
	// Now is the Server's clock at the read (Options.Now).
	Now time.Time
	// Name is the check's key in config.checks; Check its settings.
	Name  string
	Check Check
}

// Check is one entry of config.checks, with Fly's defaults filled in.
type Check struct {
	Type          string // "tcp" or "http"
	Port          int    // 0 when the config names none: such a check always fails
	Method        string // http: default GET
	Path          string // http: default "/"
	Protocol      string // http: "http" (default) or "https"
	TLSSkipVerify bool
	Headers       map[string][]string
	// Interval between probes (default 15 s), Timeout of one probe (default 2 s), GracePeriod
	// after the start before the first probe (default 0).
	Interval, Timeout, GracePeriod time.Duration
}

// Defaults for check settings the config leaves out: the values `fly launch` writes into fly.toml.
const (
	DefaultCheckInterval = 15 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
)

// CheckResult is the latest status of a check, with the probe's output and when it ran.
type CheckResult struct {
	Status    string // CheckPassing, CheckWarning or CheckCritical
	Output    string
	UpdatedAt time.Time
}

// checkView is a health check status as the Machines API renders it.
type checkView struct {
	Name      string `json:"name"`
	Status    string `json:"status"`
	Output    string `json:"output"`
	UpdatedAt string `json:"updated_at"`
}

// storedCheck is one config.checks entry as stored (validated on write).
type storedCheck struct {
	Type          string          `json:"type"`
	Port          int             `json:"port"`
	Method        string          `json:"method"`
	Path          string          `json:"path"`
	Protocol      string          `json:"protocol"`
	TLSSkipVerify bool            `json:"tls_skip_verify"`
	Interval      json.RawMessage `json:"interval"`
	Timeout       json.RawMessage `json:"timeout"`
	GracePeriod   json.RawMessage `json:"grace_period"`
	Headers       []struct {
		Name   string   `json:"name"`
		Values []string `json:"values"`
	} `json:"headers"`
}

func (c storedCheck) check() Check {
	out := Check{
		Type: "tcp", Port: c.Port, Method: c.Method, Path: c.Path, Protocol: c.Protocol, TLSSkipVerify: c.TLSSkipVerify,
		Interval: storedDuration(c.Interval, DefaultCheckInterval), Timeout: storedDuration(c.Timeout, DefaultCheckTimeout),
		GracePeriod: storedDuration(c.GracePeriod, 0),
	}
	if c.Type == "http" {
		out.Type = "http"
	}
	if out.Method == "" {
		out.Method = "GET"
	}
	if out.Path == "" {
		out.Path = "/"
	}
	if out.Protocol == "" {
		out.Protocol = "http"
	}
	if out.Interval <= 0 {
		out.Interval = DefaultCheckInterval
	}
	if out.Timeout <= 0 {
		out.Timeout = DefaultCheckTimeout
	}
	for _, h := range c.Headers {
		if out.Headers == nil {
			out.Headers = map[string][]string{}
		}
		out.Headers[h.Name] = append(out.Headers[h.Name], h.Values...)
	}
	return out
}

// storedDuration reads a duration as the config stores it: a Go duration string or integer
// nanoseconds (validated on write); def when absent.
func storedDuration(raw json.RawMessage, def time.Duration) time.Duration {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
		return def
	}
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		return time.Duration(n)
	}
	return def
}

// checkViews renders the checks of machine m at version v (state is what the view shows: an old
// version reads replaced). A machine that is not started fails every check, as nothing runs on it.
// A started one asks the Options.Checks prober; without one (flysim's own unit tests, and the
// fallback of a stack that runs no machines) every check passes as soon as the machine is
// started, which is kinder than Fly: the app may not serve yet. Callers hold s.mu.
func (s *Server) checkViews(m *machine, v *machineVersion, state string) []checkView {
	var c struct {
		Checks map[string]storedCheck `json:"checks"`
	}
	_ = json.Unmarshal(v.config, &c)
	if len(c.Checks) == 0 {
		return nil
	}
	names := make([]string, 0, len(c.Checks))
	for name := range c.Checks {
		names = append(names, name)
	}
	slices.Sort(names)
	out := make([]checkView, len(names))
	// While started, the latest event is the one that started the machine (only state changes
	// record events).
	var boot machineEvent
	if len(m.events) > 0 {
		boot = m.events[0]
	}
	for i, name := range names {
		r := CheckResult{Status: CheckCritical, Output: "the machine is not started", UpdatedAt: boot.at}
		if state == StateStarted {
			r = CheckResult{Status: CheckPassing, UpdatedAt: boot.at}
			if s.opts.Checks != nil {
				r = s.opts.Checks.CheckStatus(CheckTarget{
					App: m.app.name, MachineID: m.id, Version: v.id, Boot: boot.id, StartedAt: boot.at, Now: s.now(),
					Name: name, Check: c.Checks[name].check(),
				})
			}
		}
		out[i] = checkView{Name: name, Status: r.Status, Output: r.Output, UpdatedAt: rfc3339(r.UpdatedAt)}
	}
	return out
}

// checkPorts are the distinct ports config.checks probe, sorted.
func checkPorts(config json.RawMessage) []int {
	var c struct {
		Checks map[string]storedCheck `json:"checks"`
	}
	_ = json.Unmarshal(config, &c)
	var out []int
	for _, chk := range c.Checks {
		if chk.Port > 0 && !slices.Contains(out, chk.Port) {
			out = append(out, chk.Port)
		}
	}
	slices.Sort(out)
	return out
}
