// Package v1alpha1 holds the fly.hangar.dev/v1alpha1 API: UserApp (one Fly app per end user on its own
// private network) and UserMachine (one Fly Machine in a UserApp).
//
// The types carry their admission rules as OpenAPI and CEL markers, so a bad spec is refused by the
// apiserver with a message naming the field and the fix; nothing here talks to Fly.
//
// +kubebuilder:object:generate=true
// +groupName=fly.hangar.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "fly.hangar.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme; each kind's file adds
	// its own types in an init func. It depends on apimachinery only, so the API package stays cheap
	// to import.
	SchemeBuilder = runtime.NewSchemeBuilder(addGroupVersion)

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addGroupVersion(s *runtime.Scheme) error {
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
