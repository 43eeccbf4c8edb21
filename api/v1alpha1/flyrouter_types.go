package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// FlyRouter conditions, besides Ready, Reconciling and Stalled. AppCreatedCondition (shared with
// UserApp) is True once the router's Fly app exists and carries this FlyRouter's owner marker.
const (
	// AddressesReadyCondition (FlyRouter) is True once the router app has its public addresses
	// (when the org needs them for inbound traffic) and its Flycast address for the 9090 service.
	AddressesReadyCondition = "AddressesReady"
	// CredentialsReadyCondition (FlyRouter) is True while the router app's Fly secrets hold an
	// unexpired kubeconfig for the router's ServiceAccount, the root key and the token key.
	CredentialsReadyCondition = "CredentialsReady"
	// MachinesReadyCondition (FlyRouter) is True once every region runs spec.regions[].machines
	// machines of the current image and credentials, started with their checks passing.
	MachinesReadyCondition = "MachinesReady"
)

// FlyRouter reasons, besides the shared ones of conditions.go.
const (
	// RollingOutReason: machines are being replaced one at a time by machines of the new image or
	// credentials; every region keeps a healthy machine throughout (MachinesReady, Ready).
	RollingOutReason = "RollingOut"
	// CredentialsInvalidReason: the router's credentials cannot be minted: the ServiceAccount, the
	// CA bundle or the token key Secret is missing or unusable (CredentialsReady, Ready, Stalled).
	CredentialsInvalidReason = "CredentialsInvalid"
)

// FlyRouterSpec is the router's Fly app: where it runs, what it runs and how it reaches the
// kube-apiserver.
//
// +kubebuilder:validation:XValidation:rule="has(self.appName) == has(oldSelf.appName)",message="spec.appName can only be chosen when the FlyRouter is created: the router's Fly app would be replaced"
// +kubebuilder:validation:XValidation:rule="has(self.org) == has(oldSelf.org)",message="spec.org can only be chosen when the FlyRouter is created: a Fly app cannot move to another organization"
type FlyRouterSpec struct {
	// org is the Fly organization slug of the router app; its user apps must be in the same org
	// (replays never cross orgs). When empty, the manager's default org. Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.org must be a Fly organization slug: lowercase letters, digits and dashes (for example personal)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.org is immutable: a Fly app cannot move to another organization"
	Org string `json:"org,omitempty"`

	// appName is the router's Fly app name, global across Fly.io. When empty, the manager derives
	// one from the FlyRouter's name (with its app-name prefix and a "router-" part). Immutable.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.appName must use only lowercase letters, digits and dashes, and start and end with a letter or digit (Fly app naming rules)"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.appName is immutable: create a new FlyRouter to use another Fly app name"
	AppName string `json:"appName,omitempty"`

	// regions lists where the router runs and how many machines each region keeps. Machines are
	// replaced one at a time, a new one healthy before an old one goes, so every region keeps a
	// healthy machine throughout a rollout.
	// +required
	// +listType=map
	// +listMapKey=region
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	Regions []RouterRegion `json:"regions"`

	// image is the router's container image, such as registry.fly.io/hangar-router:v1.2.3. A new
	// image rolls out machine by machine.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.contains(' ')",message="spec.image must be an image reference without spaces, such as registry.fly.io/hangar-router:v1"
	Image string `json:"image"`

	// guest is the machine size; when empty, shared-cpu-1x with 256 MB.
	// +optional
	Guest *Guest `json:"guest,omitempty"`

	// baseDomain makes the router serve <spec.routing.subdomain>.<baseDomain> for each UserApp
	// (the router's --base-domain); it should equal the manager's. Empty turns subdomains off.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?[.])*[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="spec.baseDomain must be a lower-case DNS name without a trailing dot, such as apps.example.com"
	BaseDomain string `json:"baseDomain,omitempty"`

	// publicTokens configures the verification of the coordinator's tokens for UserApps with
	// routing.auth Token. Without it, their requests get 503.
	// +optional
	PublicTokens *RouterPublicTokens `json:"publicTokens,omitempty"`

	// apiServer is how the router, on Fly, reaches the kube-apiserver.
	// +required
	APIServer RouterAPIServer `json:"apiServer"`

	// serviceAccountName is the router's ServiceAccount, in the manager's namespace, whose tokens
	// the manager mints (TokenRequest) for the router. Bind it to the read-only router role only.
	// +optional
	// +kubebuilder:default=hangar-router
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Subdomain().validate(self).hasValue()",message="spec.serviceAccountName must be the name of a ServiceAccount: lower-case letters, digits, '-' and '.'"
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// tokenLifetime is how long each minted ServiceAccount token lives; the manager renews it at
	// two thirds of that and rolls the machines onto it. At least 10m (the apiserver's minimum),
	// at most 48h.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10m') && duration(self) <= duration('48h')",message="spec.tokenLifetime must be between 10m (the apiserver's minimum for a token) and 48h"
	TokenLifetime *metav1.Duration `json:"tokenLifetime,omitempty"`
}

// RouterRegion is one region of the router and its machine count.
type RouterRegion struct {
	// region is a Fly region code, such as ord or ams.
	// +required
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]+$')",message="region must be a Fly region code: lower-case letters and digits, such as ord"
	Region string `json:"region"`

	// machines is how many router machines the region keeps (at least 1).
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16
	Machines int32 `json:"machines,omitempty"`
}

// RouterPublicTokens is the router's public token verification.
type RouterPublicTokens struct {
	// keySecretRef names the Secret, in the manager's namespace, and key holding the
	// coordinator's HS256 key (at least 32 bytes).
	// +required
	KeySecretRef SecretKeySelector `json:"keySecretRef"`

	// issuer, when set, is the iss tokens must carry.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Issuer string `json:"issuer,omitempty"`

	// maxTTL refuses tokens whose expiry is further away than this; the router's default when
	// empty.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="spec.publicTokens.maxTTL must be positive"
	MaxTTL *metav1.Duration `json:"maxTTL,omitempty"`
}

// RouterAPIServer is the kube-apiserver endpoint the router on Fly uses.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.caData) && has(self.caConfigMapRef))",message="spec.apiServer takes caData or caConfigMapRef, not both"
type RouterAPIServer struct {
	// url is the apiserver's https URL as seen from Fly: a public endpoint, or a private path
	// (WireGuard peer, Tailscale...) the router's machines can reach.
	// +required
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="spec.apiServer.url must be an https URL with a host, such as https://k8s.example.com:6443"
	URL string `json:"url"`

	// caData is the PEM bundle the router trusts for the apiserver's certificate. Without it (and
	// caConfigMapRef), the system roots are trusted.
	// +optional
	// +kubebuilder:validation:MaxLength=65536
	// +kubebuilder:validation:XValidation:rule="self.contains('-----BEGIN CERTIFICATE-----')",message="spec.apiServer.caData must be PEM: one or more -----BEGIN CERTIFICATE----- blocks"
	CAData string `json:"caData,omitempty"`

	// caConfigMapRef names a ConfigMap key, in the manager's namespace, holding the PEM bundle
	// (such as kube-root-ca.crt's ca.crt).
	// +optional
	CAConfigMapRef *ConfigMapKeySelector `json:"caConfigMapRef,omitempty"`
}

// ConfigMapKeySelector selects one key of a ConfigMap.
type ConfigMapKeySelector struct {
	// name of the ConfigMap.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Subdomain().validate(self).hasValue()",message="caConfigMapRef.name must be the name of a ConfigMap: lower-case letters, digits, '-' and '.'"
	Name string `json:"name"`

	// key in the ConfigMap's data.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// RouterRegionStatus is one region's machines.
type RouterRegionStatus struct {
	// region is the Fly region code.
	Region string `json:"region"`
	// desired is spec's machine count for the region.
	Desired int32 `json:"desired"`
	// ready counts the region's machines of the current image and credentials that are started
	// with their checks passing.
	Ready int32 `json:"ready"`
}

// FlyRouterStatus is what the manager observed of the router app. It never holds a credential.
type FlyRouterStatus struct {
	// conditions: Ready summarises AppCreated, AddressesReady, CredentialsReady and MachinesReady.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the spec generation the last pass looked at (the kstatus convention).
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// appName, appID and org are the router's Fly app.
	// +optional
	AppName string `json:"appName,omitempty"`
	// +optional
	AppID string `json:"appID,omitempty"`
	// +optional
	Org string `json:"org,omitempty"`

	// publicIPs are the app's public addresses: point the DNS of the base domain and of the
	// routed hosts at them.
	// +optional
	// +listType=atomic
	PublicIPs []string `json:"publicIPs,omitempty"`

	// privateIP is the app's Flycast address, serving the management port 9090 on the org's
	// private network.
	// +optional
	PrivateIP string `json:"privateIP,omitempty"`

	// regions are the machines per region, ready and desired.
	// +optional
	// +listType=map
	// +listMapKey=region
	Regions []RouterRegionStatus `json:"regions,omitempty"`

	// regionsReady is how many regions have all their machines ready, as "ready/total".
	// +optional
	RegionsReady string `json:"regionsReady,omitempty"`

	// image is the image every machine runs once a rollout is complete; during one it stays the
	// previous image.
	// +optional
	Image string `json:"image,omitempty"`

	// credentialExpiry is when the ServiceAccount token the machines run with expires.
	// +optional
	CredentialExpiry *metav1.Time `json:"credentialExpiry,omitempty"`

	// credentialRenewalTime is when the manager mints the next token.
	// +optional
	CredentialRenewalTime *metav1.Time `json:"credentialRenewalTime,omitempty"`

	// secretsVersion is the Fly secrets version holding the current credentials; machines boot
	// with at least this version.
	// +optional
	SecretsVersion int64 `json:"secretsVersion,omitempty"`

	// secretsDigest identifies the settings behind the credentials last set (a keyed hash of the
	// root key, the token key, the CA and the apiserver URL, not of the token): a change mints
	// and sets new credentials at once.
	// +optional
	SecretsDigest string `json:"secretsDigest,omitempty"`

	// lastObservedTime is when the manager last read the app from Fly.
	// +optional
	LastObservedTime *metav1.Time `json:"lastObservedTime,omitempty"`

	// createRequestedTime is when a create of the app was sent whose outcome is not known yet.
	// +optional
	CreateRequestedTime *metav1.Time `json:"createRequestedTime,omitempty"`
}

// FlyRouter runs hangar's router as a Fly app: machines in each region with the public service
// (80/443 → 8080) and the Flycast-only management service (9090), credentials the manager mints
// and renews, and rollouts that keep every region serving. Cluster-scoped: it puts the root key on
// a Fly app, so only cluster administrators create one.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=fr,categories=hangar
// +kubebuilder:printcolumn:name="FlyApp",type=string,JSONPath=`.status.appName`
// +kubebuilder:printcolumn:name="Regions",type=string,JSONPath=`.status.regionsReady`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.status.image`
// +kubebuilder:printcolumn:name="Expiry",type=date,JSONPath=`.status.credentialExpiry`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type FlyRouter struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec FlyRouterSpec `json:"spec"`
	// +optional
	Status FlyRouterStatus `json:"status,omitempty"`
}

// FlyRouterList is a list of FlyRouters.
//
// +kubebuilder:object:root=true
type FlyRouterList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FlyRouter `json:"items"`
}

func init() {
	SchemeBuilder.Register(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &FlyRouter{}, &FlyRouterList{})
		return nil
	})
}

// DefaultRouterServiceAccount is the ServiceAccount a FlyRouter's tokens are minted for when
// spec.serviceAccountName is empty (config/router's, with config/default's name prefix).
const DefaultRouterServiceAccount = "hangar-router"

// DefaultRouterTokenLifetime is the lifetime of the router's tokens when spec.tokenLifetime is
// empty.
const DefaultRouterTokenLifetime = time.Hour

// GetConditions returns the FlyRouter's status conditions.
func (r *FlyRouter) GetConditions() []metav1.Condition { return r.Status.Conditions }

// SetConditions replaces the FlyRouter's status conditions.
func (r *FlyRouter) SetConditions(c []metav1.Condition) { r.Status.Conditions = c }

// GetObservedGeneration returns the generation the last pass looked at.
func (r *FlyRouter) GetObservedGeneration() int64 { return r.Status.ObservedGeneration }

// SetObservedGeneration records the generation a pass looked at.
func (r *FlyRouter) SetObservedGeneration(g int64) { r.Status.ObservedGeneration = g }
