package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/testenv"
)

var (
	env     *testenv.Env
	counter atomic.Int64
)

func TestMain(m *testing.M) {
	os.Exit(testenv.RunTests(m, &env))
}

// admissionCase is one spec mutation and the apiserver's expected answer: accepted when wantErr is
// empty, else refused with a message containing wantErr.
type admissionCase[T client.Object] struct {
	name    string
	mutate  func(T)
	wantErr string
}

// testNamespace creates a fresh namespace so cases never collide.
func testNamespace(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("cel-%d", counter.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}

// checkAdmission asserts err matches the case: nil when accepted, an Invalid error whose message
// contains wantErr when refused.
func checkAdmission(t *testing.T, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && err != nil:
		t.Fatalf("refused, want accepted: %v", err)
	case wantErr != "" && err == nil:
		t.Fatalf("accepted, want refused with %q", wantErr)
	case wantErr != "" && !apierrors.IsInvalid(err):
		t.Fatalf("error is not Invalid (422): %v", err)
	case wantErr != "" && !strings.Contains(err.Error(), wantErr):
		t.Fatalf("message does not say what to fix:\n got: %v\nwant: %q", err, wantErr)
	}
}

// updateCase creates an object (after initial, when set), applies update, and expects the
// apiserver's answer to the update: accepted when wantErr is empty, else refused with wantErr.
type updateCase[T client.Object] struct {
	name    string
	initial func(T)
	update  func(T)
	wantErr string
}

// runUpdateCases runs each case on a fresh valid object from newObject.
func runUpdateCases[T client.Object](t *testing.T, newObject func() T, cases []updateCase[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			obj := newObject()
			if tc.initial != nil {
				tc.initial(obj)
			}
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatalf("creating the initial object: %v", err)
			}
			tc.update(obj)
			checkAdmission(t, env.Client.Update(ctx, obj), tc.wantErr)
		})
	}
}

func validUserApp(ns string) *v1.UserApp {
	return &v1.UserApp{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", counter.Add(1)), Namespace: ns},
		Spec: v1.UserAppSpec{
			AllocatePrivateIP: true,
			Secrets: []v1.AppSecret{{
				Name:         "DATABASE_URL",
				SecretKeyRef: v1.SecretKeySelector{Name: "creds", Key: "database-url"},
			}},
			Routing: &v1.AppRouting{Hosts: []string{"alice.example.com"}, Subdomain: "alice", Auth: v1.RoutingAuthToken},
		},
	}
}

func validUserMachine(ns string) *v1.UserMachine {
	return &v1.UserMachine{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("machine-%d", counter.Add(1)), Namespace: ns},
		Spec: v1.UserMachineSpec{
			AppRef: v1.AppReference{Name: "alice"},
			Region: "ord",
			Image:  "registry.fly.io/workspace:v1",
			Guest:  &v1.Guest{CPUKind: v1.CPUKindShared, CPUs: 2, MemoryMB: 1024},
			Env:    map[string]string{"LOG_LEVEL": "debug"},
			Services: []v1.MachineService{
				{Name: "management", InternalPort: 9090, Ports: []v1.ServicePort{{Port: 9090, Handlers: []v1.PortHandler{"http"}}}},
				{Name: "public", InternalPort: 8080, Ports: []v1.ServicePort{{Port: 80, Handlers: []v1.PortHandler{"http"}, ForceHTTPS: true}}},
			},
		},
	}
}

func TestUserAppAdmissionOnCreate(t *testing.T) {
	ns := testNamespace(t)
	cases := []admissionCase[*v1.UserApp]{
		{name: "valid full spec", mutate: func(*v1.UserApp) {}},
		{name: "empty spec gets defaults", mutate: func(a *v1.UserApp) { a.Spec = v1.UserAppSpec{} }},
		{name: "appName valid", mutate: func(a *v1.UserApp) { a.Spec.AppName = "alice-workspace-01" }},
		{name: "appName upper case", mutate: func(a *v1.UserApp) { a.Spec.AppName = "Alice" }, wantErr: "spec.appName must use only lowercase letters"},
		{name: "appName ends in dash", mutate: func(a *v1.UserApp) { a.Spec.AppName = "alice-" }, wantErr: "spec.appName must use only lowercase letters"},
		{name: "appName too long", mutate: func(a *v1.UserApp) { a.Spec.AppName = strings.Repeat("a", 64) }, wantErr: "spec.appName: Too long"},
		{name: "org slug valid", mutate: func(a *v1.UserApp) { a.Spec.Org = "personal" }},
		{name: "org slug invalid", mutate: func(a *v1.UserApp) { a.Spec.Org = "My_Org" }, wantErr: "spec.org must be a Fly organization slug"},
		{name: "network valid", mutate: func(a *v1.UserApp) { a.Spec.Network = "team-net-1" }},
		{name: "network starting with a digit", mutate: func(a *v1.UserApp) { a.Spec.Network = "1net" }, wantErr: "spec.network must start with a letter"},
		{name: "secret name lower case", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].Name = "database_url" }, wantErr: "secret name must be an upper-case environment variable name"},
		{name: "secret name reserved HANGAR_", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].Name = "HANGAR_REPLAY_KEY" }, wantErr: "reserved for hangar and Fly"},
		{name: "secret name reserved FLY_", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].Name = "FLY_APP_NAME" }, wantErr: "reserved for hangar and Fly"},
		{name: "secret names not unique", mutate: func(a *v1.UserApp) { a.Spec.Secrets = append(a.Spec.Secrets, a.Spec.Secrets[0]) }, wantErr: "Duplicate value"},
		{name: "secret key invalid", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Key = "a/b" }, wantErr: "secretKeyRef.key must be a valid Secret data key"},
		{name: "secret ref without name", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = "" }, wantErr: "secretKeyRef.name"},
		{name: "secret ref name upper case", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = "Creds" }, wantErr: "secretKeyRef.name must be the name of a Secret"},
		{name: "secret ref name in another namespace", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = "other/creds" }, wantErr: "secretKeyRef.name must be the name of a Secret"},
		{name: "secret ref name with an underscore", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = "db_creds" }, wantErr: "secretKeyRef.name must be the name of a Secret"},
		{name: "secret ref name starting with a dash", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = "-creds" }, wantErr: "secretKeyRef.name must be the name of a Secret"},
		{name: "secret ref name ending with a dot", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = "creds." }, wantErr: "secretKeyRef.name must be the name of a Secret"},
		{name: "secret ref name too long", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = strings.Repeat("a", 254) }, wantErr: "Too long"},
		{name: "secret ref name with dots", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = "alice.db-creds.v2" }},
		{name: "secret ref name of 253 characters", mutate: func(a *v1.UserApp) { a.Spec.Secrets[0].SecretKeyRef.Name = strings.Repeat("a", 253) }},
		{name: "host upper case", mutate: func(a *v1.UserApp) { a.Spec.Routing.Hosts = []string{"Alice.example.com"} }, wantErr: "each host must be a lower-case DNS name"},
		{name: "host with port", mutate: func(a *v1.UserApp) { a.Spec.Routing.Hosts = []string{"alice.example.com:8080"} }, wantErr: "each host must be a lower-case DNS name"},
		{name: "host with trailing dot", mutate: func(a *v1.UserApp) { a.Spec.Routing.Hosts = []string{"alice.example.com."} }, wantErr: "each host must be a lower-case DNS name"},
		{name: "host punycode", mutate: func(a *v1.UserApp) { a.Spec.Routing.Hosts = []string{"xn--bcher-kva.example"} }},
		{name: "host unicode", mutate: func(a *v1.UserApp) { a.Spec.Routing.Hosts = []string{"bücher.example"} }, wantErr: "use the xn-- form"},
		{name: "hosts not unique", mutate: func(a *v1.UserApp) { a.Spec.Routing.Hosts = []string{"a.example", "a.example"} }, wantErr: "Duplicate value"},
		{name: "subdomain with a dot", mutate: func(a *v1.UserApp) { a.Spec.Routing.Subdomain = "a.b" }, wantErr: "spec.routing.subdomain must be one lower-case DNS label"},
		{name: "auth unknown", mutate: func(a *v1.UserApp) { a.Spec.Routing.Auth = "Basic" }, wantErr: `spec.routing.auth: Unsupported value: "Basic"`},
		{name: "deletionPolicy Orphan", mutate: func(a *v1.UserApp) { a.Spec.DeletionPolicy = v1.DeletionPolicyOrphan }},
		{name: "deletionPolicy unknown", mutate: func(a *v1.UserApp) { a.Spec.DeletionPolicy = "Keep" }, wantErr: `spec.deletionPolicy: Unsupported value: "Keep"`},
		{name: "ObserveOnly with appName", mutate: func(a *v1.UserApp) {
			a.Spec.ManagementPolicy, a.Spec.AppName = v1.ManagementPolicyObserveOnly, "existing-app"
		}},
		{name: "ObserveOnly without appName", mutate: func(a *v1.UserApp) { a.Spec.ManagementPolicy, a.Spec.AppName = v1.ManagementPolicyObserveOnly, "" },
			wantErr: "spec.appName is required to create a UserApp with managementPolicy ObserveOnly"},
		{name: "managementPolicy unknown", mutate: func(a *v1.UserApp) { a.Spec.ManagementPolicy = "ReadOnly" }, wantErr: `spec.managementPolicy: Unsupported value: "ReadOnly"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := validUserApp(ns)
			tc.mutate(app)
			checkAdmission(t, env.Client.Create(context.Background(), app), tc.wantErr)
		})
	}
}

func TestUserAppDefaults(t *testing.T) {
	app := &v1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: testNamespace(t)},
		Spec: v1.UserAppSpec{Routing: &v1.AppRouting{Subdomain: "x"}}}
	if err := env.Client.Create(context.Background(), app); err != nil {
		t.Fatal(err)
	}
	if app.Spec.DeletionPolicy != v1.DeletionPolicyDelete || app.Spec.Routing.Auth != v1.RoutingAuthPublic {
		t.Fatalf("defaults not applied: deletionPolicy=%q auth=%q", app.Spec.DeletionPolicy, app.Spec.Routing.Auth)
	}
}

func TestUserAppAdmissionOnUpdate(t *testing.T) {
	ns := testNamespace(t)
	cases := []updateCase[*v1.UserApp]{
		{name: "routing and secrets may change", update: func(a *v1.UserApp) {
			a.Spec.Routing.Hosts = []string{"new.example.com"}
			a.Spec.Secrets = nil
			a.Spec.AllocatePrivateIP = false
		}},
		{name: "appName change", initial: func(a *v1.UserApp) { a.Spec.AppName = "alice-1" },
			update: func(a *v1.UserApp) { a.Spec.AppName = "alice-2" }, wantErr: "spec.appName is immutable"},
		{name: "derived name, ObserveOnly later", update: func(a *v1.UserApp) { a.Spec.ManagementPolicy = v1.ManagementPolicyObserveOnly }},
		{name: "appName added later", update: func(a *v1.UserApp) { a.Spec.AppName = "alice-1" },
			wantErr: "spec.appName can only be chosen when the UserApp is created"},
		{name: "appName removed", initial: func(a *v1.UserApp) { a.Spec.AppName = "alice-1" },
			update: func(a *v1.UserApp) { a.Spec.AppName = "" }, wantErr: "spec.appName can only be chosen when the UserApp is created"},
		{name: "appName unchanged", initial: func(a *v1.UserApp) { a.Spec.AppName = "alice-1" },
			update: func(a *v1.UserApp) { a.Spec.AllocatePrivateIP = false }},
		{name: "network change", initial: func(a *v1.UserApp) { a.Spec.Network = "net-a" },
			update: func(a *v1.UserApp) { a.Spec.Network = "net-b" }, wantErr: "spec.network is immutable"},
		{name: "network added later", update: func(a *v1.UserApp) { a.Spec.Network = "net-a" },
			wantErr: "spec.network can only be chosen when the UserApp is created"},
		{name: "org change", initial: func(a *v1.UserApp) { a.Spec.Org = "personal" },
			update: func(a *v1.UserApp) { a.Spec.Org = "acme" }, wantErr: "spec.org is immutable"},
		{name: "org added later", update: func(a *v1.UserApp) { a.Spec.Org = "acme" },
			wantErr: "spec.org can only be chosen when the UserApp is created"},
	}
	runUpdateCases(t, func() *v1.UserApp { return validUserApp(ns) }, cases)
}

func TestUserMachineAdmissionOnCreate(t *testing.T) {
	ns := testNamespace(t)
	cases := []admissionCase[*v1.UserMachine]{
		{name: "valid full spec", mutate: func(*v1.UserMachine) {}},
		{name: "minimal spec", mutate: func(m *v1.UserMachine) {
			m.Spec = v1.UserMachineSpec{AppRef: v1.AppReference{Name: "a"}, Image: "nginx"}
		}},
		{name: "image missing", mutate: func(m *v1.UserMachine) { m.Spec.Image = "" }, wantErr: "spec.image"},
		{name: "image with a space", mutate: func(m *v1.UserMachine) { m.Spec.Image = "nginx latest" }, wantErr: "spec.image must be an image reference without spaces"},
		{name: "appRef missing", mutate: func(m *v1.UserMachine) { m.Spec.AppRef.Name = "" }, wantErr: "spec.appRef.name"},
		{name: "appRef upper case", mutate: func(m *v1.UserMachine) { m.Spec.AppRef.Name = "Alice" }, wantErr: "spec.appRef.name must be the name of a UserApp"},
		{name: "appRef in another namespace", mutate: func(m *v1.UserMachine) { m.Spec.AppRef.Name = "bob/alice" }, wantErr: "spec.appRef.name must be the name of a UserApp"},
		{name: "appRef with a space", mutate: func(m *v1.UserMachine) { m.Spec.AppRef.Name = "alice " }, wantErr: "spec.appRef.name must be the name of a UserApp"},
		{name: "appRef ending with a dash", mutate: func(m *v1.UserMachine) { m.Spec.AppRef.Name = "alice-" }, wantErr: "spec.appRef.name must be the name of a UserApp"},
		{name: "appRef too long", mutate: func(m *v1.UserMachine) { m.Spec.AppRef.Name = strings.Repeat("a", 254) }, wantErr: "Too long"},
		{name: "appRef with dots", mutate: func(m *v1.UserMachine) { m.Spec.AppRef.Name = "alice.v2" }},
		{name: "appRef of 253 characters", mutate: func(m *v1.UserMachine) { m.Spec.AppRef.Name = strings.Repeat("a", 253) }},
		{name: "region upper case", mutate: func(m *v1.UserMachine) { m.Spec.Region = "ORD" }, wantErr: "spec.region must be a three-letter lower-case Fly region code"},
		{name: "region two letters", mutate: func(m *v1.UserMachine) { m.Spec.Region = "or" }, wantErr: "spec.region must be a three-letter lower-case Fly region code"},
		{name: "memory not a multiple of 256", mutate: func(m *v1.UserMachine) { m.Spec.Guest.MemoryMB = 1000 }, wantErr: "spec.guest.memoryMB must be a multiple of 256"},
		{name: "shared memory above 2048 per CPU", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{CPUKind: "shared", CPUs: 1, MemoryMB: 4096} }, wantErr: "between 256 and 2048 MB per CPU for shared CPUs"},
		{name: "shared memory at 2048 per CPU", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{CPUKind: "shared", CPUs: 2, MemoryMB: 4096} }},
		{name: "shared memory below 256 per CPU", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{CPUKind: "shared", CPUs: 4, MemoryMB: 768} }, wantErr: "between 256 and 2048 MB per CPU for shared CPUs"},
		{name: "performance memory below 2048 per CPU", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{CPUKind: "performance", CPUs: 1, MemoryMB: 1024} }, wantErr: "between 2048 and 8192 MB per CPU for performance CPUs"},
		{name: "performance memory in bounds", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{CPUKind: "performance", CPUs: 2, MemoryMB: 8192} }},
		{name: "shared cpus 3", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{CPUKind: "shared", CPUs: 3, MemoryMB: 768} }, wantErr: "spec.guest.cpus must be 1, 2, 4, 6 or 8 for shared CPUs"},
		{name: "performance cpus 16", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{CPUKind: "performance", CPUs: 16, MemoryMB: 32768} }},
		{name: "performance cpus 12 odd", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{CPUKind: "performance", CPUs: 3, MemoryMB: 8192} }, wantErr: "spec.guest.cpus must be 1, 2, 4, 6, 8, 10, 12, 14 or 16"},
		{name: "cpu kind unknown", mutate: func(m *v1.UserMachine) { m.Spec.Guest.CPUKind = "gpu" }, wantErr: `spec.guest.cpuKind: Unsupported value: "gpu"`},
		{name: "guest defaults from memory only", mutate: func(m *v1.UserMachine) { m.Spec.Guest = &v1.Guest{MemoryMB: 512} }},
		{name: "env key invalid", mutate: func(m *v1.UserMachine) { m.Spec.Env = map[string]string{"1BAD": "x"} }, wantErr: "spec.env keys must be environment variable names"},
		{name: "env key reserved FLY_", mutate: func(m *v1.UserMachine) { m.Spec.Env = map[string]string{"FLY_MACHINE_ID": "x"} }, wantErr: "spec.env keys starting with HANGAR_ or FLY_ (in any letter case) are reserved for hangar and Fly"},
		{name: "env key reserved HANGAR_", mutate: func(m *v1.UserMachine) {
			m.Spec.Env = map[string]string{"LOG_LEVEL": "debug", "HANGAR_REPLAY_KEY": "00"}
		}, wantErr: "spec.env keys starting with HANGAR_ or FLY_ (in any letter case) are reserved for hangar and Fly"},
		{name: "env key reserved fly_ in lower case", mutate: func(m *v1.UserMachine) { m.Spec.Env = map[string]string{"fly_region": "ord"} }, wantErr: "reserved for hangar and Fly"},
		{name: "env key reserved Hangar_ in mixed case", mutate: func(m *v1.UserMachine) { m.Spec.Env = map[string]string{"Hangar_Management_Token": "x"} }, wantErr: "reserved for hangar and Fly"},
		{name: "env key FLY alone", mutate: func(m *v1.UserMachine) { m.Spec.Env = map[string]string{"FLY": "x"} }},
		{name: "env key starting with FLYING", mutate: func(m *v1.UserMachine) { m.Spec.Env = map[string]string{"FLYING_START": "x"} }},
		{name: "env key with FLY_ inside", mutate: func(m *v1.UserMachine) { m.Spec.Env = map[string]string{"MY_FLY_APP": "x", "X_HANGAR_Y": "y"} }},
		{name: "metadata key reserved hangar.dev/", mutate: func(m *v1.UserMachine) { m.Spec.Metadata = map[string]string{"hangar.dev/uid": "x"} }, wantErr: "spec.metadata keys under hangar.dev/, fly_ and fly- are reserved"},
		{name: "metadata key reserved fly_", mutate: func(m *v1.UserMachine) { m.Spec.Metadata = map[string]string{"fly_process_group": "app"} }, wantErr: "spec.metadata keys under hangar.dev/, fly_ and fly- are reserved"},
		{name: "metadata key allowed", mutate: func(m *v1.UserMachine) { m.Spec.Metadata = map[string]string{"team": "a"} }},
		{name: "two services claim one port", mutate: func(m *v1.UserMachine) { m.Spec.Services[1].Ports[0].Port = 9090 }, wantErr: "two services claim the same public port"},
		{name: "service names not unique", mutate: func(m *v1.UserMachine) { m.Spec.Services[1].Name = "management" }, wantErr: "Duplicate value"},
		{name: "service name invalid", mutate: func(m *v1.UserMachine) { m.Spec.Services[1].Name = "Public" }, wantErr: "service name must be a lower-case DNS label"},
		{name: "internal port out of range", mutate: func(m *v1.UserMachine) { m.Spec.Services[0].InternalPort = 70000 }, wantErr: "spec.services[0].internalPort"},
		{name: "public port zero", mutate: func(m *v1.UserMachine) { m.Spec.Services[0].Ports[0].Port = 0 }, wantErr: "spec.services[0].ports[0].port"},
		{name: "udp service with handlers", mutate: func(m *v1.UserMachine) { m.Spec.Services[0].Protocol = "udp" }, wantErr: "udp services cannot have port handlers"},
		{name: "udp service raw", mutate: func(m *v1.UserMachine) {
			m.Spec.Services = append(m.Spec.Services, v1.MachineService{Name: "dns", Protocol: "udp", InternalPort: 53, Ports: []v1.ServicePort{{Port: 53}}})
		}},
		{name: "forceHTTPS without http handler", mutate: func(m *v1.UserMachine) { m.Spec.Services[1].Ports[0].Handlers = []v1.PortHandler{"tls"} }, wantErr: "forceHTTPS needs the http handler"},
		{name: "handler unknown", mutate: func(m *v1.UserMachine) { m.Spec.Services[1].Ports[0].Handlers = []v1.PortHandler{"h3"} }, wantErr: "Unsupported value: \"h3\""},
		{name: "autostop unknown", mutate: func(m *v1.UserMachine) { m.Spec.Services[0].Autostop = "pause" }, wantErr: "Unsupported value: \"pause\""},
		{name: "concurrency soft above hard", mutate: func(m *v1.UserMachine) {
			m.Spec.Services[0].Concurrency = &v1.ServiceConcurrency{SoftLimit: ptr.To[int32](30), HardLimit: ptr.To[int32](20)}
		}, wantErr: "concurrency.softLimit must not exceed concurrency.hardLimit"},
		{name: "concurrency soft equal hard", mutate: func(m *v1.UserMachine) {
			m.Spec.Services[0].Concurrency = &v1.ServiceConcurrency{Type: "requests", SoftLimit: ptr.To[int32](20), HardLimit: ptr.To[int32](20)}
		}},
		{name: "minMachinesRunning with autostop off", mutate: func(m *v1.UserMachine) {
			m.Spec.Services[0].Autostop = v1.AutostopOff
			m.Spec.Services[0].MinMachinesRunning = ptr.To[int32](1)
		}, wantErr: "minMachinesRunning only matters when autostop is on"},
		{name: "http check valid", mutate: func(m *v1.UserMachine) {
			m.Spec.Checks = []v1.MachineCheck{{Name: "alive", Type: "http", Port: 8080, Path: "/healthz", Method: "GET",
				Interval: &metav1.Duration{Duration: 15e9}, Timeout: &metav1.Duration{Duration: 2e9}}}
		}},
		{name: "tcp check with a path", mutate: func(m *v1.UserMachine) {
			m.Spec.Checks = []v1.MachineCheck{{Name: "alive", Type: "tcp", Port: 8080, Path: "/healthz"}}
		}, wantErr: "path, method, protocol and headers only apply to http checks"},
		{name: "check path without slash", mutate: func(m *v1.UserMachine) {
			m.Spec.Checks = []v1.MachineCheck{{Name: "alive", Type: "http", Port: 8080, Path: "healthz"}}
		}, wantErr: "check path must start with /"},
		{name: "check interval below 1s", mutate: func(m *v1.UserMachine) {
			m.Spec.Checks = []v1.MachineCheck{{Name: "alive", Type: "tcp", Port: 8080, Interval: &metav1.Duration{Duration: 5e8}}}
		}, wantErr: "check interval must be at least 1s"},
		{name: "restart maxRetries with always", mutate: func(m *v1.UserMachine) {
			m.Spec.Restart = &v1.RestartPolicy{Policy: "always", MaxRetries: ptr.To[int32](3)}
		}, wantErr: "restart.maxRetries only applies to the on-failure policy"},
		{name: "restart on-failure with maxRetries", mutate: func(m *v1.UserMachine) {
			m.Spec.Restart = &v1.RestartPolicy{Policy: "on-failure", MaxRetries: ptr.To[int32](3)}
		}},
		{name: "stop timeout too long", mutate: func(m *v1.UserMachine) {
			m.Spec.StopConfig = &v1.StopConfig{Signal: "SIGTERM", Timeout: &metav1.Duration{Duration: 48 * 3600e9}}
		}, wantErr: "stopConfig.timeout must be between 0s and 24h"},
		{name: "stop signal unknown", mutate: func(m *v1.UserMachine) { m.Spec.StopConfig = &v1.StopConfig{Signal: "SIGSTOP"} }, wantErr: `Unsupported value: "SIGSTOP"`},
		{name: "powerState Suspended", mutate: func(m *v1.UserMachine) { m.Spec.PowerState = v1.PowerStateSuspended }},
		{name: "powerState unknown", mutate: func(m *v1.UserMachine) { m.Spec.PowerState = "Running" }, wantErr: `spec.powerState: Unsupported value: "Running"`},
		{name: "machine host invalid", mutate: func(m *v1.UserMachine) { m.Spec.Routing = &v1.MachineRouting{Hosts: []string{"*.example.com"}} }, wantErr: "each host must be a lower-case DNS name"},
		{name: "machine host valid", mutate: func(m *v1.UserMachine) {
			m.Spec.Routing = &v1.MachineRouting{Hosts: []string{"preview-1.alice.example.com"}}
		}},
		{name: "deletionPolicy unknown", mutate: func(m *v1.UserMachine) { m.Spec.DeletionPolicy = "Keep" }, wantErr: `spec.deletionPolicy: Unsupported value: "Keep"`},
		{name: "ObserveOnly with machineID", mutate: func(m *v1.UserMachine) {
			m.Spec.ManagementPolicy, m.Spec.MachineID = v1.ManagementPolicyObserveOnly, "3d8d9e1bce5189"
		}},
		{name: "ObserveOnly without machineID", mutate: func(m *v1.UserMachine) { m.Spec.ManagementPolicy = v1.ManagementPolicyObserveOnly },
			wantErr: "spec.machineID is required to create a UserMachine with managementPolicy ObserveOnly"},
		{name: "machineID not hexadecimal", mutate: func(m *v1.UserMachine) { m.Spec.MachineID = "machine-1" }, wantErr: "spec.machineID must be a Fly machine ID"},
		{name: "idle stop", mutate: func(m *v1.UserMachine) {
			m.Spec.PowerState = v1.PowerStateAuto
			m.Spec.Idle = &v1.IdlePolicy{Timeout: metav1.Duration{Duration: 15 * time.Minute}}
		}},
		{name: "idle with powerState defaulted", mutate: func(m *v1.UserMachine) {
			m.Spec.PowerState = ""
			m.Spec.Idle = &v1.IdlePolicy{Timeout: metav1.Duration{Duration: time.Minute}, Action: v1.IdleActionSuspend}
		}},
		{name: "idle timeout too short", mutate: func(m *v1.UserMachine) {
			m.Spec.PowerState = v1.PowerStateAuto
			m.Spec.Idle = &v1.IdlePolicy{Timeout: metav1.Duration{Duration: 30 * time.Second}}
		}, wantErr: "spec.idle.timeout must be at least 1m"},
		{name: "idle with a kept power state", mutate: func(m *v1.UserMachine) {
			m.Spec.PowerState = v1.PowerStateStarted
			m.Spec.Idle = &v1.IdlePolicy{Timeout: metav1.Duration{Duration: 15 * time.Minute}}
		}, wantErr: "spec.idle needs powerState Auto"},
		{name: "idle action unknown", mutate: func(m *v1.UserMachine) {
			m.Spec.PowerState = v1.PowerStateAuto
			m.Spec.Idle = &v1.IdlePolicy{Timeout: metav1.Duration{Duration: 15 * time.Minute}, Action: "Destroy"}
		}, wantErr: `spec.idle.action: Unsupported value: "Destroy"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := validUserMachine(ns)
			tc.mutate(m)
			checkAdmission(t, env.Client.Create(context.Background(), m), tc.wantErr)
		})
	}
}

func TestUserMachineDefaults(t *testing.T) {
	m := validUserMachine(testNamespace(t))
	m.Spec.Guest = &v1.Guest{MemoryMB: 512}
	m.Spec.Services = []v1.MachineService{{Name: "web", InternalPort: 8080, Ports: []v1.ServicePort{{Port: 80}}}}
	if err := env.Client.Create(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	svc := m.Spec.Services[0]
	if m.Spec.PowerState != v1.PowerStateAuto || m.Spec.Guest.CPUKind != v1.CPUKindShared || m.Spec.Guest.CPUs != 1 ||
		svc.Protocol != v1.ServiceProtocolTCP || svc.Autostart == nil || !*svc.Autostart || svc.Autostop != v1.AutostopStop {
		t.Fatalf("defaults not applied: %+v", m.Spec)
	}
}

func TestUserMachineAdmissionOnUpdate(t *testing.T) {
	ns := testNamespace(t)
	cases := []updateCase[*v1.UserMachine]{
		{name: "image, env and power state may change", update: func(m *v1.UserMachine) {
			m.Spec.Image = "registry.fly.io/workspace:v2"
			m.Spec.Env["NEW"] = "1"
			m.Spec.PowerState = v1.PowerStateStopped
		}},
		{name: "appRef change", update: func(m *v1.UserMachine) { m.Spec.AppRef.Name = "bob" }, wantErr: "spec.appRef.name is immutable"},
		{name: "region change", update: func(m *v1.UserMachine) { m.Spec.Region = "ams" }, wantErr: "spec.region is immutable"},
		{name: "region added later", initial: func(m *v1.UserMachine) { m.Spec.Region = "" },
			update: func(m *v1.UserMachine) { m.Spec.Region = "ams" }, wantErr: "spec.region can only be chosen when the UserMachine is created"},
		{name: "region removed", update: func(m *v1.UserMachine) { m.Spec.Region = "" },
			wantErr: "spec.region can only be chosen when the UserMachine is created"},
		{name: "machineID change", initial: func(m *v1.UserMachine) { m.Spec.MachineID = "3d8d9e1bce5189" },
			update: func(m *v1.UserMachine) { m.Spec.MachineID = "4d8d9e1bce5189" }, wantErr: "spec.machineID is immutable"},
		{name: "machineID added later", update: func(m *v1.UserMachine) { m.Spec.MachineID = "4d8d9e1bce5189" },
			wantErr: "spec.machineID can only be set when the UserMachine is created"},
		{name: "policy to ObserveOnly later", update: func(m *v1.UserMachine) { m.Spec.ManagementPolicy = v1.ManagementPolicyObserveOnly }},
	}
	runUpdateCases(t, func() *v1.UserMachine { return validUserMachine(ns) }, cases)
}

func validUserAppPool(ns string) *v1.UserAppPool {
	return &v1.UserAppPool{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pool-%d", counter.Add(1)), Namespace: ns},
		Spec: v1.UserAppPoolSpec{
			Replicas: 3,
			Template: v1.UserAppTemplate{
				Org:               "personal",
				AllocatePrivateIP: true,
				Machines: []v1.MachineTemplate{{Name: "workspace", Spec: v1.MachineTemplateSpec{
					Region: "ord", Image: "registry.fly.io/workspace:v1",
					Guest: &v1.Guest{CPUKind: v1.CPUKindShared, CPUs: 1, MemoryMB: 512},
					Env:   map[string]string{"LOG_LEVEL": "info"},
				}}},
			},
		},
	}
}

func validUserAppClaim(ns string) *v1.UserAppClaim {
	return &v1.UserAppClaim{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("claim-%d", counter.Add(1)), Namespace: ns},
		Spec: v1.UserAppClaimSpec{
			PoolRef: v1.PoolReference{Name: "workspaces"},
			Routing: &v1.AppRouting{Hosts: []string{"carol.example.com"}, Auth: v1.RoutingAuthToken},
			Secrets: []v1.AppSecret{{Name: "DATABASE_URL", SecretKeyRef: v1.SecretKeySelector{Name: "carol-creds", Key: "url"}}},
		},
	}
}

func TestUserAppPoolAdmission(t *testing.T) {
	ns := testNamespace(t)
	tpl := func(p *v1.UserAppPool) *v1.MachineTemplateSpec { return &p.Spec.Template.Machines[0].Spec }
	cases := []admissionCase[*v1.UserAppPool]{
		{name: "valid full spec", mutate: func(*v1.UserAppPool) {}},
		{name: "zero replicas", mutate: func(p *v1.UserAppPool) { p.Spec.Replicas = 0 }},
		{name: "negative replicas", mutate: func(p *v1.UserAppPool) { p.Spec.Replicas = -1 }, wantErr: "spec.replicas: Invalid value: -1"},
		{name: "warmState Suspended", mutate: func(p *v1.UserAppPool) { p.Spec.WarmState = v1.WarmStateSuspended }},
		{name: "warmState Started", mutate: func(p *v1.UserAppPool) { p.Spec.WarmState = "Started" }, wantErr: `spec.warmState: Unsupported value: "Started"`},
		{name: "no machines", mutate: func(p *v1.UserAppPool) { p.Spec.Template.Machines = nil }, wantErr: "spec.template.machines"},
		{name: "machine name with a dot", mutate: func(p *v1.UserAppPool) { p.Spec.Template.Machines[0].Name = "a.b" },
			wantErr: "spec.template.machines[].name must be one lower-case DNS label"},
		{name: "machine names not unique", mutate: func(p *v1.UserAppPool) {
			p.Spec.Template.Machines = append(p.Spec.Template.Machines, p.Spec.Template.Machines[0])
		}, wantErr: "Duplicate value"},
		{name: "org slug invalid", mutate: func(p *v1.UserAppPool) { p.Spec.Template.Org = "My_Org" }, wantErr: "spec.template.org must be a Fly organization slug"},
		{name: "image missing", mutate: func(p *v1.UserAppPool) { tpl(p).Image = "" }, wantErr: "image"},
		{name: "image with a space", mutate: func(p *v1.UserAppPool) { tpl(p).Image = "a b" }, wantErr: "image must be an image reference without spaces"},
		{name: "region not a code", mutate: func(p *v1.UserAppPool) { tpl(p).Region = "Ord" }, wantErr: "region must be a three-letter lower-case Fly region code"},
		{name: "env reserved", mutate: func(p *v1.UserAppPool) { tpl(p).Env = map[string]string{"fly_region": "x"} }, wantErr: "reserved for hangar and Fly"},
		{name: "metadata reserved", mutate: func(p *v1.UserAppPool) { tpl(p).Metadata = map[string]string{"hangar.dev/uid": "x"} },
			wantErr: "metadata keys under hangar.dev/, fly_ and fly- are reserved"},
		{name: "guest memory not a multiple of 256", mutate: func(p *v1.UserAppPool) { tpl(p).Guest.MemoryMB = 300 },
			wantErr: "spec.guest.memoryMB must be a multiple of 256"},
		{name: "two services on one port", mutate: func(p *v1.UserAppPool) {
			port := []v1.ServicePort{{Port: 80, Handlers: []v1.PortHandler{"http"}}}
			tpl(p).Services = []v1.MachineService{{Name: "a", InternalPort: 8080, Ports: port}, {Name: "b", InternalPort: 8081, Ports: port}}
		}, wantErr: "two services claim the same public port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := validUserAppPool(ns)
			tc.mutate(pool)
			checkAdmission(t, env.Client.Create(context.Background(), pool), tc.wantErr)
		})
	}
}

func TestUserAppPoolDefaultsAndUpdates(t *testing.T) {
	ns := testNamespace(t)
	pool := &v1.UserAppPool{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: ns},
		Spec: v1.UserAppPoolSpec{Template: validUserAppPool(ns).Spec.Template}}
	if err := env.Client.Create(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	if pool.Spec.WarmState != v1.WarmStateStopped {
		t.Fatalf("default not applied: warmState=%q", pool.Spec.WarmState)
	}
	runUpdateCases(t, func() *v1.UserAppPool { return validUserAppPool(ns) }, []updateCase[*v1.UserAppPool]{
		{name: "template, size and warm state may change", update: func(p *v1.UserAppPool) {
			p.Spec.Replicas = 10
			p.Spec.WarmState = v1.WarmStateSuspended
			p.Spec.Template.Machines[0].Spec.Image = "registry.fly.io/workspace:v2"
			p.Spec.Template.Machines[0].Spec.Region = "ams"
		}},
	})
}

func TestUserAppClaimAdmission(t *testing.T) {
	ns := testNamespace(t)
	cases := []admissionCase[*v1.UserAppClaim]{
		{name: "valid full spec", mutate: func(*v1.UserAppClaim) {}},
		{name: "pool only", mutate: func(c *v1.UserAppClaim) { c.Spec = v1.UserAppClaimSpec{PoolRef: c.Spec.PoolRef} }},
		{name: "no pool", mutate: func(c *v1.UserAppClaim) { c.Spec.PoolRef.Name = "" }, wantErr: "spec.poolRef.name"},
		{name: "pool in another namespace", mutate: func(c *v1.UserAppClaim) { c.Spec.PoolRef.Name = "other/workspaces" },
			wantErr: "spec.poolRef.name must be the name of a UserAppPool"},
		{name: "host upper case", mutate: func(c *v1.UserAppClaim) { c.Spec.Routing.Hosts = []string{"Carol.example.com"} },
			wantErr: "each host must be a lower-case DNS name"},
		{name: "secret name reserved", mutate: func(c *v1.UserAppClaim) { c.Spec.Secrets[0].Name = "HANGAR_MANAGEMENT_TOKEN" },
			wantErr: "reserved for hangar and Fly"},
		{name: "secret names not unique", mutate: func(c *v1.UserAppClaim) { c.Spec.Secrets = append(c.Spec.Secrets, c.Spec.Secrets[0]) },
			wantErr: "Duplicate value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			claim := validUserAppClaim(ns)
			tc.mutate(claim)
			checkAdmission(t, env.Client.Create(context.Background(), claim), tc.wantErr)
		})
	}
	runUpdateCases(t, func() *v1.UserAppClaim { return validUserAppClaim(ns) }, []updateCase[*v1.UserAppClaim]{
		{name: "routing and secrets may change", update: func(c *v1.UserAppClaim) {
			c.Spec.Routing.Hosts = []string{"carol.example.org"}
			c.Spec.Secrets = nil
		}},
		{name: "poolRef change", update: func(c *v1.UserAppClaim) { c.Spec.PoolRef.Name = "other" }, wantErr: "spec.poolRef.name is immutable"},
	})
}
