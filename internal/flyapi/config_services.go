package flyapi

// This file holds the networking parts of a MachineConfig: services, ports and checks. A port's
// tls_options, http_options and proxy_proto_options are not modelled: hangar never sets them, so they
// travel as unknown members, unchanged.

// MachineService exposes an internal port through the Fly Proxy.
type MachineService struct {
	// Name labels the service. Fly's "Connecting to User Machines" blueprint shows it in its
	// service config; neither the OpenAPI spec nor fly-go models it (so Fly may not echo it).
	Name                     string              `json:"name,omitempty"`
	Protocol                 string              `json:"protocol,omitempty"` // tcp or udp
	InternalPort             int                 `json:"internal_port,omitempty"`
	Ports                    []MachinePort       `json:"ports,omitzero"`
	Autostart                *bool               `json:"autostart,omitempty"` // a pointer: an explicit false must reach Fly
	Autostop                 Autostop            `json:"autostop,omitempty"`
	MinMachinesRunning       *int                `json:"min_machines_running,omitempty"`
	Concurrency              *MachineConcurrency `json:"concurrency,omitempty"`
	Checks                   []MachineCheck      `json:"checks,omitzero"` // Kind is not used here
	ForceInstanceKey         *string             `json:"force_instance_key,omitempty"`
	ForceInstanceDescription string              `json:"force_instance_description,omitempty"`

	unknown unknownFields
}

type machineServiceJSON MachineService

// UnmarshalJSON decodes and keeps unmodelled members.
func (s *MachineService) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineServiceJSON)(s), &s.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (s MachineService) MarshalJSON() ([]byte, error) {
	return encodeObject(machineServiceJSON(s), s.unknown)
}

// MachineConcurrency sets the load the proxy puts on one machine.
type MachineConcurrency struct {
	Type      string `json:"type,omitempty"` // connections (default) or requests
	SoftLimit int    `json:"soft_limit,omitempty"`
	HardLimit int    `json:"hard_limit,omitempty"`

	unknown unknownFields
}

type machineConcurrencyJSON MachineConcurrency

// UnmarshalJSON decodes and keeps unmodelled members.
func (c *MachineConcurrency) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineConcurrencyJSON)(c), &c.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (c MachineConcurrency) MarshalJSON() ([]byte, error) {
	return encodeObject(machineConcurrencyJSON(c), c.unknown)
}

// MachinePort is a public port (or range) of a service.
type MachinePort struct {
	Port       int      `json:"port,omitempty"`
	StartPort  int      `json:"start_port,omitempty"`
	EndPort    int      `json:"end_port,omitempty"`
	Handlers   []string `json:"handlers,omitzero"` // an empty list (kept as []) means raw TCP
	ForceHTTPS bool     `json:"force_https,omitempty"`

	unknown unknownFields
}

type machinePortJSON MachinePort

// UnmarshalJSON decodes and keeps unmodelled members.
func (p *MachinePort) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machinePortJSON)(p), &p.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (p MachinePort) MarshalJSON() ([]byte, error) {
	return encodeObject(machinePortJSON(p), p.unknown)
}

// MachineCheck is a health check, either top-level (MachineConfig.Checks, by name) or of a service.
type MachineCheck struct {
	Type          string        `json:"type,omitempty"` // tcp or http
	Port          int           `json:"port,omitempty"`
	Interval      *Duration     `json:"interval,omitempty"`
	Timeout       *Duration     `json:"timeout,omitempty"`
	GracePeriod   *Duration     `json:"grace_period,omitempty"`
	Kind          string        `json:"kind,omitempty"` // informational (default) or readiness; top-level checks only
	Method        string        `json:"method,omitempty"`
	Path          string        `json:"path,omitempty"`
	Protocol      string        `json:"protocol,omitempty"` // http or https
	TLSSkipVerify bool          `json:"tls_skip_verify,omitempty"`
	TLSServerName string        `json:"tls_server_name,omitempty"`
	Headers       []CheckHeader `json:"headers,omitzero"`

	unknown unknownFields
}

type machineCheckJSON MachineCheck

// UnmarshalJSON decodes and keeps unmodelled members.
func (c *MachineCheck) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineCheckJSON)(c), &c.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (c MachineCheck) MarshalJSON() ([]byte, error) {
	return encodeObject(machineCheckJSON(c), c.unknown)
}

// CheckHeader is one request header of an HTTP check.
type CheckHeader struct {
	Name   string   `json:"name,omitempty"`
	Values []string `json:"values,omitzero"`

	unknown unknownFields
}

type checkHeaderJSON CheckHeader

// UnmarshalJSON decodes and keeps unmodelled members.
func (h *CheckHeader) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*checkHeaderJSON)(h), &h.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (h CheckHeader) MarshalJSON() ([]byte, error) {
	return encodeObject(checkHeaderJSON(h), h.unknown)
}
