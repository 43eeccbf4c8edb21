package router

import (
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// TestKeysAreBoundToTheUserAppAndRotate: the router derives an app's keys from its UserApp's UID
// and key generation, as the manager does; while a rotation overlaps it signs with the previous
// replay key (which the machines hold beside the new one) and accepts both management tokens;
// once the overlap ends it signs with the new key and refuses the previous token.
func TestKeysAreBoundToTheUserAppAndRotate(t *testing.T) {
	now := testNow
	r := newTestRouter(t, func(b *BuildConfig, _ *HandlerConfig) { b.Now = func() time.Time { return now } })
	app := newApp("ns", "alice", "alice-app", hosts("alice.example.com"))
	app.UID = "uid-alice"
	app.Status.KeyGeneration = 2
	until := metav1.NewTime(testNow.Add(time.Minute))
	app.Status.PreviousKeysValidUntil = &until
	r.set(app, newMachine("ns", "ws", "alice", "alice-app", "a1a1a1a1a1a1a1"))

	current := keys.App{FlyApp: "alice-app", Owner: "uid-alice", Generation: 2}
	previous := current
	previous.Generation = 1
	signedWith := func() []byte {
		t.Helper()
		got := replayOf(t, r.do(request{host: "alice.example.com"}))
		src := "instance=148ed193b95948;region=ord;t=1;state=" + got.State
		for _, k := range []keys.App{current, previous} {
			if replayauth.Verify(r.root.ReplayKey(k), src, "alice-app", "a1a1a1a1a1a1a1", testNow) == nil {
				return r.root.ReplayKey(k)
			}
		}
		t.Fatal("the replay state verifies with neither generation's key")
		return nil
	}
	management := func(token string) int {
		return r.do(request{mgmt: true, host: "router.internal", header: http.Header{
			TargetHeader: {"ns/ws"}, "Authorization": {"Bearer " + token}}}).Code
	}
	unbound := keys.App{FlyApp: "alice-app", Generation: 2} // the same name and generation, another owner

	if got := signedWith(); string(got) != string(r.root.ReplayKey(previous)) {
		t.Error("during the overlap the router signs with the new key; machines not yet updated would refuse it")
	}
	for name, token := range map[string]string{"current": r.root.ManagementToken(current), "previous": r.root.ManagementToken(previous)} {
		if code := management(token); code != ReplayStatus {
			t.Errorf("during the overlap the %s management token got %d", name, code)
		}
	}
	if code := management(r.root.ManagementToken(unbound)); code != http.StatusUnauthorized {
		t.Errorf("another owner's token for the same Fly app name got %d, want 401", code)
	}
	if got := r.table.Load().KeySwitch(); !got.Equal(until.Time) {
		t.Errorf("index key switch at %v, want the overlap's end %v", got, until.Time)
	}

	now = until.Add(time.Second)
	r.publish()
	if got := signedWith(); string(got) != string(r.root.ReplayKey(current)) {
		t.Error("after the overlap the router still signs with the previous key")
	}
	if code := management(r.root.ManagementToken(previous)); code != http.StatusUnauthorized {
		t.Errorf("after the overlap the previous management token got %d, want 401", code)
	}
	if code := management(r.root.ManagementToken(current)); code != ReplayStatus {
		t.Errorf("after the overlap the current management token got %d", code)
	}
	if !r.table.Load().KeySwitch().IsZero() {
		t.Error("an index with no rotation under way still asks for a rebuild")
	}
}
