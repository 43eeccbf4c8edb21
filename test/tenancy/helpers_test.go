package tenancy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/devstack"
	"github.com/hangar-dev/hangar/internal/flysim/usermachine"
	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/internal/manifests"
)

// tenantRoles are the ClusterRoles of config/rbac a tenant is bound to, as an operator applies them
// (without config/default's name prefix).
var tenantRoles = []string{"userapp_editor_role.yaml", "userapp_viewer_role.yaml", "usermachine_editor_role.yaml", "usermachine_viewer_role.yaml"}

const (
	appEditorRole     = "userapp-editor-role"
	machineEditorRole = "usermachine-editor-role"
)

// installTenantRoles creates hangar's tenant ClusterRoles from config/rbac.
func installTenantRoles(ctx context.Context, s *devstack.Stack) error {
	for _, file := range tenantRoles {
		objs, err := manifests.ReadFile(filepath.Join(s.Env.RepoRoot, "config", "rbac", file))
		if err != nil {
			return err
		}
		for _, obj := range objs {
			if err := s.Env.Client.Create(ctx, obj); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		}
	}
	return nil
}

// aggregateClusterRoles does once what kube-controller-manager's aggregation controller does all
// the time, which envtest does not run: every ClusterRole with an aggregationRule (the built-in
// admin, edit and view) gets the rules of the ClusterRoles its selectors match. Roles aggregate
// roles that aggregate (view into edit into admin), so it repeats until nothing changes.
func aggregateClusterRoles(ctx context.Context, c client.Client) error {
	for range 5 {
		var roles rbacv1.ClusterRoleList
		if err := c.List(ctx, &roles); err != nil {
			return err
		}
		changed := false
		for i := range roles.Items {
			role := &roles.Items[i]
			if role.AggregationRule == nil {
				continue
			}
			var rules []rbacv1.PolicyRule
			for _, sel := range role.AggregationRule.ClusterRoleSelectors {
				selector, err := metav1.LabelSelectorAsSelector(&sel)
				if err != nil {
					return err
				}
				for _, other := range roles.Items {
					if other.Name == role.Name || !selector.Matches(labels.Set(other.Labels)) {
						continue
					}
					for _, r := range other.Rules {
						if !slices.ContainsFunc(rules, func(have rbacv1.PolicyRule) bool { return reflect.DeepEqual(have, r) }) {
							rules = append(rules, r)
						}
					}
				}
			}
			if reflect.DeepEqual(rules, role.Rules) {
				continue
			}
			role.Rules = rules
			if err := c.Update(ctx, role); err != nil {
				return err
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return errors.New("aggregating ClusterRoles did not settle")
}

// tenant is a user with rights in one namespace only, through the apiserver's RBAC.
type tenant struct {
	user   string
	ns     string
	client client.Client
}

// newTenant makes a ServiceAccount-like user of ns ("system:serviceaccount:<ns>:<sa>", in the
// groups the apiserver gives ServiceAccounts) and binds it in ns to clusterRoles.
func newTenant(ctx context.Context, s *devstack.Stack, ns, sa string, clusterRoles ...string) (*tenant, error) {
	user := "system:serviceaccount:" + ns + ":" + sa
	cfg, err := s.Env.AddUser(user, "system:serviceaccounts", "system:serviceaccounts:"+ns, "system:authenticated")
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s.Env.Scheme})
	if err != nil {
		return nil, err
	}
	for _, role := range clusterRoles {
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa + "-" + role, Namespace: ns},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}},
		}
		if err := s.Env.Client.Create(ctx, rb); err != nil {
			return nil, err
		}
	}
	return &tenant{user: user, ns: ns, client: c}, nil
}

// waitAllowed waits until try stops being refused as Forbidden: RBAC's authorizer sees new bindings
// through an informer, a moment after they are written.
func waitAllowed(ctx context.Context, what string, try func() error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		last = try()
		if last != nil && !apierrors.IsForbidden(last) {
			return false, last
		}
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("%s: %w", what, errors.Join(err, last))
	}
	return nil
}

// eventually polls check until it returns "" or the timeout passes; it never asserts on time.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		last = check()
		return last == "", nil
	})
	if err != nil {
		t.Fatalf("%s: not reached: %s", what, last)
	}
}

// get reads obj again with c, failing the test on error.
func get(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatalf("reading %s: %v", obj.GetName(), err)
	}
}

// create creates objs with c, failing the test on error.
func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		if err := c.Create(context.Background(), obj); err != nil {
			t.Fatalf("creating %s: %v", obj.GetName(), err)
		}
	}
}

// deleteAndWait deletes objs with c and waits until the apiserver no longer has them (the manager
// ran their finalizers).
func deleteAndWait(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		if err := c.Delete(context.Background(), obj); err != nil && !apierrors.IsNotFound(err) {
			t.Fatalf("deleting %s: %v", obj.GetName(), err)
		}
	}
	for _, obj := range objs {
		eventually(t, obj.GetName()+" gone", func() string {
			err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
			if apierrors.IsNotFound(err) {
				return ""
			}
			return fmt.Sprintf("still there (%v)", err)
		})
	}
}

// anyReason lets conditionOf accept any reason: a create whose answer Fly lost shows as Adopted.
const anyReason = ""

// conditionOf waits until obj (read with c) has condition cond with status and reason (any with
// anyReason), and returns it.
func conditionOf(t *testing.T, c client.Client, obj object, cond string, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var found metav1.Condition
	eventually(t, fmt.Sprintf("%s %s=%s/%s", obj.GetName(), cond, status, reason), func() string {
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err.Error()
		}
		got := meta.FindStatusCondition(obj.GetConditions(), cond)
		if got == nil || got.Status != status || (reason != anyReason && got.Reason != reason) {
			return fmt.Sprintf("condition %+v", got)
		}
		found = *got
		return ""
	})
	return found
}

// object is a UserApp or a UserMachine.
type object interface {
	client.Object
	GetConditions() []metav1.Condition
}

// ready waits until each object (read with c) is Ready.
func ready(t *testing.T, c client.Client, objs ...object) {
	t.Helper()
	for _, obj := range objs {
		conditionOf(t, c, obj, flyv1alpha1.ReadyCondition, metav1.ConditionTrue, flyv1alpha1.ReadyReason)
	}
}

func newApp(ns, name string, hosts ...string) *flyv1alpha1.UserApp {
	app := &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	if len(hosts) > 0 {
		app.Spec.Routing = &flyv1alpha1.AppRouting{Hosts: hosts}
	}
	return app
}

func newMachine(ns, name, app string) *flyv1alpha1.UserMachine {
	return &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: flyv1alpha1.UserMachineSpec{
		AppRef: flyv1alpha1.AppReference{Name: app}, Region: "ord", Image: "registry.fly.io/workspace:v1",
	}}
}

func sharedSecret(ns, name string, data map[string]string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{flyv1alpha1.AppSecretLabel: "true"}},
		StringData: data,
	}
}

// managementToken reads the management token from app's connection Secret with c.
func managementToken(t *testing.T, c client.Client, app *flyv1alpha1.UserApp) string {
	t.Helper()
	get(t, c, app)
	var conn corev1.Secret
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: app.Namespace, Name: app.Status.ConnectionSecretName}, &conn); err != nil {
		t.Fatalf("reading %s's connection Secret: %v", app.Name, err)
	}
	token := string(conn.Data[controllers.ConnectionManagementToken])
	if token == "" {
		t.Fatalf("%s's connection Secret has no management token", app.Name)
	}
	return token
}

// answer is what came back through the simulated Fly Proxy.
type answer struct {
	code    int
	body    string
	header  http.Header
	machine *usermachine.Answer // when a user machine answered
}

// request sends a request through the simulated Fly Proxy's public port (80) or management port
// (9090).
func request(t *testing.T, port int, host string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+stack.ProxyAddr(port)+"/status", nil)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	req.Host = host
	for k, v := range header {
		req.Header[k] = v
	}
	// Errors are reported, not fatal: tests send these from several goroutines. A failed request
	// comes back with code 0, which no check accepts.
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer func() { _ = resp.Body.Close() }()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, body: string(raw), header: resp.Header}
	if resp.Header.Get("Content-Type") == "application/json" {
		a.machine = &usermachine.Answer{}
		if err := json.Unmarshal(raw, a.machine); err != nil {
			t.Errorf("user machine answer: %v: %s", err, raw)
		}
	}
	return a
}

// management is a request on the management port (9090) naming target ("<ns>/<usermachine>") with
// authorization (none when empty).
func management(t *testing.T, target, authorization string) answer {
	t.Helper()
	h := http.Header{"Hangar-Target": {target}}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	return request(t, 9090, "mgmt.internal", h)
}

// sameAnswer says how two router answers differ, ignoring what differs between any two requests
// (Date, and the Fly-Request-Id the proxy gives each); "" when they do not.
func sameAnswer(a, b answer) string {
	if a.code != b.code || a.body != b.body {
		return fmt.Sprintf("%d %q vs %d %q", a.code, a.body, b.code, b.body)
	}
	ha, hb := a.header.Clone(), b.header.Clone()
	for _, h := range []http.Header{ha, hb} {
		h.Del("Date")
		h.Del("Fly-Request-Id")
	}
	if !reflect.DeepEqual(ha, hb) {
		return fmt.Sprintf("headers %v vs %v", ha, hb)
	}
	return ""
}

// servesAlice checks that alice's host still reaches her own machine through the proxy, with a
// replay her machine verified.
func servesAlice(t *testing.T, host string) {
	t.Helper()
	eventually(t, host+" answered by alice's machine", func() string {
		a := request(t, 80, host, nil)
		if a.code != http.StatusOK || a.machine == nil {
			return fmt.Sprintf("%d %s", a.code, a.body)
		}
		if a.machine.App != victim.flyApp || a.machine.Machine != victim.machineID || !a.machine.ReplayStateVerified {
			return fmt.Sprintf("answered by %s/%s (replay verified %v)", a.machine.App, a.machine.Machine, a.machine.ReplayStateVerified)
		}
		return ""
	})
	// Once is not luck: every one of a few more requests goes to alice too.
	for range 5 {
		a := request(t, 80, host, nil)
		if a.code != http.StatusOK || a.machine == nil || a.machine.App != victim.flyApp || a.machine.Machine != victim.machineID {
			t.Fatalf("%s: %d %s", host, a.code, a.body)
		}
	}
}

// secretValues are values one tenant must keep, by what they are.
type secretValues map[string]string

// noLeak checks that none of the victim's values reaches the attacker: not in what the attacker
// can read in its own namespace with its own credentials (Secrets, UserApps and UserMachines with
// their conditions, Events), and not in any Fly app but the victim's own (app secrets, what each
// machine booted with, its config).
func noLeak(t *testing.T, attacker *tenant, values secretValues, victimApps ...string) {
	t.Helper()
	ctx := context.Background()
	check := func(where string, v any) {
		t.Helper()
		raw, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		for what, value := range values {
			if bytes.Contains(raw, []byte(value)) {
				t.Errorf("%s holds the victim's %s", where, what)
			}
		}
	}
	in := client.InNamespace(attacker.ns)
	var secrets corev1.SecretList
	switch err := attacker.client.List(ctx, &secrets, in); {
	case apierrors.IsForbidden(err): // the attacker reads no Secret at all: nothing to look at
	case err != nil:
		t.Fatal(err)
	default:
		for _, s := range secrets.Items {
			check("Secret "+s.Name+" of the attacker's namespace", s.Data)
		}
	}
	var apps flyv1alpha1.UserAppList
	var machines flyv1alpha1.UserMachineList
	var events corev1.EventList
	for _, list := range []client.ObjectList{&apps, &machines, &events} {
		if err := attacker.client.List(ctx, list, in); err != nil {
			t.Fatal(err)
		}
	}
	check("the attacker's UserApps", apps.Items)
	check("the attacker's UserMachines", machines.Items)
	check("the Events of the attacker's namespace", events.Items)

	for _, app := range stack.Fly.Apps(devstack.Org) {
		if slices.Contains(victimApps, app.Name) {
			continue
		}
		appSecrets, _ := stack.Fly.Secrets(app.Name)
		check("the secrets of Fly app "+app.Name, appSecrets)
		for _, m := range stack.Fly.Machines(app.Name) {
			boot, _, _ := stack.Fly.MachineSecrets(app.Name, m.ID)
			check("what machine "+m.ID+" of "+app.Name+" booted with", boot)
			check("the config of machine "+m.ID+" of "+app.Name, m.Config)
		}
	}
}

// flySecret is one Fly secret of a Fly app as the emulator holds it.
func flySecret(t *testing.T, flyApp, name string) string {
	t.Helper()
	values, _ := stack.Fly.Secrets(flyApp)
	if values[name] == "" {
		t.Fatalf("Fly app %s has no secret %s", flyApp, name)
	}
	return values[name]
}

// flySecretNames are the names of a Fly app's secrets, sorted.
func flySecretNames(flyApp string) []string {
	values, _ := stack.Fly.Secrets(flyApp)
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// machineIDs are the IDs of a Fly app's machines, sorted.
func machineIDs(flyApp string) []string {
	var ids []string
	for _, m := range stack.Fly.Machines(flyApp) {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// replayKeyName is the Fly secret holding an app's replay key.
const replayKeyName = keys.ReplayKeySecret

// randomHex makes secret values no test could guess or find by chance.
func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
