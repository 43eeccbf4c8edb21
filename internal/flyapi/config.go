package flyapi

import (
	"encoding/json"
	"fmt"
)

// This file holds MachineConfig and its small top-level parts. Every type keeps the JSON members it
// does not model (see unknownFields) because Fly replaces the whole config on update.
//
// Field conventions: nested objects are pointers, so an object that was present (even empty) is
// written back; maps and slices use omitzero, so an empty but present {} or [] survives while an
// absent one stays absent; a scalar whose zero value differs from Fly's default (autostart,
// max_retries, ...) is a pointer so that an explicit false or 0 is not dropped.

// MachineConfig is the full configuration of a Fly Machine (reference sheet §6).
type MachineConfig struct {
	Image                   string                  `json:"image,omitempty"`
	Env                     map[string]string       `json:"env,omitzero"`
	Init                    *MachineInit            `json:"init,omitempty"`
	Guest                   *MachineGuest           `json:"guest,omitempty"`
	Size                    string                  `json:"size,omitempty"` // deprecated preset name; excludes Guest
	Metadata                map[string]string       `json:"metadata,omitzero"`
	Services                []MachineService        `json:"services,omitzero"`
	Checks                  map[string]MachineCheck `json:"checks,omitzero"`
	Mounts                  []MachineMount          `json:"mounts,omitzero"`
	Restart                 *MachineRestart         `json:"restart,omitempty"`
	AutoDestroy             bool                    `json:"auto_destroy,omitempty"`
	Schedule                string                  `json:"schedule,omitempty"` // hourly, daily, weekly, monthly
	Processes               []MachineProcess        `json:"processes,omitzero"`
	Files                   []MachineFile           `json:"files,omitzero"`
	DNS                     *MachineDNS             `json:"dns,omitempty"`
	StopConfig              *StopConfig             `json:"stop_config,omitempty"`
	Metrics                 *MachineMetrics         `json:"metrics,omitempty"`
	Statics                 []MachineStatic         `json:"statics,omitzero"`
	Standbys                []string                `json:"standbys,omitzero"`
	Containers              []ContainerConfig       `json:"containers,omitzero"`
	Volumes                 []ContainerVolume       `json:"volumes,omitzero"`
	Rootfs                  *MachineRootfs          `json:"rootfs,omitempty"`
	CacheDrive              *CacheDrive             `json:"cache_drive,omitempty"`
	Spot                    *SpotConfig             `json:"spot,omitempty"`
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

// MachineInit overrides the image's entrypoint and command.
type MachineInit struct {
	Exec       []string `json:"exec,omitzero"`
	Entrypoint []string `json:"entrypoint,omitzero"`
	Cmd        []string `json:"cmd,omitzero"`
	Tty        bool     `json:"tty,omitempty"`
	SwapSizeMB *int     `json:"swap_size_mb,omitempty"`
	KernelArgs []string `json:"kernel_args,omitzero"`

	unknown unknownFields
}

type machineInitJSON MachineInit

// UnmarshalJSON decodes and keeps unmodelled members.
func (i *MachineInit) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineInitJSON)(i), &i.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (i MachineInit) MarshalJSON() ([]byte, error) {
	return encodeObject(machineInitJSON(i), i.unknown)
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
	PersistRootfs        string   `json:"persist_rootfs,omitempty"` // deprecated: use MachineConfig.Rootfs
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

// MachineMount attaches a volume.
type MachineMount struct {
	Volume                 string `json:"volume,omitempty"`
	Path                   string `json:"path,omitempty"`
	Name                   string `json:"name,omitempty"`
	Encrypted              bool   `json:"encrypted,omitempty"`
	SizeGB                 int    `json:"size_gb,omitempty"`
	ExtendThresholdPercent int    `json:"extend_threshold_percent,omitempty"`
	AddSizeGB              int    `json:"add_size_gb,omitempty"`
	AddSizePercent         int    `json:"add_size_percent,omitempty"`
	MinAddSizeGB           int    `json:"min_add_size_gb,omitempty"`
	SizeGBLimit            int    `json:"size_gb_limit,omitempty"`

	unknown unknownFields
}

type machineMountJSON MachineMount

// UnmarshalJSON decodes and keeps unmodelled members.
func (m *MachineMount) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineMountJSON)(m), &m.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (m MachineMount) MarshalJSON() ([]byte, error) {
	return encodeObject(machineMountJSON(m), m.unknown)
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

// MachineMetrics points Fly's metrics scraper at the machine.
type MachineMetrics struct {
	Port  int    `json:"port,omitempty"`
	Path  string `json:"path,omitempty"`
	HTTPS bool   `json:"https,omitempty"`

	unknown unknownFields
}

type machineMetricsJSON MachineMetrics

// UnmarshalJSON decodes and keeps unmodelled members.
func (m *MachineMetrics) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineMetricsJSON)(m), &m.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (m MachineMetrics) MarshalJSON() ([]byte, error) {
	return encodeObject(machineMetricsJSON(m), m.unknown)
}

// MachineStatic serves files from the image (or a Tigris bucket) at the edge.
type MachineStatic struct {
	GuestPath     string `json:"guest_path,omitempty"`
	URLPrefix     string `json:"url_prefix,omitempty"`
	TigrisBucket  string `json:"tigris_bucket,omitempty"`
	IndexDocument string `json:"index_document,omitempty"`

	unknown unknownFields
}

type machineStaticJSON MachineStatic

// UnmarshalJSON decodes and keeps unmodelled members.
func (s *MachineStatic) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineStaticJSON)(s), &s.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (s MachineStatic) MarshalJSON() ([]byte, error) {
	return encodeObject(machineStaticJSON(s), s.unknown)
}

// MachineRootfs sets the root filesystem's size and persistence.
type MachineRootfs struct {
	Persist string `json:"persist,omitempty"` // never, always, restart
	SizeGB  int    `json:"size_gb,omitempty"`

	unknown unknownFields
}

type machineRootfsJSON MachineRootfs

// UnmarshalJSON decodes and keeps unmodelled members.
func (r *MachineRootfs) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineRootfsJSON)(r), &r.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (r MachineRootfs) MarshalJSON() ([]byte, error) {
	return encodeObject(machineRootfsJSON(r), r.unknown)
}

// CacheDrive adds a local cache disk.
type CacheDrive struct {
	SizeMB int `json:"size_mb,omitempty"`

	unknown unknownFields
}

type cacheDriveJSON CacheDrive

// UnmarshalJSON decodes and keeps unmodelled members.
func (c *CacheDrive) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*cacheDriveJSON)(c), &c.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (c CacheDrive) MarshalJSON() ([]byte, error) {
	return encodeObject(cacheDriveJSON(c), c.unknown)
}

// SpotConfig asks for spot capacity.
type SpotConfig struct {
	MaxPriceFraction float64 `json:"max_price_fraction,omitempty"` // in (0, 1]

	unknown unknownFields
}

type spotConfigJSON SpotConfig

// UnmarshalJSON decodes and keeps unmodelled members.
func (s *SpotConfig) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*spotConfigJSON)(s), &s.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (s SpotConfig) MarshalJSON() ([]byte, error) {
	return encodeObject(spotConfigJSON(s), s.unknown)
}
