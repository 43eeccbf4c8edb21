package flysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

type wireIP struct {
	IP          *string         `json:"ip"`
	Region      string          `json:"region"`
	ServiceName string          `json:"service_name"`
	Shared      bool            `json:"shared"`
	CreatedAt   string          `json:"created_at"`
	Egress      bool            `json:"egress"`
	Network     json.RawMessage `json:"network"`
	IPPair      *struct {
		V4 string `json:"v4"`
		V6 string `json:"v6"`
	} `json:"ip_pair"`
}

func TestIPAssignments(t *testing.T) {
	h := newHarness(t)
	h.Do("POST", "/v1/apps", map[string]any{"name": "ipapp", "org_slug": orgA, "network": "tenant-z"}).Expect(t, 201, nil)
	info, _ := h.srv.App("ipapp")
	appPrefix := fmt.Sprintf("fdaa:%x:%x:", info.NetworkID>>16, info.NetworkID&0xffff)
	defID, _ := h.srv.NetworkID(orgA, "")
	defaultPrefix := fmt.Sprintf("fdaa:%x:%x:", defID>>16, defID&0xffff)

	assign := func(body map[string]any) wireIP {
		t.Helper()
		var ip wireIP
		h.Do("POST", "/v1/apps/ipapp/ip_assignments", body).Expect(t, http.StatusOK, &ip)
		return ip
	}

	flycast := assign(map[string]any{"type": "private_v6", "network": "tenant-z"})
	if flycast.IP == nil || !strings.HasPrefix(*flycast.IP, appPrefix) {
		t.Errorf("flycast on the app's network: %+v, want prefix %s", flycast, appPrefix)
	}
	if string(flycast.Network) != `{"name":"tenant-z","org_slug":"org-a"}` {
		t.Errorf("flycast network %s", flycast.Network)
	}
	// Without network, Flycast lands in the org default network, not the app's own.
	onDefault := assign(map[string]any{"type": "private_v6"})
	if onDefault.IP == nil || !strings.HasPrefix(*onDefault.IP, defaultPrefix) || string(onDefault.Network) != `{"name":"","org_slug":"org-a"}` {
		t.Errorf("flycast without network: ip %v network %s, want prefix %s and name \"\"", *onDefault.IP, onDefault.Network, defaultPrefix)
	}
	v4 := assign(map[string]any{"type": "v4"})
	if v4.IP == nil || !netip.MustParseAddr(*v4.IP).Is4() || string(v4.Network) != "null" {
		t.Errorf("v4 %+v network %s", v4, v4.Network)
	}
	shared := assign(map[string]any{"type": "shared_v4"})
	if !shared.Shared {
		t.Errorf("shared_v4 not shared: %+v", shared)
	}
	pair := assign(map[string]any{"type": "egress_pair", "region": "ams"})
	if pair.IP != nil || pair.IPPair == nil || !pair.Egress || pair.Region != "ams" {
		t.Errorf("egress_pair %+v", pair)
	}
	for _, addr := range []string{*flycast.IP, *v4.IP, pair.IPPair.V6} {
		if _, err := netip.ParseAddr(addr); err != nil {
			t.Errorf("address %q does not parse: %v", addr, err)
		}
	}

	var list struct {
		IPs []wireIP `json:"ips"`
	}
	h.Do("GET", "/v1/apps/ipapp/ip_assignments", nil).Expect(t, 200, &list)
	if len(list.IPs) != 5 {
		t.Fatalf("listed %d addresses, want 5", len(list.IPs))
	}

	h.Do("DELETE", "/v1/apps/ipapp/ip_assignments/"+*flycast.IP, nil).Expect(t, http.StatusNoContent, nil)
	h.Do("DELETE", "/v1/apps/ipapp/ip_assignments/"+*flycast.IP, nil).ExpectError(t, http.StatusNotFound, "")
	h.Do("GET", "/v1/apps/ipapp/ip_assignments", nil).Expect(t, 200, &list)
	if len(list.IPs) != 4 {
		t.Errorf("after delete %d addresses, want 4", len(list.IPs))
	}

	h.Do("POST", "/v1/apps/ipapp/ip_assignments", map[string]any{"type": "private_v6", "network": "nowhere"}).ExpectError(t, 400, "network not found")
	h.Do("POST", "/v1/apps/ipapp/ip_assignments", map[string]any{"type": "v5"}).ExpectError(t, 400, "")
	h.Do("POST", "/v1/apps/ipapp/ip_assignments", map[string]any{"type": "private_v6", "org_slug": orgB}).ExpectError(t, 403, "")
	h.Do("GET", "/v1/apps/missing/ip_assignments", nil).ExpectError(t, 404, "app not found")
	h.As(tokenB).Do("GET", "/v1/apps/ipapp/ip_assignments", nil).ExpectError(t, 403, "")
}

// The seam reports an app's public addresses (the proxy needs one under RequirePublicIP): v4, v6 and
// shared_v4, not Flycast or egress addresses.
func TestSnapshotAppPublicIPs(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("ips")
	if a, _ := h.srv.SnapshotApp("ips"); len(a.PublicIPs) != 0 {
		t.Errorf("a new app has public addresses: %v", a.PublicIPs)
	}
	var want []string
	for _, typ := range []string{"private_v6", "egress_v4", "v6", "shared_v4", "v4"} {
		var ip struct {
			IP string `json:"ip"`
		}
		h.Do("POST", "/v1/apps/ips/ip_assignments", map[string]any{"type": typ}).Expect(t, http.StatusOK, &ip)
		if typ == "v6" || typ == "shared_v4" || typ == "v4" {
			want = append(want, ip.IP)
		}
	}
	if a, _ := h.srv.SnapshotApp("ips"); !slices.Equal(a.PublicIPs, want) {
		t.Errorf("public addresses %v, want %v", a.PublicIPs, want)
	}
}
