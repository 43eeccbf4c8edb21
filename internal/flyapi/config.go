package flyapi

import (
	"encoding/json"
	"fmt"
)

// This file holds MachineConfig and its small top-level parts. Only the parts hangar reads or sets
// are modelled; the rest of Fly's config (init, mounts, processes, files, dns, metrics, statics,
// containers, volumes, rootfs, cache_drive, spot, and the ports' tls/http/proxy_proto options) travels
// as unknown members, byte for byte. Every type keeps the JSON members it does not model (see
// unknownFields) because Fly replaces the whole config on update.
//
// Field conventions: nested objects are pointers, so an object that was present (even empty) is
// written back; maps and slices use omitzero, so an empty but present {} or [] survives while an
// absent one stays absent; a scalar whose zero value differs from Fly's default (autostart,
// max_retries, ...) is a pointer so that an explicit false or 0 is not dropped.

// MachineConfig is the full configuration of a Fly Machine (docs/fly-api.md §6).
type MachineConfig struct {
	Image                   string                  `json:"image,omitempty"`
	Env                     map[string]string       `json:"env,omitzero"`
	Guest                   *MachineGuest           `json:"guest,omitempty"`
	Size                    string                  `json:"size,omitempty"` // deprecated preset name; excludes Guest
	Metadata                map[string]string       `json:"metadata,omitzero"`
	Services                []MachineService        `json:"services,omitzero"`
	Checks                  map[string]MachineCheck `json:"checks,omitzero"`
	Restart                 *MachineRestart         `json:"restart,omitempty"`
	AutoDestroy             bool                    `json:"auto_destroy,omitempty"`
	Schedule                string                  `json:"schedule,omitempty"` // hourly, daily, weekly, monthly
	StopConfig              *StopConfig             `json:"stop_config,omitempty"`
	Standbys                []string                `json:"standbys,omitzero"`
	DisableMachineAutostart *bool                   `json:"disable_machine_autostart,omitempty"` // deprecated: use services[].autostart

	unknown unknownFields
}

type machineConfigJSON MachineConfig

// UnmarshalJSON decodes the config and keeps the members it does not model.
func (c *MachineConfig) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineConfigJSON)(c), &c.unknown)
}

// MarshalJSON encodes the config with the members it did not model, unchanged.
func (c MachineConfig) MarshalJSON() ([]byte, error) {
	return encodeObject(machineConfigJSON(c), c.unknown)
}

// Clone returns a deep copy of the config, unknown members included. Use it for a
// read-modify-write: a plain struct copy shares slices and maps (services, env...) with the
// original. It copies through JSON, so it fails only for values JSON cannot hold (e.g. a NaN).
func (c *MachineConfig) Clone() (*MachineConfig, error) {
	data, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("flyapi: cloning machine config: %w", err)
	}
	var out MachineConfig
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("flyapi: cloning machine config: %w", err)
	}
	return &out, nil
}

// MachineGuest is the VM size.
type MachineGuest struct {
	CPUKind              string   `json:"cpu_kind,omitempty"` // shared or performance
	CPUs                 int      `json:"cpus,omitempty"`
	MemoryMB             int      `json:"memory_mb,omitempty"` // a multiple of 256
	MaxMemoryMB          int      `json:"max_memory_mb,omitempty"`
	GPUs                 int      `json:"gpus,omitempty"`
	GPUKind              string   `json:"gpu_kind,omitempty"`
	HostDedicationID     string   `json:"host_dedication_id,omitempty"`
	KernelArgs           []string `json:"kernel_args,omitzero"`
	PersistRootfs        string   `json:"persist_rootfs,omitempty"` // deprecated: use the config's rootfs
	RequiredHostFeatures []string `json:"required_host_features,omitzero"`

	unknown unknownFields
}

type machineGuestJSON MachineGuest

// UnmarshalJSON decodes and keeps unmodelled members.
func (g *MachineGuest) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineGuestJSON)(g), &g.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (g MachineGuest) MarshalJSON() ([]byte, error) {
	return encodeObject(machineGuestJSON(g), g.unknown)
}

// MachineRestart is the restart policy.
type MachineRestart struct {
	Policy     string `json:"policy,omitempty"` // no, always, on-failure
	MaxRetries *int   `json:"max_retries,omitempty"`

	unknown unknownFields
}

// Restart policies.
const (
	RestartNo        = "no"
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
)

type machineRestartJSON MachineRestart

// UnmarshalJSON decodes and keeps unmodelled members.
func (r *MachineRestart) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineRestartJSON)(r), &r.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (r MachineRestart) MarshalJSON() ([]byte, error) {
	return encodeObject(machineRestartJSON(r), r.unknown)
}

// StopConfig says how a machine is stopped: the signal, then SIGKILL after Timeout.
type StopConfig struct {
	Signal  string    `json:"signal,omitempty"`
	Timeout *Duration `json:"timeout,omitempty"`

	unknown unknownFields
}

type stopConfigJSON StopConfig

// UnmarshalJSON decodes and keeps unmodelled members.
func (s *StopConfig) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*stopConfigJSON)(s), &s.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (s StopConfig) MarshalJSON() ([]byte, error) {
	return encodeObject(stopConfigJSON(s), s.unknown)
}
