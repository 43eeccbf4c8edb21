package flysim

import (
	"net/http"
	"regexp"
)

// networkNameRE is Fly's rule for custom network names: letters, digits and dashes, starting with a letter.
var networkNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{0,62}$`)

// defaultNetworkName selects the org default network when given as a network name. The apps list
// reports the default network as "default", so the emulator reads the name back the same way.
const defaultNetworkName = "default"

// networkForApp resolves the `network` of an app create: empty (or "default") is the org default
// network; any other valid name is that custom network, created on first use. Callers hold s.mu.
func (s *Server) networkForApp(o *org, name string) (*network, *apiError) {
	if name == "" || name == defaultNetworkName {
		return o.defaultNetwork, nil
	}
	if !networkNameRE.MatchString(name) {
		return nil, newAPIError(http.StatusUnprocessableEntity,
			"Validation failed: Network must start with a letter and contain only letters, numbers and dashes")
	}
	n := o.networks[name]
	if n == nil {
		n = &network{name: name, id: s.ids.networkID(), org: o.slug}
		o.networks[name] = n
	}
	return n, nil
}

// existingNetwork resolves the `network` of a private_v6 allocation: empty is the org default
// network, otherwise the network must already exist (400 "network not found").
func existingNetwork(o *org, name string) (*network, *apiError) {
	if name == "" || name == defaultNetworkName {
		return o.defaultNetwork, nil
	}
	if n := o.networks[name]; n != nil {
		return n, nil
	}
	return nil, newAPIError(http.StatusBadRequest, "network not found")
}
