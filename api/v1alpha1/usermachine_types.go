package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// UserMachineSpec is one Fly Machine in a UserApp: what it runs, its size, its services and whether
// it should be running.
//
// +kubebuilder:validation:XValidation:rule="has(self.region) == has(oldSelf.region)",message="spec.region can only be chosen when the UserMachine is created: a Fly Machine cannot move to another region"
// +kubebuilder:validation:XValidation:rule="has(self.machineID) == has(oldSelf.machineID)",message="spec.machineID can only be set when the UserMachine is created"
// +kubebuilder:validation:XValidation:rule="!has(self.managementPolicy) || self.managementPolicy != 'ObserveOnly' || has(self.machineID) || oldSelf.hasValue()",message="spec.machineID is required to create a UserMachine with managementPolicy ObserveOnly: name the existing Fly machine to observe",optionalOldSelf=true
// +kubebuilder:validation:XValidation:rule="!has(self.idle) || !has(self.powerState) || self.powerState == 'Auto'",message="spec.idle needs powerState Auto: the manager would start again a machine it stopped for idleness"
type UserMachineSpec struct {
	// appRef names the UserApp (in this namespace) the machine belongs to. Immutable.
	// +required
	AppRef AppReference `json:"appRef"`

	// region is the Fly region code, such as ord or ams. When empty, the manager's default region is
	// used. Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=3
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]{3}$')",message="spec.region must be a three-letter lower-case Fly region code, such as ord or ams"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.region is immutable: create a new UserMachine to run in another region"
	Region string `json:"region,omitempty"`

	// image is the OCI image the machine runs, such as registry.fly.io/my-app:v1.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ')",message="spec.image must be an image reference without spaces, such as registry.fly.io/my-app:v1"
	Image string `json:"image"`

	// guest is the machine size. When empty: one shared CPU with 256 MB.
	// +optional
	Guest *Guest `json:"guest,omitempty"`

	// env are environment variables for the machine's process. Names starting with FLY_ or HANGAR_
	// (in any letter case) are reserved: Fly and hangar set those.
	// +optional
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 128 && k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",message="spec.env keys must be environment variable names: letters, digits and _, not starting with a digit, at most 128 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.matches('^(?i)(HANGAR|FLY)_'))",message="spec.env keys starting with HANGAR_ or FLY_ (in any letter case) are reserved for hangar and Fly: choose another name"
	Env map[string]string `json:"env,omitempty"`

	// metadata are extra Fly machine metadata. Keys under hangar.dev/ and fly_ are reserved.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 128 && !k.startsWith('hangar.dev/') && !k.startsWith('fly_') && !k.startsWith('fly-'))",message="spec.metadata keys under hangar.dev/, fly_ and fly- are reserved for hangar and Fly (and keys are at most 128 characters): rename the key"
	Metadata map[string]string `json:"metadata,omitempty"`

	// services are the machine's Fly Proxy services. When empty, the blueprint's two HTTP services are
	// used: management (public port 9090 to internal port 9090) and public (ports 80 and 443 to
	// internal port 8080), both started on demand and stopped when idle.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.all(b, a.name == b.name || !has(a.ports) || !has(b.ports) || a.ports.all(p, !b.ports.exists(q, q.port == p.port))))",message="spec.services: two services claim the same public port; each public port may belong to one service only"
	Services []MachineService `json:"services,omitempty"`

	// checks are the machine's top-level health checks.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Checks []MachineCheck `json:"checks,omitempty"`

	// restart is what Fly does when the machine's process exits.
	// +optional
	Restart *RestartPolicy `json:"restart,omitempty"`

	// stopConfig is how Fly stops the machine's process.
	// +optional
	StopConfig *StopConfig `json:"stopConfig,omitempty"`

	// powerState is who decides whether the machine runs. Auto (the default) leaves it to the Fly
	// Proxy's autostart and autostop; Started, Stopped and Suspended are kept by the manager.
	// +optional
	// +kubebuilder:default=Auto
	PowerState PowerState `json:"powerState,omitempty"`

	// routing maps hosts to this machine specifically rather than to any machine of its app. A host
	// has one owner, the UserApp of the oldest claim: a machine refines its own app's hosts and never
	// takes a host another UserApp owns (the HostsAccepted condition says which it lost).
	// +optional
	Routing *MachineRouting `json:"routing,omitempty"`

	// deletionPolicy overrides the UserApp's deletion policy for this machine.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// idle stops or suspends the machine once the router has sent it no request (public or
	// management) for idle.timeout. The Fly Proxy wakes it on the next request (its services need
	// autostart, the default). Only with powerState Auto: a powerState the manager keeps would undo it.
	// +optional
	Idle *IdlePolicy `json:"idle,omitempty"`

	// managementPolicy says what the manager may do on Fly. Full (the default) creates, updates,
	// starts, stops and destroys the machine. ObserveOnly reads and reports only the machine
	// spec.machineID names (or, when the policy changes later, the one the manager already runs),
	// and the manager never writes to it nor destroys it, until the policy goes back to Full.
	// +optional
	// +kubebuilder:default=Full
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`

	// machineID names an existing Fly machine of the app for this UserMachine to stand for, instead
	// of one the manager creates. Required to create a UserMachine with managementPolicy
	// ObserveOnly. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-f]+$')",message="spec.machineID must be a Fly machine ID: lower-case hexadecimal (for example 3d8d9e1bce5189)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.machineID is immutable: create a new UserMachine to stand for another machine"
	MachineID string `json:"machineID,omitempty"`
}

// IdlePolicy is what happens to a machine nobody has used for a while.
type IdlePolicy struct {
	// timeout is how long the machine may go without a request before the manager acts, at least
	// one minute (for example 15m).
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="spec.idle.timeout must be at least 1m: activity is published about once a minute"
	Timeout metav1.Duration `json:"timeout"`

	// action is Stop (the default: the next request boots it) or Suspend (the next request resumes
	// it from a memory snapshot, faster; the machine needs a guest of at most 2 GB of memory on Fly).
	// +optional
	// +kubebuilder:default=Stop
	Action IdleAction `json:"action,omitempty"`
}

// IdleAction is what the manager does to an idle machine.
// +kubebuilder:validation:Enum=Stop;Suspend
type IdleAction string

const (
	// IdleActionStop stops an idle machine.
	IdleActionStop IdleAction = "Stop"
	// IdleActionSuspend suspends an idle machine.
	IdleActionSuspend IdleAction = "Suspend"
)

// AppReference names a UserApp in the same namespace.
type AppReference struct {
	// name of the UserApp: a Kubernetes object name (lower case, DNS-1123 subdomain).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Subdomain().validate(self).hasValue()",message="spec.appRef.name must be the name of a UserApp: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (for example alice)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.appRef.name is immutable: create a new UserMachine to move it to another UserApp"
	Name string `json:"name"`
}

// Guest is the machine size.
//
// +kubebuilder:validation:XValidation:rule="self.memoryMB % 256 == 0",message="spec.guest.memoryMB must be a multiple of 256"
// +kubebuilder:validation:XValidation:rule="self.cpuKind != 'shared' || (self.memoryMB >= 256 * self.cpus && self.memoryMB <= 2048 * self.cpus)",message="spec.guest.memoryMB must be between 256 and 2048 MB per CPU for shared CPUs: raise cpus or change memoryMB"
// +kubebuilder:validation:XValidation:rule="self.cpuKind != 'performance' || (self.memoryMB >= 2048 * self.cpus && self.memoryMB <= 8192 * self.cpus)",message="spec.guest.memoryMB must be between 2048 and 8192 MB per CPU for performance CPUs: raise cpus or change memoryMB"
// +kubebuilder:validation:XValidation:rule="self.cpuKind != 'shared' || self.cpus in [1, 2, 4, 6, 8]",message="spec.guest.cpus must be 1, 2, 4, 6 or 8 for shared CPUs"
// +kubebuilder:validation:XValidation:rule="self.cpuKind != 'performance' || self.cpus in [1, 2, 4, 6, 8, 10, 12, 14, 16]",message="spec.guest.cpus must be 1, 2, 4, 6, 8, 10, 12, 14 or 16 for performance CPUs"
type Guest struct {
	// cpuKind is shared or performance.
	// +optional
	// +kubebuilder:default=shared
	CPUKind CPUKind `json:"cpuKind,omitempty"`

	// cpus is the number of vCPUs.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	CPUs int32 `json:"cpus,omitempty"`

	// memoryMB is the memory in MB: a multiple of 256, 256-2048 per shared CPU or 2048-8192 per
	// performance CPU.
	// +optional
	// +kubebuilder:default=256
	// +kubebuilder:validation:Minimum=256
	// +kubebuilder:validation:Maximum=131072
	MemoryMB int32 `json:"memoryMB,omitempty"`
}

// CPUKind is a Fly CPU class.
// +kubebuilder:validation:Enum=shared;performance
type CPUKind string

const (
	// CPUKindShared is a shared vCPU.
	CPUKindShared CPUKind = "shared"
	// CPUKindPerformance is a dedicated vCPU.
	CPUKindPerformance CPUKind = "performance"
)

// MachineService is one Fly Proxy service of a machine.
//
// +kubebuilder:validation:XValidation:rule="self.protocol != 'udp' || !has(self.ports) || self.ports.all(p, !has(p.handlers) || size(p.handlers) == 0)",message="udp services cannot have port handlers: remove handlers or use protocol tcp"
// +kubebuilder:validation:XValidation:rule="!has(self.minMachinesRunning) || self.minMachinesRunning == 0 || self.autostop != 'off'",message="minMachinesRunning only matters when autostop is on: set autostop to stop or suspend, or remove minMachinesRunning"
type MachineService struct {
	// name identifies the service, such as management or public.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="service name must be a lower-case DNS label: letters, digits and dashes"
	Name string `json:"name"`

	// protocol is tcp or udp.
	// +optional
	// +kubebuilder:default=tcp
	Protocol ServiceProtocol `json:"protocol,omitempty"`

	// internalPort is the port the machine's process listens on.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	InternalPort int32 `json:"internalPort"`

	// ports are the public ports of the service on the Fly Proxy.
	// +optional
	// +listType=map
	// +listMapKey=port
	// +kubebuilder:validation:MaxItems=8
	Ports []ServicePort `json:"ports,omitempty"`

	// autostart lets the Fly Proxy start a stopped or suspended machine when a request arrives.
	// +optional
	// +kubebuilder:default=true
	Autostart *bool `json:"autostart,omitempty"`

	// autostop is what the Fly Proxy does to an idle machine: off, stop or suspend.
	// +optional
	// +kubebuilder:default=stop
	Autostop AutostopMode `json:"autostop,omitempty"`

	// minMachinesRunning keeps this many machines of the app running in the primary region when
	// autostop is on.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	MinMachinesRunning *int32 `json:"minMachinesRunning,omitempty"`

	// concurrency bounds the load the Fly Proxy sends to one machine.
	// +optional
	Concurrency *ServiceConcurrency `json:"concurrency,omitempty"`
}

// ServiceProtocol is a Fly service transport.
// +kubebuilder:validation:Enum=tcp;udp
type ServiceProtocol string

const (
	// ServiceProtocolTCP is TCP (HTTP services are TCP with the http handler).
	ServiceProtocolTCP ServiceProtocol = "tcp"
	// ServiceProtocolUDP is UDP.
	ServiceProtocolUDP ServiceProtocol = "udp"
)

// AutostopMode is what the Fly Proxy does to an idle machine.
// +kubebuilder:validation:Enum=off;stop;suspend
type AutostopMode string

const (
	// AutostopOff never stops the machine for idleness.
	AutostopOff AutostopMode = "off"
	// AutostopStop stops an idle machine.
	AutostopStop AutostopMode = "stop"
	// AutostopSuspend suspends an idle machine.
	AutostopSuspend AutostopMode = "suspend"
)

// ServicePort is one public port of a service.
//
// +kubebuilder:validation:XValidation:rule="!has(self.forceHTTPS) || !self.forceHTTPS || (has(self.handlers) && 'http' in self.handlers)",message="forceHTTPS needs the http handler on the same port: add http to handlers or drop forceHTTPS"
type ServicePort struct {
	// port is the public port on the Fly Proxy. fly-replay picks the target service by this port.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// handlers are the Fly Proxy handlers for this port: http, tls, pg_tls, proxy_proto. Empty means
	// raw TCP.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=4
	Handlers []PortHandler `json:"handlers,omitempty"`

	// forceHTTPS redirects plain HTTP to HTTPS (http handler only).
	// +optional
	ForceHTTPS bool `json:"forceHTTPS,omitempty"`
}

// PortHandler is a Fly Proxy port handler.
// +kubebuilder:validation:Enum=http;tls;pg_tls;proxy_proto
type PortHandler string

const (
	// PortHandlerHTTP terminates HTTP at the proxy; fly-replay needs it.
	PortHandlerHTTP PortHandler = "http"
	// PortHandlerTLS terminates TLS at the proxy.
	PortHandlerTLS PortHandler = "tls"
	// PortHandlerPgTLS terminates Postgres TLS at the proxy.
	PortHandlerPgTLS PortHandler = "pg_tls"
	// PortHandlerProxyProto adds a PROXY protocol header.
	PortHandlerProxyProto PortHandler = "proxy_proto"
)

// ServiceConcurrency bounds the load on one machine.
//
// +kubebuilder:validation:XValidation:rule="!has(self.softLimit) || !has(self.hardLimit) || self.softLimit <= self.hardLimit",message="concurrency.softLimit must not exceed concurrency.hardLimit"
type ServiceConcurrency struct {
	// type is what is counted: connections or requests.
	// +optional
	// +kubebuilder:default=connections
	Type ConcurrencyType `json:"type,omitempty"`

	// softLimit is the load above which the proxy prefers other machines.
	// +optional
	// +kubebuilder:validation:Minimum=1
	SoftLimit *int32 `json:"softLimit,omitempty"`

	// hardLimit is the load above which the proxy sends no more to this machine.
	// +optional
	// +kubebuilder:validation:Minimum=1
	HardLimit *int32 `json:"hardLimit,omitempty"`
}

// ConcurrencyType is what a concurrency limit counts.
// +kubebuilder:validation:Enum=connections;requests
type ConcurrencyType string

// MachineCheck is a named health check.
//
// +kubebuilder:validation:XValidation:rule="self.type == 'http' || (!has(self.path) && !has(self.method) && !has(self.protocol) && !has(self.headers))",message="path, method, protocol and headers only apply to http checks: set type http or remove them"
type MachineCheck struct {
	// name identifies the check.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z0-9]([-_a-zA-Z0-9]*[a-zA-Z0-9])?$')",message="check name must use letters, digits, '-' and '_'"
	Name string `json:"name"`

	// type is tcp or http.
	// +required
	Type CheckType `json:"type"`

	// port is the machine port the check connects to.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`

	// interval between checks, such as 15s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="check interval must be at least 1s"
	Interval *metav1.Duration `json:"interval,omitempty"`

	// timeout of one check, such as 2s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="check timeout must be positive"
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// gracePeriod after start before failures count, such as 5s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="check gracePeriod must not be negative"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`

	// kind is informational (the default) or readiness (a failing check takes the machine out of
	// load balancing).
	// +optional
	Kind CheckKind `json:"kind,omitempty"`

	// method is the HTTP method of an http check.
	// +optional
	// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE;OPTIONS
	Method string `json:"method,omitempty"`

	// path is the request path of an http check.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="check path must start with /"
	Path string `json:"path,omitempty"`

	// protocol is http or https for an http check.
	// +optional
	// +kubebuilder:validation:Enum=http;https
	Protocol string `json:"protocol,omitempty"`

	// tlsSkipVerify skips certificate verification for https checks.
	// +optional
	TLSSkipVerify bool `json:"tlsSkipVerify,omitempty"`

	// headers are sent with an http check.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Headers []CheckHeader `json:"headers,omitempty"`
}

// CheckType is how a check probes the machine.
// +kubebuilder:validation:Enum=tcp;http
type CheckType string

// CheckKind is what a failing check means.
// +kubebuilder:validation:Enum=informational;readiness
type CheckKind string

// CheckHeader is one request header of an http check.
type CheckHeader struct {
	// name of the header.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Name string `json:"name"`
	// values of the header.
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=1024
	Values []string `json:"values"`
}

// RestartPolicy is what Fly does when the machine's process exits.
//
// +kubebuilder:validation:XValidation:rule="!has(self.maxRetries) || self.policy == 'on-failure'",message="restart.maxRetries only applies to the on-failure policy"
type RestartPolicy struct {
	// policy is no, always or on-failure.
	// +required
	Policy RestartPolicyName `json:"policy"`

	// maxRetries bounds restarts under on-failure.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	MaxRetries *int32 `json:"maxRetries,omitempty"`
}

// RestartPolicyName is a Fly restart policy.
// +kubebuilder:validation:Enum=no;always;on-failure
type RestartPolicyName string

// StopConfig is how Fly stops the machine's process.
type StopConfig struct {
	// signal sent first, such as SIGTERM.
	// +optional
	// +kubebuilder:validation:Enum=SIGHUP;SIGINT;SIGQUIT;SIGKILL;SIGUSR1;SIGUSR2;SIGTERM
	Signal string `json:"signal,omitempty"`

	// timeout before SIGKILL, such as 10s.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s') && duration(self) <= duration('24h')",message="stopConfig.timeout must be between 0s and 24h"
	Timeout *metav1.Duration `json:"timeout,omitempty"`
}

// PowerState is who decides whether a machine runs.
// +kubebuilder:validation:Enum=Auto;Started;Stopped;Suspended
type PowerState string

const (
	// PowerStateAuto leaves starting and stopping to the Fly Proxy (autostart/autostop).
	PowerStateAuto PowerState = "Auto"
	// PowerStateStarted keeps the machine running.
	PowerStateStarted PowerState = "Started"
	// PowerStateStopped keeps the machine stopped (the proxy may still wake it when autostart is on).
	PowerStateStopped PowerState = "Stopped"
	// PowerStateSuspended keeps the machine suspended.
	PowerStateSuspended PowerState = "Suspended"
)

// MachineRouting maps hosts to one machine.
type MachineRouting struct {
	// hosts are DNS names whose requests the router replays to this machine, in lower-case ASCII.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?[.])*[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="each host must be a lower-case DNS name without port or trailing dot, such as alice.example.com (use the xn-- form for non-ASCII names)"
	Hosts []string `json:"hosts,omitempty"`
}

// UserMachineStatus is what the manager observed of the Fly Machine.
type UserMachineStatus struct {
	// conditions: Ready summarises AppReady, MachineCreated, ConfigSynced, PowerStateSynced and
	// HostsAccepted.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the last pass looked at, whether it succeeded or
	// not: the conditions describe that generation (the kstatus convention).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// appName is the Fly app the machine lives in.
	// +optional
	AppName string `json:"appName,omitempty"`

	// machineID is Fly's ID of the machine.
	// +optional
	MachineID string `json:"machineID,omitempty"`

	// machineName is the Fly machine name (derived from the object, so a lost create is found again).
	// +optional
	MachineName string `json:"machineName,omitempty"`

	// version is the Fly machine version last seen.
	// +optional
	Version string `json:"version,omitempty"`

	// region is the Fly region the machine runs in.
	// +optional
	Region string `json:"region,omitempty"`

	// privateIP is the machine's 6PN address.
	// +optional
	PrivateIP string `json:"privateIP,omitempty"`

	// state is the Fly machine state last seen, such as started or stopped.
	// +optional
	State string `json:"state,omitempty"`

	// configHash is the hash of the machine config hangar last applied.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`

	// lastObservedTime is when the manager last read the machine from Fly.
	// +optional
	LastObservedTime *metav1.Time `json:"lastObservedTime,omitempty"`

	// createRequestedTime is when the manager last sent a create for this machine whose outcome it
	// has not seen yet. Fly may have made the machine without the answer arriving, and its machine
	// list can lag behind: until the manager's list-consistency window has passed since this time,
	// a machine missing from the list is waited for, never created again.
	// +optional
	CreateRequestedTime *metav1.Time `json:"createRequestedTime,omitempty"`

	// lastActivityTime is when the router last sent the machine a request, as the router replicas
	// publish it: at most once a minute or so per app, so it may be that much behind.
	// +optional
	LastActivityTime *metav1.Time `json:"lastActivityTime,omitempty"`

	// idleActionTime is when the manager last stopped or suspended the machine for spec.idle.
	// +optional
	IdleActionTime *metav1.Time `json:"idleActionTime,omitempty"`
}

// UserMachine is one Fly Machine in a UserApp.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=um,categories=hangar
// +kubebuilder:printcolumn:name="App",type=string,JSONPath=`.spec.appRef.name`
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.status.region`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Machine",type=string,JSONPath=`.status.machineID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.managementPolicy`,priority=1
// +kubebuilder:printcolumn:name="LastActivity",type=date,JSONPath=`.status.lastActivityTime`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type UserMachine struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec UserMachineSpec `json:"spec"`
	// +optional
	Status UserMachineStatus `json:"status,omitempty"`
}

// UserMachineList is a list of UserMachines.
//
// +kubebuilder:object:root=true
type UserMachineList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserMachine `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &UserMachine{}, &UserMachineList{})
		return nil
	})
}

// The accessors below let the controllers run one reconcile loop for every kind: they read and
// write the conditions and observedGeneration of any hangar object the same way.

// GetConditions returns the UserMachine's status conditions.
func (m *UserMachine) GetConditions() []metav1.Condition { return m.Status.Conditions }

// SetConditions replaces the UserMachine's status conditions.
func (m *UserMachine) SetConditions(c []metav1.Condition) { m.Status.Conditions = c }

// GetObservedGeneration returns the generation the last pass looked at.
func (m *UserMachine) GetObservedGeneration() int64 { return m.Status.ObservedGeneration }

// SetObservedGeneration records the generation a pass looked at.
func (m *UserMachine) SetObservedGeneration(g int64) { m.Status.ObservedGeneration = g }
