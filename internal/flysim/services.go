package flysim

import (
	"encoding/json"
)

// The simulators read a machine's services (§6) from its stored config through the seam's snapshots.
// Stored configs were validated on write, so only fields Fly does not validate (the blueprint's
// service `name`, disable_machine_autostart) are read defensively.

// Autostop modes of a service, after Fly's normalisation (false/true/"suspend").
const (
	AutostopOff     = "off"
	AutostopStop    = "stop"
	AutostopSuspend = "suspend"
)

// Service is the part of one machine service the simulators act on.
type Service struct {
	// Name is the blueprint's optional service name ("management", "public"). Fly's typed config
	// has no such field, so under a profile with TypedConfig it is dropped and reads "".
	Name         string
	InternalPort int
	Ports        []ServicePort
	// Autostart is off when the service says autostart:false or the config has the deprecated
	// machine-wide disable_machine_autostart. Open in the sheet: absent means on (only autostart:false
	// is documented to refuse).
	Autostart bool
	// Autostop is AutostopOff, AutostopStop or AutostopSuspend.
	Autostop           string
	MinMachinesRunning int
}

// ServicePort is one public port (or port range) of a service.
type ServicePort struct {
	Port, StartPort, EndPort int
	Handlers                 []string
}

// Matches reports whether the port (or range) covers public port public.
func (p ServicePort) Matches(public int) bool {
	if p.Port != 0 {
		return p.Port == public
	}
	return p.StartPort != 0 && p.StartPort <= public && public <= p.EndPort
}

// servicesOf reads the services of a stored config.
func servicesOf(config json.RawMessage) []Service {
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
	out := make([]Service, 0, len(cfg.Services))
	for _, sv := range cfg.Services {
		spec := Service{InternalPort: sv.InternalPort, Autostart: !noAutostart, MinMachinesRunning: sv.MinRunning}
		spec.Name, _ = sv.Name.(string)
		if sv.Autostart != nil && !*sv.Autostart {
			spec.Autostart = false
		}
		switch sv.Autostop {
		case true, AutostopStop:
			spec.Autostop = AutostopStop
		case AutostopSuspend:
			spec.Autostop = AutostopSuspend
		default: // absent, false, "off": the Machines API default is no autostop
			spec.Autostop = AutostopOff
		}
		for _, p := range sv.Ports {
			spec.Ports = append(spec.Ports, ServicePort{Port: p.Port, StartPort: p.StartPort, EndPort: p.EndPort, Handlers: p.Handlers})
		}
		out = append(out, spec)
	}
	return out
}
