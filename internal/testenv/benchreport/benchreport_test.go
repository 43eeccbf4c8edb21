package benchreport

import (
	"bytes"
	"testing"
	"time"
)

func TestMinimumConvergeTime(t *testing.T) {
	// Fly publishes 1 request/s with bursts of 3 for app and machine creates (docs/fly-api.md §8).
	for _, tc := range []struct {
		apps, machinesPerApp int
		want                 time.Duration
	}{
		{0, 0, 0},                   // nothing to do
		{3, 3, 0},                   // within both bursts
		{4, 3, time.Second},         // one app past its burst
		{3, 7, 4 * time.Second},     // machines alone past theirs
		{50, 4, 48 * time.Second},   // controllers' bench: 47 s of apps, then 1 s of machines
		{500, 4, 498 * time.Second}, // the scale bench
	} {
		if got := MinimumConvergeTime(tc.apps, tc.machinesPerApp); got != tc.want {
			t.Errorf("MinimumConvergeTime(%d, %d) = %s, want %s", tc.apps, tc.machinesPerApp, got, tc.want)
		}
	}
}

func TestFprint(t *testing.T) {
	var b bytes.Buffer
	Fprint(&b, "scale_x", 1.23456, "x", "<=", "1.2")
	if got, want := b.String(), "BENCH scale_x 1.235 x target <= 1.2\n"; got != want {
		t.Errorf("Fprint wrote %q, want %q", got, want)
	}
}
