package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flyv1alpha1 "github.com/hangar-dev/hangar/api/v1alpha1"
	"github.com/hangar-dev/hangar/controllers"
	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
	"github.com/hangar-dev/hangar/internal/keys"
)

func TestDeletion(t *testing.T) {
	gone := func(h *harness, obj client.Object) func() string {
		return func() string {
			err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
			if apierrors.IsNotFound(err) {
				return ""
			}
			return fmt.Sprintf("still there (err %v, finalizers %v)", err, obj.GetFinalizers())
		}
	}

	t.Run("Delete removes the machine and the app", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		app, um := h.readyUser("liam")
		flyApp, machineID := app.Status.AppName, um.Status.MachineID
		for _, obj := range []client.Object{app, um} {
			if err := env.Client.Delete(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
		}
		h.eventually("machine object gone", gone(h, um))
		h.eventually("app object gone", gone(h, app))
		if m, ok := h.sim.Machine(flyApp, machineID); ok && m.State != "destroyed" {
			t.Fatalf("machine left in state %s", m.State)
		}
		if a, ok := h.sim.App(flyApp); ok && !a.Deleted {
			t.Fatalf("Fly app %s still exists", flyApp)
		}
	})

	t.Run("Orphan leaves the app and its machine", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		app := newApp("mia")
		app.Spec.DeletionPolicy = flyv1alpha1.DeletionPolicyOrphan
		um := newMachine("mia-ws", "mia")
		h.create(app)
		h.create(um)
		h.ready(app)
		h.settled(um, "started")
		for _, obj := range []client.Object{um, app} {
			if err := env.Client.Delete(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
		}
		h.eventually("machine object gone", gone(h, um))
		h.eventually("app object gone", gone(h, app))
		if a, ok := h.sim.App(app.Status.AppName); !ok || a.Deleted {
			t.Fatal("orphaned Fly app was deleted")
		}
		if m, ok := h.sim.Machine(app.Status.AppName, um.Status.MachineID); !ok || m.State != "started" {
			t.Fatalf("orphaned machine = %+v", m)
		}
	})

	t.Run("Fly errors hold the finalizer until Fly recovers", func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		app, um := h.readyUser("noah")
		h.sim.SetFault("destroy_machine", flysim.Fault{Status: 503, ErrorRate: 1})
		h.sim.SetFault("delete_app", flysim.Fault{Status: 503, ErrorRate: 1})
		for _, obj := range []client.Object{um, app} {
			if err := env.Client.Delete(context.Background(), obj); err != nil {
				t.Fatal(err)
			}
		}
		h.eventually("deletion failing with Fly unavailable", func() string {
			h.get(um)
			if c := findCondition(um.Status.Conditions, flyv1alpha1.ReadyCondition); c == nil || c.Reason != flyv1alpha1.FlyUnavailableReason {
				return fmt.Sprintf("conditions %v", um.Status.Conditions)
			}
			return ""
		})
		h.get(app)
		if len(app.Finalizers) == 0 || len(um.Finalizers) == 0 {
			t.Fatal("a finalizer was released while Fly failed")
		}
		h.sim.ClearFaults()
		h.eventually("machine object gone", gone(h, um))
		h.eventually("app object gone", gone(h, app))
		if a, ok := h.sim.App(app.Status.AppName); ok && !a.Deleted {
			t.Fatal("Fly app still exists after recovery")
		}
	})
}

func TestRateLimitStormConvergesWithinPublishedRates(t *testing.T) {
	h := newHarness(t, harnessOptions{withRateLimits: true})
	// A third of all calls are refused with 429, on top of the emulator's real limits.
	h.sim.SetFault("*", flysim.Fault{Status: 429, ErrorRate: 0.3})
	var machines []*flyv1alpha1.UserMachine
	for _, user := range []string{"olga", "pete"} {
		h.create(newApp(user))
		for i := range 3 {
			um := newMachine(fmt.Sprintf("%s-%d", user, i), user)
			h.create(um)
			machines = append(machines, um)
		}
	}
	for _, um := range machines {
		h.settled(um, "started")
	}
	for _, c := range h.sim.Calls() {
		if c.RateLimited {
			t.Fatalf("the emulator's own limiter had to refuse a call: the client exceeded Fly's published rates: %+v", c)
		}
	}
	throttled := 0
	for _, um := range machines {
		throttled += len(h.events(um.Name)[controllers.EventThrottled])
	}
	throttled += len(h.events("olga")[controllers.EventThrottled]) + len(h.events("pete")[controllers.EventThrottled])
	if throttled == 0 {
		t.Fatal("no Throttled event although a third of the calls were refused with 429")
	}
}

func TestBadTokenThenRotationWithoutRestart(t *testing.T) {
	// The retry after Unauthorized is far beyond the test's patience: only the token file's change
	// can send the objects round again.
	h := newHarness(t, harnessOptions{unauthorizedRetry: time.Hour})
	h.writeToken("fo1_not-the-right-token")
	app := newApp("quinn")
	h.create(app)
	c := h.condition(app, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.UnauthorizedReason)
	if !strings.Contains(c.Message, "token") || strings.Contains(c.Message, "not-the-right-token") {
		t.Fatalf("Unauthorized message = %q", c.Message)
	}
	if got := h.events("quinn")[flyv1alpha1.UnauthorizedReason]; len(got) != 1 {
		t.Fatalf("Unauthorized events = %v, want one (transitions only)", got)
	}
	h.writeToken(testToken) // the rotated token, picked up without a restart
	h.ready(app)
}

func TestSpecFlyRefusesIsReportedAndRetriedWithBackoff(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.create(newApp("rose"))
	um := newMachine("rose-ws", "rose")
	um.Spec.Image = "registry.fly.io/Not_A_Valid/Image:v1" // passes admission, refused by Fly
	h.create(um)
	c := h.condition(um, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.FlyRejectedReason)
	if !strings.Contains(c.Message, "Fly refused the request") || !strings.Contains(strings.ToLower(c.Message), "image") {
		t.Fatalf("message does not carry Fly's reason: %q", c.Message)
	}
	start := time.Now()
	time.Sleep(4 * time.Second)
	elapsed := time.Since(start)
	// Backoff from 500 ms doubling: at most ~log2(elapsed/0.5s)+2 attempts, far from a hot loop.
	attempts := len(callsOf(h.sim.Calls(), "create_machine"))
	if attempts > 6 {
		t.Fatalf("%d creates in %s: refused specs are retried too fast", attempts, elapsed)
	}
	if got := h.events(um.Name)[flyv1alpha1.FlyRejectedReason]; len(got) != 1 {
		t.Fatalf("FlyRejected events = %v, want one", got)
	}
	// A refused create created nothing: the retries meet the same refusal instead of waiting for a
	// machine to show in the list (which read CreatePending, and Progressing in Argo CD).
	h.get(um)
	if c := findCondition(um.Status.Conditions, flyv1alpha1.ReadyCondition); c.Reason != flyv1alpha1.FlyRejectedReason || um.Status.CreateRequestedTime != nil {
		t.Fatalf("after retries: Ready %s (%s), createRequestedTime %v; want FlyRejected and no create pending", c.Reason, c.Message, um.Status.CreateRequestedTime)
	}

	h.update(um, func() { um.Spec.Image = "registry.fly.io/workspace:v1" })
	h.settled(um, "started")
}

func TestSecretRotationRollsOutToMachines(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sam-creds", Labels: appSecretLabels()}, StringData: map[string]string{"token": "v1"}}
	h.create(secret)
	app := newApp("sam")
	app.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "UPSTREAM_TOKEN", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "sam-creds", Key: "token"}}}
	um := newMachine("sam-ws", "sam")
	h.create(app)
	h.create(um)
	h.ready(app)
	h.settled(um, "started")
	h.get(app)
	oldVersion := app.Status.SecretsVersion

	h.update(secret, func() { secret.StringData = map[string]string{"token": "v2"} })
	h.eventually("new secrets version recorded", func() string {
		h.get(app)
		values, version := h.sim.Secrets(app.Status.AppName)
		if app.Status.SecretsVersion <= oldVersion || values["UPSTREAM_TOKEN"] != "v2" || int64(version) != app.Status.SecretsVersion {
			return fmt.Sprintf("status version %d (was %d), Fly version %d", app.Status.SecretsVersion, oldVersion, version)
		}
		return ""
	})
	h.eventually("machine booted with the new secrets", func() string {
		m, _ := h.sim.Machine(app.Status.AppName, um.Status.MachineID)
		if int64(m.SecretsVersion) != app.Status.SecretsVersion {
			return fmt.Sprintf("machine secrets version %d, want %d", m.SecretsVersion, app.Status.SecretsVersion)
		}
		return ""
	})
	h.settled(um, "started")

	// A secret removed from the spec is removed from Fly; hangar's own keys stay.
	h.update(app, func() { app.Spec.Secrets = nil })
	h.eventually("secret unset on Fly", func() string {
		values, _ := h.sim.Secrets(app.Status.AppName)
		if _, still := values["UPSTREAM_TOKEN"]; still || values[keys.ManagementTokenSecret] == "" {
			return fmt.Sprint("Fly secrets ", keysOf(values))
		}
		return ""
	})
}

func TestMissingSecretWaitsWithoutHotLoop(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	app := newApp("tess")
	app.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "API_KEY", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "tess-creds", Key: "key"}}}
	h.create(app)
	c := h.condition(app, flyv1alpha1.SecretsSyncedCondition, metav1.ConditionFalse, flyv1alpha1.SecretNotFoundReason)
	if !strings.Contains(c.Message, `"tess-creds"`) {
		t.Fatalf("message does not name the Secret: %q", c.Message)
	}
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "tess-creds", Labels: appSecretLabels()}, StringData: map[string]string{"key": "k"}})
	h.ready(app) // the Secret watch brings the app back
}

func TestNameTakenAndAdoption(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	// Another org owns this name.
	foreign := newApp("uma")
	foreign.Spec.AppName = "someone-elses-app"
	createForeignApp(t, h, "fo1_other-org-token", foreign.Spec.AppName)
	h.create(foreign)
	c := h.condition(foreign, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
	if !strings.Contains(c.Message, flyv1alpha1.AdoptAnnotation) || !strings.Contains(c.Message, keys.ReleaseMarkerPrefix) {
		t.Fatalf("NameTaken message does not say how to fix it: %q", c.Message)
	}
	ours := 0
	for _, c := range callsOf(h.sim.Calls(), "create_app") {
		if c.Org == testOrg {
			ours++
		}
	}
	if n := ours; n != 1 {
		t.Fatalf("%d create_app calls for a taken name, want 1 (no hot loop)", n)
	}

	// Same org, a custom name: not provably ours. The annotation alone, which any author can
	// write, is not enough; with the app released on the Fly side (a secret only a holder of the
	// Fly token can set, named in the message) it is adopted.
	mine := newApp("vic")
	mine.Spec.AppName = "vic-existing-app"
	createForeignApp(t, h, testToken, mine.Spec.AppName)
	h.create(mine)
	c = h.condition(mine, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
	release := keys.ReleaseMarker(h.ns, "vic")
	if !strings.Contains(c.Message, release) {
		t.Fatalf("NameTaken message does not name the release secret %s: %q", release, c.Message)
	}
	h.update(mine, func() { mine.Annotations = map[string]string{flyv1alpha1.AdoptAnnotation: "true"} })
	before := reconciles(t, "userapp")
	h.eventually("a pass with the annotation", func() string {
		if reconciles(t, "userapp") <= before {
			return "no pass yet"
		}
		return ""
	})
	h.condition(mine, flyv1alpha1.AppCreatedCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
	fly, err := flyapi.New(flyapi.Options{BaseURL: h.flyURL, Token: flyapi.StaticToken(testToken)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fly.SetSecrets(context.Background(), mine.Spec.AppName, map[string]string{release: "alice's operator"}); err != nil {
		t.Fatal(err)
	}
	h.update(mine, func() { mine.Annotations["retry"] = "now" }) // a change brings the next pass at once
	h.condition(mine, flyv1alpha1.AppCreatedCondition, metav1.ConditionTrue, flyv1alpha1.AdoptedReason)
	h.ready(mine)

	// A custom name in the form hangar derives is refused: it would squat a future UserApp's app.
	squatter := newApp("xavier")
	squatter.Spec.AppName = flyv1alpha1.DefaultFlyAppName("hangar-", h.ns, "not-yet-created")
	h.create(squatter)
	c = h.condition(squatter, flyv1alpha1.AppCreatedCondition, metav1.ConditionFalse, flyv1alpha1.NameTakenReason)
	if !strings.Contains(c.Message, "reserved") {
		t.Fatalf("squatting a derived name: %q", c.Message)
	}

	// Same org, the name hangar derives: hangar created it (its answer was lost), so it adopts.
	derived := newApp("wes")
	createForeignApp(t, h, testToken, flyv1alpha1.DefaultFlyAppName("hangar-", h.ns, "wes"))
	h.create(derived)
	h.condition(derived, flyv1alpha1.AppCreatedCondition, metav1.ConditionTrue, flyv1alpha1.AdoptedReason)
}

// createForeignApp creates a Fly app directly on the emulator with token, as another actor would.
func createForeignApp(t *testing.T, h *harness, token, name string) {
	t.Helper()
	org := testOrg
	if token != testToken {
		org = "other-org"
	}
	body := fmt.Sprintf(`{"app_name":%q,"org_slug":%q}`, name, org)
	req, _ := newJSONRequest("POST", h.flyURL+"/v1/apps", body, token)
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("creating app %s on the emulator: %s", name, resp.Status)
	}
}

func TestLogsEventsAndStatusHoldNoSecrets(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "xena-creds", Labels: appSecretLabels()}, StringData: map[string]string{"k": "user-secret-value-123"}})
	app := newApp("xena")
	app.Spec.Secrets = []flyv1alpha1.AppSecret{{Name: "USER_SECRET", SecretKeyRef: flyv1alpha1.SecretKeySelector{Name: "xena-creds", Key: "k"}}}
	h.create(app)
	um := newMachine("xena-ws", "xena")
	h.create(um)
	h.ready(app)
	h.settled(um, "started")
	// A failing stretch too: errors must not leak either.
	h.writeToken("fo1_wrong-token-value")
	h.update(um, func() { um.Spec.Image = "registry.fly.io/workspace:v3" })
	h.condition(um, flyv1alpha1.ReadyCondition, metav1.ConditionFalse, flyv1alpha1.UnauthorizedReason)
	h.writeToken(testToken)
	h.settled(um, "started")

	h.get(app)
	flyApp := app.Status.AppName
	secrets := map[string]string{
		"Fly token":        testToken,
		"wrong Fly token":  "fo1_wrong-token-value",
		"replay key":       keys.EncodeReplayKey(h.root.ReplayKey(keys.App{FlyApp: flyApp, Owner: string(app.UID), Generation: app.Status.KeyGeneration})),
		"management token": h.root.ManagementToken(keys.App{FlyApp: flyApp, Owner: string(app.UID), Generation: app.Status.KeyGeneration}),
		"user secret":      "user-secret-value-123",
	}
	var events eventsv1.EventList
	if err := env.Client.List(context.Background(), &events, client.InNamespace(h.ns)); err != nil {
		t.Fatal(err)
	}
	h.get(um)
	haystacks := map[string]string{
		"logs":   h.logs.String(),
		"events": fmt.Sprintf("%+v", events.Items),
		"status": fmt.Sprintf("%+v %+v", app.Status, um.Status),
	}
	if len(haystacks["logs"]) < 1000 || len(events.Items) == 0 {
		t.Fatalf("captured too little to judge: %d bytes of logs, %d events", len(haystacks["logs"]), len(events.Items))
	}
	for where, text := range haystacks {
		for what, secret := range secrets {
			if strings.Contains(text, secret) {
				t.Errorf("the %s appears in %s", what, where)
			}
		}
	}
}
