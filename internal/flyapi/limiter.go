package flyapi

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is one token bucket: Rate tokens per second, at most Burst at once.
type Limit struct {
	Rate  rate.Limit
	Burst int
}

// Limits configures a Limiter: a bucket per (action, scope), where the scope is the machine for
// machine actions, the app for app-scoped ones and the org for create_app/list_apps.
type Limits struct {
	Default   Limit            // for every action not in PerAction
	PerAction map[string]Limit // by action name (the Action… constants)
}

// PublishedLimits mirrors Fly's published Machines API limits: 1 request/s with a burst of 3 per
// action and machine (or app, or org); get_machine 5/s with a burst of 10; app deletions 100 per
// minute.
//
// Fly states "100 per minute" for app deletions without a burst. A bucket of 100/min with a burst
// of 100 would let 200 through in the first minute, so the stricter reading is used: a burst of
// 1, i.e. one deletion every 0.6 s, never more than 101 in any minute.
func PublishedLimits() Limits {
	return Limits{
		Default: Limit{Rate: 1, Burst: 3},
		PerAction: map[string]Limit{
			ActionGetMachine: {Rate: 5, Burst: 10},
			ActionDeleteApp:  {Rate: rate.Every(time.Minute / 100), Burst: 1},
		},
	}
}

// DefaultLimits are PublishedLimits with every rate lowered by a tenth (bursts unchanged); a
// client with no Limiter uses them.
//
// Why not the published rates exactly: Fly counts a request when it arrives, the limiter when it
// leaves. Two requests sent exactly 1/rate apart arrive closer together whenever the second one
// travels faster, and Fly then refuses it, which costs a whole Retry-After second. Running a
// little slower keeps such jitter (up to about 100 ms at 1/s) from turning into 429s.
func DefaultLimits() Limits {
	return PublishedLimits().scaled(0.9)
}

func (l Limits) scaled(factor float64) Limits {
	scale := func(lim Limit) Limit {
		if lim.Rate != rate.Inf {
			lim.Rate = rate.Limit(float64(lim.Rate) * factor)
		}
		return lim
	}
	out := Limits{Default: scale(l.Default), PerAction: map[string]Limit{}}
	for action, lim := range l.PerAction {
		out.PerAction[action] = scale(lim)
	}
	return out
}

// NoLimits lets every call through at once (for tests against an emulator with limits off).
func NoLimits() Limits {
	return Limits{Default: Limit{Rate: rate.Inf}}
}

// Limiter holds the token buckets of one or more clients. Share one Limiter between clients that
// use the same Fly org so they draw on the same buckets. It is safe for concurrent use.
//
// Buckets are created on first use and dropped once they have refilled completely (a full bucket
// behaves exactly like a new one), so memory stays bounded by the machines and apps in recent use.
type Limiter struct {
	limits Limits

	mu        sync.Mutex
	buckets   map[bucketKey]*rate.Limiter
	lastSweep time.Time
}

type bucketKey struct {
	action string
	scope  string
}

// sweepInterval is how often reserve looks for full buckets to drop.
const sweepInterval = time.Minute

// NewLimiter returns a Limiter with the given limits.
func NewLimiter(limits Limits) *Limiter {
	return &Limiter{limits: limits, buckets: map[bucketKey]*rate.Limiter{}}
}

func (l *Limiter) limitFor(action string) Limit {
	if lim, ok := l.limits.PerAction[action]; ok {
		return lim
	}
	return l.limits.Default
}

// reserve takes a token for (action, scope) at now and returns how long the caller must wait
// before sending, and a cancel func that gives the token back if the caller does not send.
func (l *Limiter) reserve(action, scope string, now time.Time) (time.Duration, func()) {
	lim := l.limitFor(action)
	if lim.Rate == rate.Inf {
		return 0, func() {} // unlimited: no bucket to keep
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(now)
	key := bucketKey{action: action, scope: scope}
	bucket, ok := l.buckets[key]
	if !ok {
		bucket = rate.NewLimiter(lim.Rate, lim.Burst)
		l.buckets[key] = bucket
	}
	r := bucket.ReserveN(now, 1)
	if !r.OK() {
		// Only possible with a zero burst and a finite rate: the limits forbid the action.
		return time.Duration(1<<63 - 1), func() {}
	}
	return r.DelayFrom(now), func() { r.CancelAt(now) }
}

// sweepLocked drops buckets that have refilled, at most once per sweepInterval.
func (l *Limiter) sweepLocked(now time.Time) {
	if now.Sub(l.lastSweep) < sweepInterval {
		return
	}
	l.lastSweep = now
	for key, bucket := range l.buckets {
		if bucket.TokensAt(now) >= float64(bucket.Burst()) {
			delete(l.buckets, key)
		}
	}
}

// bucketCount reports how many buckets are held (for tests of the sweep).
func (l *Limiter) bucketCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
