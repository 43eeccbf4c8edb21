// Package tenancy attacks hangar as restricted tenants on the local stack (internal/devstack): each user has rights in its own namespace only, through the real apiserver's RBAC, and every attack must be refused or harmless.
package tenancy

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/devstack"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/internal/keys"
)

// Namespaces: alice is the victim, mallory the attacker; in coop, an author may write UserApps
// and UserMachines but read no Secret (a coordinator's ServiceAccount, say).
const (
	aliceNS   = "tenant-alice"
	malloryNS = "tenant-mallory"
	coopNS    = "tenant-coop"

	aliceHost    = "alice.example.com"
	aliceSubHost = "alice.localhost" // spec.routing.subdomain alice under the stack's base domain
	aliceNetwork = "alice-net"
)

var (
	stack      *devstack.Stack
	httpClient = &http.Client{Timeout: 30 * time.Second}

	alice, mallory, author *tenant

	// victim is what alice has and must keep: her objects, their Fly identifiers and her secrets.
	victim struct {
		app, team  *flyv1alpha1.UserApp
		machine    *flyv1alpha1.UserMachine
		flyApp     string // her main app's Fly app
		teamFlyApp string // her app on the named network aliceNetwork
		machineID  string
		secrets    secretValues
	}
	// neighbour is what the coop's other UserApp has, which the author must not reach.
	neighbour struct {
		app     *flyv1alpha1.UserApp
		flyApp  string
		secrets secretValues
	}
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "hangar-tenancy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	logger := zap.NewNop()
	if os.Getenv("HANGAR_E2E_LOGS") != "" { // as in test/e2e: every component's logs on stderr
		logger, _ = zap.NewDevelopment()
	}
	ctrllog.SetLogger(zapr.NewLogger(logger))
	stack, err = devstack.Start(ctx, devstack.Config{
		StateDir:      dir,
		FlyAPIAddr:    "127.0.0.1:0",
		ProxyListen:   map[int]string{80: "127.0.0.1:0", 9090: "127.0.0.1:0"},
		DriftInterval: 5 * time.Second,
		FlyProfile:    profile(),
		Autostop:      proxy.AutostopOptions{Disabled: true},
		Logger:        zapr.NewLogger(logger),
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
	if err := setUp(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "setting the tenants up:", err)
		return 1
	}
	return m.Run()
}

// profile is the realistic Fly profile (list lag, lost answers, asynchronous apps, typed config,
// secrets lag) at a tenth of its delays.
func profile() flysim.Profile {
	p := flysim.Realistic()
	p.TimeScale = 0.1
	return p
}

// setUp installs hangar's tenant roles, makes the three users, and has alice, mallory and the coop
// author create their objects with their own credentials.
func setUp(ctx context.Context) error {
	admin := stack.Env.Client
	for _, ns := range []string{aliceNS, malloryNS, coopNS} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	if err := installTenantRoles(ctx, stack); err != nil {
		return err
	}
	if err := aggregateClusterRoles(ctx, admin); err != nil {
		return err
	}
	var err error
	// edit and view now hold what they would in a cluster, but the tenants do not rely on hangar's
	// roles being aggregated into them: they are bound to the editor roles explicitly, to edit
	// (or view, for the author, who reads no Secret) for Secrets and Events.
	if alice, err = newTenant(ctx, stack, aliceNS, "deployer", appEditorRole, machineEditorRole, "edit"); err != nil {
		return err
	}
	if mallory, err = newTenant(ctx, stack, malloryNS, "deployer", appEditorRole, machineEditorRole, "edit"); err != nil {
		return err
	}
	if author, err = newTenant(ctx, stack, coopNS, "author", appEditorRole, machineEditorRole, "view"); err != nil {
		return err
	}
	for _, tn := range []*tenant{alice, mallory, author} {
		if err := waitAllowed(ctx, tn.user+" listing UserMachines", func() error {
			return tn.client.List(ctx, &flyv1alpha1.UserMachineList{}, client.InNamespace(tn.ns))
		}); err != nil {
			return err
		}
		if err := waitAllowed(ctx, tn.user+" listing Events", func() error {
			return tn.client.List(ctx, &corev1.EventList{}, client.InNamespace(tn.ns))
		}); err != nil {
			return err
		}
	}
	for _, tn := range []*tenant{alice, mallory} {
		if err := waitAllowed(ctx, tn.user+" listing Secrets", func() error {
			return tn.client.List(ctx, &corev1.SecretList{}, client.InNamespace(tn.ns))
		}); err != nil {
			return err
		}
	}

	aliceApp := newApp(aliceNS, "alice", aliceHost)
	aliceApp.Spec.Routing.Subdomain = "alice"
	aliceApp.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "UPSTREAM_KEY", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "alice-creds", Key: "key"}}}
	team := newApp(aliceNS, "alice-team")
	team.Spec.Network, team.Spec.ShareNetwork = aliceNetwork, true
	malloryApp := newApp(malloryNS, "mallory", "mallory.example.com")
	coopTeam := newApp(coopNS, "team")
	coopTeam.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "SHARED_CONFIG", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "coop-shared", Key: "config"}}}
	steps := []struct {
		c    client.Client
		objs []client.Object
	}{
		{alice.client, []client.Object{
			sharedSecret(aliceNS, "alice-creds", map[string]string{"key": "alice-upstream-key-" + randomHex()}),
			aliceApp, newMachine(aliceNS, "alice-ws", "alice"), team,
		}},
		{mallory.client, []client.Object{malloryApp, newMachine(malloryNS, "mallory-ws", "mallory")}},
		// The coop's Secrets are written by someone else: the author may not touch them.
		{admin, []client.Object{
			sharedSecret(coopNS, "coop-shared", map[string]string{"config": "coop-shared-config-" + randomHex()}),
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db-password", Namespace: coopNS}, StringData: map[string]string{"password": "coop-db-password-" + randomHex()}},
		}},
		{author.client, []client.Object{coopTeam, newMachine(coopNS, "team-ws", "team")}},
	}
	for _, step := range steps {
		for _, obj := range step.objs {
			if err := step.c.Create(ctx, obj); err != nil {
				return fmt.Errorf("creating %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
			}
		}
	}
	for _, ns := range []string{aliceNS, malloryNS, coopNS} {
		if err := stack.WaitReady(ctx, ns, 2*time.Minute); err != nil {
			return err
		}
	}
	return recordSecrets(ctx)
}

// recordSecrets reads, as the administrator, what alice and the coop's team must keep.
func recordSecrets(ctx context.Context) error {
	admin := stack.Env.Client
	victim.app = &flyv1alpha1.UserApp{}
	victim.team = &flyv1alpha1.UserApp{}
	victim.machine = &flyv1alpha1.UserMachine{}
	neighbour.app = &flyv1alpha1.UserApp{}
	for name, obj := range map[client.ObjectKey]client.Object{
		{Namespace: aliceNS, Name: "alice"}:      victim.app,
		{Namespace: aliceNS, Name: "alice-team"}: victim.team,
		{Namespace: aliceNS, Name: "alice-ws"}:   victim.machine,
		{Namespace: coopNS, Name: "team"}:        neighbour.app,
	} {
		if err := admin.Get(ctx, name, obj); err != nil {
			return err
		}
	}
	victim.flyApp, victim.teamFlyApp, victim.machineID = victim.app.Status.AppName, victim.team.Status.AppName, victim.machine.Status.MachineID
	neighbour.flyApp = neighbour.app.Status.AppName

	secretData := func(ns, name, key string) string {
		var s corev1.Secret
		if err := admin.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			return ""
		}
		return string(s.Data[key])
	}
	flySecret := func(flyApp, name string) string {
		values, _ := stack.Fly.Secrets(flyApp)
		return values[name]
	}
	victim.secrets = secretValues{
		"management token":    secretData(aliceNS, victim.app.Status.ConnectionSecretName, controllers.ConnectionManagementToken),
		"upstream credential": secretData(aliceNS, "alice-creds", "key"),
		"replay key":          flySecret(victim.flyApp, replayKeyName),
	}
	neighbour.secrets = secretValues{
		"management token":  secretData(coopNS, neighbour.app.Status.ConnectionSecretName, controllers.ConnectionManagementToken),
		"database password": secretData(coopNS, "db-password", "password"),
		"replay key":        flySecret(neighbour.flyApp, replayKeyName),
	}
	for _, values := range []secretValues{victim.secrets, neighbour.secrets} {
		for what, v := range values {
			if v == "" {
				return fmt.Errorf("could not read the %s to guard", what)
			}
		}
	}
	return nil
}

// TestTenantsReachOnlyTheirOwnNamespace: the baseline every other attack builds on. Each user's
// credentials open its own namespace only, and the coop author reads no Secret.
func TestTenantsReachOnlyTheirOwnNamespace(t *testing.T) {
	ctx := context.Background()
	t.Run("mallory reading alice's connection Secret", func(t *testing.T) {
		err := mallory.client.Get(ctx, client.ObjectKey{Namespace: aliceNS, Name: victim.app.Status.ConnectionSecretName}, &corev1.Secret{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("got %v, want Forbidden", err)
		}
		if err := mallory.client.List(ctx, &corev1.SecretList{}, client.InNamespace(aliceNS)); !apierrors.IsForbidden(err) {
			t.Errorf("listing: got %v, want Forbidden", err)
		}
	})
	t.Run("mallory listing alice's UserApps and Events", func(t *testing.T) {
		for _, list := range []client.ObjectList{&flyv1alpha1.UserAppList{}, &flyv1alpha1.UserMachineList{}, &corev1.EventList{}} {
			if err := mallory.client.List(ctx, list, client.InNamespace(aliceNS)); !apierrors.IsForbidden(err) {
				t.Errorf("%T: got %v, want Forbidden", list, err)
			}
		}
	})
	t.Run("mallory creating a UserMachine in alice's namespace", func(t *testing.T) {
		err := mallory.client.Create(ctx, newMachine(aliceNS, "planted", "alice"), client.DryRunAll)
		if !apierrors.IsForbidden(err) {
			t.Errorf("got %v, want Forbidden", err)
		}
	})
	t.Run("the coop author reading its namespace's Secrets", func(t *testing.T) {
		err := author.client.Get(ctx, client.ObjectKey{Namespace: coopNS, Name: neighbour.app.Status.ConnectionSecretName}, &corev1.Secret{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("get: got %v, want Forbidden", err)
		}
		if err := author.client.List(ctx, &corev1.SecretList{}, client.InNamespace(coopNS)); !apierrors.IsForbidden(err) {
			t.Errorf("list: got %v, want Forbidden", err)
		}
		// What the author may do, it can: read the UserApps it wrote and their status.
		if err := author.client.Get(ctx, client.ObjectKeyFromObject(neighbour.app), &flyv1alpha1.UserApp{}); err != nil {
			t.Errorf("reading a UserApp: %v", err)
		}
	})
}

// TestBuiltInRolesCarryHangarsRoles: with aggregation (done here as the cluster's controller
// would), a namespace's view role reads UserApps and UserMachines but writes none, and its edit
// role writes them.
func TestBuiltInRolesCarryHangarsRoles(t *testing.T) {
	ctx := context.Background()
	viewer, err := newTenant(ctx, stack, malloryNS, "viewer", "view")
	if err != nil {
		t.Fatal(err)
	}
	editor, err := newTenant(ctx, stack, malloryNS, "editor", "edit")
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range []*tenant{viewer, editor} {
		if err := waitAllowed(ctx, tn.user+" listing UserApps", func() error {
			return tn.client.List(ctx, &flyv1alpha1.UserAppList{}, client.InNamespace(malloryNS))
		}); err != nil {
			t.Fatal(err)
		}
		if err := tn.client.List(ctx, &flyv1alpha1.UserMachineList{}, client.InNamespace(malloryNS)); err != nil {
			t.Errorf("%s listing UserMachines: %v", tn.user, err)
		}
	}
	if err := viewer.client.Create(ctx, newApp(malloryNS, "viewer-app"), client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Errorf("view creating a UserApp: got %v, want Forbidden", err)
	}
	if err := viewer.client.Create(ctx, newMachine(malloryNS, "viewer-ws", "mallory"), client.DryRunAll); !apierrors.IsForbidden(err) {
		t.Errorf("view creating a UserMachine: got %v, want Forbidden", err)
	}
	if err := editor.client.Create(ctx, newApp(malloryNS, "editor-app"), client.DryRunAll); err != nil {
		t.Errorf("edit creating a UserApp: %v", err)
	}
	if err := editor.client.Create(ctx, newMachine(malloryNS, "editor-ws", "mallory"), client.DryRunAll); err != nil {
		t.Errorf("edit creating a UserMachine: %v", err)
	}
}

// TestAdoptingAnotherTenantsFlyApp: mallory names alice's Fly app with the adopt annotation and a
// machine in it. She is refused, learns nothing, and deleting her UserApp leaves alice's app and
// machine running and serving.
func TestAdoptingAnotherTenantsFlyApp(t *testing.T) {
	namesBefore := flySecretNames(victim.flyApp)
	grab := newApp(malloryNS, "grab")
	grab.Spec.AppName = victim.flyApp
	grab.Annotations = map[string]string{flyv1alpha1.AdoptAnnotation: "true"}
	grabWS := newMachine(malloryNS, "grab-ws", "grab")
	create(t, mallory.client, grab, grabWS)

	t.Run("refused as NameTaken, naming no other tenant", func(t *testing.T) {
		c := conditionOf(t, mallory.client, grab, flyv1alpha1.AppCreatedCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
		if strings.Contains(c.Message, "("+victim.app.Name+")") {
			t.Errorf("the refusal names alice's UserApp: %q", c.Message)
		}
		if grab.Status.AppName != "" || grab.Status.ConnectionSecretName != "" {
			t.Errorf("mallory recorded Fly app %q and connection Secret %q", grab.Status.AppName, grab.Status.ConnectionSecretName)
		}
		noLeak(t, mallory, victim.secrets, victim.flyApp, victim.teamFlyApp)
	})
	t.Run("alice's Fly app untouched", func(t *testing.T) {
		if got := flySecretNames(victim.flyApp); !slices.Equal(got, namesBefore) {
			t.Errorf("alice's Fly secrets are now %v, were %v", got, namesBefore)
		}
		if got := flySecret(t, victim.flyApp, keys.ManagementTokenSecret); got != victim.secrets["management token"] {
			t.Error("alice's management token changed on Fly")
		}
		if ids := machineIDs(victim.flyApp); !slices.Equal(ids, []string{victim.machineID}) {
			t.Errorf("alice's Fly app has machines %v, want only hers (%s)", ids, victim.machineID)
		}
	})
	t.Run("deleting the attacker's UserApp leaves alice's app serving", func(t *testing.T) {
		deleteAndWait(t, mallory.client, grabWS, grab)
		if info, ok := stack.Fly.App(victim.flyApp); !ok || info.Deleted {
			t.Fatal("alice's Fly app was deleted with mallory's UserApp")
		}
		if m, ok := stack.Fly.Machine(victim.flyApp, victim.machineID); !ok || m.State != flysim.StateStarted {
			t.Fatalf("alice's machine is %q", m.State)
		}
		servesAlice(t, aliceHost)
		ready(t, stack.Env.Client, victim.app, victim.machine)
	})
}

// TestJoiningAnotherTenantsNetwork: mallory asks for a network alice's apps use: by spec.network,
// even with shareNetwork (sharing stops at the namespace), or by naming her Fly app after it (a
// UserApp without spec.network gets a network named after its app). Each is refused before any of
// her apps lands on it, and deleting the refused UserApp leaves alice's apps alone. Names of the
// n- form hangar gives isolated networks cannot even be asked for.
func TestJoiningAnotherTenantsNetwork(t *testing.T) {
	get(t, stack.Env.Client, victim.app)
	isolated := victim.app.Status.Network
	cases := []struct {
		name             string
		network, flyName string
		share            bool
	}{
		{"alice's isolated network, by spec.network", isolated, "", true},
		{"alice's named network, shared on both sides", aliceNetwork, "", true},
		{"a Fly app named after alice's named network", "", aliceNetwork, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := newApp(malloryNS, fmt.Sprintf("net-join-%d", i))
			app.Spec.Network, app.Spec.AppName, app.Spec.ShareNetwork = tc.network, tc.flyName, tc.share
			create(t, mallory.client, app)
			c := conditionOf(t, mallory.client, app, flyv1alpha1.AppCreatedCondition, metav1.ConditionFalse, flyv1alpha1.NetworkInUseReason)
			// The message may repeat what mallory asked for, and nothing else of alice's.
			told := strings.ReplaceAll(c.Message, cmp.Or(tc.network, tc.flyName), "<asked>")
			if !strings.Contains(told, "in another namespace") || strings.Contains(told, aliceNS) {
				t.Errorf("message %q should say only \"in another namespace\"", c.Message)
			}
			if app.Status.AppName != "" {
				t.Errorf("the refused app got Fly app %s", app.Status.AppName)
			}
			noLeak(t, mallory, victim.secrets, victim.flyApp, victim.teamFlyApp)
			deleteAndWait(t, mallory.client, app)
			for network, want := range map[string]string{isolated: victim.flyApp, aliceNetwork: victim.teamFlyApp} {
				var on []string
				for _, a := range stack.Fly.Apps(devstack.Org) {
					if a.Network == network {
						on = append(on, a.Name)
					}
				}
				if !slices.Equal(on, []string{want}) {
					t.Errorf("Fly apps on %s: %v, want only alice's %s", network, on, want)
				}
			}
		})
	}
	t.Run("a network of hangar's n- form", func(t *testing.T) {
		app := newApp(malloryNS, "net-join-reserved")
		app.Spec.Network = flyv1alpha1.IsolatedNetworkName("0" + victim.flyApp)
		if err := mallory.client.Create(context.Background(), app, client.DryRunAll); !apierrors.IsInvalid(err) {
			t.Errorf("naming network %s: got %v, want Invalid", app.Spec.Network, err)
		}
	})
}

// TestReadingSecretsThroughTheManager: spec.secrets is no way around RBAC. Mallory names alice's
// Secrets (they resolve in her own namespace, where they do not exist); the coop author, who may
// read no Secret, names its neighbour's connection Secret and an unlabelled Secret of its own
// namespace. Neither value reaches a Fly app or machine of the attacker.
func TestReadingSecretsThroughTheManager(t *testing.T) {
	ref := func(env, secret, key string) flyv1alpha1.AppSecret {
		return flyv1alpha1.AppSecret{Name: env, SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: secret, Key: key}}
	}
	t.Run("mallory naming alice's connection Secret and credentials", func(t *testing.T) {
		app := newApp(malloryNS, "peek")
		app.Spec.Secrets = []flyv1alpha1.AppSecret{
			ref("STOLEN_TOKEN", victim.app.Status.ConnectionSecretName, controllers.ConnectionManagementToken),
			ref("STOLEN_KEY", "alice-creds", "key"),
		}
		create(t, mallory.client, app, newMachine(malloryNS, "peek-ws", "peek"))
		t.Cleanup(func() {
			deleteAndWait(t, mallory.client, newMachine(malloryNS, "peek-ws", "peek"), app)
		})
		conditionOf(t, mallory.client, app, flyv1alpha1.SecretsSyncedCondition, metav1.ConditionFalse, flyv1alpha1.SecretNotFoundReason)
		noLeak(t, mallory, victim.secrets, victim.flyApp, victim.teamFlyApp)
	})
	t.Run("the coop author naming its neighbour's connection Secret and an unlabelled Secret", func(t *testing.T) {
		for i, sec := range []flyv1alpha1.AppSecret{
			ref("STOLEN_TOKEN", neighbour.app.Status.ConnectionSecretName, controllers.ConnectionManagementToken),
			ref("STOLEN_PASSWORD", "db-password", "password"),
		} {
			app := newApp(coopNS, fmt.Sprintf("exfil-%d", i))
			app.Spec.Secrets = []flyv1alpha1.AppSecret{sec}
			um := newMachine(coopNS, app.Name+"-ws", app.Name)
			create(t, author.client, app, um)
			t.Cleanup(func() { deleteAndWait(t, author.client, um, app) })
			conditionOf(t, author.client, app, flyv1alpha1.SecretsSyncedCondition, metav1.ConditionFalse, flyv1alpha1.SecretNotFoundReason)
		}
		noLeak(t, author, neighbour.secrets, neighbour.flyApp)
	})
	t.Run("a Secret labelled for apps does reach the coop's machines", func(t *testing.T) {
		// The refusals above mean something only if the way they were refused works at all.
		var shared corev1.Secret
		if err := stack.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: coopNS, Name: "coop-shared"}, &shared); err != nil {
			t.Fatal(err)
		}
		um := &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Namespace: coopNS, Name: "team-ws"}}
		get(t, stack.Env.Client, um)
		boot, _, ok := stack.Fly.MachineSecrets(neighbour.flyApp, um.Status.MachineID)
		if !ok || boot["SHARED_CONFIG"] != string(shared.Data["config"]) {
			t.Errorf("the coop's machine booted without SHARED_CONFIG from the labelled Secret")
		}
	})
	t.Run("the coop author adopting its neighbour's Fly app", func(t *testing.T) {
		app := newApp(coopNS, "team-copy")
		app.Spec.AppName = neighbour.flyApp
		app.Annotations = map[string]string{flyv1alpha1.AdoptAnnotation: "true"}
		create(t, author.client, app)
		t.Cleanup(func() { deleteAndWait(t, author.client, app) })
		conditionOf(t, author.client, app, flyv1alpha1.AppCreatedCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
		if app.Status.ConnectionSecretName != "" {
			t.Errorf("the copy got a connection Secret %s", app.Status.ConnectionSecretName)
		}
		noLeak(t, author, neighbour.secrets, neighbour.flyApp)
	})
}

// TestHijackingAnotherTenantsHost: mallory claims alice's host with a UserApp (and alice's
// subdomain) and with a UserMachine of another app of hers. Alice's host keeps reaching alice's
// machine through the proxy, and mallory's objects say the host is not theirs.
func TestHijackingAnotherTenantsHost(t *testing.T) {
	hijack := newApp(malloryNS, "hijack", aliceHost)
	hijack.Spec.Routing.Subdomain = "alice"
	base := newApp(malloryNS, "hijack-base")
	hijackWS := newMachine(malloryNS, "hijack-ws", "hijack-base")
	hijackWS.Spec.Routing = &flyv1alpha1.MachineRouting{Hosts: []string{aliceHost}}
	create(t, mallory.client, hijack, base, hijackWS)
	t.Cleanup(func() { deleteAndWait(t, mallory.client, hijackWS, base, hijack) })
	// The attacker's app and machine exist on Fly, so the router could send alice's host to them.
	conditionOf(t, mallory.client, hijack, flyv1alpha1.AppCreatedCondition, metav1.ConditionTrue, anyReason)
	conditionOf(t, mallory.client, hijackWS, flyv1alpha1.MachineCreatedCondition, metav1.ConditionTrue, anyReason)

	t.Run("alice's host still reaches alice's machine", func(t *testing.T) { servesAlice(t, aliceHost) })
	t.Run("alice's subdomain still reaches alice's machine", func(t *testing.T) { servesAlice(t, aliceSubHost) })
	t.Run("the attacker's objects are told HostConflict", func(t *testing.T) {
		for _, obj := range []object{hijack, hijackWS} {
			c := conditionOf(t, mallory.client, obj, flyv1alpha1.HostsAcceptedCondition, metav1.ConditionFalse, flyv1alpha1.HostConflictReason)
			if !strings.Contains(c.Message, aliceHost) || strings.Contains(c.Message, aliceNS) {
				t.Errorf("%s: message %q should name the host and not alice's namespace", obj.GetName(), c.Message)
			}
		}
		noLeak(t, mallory, victim.secrets, victim.flyApp, victim.teamFlyApp)
	})
}

// TestReservedEnvironmentNames: a UserMachine may not set FLY_* or HANGAR_* variables, in any
// letter case (Fly's own, and hangar's keys the machine verifies requests with).
func TestReservedEnvironmentNames(t *testing.T) {
	for _, name := range []string{"FLY_APP_NAME", "FLY_MACHINE_ID", keys.ReplayKeySecret, keys.ManagementTokenSecret, "hangar_replay_key"} {
		t.Run("spec.env "+name, func(t *testing.T) {
			um := newMachine(malloryNS, "env-ws", "mallory")
			um.Spec.Env = map[string]string{name: victim.flyApp}
			if err := mallory.client.Create(context.Background(), um, client.DryRunAll); !apierrors.IsInvalid(err) {
				t.Errorf("got %v, want Invalid", err)
			}
		})
	}
	t.Run("an ordinary name is accepted", func(t *testing.T) {
		um := newMachine(malloryNS, "env-ws", "mallory")
		um.Spec.Env = map[string]string{"APP_MODE": "dev"}
		if err := mallory.client.Create(context.Background(), um, client.DryRunAll); err != nil {
			t.Error(err)
		}
	})
}

// TestManagementListenerRefusesOtherTenants: mallory's own management token opens her machine
// and nothing of alice's, however the request names alice's machine; and without a valid token a
// target that exists answers exactly as one that does not.
func TestManagementListenerRefusesOtherTenants(t *testing.T) {
	malloryApp := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Namespace: malloryNS, Name: "mallory"}}
	token := managementToken(t, mallory.client, malloryApp)
	aliceTarget := aliceNS + "/alice-ws"
	own := management(t, malloryNS+"/mallory-ws", "Bearer "+token)
	if own.code != http.StatusOK || own.machine == nil || !own.machine.ManagementTokenMatched || own.machine.App != malloryApp.Status.AppName {
		t.Fatalf("mallory's token on her own machine: %d %s", own.code, own.body)
	}

	t.Run("the attacker's token naming alice's machine", func(t *testing.T) {
		a := management(t, aliceTarget, "Bearer "+token)
		if a.code != http.StatusUnauthorized || a.machine != nil {
			t.Errorf("%d %s, want the router's 401", a.code, a.body)
		}
	})
	t.Run("the attacker's token with alice's host and no target", func(t *testing.T) {
		a := request(t, 9090, aliceHost, http.Header{"Authorization": {"Bearer " + token}})
		if a.code != http.StatusUnauthorized || a.machine != nil {
			t.Errorf("%d %s, want the router's 401", a.code, a.body)
		}
	})
	t.Run("the attacker's own target under alice's host", func(t *testing.T) {
		a := request(t, 9090, aliceHost, http.Header{"Authorization": {"Bearer " + token}, "Hangar-Target": {malloryNS + "/mallory-ws"}})
		if a.code != http.StatusMisdirectedRequest || a.machine != nil {
			t.Errorf("%d %s, want the router's 421", a.code, a.body)
		}
	})
	t.Run("without a valid token an existing and a missing target answer alike", func(t *testing.T) {
		for name, auth := range map[string]string{"no": "", "a wrong": "Bearer not-a-token", "the attacker's": "Bearer " + token} {
			existing := management(t, aliceTarget, auth)
			if existing.code != http.StatusUnauthorized || existing.machine != nil {
				t.Errorf("%s token: %d %s, want the router's 401", name, existing.code, existing.body)
			}
			for _, missing := range []string{aliceNS + "/no-such-machine", "no-such-namespace/alice-ws"} {
				if diff := sameAnswer(existing, management(t, missing, auth)); diff != "" {
					t.Errorf("%s token: %s and %s answer differently: %s", name, aliceTarget, missing, diff)
				}
			}
		}
	})
}

// TestAdoptingAFlyAppNoUserAppOwns: the adopt annotation is a tenant's to set, so it must not hand
// a tenant a Fly app outside every namespace: here the router's own app, the entry of every
// request. Mallory asks for it with a machine of hers in it. She must be refused, the router app
// must keep its secrets and machines, and concurrent management requests carrying alice's token
// (which the proxy spreads over the entry app's machines) must reach no machine of mallory's.
// The attack UserApp orphans its Fly app, so a failure here does not delete the router app and
// take the rest of the suite down with it.
func TestAdoptingAFlyAppNoUserAppOwns(t *testing.T) {
	namesBefore := flySecretNames(devstack.RouterApp)
	machinesBefore := machineIDs(devstack.RouterApp)
	app := newApp(malloryNS, "grab-router")
	app.Spec.AppName = devstack.RouterApp
	app.Spec.DeletionPolicy = flyv1alpha1.DeletionPolicyOrphan
	app.Annotations = map[string]string{flyv1alpha1.AdoptAnnotation: "true"}
	um := newMachine(malloryNS, "grab-router-ws", "grab-router")
	um.Spec.DeletionPolicy = flyv1alpha1.DeletionPolicyDelete
	create(t, mallory.client, app, um)
	t.Cleanup(func() { deleteAndWait(t, mallory.client, um, app) })
	// Settled: AppCreated is decided one way or the other (not still being worked on).
	eventually(t, "mallory's UserApp settled", func() string {
		get(t, mallory.client, app)
		c := meta.FindStatusCondition(app.Status.Conditions, flyv1alpha1.AppCreatedCondition)
		if c == nil || c.Reason == flyv1alpha1.ReconcilingReason || c.Reason == flyv1alpha1.CreatePendingReason {
			return fmt.Sprintf("AppCreated %+v", c)
		}
		if c.Status == metav1.ConditionTrue {
			// Adopted: give her machine the chance to land, so the checks below see the harm.
			get(t, mallory.client, um)
			if !meta.IsStatusConditionTrue(um.Status.Conditions, flyv1alpha1.ReadyCondition) {
				return "adopted; waiting for her machine"
			}
		}
		return ""
	})

	t.Run("refused as NameTaken", func(t *testing.T) {
		c := meta.FindStatusCondition(app.Status.Conditions, flyv1alpha1.AppCreatedCondition)
		if c.Status != metav1.ConditionFalse || c.Reason != flyv1alpha1.NameTakenReason {
			t.Errorf("AppCreated=%s/%s (%s), want False/NameTaken", c.Status, c.Reason, c.Message)
		}
		if app.Status.ConnectionSecretName != "" {
			t.Errorf("mallory got a connection Secret for the router's app: %s", app.Status.ConnectionSecretName)
		}
	})
	t.Run("the router's app keeps its secrets and machines", func(t *testing.T) {
		if got := flySecretNames(devstack.RouterApp); !slices.Equal(got, namesBefore) {
			t.Errorf("the router app's Fly secrets are now %v, were %v", got, namesBefore)
		}
		if got := machineIDs(devstack.RouterApp); !slices.Equal(got, machinesBefore) {
			t.Errorf("the router app's machines are now %v, were %v", got, machinesBefore)
		}
	})
	t.Run("alice's management requests reach no machine of the attacker's", func(t *testing.T) {
		answers := make([]answer, 30)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() { answers[i] = management(t, aliceNS+"/alice-ws", "Bearer "+victim.secrets["management token"]) })
		}
		wg.Wait()
		stolen := 0
		for _, a := range answers {
			if a.machine != nil && (a.machine.App != victim.flyApp || a.machine.Machine != victim.machineID) {
				stolen++
			}
		}
		if stolen > 0 {
			t.Errorf("%d of %d requests carrying alice's management token reached another machine of the router's app", stolen, len(answers))
		}
	})
}

// TestKeysDoNotOutliveTheirUserApp: a UserApp deleted and created again under the same name is a
// new tenant, and so is another namespace's UserApp taking a Fly app name once it is free: each
// gets a management token and replay key of its own, and the old token does not open the new
// app's machine. (Last: it waits for whole deletes and creates.)
func TestKeysDoNotOutliveTheirUserApp(t *testing.T) {
	t.Run("the same UserApp created again", func(t *testing.T) {
		keysAreNew(t, mallory, mallory, "reborn", "")
	})
	t.Run("another tenant taking a released Fly app name", func(t *testing.T) {
		keysAreNew(t, mallory, alice, "handoff", "handoff-"+randomHex()[:8])
	})
}

// keysAreNew has first create a UserApp (Fly app flyName, derived when empty) and a machine, read
// its keys, delete both, and second create them again under the same names.
func keysAreNew(t *testing.T, first, second *tenant, name, flyName string) {
	var oldToken, oldReplayKey string
	for i, tn := range []*tenant{first, second} {
		app, um := newApp(tn.ns, name), newMachine(tn.ns, name+"-ws", name)
		app.Spec.AppName = flyName
		create(t, tn.client, app, um)
		ready(t, tn.client, app, um)
		token := managementToken(t, tn.client, app)
		target := tn.ns + "/" + um.Name
		eventually(t, "the app's token opening its machine", func() string {
			a := management(t, target, "Bearer "+token)
			if a.code != http.StatusOK || a.machine == nil || !a.machine.ManagementTokenMatched {
				return fmt.Sprintf("%d %s", a.code, a.body)
			}
			return ""
		})
		replayKey := flySecret(t, app.Status.AppName, replayKeyName)
		if i == 0 {
			oldToken, oldReplayKey = token, replayKey
			deleteAndWait(t, tn.client, um, app)
			eventually(t, "the first Fly app gone", func() string {
				if info, ok := stack.Fly.App(app.Status.AppName); ok && !info.Deleted {
					return "still there"
				}
				return ""
			})
			continue
		}
		if token == oldToken {
			t.Error("the new UserApp got the deleted one's management token")
		}
		if replayKey == oldReplayKey {
			t.Error("the new UserApp got the deleted one's replay key")
		}
		if a := management(t, target, "Bearer "+oldToken); a.code != http.StatusUnauthorized || a.machine != nil {
			t.Errorf("the old token on the new machine: %d %s, want the router's 401", a.code, a.body)
		}
		t.Cleanup(func() { deleteAndWait(t, tn.client, um, app) })
	}
}
