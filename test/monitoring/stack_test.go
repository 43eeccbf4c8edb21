package monitoring_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/keys"
)

const (
	org      = "personal"
	flyToken = "fo1_monitoring-test"
	// waitTimeout bounds every wait; generous because the machine is shared.
	waitTimeout = 2 * time.Minute
)

// stack is the manager and router binaries running against the test apiserver and a Fly emulator.
type stack struct {
	sim                   *flysim.Server
	flyURL                string
	managerURL, routerURL string // their /metrics
}

// startStack runs the manager (plain-HTTP metrics, drift checked every second) and the router as
// processes, as a cluster runs them, until the test ends.
func startStack(t *testing.T, ns string) *stack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	s := &stack{sim: flysim.New(flysim.Options{Orgs: []flysim.OrgToken{{Token: flyToken, Org: org}}, Seed: 1})}
	fly := httptest.NewServer(s.sim)
	t.Cleanup(func() { fly.Close(); s.sim.Close() })
	s.flyURL = fly.URL

	write := func(name string, content []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	kubeconfig, err := env.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := write("kubeconfig", kubeconfig)
	// The root key Secret, made as the manager would, and mounted into the router as a file.
	rootKey := types.NamespacedName{Namespace: ns, Name: "hangar-root-key"}
	if _, err := controllers.EnsureRootKey(ctx, env.Client, rootKey); err != nil {
		t.Fatal(err)
	}
	var secret corev1.Secret
	if err := env.Client.Get(ctx, rootKey, &secret); err != nil {
		t.Fatal(err)
	}
	rootKeyPath := write("root.key", secret.Data[keys.RootKeySecretKey])

	managerMetrics, routerMetrics := freeAddr(t), freeAddr(t)
	s.managerURL, s.routerURL = "http://"+managerMetrics+"/metrics", "http://"+routerMetrics+"/metrics"
	startProcess(t, "manager", dir,
		"--kubeconfig", kubeconfigPath,
		"--namespace", ns,
		"--fly-api-url", fly.URL,
		"--fly-token-file", write("fly-token", []byte(flyToken+"\n")),
		"--root-key-secret", rootKey.String(),
		"--metrics-bind-address", managerMetrics, "--metrics-secure=false",
		"--health-probe-bind-address", "0",
		"--drift-interval", "1s",
	)
	startProcess(t, "router", dir,
		"--kubeconfig", kubeconfigPath,
		"--namespace", ns,
		"--root-key-file", rootKeyPath,
		"--public-addr", freeAddr(t), "--management-addr", "",
		"--metrics-addr", routerMetrics, "--health-addr", freeAddr(t),
		"--drain-delay", "0s",
	)
	return s
}

// freeAddr is a loopback address with a port free right now, for a process to listen on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// startProcess runs the built binary name with args until the test ends (SIGTERM), with its
// output in a file shown when the test failed.
func startProcess(t *testing.T, name, dir string, args ...string) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bins, name), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s did not stop cleanly on SIGTERM: %v", name, err)
			}
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-done //nolint:errcheck // killed: how it ended says nothing more
			t.Errorf("%s did not stop within 40s of SIGTERM", name)
		}
		_ = logFile.Close()
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			t.Logf("%s log (last lines):\n%s", name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	})
}

// scrape reads url's metrics in the text format, by family name.
func scrape(url string) (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(url) //nolint:gosec,noctx // a loopback address the test chose
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// seriesNames are the names a query can select from families: a histogram's are its _bucket, _sum
// and _count series, a summary's its _sum and _count.
func seriesNames(families map[string]*dto.MetricFamily) map[string]bool {
	names := map[string]bool{}
	for name, f := range families {
		names[name] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name+"_sum"], names[name+"_count"] = true, true
		}
	}
	return names
}

// labelsOf returns m's labels as a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// waitFor polls until check passes, failing the test with check's last error after waitTimeout.
func waitFor(t *testing.T, what string, check func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, waitTimeout, true, func(context.Context) (bool, error) {
		last = check()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, last)
	}
}

// TestMonitoringOfRunningBinaries runs the manager and the router with UserApps and a UserMachine
// in three states, and checks what their metrics endpoints serve against the alerts, the dashboard
// and the objects.
func TestMonitoringOfRunningBinaries(t *testing.T) {
	ctx := context.Background()
	ns := "monitoring"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	s := startStack(t, ns)
	// One 429 from Fly, which the client waits out and resends, so its counter has a series.
	s.sim.SetFault(flyapi.ActionCreateApp, flysim.Fault{Status: http.StatusTooManyRequests, Count: 1})

	alice := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: ns},
		Spec: flyv1alpha1.UserAppSpec{Routing: &flyv1alpha1.AppRouting{Hosts: []string{"alice.example.test"}}}}
	// A UserApp naming a Secret that does not exist stalls: only someone creating it moves it on.
	broken := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: ns},
		Spec: flyv1alpha1.UserAppSpec{Secrets: []flyv1alpha1.AppSecret{{Name: "API_KEY",
			SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "missing", Key: "api-key"}}}}}
	machine := &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Name: "alice-workspace", Namespace: ns},
		Spec: flyv1alpha1.UserMachineSpec{AppRef: flyv1alpha1.AppReference{Name: "alice"}, Region: "ord",
			Image: "registry.fly.io/workspace:v1", PowerState: flyv1alpha1.PowerStateStarted}}
	for _, obj := range []client.Object{alice, broken, machine} {
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "alice-workspace Ready", func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(machine), machine); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(machine.Status.Conditions, flyv1alpha1.ReadyCondition) {
			return fmt.Errorf("conditions %v", machine.Status.Conditions)
		}
		return nil
	})
	// Stop the machine behind hangar's back: the next drift check starts it again and counts a
	// drift correction.
	fly, err := flyapi.New(flyapi.Options{BaseURL: s.flyURL, Token: flyapi.StaticToken(flyToken), UserAgent: "monitoring-test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := fly.StopMachine(ctx, machine.Status.AppName, machine.Status.MachineID, flyapi.StopOptions{}, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a drift correction on the manager's metrics", func() error {
		families, err := scrape(s.managerURL)
		if err != nil {
			return err
		}
		if families["hangar_drift_corrections_total"] == nil {
			return fmt.Errorf("no hangar_drift_corrections_total yet")
		}
		return nil
	})

	t.Run("hangar_objects counts the objects by state", func(t *testing.T) {
		want := map[[4]string]float64{
			{"UserApp", "True", "Ready", "false"}:          1,
			{"UserApp", "False", "SecretNotFound", "true"}: 1,
			{"UserMachine", "True", "Ready", "false"}:      1,
		}
		var got map[[4]string]float64
		waitFor(t, "hangar_objects", func() error {
			families, err := scrape(s.managerURL)
			if err != nil {
				return err
			}
			got = map[[4]string]float64{}
			for _, m := range families["hangar_objects"].GetMetric() {
				l := labelsOf(m)
				got[[4]string{l["kind"], l["ready"], l["reason"], l["stalled"]}] = m.GetGauge().GetValue()
			}
			if diff := cmp.Diff(want, got); diff != "" {
				return fmt.Errorf("(-want +got):\n%s", diff)
			}
			return nil
		})
	})

	managerFamilies, err := scrape(s.managerURL)
	if err != nil {
		t.Fatal(err)
	}
	routerFamilies, err := scrape(s.routerURL)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("hangar_build_info carries the linked version", func(t *testing.T) {
		want := map[string]string{"version": testVersion, "commit": testCommit, "go_version": runtime.Version()}
		for name, families := range map[string]map[string]*dto.MetricFamily{"manager": managerFamilies, "router": routerFamilies} {
			series := families["hangar_build_info"].GetMetric()
			if len(series) != 1 {
				t.Errorf("%s: %d hangar_build_info series, want 1", name, len(series))
				continue
			}
			if diff := cmp.Diff(want, labelsOf(series[0])); diff != "" || series[0].GetGauge().GetValue() != 1 {
				t.Errorf("%s: hangar_build_info = %g, labels (-want +got):\n%s", name, series[0].GetGauge().GetValue(), diff)
			}
		}
	})

	t.Run("alerts and panels read metrics the binaries serve", func(t *testing.T) {
		served := seriesNames(managerFamilies)
		for name := range seriesNames(routerFamilies) {
			served[name] = true
		}
		for _, q := range append(alertRules(t), dashboardQueries(t)...) {
			for _, name := range metricNames(t, q) {
				if !served[name] {
					t.Errorf("%s reads %s, which neither the manager nor the router serves", q.where, name)
				}
			}
		}
	})
}

// TestHangarVersion runs `hangar version` from a binary linked as make build links it.
func TestHangarVersion(t *testing.T) {
	cmd := exec.Command(filepath.Join(bins, "hangar"), "version")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hangar version: %v\n%s", err, stderr.String())
	}
	want := fmt.Sprintf("hangar version %s, commit %s, built %s with %s\n", testVersion, testCommit, testDate, runtime.Version())
	if string(out) != want {
		t.Errorf("hangar version printed %q, want %q", out, want)
	}
}
