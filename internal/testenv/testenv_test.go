package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hangar-dev/hangar/internal/testenv"
)

// TestHarnessStartsRealAPIServer proves the harness runs a real kube-apiserver of the version the
// project targets, with hangar's CRDs served.
func TestHarnessStartsRealAPIServer(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})

	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	version, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if version.Major != "1" || !strings.HasPrefix(version.Minor, "37") {
		t.Fatalf("server version = %s.%s (%s), want 1.37", version.Major, version.Minor, version.GitVersion)
	}

	resources, err := dc.ServerResourcesForGroupVersion("fly.hangar.dev/v1alpha1")
	if err != nil {
		t.Fatalf("hangar CRDs not served: %v", err)
	}
	served := map[string]bool{}
	for _, r := range resources.APIResources {
		served[r.Name] = true
	}
	for _, want := range []string{"userapps", "userapps/status", "usermachines", "usermachines/status"} {
		if !served[want] {
			t.Errorf("resource %s not served; got %v", want, served)
		}
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "smoke"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
}

// TestAddUserActsUnderRBAC proves a user from AddUser is authorized by RBAC: refused until a
// RoleBinding grants it something, then allowed exactly that, in that namespace only.
func TestAddUserActsUnderRBAC(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	ctx := context.Background()
	for _, name := range []string{"mine", "theirs"} {
		if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Fatal(err)
		}
	}
	const user = "system:serviceaccount:mine:deployer"
	cfg, err := env.AddUser(user, "system:serviceaccounts", "system:serviceaccounts:mine")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	list := func(ns string) error { return c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns)) }
	if err := list("mine"); !apierrors.IsForbidden(err) {
		t.Fatalf("before any binding: %v, want Forbidden", err)
	}
	objs := []client.Object{
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "read-configmaps", Namespace: "mine"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"list"}},
		}},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: "mine"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-configmaps"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		},
	}
	for _, obj := range objs {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	// RBAC's authorizer reads bindings from an informer: the grant shows up after a moment.
	deadline := time.Now().Add(30 * time.Second)
	for err := list("mine"); err != nil; err = list("mine") {
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			t.Fatalf("after the binding: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := list("theirs"); !apierrors.IsForbidden(err) {
		t.Errorf("another namespace: %v, want Forbidden", err)
	}
	if err := c.List(ctx, &corev1.SecretList{}, client.InNamespace("mine")); !apierrors.IsForbidden(err) {
		t.Errorf("a resource not granted: %v, want Forbidden", err)
	}
}

// TestRestartedAPIServerKeepsItsClients stops and starts the apiserver twice and checks that the
// clients made before the first stop reach it again: same address and serving certificates (the
// admin client), same client CA (a user from AddUser is still authenticated, so it is Forbidden
// rather than Unauthorized) and the same etcd data (an object written before is still there).
func TestRestartedAPIServerKeepsItsClients(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	ctx := context.Background()
	admin, err := client.New(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	userCfg, err := env.AddUser("nobody")
	if err != nil {
		t.Fatal(err)
	}
	user, err := client.New(userCfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "before"}}); err != nil {
		t.Fatal(err)
	}

	for round := 1; round <= 2; round++ {
		start := time.Now()
		if err := env.StopAPIServer(); err != nil {
			t.Fatalf("round %d: stopping: %v", round, err)
		}
		stopped := time.Since(start)
		// The outage is real: the same client gets no answer.
		if err := admin.Get(ctx, client.ObjectKey{Name: "before"}, &corev1.Namespace{}); err == nil {
			t.Fatalf("round %d: the apiserver answered while stopped", round)
		}
		if err := env.StartAPIServer(); err != nil {
			t.Fatalf("round %d: starting again: %v", round, err)
		}
		t.Logf("round %d: stopped in %s, back after %s", round, stopped.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

		if err := admin.Get(ctx, client.ObjectKey{Name: "before"}, &corev1.Namespace{}); err != nil {
			t.Errorf("round %d: the client made before the restart: %v", round, err)
		}
		name := fmt.Sprintf("after-%d", round)
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			t.Errorf("round %d: writing after the restart: %v", round, err)
		}
		if err := user.List(ctx, &corev1.ConfigMapList{}, client.InNamespace("before")); !apierrors.IsForbidden(err) {
			t.Errorf("round %d: a user added before the restart: %v, want Forbidden (authenticated, no rights)", round, err)
		}
	}
}
