package testenv_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

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
