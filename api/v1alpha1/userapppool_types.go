package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Labels the pool and claim controllers put on the UserApps and UserMachines of pooled users.
const (
	// PoolLabel names the UserAppPool a user was made for. It stays after the user is claimed.
	PoolLabel = "fly.hangar.dev/pool"
	// TemplateHashLabel is the hash of the pool template a user was made from (status.templateHash
	// of the pool then): a user whose hash differs from the pool's is replaced while unclaimed.
	TemplateHashLabel = "fly.hangar.dev/template-hash"
	// ClaimedByLabel names the UserAppClaim a user is bound to. A pooled user without it is unclaimed.
	ClaimedByLabel = "fly.hangar.dev/claimed-by"
)

// Conditions and reasons of UserAppPool.
const (
	// PoolScaledCondition is True when the pool holds spec.replicas unclaimed users of its current
	// template (creating, deleting and replacing users are its work).
	PoolScaledCondition = "Scaled"
	// UsersReadyCondition is True when every unclaimed user of the pool is Ready: its UserApp Ready
	// and its machines in the warm state.
	UsersReadyCondition = "UsersReady"
	// FillingReason: the pool is creating users up to spec.replicas.
	FillingReason = "Filling"
	// ScalingDownReason: the pool is deleting unclaimed users above spec.replicas.
	ScalingDownReason = "ScalingDown"
	// ReplacingReason: the template changed; unclaimed users of the old template are replaced one
	// at a time.
	ReplacingReason = "Replacing"
	// WarmingReason: some unclaimed users are not Ready yet.
	WarmingReason = "Warming"
)

// UserAppPoolSpec is how many unclaimed, ready users the pool keeps and what each is made of.
type UserAppPoolSpec struct {
	// replicas is how many unclaimed users the pool keeps ready (0 keeps none: every claim is a
	// cold start). A claim takes one out of the pool, and the pool makes another.
	// +required
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=500
	Replicas int32 `json:"replicas"`

	// template is what each pooled user gets: a UserApp on its own isolated network, and one
	// UserMachine per entry of template.machines. A change replaces the unclaimed users, one at a
	// time; claimed users keep what they were made with.
	// +required
	Template UserAppTemplate `json:"template"`

	// warmState is how pooled machines wait for a claim once they have booted once (so their image
	// is on the host): Stopped (the default: a claim boots them) or Suspended (a claim resumes them
	// from a memory snapshot, faster; the guest needs at most 2 GB of memory on Fly).
	// +optional
	// +kubebuilder:default=Stopped
	WarmState WarmState `json:"warmState,omitempty"`
}

// WarmState is how a pooled machine waits for its claim.
// +kubebuilder:validation:Enum=Stopped;Suspended
type WarmState string

const (
	// WarmStateStopped keeps pooled machines stopped.
	WarmStateStopped WarmState = "Stopped"
	// WarmStateSuspended keeps pooled machines suspended.
	WarmStateSuspended WarmState = "Suspended"
)

// UserAppTemplate is the part of a UserApp and its UserMachines a pool makes for each user. The
// end user's part (routing, secrets) comes from the claim.
type UserAppTemplate struct {
	// org is the slug of the Fly organization that owns the pooled apps. When empty, the manager's
	// default org is used.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.template.org must be a Fly organization slug: lowercase letters, digits and dashes (for example personal)"
	Org string `json:"org,omitempty"`

	// allocatePrivateIP gives each pooled app a Flycast (private_v6) address in its own network.
	// +optional
	AllocatePrivateIP bool `json:"allocatePrivateIP,omitempty"`

	// machines are the UserMachines of each pooled user.
	// +required
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	Machines []MachineTemplate `json:"machines"`
}

// MachineTemplate is one UserMachine of a pooled user.
type MachineTemplate struct {
	// name tells the machines of a user apart: the UserMachine is named <UserApp name>-<name>.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.template.machines[].name must be one lower-case DNS label: letters, digits and dashes (for example workspace)"
	Name string `json:"name"`

	// spec is the machine: the UserMachine fields a template may set. appRef is the pooled user's
	// UserApp; powerState is the pool's warmState until a claim starts the machine.
	// +required
	Spec MachineTemplateSpec `json:"spec"`
}

// MachineTemplateSpec is what a pool template sets of a UserMachine. Each field means what the
// UserMachine field of the same name means.
type MachineTemplateSpec struct {
	// region is the Fly region code, such as ord or ams. When empty, the manager's default region.
	// +optional
	// +kubebuilder:validation:MaxLength=3
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]{3}$')",message="region must be a three-letter lower-case Fly region code, such as ord or ams"
	Region string `json:"region,omitempty"`

	// image is the OCI image the machine runs, such as registry.fly.io/my-app:v1.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ')",message="image must be an image reference without spaces, such as registry.fly.io/my-app:v1"
	Image string `json:"image"`

	// guest is the machine size. When empty: one shared CPU with 256 MB.
	// +optional
	Guest *Guest `json:"guest,omitempty"`

	// env are environment variables for the machine's process (FLY_ and HANGAR_ names are reserved).
	// +optional
	// +kubebuilder:validation:MaxProperties=128
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 128 && k.matches('^[A-Za-z_][A-Za-z0-9_]*$'))",message="env keys must be environment variable names: letters, digits and _, not starting with a digit, at most 128 characters"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.matches('^(?i)(HANGAR|FLY)_'))",message="env keys starting with HANGAR_ or FLY_ (in any letter case) are reserved for hangar and Fly: choose another name"
	Env map[string]string `json:"env,omitempty"`

	// metadata are extra Fly machine metadata. Keys under hangar.dev/ and fly_ are reserved.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 128 && !k.startsWith('hangar.dev/') && !k.startsWith('fly_') && !k.startsWith('fly-'))",message="metadata keys under hangar.dev/, fly_ and fly- are reserved for hangar and Fly (and keys are at most 128 characters): rename the key"
	Metadata map[string]string `json:"metadata,omitempty"`

	// services are the machine's Fly Proxy services; when empty, the blueprint's management and
	// public services.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.all(b, a.name == b.name || !has(a.ports) || !has(b.ports) || a.ports.all(p, !b.ports.exists(q, q.port == p.port))))",message="services: two services claim the same public port; each public port may belong to one service only"
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
}

// UserAppPoolStatus is what the pool holds.
type UserAppPoolStatus struct {
	// conditions: Ready summarises Scaled and UsersReady (the pool is full of ready users).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the last pass looked at, whether it succeeded or
	// not: the conditions describe that generation (the kstatus convention).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// replicas is how many unclaimed users the pool holds, of any template, ready or not.
	// +optional
	Replicas int32 `json:"replicas"`

	// readyReplicas is how many unclaimed users of the current template are Ready to be claimed.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`

	// claimed is how many users made by this pool are bound to a claim now (claimed users that
	// were deleted are not counted).
	// +optional
	Claimed int32 `json:"claimed"`

	// templateHash identifies spec.template and spec.warmState; users carry it in the
	// fly.hangar.dev/template-hash label.
	// +optional
	TemplateHash string `json:"templateHash,omitempty"`
}

// UserAppPool keeps a number of unclaimed users ready: each a UserApp on its own network with its
// UserMachines, booted once and left stopped or suspended, waiting for a UserAppClaim.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=uap,categories=hangar
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Claimed",type=integer,JSONPath=`.status.claimed`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type UserAppPool struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec UserAppPoolSpec `json:"spec"`
	// +optional
	Status UserAppPoolStatus `json:"status,omitempty"`
}

// UserAppPoolList is a list of UserAppPools.
//
// +kubebuilder:object:root=true
type UserAppPoolList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserAppPool `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &UserAppPool{}, &UserAppPoolList{})
		return nil
	})
}

// GetConditions returns the pool's status conditions.
func (p *UserAppPool) GetConditions() []metav1.Condition { return p.Status.Conditions }

// SetConditions replaces the pool's status conditions.
func (p *UserAppPool) SetConditions(c []metav1.Condition) { p.Status.Conditions = c }

// GetObservedGeneration returns the generation the last pass looked at.
func (p *UserAppPool) GetObservedGeneration() int64 { return p.Status.ObservedGeneration }

// SetObservedGeneration records the generation a pass looked at.
func (p *UserAppPool) SetObservedGeneration(g int64) { p.Status.ObservedGeneration = g }
