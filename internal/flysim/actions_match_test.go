package flysim_test

import (
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/internal/flyapi"
	"github.com/hangar-dev/hangar/internal/flysim"
)

// TestActionsMatchTheClient checks that the emulator and the client name the same actions. Each
// keeps its own list on purpose (the emulator does not import the client), so this is the only
// place the two meet: a name on one side only would make the emulator's rate limits, fault keys
// or call log miss calls the client makes, or the client's limiter miss a bucket Fly has.
func TestActionsMatchTheClient(t *testing.T) {
	sim := setOf(t, "flysim.Actions", flysim.Actions)
	client := setOf(t, "flyapi.Actions()", flyapi.Actions())
	if missing := missingFrom(client, sim); len(missing) > 0 {
		t.Errorf("actions of the client missing from flysim.Actions: %v", missing)
	}
	if missing := missingFrom(sim, client); len(missing) > 0 {
		t.Errorf("actions of the emulator missing from flyapi.Actions(): %v", missing)
	}
}

// setOf returns the names as a set, failing on an empty list or a name listed twice.
func setOf(t *testing.T, what string, names []string) map[string]bool {
	t.Helper()
	if len(names) == 0 {
		t.Fatalf("%s is empty", what)
	}
	set := make(map[string]bool, len(names))
	for _, n := range names {
		if set[n] {
			t.Errorf("%s lists %q twice", what, n)
		}
		set[n] = true
	}
	return set
}

// missingFrom returns the names of want that have is missing, sorted.
func missingFrom(want, have map[string]bool) []string {
	var missing []string
	for n := range want {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	slices.Sort(missing)
	return missing
}
