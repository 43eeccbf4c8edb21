package v1alpha1

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// MaxFlyAppNameLength is Fly's limit on app names.
const MaxFlyAppNameLength = 63

// Blueprint ports of "Connecting to User Machines": a management service on 9090 and a public
// service on 80/443, reached by fly-replay through the port the request came in on.
const (
	ManagementServiceName   = "management"
	ManagementPort          = 9090
	PublicServiceName       = "public"
	PublicInternalPort      = 8080
	PublicHTTPPort          = 80
	PublicHTTPSPort         = 443
	defaultGuestMemoryMB    = 256
	defaultGuestCPUs        = 1
	nameHashLength          = 8
	isolatedNetworkPrefix   = "n-"
	maxFlyNetworkNameLength = 63
)

// lowerBase32 spells hashes with lower-case letters and digits only, so they are legal in Fly names.
var lowerBase32 = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// DefaultFlyAppName derives the Fly app name of a UserApp that does not set spec.appName:
// prefix + namespace + "-" + name, cut to fit, always ending in a hash of namespace/name. The hash
// keeps names apart that would read alike once cut or joined ("a-b"/"c" and "a"/"b-c"), and the
// result is stable, so a restarted manager finds the app it created.
func DefaultFlyAppName(prefix, namespace, name string) string {
	sum := sha256.Sum256([]byte(namespace + "/" + name))
	suffix := "-" + lowerBase32.EncodeToString(sum[:])[:nameHashLength]
	base := flyNameChars(prefix + namespace + "-" + name)
	if limit := MaxFlyAppNameLength - len(suffix); len(base) > limit {
		base = base[:limit]
	}
	base = strings.Trim(base, "-")
	if base == "" {
		return suffix[1:]
	}
	return base + suffix
}

// IsolatedNetworkName is the network a UserApp without spec.network gets: one of its own, named
// after the app. Fly network names must start with a letter, app names need not.
func IsolatedNetworkName(appName string) string {
	if appName != "" && appName[0] >= 'a' && appName[0] <= 'z' {
		return appName
	}
	name := isolatedNetworkPrefix + appName
	if len(name) > maxFlyNetworkNameLength {
		name = strings.TrimRight(name[:maxFlyNetworkNameLength], "-")
	}
	return name
}

// flyNameChars lower-cases s and turns every character Fly does not allow in a name into a dash,
// collapsing runs of dashes.
func flyNameChars(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	lastDash := false
	for _, r := range strings.ToLower(s) {
		ok := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		if !ok {
			if !lastDash {
				b.WriteByte('-')
			}
			lastDash = true
			continue
		}
		b.WriteRune(r)
		lastDash = false
	}
	return b.String()
}

// DefaultServices are the blueprint's services: management (9090 → 9090) and public (80 and 443 →
// 8080), HTTP on every port, started on demand and stopped when idle.
func DefaultServices() []MachineService {
	autostart := true
	return []MachineService{
		{
			Name:         ManagementServiceName,
			Protocol:     ServiceProtocolTCP,
			InternalPort: ManagementPort,
			Ports:        []ServicePort{{Port: ManagementPort, Handlers: []PortHandler{PortHandlerHTTP}}},
			Autostart:    &autostart,
			Autostop:     AutostopStop,
		},
		{
			Name:         PublicServiceName,
			Protocol:     ServiceProtocolTCP,
			InternalPort: PublicInternalPort,
			Ports: []ServicePort{
				{Port: PublicHTTPPort, Handlers: []PortHandler{PortHandlerHTTP}},
				{Port: PublicHTTPSPort, Handlers: []PortHandler{PortHandlerTLS, PortHandlerHTTP}},
			},
			Autostart: &autostart,
			Autostop:  AutostopStop,
		},
	}
}

// EffectiveServices are the services the machine runs: spec.services, or the blueprint's when empty.
func (s *UserMachineSpec) EffectiveServices() []MachineService {
	if len(s.Services) == 0 {
		return DefaultServices()
	}
	return s.Services
}

// EffectiveGuest is the machine size: spec.guest with the apiserver's defaults, or one shared CPU with
// 256 MB when unset.
func (s *UserMachineSpec) EffectiveGuest() Guest {
	g := Guest{CPUKind: CPUKindShared, CPUs: defaultGuestCPUs, MemoryMB: defaultGuestMemoryMB}
	if s.Guest == nil {
		return g
	}
	if s.Guest.CPUKind != "" {
		g.CPUKind = s.Guest.CPUKind
	}
	if s.Guest.CPUs != 0 {
		g.CPUs = s.Guest.CPUs
	}
	if s.Guest.MemoryMB != 0 {
		g.MemoryMB = s.Guest.MemoryMB
	}
	return g
}

// EffectiveDeletionPolicy is the machine's own policy, else its app's, else Delete.
func (s *UserMachineSpec) EffectiveDeletionPolicy(app *UserApp) DeletionPolicy {
	switch {
	case s.DeletionPolicy != "":
		return s.DeletionPolicy
	case app != nil && app.Spec.DeletionPolicy != "":
		return app.Spec.DeletionPolicy
	default:
		return DeletionPolicyDelete
	}
}
