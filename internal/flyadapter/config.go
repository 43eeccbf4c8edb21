package flyadapter

import (
	"maps"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
)

// applyDesired writes the parts of a machine config hangar manages (image, env, guest, metadata,
// services, checks, restart, stop config) into cfg, which is either empty (a create) or the
// machine's current config (an update). Everything else in cfg is left as it is, and within each
// managed object the fields hangar does not model are kept, because Fly replaces the whole config
// on update.
func applyDesired(cfg *flyapi.MachineConfig, d controllers.DesiredMachine) {
	cfg.Image = d.Image
	cfg.Env = maps.Clone(d.Env)

	if cfg.Guest == nil {
		cfg.Guest = &flyapi.MachineGuest{}
	}
	cfg.Guest.CPUKind = string(d.Guest.CPUKind)
	cfg.Guest.CPUs = int(d.Guest.CPUs)
	cfg.Guest.MemoryMB = int(d.Guest.MemoryMB)
	cfg.Size = "" // a preset name would contradict the guest

	cfg.Metadata = metadataFor(cfg.Metadata, d.Metadata)
	cfg.Services = servicesFor(cfg.Services, d.Services)
	cfg.Checks = checksFor(cfg.Checks, d.Checks)
	cfg.Restart = restartFor(cfg.Restart, d.Restart)
	cfg.StopConfig = stopConfigFor(cfg.StopConfig, d.StopConfig)
}

// metadataFor is the desired metadata plus the keys Fly's own tools keep there (fly_*, fly-*),
// which are not hangar's to remove.
func metadataFor(current, desired map[string]string) map[string]string {
	out := maps.Clone(desired)
	for k, v := range current {
		if strings.HasPrefix(k, "fly_") || strings.HasPrefix(k, "fly-") {
			if _, set := out[k]; !set {
				out[k] = v
			}
		}
	}
	return out
}

// servicesFor builds the services, each starting from the current service of the same name, else
// on the same protocol and internal port (so options set by other tools, such as http_options,
// survive).
func servicesFor(current []flyapi.MachineService, desired []flyv1alpha1.MachineService) []flyapi.MachineService {
	out := make([]flyapi.MachineService, 0, len(desired))
	for _, want := range desired {
		svc := matchingService(current, want)
		svc.Name = want.Name
		svc.Protocol = string(protocolOf(want))
		svc.InternalPort = int(want.InternalPort)
		svc.Ports = portsFor(svc.Ports, want.Ports)
		svc.Autostart = want.Autostart
		svc.Autostop = flyapi.Autostop(want.Autostop)
		svc.MinMachinesRunning = intPtr(want.MinMachinesRunning)
		svc.Concurrency = concurrencyFor(svc.Concurrency, want.Concurrency)
		out = append(out, svc)
	}
	return out
}

func matchingService(current []flyapi.MachineService, want flyv1alpha1.MachineService) flyapi.MachineService {
	for _, cur := range current {
		if cur.Name != "" && cur.Name == want.Name {
			return cur
		}
	}
	for _, cur := range current {
		if cur.Name == "" && cur.InternalPort == int(want.InternalPort) && strings.EqualFold(cur.Protocol, string(protocolOf(want))) {
			return cur
		}
	}
	return flyapi.MachineService{}
}

func protocolOf(s flyv1alpha1.MachineService) flyv1alpha1.ServiceProtocol {
	if s.Protocol == "" {
		return flyv1alpha1.ServiceProtocolTCP
	}
	return s.Protocol
}

func portsFor(current []flyapi.MachinePort, desired []flyv1alpha1.ServicePort) []flyapi.MachinePort {
	out := make([]flyapi.MachinePort, 0, len(desired))
	for _, want := range desired {
		port := flyapi.MachinePort{}
		for _, cur := range current {
			if cur.Port == int(want.Port) {
				port = cur
				break
			}
		}
		port.Port = int(want.Port)
		port.Handlers = make([]string, 0, len(want.Handlers))
		for _, h := range want.Handlers {
			port.Handlers = append(port.Handlers, string(h))
		}
		port.ForceHTTPS = want.ForceHTTPS
		out = append(out, port)
	}
	return out
}

func concurrencyFor(current *flyapi.MachineConcurrency, want *flyv1alpha1.ServiceConcurrency) *flyapi.MachineConcurrency {
	if want == nil {
		return nil
	}
	c := &flyapi.MachineConcurrency{}
	if current != nil {
		*c = *current
	}
	c.Type = string(want.Type)
	c.SoftLimit, c.HardLimit = 0, 0
	if want.SoftLimit != nil {
		c.SoftLimit = int(*want.SoftLimit)
	}
	if want.HardLimit != nil {
		c.HardLimit = int(*want.HardLimit)
	}
	return c
}

func checksFor(current map[string]flyapi.MachineCheck, desired []flyv1alpha1.MachineCheck) map[string]flyapi.MachineCheck {
	if len(desired) == 0 {
		return nil
	}
	out := make(map[string]flyapi.MachineCheck, len(desired))
	for _, want := range desired {
		check := current[want.Name]
		check.Type = string(want.Type)
		check.Port = int(want.Port)
		check.Interval = durationOf(want.Interval)
		check.Timeout = durationOf(want.Timeout)
		check.GracePeriod = durationOf(want.GracePeriod)
		check.Kind = string(want.Kind)
		check.Method, check.Path, check.Protocol = want.Method, want.Path, want.Protocol
		check.TLSSkipVerify = want.TLSSkipVerify
		check.Headers = nil
		for _, h := range want.Headers {
			check.Headers = append(check.Headers, flyapi.CheckHeader{Name: h.Name, Values: h.Values})
		}
		out[want.Name] = check
	}
	return out
}

func restartFor(current *flyapi.MachineRestart, want *flyv1alpha1.RestartPolicy) *flyapi.MachineRestart {
	if want == nil {
		return nil
	}
	r := &flyapi.MachineRestart{}
	if current != nil {
		*r = *current
	}
	r.Policy = string(want.Policy)
	r.MaxRetries = intPtr(want.MaxRetries)
	return r
}

func stopConfigFor(current *flyapi.StopConfig, want *flyv1alpha1.StopConfig) *flyapi.StopConfig {
	if want == nil {
		return nil
	}
	s := &flyapi.StopConfig{}
	if current != nil {
		*s = *current
	}
	s.Signal = want.Signal
	s.Timeout = durationOf(want.Timeout)
	return s
}

func intPtr(v *int32) *int {
	if v == nil {
		return nil
	}
	n := int(*v)
	return &n
}

func durationOf(d *metav1.Duration) *flyapi.Duration {
	if d == nil {
		return nil
	}
	return flyapi.DurationOf(d.Duration)
}
