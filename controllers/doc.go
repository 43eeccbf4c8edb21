// Package controllers reconciles UserApps and UserMachines into Fly apps and machines through a
// narrow Fly interface it owns. It never talks HTTP itself and never reads a Fly token.
package controllers

// The manager's least-privilege RBAC, generated into config/rbac/role.yaml by `make manifests`.
//
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapps;usermachines,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapps/status;usermachines/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=fly.hangar.dev,resources=userapps/finalizers;usermachines/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
