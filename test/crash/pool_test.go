package crash_test

import (
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flysim"
)

// Warm pools at crash points: the manager is killed while a pool fills or refills and while
// claims bind pooled users (or cold-start one), and the world must converge to a full pool, each
// claim bound to exactly one user of its own, each pooled UserMachine with exactly one Fly machine,
// and no Fly app without its UserApp.

func init() {
	scenarios = append(scenarios,
		scenario{name: "pool-fill", step: func(w *world, _ *rand.Rand) error {
			return w.createPool("p", 2)
		}},
		scenario{name: "pool-claim",
			setup: func(w *world, _ *rand.Rand) error { return w.createPool("p", 1) },
			step: func(w *world, rng *rand.Rand) error {
				// Two claims on a pool of one: one binds the pooled user, the other cold-starts
				// (or binds the refill), while the pool refills.
				for _, name := range []string{"c1", "c2"}[:1+rng.IntN(2)] {
					if err := w.createClaim(name, "p"); err != nil {
						return err
					}
				}
				return nil
			}},
	)
}

// pool is a UserAppPool the world holds.
type pool struct {
	name     string
	replicas int32
}

// claim is a UserAppClaim the world holds and the value of its secret.
type claim struct {
	name, pool, secret string
}

func (w *world) createPool(name string, replicas int32) error {
	w.pools = append(w.pools, &pool{name: name, replicas: replicas})
	return w.c.Create(w.ctx, &flyv1alpha1.UserAppPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, Spec: flyv1alpha1.UserAppPoolSpec{
		Replicas: replicas,
		Template: flyv1alpha1.UserAppTemplate{AllocatePrivateIP: true, Machines: []flyv1alpha1.MachineTemplate{{Name: "ws",
			Spec: flyv1alpha1.MachineTemplateSpec{Region: "ord", Image: imageV1}}}},
	}})
}

func (w *world) createClaim(name, poolName string) error {
	c := &claim{name: name, pool: poolName, secret: name + "-s"}
	w.claims = append(w.claims, c)
	if err := w.c.Create(w.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-creds", Namespace: w.ns,
		Labels: map[string]string{flyv1alpha1.AppSecretLabel: "true"}}, StringData: map[string]string{secretKey: c.secret}}); err != nil {
		return err
	}
	return w.c.Create(w.ctx, &flyv1alpha1.UserAppClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns}, Spec: flyv1alpha1.UserAppClaimSpec{
		PoolRef: flyv1alpha1.PoolReference{Name: poolName},
		Routing: &flyv1alpha1.AppRouting{Hosts: []string{name + ".example.com"}},
		Secrets: []flyv1alpha1.AppSecret{{Name: secretEnv, SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: name + "-creds", Key: secretKey}}},
	}})
}

// pooledApps lists the UserApps made for pools (unclaimed, claimed and cold-started).
func (w *world) pooledApps() ([]flyv1alpha1.UserApp, error) {
	var apps flyv1alpha1.UserAppList
	err := w.c.List(w.ctx, &apps, client.InNamespace(w.ns), client.HasLabels{flyv1alpha1.PoolLabel})
	return apps.Items, err
}

// poolsNotConverged says what of the pools and claims is not yet as it should be: every pool Ready
// with its replicas unclaimed and ready, every claim Ready with exactly one user whose Fly app holds
// the claim's secret, and every pooled user Ready with its machines.
func (w *world) poolsNotConverged() string {
	for _, p := range w.pools {
		obj := &flyv1alpha1.UserAppPool{}
		if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: p.name}, obj); err != nil {
			return fmt.Sprintf("UserAppPool %s: %v", p.name, err)
		}
		if msg := notReady(obj, obj.Status.Conditions, obj.Status.ObservedGeneration); msg != "" {
			return msg
		}
		if obj.Status.ReadyReplicas != p.replicas || obj.Status.Replicas != p.replicas {
			return fmt.Sprintf("UserAppPool %s holds %d users (%d ready), want %d", p.name, obj.Status.Replicas, obj.Status.ReadyReplicas, p.replicas)
		}
	}
	apps, err := w.pooledApps()
	if err != nil {
		return err.Error()
	}
	for _, c := range w.claims {
		obj := &flyv1alpha1.UserAppClaim{}
		if err := w.c.Get(w.ctx, client.ObjectKey{Namespace: w.ns, Name: c.name}, obj); err != nil {
			return fmt.Sprintf("UserAppClaim %s: %v", c.name, err)
		}
		if msg := notReady(obj, obj.Status.Conditions, obj.Status.ObservedGeneration); msg != "" {
			return msg
		}
		if values, _ := w.sim.Secrets(obj.Status.AppName); values[secretEnv] != c.secret {
			return fmt.Sprintf("claim %s: Fly app %s does not hold the claim's secret yet", c.name, obj.Status.AppName)
		}
	}
	for i := range apps {
		app := &apps[i]
		if msg := notReady(app, app.Status.Conditions, app.Status.ObservedGeneration); msg != "" {
			return msg
		}
		var machines flyv1alpha1.UserMachineList
		if err := w.c.List(w.ctx, &machines, client.InNamespace(w.ns)); err != nil {
			return err.Error()
		}
		for j := range machines.Items {
			um := &machines.Items[j]
			if um.Spec.AppRef.Name != app.Name {
				continue
			}
			if msg := notReady(um, um.Status.Conditions, um.Status.ObservedGeneration); msg != "" {
				return msg
			}
			if m, ok := w.sim.Machine(um.Status.AppName, um.Status.MachineID); !ok || m.State != um.Status.State || m.Version != um.Status.Version ||
				int64(m.SecretsVersion) < app.Status.SecretsVersion {
				return fmt.Sprintf("pooled UserMachine %s: Fly machine %s is %q at version %s with secrets %d; status says %q, %s; app secrets %d",
					um.Name, um.Status.MachineID, m.State, m.Version, m.SecretsVersion, um.Status.State, um.Status.Version, app.Status.SecretsVersion)
			}
		}
	}
	return ""
}

// poolViolations checks the promises of pools and claims on a converged world, and records the
// pooled users' Fly apps and machines as owned for the orphan check: each claim has exactly one
// user (its label and controller reference agree), no pool holds a surplus, each pooled
// UserMachine has exactly one Fly machine, the one its status names.
func (w *world) poolViolations(ownedApps map[string]bool, ownedUIDs map[string]string) []violation {
	var out []violation
	apps, err := w.pooledApps()
	if err != nil {
		return []violation{{"status", err.Error()}}
	}
	perClaim := map[string]int{}
	for i := range apps {
		app := &apps[i]
		ownedApps[app.Status.AppName] = true
		if by := app.Labels[flyv1alpha1.ClaimedByLabel]; by != "" {
			perClaim[by]++
			owner := metav1.GetControllerOf(app)
			if owner == nil || owner.Kind != "UserAppClaim" || owner.Name != by {
				out = append(out, violation{"status", fmt.Sprintf("UserApp %s is labelled claimed by %s but controlled by %+v", app.Name, by, owner)})
			}
		}
		var machines flyv1alpha1.UserMachineList
		if err := w.c.List(w.ctx, &machines, client.InNamespace(w.ns)); err != nil {
			return append(out, violation{"status", err.Error()})
		}
		for j := range machines.Items {
			um := &machines.Items[j]
			if um.Spec.AppRef.Name != app.Name {
				continue
			}
			ownedUIDs[string(um.UID)] = um.Name
			var mine []flysim.MachineInfo
			for _, m := range w.sim.Machines(app.Status.AppName) {
				if m.Metadata[controllers.MetadataUID] == string(um.UID) && live(m) {
					mine = append(mine, m)
				}
			}
			switch {
			case len(mine) != 1:
				out = append(out, violation{"duplicate", fmt.Sprintf("pooled UserMachine %s has %d Fly machines: %v", um.Name, len(mine), machineIDs(mine))})
			case mine[0].ID != um.Status.MachineID:
				out = append(out, violation{"status", fmt.Sprintf("pooled UserMachine %s names machine %s, Fly has %s", um.Name, um.Status.MachineID, mine[0].ID)})
			}
		}
	}
	for _, c := range w.claims {
		if perClaim[c.name] != 1 {
			out = append(out, violation{"duplicate", fmt.Sprintf("claim %s holds %d users", c.name, perClaim[c.name])})
		}
	}
	return out
}
