package usermachine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
)

// Checks runs the health checks of the emulated machines (a flysim.CheckProber): an http check is a
// request with the check's method, path and headers to the address serving the check's port (2xx
// passes, anything else is critical with the status in the output), a tcp check a connect. The
// address is a simulated machine's listener, which opens only after the profile's ListenDelay, or
// the address a real program registered (flysim/images: the router, once /readyz answers), so a
// started machine whose app does not listen yet fails its checks, as on Fly.
//
// Probes run asynchronously, triggered by reads: the Server asks for a check's status under its
// lock, so CheckStatus answers at once from the latest result and, when that is older than the
// check's interval and no probe of it is running, starts one on its own goroutine. A GET of a
// machine never waits for a probe; a reader sees a result at most one interval plus one read old,
// as Fly's interval-run checks lag; and the emulator probes only the machines someone looks at.
// Until the grace period after the start has passed, and until the first probe answers, a check
// reads warning. Intervals and the grace period count on the Server's clock (Options.Now).
type Checks struct {
	client *http.Client // no redirects followed, as a health check does not
	tls    *http.Client // https with tls_skip_verify

	mu       sync.Mutex
	machines *Machines
	results  map[checkKey]*checkState
}

// checkKey names one check of one machine.
type checkKey struct{ app, id, name string }

// checkState is what is known of one check during one boot of one machine version.
type checkState struct {
	version, boot string
	result        flysim.CheckResult
	probed        bool
	probing       bool
}

// NewChecks makes a prober; pass it to flysim.Options.Checks and to usermachine.Options.Checks,
// which gives it the machines to probe.
func NewChecks() *Checks {
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Checks{
		client: &http.Client{CheckRedirect: noRedirect},
		tls: &http.Client{CheckRedirect: noRedirect, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // only for checks with tls_skip_verify
		}},
		results: map[checkKey]*checkState{},
	}
}

// attach gives the prober the machines to probe (Start does).
func (c *Checks) attach(u *Machines) {
	c.mu.Lock()
	c.machines = u
	c.mu.Unlock()
}

// CheckStatus answers the latest status of one check, starting a probe when the result is due.
func (c *Checks) CheckStatus(t flysim.CheckTarget) flysim.CheckResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := checkKey{t.App, t.MachineID, t.Name}
	st := c.results[k]
	if st == nil || st.version != t.Version || st.boot != t.Boot {
		st = &checkState{version: t.Version, boot: t.Boot}
		c.results[k] = st // an older boot's state goes, with any late answer to its probe
	}
	if graceEnd := t.StartedAt.Add(t.Check.GracePeriod); t.Now.Before(graceEnd) {
		return flysim.CheckResult{Status: flysim.CheckWarning, UpdatedAt: t.StartedAt,
			Output: fmt.Sprintf("waiting for the grace period of %s after the start", t.Check.GracePeriod)}
	}
	if !st.probing && (!st.probed || t.Now.Sub(st.result.UpdatedAt) >= t.Check.Interval) {
		st.probing = true
		go c.run(k, st, t)
	}
	if !st.probed {
		return flysim.CheckResult{Status: flysim.CheckWarning, Output: "waiting for the first check", UpdatedAt: t.StartedAt}
	}
	return st.result
}

// run probes one check and keeps the result, unless the machine moved on meanwhile.
func (c *Checks) run(k checkKey, st *checkState, t flysim.CheckTarget) {
	c.mu.Lock()
	machines := c.machines
	c.mu.Unlock()
	addr, ok := "", false
	if machines != nil && t.Check.Port > 0 {
		addr, ok, _ = machines.Endpoint(t.App, t.MachineID, t.Version, t.Check.Port)
	}
	status, output := c.probe(addr, ok, t.Check)
	c.mu.Lock()
	defer c.mu.Unlock()
	st.probing = false
	if c.results[k] != st {
		return
	}
	st.probed = true
	st.result = flysim.CheckResult{Status: status, Output: output, UpdatedAt: t.Now}
}

// probe runs one check against addr, the address serving the check's port (ok false: nothing
// listens there).
func (c *Checks) probe(addr string, ok bool, chk flysim.Check) (status, output string) {
	port := strconv.Itoa(chk.Port)
	switch {
	case chk.Port == 0:
		return flysim.CheckCritical, "the check names no port"
	case !ok:
		return flysim.CheckCritical, "connect to port " + port + ": connection refused (nothing listens there)"
	}
	ctx, cancel := context.WithTimeout(context.Background(), chk.Timeout)
	defer cancel()
	if chk.Type != "http" {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return flysim.CheckCritical, "connect to port " + port + ": " + dialError(err, chk.Timeout)
		}
		_ = conn.Close()
		return flysim.CheckPassing, "connect to port " + port + ": success"
	}
	what := chk.Method + " " + chk.Path + " on port " + port
	req, err := http.NewRequestWithContext(ctx, chk.Method, chk.Protocol+"://"+addr+chk.Path, nil)
	if err != nil {
		return flysim.CheckCritical, what + ": " + err.Error()
	}
	for name, values := range chk.Headers {
		req.Header[http.CanonicalHeaderKey(name)] = values
	}
	client := c.client
	if chk.Protocol == "https" && chk.TLSSkipVerify {
		client = c.tls
	}
	resp, err := client.Do(req)
	if err != nil {
		return flysim.CheckCritical, what + ": " + dialError(err, chk.Timeout)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return flysim.CheckCritical, what + ": " + resp.Status
	}
	return flysim.CheckPassing, what + ": " + resp.Status
}

// dialError says why a probe got no answer.
func dialError(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within the timeout of " + timeout.String()
	}
	return err.Error()
}
