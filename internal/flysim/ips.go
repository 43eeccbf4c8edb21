package flysim

import (
	"fmt"
	"net/http"
	"slices"
)

// ipNetworkView is an IP assignment's `network`: only Flycast (private_v6) addresses have one, with
// name "" for the org default network (§3).
type ipNetworkView struct {
	Name    string `json:"name"`
	OrgSlug string `json:"org_slug"`
}

type ipPairView struct {
	V4 string `json:"v4"`
	V6 string `json:"v6"`
}

// ipView is IPAssignment, and AssignIPResponse when IPPair is set.
type ipView struct {
	IP          *string        `json:"ip"`
	Region      string         `json:"region"`
	ServiceName string         `json:"service_name"`
	Shared      bool           `json:"shared"`
	CreatedAt   string         `json:"created_at"`
	Egress      bool           `json:"egress"`
	Network     *ipNetworkView `json:"network"`
	IPPair      *ipPairView    `json:"ip_pair,omitempty"`
}

func viewIP(ip *ipAssignment) ipView {
	v := ipView{Region: ip.region, ServiceName: ip.serviceName, Shared: ip.shared, CreatedAt: rfc3339(ip.createdAt), Egress: ip.egress}
	if ip.ip != "" {
		addr := ip.ip
		v.IP = &addr
	} else {
		v.IPPair = &ipPairView{V4: ip.pairV4, V6: ip.pairV6}
	}
	if ip.network != nil {
		v.Network = &ipNetworkView{Name: ip.network.name, OrgSlug: ip.networkOrg}
	}
	return v
}

func (s *Server) listIPs(req *request) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	out := make([]ipView, 0, len(a.ips))
	for _, ip := range a.ips {
		out = append(out, viewIP(ip))
	}
	return jsonReply(http.StatusOK, map[string]any{"ips": out})
}

var ipTypes = []string{"v4", "v6", "shared_v4", "private_v6", "egress_v4", "egress_v6", "egress_pair"}

// publicIPTypes are the types that make an app reachable from the internet through the Fly Proxy
// (fly ips allocate-v4 [--shared], allocate-v6); Flycast (private_v6) and egress addresses do not.
var publicIPTypes = map[string]bool{"v4": true, "v6": true, "shared_v4": true}

// sharedV4 is the one anycast address all shared_v4 apps share.
const sharedV4 = "66.241.124.100"

func (s *Server) assignIP(req *request) reply {
	var body struct {
		Type        string `json:"type"`
		Region      string `json:"region"`
		OrgSlug     string `json:"org_slug"`
		Network     string `json:"network"`
		ServiceName string `json:"service_name"`
	}
	if err := req.decodeBody(&body, false); err != nil {
		return errReply(err)
	}
	if !slices.Contains(ipTypes, body.Type) {
		return errorf(http.StatusBadRequest, "invalid_argument: type must be one of v4, v6, shared_v4, private_v6, egress_v4, egress_v6, egress_pair")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	ip := &ipAssignment{typ: body.Type, region: body.Region, serviceName: body.ServiceName, createdAt: s.now()}
	if ip.region == "" {
		ip.region = "global"
	}
	switch body.Type {
	case "private_v6":
		// Flycast lands on the network named in the request, not the app's own: empty means the org
		// default network (§3, corrected docs).
		slug := body.OrgSlug
		if slug == "" {
			slug = a.org
		}
		o, err := s.orgFor(req, slug)
		if err != nil {
			return errReply(err)
		}
		n, err := existingNetwork(o, body.Network)
		if err != nil {
			return errReply(err)
		}
		n.flycasts++
		ip.ip = fmt.Sprintf("%s:0:1::%x", n.prefix(), n.flycasts+1)
		ip.network, ip.networkOrg = n, o.slug
	case "shared_v4":
		ip.ip, ip.shared = sharedV4, true
	case "v4":
		ip.ip = s.nextPublicIP("137.66.%d.%d", true)
	case "v6":
		ip.ip = s.nextPublicIP("2a09:8280:1::%x:%x", false)
	case "egress_v4", "egress_v6", "egress_pair":
		if body.Region == "" {
			ip.region = DefaultRegion
		}
		ip.egress = true
		v4, v6 := s.nextPublicIP("149.248.%d.%d", true), s.nextPublicIP("2a09:8280:e::%x:%x", false)
		switch body.Type {
		case "egress_v4":
			ip.ip = v4
		case "egress_v6":
			ip.ip = v6
		default:
			ip.pairV4, ip.pairV6 = v4, v6
		}
	}
	a.ips = append(a.ips, ip)
	return jsonReply(http.StatusOK, viewIP(ip))
}

// nextPublicIP fills format with the next unique pair of numbers (bytes for IPv4). Callers hold s.mu.
func (s *Server) nextPublicIP(format string, v4 bool) string {
	s.publicIPs++
	n := s.publicIPs
	if v4 {
		return fmt.Sprintf(format, (n/254)%256, n%254+1)
	}
	return fmt.Sprintf(format, n>>16, n&0xffff)
}

func (s *Server) deleteIP(req *request) reply {
	addr := req.r.PathValue("ip")
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.appFor(req)
	if err != nil {
		return errReply(err)
	}
	i := slices.IndexFunc(a.ips, func(ip *ipAssignment) bool { return ip.ip == addr || ip.pairV4 == addr || ip.pairV6 == addr })
	if i < 0 {
		return errorf(http.StatusNotFound, "ip assignment not found")
	}
	a.ips = slices.Delete(a.ips, i, i+1)
	return emptyReply(http.StatusNoContent)
}
