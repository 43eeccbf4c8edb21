package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Conditions and reasons of UserAppClaim.
const (
	// BoundCondition is True when the claim has its user: a pooled one it took (reason Claimed) or
	// one it created because the pool had none ready (reason ColdStart).
	BoundCondition = "Bound"
	// MachinesStartedCondition is True when every machine of the claimed user is asked to run.
	MachinesStartedCondition = "MachinesStarted"
	// UserReadyCondition is True when the claimed user's UserApp is Ready with the claim's routing,
	// secrets and fresh keys, and its machines run that configuration, started.
	UserReadyCondition = "UserReady"
	// ClaimedReason: the claim took a ready user out of its pool.
	ClaimedReason = "Claimed"
	// ColdStartReason: the pool had no ready user, so the claim created one from the pool's template.
	ColdStartReason = "ColdStart"
	// PoolNotFoundReason: spec.poolRef names no UserAppPool in the claim's namespace.
	PoolNotFoundReason = "PoolNotFound"
	// UserNotReadyReason: the claimed user's UserApp or machines are still converging.
	UserNotReadyReason = "UserNotReady"
)

// ClaimSource says where a claim's user came from.
type ClaimSource string

const (
	// ClaimSourcePool is a ready user taken out of the pool.
	ClaimSourcePool ClaimSource = "Pool"
	// ClaimSourceColdStart is a user created for the claim because the pool had none ready.
	ClaimSourceColdStart ClaimSource = "ColdStart"
)

// UserAppClaimSpec binds one user of a pool to an end user: the pool to take it from, and what
// becomes the end user's own (routing, secrets).
type UserAppClaimSpec struct {
	// poolRef names the UserAppPool (in this namespace) to take a user from. Immutable.
	// +required
	PoolRef PoolReference `json:"poolRef"`

	// routing says which hosts the router sends to the claimed user and how public requests
	// authenticate: the UserApp's spec.routing.
	// +optional
	Routing *AppRouting `json:"routing,omitempty"`

	// secrets are the end user's Fly app secrets, from Kubernetes Secrets in this namespace shared
	// with UserApps: the UserApp's spec.secrets.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Secrets []AppSecret `json:"secrets,omitempty"`
}

// PoolReference names a UserAppPool in the same namespace.
type PoolReference struct {
	// name of the UserAppPool: a Kubernetes object name (lower case, DNS-1123 subdomain).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Subdomain().validate(self).hasValue()",message="spec.poolRef.name must be the name of a UserAppPool: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (for example workspaces)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.poolRef.name is immutable: create a new UserAppClaim to take a user from another pool"
	Name string `json:"name"`
}

// UserAppClaimStatus is which user the claim holds and how far it is.
type UserAppClaimStatus struct {
	// conditions: Ready summarises Bound, MachinesStarted and UserReady.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the last pass looked at, whether it succeeded or
	// not: the conditions describe that generation (the kstatus convention).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// userAppName names the claimed user's UserApp in this namespace.
	// +optional
	UserAppName string `json:"userAppName,omitempty"`

	// appName is the claimed user's Fly app.
	// +optional
	AppName string `json:"appName,omitempty"`

	// source is Pool (a ready user taken from the pool) or ColdStart (created for this claim).
	// +optional
	Source ClaimSource `json:"source,omitempty"`

	// boundTime is when the claim got its user.
	// +optional
	BoundTime *metav1.Time `json:"boundTime,omitempty"`
}

// UserAppClaim takes one ready user out of a UserAppPool for an end user, or creates one from the
// pool's template when the pool has none ready. The user's routing, secrets and keys become the end
// user's, then its machines start. Deleting the claim deletes the user and its Fly app.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=uac,categories=hangar
// +kubebuilder:printcolumn:name="Pool",type=string,JSONPath=`.spec.poolRef.name`
// +kubebuilder:printcolumn:name="UserApp",type=string,JSONPath=`.status.userAppName`
// +kubebuilder:printcolumn:name="Source",type=string,JSONPath=`.status.source`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="FlyApp",type=string,JSONPath=`.status.appName`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type UserAppClaim struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec UserAppClaimSpec `json:"spec"`
	// +optional
	Status UserAppClaimStatus `json:"status,omitempty"`
}

// UserAppClaimList is a list of UserAppClaims.
//
// +kubebuilder:object:root=true
type UserAppClaimList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserAppClaim `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &UserAppClaim{}, &UserAppClaimList{})
		return nil
	})
}

// GetConditions returns the claim's status conditions.
func (c *UserAppClaim) GetConditions() []metav1.Condition { return c.Status.Conditions }

// SetConditions replaces the claim's status conditions.
func (c *UserAppClaim) SetConditions(conds []metav1.Condition) { c.Status.Conditions = conds }

// GetObservedGeneration returns the generation the last pass looked at.
func (c *UserAppClaim) GetObservedGeneration() int64 { return c.Status.ObservedGeneration }

// SetObservedGeneration records the generation a pass looked at.
func (c *UserAppClaim) SetObservedGeneration(g int64) { c.Status.ObservedGeneration = g }
