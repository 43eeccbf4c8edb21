package flysim

import (
	"encoding/json"
	"slices"
)

// The proxy simulator and the simulated machines read a machine's services (§6) from its stored
// config. Stored configs were validated on write, so only fields Fly does not validate (the blueprint's
// service `name`, disable_machine_autostart) are read defensively.

// Autostop modes of a service, after Fly's normalisation (false/true/"suspend").
const (
	autostopOff     = "off"
	autostopStop    = "stop"
	autostopSuspend = "suspend"
)

// serviceSpec is the part of one machine service the simulator acts on.
type serviceSpec struct {
	name         string // the blueprint's optional service name ("management", "public")
	internalPort int
	ports        []portSpec
	autostart    bool   // Open in the sheet: absent means on (only autostart:false is documented to refuse)
	autostop     string // autostopOff, autostopStop or autostopSuspend
	minRunning   int
}

// portSpec is one public port (or port range) of a service.
type portSpec struct {
	port, startPort, endPort int
	handlers                 []string
}

func (p portSpec) matches(public int) bool {
	if p.port != 0 {
		return p.port == public
	}
	return p.startPort != 0 && p.startPort <= public && public <= p.endPort
}

// servicesOf reads the services of a stored config.
func servicesOf(config json.RawMessage) []serviceSpec {
	var cfg struct {
		DisableAutostart any `json:"disable_machine_autostart"`
		Services         []struct {
			Name         any   `json:"name"`
			InternalPort int   `json:"internal_port"`
			Autostart    *bool `json:"autostart"`
			Autostop     any   `json:"autostop"`
			MinRunning   int   `json:"min_machines_running"`
			Ports        []struct {
				Port      int      `json:"port"`
				StartPort int      `json:"start_port"`
				EndPort   int      `json:"end_port"`
				Handlers  []string `json:"handlers"`
			} `json:"ports"`
		} `json:"services"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil // validated on write: only a config without services fails here
	}
	// The deprecated machine-wide switch still turns autostart off for every service.
	noAutostart := cfg.DisableAutostart == true
	out := make([]serviceSpec, 0, len(cfg.Services))
	for _, sv := range cfg.Services {
		spec := serviceSpec{internalPort: sv.InternalPort, autostart: !noAutostart, minRunning: sv.MinRunning}
		spec.name, _ = sv.Name.(string)
		if sv.Autostart != nil && !*sv.Autostart {
			spec.autostart = false
		}
		switch sv.Autostop {
		case true, autostopStop:
			spec.autostop = autostopStop
		case autostopSuspend:
			spec.autostop = autostopSuspend
		default: // absent, false, "off": the Machines API default is no autostop
			spec.autostop = autostopOff
		}
		for _, p := range sv.Ports {
			spec.ports = append(spec.ports, portSpec{port: p.Port, startPort: p.StartPort, endPort: p.EndPort, handlers: p.Handlers})
		}
		out = append(out, spec)
	}
	return out
}

// servicePorts are the distinct internal ports of services, in config order: one listener each.
func servicePorts(services []serviceSpec) []serviceSpec {
	var out []serviceSpec
	for _, svc := range services {
		if !slices.ContainsFunc(out, func(o serviceSpec) bool { return o.internalPort == svc.internalPort }) {
			out = append(out, svc)
		}
	}
	return out
}

// publicService finds the service serving public port over HTTP, as the Fly Proxy matches a request
// (and a replay) to the target service by the inbound port. found reports a service with the port at
// all; http whether it has the `http` handler a replay target needs (§9).
func publicService(services []serviceSpec, public int) (svc serviceSpec, found, http bool) {
	for _, s := range services {
		for _, p := range s.ports {
			if !p.matches(public) {
				continue
			}
			if slices.Contains(p.handlers, "http") {
				return s, true, true
			}
			svc, found = s, true
		}
	}
	return svc, found, false
}

// autostopModeOf is what autostop does to a machine: off when it has no services or any service keeps
// it running (autostop off), suspend when any service asks for suspend, stop otherwise. Fly decides per
// service; a machine is one VM, so the simulator folds the services into one decision.
func autostopModeOf(services []serviceSpec) (mode string, minRunning int) {
	if len(services) == 0 {
		return autostopOff, 0
	}
	mode = autostopStop
	for _, s := range services {
		switch s.autostop {
		case autostopOff:
			return autostopOff, 0
		case autostopSuspend:
			mode = autostopSuspend
		}
		minRunning = max(minRunning, s.minRunning)
	}
	return mode, minRunning
}
