package router

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/keys"

	"github.com/hangar-dev/hangar/internal/flysim/proxy"
	"github.com/hangar-dev/hangar/pkg/replayauth"
)

func TestReplayStateIsSignedOncePerBucket(t *testing.T) {
	key := testRoot(t).ReplayKey(keys.App{FlyApp: "alice-app", Generation: 1})
	cfg := &sourceConfig{clock: newStateClock(time.Minute)}
	s := &replaySource{app: "alice-app", machine: aliceID, key: key, cfg: cfg}

	bucketStart := time.Unix(0, cfg.clock.bucketOf(testNow)*int64(cfg.clock.bucket))
	first := s.values(bucketStart)
	if again := s.values(bucketStart.Add(cfg.clock.bucket - time.Nanosecond)); again != first {
		t.Fatal("a second request in the same bucket signed again")
	}
	next := s.values(bucketStart.Add(cfg.clock.bucket))
	if next == first {
		t.Fatal("the next bucket reused the previous signature")
	}
	if back := s.values(bucketStart); back == next || back.header[0] != first.header[0] {
		t.Fatal("a clock going back must sign for its own bucket, deterministically")
	}
}

func TestReplayStateValidity(t *testing.T) {
	key := testRoot(t).ReplayKey(keys.App{FlyApp: "alice-app", Generation: 1})
	ttl := time.Minute
	clock := newStateClock(ttl)
	if clock.bucket != 15*time.Second {
		t.Fatalf("bucket = %v, want TTL/4", clock.bucket)
	}
	s := &replaySource{app: "alice-app", machine: aliceID, key: key, cfg: &sourceConfig{clock: clock}}
	for _, offset := range []time.Duration{0, time.Second, 14 * time.Second} {
		now := time.Unix(1_800_000_000, 0).Add(offset) // 1_800_000_000 is a bucket boundary
		r, err := proxy.ParseReplayHeader(s.values(now).header[0])
		if err != nil {
			t.Fatal(err)
		}
		expiry, err := strconv.ParseInt(strings.Split(r.State, ".")[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		valid := time.Unix(expiry, 0).Sub(now)
		if valid < ttl || valid > ttl+clock.bucket {
			t.Errorf("at +%v the state is valid for %v, want between %v and %v", offset, valid, ttl, ttl+clock.bucket)
		}
		src := "state=" + r.State
		if err := replayauth.Verify(key, src, "alice-app", aliceID, now.Add(ttl-time.Second)); err != nil {
			t.Errorf("state refused within its TTL: %v", err)
		}
		if err := replayauth.Verify(key, src, "alice-app", aliceID, now.Add(ttl+clock.bucket)); !errors.Is(err, replayauth.ErrExpired) {
			t.Errorf("state accepted after TTL + bucket: %v", err)
		}
	}
}

func TestReplayValuesHoldOnlyTheFormsInUse(t *testing.T) {
	key := testRoot(t).ReplayKey(keys.App{FlyApp: "a", Generation: 1})
	tests := []struct {
		form                     Form
		deleteAuth               bool
		wantJSON, wantDeleteAuth bool
	}{
		{FormHeader, false, false, false},
		{FormJSON, false, true, false},
		{FormHeader, true, false, true},
		{FormJSON, true, true, true},
	}
	for _, tt := range tests {
		s := &replaySource{app: "a", key: key, deleteAuth: tt.deleteAuth,
			cfg: &sourceConfig{opts: ReplayOptions{Form: tt.form}, clock: newStateClock(0)}}
		v := s.values(testNow)
		if len(v.header) != 1 || (v.json != nil) != tt.wantJSON || (v.jsonDeleteAuth != nil) != tt.wantDeleteAuth {
			t.Errorf("form %v deleteAuth %v: header %v json %v deleteAuth %v", tt.form, tt.deleteAuth,
				len(v.header), v.json != nil, v.jsonDeleteAuth != nil)
		}
		if tt.wantDeleteAuth && v.jsonDeleteAuthLength[0] != strconv.Itoa(len(v.jsonDeleteAuth)) {
			t.Errorf("Content-Length %s for a %d-byte body", v.jsonDeleteAuthLength[0], len(v.jsonDeleteAuth))
		}
	}
}

// TestStatesStayWithinWhatMachinesAccept: at the largest TTL the router accepts, no state expires
// further ahead than a user machine accepts by default (replayauth.DefaultMaxLifetime), at any
// point of a bucket, so even a machine whose clock is behind by replayauth.DefaultSkew accepts it;
// a Builder given a larger TTL signs for MaxStateTTL.
func TestStatesStayWithinWhatMachinesAccept(t *testing.T) {
	if MaxStateTTL != 8*time.Minute {
		t.Fatalf("MaxStateTTL = %v, want 8m (the documented maximum of --state-ttl)", MaxStateTTL)
	}
	key := testRoot(t).ReplayKey(keys.App{FlyApp: "alice-app", Generation: 1})
	for _, ttl := range []time.Duration{MaxStateTTL, time.Hour} {
		clock := newStateClock(ttl)
		s := &replaySource{app: "alice-app", machine: aliceID, key: key, cfg: &sourceConfig{clock: clock}}
		start := time.Unix(0, clock.bucketOf(testNow)*int64(clock.bucket))
		for _, offset := range []time.Duration{0, time.Nanosecond, time.Second, clock.bucket - time.Nanosecond} {
			now := start.Add(offset)
			r, err := proxy.ParseReplayHeader(s.values(now).header[0])
			if err != nil {
				t.Fatal(err)
			}
			expiry, err := strconv.ParseInt(strings.Split(r.State, ".")[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if ahead := time.Unix(expiry, 0).Sub(now); ahead > replayauth.DefaultMaxLifetime {
				t.Errorf("ttl %v, +%v into the bucket: the state expires %v ahead, beyond %v", ttl, offset, ahead, replayauth.DefaultMaxLifetime)
			}
			behind := now.Add(-replayauth.DefaultSkew)
			if err := replayauth.Verify(key, "state="+r.State, "alice-app", aliceID, behind); err != nil {
				t.Errorf("ttl %v, +%v: a machine %v behind refuses the state: %v", ttl, offset, replayauth.DefaultSkew, err)
			}
		}
	}
}
