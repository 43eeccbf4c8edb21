package main

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/testenv"
)

func TestValidate(t *testing.T) {
	valid := func() options {
		o := options{flyTokenFile: "/tmp/token", rootKeySecret: "hangar-system/hangar-root-key"}
		o.controllers.AppNamePrefix = "hangar-"
		o.controllers.DriftInterval = time.Minute
		o.controllers.ConsistencyWindow = 30 * time.Second
		o.controllers.TransitionPoll = 2 * time.Second
		o.adapter.LeaseTTL = 30 * time.Second
		o.controllers.KeyRotationOverlap = 10 * time.Minute
		o.fleet = fleetOptions{electionID: defaultElectionID, leaseDuration: defaultLeaseDuration,
			renewDeadline: defaultRenewDeadline, retryPeriod: defaultRetryPeriod}
		return o
	}
	cases := []struct {
		name    string
		mutate  func(*options)
		wantErr string
	}{
		{name: "valid", mutate: func(*options) {}},
		{name: "no token", mutate: func(o *options) { o.flyTokenFile = "" }, wantErr: "no Fly API token"},
		{name: "root key secret without namespace", mutate: func(o *options) { o.rootKeySecret = "key" }, wantErr: "--root-key-secret"},
		{name: "prefix upper case", mutate: func(o *options) { o.controllers.AppNamePrefix = "Hangar-" }, wantErr: "--app-name-prefix"},
		{name: "prefix too long", mutate: func(o *options) { o.controllers.AppNamePrefix = strings.Repeat("a", 21) }, wantErr: "--app-name-prefix"},
		{name: "no prefix", mutate: func(o *options) { o.controllers.AppNamePrefix = "" }},
		{name: "drift interval too short", mutate: func(o *options) { o.controllers.DriftInterval = time.Millisecond }, wantErr: "--drift-interval"},
		{name: "no consistency window", mutate: func(o *options) { o.controllers.ConsistencyWindow = 0 }, wantErr: "--fly-consistency-window"},
		{name: "lease shorter than a second", mutate: func(o *options) { o.adapter.LeaseTTL = time.Millisecond }, wantErr: "--fly-lease-ttl"},
		{name: "no key rotation overlap", mutate: func(o *options) { o.controllers.KeyRotationOverlap = 0 }, wantErr: "--key-rotation-overlap"},
		{name: "no transition poll", mutate: func(o *options) { o.controllers.TransitionPoll = -time.Second }, wantErr: "--transition-poll"},
		{name: "router base domain", mutate: func(o *options) { o.controllers.RouterBaseDomain = "Apps.Example.com." }},
		{name: "router base domain not a DNS name", mutate: func(o *options) { o.controllers.RouterBaseDomain = "apps_example" }, wantErr: "--router-base-domain"},
		{name: "short leader election timings", mutate: func(o *options) {
			o.fleet.leaseDuration, o.fleet.renewDeadline, o.fleet.retryPeriod = 4*time.Second, 3*time.Second, 500*time.Millisecond
		}},
		{name: "lease duration not whole seconds", mutate: func(o *options) { o.fleet.leaseDuration = 15500 * time.Millisecond }, wantErr: "--leader-election-lease-duration"},
		{name: "no lease duration", mutate: func(o *options) { o.fleet.leaseDuration = 0 }, wantErr: "--leader-election-lease-duration"},
		{name: "renew deadline as long as the lease", mutate: func(o *options) { o.fleet.renewDeadline = o.fleet.leaseDuration }, wantErr: "--leader-election-renew-deadline"},
		{name: "no renew deadline", mutate: func(o *options) { o.fleet.renewDeadline = 0 }, wantErr: "--leader-election-renew-deadline"},
		{name: "retry period as long as the renew deadline", mutate: func(o *options) { o.fleet.retryPeriod = o.fleet.renewDeadline }, wantErr: "--leader-election-retry-period"},
		{name: "retry period with jitter past the renew deadline", mutate: func(o *options) { o.fleet.retryPeriod = 9 * time.Second }, wantErr: "--leader-election-retry-period"},
		{name: "no retry period", mutate: func(o *options) { o.fleet.retryPeriod = 0 }, wantErr: "--leader-election-retry-period"},
		{name: "lease name", mutate: func(o *options) { o.fleet.electionID = "shard-a.hangar.dev" }},
		{name: "lease name not a name", mutate: func(o *options) { o.fleet.electionID = "Shard A" }, wantErr: "--leader-election-id"},
		{name: "selector", mutate: func(o *options) { o.fleet.selector = "shard in (a,b),tier!=canary" }},
		{name: "selector bad syntax", mutate: func(o *options) { o.fleet.selector = "shard a" }, wantErr: "--selector"},
		{name: "selector bad value", mutate: func(o *options) { o.fleet.selector = "shard=a/b" }, wantErr: "--selector"},
		{name: "selector with leader election on the default lease", mutate: func(o *options) {
			o.leaderElect, o.fleet.selector = true, "shard=a"
		}, wantErr: "--leader-election-id"},
		{name: "selector with leader election on its own lease", mutate: func(o *options) {
			o.leaderElect, o.fleet.selector, o.fleet.electionID = true, "shard=a", "shard-a.hangar.dev"
		}},
	}
	t.Setenv("FLY_API_TOKEN", "")
	for _, tc := range cases {
		o := valid()
		tc.mutate(&o)
		err := o.validate()
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: validate() = %v, want %q", tc.name, err, tc.wantErr)
		}
		if err == nil && (o.fleet.selector != "") != (o.controllers.Shard != nil) {
			t.Errorf("%s: --selector %q gave the controllers the shard %v", tc.name, o.fleet.selector, o.controllers.Shard)
		}
	}
}

// TestSelectorParsesAsKubernetesLabels: the shard is the selector kubectl -l would use, so an
// operator can list a shard's objects with the same string.
func TestSelectorParsesAsKubernetesLabels(t *testing.T) {
	t.Setenv("FLY_API_TOKEN", "fo1_test")
	opts, err := parseFlags([]string{"--selector", "shard in (a,b),tier!=canary"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"shard": "a"}, true},
		{map[string]string{"shard": "b", "tier": "main"}, true},
		{map[string]string{"shard": "a", "tier": "canary"}, false},
		{map[string]string{"shard": "c"}, false},
		{nil, false},
	} {
		if got := opts.controllers.Shard.Matches(labels.Set(tc.labels)); got != tc.want {
			t.Errorf("labels %v: in the shard %v, want %v", tc.labels, got, tc.want)
		}
	}
}

// TestManagerRunsAndStopsCleanly runs the real main path against a real apiserver and the Fly
// emulator: it creates the root key Secret, reconciles a UserApp to Ready, and returns without error
// once its context ends (what SIGTERM does).
func TestManagerRunsAndStopsCleanly(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	sim := flysim.New(flysim.Options{Orgs: []flysim.OrgToken{{Token: "fo1_manager-test", Org: "personal"}}})
	fly := httptest.NewServer(sim)
	t.Cleanup(func() { fly.Close(); sim.Close() })

	dir := t.TempDir()
	kubeconfig, err := env.Kubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	args := []string{
		"--kubeconfig", write("kubeconfig", string(kubeconfig)),
		"--fly-api-url", fly.URL,
		"--fly-token-file", write("token", "fo1_manager-test\n"),
		"--root-key-secret", "default/hangar-root-key",
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "127.0.0.1:0",
	}
	opts, err := parseFlags(args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, opts, logr.Discard()) }()

	app := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "default"}}
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
			return false, err
		}
		return meta.IsStatusConditionTrue(app.Status.Conditions, flyv1alpha1.ReadyCondition), nil
	})
	if err != nil {
		t.Fatalf("UserApp not Ready: %v (conditions %v)", err, app.Status.Conditions)
	}
	var rootKey corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "hangar-root-key"}, &rootKey); err != nil {
		t.Fatalf("root key Secret not created: %v", err)
	}
	if len(rootKey.Data[keys.RootKeySecretKey]) != keys.RootKeySize {
		t.Fatalf("root key has %d bytes", len(rootKey.Data[keys.RootKeySecretKey]))
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("manager stopped with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("manager did not stop after its context ended")
	}
}
