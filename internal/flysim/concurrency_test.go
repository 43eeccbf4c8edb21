package flysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/internal/flysim/flysimtest"
)

// TestConcurrentCreates: many clients create machines with overlapping names in one app; each name
// ends up held by exactly one machine and every other attempt is a 422 name_taken.
func TestConcurrentCreates(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("busy")
	const workers, perWorker, names = 12, 6, 18
	var mu sync.Mutex
	created := map[string][]string{} // name → machine IDs
	taken := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				name := fmt.Sprintf("m-%d", (w*perWorker+i)%names)
				body := map[string]any{"name": name, "config": flysimtest.BaseConfig(), "skip_launch": true}
				r := h.Do("POST", "/v1/apps/busy/machines", body)
				mu.Lock()
				switch r.Status {
				case http.StatusOK:
					var m flysimtest.Machine
					_ = json.Unmarshal(r.Body, &m)
					created[name] = append(created[name], m.ID)
				case http.StatusUnprocessableEntity:
					taken++
				default:
					t.Errorf("create %s: %d %s", name, r.Status, r.Body)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for name, ids := range created {
		if len(ids) != 1 {
			t.Errorf("name %s held by %d machines: %v", name, len(ids), ids)
		}
	}
	if len(created) != names || taken != workers*perWorker-names {
		t.Errorf("%d names created, %d refused; want %d and %d", len(created), taken, names, workers*perWorker-names)
	}
	if got := len(h.srv.Machines("busy")); got != names {
		t.Errorf("%d machines exist, want %d", got, names)
	}
}

// TestConcurrentUpdates: many clients read-modify-write one machine with current_version. No update
// is lost: every success was based on a distinct version, the others got 409, versions are unique.
func TestConcurrentUpdates(t *testing.T) {
	h := newHarness(t)
	h.CreateApp("race")
	m := h.CreateMachine("race", map[string]any{"skip_launch": true})
	const workers, attempts = 8, 6
	var mu sync.Mutex
	basedOn := map[string]int{} // version an update was based on → successes
	results := map[string]bool{}
	conflicts := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range attempts {
				var cur flysimtest.Machine
				if r := h.Do("GET", "/v1/apps/race/machines/"+m.ID, nil); r.Status != 200 || json.Unmarshal(r.Body, &cur) != nil {
					t.Errorf("get: %d %s", r.Status, r.Body)
					return
				}
				cfg := flysimtest.BaseConfig()
				cfg["env"] = map[string]any{"WRITER": fmt.Sprintf("%d-%d", w, i)}
				r := h.Do("POST", "/v1/apps/race/machines/"+m.ID, map[string]any{"config": cfg, "current_version": cur.Version, "skip_launch": true})
				mu.Lock()
				switch r.Status {
				case http.StatusOK:
					var up flysimtest.Machine
					_ = json.Unmarshal(r.Body, &up)
					basedOn[cur.Version]++
					if results[up.Version] {
						t.Errorf("version %s handed out twice", up.Version)
					}
					results[up.Version] = true
				case http.StatusConflict:
					conflicts++
				default:
					t.Errorf("update: %d %s", r.Status, r.Body)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for v, n := range basedOn {
		if n != 1 {
			t.Errorf("%d updates succeeded on top of version %s: a lost update", n, v)
		}
	}
	successes := len(results)
	if successes+conflicts != workers*attempts || successes == 0 {
		t.Errorf("%d successes + %d conflicts, want %d calls", successes, conflicts, workers*attempts)
	}
	info, _ := h.srv.Machine("race", m.ID)
	if len(info.Versions) != successes+1 {
		t.Errorf("%d versions stored, want %d", len(info.Versions), successes+1)
	}
	seen := map[string]bool{}
	for _, v := range info.Versions {
		if seen[v] {
			t.Errorf("duplicate version %s", v)
		}
		seen[v] = true
	}
}
