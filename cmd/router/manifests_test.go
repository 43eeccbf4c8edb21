package main

import (
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/keys"
)

func readManifest(t *testing.T, name string, into any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "router", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestRouterManifests keeps config/router to its promises: two replicas under a PDB, restricted pod
// security, the root key mounted where the flag reads it, probes on the health listener, and RBAC
// that can only read the two kinds.
func TestRouterManifests(t *testing.T) {
	var d appsv1.Deployment
	readManifest(t, "deployment.yaml", &d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", d.Spec.Replicas)
	}
	pod := d.Spec.Template.Spec
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v is not restricted", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container securityContext %+v is not restricted", sc)
	}
	// The flags must parse and point at the mounted key.
	var opts options
	fs := flagSet(&opts)
	if err := fs.Parse(c.Args); err != nil {
		t.Fatalf("deployment args %v: %v", c.Args, err)
	}
	if err := opts.Validate(); err != nil {
		t.Fatalf("deployment args %v: %v", c.Args, err)
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(opts.RootKeyFile, m.MountPath+"/") && m.ReadOnly {
			for _, v := range pod.Volumes {
				if v.Name == m.Name && v.Secret != nil && len(v.Secret.Items) == 1 && v.Secret.Items[0].Key == keys.RootKeySecretKey &&
					m.MountPath+"/"+v.Secret.Items[0].Path == opts.RootKeyFile {
					mounted = true
				}
			}
		}
	}
	if !mounted {
		t.Errorf("--root-key-file=%s is not the read-only mounted %s of a Secret", opts.RootKeyFile, keys.RootKeySecretKey)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Fatal("probes must use /readyz and /healthz")
	}
	_, healthPort, err := net.SplitHostPort(opts.HealthAddr)
	if err != nil {
		t.Fatalf("--health-addr=%s: %v", opts.HealthAddr, err)
	}
	for _, probe := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
		if got := containerPort(c, probe.HTTPGet.Port); got != healthPort {
			t.Errorf("probe %s goes to port %s, want the health listener's %s", probe.HTTPGet.Path, got, healthPort)
		}
	}

	var pdb policyv1.PodDisruptionBudget
	readManifest(t, "pdb.yaml", &pdb)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 ||
		pdb.Spec.Selector == nil || !maps.Equal(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PDB %+v does not keep one router of the Deployment", pdb.Spec)
	}

	var role rbacv1.ClusterRole
	readManifest(t, "role.yaml", &role)
	watched := map[string]bool{}
	for _, rule := range role.Rules {
		for _, verb := range rule.Verbs {
			if verb != "get" && verb != "list" && verb != "watch" {
				t.Errorf("router RBAC grants %q", verb)
			}
		}
		for _, res := range rule.Resources {
			if !strings.HasPrefix(res, "userapps") && !strings.HasPrefix(res, "usermachines") {
				t.Errorf("router RBAC reaches %q", res)
			}
			if slices.Equal(rule.APIGroups, []string{flyv1alpha1.GroupVersion.Group}) && slices.Contains(rule.Verbs, "list") && slices.Contains(rule.Verbs, "watch") {
				watched[res] = true
			}
		}
	}
	// The checks above pass for a role granting nothing; the router's informers need list and watch.
	if !watched["userapps"] || !watched["usermachines"] {
		t.Errorf("router RBAC %+v does not let the router list and watch userapps and usermachines", role.Rules)
	}
	var binding rbacv1.ClusterRoleBinding
	readManifest(t, "role_binding.yaml", &binding)
	var sa corev1.ServiceAccount
	readManifest(t, "service_account.yaml", &sa)
	if binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 || binding.Subjects[0].Name != sa.Name ||
		pod.ServiceAccountName != sa.Name {
		t.Error("the role, binding, service account and Deployment do not line up")
	}
}

// containerPort resolves a probe's port (a number or the name of one of c's ports) to a number.
func containerPort(c corev1.Container, port intstr.IntOrString) string {
	if port.Type == intstr.Int {
		return strconv.Itoa(port.IntValue())
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	return "(no port named " + port.StrVal + ")"
}

// TestRouterActivityRole: the router's one write is to Leases, in its own namespace only (a Role,
// not a ClusterRole), bound to its service account; it never deletes them.
func TestRouterActivityRole(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "router", "activity_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(b), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("activity_role.yaml holds %d documents, want a Role and a RoleBinding", len(docs))
	}
	var role rbacv1.Role
	var binding rbacv1.RoleBinding
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &role); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &binding); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"get": true, "list": true, "watch": true, "create": true, "update": true}
	if role.Kind != "Role" || len(role.Rules) != 1 {
		t.Fatalf("%s with %d rules, want a Role with one", role.Kind, len(role.Rules))
	}
	rule := role.Rules[0]
	if !slices.Equal(rule.APIGroups, []string{"coordination.k8s.io"}) || !slices.Equal(rule.Resources, []string{"leases"}) || len(rule.ResourceNames) > 0 {
		t.Errorf("rule %+v reaches beyond leases", rule)
	}
	for _, verb := range rule.Verbs {
		if !allowed[verb] {
			t.Errorf("router activity role grants %q", verb)
		}
	}
	for verb := range allowed {
		if !slices.Contains(rule.Verbs, verb) {
			t.Errorf("router activity role lacks %q (the publisher watches, creates and updates Leases)", verb)
		}
	}
	var sa corev1.ServiceAccount
	readManifest(t, "service_account.yaml", &sa)
	if binding.RoleRef.Kind != "Role" || binding.RoleRef.Name != role.Name || len(binding.Subjects) != 1 ||
		binding.Subjects[0].Name != sa.Name || binding.Namespace != role.Namespace || role.Namespace != sa.Namespace {
		t.Errorf("the activity Role, its binding and the router's service account do not line up: %+v", binding)
	}
}
