package flyapi

import "encoding/json"

// Machine states (docs/fly-api.md §5). Persistent states are where a machine rests; transient
// ones pass on their own; destroyed is terminal, and replaced/migrated are reported only for an
// old version asked for by ?version=.
const (
	StateCreated      = "created"
	StateStarted      = "started"
	StateStopped      = "stopped"
	StateSuspended    = "suspended"
	StateFailed       = "failed"
	StateCreating     = "creating"
	StateStarting     = "starting"
	StateStopping     = "stopping"
	StateRestarting   = "restarting"
	StateSuspending   = "suspending"
	StateDestroying   = "destroying"
	StateLaunchFailed = "launch_failed"
	StateUpdating     = "updating"
	StateReplacing    = "replacing"
	StateDestroyed    = "destroyed"
	StateReplaced     = "replaced"
	StateMigrated     = "migrated"
)

// Machine is a Fly Machine as get, list, create and update return it (docs/fly-api.md §4.1).
type Machine struct {
	ID         string         `json:"id,omitempty"`
	Name       string         `json:"name,omitempty"`
	State      string         `json:"state,omitempty"`
	Region     string         `json:"region,omitempty"`
	InstanceID string         `json:"instance_id,omitempty"` // deprecated alias of Version
	Version    string         `json:"version,omitempty"`     // changes on every update
	PrivateIP  string         `json:"private_ip,omitempty"`
	CreatedAt  string         `json:"created_at,omitempty"` // RFC3339, as Fly sent it
	UpdatedAt  string         `json:"updated_at,omitempty"`
	Config     *MachineConfig `json:"config,omitempty"`
	// IncompleteConfig is set instead of Config when the host cannot be reached; it is partial,
	// so never build an update from it.
	IncompleteConfig *MachineConfig    `json:"incomplete_config,omitempty"`
	ImageRef         *ImageRef         `json:"image_ref,omitempty"`
	Events           []MachineEvent    `json:"events,omitzero"` // newest first
	Checks           []CheckStatus     `json:"checks,omitzero"`
	Nonce            string            `json:"nonce,omitempty"`       // only on a create with LeaseTTL
	Lease            *MachineLeaseInfo `json:"lease,omitempty"`       // only with include_leases
	HostStatus       string            `json:"host_status,omitempty"` // ok, unknown, unreachable
	HostFeatures     []string          `json:"host_features,omitzero"`
	Cordoned         bool              `json:"cordoned,omitempty"`
	Containers       []ContainerStatus `json:"containers,omitzero"`

	unknown unknownFields
}

type machineJSON Machine

// UnmarshalJSON decodes and keeps unmodelled members.
func (m *Machine) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineJSON)(m), &m.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (m Machine) MarshalJSON() ([]byte, error) {
	return encodeObject(machineJSON(m), m.unknown)
}

// ImageRef is the resolved image of a machine.
type ImageRef struct {
	Registry   string            `json:"registry,omitempty"`
	Repository string            `json:"repository,omitempty"`
	Tag        string            `json:"tag,omitempty"`
	Digest     string            `json:"digest,omitempty"`
	Labels     map[string]string `json:"labels,omitzero"`

	unknown unknownFields
}

type imageRefJSON ImageRef

// UnmarshalJSON decodes and keeps unmodelled members.
func (r *ImageRef) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*imageRefJSON)(r), &r.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (r ImageRef) MarshalJSON() ([]byte, error) {
	return encodeObject(imageRefJSON(r), r.unknown)
}

// MachineEvent is one entry of a machine's event log, e.g. type "start", status "started",
// source "flyd".
type MachineEvent struct {
	ID        string `json:"id,omitempty"`
	Type      string `json:"type,omitempty"`
	Status    string `json:"status,omitempty"`
	Source    string `json:"source,omitempty"`
	Timestamp int64  `json:"timestamp,omitempty"` // milliseconds since the Unix epoch
	// Request is the event's detail object (exit codes, restart counts...), kept raw.
	Request json.RawMessage `json:"request,omitempty"`

	unknown unknownFields
}

type machineEventJSON MachineEvent

// UnmarshalJSON decodes and keeps unmodelled members.
func (e *MachineEvent) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineEventJSON)(e), &e.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (e MachineEvent) MarshalJSON() ([]byte, error) {
	return encodeObject(machineEventJSON(e), e.unknown)
}

// CheckStatus is the latest result of one health check.
type CheckStatus struct {
	Name      string `json:"name,omitempty"`
	Status    string `json:"status,omitempty"` // passing, warning, critical
	Output    string `json:"output,omitempty"`
	UpdatedAt string `json:"updated_at,omitempty"`

	unknown unknownFields
}

type checkStatusJSON CheckStatus

// UnmarshalJSON decodes and keeps unmodelled members.
func (c *CheckStatus) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*checkStatusJSON)(c), &c.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (c CheckStatus) MarshalJSON() ([]byte, error) {
	return encodeObject(checkStatusJSON(c), c.unknown)
}

// MachineLeaseInfo is the lease summary a machine carries when listed with include_leases.
type MachineLeaseInfo struct {
	Description string `json:"description,omitempty"`
	ExpiresAt   int64  `json:"expires_at,omitempty"` // Unix seconds
	Owner       string `json:"owner,omitempty"`

	unknown unknownFields
}

type machineLeaseInfoJSON MachineLeaseInfo

// UnmarshalJSON decodes and keeps unmodelled members.
func (l *MachineLeaseInfo) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineLeaseInfoJSON)(l), &l.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (l MachineLeaseInfo) MarshalJSON() ([]byte, error) {
	return encodeObject(machineLeaseInfoJSON(l), l.unknown)
}

// ContainerStatus is the state of one container of a machine.
type ContainerStatus struct {
	Name  string `json:"name,omitempty"`
	State string `json:"state,omitempty"`

	unknown unknownFields
}

type containerStatusJSON ContainerStatus

// UnmarshalJSON decodes and keeps unmodelled members.
func (c *ContainerStatus) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerStatusJSON)(c), &c.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (c ContainerStatus) MarshalJSON() ([]byte, error) {
	return encodeObject(containerStatusJSON(c), c.unknown)
}
