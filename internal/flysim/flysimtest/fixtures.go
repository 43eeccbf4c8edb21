package flysimtest

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/keys"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

// Two organizations with one token each. An emulator for these helpers accepts both.
const (
	TokenA = "tok-a-secret"
	TokenB = "tok-b-secret"
	OrgA   = "org-a"
	OrgB   = "org-b"
)

// OrgOf is the org a token acts in: OrgB for TokenB, OrgA for any other.
func OrgOf(token string) string {
	if token == TokenB {
		return OrgB
	}
	return OrgA
}

// Eventually polls cond until it holds, failing after a generous deadline (never a timing assertion).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Clock is a settable clock for the emulator's and the proxy's Now options.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at 2026-01-01 00:00 UTC.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Root derives every app's replay key and management token, as hangar's manager would.
var Root = func() keys.Root {
	r, err := keys.ParseRoot(bytes.Repeat([]byte{7}, keys.RootKeySize))
	if err != nil {
		panic(err)
	}
	return r
}()

// SignedState signs a replay state for a machine of app with Root, valid for a minute of real time.
func SignedState(app, machine string) string {
	return replayauth.Sign(Root.ReplayKey(keys.App{FlyApp: app, Generation: 1}), app, machine, time.Now().Add(time.Minute))
}

// UserApp creates an app (on network, "" for the org default) with hangar's two secrets derived from
// Root.
func (c *Client) UserApp(name, network string) {
	c.t.Helper()
	c.Do("POST", "/v1/apps", map[string]any{"app_name": name, "org_slug": OrgOf(c.token), "network": network}).
		Expect(c.t, http.StatusCreated, nil)
	c.WaitApp(name)
	c.Do("POST", "/v1/apps/"+name+"/secrets", map[string]any{"values": map[string]any{
		keys.ReplayKeySecret:       keys.EncodeReplayKey(Root.ReplayKey(keys.App{FlyApp: name, Generation: 1})),
		keys.ManagementTokenSecret: Root.ManagementToken(keys.App{FlyApp: name, Generation: 1}),
	}}).Expect(c.t, http.StatusOK, nil)
}

// Endpoints is what the helpers read of the simulated user machines (*usermachine.Machines).
type Endpoints interface {
	Endpoints(app, id string) map[int]string
}

// UserMachine creates a machine with services and waits until it is started and its simulated
// listeners are up.
func (c *Client) UserMachine(machines Endpoints, app string, services []any) string {
	c.t.Helper()
	m := c.CreateMachine(app, map[string]any{"config": ConfigWith(services)})
	c.WaitFor(app, m.ID, "started")
	WaitListening(c.t, machines, app, m.ID)
	return m.ID
}

// WaitListening waits until the machine has simulated listeners.
func WaitListening(t testing.TB, machines Endpoints, app, id string) {
	t.Helper()
	Eventually(t, id+" listening", func() bool { return len(machines.Endpoints(app, id)) > 0 })
}
