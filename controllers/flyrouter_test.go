package controllers_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/keys"
)

// routerHarness is a harness whose manager runs the FlyRouter controller, with the router's
// ServiceAccount and the root key Secret in the harness namespace (standing for the manager's).
func routerHarness(t *testing.T, renewAfter time.Duration) *harness {
	t.Helper()
	ns := fmt.Sprintf("ctrl-%d", nsCounter.Load()+1) // the namespace newHarness is about to make
	h := newHarness(t, harnessOptions{flyRouter: &controllers.FlyRouterOptions{
		Namespace:     ns,
		RootKeySecret: types.NamespacedName{Namespace: ns, Name: "hangar-root-key"},
		RenewAfter:    renewAfter,
		DrainDelay:    200 * time.Millisecond,
	}})
	if h.ns != ns {
		t.Fatalf("harness namespace %s, want %s", h.ns, ns)
	}
	h.create(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: flyv1alpha1.DefaultRouterServiceAccount}})
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "hangar-root-key"},
		Data: map[string][]byte{keys.RootKeySecretKey: keys.GenerateRootKey()}})
	return h
}

func newFlyRouter(h *harness, image string) *flyv1alpha1.FlyRouter {
	return &flyv1alpha1.FlyRouter{
		ObjectMeta: metav1.ObjectMeta{Name: h.ns},
		Spec: flyv1alpha1.FlyRouterSpec{
			Regions: []flyv1alpha1.RouterRegion{{Region: "ord", Machines: 2}, {Region: "ams", Machines: 1}},
			Image:   image,
			APIServer: flyv1alpha1.RouterAPIServer{
				URL:    env.Config.Host,
				CAData: string(env.Config.CAData),
			},
			BaseDomain:    testBaseDomain,
			TokenLifetime: &metav1.Duration{Duration: 10 * time.Minute},
		},
	}
}

// createRouter creates fr (cluster-scoped) and deletes it at the end of the test.
func createRouter(t *testing.T, fr *flyv1alpha1.FlyRouter) {
	t.Helper()
	if err := env.Client.Create(context.Background(), fr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), fr) })
}

// routerMachines are the router app's live machines.
func routerMachines(h *harness, app string) []flysim.MachineInfo {
	var out []flysim.MachineInfo
	for _, m := range h.sim.Machines(app) {
		if m.State != "destroyed" && m.State != "destroying" {
			out = append(out, m)
		}
	}
	return out
}

// serving counts, per region, the machines the Fly Proxy may send requests to and that answer.
func serving(h *harness, app string) map[string]int {
	out := map[string]int{}
	for _, m := range routerMachines(h, app) {
		if m.State == "started" && !m.Cordoned {
			out[m.Region]++
		}
	}
	return out
}

// availabilityWatch samples the emulator's machine states until stopped and records every moment a
// region that served before had no machine serving.
type availabilityWatch struct {
	stop func() []string
}

func watchAvailability(h *harness, app string, regions ...string) availabilityWatch {
	done := make(chan struct{})
	var mu sync.Mutex
	var gaps []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
			s := serving(h, app)
			for _, r := range regions {
				if s[r] == 0 {
					mu.Lock()
					gaps = append(gaps, fmt.Sprintf("%s: no machine serving in %s", time.Now().Format("15:04:05.000"), r))
					mu.Unlock()
				}
			}
		}
	})
	return availabilityWatch{stop: func() []string {
		close(done)
		wg.Wait()
		return gaps
	}}
}

// tokenOf reads the token out of the kubeconfig the router app's machines boot with.
func tokenOf(t *testing.T, h *harness, app string) string {
	t.Helper()
	secrets, _ := h.sim.Secrets(app)
	raw, ok := secrets[controllers.RouterSecretKubeconfig]
	if !ok {
		t.Fatalf("router app %s has no %s secret", app, controllers.RouterSecretKubeconfig)
	}
	cfg, err := clientcmd.Load([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if cluster := cfg.Clusters[ctx.Cluster]; cluster.Server != env.Config.Host || len(cluster.CertificateAuthorityData) == 0 {
		t.Fatalf("kubeconfig cluster %+v, want server %s with the CA", cluster, env.Config.Host)
	}
	return cfg.AuthInfos[ctx.AuthInfo].Token
}

// authenticated asks the apiserver whether token is valid, and as whom.
func authenticated(t *testing.T, token string) (bool, string) {
	t.Helper()
	review := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
	if err := env.Client.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	return review.Status.Authenticated, review.Status.User.Username
}

func TestFlyRouterDeploys(t *testing.T) {
	h := routerHarness(t, 0)
	fr := newFlyRouter(h, "registry.fly.io/hangar-router:v1")
	createRouter(t, fr)
	h.ready(fr)
	h.get(fr)
	st := fr.Status
	app := st.AppName

	info, ok := h.sim.App(app)
	if !ok {
		t.Fatalf("router app %s not on Fly", app)
	}
	if len(st.PublicIPs) == 0 || st.PrivateIP == "" {
		t.Errorf("status addresses public %v, Flycast %q: want both", st.PublicIPs, st.PrivateIP)
	}
	if info.Org != testOrg {
		t.Errorf("router app org %s, want %s", info.Org, testOrg)
	}
	secrets, version := h.sim.Secrets(app)
	for _, name := range []string{controllers.RouterSecretKubeconfig, controllers.RouterSecretRootKey} {
		if _, ok := secrets[name]; !ok {
			t.Errorf("router app secrets %v lack %s", keysOf(secrets), name)
		}
	}
	if !slices.ContainsFunc(keysOf(secrets), keys.IsOwnerMarker) {
		t.Errorf("router app secrets %v lack an owner marker", keysOf(secrets))
	}
	var root corev1.Secret
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: "hangar-root-key"}, &root); err != nil {
		t.Fatal(err)
	}
	if got := secrets[controllers.RouterSecretRootKey]; got != base64.StdEncoding.EncodeToString(root.Data[keys.RootKeySecretKey]) {
		t.Error("HANGAR_ROOT_KEY is not the root key Secret's key, base64")
	}
	if int64(version) != st.SecretsVersion {
		t.Errorf("status secretsVersion %d, Fly has %d", st.SecretsVersion, version)
	}

	machines := routerMachines(h, app)
	perRegion := map[string]int{}
	for _, m := range machines {
		perRegion[m.Region]++
		cfg := machineConfig(t, m)
		if cfg["image"] != "registry.fly.io/hangar-router:v1" {
			t.Errorf("machine %s image %v", m.ID, cfg["image"])
		}
		ports := map[float64][]any{}
		for _, svc := range cfg["services"].([]any) {
			s := svc.(map[string]any)
			for _, p := range s["ports"].([]any) {
				port := p.(map[string]any)
				ports[port["port"].(float64)] = append(port["handlers"].([]any), s["internal_port"])
			}
		}
		for public, internal := range map[float64]float64{80: 8080, 443: 8080, 9090: 9090} {
			if got := ports[public]; len(got) == 0 || got[len(got)-1] != internal {
				t.Errorf("machine %s: public port %v → %v, want internal %v", m.ID, public, got, internal)
			}
		}
		check, _ := cfg["checks"].(map[string]any)["readyz"].(map[string]any)
		if check["path"] != "/readyz" || check["port"] != float64(8082) || check["type"] != "http" {
			t.Errorf("machine %s readiness check %v, want http GET :8082/readyz", m.ID, check)
		}
		env := cfg["env"].(map[string]any)
		if env["HANGAR_ROUTER_KUBECONFIG_ENV"] != controllers.RouterSecretKubeconfig || env["HANGAR_ROUTER_BASE_DOMAIN"] != testBaseDomain ||
			env["HANGAR_ROUTER_ACTIVITY_NAMESPACE"] != h.ns {
			t.Errorf("machine %s env %v: want the router's settings", m.ID, env)
		}
		if m.SecretsVersion != version {
			t.Errorf("machine %s booted with secrets version %d, want %d", m.ID, m.SecretsVersion, version)
		}
	}
	if perRegion["ord"] != 2 || perRegion["ams"] != 1 || len(machines) != 3 {
		t.Errorf("machines per region %v (%d in all), want ord 2, ams 1", perRegion, len(machines))
	}
	if st.RegionsReady != "2/2" || st.Image != "registry.fly.io/hangar-router:v1" || st.CredentialExpiry == nil || st.CredentialRenewalTime == nil {
		t.Errorf("status regions %q image %q expiry %v renewal %v", st.RegionsReady, st.Image, st.CredentialExpiry, st.CredentialRenewalTime)
	}
	if lifetime := st.CredentialExpiry.Sub(st.CredentialRenewalTime.Time); lifetime < 3*time.Minute || lifetime > 4*time.Minute {
		t.Errorf("renewal %s before expiry, want a third of the 10m lifetime", lifetime)
	}
	for _, c := range []string{flyv1alpha1.AppCreatedCondition, flyv1alpha1.AddressesReadyCondition, flyv1alpha1.CredentialsReadyCondition, flyv1alpha1.MachinesReadyCondition} {
		h.condition(fr, c, metav1.ConditionTrue, "")
	}
	token := tokenOf(t, h, app)
	ok, user := authenticated(t, token)
	if want := fmt.Sprintf("system:serviceaccount:%s:%s", h.ns, flyv1alpha1.DefaultRouterServiceAccount); !ok || user != want {
		t.Errorf("the router's token authenticates %v as %q, want %q", ok, user, want)
	}
	assertNoToken(t, h, fr, token)
}

// assertNoToken checks that the token appears in neither the object nor its Events.
func assertNoToken(t *testing.T, h *harness, fr *flyv1alpha1.FlyRouter, token string) {
	t.Helper()
	h.get(fr)
	if strings.Contains(fmt.Sprintf("%+v", fr), token) {
		t.Error("the router's token appears in the FlyRouter")
	}
	for reason, notes := range routerEvents(t, fr.Name) {
		if strings.Contains(strings.Join(notes, " "), token) {
			t.Errorf("the router's token appears in a %s Event", reason)
		}
	}
	if strings.Contains(h.logs.String(), token) {
		t.Error("the router's token appears in the manager's log")
	}
}

// routerEvents lists the Events about a FlyRouter (cluster-scoped: they are kept in the default
// namespace), by reason, with each series counted as its count.
func routerEvents(t *testing.T, name string) map[string][]string {
	t.Helper()
	var list eventsv1.EventList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(metav1.NamespaceDefault)); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range list.Items {
		if e.Regarding.Kind != "FlyRouter" || e.Regarding.Name != name {
			continue
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		for range n {
			out[e.Reason] = append(out[e.Reason], e.Note)
		}
	}
	return out
}

func TestFlyRouterRenewsAndUpgradesWithoutGap(t *testing.T) {
	h := routerHarness(t, 6*time.Second)
	fr := newFlyRouter(h, "registry.fly.io/hangar-router:v1")
	createRouter(t, fr)
	h.ready(fr)
	h.get(fr)
	app, firstVersion := fr.Status.AppName, fr.Status.SecretsVersion
	firstToken := tokenOf(t, h, app)
	watch := watchAvailability(h, app, "ord", "ams")

	// Renewal: a new token, new secrets, every machine replaced onto them.
	h.eventually("credentials renewed and rolled out", func() string {
		h.get(fr)
		_, version := h.sim.Secrets(app)
		if fr.Status.SecretsVersion <= firstVersion || int64(version) != fr.Status.SecretsVersion {
			return fmt.Sprintf("secrets version %d (Fly %d), first %d", fr.Status.SecretsVersion, version, firstVersion)
		}
		for _, m := range routerMachines(h, app) {
			if m.SecretsVersion == uint64(firstVersion) {
				return "machine " + m.ID + " still runs the first credentials"
			}
		}
		return ""
	})
	if tokenOf(t, h, app) == firstToken {
		t.Error("the renewed kubeconfig holds the first token")
	}
	if len(routerEvents(t, fr.Name)[controllers.EventCredentialsRenewed]) == 0 {
		t.Error("no CredentialsRenewed Event")
	}

	// Upgrade: every machine replaced by one of the new image.
	h.update(fr, func() { fr.Spec.Image = "registry.fly.io/hangar-router:v2" })
	h.eventually("image v2 rolled out", func() string {
		h.get(fr)
		if fr.Status.Image != "registry.fly.io/hangar-router:v2" {
			return "status image " + fr.Status.Image
		}
		for _, m := range routerMachines(h, app) {
			if img := machineConfig(t, m)["image"]; img != "registry.fly.io/hangar-router:v2" {
				return fmt.Sprintf("machine %s runs %v", m.ID, img)
			}
		}
		return ""
	})
	if gaps := watch.stop(); len(gaps) > 0 {
		t.Errorf("a region had no machine serving during the rollouts (%d samples), first: %s", len(gaps), gaps[0])
	}
	if n := len(routerEvents(t, fr.Name)[controllers.EventRolledOut]); n < 2 {
		t.Errorf("RolledOut Events %d, want one per rollout", n)
	}
	assertNoToken(t, h, fr, tokenOf(t, h, app))
}

func TestFlyRouterDeletionRevokesTokens(t *testing.T) {
	h := routerHarness(t, 0)
	fr := newFlyRouter(h, "registry.fly.io/hangar-router:v1")
	fr.Spec.Regions = []flyv1alpha1.RouterRegion{{Region: "ord", Machines: 1}}
	createRouter(t, fr)
	h.ready(fr)
	h.get(fr)
	app := fr.Status.AppName
	token := tokenOf(t, h, app)
	if ok, _ := authenticated(t, token); !ok {
		t.Fatal("the router's token does not authenticate before deletion")
	}
	if err := env.Client.Delete(context.Background(), fr); err != nil {
		t.Fatal(err)
	}
	h.gone(fr)
	h.eventually("router app gone from Fly", func() string {
		if info, ok := h.sim.App(app); ok && !info.Deleted {
			return "router app " + app + " still on Fly"
		}
		return ""
	})
	err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: h.ns, Name: "hangar-flyrouter-" + fr.Name + "-token-binding"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the Secret the tokens are bound to: %v, want deleted", err)
	}
	// The apiserver checks the bound Secret through its own informer, which follows the deletion
	// within moments.
	h.eventually("the router's token refused", func() string {
		if ok, _ := authenticated(t, token); ok {
			return "the router's token still authenticates after the FlyRouter's deletion"
		}
		return ""
	})
}

func TestFlyRouterMissingServiceAccountStalls(t *testing.T) {
	h := routerHarness(t, 0)
	fr := newFlyRouter(h, "registry.fly.io/hangar-router:v1")
	fr.Spec.ServiceAccountName = "absent"
	createRouter(t, fr)
	h.eventually("CredentialsInvalid", func() string {
		h.get(fr)
		c := findCondition(fr.Status.Conditions, flyv1alpha1.CredentialsReadyCondition)
		if c == nil || c.Reason != flyv1alpha1.CredentialsInvalidReason || !strings.Contains(c.Message, "absent") {
			return fmt.Sprintf("CredentialsReady %+v", c)
		}
		return ""
	})
	h.condition(fr, flyv1alpha1.StalledCondition, metav1.ConditionTrue, flyv1alpha1.CredentialsInvalidReason)
}
