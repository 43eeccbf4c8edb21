// Package argocd_test checks hangar against Argo CD: that Argo CD's default diff finds applied
// UserApps and UserMachines in sync, that the health checks in config/argocd/health give each state
// the health it should, on objects captured from the manager running against the Fly emulator, and
// that the example Application is well formed.
package argocd_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/devstack"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
)

var stack *devstack.Stack

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctrllog.SetLogger(logr.Discard())
	dir, err := os.MkdirTemp("", "hangar-argocd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	stack, err = devstack.Start(context.Background(), devstack.Config{
		StateDir:      dir,
		FlyAPIAddr:    "127.0.0.1:0",
		ProxyListen:   map[int]string{80: "127.0.0.1:0", 9090: "127.0.0.1:0"},
		DriftInterval: time.Minute,
		Autostop:      proxy.AutostopOptions{Disabled: true},
		FlyCallHook: func(p flysim.CallPoint) {
			// A test holds a call here to capture an object while Fly is slow.
			if hold := heldFlyCalls.Load(); hold != nil {
				(*hold)(p)
			}
		},
		Logger: logr.Discard(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local stack:", err)
		return 1
	}
	defer func() {
		if err := stack.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the local stack:", err)
		}
	}()
	return m.Run()
}

// newNamespace creates a namespace of its own for one test, named after prefix, and deletes the
// test's UserApps and UserMachines when it ends. With freeClaims it waits until the manager has let
// them go, so that fixed Fly app names and hosts they claim are free for a rerun (go test -count).
func newNamespace(t *testing.T, prefix string, freeClaims bool) string {
	t.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := stack.Env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := stack.Env.Client
		for _, obj := range []client.Object{&flyv1alpha1.UserMachine{}, &flyv1alpha1.UserApp{}} {
			if err := c.DeleteAllOf(ctx, obj, client.InNamespace(ns.Name)); err != nil {
				t.Error(err)
			}
		}
		if !freeClaims {
			return
		}
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			var apps flyv1alpha1.UserAppList
			var machines flyv1alpha1.UserMachineList
			if err := c.List(ctx, &apps, client.InNamespace(ns.Name)); err != nil {
				return false, err
			}
			if err := c.List(ctx, &machines, client.InNamespace(ns.Name)); err != nil {
				return false, err
			}
			return len(apps.Items)+len(machines.Items) == 0, nil
		})
		if err != nil {
			t.Errorf("deleting the objects of namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}
