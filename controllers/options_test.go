package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestDriftIntervalJitter(t *testing.T) {
	o := Options{DriftInterval: 100 * time.Second}
	seen := map[time.Duration]bool{}
	for _, uid := range []types.UID{"a", "b", "c", "d", "e"} {
		d := o.driftIntervalFor(uid)
		if d < 90*time.Second || d >= 110*time.Second {
			t.Fatalf("interval %s outside ±10%%", d)
		}
		if o.driftIntervalFor(uid) != d {
			t.Fatal("jitter not stable per object")
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatal("no jitter between objects")
	}
}
