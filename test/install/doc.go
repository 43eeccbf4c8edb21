// Package install checks the two ways hangar is installed into a cluster, dist/install.yaml and the
// Helm chart charts/hangar, against a real kube-apiserver: every object they hold is applied with
// server-side dry-run, and the chart's manager flags and RBAC are compared with config/.
package install
