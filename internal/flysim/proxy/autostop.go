package proxy

import (
	"errors"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/flysim"
)

// activity tracks what the proxy sends to each machine: requests in flight (load balancing, and a
// busy machine is never idle) and since when a machine has been idle (autostop).
type activity struct {
	mu       sync.Mutex
	inflight map[machineKey]int
	idle     map[machineKey]idleMark
}

// idleMark is when a machine last finished a request, or was first seen idle, since its state change
// with the ID event. A newer state change (a start by anyone) resets it: a started machine gets a full
// idle period before autostop looks at it.
type idleMark struct {
	since time.Time
	event string
}

func newActivity() *activity {
	return &activity{inflight: map[machineKey]int{}, idle: map[machineKey]idleMark{}}
}

func (a *activity) begin(k machineKey) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inflight[k]++
}

func (a *activity) end(k machineKey, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight[k]--; a.inflight[k] <= 0 {
		delete(a.inflight, k)
	}
	mark := a.idle[k]
	mark.since = now
	a.idle[k] = mark
}

func (a *activity) load(k machineKey) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inflight[k]
}

// idleSince returns since when m has been idle; busy when a request is in flight.
func (a *activity) idleSince(m flysim.MachineSnapshot, now time.Time) (since time.Time, busy bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := keyOf(m)
	if a.inflight[k] > 0 {
		return now, true
	}
	mark, ok := a.idle[k]
	if !ok || mark.event != m.LastEvent {
		a.idle[k] = idleMark{since: now, event: m.LastEvent}
		return now, false
	}
	return mark.since, false
}

// AutostopAction is one machine an autostop pass stopped or suspended.
type AutostopAction struct {
	App       string
	MachineID string
	Action    string // "stop" or "suspend"
}

// RunAutostop runs one autostop pass now and returns what it did. Per app and region it stops (or
// suspends) at most one started machine that has had no request for AutostopOptions.IdleAfter, as the
// Fly Proxy removes one excess machine per pass; with no load every machine is excess, a lone one
// included. Machines whose services have autostop off (or no services) are never touched, nor are
// external machines (their process is not the emulator's to stop). min_machines_running keeps that
// many of the app's machines started; Open in the sheet: Fly counts the primary region only, the
// simulator has no primary region, so it counts all regions.
func (p *Proxy) RunAutostop() []AutostopAction {
	now := p.opts.Now()
	var done []AutostopAction
	for _, a := range p.srv.SnapshotApps() {
		running := 0
		for _, m := range a.Machines {
			if m.State == flysim.StateStarted && len(m.Services) > 0 {
				running++
			}
		}
		actedIn := map[string]bool{}
		for _, m := range a.Machines {
			if m.State != flysim.StateStarted || actedIn[m.Region] || p.machines.IsExternal(m.App, m.ID) {
				continue
			}
			mode, minRunning := autostopModeOf(m.Services)
			if mode == flysim.AutostopOff {
				continue
			}
			since, busy := p.activity.idleSince(m, now)
			if busy || now.Sub(since) < p.opts.Autostop.IdleAfter || running <= minRunning {
				continue
			}
			action, err := p.autostop(m, mode)
			if err != nil {
				p.log.Error(err, "Autostop failed", "app", m.App, "machine", m.ID)
				continue
			}
			p.log.Info("Autostop", "app", m.App, "machine", m.ID, "action", action)
			done = append(done, AutostopAction{App: m.App, MachineID: m.ID, Action: action})
			running--
			actedIn[m.Region] = true
		}
	}
	return done
}

// autostop stops or suspends m; a machine that cannot be suspended (swap, schedule) is stopped.
func (p *Proxy) autostop(m flysim.MachineSnapshot, mode string) (string, error) {
	if mode == flysim.AutostopSuspend {
		err := p.srv.ProxySuspend(m.App, m.ID)
		if err == nil {
			return flysim.AutostopSuspend, nil
		}
		if !errors.Is(err, flysim.ErrFailedPrecondition) {
			return "", err
		}
	}
	return flysim.AutostopStop, p.srv.ProxyStop(m.App, m.ID)
}

// autostopModeOf is what autostop does to a machine: off when it has no services or any service keeps
// it running (autostop off), suspend when any service asks for suspend, stop otherwise. Fly decides per
// service; a machine is one VM, so the simulator folds the services into one decision.
func autostopModeOf(services []flysim.Service) (mode string, minRunning int) {
	if len(services) == 0 {
		return flysim.AutostopOff, 0
	}
	mode = flysim.AutostopStop
	for _, s := range services {
		switch s.Autostop {
		case flysim.AutostopOff:
			return flysim.AutostopOff, 0
		case flysim.AutostopSuspend:
			mode = flysim.AutostopSuspend
		}
		minRunning = max(minRunning, s.MinMachinesRunning)
	}
	return mode, minRunning
}

// autostopLoop runs RunAutostop every Interval until Close.
func (p *Proxy) autostopLoop() {
	ticker := time.NewTicker(p.opts.Autostop.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-ticker.C:
			p.RunAutostop()
		}
	}
}
