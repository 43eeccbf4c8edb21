package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/keys"
)

func TestAppAndMachineBecomeReady(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "alice-creds", Labels: appSecretLabels()}, StringData: map[string]string{"api-key": "sk-alice"}})
	app := newApp("alice")
	app.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "API_KEY", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "alice-creds", Key: "api-key"}}}
	h.create(app)
	um := newMachine("alice-ws", "alice")
	um.Spec.Metadata = map[string]string{"team": "blue"}
	h.create(um)

	h.ready(app)
	h.ready(um)
	h.eventually("machine observed started", func() string {
		h.get(um)
		if um.Status.State != "started" {
			return "state " + um.Status.State
		}
		return ""
	})
	h.get(app)

	// The Fly app: named by derivation, on its own network, with a Flycast address there.
	wantName := flyv1alpha1.DefaultFlyAppName("hangar-", h.ns, "alice")
	if app.Status.AppName != wantName || app.Status.Network != flyv1alpha1.IsolatedNetworkName(wantName) {
		t.Fatalf("app status = %+v, want name %s on its own network", app.Status, wantName)
	}
	flyApp, ok := h.sim.App(wantName)
	if !ok || flyApp.Org != testOrg || flyApp.Network != app.Status.Network || flyApp.ID != app.Status.AppID {
		t.Fatalf("emulator app = %+v (found %v), status %+v", flyApp, ok, app.Status)
	}
	if !slices.Equal(flyApp.FlycastNets, []string{app.Status.Network}) || app.Status.PrivateIP == "" {
		t.Fatalf("Flycast address not on the app's network: %v (status %q)", flyApp.FlycastNets, app.Status.PrivateIP)
	}

	// Secrets: hangar's two keys plus the spec's, at the version recorded.
	secrets, version := h.sim.Secrets(wantName)
	if int64(version) != app.Status.SecretsVersion || secrets["API_KEY"] != "sk-alice" ||
		secrets[keys.ManagementTokenSecret] != h.root.ManagementToken(keys.App{FlyApp: wantName, Owner: string(app.UID), Generation: 1}) ||
		secrets[keys.ReplayKeySecret] != keys.EncodeReplayKey(h.root.ReplayKey(keys.App{FlyApp: wantName, Owner: string(app.UID), Generation: 1})) {
		t.Fatalf("Fly secrets version %d (status %d) = %v", version, app.Status.SecretsVersion, keysOf(secrets))
	}

	// The connection Secret for the coordinator, owned by the UserApp.
	var conn corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: app.Status.ConnectionSecretName}, &conn); err != nil {
		t.Fatal(err)
	}
	if string(conn.Data[controllers.ConnectionAppName]) != wantName || string(conn.Data[controllers.ConnectionPrivateIP]) != app.Status.PrivateIP ||
		string(conn.Data[controllers.ConnectionManagementToken]) != h.root.ManagementToken(keys.App{FlyApp: wantName, Owner: string(app.UID), Generation: 1}) ||
		len(conn.OwnerReferences) != 1 || conn.OwnerReferences[0].UID != app.UID {
		t.Fatalf("connection Secret wrong: keys %v, owners %v", keysOfBytes(conn.Data), conn.OwnerReferences)
	}

	// The machine: what the spec says, with the blueprint's services and hangar's metadata.
	m, ok := h.sim.Machine(wantName, um.Status.MachineID)
	if !ok || m.Region != "ams" || m.Name != "alice-ws" || um.Status.State != m.State || um.Status.Version != m.Version {
		t.Fatalf("emulator machine %+v (found %v) vs status %+v", m, ok, um.Status)
	}
	cfg := machineConfig(t, m)
	wantConfig := map[string]any{
		"image": "registry.fly.io/workspace:v1",
		"env":   map[string]any{"OWNER": "alice-ws"},
		"guest": map[string]any{"cpu_kind": "shared", "cpus": 1.0, "memory_mb": 512.0},
	}
	for k, want := range wantConfig {
		if fmt.Sprint(cfg[k]) != fmt.Sprint(want) {
			t.Errorf("config %s = %v, want %v", k, cfg[k], want)
		}
	}
	// The blueprint's two services; Fly answers autostop "stop" as true (docs/fly-api.md §6), and
	// so does the emulator.
	type port struct {
		Port     int      `json:"port"`
		Handlers []string `json:"handlers"`
	}
	type service struct {
		InternalPort int    `json:"internal_port"`
		Autostart    *bool  `json:"autostart"`
		Autostop     any    `json:"autostop"`
		Ports        []port `json:"ports"`
	}
	var services []service
	if err := json.Unmarshal(m.Config, &struct {
		Services *[]service `json:"services"`
	}{&services}); err != nil {
		t.Fatal(err)
	}
	wantServices := map[int][]port{
		9090: {{Port: 9090, Handlers: []string{"http"}}},
		8080: {{Port: 80, Handlers: []string{"http"}}, {Port: 443, Handlers: []string{"tls", "http"}}},
	}
	if len(services) != len(wantServices) {
		t.Errorf("services = %+v, want internal ports 9090 and 8080", services)
	}
	for _, svc := range services {
		want, known := wantServices[svc.InternalPort]
		if !known || !reflect.DeepEqual(svc.Ports, want) || svc.Autostart == nil || !*svc.Autostart || svc.Autostop != true {
			t.Errorf("service on internal port %d = %+v, want ports %+v, autostart and autostop true", svc.InternalPort, svc, want)
		}
	}
	if m.Metadata["team"] != "blue" || m.Metadata[controllers.MetadataUID] != string(um.UID) ||
		m.Metadata[controllers.MetadataConfigHash] != um.Status.ConfigHash || m.Metadata[controllers.MetadataNamespace] != h.ns {
		t.Errorf("machine metadata = %v", m.Metadata)
	}
	if m.SecretsVersion != uint64(app.Status.SecretsVersion) {
		t.Errorf("machine booted with secrets version %d, want %d", m.SecretsVersion, app.Status.SecretsVersion)
	}

	// kubectl describe tells the story: named conditions and Events.
	for _, c := range []string{flyv1alpha1.AppCreatedCondition, flyv1alpha1.SecretsSyncedCondition, flyv1alpha1.PrivateIPReadyCondition, flyv1alpha1.ConnectionSecretReadyCondition} {
		h.condition(app, c, metav1.ConditionTrue, "")
	}
	for _, c := range []string{flyv1alpha1.AppReadyCondition, flyv1alpha1.MachineCreatedCondition, flyv1alpha1.ConfigSyncedCondition, flyv1alpha1.PowerStateSyncedCondition} {
		h.condition(um, c, metav1.ConditionTrue, "")
	}
	h.eventually("Created events", func() string {
		if a, u := h.events("alice"), h.events("alice-ws"); len(a[controllers.EventCreated]) != 1 || len(u[controllers.EventCreated]) != 1 {
			return fmt.Sprintf("app events %v, machine events %v", a, u)
		}
		return ""
	})
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func keysOfBytes(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
