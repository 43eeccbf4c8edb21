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

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

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

// newNamespace creates a namespace of its own for one test.
func newNamespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := stack.Env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	return name
}
