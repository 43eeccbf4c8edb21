package install_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hangar-dev/hangar/internal/manifests"
)

// configFlyRouterRole is the Role of config/rbac/role.yaml: the FlyRouter controller's rights in the
// manager's namespace, generated from its kubebuilder markers (the file's second document).
func configFlyRouterRole(t *testing.T) *rbacv1.Role {
	t.Helper()
	objs, err := manifests.Decode(mustRead(t, filepath.Join(env.RepoRoot, "config", "rbac", "role.yaml")))
	if err != nil {
		t.Fatalf("config/rbac/role.yaml: %v", err)
	}
	for _, obj := range objs {
		if obj.GetKind() == "Role" {
			role := &rbacv1.Role{}
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj.Object, role, true); err != nil {
				t.Fatalf("config/rbac/role.yaml: Role: %v", err)
			}
			return role
		}
	}
	t.Fatal("config/rbac/role.yaml holds no Role: run make manifests")
	return nil
}

// withTokenFor is rules with the serviceaccounts/token rule naming only routerSA.
func withTokenFor(rules []rbacv1.PolicyRule, routerSA string) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, 0, len(rules))
	for _, r := range rules {
		r = *r.DeepCopy()
		if slices.Contains(r.Resources, "serviceaccounts/token") {
			r.ResourceNames = []string{routerSA}
		}
		out = append(out, r)
	}
	return out
}

// TestChartFlyRouterRBAC: with flyRouters on (the default), the chart's manager gets the Role of
// config/rbac/role.yaml in the release namespace, its token rule naming the router ServiceAccount
// the chart creates, even under another release name and with the in-cluster router off; and the
// apiserver lets the manager mint tokens for that ServiceAccount and no other.
func TestChartFlyRouterRBAC(t *testing.T) {
	chrt := loadChart(t)
	configRole := configFlyRouterRole(t)
	cases := []struct {
		name string
		rel  release
		// want: the names the chart gives the manager's and the router's ServiceAccounts.
		managerSA, routerSA string
		prefix              string
	}{{
		name:      "defaults",
		rel:       release{namespace: "flyrouter-defaults"},
		managerSA: "hangar-controller-manager", routerSA: "hangar-router", prefix: "hangar",
	}, {
		name: "release edge, router in the cluster off",
		rel: release{name: "edge", namespace: "flyrouter-edge", values: map[string]any{
			"router": map[string]any{"enabled": false},
		}},
		managerSA: "edge-hangar-controller-manager", routerSA: "edge-hangar-router", prefix: "edge-hangar",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, chrt, tc.rel)
			ns := tc.rel.namespace

			manager := find[appsv1.Deployment](t, objs, "Deployment", tc.prefix+"-controller-manager")
			if manager == nil || !slices.Contains(manager.Spec.Template.Spec.Containers[0].Args, "--flyrouters") {
				t.Errorf("the manager does not run with --flyrouters")
			}
			if named(objs, "ServiceAccount", tc.routerSA) == nil {
				t.Fatalf("no router ServiceAccount %s rendered", tc.routerSA)
			}
			role := find[rbacv1.Role](t, objs, "Role", tc.prefix+"-manager-flyrouter-role")
			if role == nil {
				t.Fatalf("no Role %s-manager-flyrouter-role rendered", tc.prefix)
			}
			if role.Namespace != ns {
				t.Errorf("Role %s in namespace %q, want the release's, %s", role.Name, role.Namespace, ns)
			}
			if diff := cmp.Diff(withTokenFor(configRole.Rules, tc.routerSA), role.Rules); diff != "" {
				t.Errorf("Role %s's rules differ from config/rbac/role.yaml's Role with tokens for %s (run make chart) (-want +got):\n%s",
					role.Name, tc.routerSA, diff)
			}
			binding := find[rbacv1.RoleBinding](t, objs, "RoleBinding", tc.prefix+"-manager-flyrouter-rolebinding")
			if binding == nil {
				t.Fatalf("no RoleBinding %s-manager-flyrouter-rolebinding rendered", tc.prefix)
			}
			wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}
			wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: tc.managerSA, Namespace: ns}}
			if diff := cmp.Diff(wantRef, binding.RoleRef); diff != "" {
				t.Errorf("RoleBinding %s roleRef (-want +got):\n%s", binding.Name, diff)
			}
			if diff := cmp.Diff(wantSubjects, binding.Subjects); diff != "" {
				t.Errorf("RoleBinding %s subjects (-want +got):\n%s", binding.Name, diff)
			}

			// The install notes say which ServiceAccount a FlyRouter names, and to set it where it is
			// not the default.
			notes := renderFiles(t, chrt, tc.rel)["hangar/templates/NOTES.txt"]
			if !strings.Contains(notes, "ServiceAccount "+ns+"/"+tc.routerSA) {
				t.Errorf("NOTES.txt does not name the router ServiceAccount %s/%s:\n%s", ns, tc.routerSA, notes)
			}
			setIt := "spec.serviceAccountName: " + tc.routerSA
			if asked := strings.Contains(notes, setIt); asked != (tc.routerSA != "hangar-router") {
				t.Errorf("NOTES.txt asks for %q = %v, want %v (only where it is not the default, hangar-router):\n%s",
					setIt, asked, tc.routerSA != "hangar-router", notes)
			}

			createNamespace(t, ns)
			applyForReal(t, named(objs, "Role", role.Name), named(objs, "RoleBinding", binding.Name))
			checkTokenGrant(t, ns, tc.managerSA, tc.routerSA)
		})
	}
}

// TestInstallerFlyRouterRBAC: dist/install.yaml runs the manager with --flyrouters, creates the
// router ServiceAccount hangar-router (a FlyRouter's default spec.serviceAccountName), and binds the
// manager the Role of config/rbac/role.yaml in hangar-system, which the apiserver honours.
func TestInstallerFlyRouterRBAC(t *testing.T) {
	objs, err := manifests.Decode(mustRead(t, filepath.Join(env.RepoRoot, "dist", "install.yaml")))
	if err != nil {
		t.Fatalf("dist/install.yaml: %v", err)
	}
	const ns, managerSA, routerSA = "hangar-system", "hangar-controller-manager", "hangar-router"

	manager := find[appsv1.Deployment](t, objs, "Deployment", "hangar-controller-manager")
	if manager == nil {
		t.Fatal("dist/install.yaml has no Deployment hangar-controller-manager")
	}
	if !slices.Contains(manager.Spec.Template.Spec.Containers[0].Args, "--flyrouters") {
		t.Errorf("the manager does not run with --flyrouters (config/manager/manager.yaml; make build-installer)")
	}
	if sa := named(objs, "ServiceAccount", routerSA); sa == nil || sa.GetNamespace() != ns {
		t.Errorf("no ServiceAccount %s/%s, whose tokens a FlyRouter mints by default", ns, routerSA)
	}
	role := find[rbacv1.Role](t, objs, "Role", "hangar-manager-role")
	if role == nil || role.Namespace != ns {
		t.Fatalf("no Role %s/hangar-manager-role", ns)
	}
	if diff := cmp.Diff(withTokenFor(configFlyRouterRole(t).Rules, routerSA), role.Rules); diff != "" {
		t.Errorf("Role hangar-manager-role's rules differ from config/rbac/role.yaml's with tokens for %s (-want +got):\n%s", routerSA, diff)
	}
	binding := find[rbacv1.RoleBinding](t, objs, "RoleBinding", "hangar-manager-rolebinding")
	if binding == nil {
		t.Fatal("no RoleBinding hangar-manager-rolebinding")
	}
	wantRef := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name}
	wantSubjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: managerSA, Namespace: ns}}
	if diff := cmp.Diff(wantRef, binding.RoleRef); diff != "" {
		t.Errorf("RoleBinding %s roleRef (-want +got):\n%s", binding.Name, diff)
	}
	if diff := cmp.Diff(wantSubjects, binding.Subjects); diff != "" {
		t.Errorf("RoleBinding %s subjects (-want +got):\n%s", binding.Name, diff)
	}

	applyPrerequisites(t, objs)
	applyForReal(t, named(objs, "Role", role.Name), named(objs, "RoleBinding", binding.Name))
	checkTokenGrant(t, ns, managerSA, routerSA)
}

// applyForReal creates objs (unlike applyDryRun) and deletes them when the test ends.
func applyForReal(t *testing.T, objs ...*unstructured.Unstructured) {
	t.Helper()
	for _, obj := range objs {
		obj := obj.DeepCopy()
		if err := env.Client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(obj), fieldOwner, client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s/%s: %v", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
		t.Cleanup(func() {
			if err := env.Client.Delete(context.Background(), obj); client.IgnoreNotFound(err) != nil {
				t.Errorf("deleting %s %s/%s: %v", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
			}
		})
	}
}

// checkTokenGrant asks the apiserver's authorizer whether the manager's ServiceAccount may mint
// tokens: for the router's ServiceAccount in ns it must (once RBAC's informer has the binding), for
// any other ServiceAccount, its own included, or in another namespace it must not.
func checkTokenGrant(t *testing.T, ns, managerSA, routerSA string) {
	t.Helper()
	ctx := t.Context()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		return mayMintToken(ctx, ns, managerSA, ns, routerSA)
	})
	if err != nil {
		t.Fatalf("%s/%s may not create a token for %s/%s: %v", ns, managerSA, ns, routerSA, err)
	}
	refused := []struct{ ns, name string }{
		{ns, managerSA},
		{ns, "default"},
		{"default", routerSA},
	}
	for _, r := range refused {
		allowed, err := mayMintToken(ctx, ns, managerSA, r.ns, r.name)
		if err != nil {
			t.Fatal(err)
		}
		if allowed {
			t.Errorf("%s/%s may create a token for %s/%s: only the router's ServiceAccount %s/%s is meant",
				ns, managerSA, r.ns, r.name, ns, routerSA)
		}
	}
}

// mayMintToken is the authorizer's answer to: may ServiceAccount saNS/sa create a token for
// ServiceAccount ns/name?
func mayMintToken(ctx context.Context, saNS, sa, ns, name string) (bool, error) {
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + saNS + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + saNS, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: ns, Verb: "create", Resource: "serviceaccounts", Subresource: "token", Name: name,
		},
	}}
	if err := env.Client.Create(ctx, review); err != nil {
		return false, err
	}
	return review.Status.Allowed, nil
}
