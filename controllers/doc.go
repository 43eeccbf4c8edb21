// Package controllers reconciles UserApps and UserMachines into Fly apps and machines through a
// narrow Fly interface it owns. It never talks HTTP itself and never reads a Fly token.
package controllers

// Rights every controller needs, generated into config/rbac/role.yaml by `make manifests`; each
// kind's own rights are marked next to its reconciler.
//
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
