// Package cluster tests that the manager and the router carry on through kube-apiserver restarts.
package cluster
