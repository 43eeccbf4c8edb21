package flyapi

import (
	"context"
	"sync/atomic"
	"time"
)

// CallStats collects what happened to the calls made with a context: how long they waited on the
// client-side limiter and whether they were rate limited (by Fly's 429 or by the limiter refusing
// to wait). A controller attaches one to its context to report a Throttled reason:
//
//	var stats flyapi.CallStats
//	m, err := client.GetMachine(flyapi.WithCallStats(ctx, &stats), app, id)
//	if stats.Throttled() { ... }
//
// Stats accumulate over every call made with the context (including retries) and are safe to
// update from concurrent calls.
type CallStats struct {
	limiterWait atomic.Int64 // nanoseconds
	limiterHits atomic.Int64 // calls that had to wait on the limiter
	rateLimited atomic.Int64 // 429 answers plus limiter refusals
	attempts    atomic.Int64 // HTTP requests sent
}

// LimiterWait is the total time spent waiting on the client-side limiter.
func (s *CallStats) LimiterWait() time.Duration { return time.Duration(s.limiterWait.Load()) }

// LimiterWaits is the number of requests that had to wait on the limiter.
func (s *CallStats) LimiterWaits() int { return int(s.limiterHits.Load()) }

// RateLimited is the number of times a request was rate limited: a 429 from Fly (even if a retry
// then succeeded) or a refusal by the limiter.
func (s *CallStats) RateLimited() int { return int(s.rateLimited.Load()) }

// Attempts is the number of HTTP requests sent, retries included.
func (s *CallStats) Attempts() int { return int(s.attempts.Load()) }

// Throttled reports whether any call waited on the limiter or was rate limited.
func (s *CallStats) Throttled() bool { return s.LimiterWaits() > 0 || s.RateLimited() > 0 }

type callStatsKey struct{}

// WithCallStats returns a context whose calls record into stats.
func WithCallStats(ctx context.Context, stats *CallStats) context.Context {
	return context.WithValue(ctx, callStatsKey{}, stats)
}

// callStatsFrom returns the stats attached to ctx, or a throwaway one, so callers never check nil.
func callStatsFrom(ctx context.Context) *CallStats {
	if stats, ok := ctx.Value(callStatsKey{}).(*CallStats); ok && stats != nil {
		return stats
	}
	return &CallStats{}
}
