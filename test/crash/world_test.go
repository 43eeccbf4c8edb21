package crash_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flysim"
)

const (
	org          = "personal"
	appPrefix    = "hangar-"
	imageV1      = "registry.fly.io/workspace:v1"
	imageV2      = "registry.fly.io/workspace:v2"
	secretEnv    = "UPSTREAM_KEY"
	secretKey    = "key"
	leaseTTL     = 3 * time.Second // the manager's --fly-lease-ttl in this suite
	waitInterval = 100 * time.Millisecond
)

// user is one end user the world holds: a Secret, a UserApp and its UserMachines, and what they
// should look like on Fly.
type user struct {
	name     string
	machines []string
	image    string
	power    flyv1alpha1.PowerState
	secret   string
	orphan   bool // deletionPolicy Orphan
	deleted  bool
}

func (u *user) flyApp(ns string) string { return flyv1alpha1.DefaultFlyAppName(appPrefix, ns, u.name) }

// world is what one point asks of the cluster, and the checks of what it should have become.
type world struct {
	ctx   context.Context
	c     client.Client
	ns    string
	sim   *flysim.Server
	users []*user
	// pools and claims are the warm pools and their claims (pool_test.go).
	pools  []*pool
	claims []*claim
}

func (w *world) newUser(name string, machines int, power flyv1alpha1.PowerState, orphan bool) *user {
	u := &user{name: name, image: imageV1, power: power, secret: "s1", orphan: orphan}
	for i := range machines {
		u.machines = append(u.machines, fmt.Sprintf("%s-ws%d", name, i))
	}
	w.users = append(w.users, u)
	return u
}

// create writes the user's Secret, UserApp and UserMachines.
func (w *world) create(u *user) error {
	policy := flyv1alpha1.DeletionPolicyDelete
	if u.orphan {
		policy = flyv1alpha1.DeletionPolicyOrphan
	}
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: u.name + "-creds", Namespace: w.ns, Labels: map[string]string{flyv1alpha1.AppSecretLabel: "true"}}, StringData: map[string]string{secretKey: u.secret}},
		&flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: u.name, Namespace: w.ns}, Spec: flyv1alpha1.UserAppSpec{
			AllocatePrivateIP: true,
			Secrets:           []flyv1alpha1.AppSecret{{Name: secretEnv, SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: u.name + "-creds", Key: secretKey}}},
			Routing:           &flyv1alpha1.AppRouting{Hosts: []string{u.name + ".example.com"}},
			DeletionPolicy:    policy,
		}},
	}
	for _, m := range u.machines {
		objs = append(objs, w.machineObject(u, m))
	}
	for _, obj := range objs {
		if err := w.c.Create(w.ctx, obj); err != nil {
			return fmt.Errorf("creating %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

func (w *world) machineObject(u *user, name string) *flyv1alpha1.UserMachine {
	return &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, Spec: flyv1alpha1.UserMachineSpec{
		AppRef: flyv1alpha1.AppReference{Name: u.name}, Region: "ord", Image: u.image, PowerState: u.power,
		Env: map[string]string{"OWNER": u.name},
	}}
}

// addMachine adds one more UserMachine to a user.
func (w *world) addMachine(u *user) error {
	name := fmt.Sprintf("%s-ws%d", u.name, len(u.machines))
	u.machines = append(u.machines, name)
	return w.c.Create(w.ctx, w.machineObject(u, name))
}

// updateMachines sets image and power state on every machine of the user.
func (w *world) updateMachines(u *user, image string, power flyv1alpha1.PowerState) error {
	u.image, u.power = image, power
	for _, name := range u.machines {
		um := &flyv1alpha1.UserMachine{}
		if err := w.update(client.ObjectKey{Namespace: w.ns, Name: name}, um, func() {
			um.Spec.Image, um.Spec.PowerState = image, power
			um.Spec.Env["IMAGE"] = image
		}); err != nil {
			return err
		}
	}
	return nil
}

// rotateSecret changes the value the user's app takes from its Secret.
func (w *world) rotateSecret(u *user, value string) error {
	u.secret = value
	secret := &corev1.Secret{}
	return w.update(client.ObjectKey{Namespace: w.ns, Name: u.name + "-creds"}, secret, func() {
		secret.Data = map[string][]byte{secretKey: []byte(value)}
	})
}

// delete deletes the user's UserMachines and UserApp.
func (w *world) delete(u *user) error {
	u.deleted = true
	for _, name := range u.machines {
		if err := client.IgnoreNotFound(w.c.Delete(w.ctx, &flyv1alpha1.UserMachine{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}})); err != nil {
			return err
		}
	}
	return client.IgnoreNotFound(w.c.Delete(w.ctx, &flyv1alpha1.UserApp{ObjectMeta: metav1.ObjectMeta{Name: u.name, Namespace: w.ns}}))
}

// update re-reads obj, applies mutate and writes it back, retrying on conflicts (the manager writes
// the same objects).
func (w *world) update(key client.ObjectKey, obj client.Object, mutate func()) error {
	return wait.PollUntilContextTimeout(w.ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := w.c.Get(ctx, key, obj); err != nil {
			return false, err
		}
		mutate()
		err := w.c.Update(ctx, obj)
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

// waitConverged polls until the world is what it should be, or timeout; it returns the last
// complaint when it is not.
func (w *world) waitConverged(timeout time.Duration) string {
	var last string
	err := wait.PollUntilContextTimeout(w.ctx, waitInterval, timeout, true, func(context.Context) (bool, error) {
		last = w.notConverged()
		return last == "", nil
	})
	if err != nil && last == "" {
		last = err.Error()
	}
	return last
}

// notConverged says what is not yet as it should be ("" when everything is): live objects Ready
// for their generation, machines in the asked power state running the asked image, app secrets
// holding the asked value, deleted objects gone, and their Fly apps deleted.
func (w *world) notConverged() string {
	if msg := w.poolsNotConverged(); msg != "" {
		return msg
	}
	for _, u := range w.users {
		app := &flyv1alpha1.UserApp{}
		err := w.c.Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: u.name}, app)
		if u.deleted {
			if !apierrors.IsNotFound(err) {
				return fmt.Sprintf("UserApp %s not deleted yet (%v)", u.name, err)
			}
			for _, name := range u.machines {
				if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: name}, &flyv1alpha1.UserMachine{}); !apierrors.IsNotFound(err) {
					return fmt.Sprintf("UserMachine %s not deleted yet (%v)", name, err)
				}
			}
			if info, ok := w.sim.App(u.flyApp(w.ns)); !u.orphan && ok && !info.Deleted {
				return fmt.Sprintf("Fly app %s of deleted UserApp %s not deleted yet", info.Name, u.name)
			}
			continue
		}
		if err != nil {
			return fmt.Sprintf("UserApp %s: %v", u.name, err)
		}
		if msg := notReady(app, app.Status.Conditions, app.Status.ObservedGeneration); msg != "" {
			return msg
		}
		if values, _ := w.sim.Secrets(app.Status.AppName); values[secretEnv] != u.secret {
			return fmt.Sprintf("Fly app %s does not hold the Secret's value yet", app.Status.AppName)
		}
		for _, name := range u.machines {
			um := &flyv1alpha1.UserMachine{}
			if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: name}, um); err != nil {
				return fmt.Sprintf("UserMachine %s: %v", name, err)
			}
			if msg := notReady(um, um.Status.Conditions, um.Status.ObservedGeneration); msg != "" {
				return msg
			}
			if want := stateFor(u.power); um.Status.State != want {
				return fmt.Sprintf("UserMachine %s is %s, want %s", name, um.Status.State, want)
			}
			m, ok := w.sim.Machine(um.Status.AppName, um.Status.MachineID)
			if !ok || m.State != um.Status.State || imageOf(m) != u.image {
				return fmt.Sprintf("UserMachine %s: Fly machine %s is %q running %q (found %v), status says %q; image %s wanted",
					name, um.Status.MachineID, m.State, imageOf(m), ok, um.Status.State, u.image)
			}
			// The object's generation does not move when its app's secrets change: the machine
			// must also run them, and the status say which version it runs.
			if int64(m.SecretsVersion) < app.Status.SecretsVersion || m.Version != um.Status.Version {
				return fmt.Sprintf("UserMachine %s: Fly machine %s runs version %s with secrets %d; status says %s, the app is at secrets %d",
					name, m.ID, m.Version, m.SecretsVersion, um.Status.Version, app.Status.SecretsVersion)
			}
		}
	}
	return ""
}

func notReady(obj client.Object, conds []metav1.Condition, observed int64) string {
	c := meta.FindStatusCondition(conds, flyv1alpha1.ReadyCondition)
	switch {
	case c == nil:
		return fmt.Sprintf("%s has no Ready condition", obj.GetName())
	case c.Status != metav1.ConditionTrue:
		return fmt.Sprintf("%s Ready=%s %s: %s", obj.GetName(), c.Status, c.Reason, c.Message)
	case observed != obj.GetGeneration():
		return fmt.Sprintf("%s observed generation %d of %d", obj.GetName(), observed, obj.GetGeneration())
	}
	return ""
}

// stateFor is the Fly state a converged machine is in for a power state (the emulator's proxy
// does not autostop here, so Auto machines stay started).
func stateFor(p flyv1alpha1.PowerState) string {
	switch p {
	case flyv1alpha1.PowerStateStopped:
		return "stopped"
	case flyv1alpha1.PowerStateSuspended:
		return "suspended"
	default:
		return "started"
	}
}

// violation is one broken promise found in a converged world.
type violation struct {
	kind   string // duplicate, orphan, status, lease
	detail string
}

// violations checks the promises on a converged world: exactly one Fly machine per UserMachine,
// the one its status names and as its status says; no Fly app or machine without its object except
// what deletionPolicy Orphan left; Orphan leaving the app and machines in place; no lease held
// past its TTL.
func (w *world) violations() []violation {
	var out []violation
	ownedApps := map[string]bool{}   // Fly app name → may exist
	ownedUIDs := map[string]string{} // hangar.dev/uid → UserMachine name
	for _, u := range w.users {
		if u.deleted {
			if u.orphan {
				ownedApps[u.flyApp(w.ns)] = true
				info, ok := w.sim.App(u.flyApp(w.ns))
				if !ok || info.Deleted {
					out = append(out, violation{"orphan", fmt.Sprintf("deletionPolicy Orphan: Fly app %s of %s is gone", u.flyApp(w.ns), u.name)})
				}
			}
			continue
		}
		app := &flyv1alpha1.UserApp{}
		if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: u.name}, app); err != nil {
			out = append(out, violation{"status", fmt.Sprintf("UserApp %s: %v", u.name, err)})
			continue
		}
		ownedApps[app.Status.AppName] = true
		if info, ok := w.sim.App(app.Status.AppName); !ok || info.Deleted || info.ID != app.Status.AppID {
			out = append(out, violation{"status", fmt.Sprintf("UserApp %s records Fly app %s (%s); Fly has %+v (found %v)",
				u.name, app.Status.AppName, app.Status.AppID, info, ok)})
		}
		for _, name := range u.machines {
			um := &flyv1alpha1.UserMachine{}
			if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: name}, um); err != nil {
				out = append(out, violation{"status", fmt.Sprintf("UserMachine %s: %v", name, err)})
				continue
			}
			ownedUIDs[string(um.UID)] = name
			var mine []flysim.MachineInfo
			for _, m := range w.sim.Machines(app.Status.AppName) {
				if m.Metadata[controllers.MetadataUID] == string(um.UID) && live(m) {
					mine = append(mine, m)
				}
			}
			switch {
			case len(mine) > 1:
				out = append(out, violation{"duplicate", fmt.Sprintf("UserMachine %s has %d Fly machines: %v", name, len(mine), machineIDs(mine))})
			case len(mine) == 0:
				out = append(out, violation{"status", fmt.Sprintf("UserMachine %s has no Fly machine (status names %s)", name, um.Status.MachineID)})
			case mine[0].ID != um.Status.MachineID || mine[0].State != um.Status.State || mine[0].Version != um.Status.Version:
				out = append(out, violation{"status", fmt.Sprintf("UserMachine %s status %s/%s/%s, Fly %s/%s/%s", name,
					um.Status.MachineID, um.Status.State, um.Status.Version, mine[0].ID, mine[0].State, mine[0].Version)})
			}
		}
	}
	out = append(out, w.poolViolations(ownedApps, ownedUIDs)...)
	now := time.Now()
	for _, a := range w.sim.Apps(org) {
		if a.Deleted {
			continue
		}
		if !ownedApps[a.Name] {
			out = append(out, violation{"orphan", fmt.Sprintf("Fly app %s has no UserApp", a.Name)})
		}
		for _, m := range w.sim.Machines(a.Name) {
			if !live(m) {
				continue
			}
			if _, ok := ownedUIDs[m.Metadata[controllers.MetadataUID]]; !ok && !w.orphaned(a.Name) {
				out = append(out, violation{"orphan", fmt.Sprintf("Fly machine %s in %s has no UserMachine (uid %s)", m.ID, a.Name, m.Metadata[controllers.MetadataUID])})
			}
			if m.LeaseOwner != "" && m.LeaseExpiresAt.After(now.Add(leaseTTL+time.Second)) {
				out = append(out, violation{"lease", fmt.Sprintf("Fly machine %s holds a lease until %s, past the %s TTL", m.ID, m.LeaseExpiresAt, leaseTTL)})
			}
		}
	}
	return out
}

// orphaned reports whether the Fly app was left in place by a deletionPolicy Orphan.
func (w *world) orphaned(flyApp string) bool {
	return slices.ContainsFunc(w.users, func(u *user) bool { return u.deleted && u.orphan && u.flyApp(w.ns) == flyApp })
}

// imageOf is the image in the machine's stored config.
func imageOf(m flysim.MachineInfo) string {
	var cfg struct {
		Image string `json:"image"`
	}
	if err := json.Unmarshal(m.Config, &cfg); err != nil {
		return "unreadable config: " + err.Error()
	}
	return cfg.Image
}

func live(m flysim.MachineInfo) bool { return m.State != "destroyed" && m.State != "destroying" }

func machineIDs(ms []flysim.MachineInfo) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ID
	}
	return ids
}
