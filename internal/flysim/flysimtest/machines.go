package flysimtest

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Machine is the Machine object as a client reads it, with the wire's field names (§4.1).
type Machine struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	State      string          `json:"state"`
	Region     string          `json:"region"`
	InstanceID string          `json:"instance_id"`
	Version    string          `json:"version"`
	PrivateIP  string          `json:"private_ip"`
	CreatedAt  string          `json:"created_at"`
	UpdatedAt  string          `json:"updated_at"`
	Config     json.RawMessage `json:"config"`
	ImageRef   map[string]any  `json:"image_ref"`
	Events     []struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		Source    string `json:"source"`
		Timestamp int64  `json:"timestamp"`
	} `json:"events"`
	Checks     []map[string]any `json:"checks"`
	HostStatus string           `json:"host_status"`
	Cordoned   bool             `json:"cordoned"`
	Nonce      string           `json:"nonce"`
	Lease      *struct {
		Description string `json:"description"`
		ExpiresAt   int64  `json:"expires_at"`
		Owner       string `json:"owner"`
	} `json:"lease"`
}

// BaseConfig is a small valid machine config.
func BaseConfig() map[string]any {
	return map[string]any{"image": "registry.fly.io/demo:v1", "guest": map[string]any{"cpu_kind": "shared", "cpus": 1, "memory_mb": 256}}
}

// ConfigWith is BaseConfig with services.
func ConfigWith(services []any) map[string]any {
	cfg := BaseConfig()
	cfg["services"] = services
	return cfg
}

// BlueprintServices are the blueprint's management (9090→9090) and public (8080→80) http services.
func BlueprintServices(autostart bool, autostop any, minRunning int) []any {
	svc := func(name string, internal, public int) map[string]any {
		return map[string]any{
			"name": name, "protocol": "tcp", "internal_port": internal, "autostart": autostart, "autostop": autostop,
			"min_machines_running": minRunning,
			"ports":                []any{map[string]any{"port": public, "handlers": []any{"http"}}},
		}
	}
	return []any{svc("management", 9090, 9090), svc("public", 8080, 80)}
}

// CreateApp creates an app in the org of c's token.
func (c *Client) CreateApp(name string) {
	c.t.Helper()
	c.Do("POST", "/v1/apps", map[string]any{"app_name": name, "org_slug": OrgOf(c.token)}).Expect(c.t, http.StatusCreated, nil)
}

// WaitApp polls GET until the app is readable, as fly-go's WaitForApp does after a create: under a
// realistic profile an app is invisible for a moment after its create answered.
func (c *Client) WaitApp(name string) {
	c.t.Helper()
	Eventually(c.t, "app "+name+" to be readable", func() bool {
		return c.Do("GET", "/v1/apps/"+name, nil).Status == http.StatusOK
	})
}

// CreateMachine creates a machine in app with body merged over {"config": BaseConfig()}.
func (c *Client) CreateMachine(app string, body map[string]any) Machine {
	c.t.Helper()
	req := map[string]any{"config": BaseConfig()}
	for k, v := range body {
		req[k] = v
	}
	var m Machine
	c.Do("POST", "/v1/apps/"+app+"/machines", req).Expect(c.t, http.StatusOK, &m)
	return m
}

// GetMachine reads a machine through the API.
func (c *Client) GetMachine(app, id string) Machine {
	c.t.Helper()
	var m Machine
	c.Do("GET", "/v1/apps/"+app+"/machines/"+id, nil).Expect(c.t, http.StatusOK, &m)
	return m
}

// WaitFor waits through the API until the machine reaches state (any version).
func (c *Client) WaitFor(app, id, state string) {
	c.t.Helper()
	path := fmt.Sprintf("/v1/apps/%s/machines/%s/wait?state=%s&timeout=10", app, id, state)
	if state == "stopped" { // the API needs the version to wait for stopped
		path += "&version=" + c.GetMachine(app, id).Version
	}
	c.Do("GET", path, nil).Expect(c.t, http.StatusOK, nil)
}

// WaitSettled waits until the machine is in state with no transition pending (read off the emulator,
// without API calls).
func (c *Client) WaitSettled(app, id, state string) {
	c.t.Helper()
	Eventually(c.t, id+" to settle in "+state, func() bool {
		got, pending, ok := c.stateOf(app, id)
		return ok && got == state && !pending
	})
}

// StartedMachine creates a machine and waits until it is started.
func (c *Client) StartedMachine(app string) Machine {
	c.t.Helper()
	m := c.CreateMachine(app, nil)
	c.WaitFor(app, m.ID, "started")
	return c.GetMachine(app, m.ID)
}

// Stop stops a machine through the API and waits until it is stopped.
func (c *Client) Stop(app, id string) {
	c.t.Helper()
	c.Do("POST", "/v1/apps/"+app+"/machines/"+id+"/stop", nil).Expect(c.t, http.StatusOK, nil)
	c.WaitSettled(app, id, "stopped")
}
