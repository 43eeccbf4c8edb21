package install_test

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/hangar-dev/hangar/internal/manifests"
	"github.com/hangar-dev/hangar/internal/testenv"
)

// serviceMonitorAPI is what the chart asks .Capabilities.APIVersions for before it renders a
// ServiceMonitor; helm install fills it in from the cluster's discovery.
const serviceMonitorAPI = "monitoring.coreos.com/v1/ServiceMonitor"

// release is one `helm install` of the chart: its name (default hangar), namespace, values and what
// the cluster serves.
type release struct {
	name        string
	namespace   string
	values      map[string]any
	apiVersions []string
}

func loadChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	chrt, err := loader.Load(filepath.Join(env.RepoRoot, "charts", "hangar"))
	if err != nil {
		t.Fatalf("loading charts/hangar: %v", err)
	}
	return chrt
}

// renderValues are the values the templates see, checked against values.schema.json as helm install
// checks them.
func renderValues(chrt *chartv2.Chart, rel release) (common.Values, error) {
	caps := common.DefaultCapabilities.Copy()
	kube, err := common.ParseKubeVersion("v" + testenv.K8sVersion)
	if err != nil {
		return nil, err
	}
	caps.KubeVersion = *kube
	caps.APIVersions = append(slices.Clone(caps.APIVersions), rel.apiVersions...)
	name := rel.name
	if name == "" {
		name = "hangar"
	}
	return util.ToRenderValues(chrt, rel.values, common.ReleaseOptions{
		Name: name, Namespace: rel.namespace, IsInstall: true, Revision: 1,
	}, caps)
}

// render renders the chart's templates as helm install would, in strict mode
// so a template reading a value that values.yaml lacks fails, and returns their objects.
func render(t *testing.T, chrt *chartv2.Chart, rel release) []*unstructured.Unstructured {
	t.Helper()
	files := renderFiles(t, chrt, rel)
	names := make([]string, 0, len(files))
	for name := range files {
		if strings.HasSuffix(name, ".yaml") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var objs []*unstructured.Unstructured
	for _, name := range names {
		decoded, err := manifests.Decode([]byte(files[name]))
		if err != nil {
			t.Fatalf("%s renders invalid YAML: %v\n%s", name, err, files[name])
		}
		objs = append(objs, decoded...)
	}
	return objs
}

// renderFiles is every rendered template by its path (hangar/templates/NOTES.txt among them).
func renderFiles(t *testing.T, chrt *chartv2.Chart, rel release) map[string]string {
	t.Helper()
	values, err := renderValues(chrt, rel)
	if err != nil {
		t.Fatalf("chart values: %v", err)
	}
	files, err := engine.Engine{Strict: true}.RenderWithContext(t.Context(), chrt, values)
	if err != nil {
		t.Fatalf("rendering charts/hangar: %v", err)
	}
	return files
}

// chartCRDs are the chart's crds/, which Helm applies before the templates.
func chartCRDs(t *testing.T, chrt *chartv2.Chart) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, crd := range chrt.CRDObjects() {
		decoded, err := manifests.Decode(crd.File.Data)
		if err != nil {
			t.Fatalf("%s: %v", crd.Filename, err)
		}
		objs = append(objs, decoded...)
	}
	if len(objs) == 0 {
		t.Fatal("charts/hangar/crds holds no CRD: run make chart")
	}
	return objs
}

func TestChartInstalls(t *testing.T) {
	chrt := loadChart(t)
	applyPrerequisites(t, chartCRDs(t, chrt))
	smCRD, err := manifests.Decode(mustRead(t, filepath.Join("testdata", "servicemonitor-crd.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	applyPrerequisites(t, smCRD)

	cases := []struct {
		name string
		rel  release
		// want: the manager's replicas and flags, the router's presence, the FlyRouter controller's
		// RBAC, the ServiceMonitors, and the Secret the token is read from (created by the chart or
		// not).
		managerReplicas int32
		managerArgs     []string
		tokenSecret     string
		tokenKey        string
		tokenCreated    bool
		router          bool
		flyRouters      bool
		serviceMonitors []string
	}{{
		name:            "defaults",
		rel:             release{namespace: "hangar-system"},
		managerReplicas: 2,
		managerArgs: []string{
			"--leader-elect", "--leader-election-id=manager.hangar.dev", "--leader-election-retry-period=1s",
			"--metrics-bind-address=:8443", "--health-probe-bind-address=:8081",
			"--fly-token-file=/etc/hangar/fly-token/token", "--root-key-secret=hangar-system/hangar-root-key",
			"--default-org=personal", "--default-region=ord", "--flyrouters",
		},
		tokenSecret: "hangar-fly-token",
		tokenKey:    "token",
		router:      true,
		flyRouters:  true,
	}, {
		name: "router off, metrics on, 3 replicas, token from a value",
		rel: release{
			namespace:   "fly-ops",
			apiVersions: []string{"monitoring.coreos.com/v1", serviceMonitorAPI},
			values: map[string]any{
				"fly": map[string]any{
					"org": "acme", "region": "ams", "apiURL": "http://_api.internal:4280",
					"token": map[string]any{"secretName": "fly-api", "key": "api-token", "value": "not-a-real-token"},
				},
				"rootKey": map[string]any{"secretName": "acme-root-key"},
				"routing": map[string]any{"baseDomain": "apps.example.com"},
				"manager": map[string]any{"replicas": 3, "extraArgs": []any{"--drift-interval=10m"}},
				"router":  map[string]any{"enabled": false},
				"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
				"rbac":    map[string]any{"tenantRoles": false},
			},
		},
		managerReplicas: 3,
		managerArgs: []string{
			"--leader-elect", "--leader-election-id=manager.hangar.dev", "--leader-election-retry-period=1s",
			"--metrics-bind-address=:8443", "--health-probe-bind-address=:8081",
			"--fly-token-file=/etc/hangar/fly-token/token", "--root-key-secret=fly-ops/acme-root-key",
			"--default-org=acme", "--default-region=ams", "--fly-api-url=http://_api.internal:4280",
			"--router-base-domain=apps.example.com", "--flyrouters", "--drift-interval=10m",
		},
		tokenSecret:     "fly-api",
		tokenKey:        "api-token",
		tokenCreated:    true,
		flyRouters:      true,
		serviceMonitors: []string{"hangar-controller-manager"},
	}, {
		name: "ServiceMonitor asked for where the Prometheus Operator is not installed",
		rel: release{
			namespace: "hangar-nomon",
			values: map[string]any{
				"manager":    map[string]any{"leaderElection": map[string]any{"enabled": false}, "replicas": 1},
				"metrics":    map[string]any{"serviceMonitor": map[string]any{"enabled": true}},
				"flyRouters": map[string]any{"enabled": false},
			},
		},
		managerReplicas: 1,
		managerArgs: []string{
			"--metrics-bind-address=:8443", "--health-probe-bind-address=:8081",
			"--fly-token-file=/etc/hangar/fly-token/token", "--root-key-secret=hangar-nomon/hangar-root-key",
			"--default-org=personal", "--default-region=ord",
		},
		tokenSecret: "hangar-fly-token",
		tokenKey:    "token",
		router:      true,
	}, {
		name: "no router at all: neither in the cluster nor through FlyRouters",
		rel: release{
			namespace: "hangar-norouter",
			values: map[string]any{
				"router":     map[string]any{"enabled": false},
				"flyRouters": map[string]any{"enabled": false},
			},
		},
		managerReplicas: 2,
		managerArgs: []string{
			"--leader-elect", "--leader-election-id=manager.hangar.dev", "--leader-election-retry-period=1s",
			"--metrics-bind-address=:8443", "--health-probe-bind-address=:8081",
			"--fly-token-file=/etc/hangar/fly-token/token", "--root-key-secret=hangar-norouter/hangar-root-key",
			"--default-org=personal", "--default-region=ord",
		},
		tokenSecret: "hangar-fly-token",
		tokenKey:    "token",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, chrt, tc.rel)
			createNamespace(t, tc.rel.namespace)
			if err := applyDryRun(t.Context(), objs); err != nil {
				t.Fatalf("the apiserver refuses the rendered chart:\n%v", err)
			}

			manager := find[appsv1.Deployment](t, objs, "Deployment", "hangar-controller-manager")
			if manager == nil {
				t.Fatal("no manager Deployment hangar-controller-manager")
			}
			if got := *manager.Spec.Replicas; got != tc.managerReplicas {
				t.Errorf("manager replicas = %d, want %d", got, tc.managerReplicas)
			}
			container := manager.Spec.Template.Spec.Containers[0]
			if diff := cmp.Diff(tc.managerArgs, container.Args); diff != "" {
				t.Errorf("manager args (-want +got):\n%s", diff)
			}
			if want := "ghcr.io/hangar-dev/hangar:" + chrt.Metadata.AppVersion; container.Image != want {
				t.Errorf("manager image = %s, want %s (the chart's appVersion)", container.Image, want)
			}
			checkTokenVolume(t, manager, tc.tokenSecret, tc.tokenKey)
			secret := find[corev1.Secret](t, objs, "Secret", tc.tokenSecret)
			if created := secret != nil; created != tc.tokenCreated {
				t.Errorf("token Secret %s rendered = %v, want %v", tc.tokenSecret, created, tc.tokenCreated)
			}
			if secret != nil && string(secret.Data[tc.tokenKey]) != "not-a-real-token" {
				t.Errorf("token Secret %s does not hold the token under key %s", tc.tokenSecret, tc.tokenKey)
			}
			for _, obj := range objs {
				if obj.GetKind() == "ConfigMap" {
					t.Errorf("ConfigMap %s rendered: the chart has no use for one, and the token must never be in one", obj.GetName())
				}
			}

			router := find[appsv1.Deployment](t, objs, "Deployment", "hangar-router")
			if (router != nil) != tc.router {
				t.Errorf("router Deployment rendered = %v, want %v", router != nil, tc.router)
			}
			for _, kind := range []string{"Service", "PodDisruptionBudget"} {
				if got := named(objs, kind, "hangar-router") != nil; got != tc.router {
					t.Errorf("router %s hangar-router rendered = %v, want %v", kind, got, tc.router)
				}
			}
			// The router's identity serves the in-cluster router and the FlyRouters' alike.
			routerIdentity := tc.router || tc.flyRouters
			for _, obj := range []struct{ kind, name string }{
				{"ServiceAccount", "hangar-router"},
				{"ClusterRole", "hangar-router-role"},
				{"ClusterRoleBinding", "hangar-router-rolebinding"},
				{"Role", "hangar-router-activity-role"},
				{"RoleBinding", "hangar-router-activity-rolebinding"},
			} {
				if got := named(objs, obj.kind, obj.name) != nil; got != routerIdentity {
					t.Errorf("router %s %s rendered = %v, want %v", obj.kind, obj.name, got, routerIdentity)
				}
			}
			for _, obj := range []struct{ kind, name string }{
				{"Role", "hangar-manager-flyrouter-role"},
				{"RoleBinding", "hangar-manager-flyrouter-rolebinding"},
			} {
				if got := named(objs, obj.kind, obj.name) != nil; got != tc.flyRouters {
					t.Errorf("FlyRouter %s %s rendered = %v, want %v", obj.kind, obj.name, got, tc.flyRouters)
				}
			}

			var monitors []string
			for _, obj := range objs {
				if obj.GetKind() == "ServiceMonitor" {
					monitors = append(monitors, obj.GetName())
				}
			}
			if diff := cmp.Diff(tc.serviceMonitors, monitors); diff != "" {
				t.Errorf("ServiceMonitors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestChartManagerRulesAreRoleYAMLs keeps the chart's RBAC in step with the controllers' markers: the
// manager's ClusterRole must grant exactly config/rbac/role.yaml's rules (generated by make
// manifests), and the tenant roles exactly config/rbac's.
func TestChartManagerRulesAreRoleYAMLs(t *testing.T) {
	objs := render(t, loadChart(t), release{namespace: "hangar-system"})
	cases := []struct{ chartRole, configFile string }{
		{"hangar-manager-role", "role.yaml"},
		{"hangar-userapp-editor-role", "userapp_editor_role.yaml"},
		{"hangar-userapp-viewer-role", "userapp_viewer_role.yaml"},
		{"hangar-usermachine-editor-role", "usermachine_editor_role.yaml"},
		{"hangar-usermachine-viewer-role", "usermachine_viewer_role.yaml"},
		{"hangar-userapppool-editor-role", "userapppool_editor_role.yaml"},
		{"hangar-userapppool-viewer-role", "userapppool_viewer_role.yaml"},
		{"hangar-userappclaim-editor-role", "userappclaim_editor_role.yaml"},
		{"hangar-userappclaim-viewer-role", "userappclaim_viewer_role.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.chartRole, func(t *testing.T) {
			want := &rbacv1.ClusterRole{}
			if err := sigsyaml.UnmarshalStrict(mustRead(t, filepath.Join(env.RepoRoot, "config", "rbac", tc.configFile)), want); err != nil {
				t.Fatal(err)
			}
			got := find[rbacv1.ClusterRole](t, objs, "ClusterRole", tc.chartRole)
			if got == nil {
				t.Fatalf("the chart renders no ClusterRole %s", tc.chartRole)
			}
			if diff := cmp.Diff(want.Rules, got.Rules); diff != "" {
				t.Errorf("ClusterRole %s's rules differ from config/rbac/%s (run make chart) (-config +chart):\n%s", tc.chartRole, tc.configFile, diff)
			}
			for key, value := range want.Labels {
				if got.Labels[key] != value {
					t.Errorf("ClusterRole %s: label %s = %q, want %q as in config/rbac/%s", tc.chartRole, key, got.Labels[key], value, tc.configFile)
				}
			}
		})
	}
}

func TestChartRefusesBadValues(t *testing.T) {
	chrt := loadChart(t)
	cases := []struct {
		name   string
		values map[string]any
		// want is the value's path, which the error must name.
		want string
	}{
		{"region that is no Fly region code", map[string]any{"fly": map[string]any{"region": "Chicago"}}, "/fly/region"},
		{"org that is no Fly slug", map[string]any{"fly": map[string]any{"org": "My Org"}}, "/fly/org"},
		{"empty org", map[string]any{"fly": map[string]any{"org": ""}}, "/fly/org"},
		{"replicas as a word", map[string]any{"manager": map[string]any{"replicas": "three"}}, "/manager/replicas"},
		{"no router replica", map[string]any{"router": map[string]any{"replicas": 0}}, "/router/replicas"},
		{"extra args as one string", map[string]any{"manager": map[string]any{"extraArgs": "--drift-interval=1m"}}, "/manager/extraArgs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderValues(chrt, release{namespace: "hangar-system", values: tc.values})
			if err == nil {
				t.Fatalf("values %v accepted", tc.values)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

func checkTokenVolume(t *testing.T, manager *appsv1.Deployment, secret, key string) {
	t.Helper()
	for _, v := range manager.Spec.Template.Spec.Volumes {
		if v.Name != "fly-token" {
			continue
		}
		if v.Secret == nil || v.Secret.SecretName != secret {
			t.Errorf("fly-token volume = %+v, want Secret %s", v.VolumeSource, secret)
			return
		}
		want := []corev1.KeyToPath{{Key: key, Path: "token"}}
		if diff := cmp.Diff(want, v.Secret.Items); diff != "" {
			t.Errorf("fly-token volume items (-want +got):\n%s", diff)
		}
		return
	}
	t.Errorf("manager has no fly-token volume")
}

// named is the object of this kind and name, or nil.
func named(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, obj := range objs {
		if obj.GetKind() == kind && obj.GetName() == name {
			return obj
		}
	}
	return nil
}

// find is named's object converted to its typed form, or nil.
func find[T any](t *testing.T, objs []*unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	obj := named(objs, kind, name)
	if obj == nil {
		return nil
	}
	typed := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, typed, true); err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
	return typed
}
