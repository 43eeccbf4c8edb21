// Package monitoring checks hangar's monitoring against the running binaries: the alerting rules
// and the dashboard's queries parse as Prometheus parses them and name only metrics the manager and
// the router serve, hangar_objects and hangar_build_info say what they should, and the
// ServiceMonitors select the metrics Services config/default deploys.
package monitoring
