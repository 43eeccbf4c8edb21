package flysim

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limitScope says which identifier a rate-limit bucket is keyed by, next to the action.
type limitScope int

const (
	perOrg     limitScope = iota // create_app, list_apps, delete_app
	perApp                       // actions on an app that name no machine (create_machine, list_machines, secrets, IPs, get_app)
	perMachine                   // actions on one machine
)

// limitFor is Fly's published limit for an action (§8): 1 req/s with bursts of 3 per action and
// identifier; Get Machine 5 req/s with bursts of 10; app deletions 100 per minute (per org here).
func limitFor(action string) (rate.Limit, int) {
	switch action {
	case actGetMachine:
		return 5, 10
	case actDeleteApp:
		return rate.Every(time.Minute / 100), 100
	default:
		return 1, 3
	}
}

// Over the limit the emulator answers 429 {"error":"rate limited"} with Retry-After in whole seconds.
// Fly documents neither the status nor the header (§7); this is the sheet's suggestion, chosen so that
// clients are made to handle both.

// limiterSet holds one token bucket per (action, identifier).
type limiterSet struct {
	mu      sync.Mutex
	buckets map[[2]string]*rate.Limiter
}

// take spends a token of the (action, key) bucket at now. When none is available it spends nothing and
// returns the whole seconds until one is (at least 1), for Retry-After.
func (l *limiterSet) take(action, key string, now time.Time) (ok bool, retryAfterSeconds int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{action, key}
	lim := l.buckets[k]
	if lim == nil {
		every, burst := limitFor(action)
		lim = rate.NewLimiter(every, burst)
		l.buckets[k] = lim
	}
	res := lim.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay == 0 {
		return true, 0
	}
	res.CancelAt(now)
	return false, max(1, int(math.Ceil(delay.Seconds())))
}
