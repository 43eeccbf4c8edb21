package flyapi

// This file holds the runtime parts of a MachineConfig: processes, files, DNS and containers.

// MachineProcess is one process run by the machine's init.
type MachineProcess struct {
	Exec             []string          `json:"exec,omitzero"`
	Entrypoint       []string          `json:"entrypoint,omitzero"`
	Cmd              []string          `json:"cmd,omitzero"`
	User             string            `json:"user,omitempty"`
	Env              map[string]string `json:"env,omitzero"`
	EnvFrom          []EnvFrom         `json:"env_from,omitzero"`
	Secrets          []ProcessSecret   `json:"secrets,omitzero"`
	IgnoreAppSecrets bool              `json:"ignore_app_secrets,omitempty"`

	unknown unknownFields
}

type machineProcessJSON MachineProcess

// UnmarshalJSON decodes and keeps unmodelled members.
func (p *MachineProcess) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineProcessJSON)(p), &p.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (p MachineProcess) MarshalJSON() ([]byte, error) {
	return encodeObject(machineProcessJSON(p), p.unknown)
}

// EnvFrom sets an environment variable from a machine field.
type EnvFrom struct {
	EnvVar   string `json:"env_var,omitempty"`
	FieldRef string `json:"field_ref,omitempty"` // id, version, app_name, private_ip, region, image

	unknown unknownFields
}

type envFromJSON EnvFrom

// UnmarshalJSON decodes and keeps unmodelled members.
func (e *EnvFrom) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*envFromJSON)(e), &e.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (e EnvFrom) MarshalJSON() ([]byte, error) {
	return encodeObject(envFromJSON(e), e.unknown)
}

// ProcessSecret exposes an app secret as an environment variable.
type ProcessSecret struct {
	EnvVar string `json:"env_var,omitempty"`
	Name   string `json:"name,omitempty"`

	unknown unknownFields
}

type processSecretJSON ProcessSecret

// UnmarshalJSON decodes and keeps unmodelled members.
func (s *ProcessSecret) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*processSecretJSON)(s), &s.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (s ProcessSecret) MarshalJSON() ([]byte, error) {
	return encodeObject(processSecretJSON(s), s.unknown)
}

// MachineFile writes a file into the machine at boot, from exactly one source.
type MachineFile struct {
	GuestPath   string  `json:"guest_path,omitempty"`
	RawValue    *string `json:"raw_value,omitempty"`   // base64 content
	SecretName  *string `json:"secret_name,omitempty"` // an app secret holding base64 content
	ImageConfig *string `json:"image_config,omitempty"`
	Mode        uint32  `json:"mode,omitempty"`

	unknown unknownFields
}

type machineFileJSON MachineFile

// UnmarshalJSON decodes and keeps unmodelled members.
func (f *MachineFile) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineFileJSON)(f), &f.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (f MachineFile) MarshalJSON() ([]byte, error) {
	return encodeObject(machineFileJSON(f), f.unknown)
}

// MachineDNS configures the machine's resolver and its registration in Fly's internal DNS.
type MachineDNS struct {
	SkipRegistration bool             `json:"skip_registration,omitempty"`
	Nameservers      []string         `json:"nameservers,omitzero"`
	Searches         []string         `json:"searches,omitzero"`
	Options          []DNSOption      `json:"options,omitzero"`
	ForwardRules     []DNSForwardRule `json:"dns_forward_rules,omitzero"`
	Hostname         string           `json:"hostname,omitempty"`
	HostnameFQDN     string           `json:"hostname_fqdn,omitempty"`

	unknown unknownFields
}

type machineDNSJSON MachineDNS

// UnmarshalJSON decodes and keeps unmodelled members.
func (d *MachineDNS) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*machineDNSJSON)(d), &d.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (d MachineDNS) MarshalJSON() ([]byte, error) {
	return encodeObject(machineDNSJSON(d), d.unknown)
}

// DNSOption is one resolv.conf option.
type DNSOption struct {
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`

	unknown unknownFields
}

type dnsOptionJSON DNSOption

// UnmarshalJSON decodes and keeps unmodelled members.
func (o *DNSOption) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*dnsOptionJSON)(o), &o.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (o DNSOption) MarshalJSON() ([]byte, error) {
	return encodeObject(dnsOptionJSON(o), o.unknown)
}

// DNSForwardRule sends lookups under a base name to another resolver.
type DNSForwardRule struct {
	Basename string `json:"basename,omitempty"`
	Addr     string `json:"addr,omitempty"`

	unknown unknownFields
}

type dnsForwardRuleJSON DNSForwardRule

// UnmarshalJSON decodes and keeps unmodelled members.
func (r *DNSForwardRule) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*dnsForwardRuleJSON)(r), &r.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (r DNSForwardRule) MarshalJSON() ([]byte, error) {
	return encodeObject(dnsForwardRuleJSON(r), r.unknown)
}

// ContainerConfig is one container of a multi-container machine (restricted orgs).
type ContainerConfig struct {
	Name         string                 `json:"name,omitempty"`
	Image        string                 `json:"image,omitempty"`
	Exec         []string               `json:"exec,omitzero"`
	Entrypoint   []string               `json:"entrypoint,omitzero"`
	Cmd          []string               `json:"cmd,omitzero"`
	User         string                 `json:"user,omitempty"`
	Env          map[string]string      `json:"env,omitzero"`
	Secrets      []ProcessSecret        `json:"secrets,omitzero"`
	EnvFrom      []EnvFrom              `json:"env_from,omitzero"`
	Files        []MachineFile          `json:"files,omitzero"`
	Restart      *MachineRestart        `json:"restart,omitempty"`
	Stop         *StopConfig            `json:"stop,omitempty"`
	DependsOn    []ContainerDependency  `json:"depends_on,omitzero"`
	Mounts       []ContainerMount       `json:"mounts,omitzero"`
	Healthchecks []ContainerHealthcheck `json:"healthchecks,omitzero"`

	unknown unknownFields
}

type containerConfigJSON ContainerConfig

// UnmarshalJSON decodes and keeps unmodelled members.
func (c *ContainerConfig) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerConfigJSON)(c), &c.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (c ContainerConfig) MarshalJSON() ([]byte, error) {
	return encodeObject(containerConfigJSON(c), c.unknown)
}

// ContainerDependency orders container start-up.
type ContainerDependency struct {
	Name      string `json:"name,omitempty"`
	Condition string `json:"condition,omitempty"` // exited_successfully, healthy, started

	unknown unknownFields
}

type containerDependencyJSON ContainerDependency

// UnmarshalJSON decodes and keeps unmodelled members.
func (d *ContainerDependency) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerDependencyJSON)(d), &d.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (d ContainerDependency) MarshalJSON() ([]byte, error) {
	return encodeObject(containerDependencyJSON(d), d.unknown)
}

// ContainerMount mounts a named volume of MachineConfig.Volumes into a container.
type ContainerMount struct {
	Name string `json:"name,omitempty"`
	Path string `json:"path,omitempty"`

	unknown unknownFields
}

type containerMountJSON ContainerMount

// UnmarshalJSON decodes and keeps unmodelled members.
func (m *ContainerMount) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerMountJSON)(m), &m.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (m ContainerMount) MarshalJSON() ([]byte, error) {
	return encodeObject(containerMountJSON(m), m.unknown)
}

// ContainerHealthcheck checks one container. The sheet gives timeout as integer seconds but does
// not say how interval and grace_period are encoded, so those two are deliberately not modelled:
// they travel as unknown members, unchanged, rather than risk rewriting them in the wrong unit.
type ContainerHealthcheck struct {
	Name             string                    `json:"name,omitempty"`
	Kind             string                    `json:"kind,omitempty"` // readiness or liveness
	Unhealthy        string                    `json:"unhealthy,omitempty"`
	SuccessThreshold int                       `json:"success_threshold,omitempty"`
	FailureThreshold int                       `json:"failure_threshold,omitempty"`
	TimeoutSeconds   int                       `json:"timeout,omitempty"`
	HTTP             *ContainerHTTPHealthcheck `json:"http,omitempty"`
	TCP              *ContainerTCPHealthcheck  `json:"tcp,omitempty"`
	Exec             *ContainerExecHealthcheck `json:"exec,omitempty"`

	unknown unknownFields
}

type containerHealthcheckJSON ContainerHealthcheck

// UnmarshalJSON decodes and keeps unmodelled members.
func (h *ContainerHealthcheck) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerHealthcheckJSON)(h), &h.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (h ContainerHealthcheck) MarshalJSON() ([]byte, error) {
	return encodeObject(containerHealthcheckJSON(h), h.unknown)
}

// ContainerHTTPHealthcheck probes an HTTP endpoint. Its headers are kept as an unknown member
// because the sheet does not give their shape.
type ContainerHTTPHealthcheck struct {
	Port          int    `json:"port,omitempty"`
	Method        string `json:"method,omitempty"`
	Path          string `json:"path,omitempty"`
	Scheme        string `json:"scheme,omitempty"`
	TLSSkipVerify bool   `json:"tls_skip_verify,omitempty"`
	TLSServerName string `json:"tls_server_name,omitempty"`

	unknown unknownFields
}

type containerHTTPHealthcheckJSON ContainerHTTPHealthcheck

// UnmarshalJSON decodes and keeps unmodelled members.
func (h *ContainerHTTPHealthcheck) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerHTTPHealthcheckJSON)(h), &h.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (h ContainerHTTPHealthcheck) MarshalJSON() ([]byte, error) {
	return encodeObject(containerHTTPHealthcheckJSON(h), h.unknown)
}

// ContainerTCPHealthcheck probes a TCP port.
type ContainerTCPHealthcheck struct {
	Port int `json:"port,omitempty"`

	unknown unknownFields
}

type containerTCPHealthcheckJSON ContainerTCPHealthcheck

// UnmarshalJSON decodes and keeps unmodelled members.
func (h *ContainerTCPHealthcheck) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerTCPHealthcheckJSON)(h), &h.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (h ContainerTCPHealthcheck) MarshalJSON() ([]byte, error) {
	return encodeObject(containerTCPHealthcheckJSON(h), h.unknown)
}

// ContainerExecHealthcheck runs a command in the container.
type ContainerExecHealthcheck struct {
	Command []string `json:"command,omitzero"`

	unknown unknownFields
}

type containerExecHealthcheckJSON ContainerExecHealthcheck

// UnmarshalJSON decodes and keeps unmodelled members.
func (h *ContainerExecHealthcheck) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerExecHealthcheckJSON)(h), &h.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (h ContainerExecHealthcheck) MarshalJSON() ([]byte, error) {
	return encodeObject(containerExecHealthcheckJSON(h), h.unknown)
}

// ContainerVolume is a volume shared by the containers of a machine.
type ContainerVolume struct {
	Name    string            `json:"name,omitempty"`
	TempDir *ContainerTempDir `json:"temp_dir,omitempty"`
	Image   string            `json:"image,omitempty"`

	unknown unknownFields
}

type containerVolumeJSON ContainerVolume

// UnmarshalJSON decodes and keeps unmodelled members.
func (v *ContainerVolume) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerVolumeJSON)(v), &v.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (v ContainerVolume) MarshalJSON() ([]byte, error) {
	return encodeObject(containerVolumeJSON(v), v.unknown)
}

// ContainerTempDir is scratch space backed by disk or memory.
type ContainerTempDir struct {
	StorageType string `json:"storage_type,omitempty"` // disk or memory
	SizeMB      int    `json:"size_mb,omitempty"`

	unknown unknownFields
}

type containerTempDirJSON ContainerTempDir

// UnmarshalJSON decodes and keeps unmodelled members.
func (t *ContainerTempDir) UnmarshalJSON(data []byte) error {
	return decodeObject(data, (*containerTempDirJSON)(t), &t.unknown)
}

// MarshalJSON encodes with the unmodelled members.
func (t ContainerTempDir) MarshalJSON() ([]byte, error) {
	return encodeObject(containerTempDirJSON(t), t.unknown)
}
