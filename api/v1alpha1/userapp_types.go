package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// UserAppSpec is the Fly app one end user gets: its name, org, private network, secrets and how the
// router reaches it.
//
// +kubebuilder:validation:XValidation:rule="has(self.appName) == has(oldSelf.appName)",message="spec.appName can only be chosen when the UserApp is created: it cannot be added or removed later (the Fly app would be replaced)"
// +kubebuilder:validation:XValidation:rule="has(self.org) == has(oldSelf.org)",message="spec.org can only be chosen when the UserApp is created: a Fly app cannot move to another organization"
// +kubebuilder:validation:XValidation:rule="has(self.network) == has(oldSelf.network)",message="spec.network can only be chosen when the UserApp is created: a Fly app cannot move to another network"
// +kubebuilder:validation:XValidation:rule="!has(self.managementPolicy) || self.managementPolicy != 'ObserveOnly' || has(self.appName) || oldSelf.hasValue()",message="spec.appName is required to create a UserApp with managementPolicy ObserveOnly: name the existing Fly app to observe",optionalOldSelf=true
type UserAppSpec struct {
	// appName is the Fly app name. Fly app names are global across all of Fly.io. When empty, the
	// manager derives a stable name from the namespace and name (with its app-name prefix).
	// Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.appName must use only lowercase letters, digits and dashes, and start and end with a letter or digit (Fly app naming rules)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.appName is immutable: create a new UserApp to use another Fly app name"
	AppName string `json:"appName,omitempty"`

	// org is the slug of the Fly organization that owns the app. When empty, the manager's default
	// org is used.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.org must be a Fly organization slug: lowercase letters, digits and dashes (for example personal)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.org is immutable: a Fly app cannot move to another organization"
	Org string `json:"org,omitempty"`

	// network is the Fly private network (6PN) the app lives on. When empty, the app gets an
	// isolated network of its own, named after the app, so one user's machines cannot reach another's.
	// Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-zA-Z][-a-zA-Z0-9]*$')",message="spec.network must start with a letter and use only letters, digits and dashes"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.network is immutable: a Fly app cannot move to another network"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('n-')",message="spec.network must not start with n-: those names are reserved for the isolated networks hangar creates"
	Network string `json:"network,omitempty"`

	// shareNetwork lets this app share spec.network with other UserApps of the same namespace that
	// set it too. Without it, or across namespaces, a network already used by another UserApp's
	// app is refused (NetworkInUse): apps on one network reach each other's machines directly,
	// skipping the router.
	// +optional
	ShareNetwork bool `json:"shareNetwork,omitempty"`

	// allocatePrivateIP asks for a Flycast (private_v6) address in the app's own network, so services
	// on that network can reach the app through the Fly Proxy. status.privateIP shows the address.
	// +optional
	AllocatePrivateIP bool `json:"allocatePrivateIP,omitempty"`

	// secrets are Fly app secrets whose values come from Kubernetes Secrets in this namespace. A change
	// to a referenced Secret is synced to Fly and rolled out to the app's machines.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Secrets []AppSecret `json:"secrets,omitempty"`

	// routing says which hosts the router sends to this app and how public requests authenticate.
	// +optional
	Routing *AppRouting `json:"routing,omitempty"`

	// deletionPolicy says what happens to the Fly app when the UserApp is deleted: Delete removes it
	// (and its machines), Orphan leaves it running on Fly.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// managementPolicy says what the manager may do on Fly. Full (the default) creates, updates and
	// deletes. ObserveOnly reads and reports only: the Fly app named by spec.appName (required on
	// create; later, the app the manager already runs) must exist, and the manager never writes to it (no secrets, no keys, no owner marker, no
	// address) nor deletes it, whatever spec.deletionPolicy says, until the policy goes back to
	// Full. An app another hangar object owns is refused (NameTaken), so observing reveals nothing
	// of another tenant's app.
	// +optional
	// +kubebuilder:default=Full
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`
}

// ManagementPolicy says what the manager may do on Fly for an object (Crossplane's term).
// +kubebuilder:validation:Enum=Full;ObserveOnly
type ManagementPolicy string

const (
	// ManagementPolicyFull lets the manager create, update and delete the Fly resource.
	ManagementPolicyFull ManagementPolicy = "Full"
	// ManagementPolicyObserveOnly lets the manager read the Fly resource and report it, never write.
	ManagementPolicyObserveOnly ManagementPolicy = "ObserveOnly"
)

// AppSecret is one Fly app secret taken from a key of a Kubernetes Secret.
type AppSecret struct {
	// name is the Fly secret name, as the machines see it in their environment.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Z_][A-Z0-9_]*$')",message="secret name must be an upper-case environment variable name: A-Z, 0-9 and _, not starting with a digit (for example DATABASE_URL)"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('HANGAR_') && !self.startsWith('FLY_')",message="secret names starting with HANGAR_ or FLY_ are reserved for hangar and Fly: choose another name"
	Name string `json:"name"`

	// secretKeyRef names the Kubernetes Secret and key holding the value.
	// +required
	SecretKeyRef SecretKeySelector `json:"secretKeyRef"`
}

// SecretKeySelector selects one key of a Secret in the object's namespace.
type SecretKeySelector struct {
	// name of the Secret: a Kubernetes object name (lower case, DNS-1123 subdomain).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Subdomain().validate(self).hasValue()",message="secretKeyRef.name must be the name of a Secret: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (for example alice-credentials)"
	Name string `json:"name"`

	// key in the Secret's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z0-9]+$')",message="secretKeyRef.key must be a valid Secret data key: letters, digits, '-', '_' and '.'"
	Key string `json:"key"`
}

// AppRouting maps hosts to an app for the router.
type AppRouting struct {
	// hosts are DNS names whose requests the router replays to this app, in lower-case ASCII (use the
	// xn-- form for internationalised names).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?[.])*[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="each host must be a lower-case DNS name without port or trailing dot, such as alice.example.com (use the xn-- form for non-ASCII names)"
	Hosts []string `json:"hosts,omitempty"`

	// subdomain is a single DNS label; the router serves <subdomain>.<its base domain> for this app.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.routing.subdomain must be one lower-case DNS label: letters, digits and dashes, no dots"
	Subdomain string `json:"subdomain,omitempty"`

	// auth is how public requests to this app authenticate at the router: Public lets every request
	// through; Token requires a short-lived token signed by the platform's coordinator.
	// +optional
	// +kubebuilder:default=Public
	Auth RoutingAuth `json:"auth,omitempty"`
}

// RoutingAuth is the public authentication mode of an app.
// +kubebuilder:validation:Enum=Public;Token
type RoutingAuth string

const (
	// RoutingAuthPublic lets every public request through to the app.
	RoutingAuthPublic RoutingAuth = "Public"
	// RoutingAuthToken requires a coordinator-signed token on every public request.
	RoutingAuthToken RoutingAuth = "Token"
)

// DeletionPolicy says what happens on Fly when the Kubernetes object is deleted.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

const (
	// DeletionPolicyDelete removes the Fly resource with the object.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyOrphan leaves the Fly resource in place.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// UserAppStatus is what the manager observed of the Fly app.
type UserAppStatus struct {
	// conditions: Ready summarises AppCreated, SecretsSynced, PrivateIPReady, ConnectionSecretReady
	// and HostsAccepted.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the last pass looked at, whether it succeeded or
	// not: the conditions describe that generation (the kstatus convention).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// appName is the Fly app name in use.
	// +optional
	AppName string `json:"appName,omitempty"`

	// appID is Fly's ID of the app.
	// +optional
	AppID string `json:"appID,omitempty"`

	// org is the Fly organization slug of the app.
	// +optional
	Org string `json:"org,omitempty"`

	// network is the Fly private network of the app.
	// +optional
	Network string `json:"network,omitempty"`

	// privateIP is the app's Flycast address, when spec.allocatePrivateIP asks for one.
	// +optional
	PrivateIP string `json:"privateIP,omitempty"`

	// secretsVersion is the Fly secrets version holding the secrets hangar last set; machines are
	// created and updated with it as their minimum secrets version.
	// +optional
	SecretsVersion int64 `json:"secretsVersion,omitempty"`

	// secretsDigest identifies the secret values hangar last set on Fly. It is a keyed hash: it
	// reveals nothing of the values, and a change of any value changes it.
	// +optional
	SecretsDigest string `json:"secretsDigest,omitempty"`

	// keyGeneration is the generation of the app's keys (its replay key and management token), which
	// are bound to this UserApp's UID: a UserApp created again gets other keys. The
	// fly.hangar.dev/rotate-keys annotation raises it.
	// +optional
	KeyGeneration int64 `json:"keyGeneration,omitempty"`

	// keyRotation is the value of the fly.hangar.dev/rotate-keys annotation the current key
	// generation answers.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	KeyRotation string `json:"keyRotation,omitempty"`

	// previousKeysValidUntil is set during a key rotation: until then the previous generation's keys
	// stay valid (the router signs replays with the previous replay key, which machines hold beside
	// the new one, and accepts both management tokens); then they are dropped.
	// +optional
	PreviousKeysValidUntil *metav1.Time `json:"previousKeysValidUntil,omitempty"`

	// managedSecrets are the Fly secret names hangar set, so a name dropped from spec.secrets is
	// removed from Fly while secrets set by other means are left alone.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=66
	ManagedSecrets []string `json:"managedSecrets,omitempty"`

	// lastObservedTime is when the manager last read the app from Fly.
	// +optional
	LastObservedTime *metav1.Time `json:"lastObservedTime,omitempty"`

	// createRequestedTime is when the manager last sent a create for this app whose outcome it has
	// not seen yet. Fly makes apps asynchronously: until the manager's list-consistency window has
	// passed since this time, an app of this name that cannot be read yet is waited for.
	// +optional
	CreateRequestedTime *metav1.Time `json:"createRequestedTime,omitempty"`

	// connectionSecretName names the Secret (in this namespace) with what the platform's coordinator
	// needs to reach the app: the Fly app name, the management token and the private IP.
	// +optional
	ConnectionSecretName string `json:"connectionSecretName,omitempty"`
}

// UserApp is one Fly app for one end user, on its own private network.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ua,categories=hangar
// +kubebuilder:printcolumn:name="FlyApp",type=string,JSONPath=`.status.appName`
// +kubebuilder:printcolumn:name="Network",type=string,JSONPath=`.status.network`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Hosts",type=string,JSONPath=`.spec.routing.hosts`,priority=1
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.managementPolicy`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type UserApp struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec UserAppSpec `json:"spec"`
	// +optional
	Status UserAppStatus `json:"status,omitempty"`
}

// UserAppList is a list of UserApps.
//
// +kubebuilder:object:root=true
type UserAppList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UserApp `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &UserApp{}, &UserAppList{})
		return nil
	})
}

// The accessors below let the controllers run one reconcile loop for every kind: they read and
// write the conditions and observedGeneration of any hangar object the same way.

// GetConditions returns the UserApp's status conditions.
func (a *UserApp) GetConditions() []metav1.Condition { return a.Status.Conditions }

// SetConditions replaces the UserApp's status conditions.
func (a *UserApp) SetConditions(c []metav1.Condition) { a.Status.Conditions = c }

// GetObservedGeneration returns the generation the last pass looked at.
func (a *UserApp) GetObservedGeneration() int64 { return a.Status.ObservedGeneration }

// SetObservedGeneration records the generation a pass looked at.
func (a *UserApp) SetObservedGeneration(g int64) { a.Status.ObservedGeneration = g }
